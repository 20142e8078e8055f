"""Figures of a sweep: comparisons across runs (matplotlib, object-oriented API, Agg canvas).

  aggregate_posterior_grid(panels, ...)   2-D codes over the prior's density, one panel per
                                          (beta, alpha): the paper's clustering figure
  metric_lines(summary, x_axis, ...)      metrics (mean +- std over seeds) against one axis, one
                                          line per value of the other axes: Hoyer sparsity and
                                          IWAE against alpha per beta, FactorVAE against beta
                                          per prior
  per_class_heatmaps(panels, ...)         average |z_d| per class and dimension, side by side
                                          (the paper's sparsity figure, for several settings)
  sweep_figures(sweep, rows, summary, plots_dir)   every figure that applies to a sweep

Every function returns the `Figure` and writes it when `path` is given (atomically; PNG unless
the suffix says otherwise).
"""

import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfdecomp import _io

__all__ = ["aggregate_posterior_grid", "metric_lines", "per_class_heatmaps", "sweep_figures",
           "LABELS"]

#: Readable names of result columns.
LABELS = {
    "sparsity.hoyer": "normalised Hoyer sparsity",
    "likelihood.iwae": "IWAE log-likelihood (nats)",
    "likelihood.elbo": "ELBO (nats)",
    "factor_vae.train_accuracy": "FactorVAE score",
    "factor_vae.eval_accuracy": "FactorVAE score (held-out votes)",
    "test.reconstruction": "reconstruction -log p(x|z) (nats)",
    "clustering.mmd": "MMD(q(z), p(z))",
    "clustering.cluster_accuracy": "cluster accuracy",
    "clustering.nmi": "NMI",
}

_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ"}


def _figure(width, height):
  fig = Figure(figsize=(width, height), dpi=100)
  FigureCanvasAgg(fig)
  return fig


def _maybe_save(fig, path):
  if path is not None:
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1] or ".png"
    with _io.atomic_path(path, suffix=suffix) as tmp:
      fig.savefig(tmp, format=suffix[1:], bbox_inches="tight")
  return fig


def _fmt(value) -> str:
  from tfdecomp.sweeps import format_value  # pylint: disable=g-import-not-at-top
  return format_value(value)


def _setting(name, value) -> str:
  return f"{_GREEK.get(name, name)} = {_fmt(value)}"


def _grid_limits(points, margin=0.1):
  """Square limits covering the 1st-99th percentiles of the points and [-1.3, 1.3]^2."""
  points = points[np.all(np.isfinite(points), axis=1)]
  lo = np.minimum(np.percentile(points, 1, axis=0), -1.3) if len(points) else np.full(2, -1.3)
  hi = np.maximum(np.percentile(points, 99, axis=0), 1.3) if len(points) else np.full(2, 1.3)
  centre, half = (lo + hi) / 2, np.max(hi - lo) / 2 * (1 + margin)
  return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def aggregate_posterior_grid(panels: Dict[tuple, dict], row_values: Sequence, col_values: Sequence,
                             row_axis: Optional[str] = "beta", col_axis: Optional[str] = "alpha",
                             path=None, title: Optional[str] = None, grid_size: int = 100):
  """The aggregate posterior over the prior's density, one panel per (row value, column value).

  Each panel is scaled to its own codes (1st-99th percentiles) and the prior's region.

  Args:
    panels: {(row value, column value): {"loc": E[z|x] [N, 2], "labels": [N] ints or None,
      "prior_log_prob": callable z [M, 2] -> log p(z) [M], or None}}; missing panels are drawn
      empty ("not run").
    row_values, col_values: the values along the rows and the columns (e.g. beta and alpha).
    row_axis, col_axis: their names (None: a single row / column).
    path: optional file to write.
    title: optional figure title.
    grid_size: density grid points per axis.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  row_values, col_values = list(row_values) or [None], list(col_values) or [None]
  cell = 2.5
  fig = _figure(cell * len(col_values) + 0.6, cell * len(row_values) + 0.7)
  for r, row in enumerate(row_values):
    for c, col in enumerate(col_values):
      ax = fig.add_subplot(len(row_values), len(col_values), r * len(col_values) + c + 1)
      panel = panels.get((row, col))
      if panel is None:
        ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes,
                fontsize=8, color="0.4")
        ax.set_xticks([])
        ax.set_yticks([])
      else:
        loc = np.asarray(panel["loc"], np.float64).reshape(-1, 2)
        (x0, x1), (y0, y1) = _grid_limits(loc)
        if panel.get("prior_log_prob") is not None:
          gx, gy = np.meshgrid(np.linspace(x0, x1, grid_size), np.linspace(y0, y1, grid_size))
          grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
          density = np.exp(np.asarray(panel["prior_log_prob"](grid), np.float64))
          ax.contourf(gx, gy, density.reshape(gx.shape), levels=12, cmap="Blues")
        labels = panel.get("labels")
        ax.scatter(loc[:, 0], loc[:, 1], s=3, lw=0, cmap="tab10",
                   c=np.asarray(labels) if labels is not None else "tab:red")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6, length=2, pad=1)
      if r == 0 and col_axis is not None:
        ax.set_title(_setting(col_axis, col), fontsize=9)
      if c == 0 and row_axis is not None:
        ax.set_ylabel(_setting(row_axis, row), fontsize=9)
  fig.suptitle((title or "aggregate posterior over p(z)") + "\nE[z|x] coloured by class over "
               "the prior's density (blue); each panel has its own scale", fontsize=9)
  fig.subplots_adjust(wspace=0.25, hspace=0.2)
  return _maybe_save(fig, path)


def _x_scale(ax, xs):
  positive = [x for x in xs if x > 0]
  if positive and min(xs) >= 0 and max(positive) / min(positive) >= 20:
    if min(xs) == 0:
      ax.set_xscale("symlog", linthresh=min(positive))
    else:
      ax.set_xscale("log")


def metric_lines(summary: List[dict], x_axis: str, columns: Sequence[str],
                 group_axes: Sequence[str] = (), path=None, title: Optional[str] = None,
                 references: Optional[Dict[str, List[Tuple[str, Sequence, Sequence]]]] = None):
  """Metrics against one axis: mean +- std over seeds, one line per value of the other axes.

  Args:
    summary: grid points (`tfdecomp.sweeps.aggregate`).
    x_axis: the axis on the x axis (numeric values); alpha from 0 to 1000 is drawn on a symlog
      scale.
    columns: one panel per column (e.g. "sparsity.hoyer", "likelihood.iwae").
    group_axes: the axes whose values make the lines (e.g. ["beta"]).
    path: optional file to write.
    title: optional figure title.
    references: optional {column: [(label, xs, ys)]} drawn as dashed grey lines (e.g. the
      paper's reported values).

  Returns:
    The `matplotlib.figure.Figure`.
  """
  references = references or {}
  fig = _figure(4.2 * len(columns), 3.4)
  groups: Dict[tuple, List[dict]] = {}
  for entry in summary:
    groups.setdefault(tuple(entry["point"].get(a) for a in group_axes), []).append(entry)
  xs_all = sorted({float(e["point"][x_axis]) for e in summary})
  for i, column in enumerate(columns):
    ax = fig.add_subplot(1, len(columns), i + 1)
    for key, entries in groups.items():
      entries = sorted(entries, key=lambda e: float(e["point"][x_axis]))
      xs = np.array([float(e["point"][x_axis]) for e in entries])
      mean = np.array([e["mean"].get(column, np.nan) for e in entries])
      std = np.array([e["std"].get(column, np.nan) for e in entries])
      keep = np.isfinite(mean)
      if not keep.any():
        continue
      label = ", ".join(_setting(a, v) for a, v in zip(group_axes, key)) or None
      ax.errorbar(xs[keep], mean[keep], yerr=np.where(np.isfinite(std[keep]), std[keep], 0.0),
                  marker="o", ms=4, lw=1.3, capsize=3, label=label)
    for label, rx, ry in references.get(column, []):
      ax.plot(rx, ry, ls="--", marker="x", color="0.45", lw=1.0, label=label)
    _x_scale(ax, xs_all)
    ax.set_xlabel(_GREEK.get(x_axis, x_axis))
    ax.set_ylabel(LABELS.get(column, column), fontsize=9)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7)
  fig.suptitle(title or f"against {x_axis} (mean ± std over seeds)", fontsize=10)
  fig.tight_layout()
  return _maybe_save(fig, path)


def per_class_heatmaps(panels: Sequence[Tuple[str, np.ndarray]],
                       class_names: Optional[Sequence[str]] = None, path=None,
                       title: Optional[str] = None):
  """Average |z_d| per class (rows) and latent dimension (columns), one heatmap per setting.

  Each panel's dimensions are ordered by their mean magnitude over classes, most active first;
  all panels share one colour scale.

  Args:
    panels: [(title, magnitudes [C, D])], e.g. `sparsity.per_class_magnitude` of runs at
      alpha = 0 and alpha = 100.
    class_names: optional C row labels.
    path: optional file to write.
    title: optional figure title.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  matrices = [np.asarray(m, np.float64) for _, m in panels]
  vmax = max([float(np.nanmax(m)) for m in matrices if m.size] + [1e-12])
  num_classes = max(m.shape[0] for m in matrices)
  fig = _figure(max(3.5, 0.09 * max(m.shape[1] for m in matrices) + 1.2) * len(panels),
                0.32 * num_classes + 1.6)
  image = None
  axes = []
  for i, ((name, _), m) in enumerate(zip(panels, matrices)):
    ax = fig.add_subplot(1, len(panels), i + 1)
    axes.append(ax)
    order = np.argsort(-np.nanmean(m, axis=0))
    image = ax.imshow(m[:, order], aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax,
                      interpolation="nearest")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("latent dimension (most active first)", fontsize=8)
    ax.set_yticks(range(m.shape[0]))
    ax.set_yticklabels(list(class_names)[:m.shape[0]] if class_names is not None and i == 0
                       else [str(k) for k in range(m.shape[0])] if i == 0 else [], fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
  if image is not None:
    fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="mean |z_d| per class")
  fig.suptitle(title or "average latent magnitude per class", fontsize=10)
  return _maybe_save(fig, path)


def _file_name(stem: str, point: Dict) -> str:
  from tfdecomp.sweeps import run_name  # pylint: disable=g-import-not-at-top
  suffix = run_name(point, 0)[:-len(",seed=0")] if point else ""
  return f"{stem}{'_' + suffix if suffix else ''}.png"


def _has(summary, column) -> bool:
  return any(math.isfinite(e["mean"].get(column, float("nan"))) for e in summary)


def sweep_figures(sweep, rows: List[dict], summary: List[dict], plots_dir: str, *,
                  data_dir: Optional[str] = None, manual_dir: Optional[str] = None,
                  load_model: Optional[Callable] = None) -> List[str]:
  """Writes the figures that apply to a sweep; returns their paths.

  - 2-D latents with an alpha and/or beta axis: `aggregate_posterior_grid` over beta (rows) x
    alpha (columns) from the first seed's runs, one figure per value of the other axes.
  - an alpha axis, the sparse prior and Hoyer sparsity results: `metric_lines` of Hoyer
    sparsity and the IWAE log-likelihood (else the ELBO) against alpha, one line per value of
    the other axes.
  - a beta axis and FactorVAE results: `metric_lines` of the FactorVAE score and the test-set
    reconstruction against beta, one line per value of the other axes (e.g. the prior).

  Args:
    sweep: the `tfdecomp.sweeps.Sweep`.
    rows: its results rows (`tfdecomp.sweeps.read_run`).
    summary: the grid points (`tfdecomp.sweeps.aggregate`).
    plots_dir: where to write.
    data_dir, manual_dir: where the evaluation examples of the aggregate posterior are.
    load_model: run directory -> model (default `tfdecomp.runs.load_run`).
  """
  written = []
  counts = {a.name: len(a.values) for a in sweep.axes}
  names = [a.name for a in sweep.axes]

  def varied(exclude):
    return [n for n in names if n not in exclude and counts[n] > 1]

  grid_axes = [a for a in ("beta", "alpha") if a in counts]
  if grid_axes and sweep.runs and all(s.config.latent_dim == 2 for s in sweep.runs):
    written += _posterior_grids(sweep, rows, plots_dir, data_dir, manual_dir, load_model)
  sparse = any(s.config.prior == "sparse" for s in sweep.runs)
  if counts.get("alpha", 0) > 1 and sparse and _has(summary, "sparsity.hoyer"):
    second = next((c for c in ("likelihood.iwae", "likelihood.elbo") if _has(summary, c)), None)
    path = os.path.join(plots_dir, "sparsity_vs_alpha.png")
    metric_lines(summary, "alpha", ["sparsity.hoyer"] + ([second] if second else []),
                 varied(["alpha"]), path=path,
                 title=f"{sweep.experiment}: sparsity and likelihood against α "
                       "(mean ± std over seeds)")
    written.append(path)
  if counts.get("beta", 0) > 1 and _has(summary, "factor_vae.train_accuracy"):
    path = os.path.join(plots_dir, "factor_vae_vs_beta.png")
    metric_lines(summary, "beta", ["factor_vae.train_accuracy", "test.reconstruction"],
                 varied(["beta"]), path=path,
                 title=f"{sweep.experiment}: FactorVAE score and reconstruction against β "
                       "(mean ± std over seeds)")
    written.append(path)
  return written


def _posterior_grids(sweep, rows, plots_dir, data_dir, manual_dir, load_model):
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  from tfdecomp import runs  # pylint: disable=g-import-not-at-top
  load_model = load_model or (lambda path: runs.load_run(path)[0])
  row_axis = "beta" if any(a.name == "beta" for a in sweep.axes) else None
  col_axis = "alpha" if any(a.name == "alpha" for a in sweep.axes) else None
  values = {a.name: list(a.values) for a in sweep.axes}
  others = [a.name for a in sweep.axes if a.name not in ("alpha", "beta")]
  first_seed = sweep.seeds[0]
  cache = {}
  figures: Dict[tuple, dict] = {}
  for spec, row in zip(sweep.runs, rows):
    if spec.seed != first_seed or row.get("status") not in ("trained", "done"):
      continue
    config = spec.config
    if config.dataset_name not in cache:
      cache[config.dataset_name] = data.load_arrays(
          config.dataset_name, config.eval_split, max_examples=2000, data_dir=data_dir,
          manual_dir=manual_dir)
    x, labels = cache[config.dataset_name]
    model = load_model(spec.path)
    loc, _ = model.encode(np.asarray(x, np.float32), batch_size=500)
    prior = model.prior
    key = tuple(spec.point[o] for o in others)
    cell = (spec.point.get(row_axis) if row_axis else None,
            spec.point.get(col_axis) if col_axis else None)
    figures.setdefault(key, {})[cell] = {
        "loc": np.asarray(loc),
        "labels": labels if labels is not None and np.ndim(labels) == 1 else None,
        "prior_log_prob": lambda z, p=prior: p.log_prob(z).numpy()}
  written = []
  for key, panels in figures.items():
    point = dict(zip(others, key))
    path = os.path.join(plots_dir, _file_name("aggregate_posterior_grid", point))
    where = ", ".join(_setting(k, v) for k, v in point.items())
    aggregate_posterior_grid(
        panels, values.get(row_axis, [None]), values.get(col_axis, [None]), row_axis, col_axis,
        path=path, title=f"{sweep.experiment}: aggregate posterior over p(z), seed {first_seed}"
                         + (f" ({where})" if where else ""))
    written.append(path)
  return written
