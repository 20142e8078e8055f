"""Seconds per disentanglement metric, tfdecomp vs disentanglement_lib, at default sample sizes.

Runs every supervised metric of `tfdecomp.metrics` on a 10-d representation of dSprites-sized
data and, when disentanglement_lib's metric code is importable, the reference implementation on
the same representation, printing seconds and values side by side.

Data variants (`--data`):
  standin   observations are the factor values themselves (grid 3 x 6 x 40 x 32 x 32) and the
            representation is a fixed random linear-nonlinear map of them: measures metric code.
  dsprites  procedural dSprites images (tfdecomp.data.ground_truth, rendered) and a fixed
            linear-nonlinear map of image moments: includes rendering and encoding costs.

disentanglement_lib (Locatello et al. 2019) is not a dependency. To compare against it:
  pip download --no-deps disentanglement-lib && unzip disentanglement_lib-1.5-py3-none-any.whl \
      -d /tmp/dlib_src
  python benchmarks/metrics_speed.py --reference_path /tmp/dlib_src
Its metric modules import `gin.tf`, which no longer imports under TF 2.16+; the benchmark installs a
stand-in `gin` module whose `configurable` is the identity and binds the study's gin settings
(unsupervised_study_v1/metric_configs) by hand: histogram discretiser with 20 bins, prune
threshold 0.05, and the num_train/num_eval/num_test/batch_size arguments below.

Measured on the 2-core machine (2026-11-26, idle but about 2x slower than on 2026-11-24: the
reference's DCI took 238 s then), `--spread_seeds 4`, seconds ours/reference:
  standin:  FactorVAE 0.91/4.87, beta-VAE 1.66/6.67, MIG 0.02/0.47, DCI 35.0/460 (one thread;
    16.9 with two), SAP 1.33/2.07, modularity 2.26/3.00; total 41/477 s (11.6x; 21x with DCI on
    two threads).
  dsprites: FactorVAE 7.6/9.3, beta-VAE 12.4/18.9 (both mostly rendering ~1M images), MIG
    0.10/0.40, DCI 34.7/448 (19.8 with two threads), SAP 1.66/1.89, modularity 3.09/3.83;
    total 60/482 s (8.1x; 10.8x with DCI on two threads).
Values agree within sampling noise, e.g. standin DCI disentanglement/completeness/test accuracy
0.555+-0.002 / 0.525+-0.002 / 0.570+-0.001 over four of our seeds against the reference's 0.555 /
0.524 / 0.566; MIG 0.420+-0.002 vs 0.420; SAP 0.130+-0.001 vs 0.131; modularity 0.946+-0.002 vs
0.947. On the very same 10,000 + 5,000 codes, DCI with scikit-learn's classifier (random
states 0, 1) gave D 0.552-0.553, C 0.523, test accuracy 0.568-0.571; ours (random states 0-2)
D 0.552-0.553, C 0.523, test accuracy 0.568-0.569.
"""

import argparse
import functools
import importlib
import sys
import time
import types

import numpy as np
import threadpoolctl

from tfdecomp import metrics
from tfdecomp.metrics import gbt
from tfdecomp.ground_truth import GroundTruthData

FACTOR_SIZES = (3, 6, 40, 32, 32)


class StandInDSprites(GroundTruthData):
  """dSprites' factor grid whose observations are the (float) factor values."""

  factor_names = ("shape", "scale", "orientation", "x_position", "y_position")
  factor_sizes = FACTOR_SIZES
  observation_shape = (5,)

  def sample_observations_from_factors(self, factors, rng):
    del rng
    return np.asarray(factors, dtype=np.float32)


def standin_representation(seed=0):
  """Fixed map factors -> 10-d codes: mostly axis-aligned, with mixing and a nonlinearity."""
  gen = np.random.default_rng(seed)
  mixing = 0.3 * gen.normal(size=(5, 10))
  mixing[:, :5] += 2.0 * np.eye(5)
  sizes = np.asarray(FACTOR_SIZES, dtype=np.float64)
  wobble = gen.normal(size=(5, 10))

  def representation_fn(observations):
    x = (np.asarray(observations, np.float64) + 0.5) / sizes - 0.5
    return np.tanh(x @ mixing) + 0.05 * np.sin(37.0 * (x @ wobble))

  return representation_fn


def dsprites_representation(seed=0):
  """Fixed map images -> 10-d codes: one linear layer of image moments, mixed, then tanh.

  The moments (mass, centroid, second moments) are a [4096, 6] matrix product, so the map costs
  about as much per image as a small encoder's first layer.
  """
  gen = np.random.default_rng(seed)
  mixing = 0.3 * gen.normal(size=(6, 10))
  mixing[:, :6] += 2.0 * np.eye(6)
  grid = (np.arange(64) - 31.5) / 32.0
  rows, cols = np.meshgrid(grid, grid, indexing="ij")
  moments = np.stack([np.ones_like(rows), cols, rows, cols**2, rows**2, rows * cols],
                     axis=-1).reshape(4096, 6).astype(np.float32)

  def representation_fn(observations):
    m = np.asarray(observations, np.float32).reshape(-1, 4096) @ moments
    mass = m[:, 0] + 1e-6
    cx, cy = m[:, 1] / mass, m[:, 2] / mass
    cxx, cyy = m[:, 3] / mass - cx**2, m[:, 4] / mass - cy**2
    cxy = m[:, 5] / mass - cx * cy
    feats = np.stack([mass / 500.0, cx, cy, 5 * cxx, 5 * cyy, 20 * cxy], axis=1)
    return np.tanh(feats.astype(np.float64) @ mixing)

  return representation_fn


class _ReferenceAdapter:
  """Our GroundTruthData seen through disentanglement_lib's RandomState-based interface."""

  def __init__(self, data):
    self.data = data
    self.num_factors = data.num_factors
    self.factors_num_values = list(data.factor_sizes)

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(size, size=num) for size in self.data.factor_sizes],
                    axis=1)

  def sample_observations_from_factors(self, factors, random_state):
    return self.data.sample_observations_from_factors(
        factors, np.random.default_rng(random_state.randint(2**31 - 1)))

  def sample(self, num, random_state):
    factors = self.sample_factors(num, random_state)
    return factors, self.sample_observations_from_factors(factors, random_state)

  def sample_observations(self, num, random_state):
    return self.sample(num, random_state)[1]


def load_reference(path):
  """disentanglement_lib's metric modules with the study's gin bindings, or None."""
  if path:
    sys.path.insert(0, path)
  gin = types.ModuleType("gin")
  gin.REQUIRED = object()
  gin.configurable = lambda *args, **kwargs: (lambda fn: fn)
  gin.tf = gin
  saved = {name: sys.modules.get(name) for name in ("gin", "gin.tf")}
  sys.modules["gin"] = gin
  sys.modules["gin.tf"] = gin
  try:
    mods = {name: importlib.import_module(f"disentanglement_lib.evaluation.metrics.{name}")
            for name in ("utils", "factor_vae", "beta_vae", "mig", "dci", "sap_score",
                         "modularity_explicitness")}
  except ImportError as e:
    print(f"disentanglement_lib not importable ({e}); reference columns skipped.")
    return None
  finally:
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = module
  # pylint: disable=protected-access
  utils = mods["utils"]
  utils.make_discretizer = lambda target: utils._histogram_discretize(target, 20)
  fv = mods["factor_vae"]
  fv._prune_dims = functools.partial(fv._prune_dims, threshold=0.05)
  # pylint: enable=protected-access
  return mods


def reference_metrics(mods):
  """Name -> callable(ground_truth, representation_fn, random_state) with the study's settings."""
  return {
      "factor_vae": lambda d, f, r: mods["factor_vae"].compute_factor_vae(
          d, f, r, batch_size=64, num_train=10000, num_eval=5000, num_variance_estimate=10000),
      "beta_vae": lambda d, f, r: mods["beta_vae"].compute_beta_vae_sklearn(
          d, f, r, batch_size=64, num_train=10000, num_eval=5000),
      "mig": lambda d, f, r: mods["mig"].compute_mig(d, f, r, num_train=10000),
      "dci": lambda d, f, r: mods["dci"].compute_dci(d, f, r, num_train=10000, num_test=5000),
      "sap": lambda d, f, r: mods["sap_score"].compute_sap(
          d, f, r, num_train=10000, num_test=5000, continuous_factors=False),
      "modularity_explicitness": lambda d, f, r: mods[
          "modularity_explicitness"].compute_modularity_explicitness(
              d, f, r, num_train=10000, num_test=5000),
  }


def ours(dci_estimator, dci_threads):
  fns = dict(metrics.DISENTANGLEMENT_METRICS)
  fns["dci"] = functools.partial(metrics.dci, estimator=dci_estimator, num_threads=dci_threads)
  return fns


def _fmt(values):
  return ", ".join(f"{k}={v:.3f}" for k, v in sorted(values.items()) if k != "num_active_dims")


def seed_spread(data, representation_fn, names, seeds):
  """Our metrics (default settings) over several seeds: the sampling noise of each value."""
  print(f"sampling noise of ours over seeds {list(seeds)} (mean +- std):")
  for name in names:
    values = [metrics.DISENTANGLEMENT_METRICS[name](data, representation_fn, seed=s)
              for s in seeds]
    text = ", ".join(f"{k}={np.mean([v[k] for v in values]):.3f}+-"
                     f"{np.std([v[k] for v in values], ddof=1):.3f}"
                     for k in sorted(values[0]) if k != "num_active_dims")
    print(f"  {name:24s} {text}", flush=True)


def run(data_name, names, reference, seed, dci_estimators, dci_threads, spread_seeds=0):
  if data_name == "standin":
    data, representation_fn = StandInDSprites(), standin_representation()
  else:
    from tfdecomp import data as tfdecomp_data  # pylint: disable=g-import-not-at-top
    data = tfdecomp_data.ground_truth("dsprites", config="full", source="render")
    representation_fn = dsprites_representation()
  print(f"\n=== data: {data_name}  (grid {list(data.factor_sizes)}, 10-d codes, seed {seed})")
  totals = {"ours": 0.0, "reference": 0.0}
  rows = []
  # Numba compiles (or loads from its cache) DCI's boosted trees on first use: not timed.
  start = time.perf_counter()
  gbt.GradientBoostedTrees(num_stages=1).fit(np.arange(8.0).reshape(4, 2), [0, 1, 2, 0])
  print(f"(compiled code loaded in {time.perf_counter() - start:.1f} s, not counted)")
  for name in names:
    variants = [(e, t) for e in dci_estimators for t in dci_threads] if name == "dci" else [None]
    for variant in variants:
      label = name if variant is None else f"dci[{variant[0]}, {variant[1]} thr]"
      fn = ours(*(variant or (dci_estimators[0], dci_threads[0])))[name]
      start = time.perf_counter()
      value = fn(data, representation_fn, seed=seed)
      seconds = time.perf_counter() - start
      if variant in (None, (dci_estimators[0], dci_threads[0])):
        totals["ours"] += seconds
      rows.append((label, "ours", seconds, value))
      print(f"{label:26s} ours      {seconds:8.2f} s  {_fmt(value)}", flush=True)
    if reference is not None:
      start = time.perf_counter()
      value = reference[name](_ReferenceAdapter(data), representation_fn,
                              np.random.RandomState(seed))
      seconds = time.perf_counter() - start
      totals["reference"] += seconds
      rows.append((name, "reference", seconds, value))
      print(f"{name:26s} reference {seconds:8.2f} s  {_fmt(value)}", flush=True)
  line = f"total ours {totals['ours']:.2f} s (dci[{dci_estimators[0]}, {dci_threads[0]} thr])"
  if reference is not None:
    line += (f", reference {totals['reference']:.2f} s, "
             f"speed-up {totals['reference'] / totals['ours']:.1f}x")
  print(line)
  if spread_seeds > 1:
    seed_spread(data, representation_fn, names, range(seed, seed + spread_seeds))
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="standin,dsprites",
                      help="comma list of standin, dsprites")
  parser.add_argument("--metrics", default=",".join(metrics.DISENTANGLEMENT_METRICS))
  parser.add_argument("--reference_path", default=None,
                      help="directory holding the disentanglement_lib package (unzipped wheel)")
  parser.add_argument("--no_reference", action="store_true")
  parser.add_argument("--dci_estimators", default="gbt",
                      help="our DCI estimators to time (gbt, sklearn); the first counts in the "
                           "total")
  parser.add_argument("--dci_threads", default="1,2",
                      help="threads (factors fitted at once) for our DCI; the first counts in "
                           "the total (the reference fits one factor at a time)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--blas_threads", type=int, default=1,
                      help="BLAS/OpenMP threads for the whole run (both implementations); 1 "
                           "avoids thread thrashing on small matrix products on a shared CPU")
  parser.add_argument("--spread_seeds", type=int, default=0,
                      help="also run ours with this many seeds and print mean +- std")
  args = parser.parse_args(argv)
  reference = None
  if not args.no_reference:
    mods = load_reference(args.reference_path)
    reference = reference_metrics(mods) if mods is not None else None
  names = [n for n in args.metrics.split(",") if n]
  if args.blas_threads > 0:
    threadpoolctl.threadpool_limits(limits=args.blas_threads)
  for data_name in args.data.split(","):
    try:
      run(data_name, names, reference, args.seed, args.dci_estimators.split(","),
          [int(t) for t in args.dci_threads.split(",")], args.spread_seeds)
    except ImportError as e:
      print(f"data {data_name!r} unavailable: {e}")


if __name__ == "__main__":
  main()
