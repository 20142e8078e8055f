"""The evaluation suite: which metrics apply to a model and data set, and running them.

Works with anything that offers `encode(x, batch_size) -> (loc, scale)`, `likelihood_fn(z)` and
`prior` — a trained `tfdecomp.DecompVAE` or a SavedModel loaded with `savedmodels.load`.

Metric groups:
  disentanglement  factor_vae, beta_vae, mig, dci, sap, modularity_explicitness — when the data set
                   has ground-truth factors (our dSprites, or any TFDS data set with `label_*`
                   ClassLabel features, e.g. TFDS's own `dsprites` or `shapes3d`, when prepared).
  sparsity         normalised Hoyer of the encoder means, and per-class average magnitude.
  clustering       for mixture priors with class labels: matched accuracy, NMI, MMD(q(z), p(z)).
  likelihood       ELBO terms and the IWAE bound on log p(x) (K = 1000 by default).

For a Student-t prior, codes are mapped through the prior's CDF and the standard Normal inverse
CDF before the disentanglement and sparsity metrics (Mathieu et al., 2019), unless turned off.
"""

import json
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from tfdecomp import ground_truth as ground_truth_lib
from tfdecomp import priors as priors_lib

__all__ = ["METRICS", "DISENTANGLEMENT", "EncodedGroundTruth", "applicable_metrics",
           "discover_ground_truth", "encoder_means", "representation_function", "evaluate",
           "evaluate_dataset", "model_input_shape", "export_results_path", "IncompleteGrid"]

DISENTANGLEMENT = ("factor_vae", "beta_vae", "mig", "dci", "sap", "modularity_explicitness")
METRICS = DISENTANGLEMENT + ("sparsity", "clustering", "likelihood")

def discover_ground_truth(dataset: str, split: str = "train", config: Optional[str] = None,
                          data_dir: Optional[str] = None, manual_dir: Optional[str] = None,
                          download: bool = False, batch_size: int = 4096
                          ) -> Optional[ground_truth_lib.GroundTruthData]:
  """Factor-indexed access to a data set, or None when it has no ground-truth factors.

  A registered data set uses its declared `ground_truth` (dSprites: renderer or official npz,
  config full or small) or has none. Any other TFDS data set is inspected for `label_*`
  ClassLabel features (the factors, with their class counts as sizes; e.g. TFDS's `dsprites`:
  label_shape, label_scale, ...; `shapes3d`: label_floor_hue, ...); if it has some, its split is
  streamed in batches of `batch_size` into a factor grid, images scaled to [0, 1] (uint8 images
  with values above 1 are divided by 255). Every factor combination must be observed; one
  observed several times is sampled uniformly among its examples
  (`ground_truth.RepeatedGridGroundTruthData`).

  Raises:
    ValueError: when some factor combination has no example (the message says how many do), or
      the data set is not prepared and `download` is False (`tfdecomp.data.DataError`).
  """
  from tfdecomp import data  # pylint: disable=g-import-not-at-top  (TFDS)
  from tfdecomp import datasets  # pylint: disable=g-import-not-at-top
  spec, config = data.resolve(dataset, config)
  if spec.name in datasets.REGISTRY:
    if spec.ground_truth is None:
      return None
    return data.ground_truth(spec.name, config=config, data_dir=data_dir, manual_dir=manual_dir)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = data.prepared_builder(spec.builder, config, data_dir, manual_dir, download)
  features = builder.info.features
  factor_names = [k for k in features.keys() if k.startswith("label_") and isinstance(
      features[k], tfds.features.ClassLabel)]
  if not factor_names:
    return None
  image = spec.feature

  def select(example):
    return (tf.stack([tf.cast(example[k], tf.int64) for k in factor_names], axis=-1),
            example[image])

  ds = builder.as_dataset(split=split, shuffle_files=False).map(select).batch(batch_size)
  factors, images = [], []
  for f, x in tfds.as_numpy(ds):
    factors.append(f)
    images.append(x)
  if not factors:
    raise data.DataError(f"split {split!r} of {dataset!r} has no examples.")
  factors, images = np.concatenate(factors), np.concatenate(images)
  # dSprites stores binary pixels as uint8 0/1, Shapes3D as 0..255: scale only the latter.
  scale = 255.0 if images.dtype == np.uint8 and images.max() > 1 else 1.0
  try:
    return ground_truth_lib.GridGroundTruthData.from_examples(
        [k[len("label_"):] for k in factor_names], [features[k].num_classes for k in factor_names],
        factors, images, decode=lambda rows: rows.astype(np.float32) / scale)
  except ValueError as e:
    raise IncompleteGrid(f"{dataset} {split}: {e}") from None


class IncompleteGrid(ValueError):
  """The factor combinations observed in a data set are not the full grid."""


class EncodedGroundTruth(ground_truth_lib.GroundTruthData):
  """A factor grid whose observations are replaced by their codes, each computed once.

  The disentanglement metrics' default sample sizes encode about two million observations, but
  dSprites has only 737,280 distinct ones (one per factor tuple): encoding the grid once and
  looking codes up makes every metric run at NumPy speed. Only valid for data sets with one
  deterministic observation per factor tuple (our dSprites, `GridGroundTruthData`).

  The grid is encoded in row-major order, `batch_size` observations per call of
  `representation_fn`; dSprites' uint8 images are converted into one reused float32 buffer
  (a fresh 64 MB array per batch costs more in page faults than the conversion itself).
  A progress bar with an ETA is shown on stderr when encoding takes more than a few seconds.

  Args:
    ground_truth: the data set.
    representation_fn: observations [B, ...] float32 -> codes [B, D].
    batch_size: observations encoded per call.
    quiet: show no progress bar.
  """

  def __init__(self, ground_truth, representation_fn, batch_size: int = 4096,
               quiet: bool = False):
    from tfdecomp import progress as progress_lib  # pylint: disable=g-import-not-at-top
    self._source = ground_truth
    rng = np.random.default_rng(0)  # Unused by deterministic grids.
    total = ground_truth.num_examples
    images = _uint8_images(ground_truth)
    buffer = None
    self.codes = None
    with progress_lib.Progress(f"encoding {total} factor combinations", total,
                               quiet=quiet) as bar:
      for start in range(0, total, batch_size):
        index = np.arange(start, min(start + batch_size, total))
        if images is not None:
          if buffer is None:
            buffer = np.empty((batch_size,) + tuple(ground_truth.observation_shape), np.float32)
          observations = buffer[:len(index)]
          np.copyto(observations, images(index), casting="unsafe")
        else:
          observations = ground_truth.sample_observations_from_factors(
              ground_truth.index_to_factors(index), rng)
        codes = np.asarray(representation_fn(observations), np.float64)
        if self.codes is None:
          self.codes = np.empty((total,) + codes.shape[1:], np.float64)
        self.codes[index[0]:index[-1] + 1] = codes
        bar.update(index[-1] + 1)

  @property
  def factor_names(self):
    return self._source.factor_names

  @property
  def factor_sizes(self):
    return self._source.factor_sizes

  @property
  def observation_shape(self):
    return self.codes.shape[1:]

  def sample_observations_from_factors(self, factors, rng=None):
    del rng
    return self.codes[self.factors_to_index(factors)]


def _is_deterministic_grid(ground_truth) -> bool:
  from tfdecomp.datasets.decomp_dsprites.ground_truth import RenderedDSprites  # pylint: disable=g-import-not-at-top
  return isinstance(ground_truth, (ground_truth_lib.GridGroundTruthData, RenderedDSprites))


def _student_t_map(prior) -> Optional[Callable[[np.ndarray], np.ndarray]]:
  if not isinstance(prior, priors_lib.StudentT):
    return None
  from tfdecomp.metrics import student_t_to_normal  # pylint: disable=g-import-not-at-top
  df, scales = prior.df, prior.scales.numpy()
  return lambda codes: student_t_to_normal(codes, df, scale=scales)


def _uint8_images(ground_truth) -> Optional[Callable[[np.ndarray], np.ndarray]]:
  """dSprites' `images(index)`: uint8 images whose float32 values are the observations."""
  from tfdecomp.datasets.decomp_dsprites import ground_truth as dsprites  # pylint: disable=g-import-not-at-top
  if isinstance(ground_truth, (dsprites.RenderedDSprites, dsprites.PackedDSprites)):
    return ground_truth.images
  return None


def encoder_means(model, batch_size: int = 2048) -> Callable[[np.ndarray], np.ndarray]:
  """Observations [N, ...] -> encoder means float32 [N, D], in compiled steps of `batch_size`.

  For a `DecompVAE` the encoder runs in one `tf.function` (no XLA: for the conv64 encoder
  oneDNN's convolutions were 1.4x faster than XLA's here) that takes any numeric dtype and casts
  to float32 inside the graph; batches of 2048 ran at ~90% of the speed of batches of 8192 with
  a quarter of the memory. Other models (a loaded export, whose `encode` is already a compiled
  concrete function) use their `encode`.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  encoder = getattr(model, "encoder", None)
  if not isinstance(encoder, keras.Model):
    return lambda x: np.asarray(model.encode(np.asarray(x, np.float32),
                                             batch_size=batch_size)[0])

  @tf.function(reduce_retracing=True)
  def loc_of(x):
    return encoder(tf.cast(x, tf.float32), training=False)[0]

  def means(x):
    x = np.asarray(x)
    if len(x) == 0:
      return np.asarray(model.encode(x.astype(np.float32))[0])
    return np.concatenate([loc_of(x[i:i + batch_size]).numpy()
                           for i in range(0, len(x), batch_size)])

  return means


def representation_function(model, student_t_mapping: bool = True,
                            batch_size: int = 2048) -> Callable[[np.ndarray], np.ndarray]:
  """Observations [N, ...] -> codes [N, D]: encoder means (Student-t-mapped when it applies).

  The means come from `encoder_means` (compiled steps of `batch_size`).
  """
  mapping = _student_t_map(model.prior) if student_t_mapping else None
  means = encoder_means(model, batch_size)

  def represent(x):
    codes = np.asarray(means(x), np.float64)
    return mapping(codes) if mapping is not None else codes

  return represent


def applicable_metrics(model, labels: Optional[np.ndarray],
                       has_ground_truth: bool) -> Sequence[str]:
  """The default metric list: those that make sense for this model and data set."""
  names = list(DISENTANGLEMENT) if has_ground_truth else []
  names.append("sparsity")
  if isinstance(model.prior, priors_lib.Mixture) and labels is not None and np.ndim(labels) == 1:
    names.append("clustering")
  names.append("likelihood")
  return names


def _class_labels(labels):
  """1-D integer class labels, or None (dSprites' labels are a factor matrix)."""
  if labels is None or np.ndim(labels) != 1:
    return None
  return np.asarray(labels).astype(np.int64)


def evaluate(model, x, labels=None, metrics: Optional[Sequence[str]] = None,
             ground_truth: Optional[ground_truth_lib.GroundTruthData] = None, seed: int = 0,
             student_t_mapping: bool = True, iwae_samples: int = 1000,
             likelihood_examples: Optional[int] = None, metric_args: Optional[dict] = None,
             cache_codes: bool = True, max_cached_codes: int = 2_000_000,
             progress: Optional[Callable[[str], None]] = None,
             quiet: bool = False) -> Dict[str, dict]:
  """Runs the metrics on a model.

  Encoding the factor grid and the IWAE estimate run in compiled large-batch steps and show a
  progress bar with an ETA on stderr when they take more than a few seconds (`quiet` hides it).

  Args:
    model: a `DecompVAE` or a loaded export (see module docstring).
    x: float32 [N, ...] evaluation examples (sparsity, clustering, likelihood).
    labels: [N] class labels (or [N, K] factors; then no class-based metrics), optional.
    metrics: names from `METRICS`; None = `applicable_metrics`.
    ground_truth: factor access for the disentanglement metrics.
    seed: seed of every metric's sampling.
    student_t_mapping: map Student-t codes to Normal ones first (Student-t priors only).
    iwae_samples: K of the IWAE bound (0 skips it).
    likelihood_examples: evaluate the likelihood on the first this many examples (None = all).
    metric_args: per-metric keyword arguments, e.g. {"factor_vae": {"num_train": 1000}}.
    cache_codes: encode a deterministic factor grid once (`EncodedGroundTruth`) instead of
      encoding every sampled observation; same results, far faster.
    max_cached_codes: largest grid to cache.
    progress: optional callable receiving one line per finished stage and metric, with its
      wall time in seconds.
    quiet: show no progress bars.

  Returns:
    {metric name: {result keys...: values, "seconds": wall time}}.

  Raises:
    ValueError: for an unknown metric, or a disentanglement metric without ground truth.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfdecomp import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  metric_args = dict(metric_args or {})
  class_labels = _class_labels(labels)
  if metrics is None:
    metrics = applicable_metrics(model, class_labels, ground_truth is not None)
  unknown = sorted(set(metrics) - set(METRICS))
  if unknown:
    raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}.")
  unknown_args = sorted(set(metric_args) - set(METRICS))
  if unknown_args:
    raise ValueError(f"metric_args names unknown metrics {unknown_args}.")
  if ground_truth is None and any(m in DISENTANGLEMENT for m in metrics):
    raise ValueError("the disentanglement metrics need a data set with ground-truth factors "
                     "(e.g. dsprites).")
  represent = representation_function(model, student_t_mapping)
  results = {}
  codes = None
  encoded = None
  for name in metrics:
    start = time.perf_counter()
    kwargs = metric_args.get(name, {})
    if name in DISENTANGLEMENT:
      if encoded is None:
        if cache_codes and _is_deterministic_grid(ground_truth) and (
            ground_truth.num_examples <= max_cached_codes):
          encoded = (EncodedGroundTruth(ground_truth, represent, quiet=quiet), _identity)
          if progress is not None:
            progress(f"encoded the {ground_truth.num_examples} factor combinations "
                     f"({time.perf_counter() - start:.1f}s)")
          start = time.perf_counter()
        else:
          encoded = (ground_truth, represent)
      result = metrics_lib.DISENTANGLEMENT_METRICS[name](encoded[0], encoded[1], seed=seed,
                                                         **kwargs)
    elif name == "sparsity":
      codes = represent(x) if codes is None else codes
      result = metrics_lib.sparsity_scores(codes, class_labels, **kwargs)
    elif name == "clustering":
      if class_labels is None:
        raise ValueError("the clustering metrics need class labels.")
      loc, scale = model.encode(np.asarray(x, np.float32), batch_size=1024)
      rng = np.random.default_rng(seed)
      samples = np.asarray(loc) + np.asarray(scale) * rng.standard_normal(np.shape(loc))
      result = metrics_lib.clustering_scores(np.asarray(loc), class_labels, model.prior,
                                             posterior_samples=samples, seed=seed, **kwargs)
    else:  # likelihood
      subset = x if likelihood_examples is None else x[:likelihood_examples]
      # The IWAE decodes chunk_size x batch latents at once: small batches for images.
      batch = 256 if np.prod(np.shape(subset)[1:]) <= 64 else 32
      batches = [subset[i:i + batch] for i in range(0, len(subset), batch)]
      kwargs.setdefault("quiet", quiet)
      result = metrics_lib.likelihood_scores(
          batches, lambda b: model.encode(tf.convert_to_tensor(b, tf.float32)),
          model.likelihood_fn, model.prior, num_importance_samples=iwae_samples, seed=seed,
          **kwargs)
    result = json.loads(json.dumps(result, default=_to_json))
    result["seconds"] = round(time.perf_counter() - start, 3)
    results[name] = result
    if progress is not None:
      progress(f"{name}: {_summary(result)} ({result['seconds']:.1f}s)")
  return results


def _identity(codes):
  return np.asarray(codes, np.float64)


def _to_json(value):
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if hasattr(value, "numpy"):
    return _to_json(value.numpy())
  raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _summary(result: dict) -> str:
  scalars = [(k, v) for k, v in result.items() if isinstance(v, (int, float)) and k != "seconds"]
  return ", ".join(f"{k} {v:.4g}" for k, v in scalars)


def model_input_shape(model) -> tuple:
  """The shape of one example a model (a `DecompVAE` or a loaded export) takes."""
  if hasattr(model, "input_shape") and not hasattr(model, "encoder"):
    return tuple(model.input_shape)
  return tuple(int(d) for d in model.encoder.inputs[0].shape[1:])


def evaluate_dataset(model, dataset: str, *, split: Optional[str] = None,
                     dataset_config: Optional[str] = None, metrics: Optional[Sequence[str]] = None,
                     seed: int = 0, max_examples: int = 10000, likelihood_examples: int = 1000,
                     iwae_samples: int = 1000, student_t_mapping: bool = True,
                     metric_args: Optional[dict] = None, data_dir: Optional[str] = None,
                     manual_dir: Optional[str] = None, download: bool = False,
                     progress: Optional[Callable[[str], None]] = None) -> dict:
  """Loads a data set's evaluation examples (and ground truth) and runs `evaluate` on them.

  The model's input shape is checked against the data set's examples before anything is loaded
  (for registered data sets; after loading for others).

  Args:
    model: a `DecompVAE` or a loaded export.
    dataset: a data set name (`tfdecomp.data.resolve`; `NAME/CONFIG` allowed).
    split: the split (default: the data set's evaluation split).
    dataset_config: builder config (e.g. "small" for dSprites' factor grid).
    metrics, seed, iwae_samples, student_t_mapping, metric_args, progress: see `evaluate`.
    max_examples: evaluation examples for sparsity, clustering and the likelihood pool.
    likelihood_examples: examples for the ELBO/IWAE estimates.
    data_dir, manual_dir: see `tfdecomp.data`.
    download: let TFDS download and prepare an external data set that is not prepared.

  With the default metrics, a data set whose factors do not form a full grid is evaluated without
  the disentanglement metrics (`progress` says why); asking for one of them raises.

  Returns:
    {"results": {metric: {...}}, "arguments": {every argument, the examples used}}.

  Raises:
    ValueError: for a model that cannot take the data set's examples, an unknown metric, a
      disentanglement metric on a data set without factors, or data that cannot be loaded.
  """
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  spec, config = data.resolve(dataset, dataset_config)
  split = split or spec.eval_split
  want = model_input_shape(model)
  if spec.example_shape and tuple(spec.example_shape) != want:
    raise ValueError(f"the model takes examples of shape {list(want)}, but {dataset} examples "
                     f"have shape {list(spec.example_shape)}: evaluate it on the data set it "
                     "was trained on.")
  if metrics is not None:
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
      raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}.")
  kwargs = {"config": config, "data_dir": data_dir, "manual_dir": manual_dir}
  if download:
    kwargs["download"] = True
  x, labels = data.load_arrays(dataset, split, max_examples=max_examples, **kwargs)
  if tuple(x.shape[1:]) != want:
    raise ValueError(f"the model takes examples of shape {list(want)}, but {dataset} examples "
                     f"have shape {list(x.shape[1:])}.")
  ground_truth = None
  if metrics is None or any(m in DISENTANGLEMENT for m in metrics):
    try:
      ground_truth = discover_ground_truth(dataset, split, config, data_dir, manual_dir,
                                           download)
    except IncompleteGrid as e:
      if metrics is not None:
        raise ValueError(f"{e} Choose --metrics without {', '.join(DISENTANGLEMENT)}.") from None
      if progress is not None:
        progress(f"{e} Skipping the disentanglement metrics.")
  if progress is not None:
    progress(f"{dataset} {split}: {len(x)} examples"
             + (f", ground truth {len(ground_truth.factor_sizes)} factors"
                if ground_truth is not None else ""))
  results = evaluate(model, x, labels, metrics=metrics, ground_truth=ground_truth, seed=seed,
                     student_t_mapping=student_t_mapping, iwae_samples=iwae_samples,
                     likelihood_examples=likelihood_examples, metric_args=metric_args,
                     progress=progress)
  arguments = {"dataset": dataset, "dataset_config": config, "split": split, "seed": seed,
               "examples": int(len(x)), "likelihood_examples": likelihood_examples,
               "iwae_samples": iwae_samples, "student_t_mapping": student_t_mapping,
               "metric_args": dict(metric_args or {})}
  return {"results": results, "arguments": arguments}


def export_results_path(savedmodel: str) -> str:
  """Where the evaluation of an export goes by default: `<export>.metrics.json`, beside it.

  An export is an artefact servers watch; evaluation never writes into it.
  """
  import os  # pylint: disable=g-import-not-at-top
  return os.path.normpath(os.fspath(savedmodel)) + ".metrics.json"
