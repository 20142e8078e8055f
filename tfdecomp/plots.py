"""Matplotlib figures for training runs.

Figures are built with matplotlib's object-oriented API on an Agg canvas (`matplotlib.figure.
Figure`), never through `pyplot`: no global figure state, no display needed, safe in threads and
tests. Every function returns the `Figure` and, when `path` is given, also writes it (PNG unless
the suffix says otherwise), creating parent directories and replacing the file atomically.

  training_curves(history)                  loss components against the epoch
  aggregate_posterior(loc, prior_log_prob)  2-D codes over the prior's density
  scatter_reconstructions(x, x_rec)         2-D data and their reconstructions
  image_grid(rows)                          rows of images (reconstructions, samples)
  reconstructions(x, x_rec)                 originals above reconstructions
  traversals(images)                        latent traversals, one row per latent dimension
  run_figures(model, config, history, x, y, plots_dir)   every figure that applies to a run
"""

import csv
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfdecomp import _io

__all__ = ["save", "read_history", "training_curves", "aggregate_posterior",
           "scatter_reconstructions", "image_grid", "reconstructions", "traversals",
           "run_figures"]

# Plotted in this order when present; other numeric history columns follow.
_CURVES = ("loss", "reconstruction", "kl", "divergence", "elbo", "beta", "alpha")


def _figure(width, height):
  fig = Figure(figsize=(width, height), dpi=100)
  FigureCanvasAgg(fig)
  return fig


def save(fig, path):
  """Writes `fig` to `path` atomically (temporary file + rename); returns `path`."""
  path = os.fspath(path)
  suffix = os.path.splitext(path)[1] or ".png"
  with _io.atomic_path(path, suffix=suffix) as tmp:
    fig.savefig(tmp, format=suffix[1:], bbox_inches="tight")
  return path


def _maybe_save(fig, path):
  if path is not None:
    save(fig, path)
  return fig


def read_history(path):
  """Reads a history CSV (header row, one row per epoch) into {column: float array}."""
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    return {}
  history = {}
  for key in rows[0]:
    try:
      history[key] = np.array([float(r[key]) for r in rows], dtype=np.float64)
    except (TypeError, ValueError):
      continue
  return history


def training_curves(history, path=None, title=None):
  """Plots each logged quantity against the epoch, one panel per quantity.

  Args:
    history: {name: sequence over epochs} (e.g. `keras.callbacks.History.history`), or the path
      of a history CSV. An "epoch" column, if present, is the x axis (epochs counted from 1).
      Columns prefixed "val_" are drawn in the panel of the unprefixed name.
    path: optional file to write.
    title: optional figure title.

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: if the history holds no numeric series.
  """
  if isinstance(history, (str, os.PathLike)):
    history = read_history(history)
  history = {k: np.asarray(v, dtype=np.float64) for k, v in history.items()
             if np.asarray(v).ndim == 1 and np.asarray(v).size}
  epochs = history.pop("epoch", None)
  names = [n for n in _CURVES if n in history]
  names += sorted(n for n in history if n not in names and not n.startswith("val_"))
  if not names:
    raise ValueError("history must hold at least one numeric series, e.g. {'loss': [...]}.")
  cols = min(3, len(names))
  rows = math.ceil(len(names) / cols)
  fig = _figure(4.0 * cols, 2.8 * rows)
  for i, name in enumerate(names):
    ax = fig.add_subplot(rows, cols, i + 1)
    y = history[name]
    x = epochs + 1 if epochs is not None and len(epochs) == len(y) else np.arange(1, len(y) + 1)
    ax.plot(x, y, label="train", lw=1.2)
    if "val_" + name in history:
      val = history["val_" + name]
      ax.plot(x[:len(val)], val, label="validation", lw=1.2)
      ax.legend(fontsize=7)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return _maybe_save(fig, path)


def _limits(points, margin=0.15, minimum=1.0):
  lo, hi = np.min(points, axis=0), np.max(points, axis=0)
  centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, minimum / 2)
  half = np.max(half) * (1 + margin)
  return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def aggregate_posterior(loc, prior_log_prob=None, samples=None, labels=None, path=None,
                        grid_size=150, limits=None, title="aggregate posterior over p(z)"):
  """Scatters 2-D codes over the prior's density.

  Args:
    loc: posterior means E[z|x], [N, 2].
    prior_log_prob: optional callable z [M, 2] -> log p(z) [M] (a Prior's `log_prob`, a TFP
      distribution's `log_prob`, ...); its density is drawn as filled contours.
    samples: optional posterior samples z ~ q(z|x), [M, 2], drawn as small points.
    labels: optional [N] integers colouring the means (e.g. pinwheel arms).
    path: optional file to write.
    grid_size: density grid points per axis.
    limits: optional ((xmin, xmax), (ymin, ymax)); default fits the points and the unit square.
    title: axes title.

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: if `loc` is not [N, 2].
  """
  loc = np.asarray(loc, dtype=np.float64)
  if loc.ndim != 2 or loc.shape[1] != 2:
    raise ValueError(f"loc must have shape [N, 2] (2-D latents), got {loc.shape}.")
  pts = [loc, np.array([[-1.2, -1.2], [1.2, 1.2]])]
  if samples is not None:
    samples = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    pts.append(samples)
  finite = np.concatenate(pts)
  finite = finite[np.all(np.isfinite(finite), axis=1)]
  (x0, x1), (y0, y1) = limits if limits is not None else _limits(finite)
  fig = _figure(5.2, 5.0)
  ax = fig.add_subplot(1, 1, 1)
  if prior_log_prob is not None:
    gx, gy = np.meshgrid(np.linspace(x0, x1, grid_size), np.linspace(y0, y1, grid_size))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    density = np.exp(np.asarray(prior_log_prob(grid), dtype=np.float64)).reshape(gx.shape)
    cs = ax.contourf(gx, gy, density, levels=20, cmap="Blues")
    fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="p(z)")
  if samples is not None:
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="0.35", alpha=0.4, lw=0,
               label="z ~ q(z|x)")
  if labels is not None:
    ax.scatter(loc[:, 0], loc[:, 1], s=6, c=np.asarray(labels), cmap="tab10", lw=0,
               label="E[z|x]")
  else:
    ax.scatter(loc[:, 0], loc[:, 1], s=6, c="tab:red", lw=0, label="E[z|x]")
  ax.set_xlim(x0, x1)
  ax.set_ylim(y0, y1)
  ax.set_aspect("equal")
  ax.set_xlabel("z1")
  ax.set_ylabel("z2")
  ax.legend(loc="upper right", fontsize=7, markerscale=3)
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  return _maybe_save(fig, path)


def scatter_reconstructions(x, x_rec, path=None, title="data and reconstructions"):
  """Scatters 2-D data points and their reconstructions E[x|z = E[z|x]].

  Args:
    x: data, [N, 2].
    x_rec: reconstructions, [N, 2].
    path: optional file to write.
    title: axes title.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  x, x_rec = np.asarray(x), np.asarray(x_rec)
  fig = _figure(5.0, 5.0)
  ax = fig.add_subplot(1, 1, 1)
  ax.scatter(x[:, 0], x[:, 1], s=5, c="0.5", lw=0, label="data")
  ax.scatter(x_rec[:, 0], x_rec[:, 1], s=5, c="tab:orange", lw=0, label="reconstruction")
  ax.set_aspect("equal")
  ax.legend(fontsize=7, markerscale=3)
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  return _maybe_save(fig, path)


def _as_images(images):
  images = np.asarray(images, dtype=np.float64)
  if images.shape[-1] not in (1, 3):  # [..., H, W] without a channel axis: add one.
    images = images[..., None]
  return np.clip(images, 0.0, 1.0)


def image_grid(rows, path=None, row_labels=None, title=None, cell=0.9):
  """Draws images in a grid.

  Args:
    rows: [R, C, H, W] or [R, C, H, W, channels] (channels 1 or 3), values in [0, 1].
    path: optional file to write.
    row_labels: optional R strings written left of the rows.
    title: optional figure title.
    cell: inches per image.

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: if `rows` does not have 4 or 5 dimensions.
  """
  rows = _as_images(rows)
  if rows.ndim != 5:
    raise ValueError(f"rows must have shape [R, C, H, W(, channels)], got {rows.shape}.")
  num_rows, num_cols = rows.shape[:2]
  fig = _figure(cell * num_cols + (0.9 if row_labels else 0.1), cell * num_rows + 0.4)
  for r in range(num_rows):
    for c in range(num_cols):
      ax = fig.add_subplot(num_rows, num_cols, r * num_cols + c + 1)
      image = rows[r, c]
      if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
      else:
        ax.imshow(image, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if row_labels and c == 0:
        ax.set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center")
  if title:
    fig.suptitle(title, fontsize=10)
  fig.subplots_adjust(wspace=0.03, hspace=0.03)
  return _maybe_save(fig, path)


def reconstructions(x, x_rec, path=None, max_images=10):
  """Originals (top row) above their reconstructions (bottom row).

  Args:
    x: images, [N, H, W, channels] in [0, 1].
    x_rec: reconstructions of `x` (e.g. Bernoulli probabilities), same shape.
    path: optional file to write.
    max_images: columns drawn (the first `max_images` examples).

  Returns:
    The `matplotlib.figure.Figure`.
  """
  n = min(max_images, len(x))
  return image_grid(np.stack([np.asarray(x)[:n], np.asarray(x_rec)[:n]]), path=path,
                    row_labels=["data", "recon."], title="reconstructions")


def traversals(images, path=None, values=None, dims=None):
  """Latent traversals: row d shows the decoded images as latent `dims[d]` sweeps `values`.

  Args:
    images: [num_dims, num_values, H, W, channels] in [0, 1], e.g. stacked
      `DecompVAE.traverse(x[:1], dim, values)[0]` for each dim.
    path: optional file to write.
    values: optional [num_values] swept values, written in the title.
    dims: optional labels of the rows (latent indices); default 0..num_dims-1.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  images = np.asarray(images)
  dims = list(range(images.shape[0])) if dims is None else list(dims)
  title = "latent traversals"
  if values is not None:
    values = np.asarray(values)
    title += f" (z_d from {values.min():.2g} to {values.max():.2g})"
  return image_grid(images, path=path, row_labels=[f"z{d}" for d in dims], title=title)


def run_figures(model, config, history, x_eval, labels, plots_dir):
  """Writes every figure that applies to a trained run; returns their paths.

  Training curves (from `history`); for 2-D latents the aggregate posterior over the prior's
  density; reconstructions (scatter for 2-D data, images otherwise); for images also prior
  samples and traversals of the first latent dimensions.

  Args:
    model: the trained `DecompVAE`.
    config: its `tfdecomp.configs.Config` (seed, latent size, experiment name).
    history: rows of history.csv ({"epoch": ..., "loss": ...} per epoch), or empty.
    x_eval: evaluation examples [N, ...] (the first 2,000 are drawn).
    labels: their labels [N] (colour the codes) or None.
    plots_dir: the run's plots/ directory.
  """
  from tfdecomp import seeds  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  paths = []
  join = lambda name: os.path.join(plots_dir, name)  # noqa: E731
  if history:
    cols = {k: [row.get(k, float("nan")) for row in history] for k in history[-1]}
    training_curves(cols, path=join("training_curves.png"), title=config.experiment)
    paths.append(join("training_curves.png"))
  x = x_eval[:2000]
  loc, scale = (np.asarray(t) for t in model.encode(x, batch_size=500))
  if config.latent_dim == 2:
    rng = seeds.figures_rng(config.seed)
    samples = loc + scale * rng.standard_normal(loc.shape)
    aggregate_posterior(
        loc, lambda z: model.prior.log_prob(z).numpy(), samples=samples,
        labels=None if labels is None or np.ndim(labels) != 1 else labels[:len(x)],
        path=join("aggregate_posterior.png"))
    paths.append(join("aggregate_posterior.png"))
  if x.ndim == 2:
    if x.shape[1] == 2:
      scatter_reconstructions(x, np.asarray(model.decode(loc)), path=join("reconstructions.png"))
      paths.append(join("reconstructions.png"))
  else:
    reconstructions(x[:10], np.asarray(model.decode(loc[:10])), path=join("reconstructions.png"))
    samples = np.asarray(model.sample(10, seed=seeds.figures_sample_seed(config.seed)))
    image_grid(samples[None], path=join("samples.png"), title="samples from the prior")
    values = np.linspace(-2.5, 2.5, 9)
    rows = np.stack([np.asarray(model.traverse(x[:1], d, values))[0]
                     for d in range(min(config.latent_dim, 10))])
    traversals(rows, path=join("traversals.png"), values=values)
    paths += [join(n) for n in ("reconstructions.png", "samples.png", "traversals.png")]
  return paths
