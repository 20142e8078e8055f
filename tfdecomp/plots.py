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
  pair_plot(loc, dims)                      D > 2: most active dimensions over p(z)'s marginals
  class_magnitudes(loc, labels)             the paper's sparsity figure: mean |z_d| per class
  run_figures(model, config, history, x, y, plots_dir)   every figure that applies to a run
  regenerate(run_dir)                       run_figures again from a run's checkpoint
"""

import csv
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfdecomp import _io

__all__ = ["save", "read_history", "training_curves", "aggregate_posterior",
           "scatter_reconstructions", "image_grid", "reconstructions", "traversals", "pair_plot",
           "class_magnitudes", "run_figures", "regenerate", "FORMATS"]

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


def training_curves(history, path=None, title=None, final=None):
  """Plots each logged quantity against the epoch, one panel per quantity.

  Args:
    history: {name: sequence over epochs} (e.g. `keras.callbacks.History.history`), or the path
      of a history CSV. An "epoch" column, if present, is the x axis (epochs counted from 1).
      Columns prefixed "val_" are drawn in the panel of the unprefixed name (NaN where an epoch
      was not validated: the validated epochs are drawn with markers).
    path: optional file to write.
    title: optional figure title.
    final: optional {name: value} of the trained model on the test split (metrics.json), drawn
      as a star after the last epoch.

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
  if epochs is not None and len(epochs) and epochs[0] >= 1:
    epochs = epochs - 1  # history.csv counts epochs from 1; the axis below adds one.
  final = {k: float(v) for k, v in (final or {}).items()
           if isinstance(v, (int, float)) and not isinstance(v, bool)}
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
    if "val_" + name in history and name not in ("beta", "alpha"):
      val = history["val_" + name]
      xv = x[:len(val)]
      keep = np.isfinite(val)
      ax.plot(xv[keep], val[keep], label="validation", lw=1.2, marker="o", ms=2.5)
    if name in final and name not in ("beta", "alpha") and len(x):
      ax.plot([x[-1]], [final[name]], ls="none", marker="*", ms=8, c="tab:red", label="test")
    if len(ax.get_lines()) > 1:
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


def _weights_title(title, beta=None, alpha=None):
  parts = [f"{name} = {value:g}" for name, value in (("beta", beta), ("alpha", alpha))
           if value is not None]
  return f"{title}\n{', '.join(parts)}" if parts else title


def aggregate_posterior(loc, prior_log_prob=None, samples=None, labels=None, path=None,
                        grid_size=150, limits=None, title="aggregate posterior over p(z)",
                        prior_samples=None, axis_labels=("z1", "z2"), beta=None, alpha=None):
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
    prior_samples: optional z ~ p(z) [M, 2] (e.g. two dimensions of a D-dimensional prior's
      samples: their marginal); without `prior_log_prob` their 2-D histogram is drawn as the
      density.
    axis_labels: the two axes' names (e.g. the latent dimensions drawn).
    beta, alpha: optional objective weights, written under the title.

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
  if prior_samples is not None:
    pts.append(np.percentile(np.asarray(prior_samples, np.float64).reshape(-1, 2), [1, 99],
                             axis=0))
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
  elif prior_samples is not None:
    prior_samples = np.asarray(prior_samples, dtype=np.float64).reshape(-1, 2)
    bins = min(60, max(10, int(np.sqrt(len(prior_samples)) / 2)))
    density, ex, ey = np.histogram2d(prior_samples[:, 0], prior_samples[:, 1], bins=bins,
                                     range=((x0, x1), (y0, y1)), density=True)
    from matplotlib.colors import LogNorm  # pylint: disable=g-import-not-at-top
    # Log scale: a spike-and-slab prior's spike would otherwise hide its slab.
    top = max(float(density.max()), 1e-12)
    mesh = ax.pcolormesh(ex, ey, np.ma.masked_less_equal(density.T, 0.0), cmap="Blues",
                         shading="flat", norm=LogNorm(vmin=top * 1e-3, vmax=top))
    fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04,
                 label=f"p({axis_labels[0]}, {axis_labels[1]}) from prior samples (log)")
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
  ax.set_xlabel(axis_labels[0])
  ax.set_ylabel(axis_labels[1])
  ax.legend(loc="upper right", fontsize=7, markerscale=3)
  ax.set_title(_weights_title(title, beta, alpha), fontsize=10)
  fig.tight_layout()
  return _maybe_save(fig, path)


def pair_plot(loc, dims, prior_samples=None, labels=None, path=None, beta=None, alpha=None,
              title="aggregate posterior, most active dimensions"):
  """Pair plot of chosen latent dimensions: E[z|x] over the prior's 2-D marginals.

  Below the diagonal, panel (i, j) scatters E[z_i|x] against E[z_j|x] over a 2-D histogram of
  prior samples of (z_i, z_j); on the diagonal, histograms of E[z_i|x] and of the prior's
  marginal of z_i. Panels above the diagonal are left empty.

  Args:
    loc: posterior means E[z|x], [N, D].
    dims: the K dimensions drawn (e.g. `tfdecomp.tensorboard.most_active(loc, 4)`), K >= 2.
    prior_samples: optional z ~ p(z), [M, D].
    labels: optional [N] integers colouring the means.
    path: optional file to write.
    beta, alpha: optional objective weights, written under the title.
    title: figure title.

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: if `loc` is not [N, D] or fewer than two dimensions are given.
  """
  loc = np.asarray(loc, np.float64)
  dims = [int(d) for d in dims]
  if loc.ndim != 2 or len(dims) < 2:
    raise ValueError(f"pair_plot needs loc [N, D] and >= 2 dims, got {loc.shape} and {dims}.")
  k = len(dims)
  fig = _figure(2.3 * k + 0.6, 2.3 * k + 0.6)
  points = loc[:, dims]
  spread = points if prior_samples is None else np.concatenate(
      [points, np.percentile(np.asarray(prior_samples)[:, dims], [1, 99], axis=0)])
  lo = np.min(spread, axis=0)
  hi = np.max(spread, axis=0)
  pad = np.maximum((hi - lo) * 0.08, 0.1)
  lo, hi = lo - pad, hi + pad
  colours = np.asarray(labels) if labels is not None else "tab:red"
  for i in range(k):
    for j in range(k):
      if j > i:
        continue
      ax = fig.add_subplot(k, k, i * k + j + 1)
      if i == j:
        bins = np.linspace(lo[i], hi[i], 40)
        if prior_samples is not None:
          ax.hist(np.asarray(prior_samples)[:, dims[i]], bins=bins, density=True, color="0.75",
                  label="p(z)")
        ax.hist(points[:, i], bins=bins, density=True, histtype="step", color="tab:red",
                lw=1.2, label="E[z|x]")
        ax.set_yticks([])
        if i == 0:
          ax.legend(fontsize=6, loc="upper right")
      else:
        if prior_samples is not None:
          ps = np.asarray(prior_samples)
          ax.hist2d(ps[:, dims[j]], ps[:, dims[i]], bins=40,
                    range=((lo[j], hi[j]), (lo[i], hi[i])), cmap="Blues")
        ax.scatter(points[:, j], points[:, i], s=3, c=colours, lw=0,
                   **({"cmap": "tab10"} if labels is not None else {}))
        ax.set_ylim(lo[i], hi[i])
      ax.set_xlim(lo[j], hi[j])
      ax.tick_params(labelsize=6)
      if i == k - 1:
        ax.set_xlabel(f"z{dims[j]}", fontsize=8)
      if j == 0 and i > 0:
        ax.set_ylabel(f"z{dims[i]}", fontsize=8)
  fig.suptitle(_weights_title(title, beta, alpha), fontsize=10)
  fig.tight_layout()
  return _maybe_save(fig, path)


def class_magnitudes(loc, labels, path=None, class_names=None, max_dims=50,
                     title="average |z_d| per class"):
  """The paper's sparsity figure: the average magnitude of each latent dimension per class.

  Cell (c, d) is the mean over the examples of class c of |E[z_d|x]| / std_x(E[z_d|x])
  (`tfdecomp.metrics.sparsity.per_class_latent_magnitude`, normalised as for the Hoyer
  measure); the dimensions (columns, labelled
  with their index) are ordered by activity, the mean of |z_d| over classes, most active first,
  as in the sweep's `tfdecomp.sweep_plots.per_class_heatmaps`. A sparse representation uses few
  dimensions per class, different ones across classes.

  Args:
    loc: posterior means E[z|x], [N, D].
    labels: [N] integer classes.
    path: optional file to write.
    class_names: optional names of the classes 0..C-1.
    max_dims: at most this many dimensions are drawn (the most active).
    title: axes title.

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: if labels are not one class per example.
  """
  loc = np.asarray(loc, np.float64)
  labels = np.asarray(labels)
  if labels.ndim != 1 or len(labels) != len(loc):
    raise ValueError(f"labels must be one class per example ([{len(loc)}]), got {labels.shape}.")
  from tfdecomp.metrics import sparsity  # pylint: disable=g-import-not-at-top
  magnitudes = np.asarray(sparsity.per_class_latent_magnitude(loc, labels), np.float64)
  classes = np.flatnonzero(np.isfinite(magnitudes).all(axis=1))  # Classes present.
  magnitudes = magnitudes[classes]
  order = np.argsort(-magnitudes.mean(axis=0), kind="stable")[:max_dims]
  table = magnitudes[:, order]
  width = min(14.0, 1.8 + 0.22 * len(order))
  fig = _figure(width, 1.3 + 0.32 * len(classes))
  ax = fig.add_subplot(1, 1, 1)
  image = ax.imshow(table, aspect="auto", cmap="viridis", interpolation="nearest")
  fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="mean |z_d| / std(z_d)")
  step = max(1, len(order) // 25)
  ax.set_xticks(np.arange(0, len(order), step))
  ax.set_xticklabels([str(order[i]) for i in range(0, len(order), step)], fontsize=7)
  names = [str(class_names[int(c)]) if class_names is not None else str(c) for c in classes]
  ax.set_yticks(np.arange(len(classes)))
  ax.set_yticklabels(names, fontsize=7)
  ax.set_xlabel("latent dimension d (ordered by activity)", fontsize=8)
  ax.set_ylabel("class", fontsize=8)
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


#: Formats of the run's figures (`run_figures`).
FORMATS = ("png", "pdf")


def run_figures(model, config, history, x_eval, labels, plots_dir, final=None,
                formats=FORMATS):
  """Writes every figure that applies to a trained run; returns their paths.

  Each figure is written as PNG and PDF (`formats`) under `plots_dir`:
    training_curves         every history column against the epoch, train and validation
                            (and the test-set value of metrics.json, `final`)
    aggregate_posterior     D = 2: E[z|x] and z ~ q(z|x) over the prior's density, with beta and
                            alpha in the title
    aggregate_posterior_pairs  D > 2: pair plot of the four most active dimensions over the
                            prior's marginals (`pair_plot`)
    class_magnitudes        D > 2 with one class per example: the paper's sparsity figure
    reconstructions         data and reconstructions (2-D data: a scatter; images: a grid)
    samples, traversals     images: samples from the prior, traversals of the most active
                            dimensions (up to 8)

  Args:
    model: the trained `DecompVAE`.
    config: its `tfdecomp.configs.Config` (seed, latent size, experiment name, beta, alpha).
    history: rows of history.csv ({"epoch": ..., "loss": ...} per epoch), or empty.
    x_eval: evaluation examples [N, ...] (the first 2,000 are drawn).
    labels: their labels ([N] classes or [N, K] factors) or None.
    plots_dir: the run's plots/ directory.
    final: optional test-set terms {name: value} (metrics.json).
    formats: file formats written for each figure.
  """
  from tfdecomp import seeds  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  from tfdecomp import tensorboard  # pylint: disable=g-import-not-at-top
  paths = []

  def write(fig, name):
    for fmt in formats:
      paths.append(save(fig, os.path.join(plots_dir, f"{name}.{fmt}")))

  classes = None
  if labels is not None and np.ndim(labels) == 1:
    classes = np.asarray(labels)[:2000]
  weights = {"beta": config.beta, "alpha": config.alpha if config.divergence != "none" else 0.0}
  if history:
    columns = []
    for row in history:
      columns += [k for k in row if k not in columns]
    cols = {k: [row.get(k, float("nan")) for row in history] for k in columns}
    write(training_curves(cols, title=config.experiment, final=final), "training_curves")
  x = x_eval[:2000]
  loc, scale = (np.asarray(t) for t in model.encode(x, batch_size=500))
  active = tensorboard.most_active(loc, 8)
  if config.latent_dim == 2:
    rng = seeds.figures_rng(config.seed)
    samples = loc + scale * rng.standard_normal(loc.shape)
    write(aggregate_posterior(loc, lambda z: model.prior.log_prob(z).numpy(), samples=samples,
                              labels=classes, **weights), "aggregate_posterior")
  elif config.latent_dim > 2:
    prior_samples = np.asarray(model.prior.sample(
        5000, seed=seeds.figures_sample_seed(config.seed)))
    write(pair_plot(loc, active[:4], prior_samples=prior_samples, labels=classes, **weights),
          "aggregate_posterior_pairs")
    if classes is not None:
      write(class_magnitudes(loc, classes,
                             title=f"average |z_d| per class ({config.experiment}, "
                                   f"alpha = {weights['alpha']:g})"), "class_magnitudes")
  if x.ndim == 2:
    if x.shape[1] == 2:
      write(scatter_reconstructions(x, np.asarray(model.decode(loc))), "reconstructions")
  else:
    write(reconstructions(x[:10], np.asarray(model.decode(loc[:10]))), "reconstructions")
    samples = np.asarray(model.sample(10, seed=seeds.figures_sample_seed(config.seed)))
    write(image_grid(samples[None], title="samples from the prior"), "samples")
    values = np.linspace(-2.5, 2.5, 9)
    rows = np.stack([np.asarray(model.traverse(x[:1], int(d), values))[0] for d in active])
    write(traversals(rows, values=values, dims=active), "traversals")
  return paths


def regenerate(run_dir, data_dir=None, manual_dir=None, formats=FORMATS, warn=None):
  """Writes every figure of a trained run again, from its checkpoint, history.csv and
  metrics.json, without training (`tfdecomp-plot --run DIR`).

  Args:
    run_dir: a run directory written by `tfdecomp.training.train`.
    data_dir, manual_dir: where the run's data set is (`tfdecomp.data`).
    formats: file formats written for each figure.
    warn: receives one line per skipped (unreadable) checkpoint.

  Returns:
    The paths written (under `<run_dir>/plots/`).

  Raises:
    tfdecomp.runs.RunError: if the run has no readable config or checkpoint.
    tfdecomp.data.DataError, FileNotFoundError: if its data set cannot be read.
  """
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  from tfdecomp import runs  # pylint: disable=g-import-not-at-top
  run = runs.RunDirectory(run_dir)
  model, config, _ = runs.load_run(run.path, warn=warn)
  x_eval, labels = data.load_arrays(config.dataset_name, config.eval_split, max_examples=2000,
                                    data_dir=data_dir, manual_dir=manual_dir)
  history = runs.read_history_csv(run.history_path) if os.path.exists(run.history_path) else []
  final = {k: v for k, v in run.read_metrics().items() if k not in ("epochs", "examples")}
  return run_figures(model, config, history, np.asarray(x_eval), labels, run.plots_dir,
                     final=final, formats=formats)
