"""Input pipelines and ground-truth factor access for tfdecomp's data sets.

What each short name loads is declared in its folder (`tfdecomp.datasets.REGISTRY`, a
`DatasetSpec` each); nothing here branches on data-set names, and nothing downloads:

  name            builder (default config)        model input x                         label y
  pinwheel        pinwheel (paper)                float32 [B, 2], raw coordinates       arm [B]
  dsprites        decomp_dsprites (full)          float32 [B, 64, 64, 1] in {0, 1}      factors [B, 5]
  fashion_mnist   decomp_fashion_mnist            float32 [B, 32, 32, 1] in [1e-6, 1-1e-6]  class [B]
  digits          decomp_digits                   float32 [B, 32, 32, 1] in [1e-6, 1-1e-6]  class [B]

A name may carry a builder config, `NAME/CONFIG` (e.g. `dsprites/small`). Any other name is a
TFDS builder passed through (images scaled to [0, 1]); prefix `tfds:` to reach a TFDS builder
whose name is also a short name here, e.g. `tfds:fashion_mnist` (TFDS's own, which downloads; it
gets the same 32x32 preprocessing) or `tfds:dsprites`.

Three kinds of access:
  `load` / `load_numpy`   batched `tf.data` pipelines (optionally shuffled) and NumPy arrays, for
                          evaluation and library users;
  `training_data`         the training stream: the batch of optimizer step t is a pure function
                          of (seed, t) (`tfdecomp.seeds.data_order`), for every data set, so a
                          run resumed at any step sees exactly the batches of an uninterrupted
                          one. In-memory sets gather from their stored examples; dSprites
                          fetches batches by index from its renderer (or the official npz held
                          bit-packed), 737,280 images never held as float;
  `ground_truth`          factor-indexed access for the disentanglement metrics.

Directories: `data_dir` defaults to $TFDECOMP_DATA_DIR, else TFDS's default ($TFDS_DATA_DIR or
~/tensorflow_datasets); `manual_dir` (where the official dSprites npz and the Fashion-MNIST IDX
files go) defaults to $TFDECOMP_MANUAL_DIR, else <data_dir>/downloads/manual.
"""

import dataclasses
import os
import re
from typing import Callable, Optional, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfdecomp import datasets as datasets_lib
from tfdecomp import seeds
from tfdecomp.datasets.decomp_dsprites.ground_truth import RenderedDSprites
from tfdecomp.datasets.spec import DatasetSpec
from tfdecomp.ground_truth import GridGroundTruthData
from tfdecomp.ground_truth import GroundTruthData

__all__ = [
    "GroundTruthData", "GridGroundTruthData", "RenderedDSprites", "DatasetSpec", "TrainingData",
    "DataError", "ground_truth", "load", "load_numpy", "load_arrays", "training_data", "resolve",
    "spec_of", "prepared_builder", "default_data_dir", "default_manual_dir", "usable_cpus",
]


class DataError(ValueError):
  """A data set that cannot be loaded as asked (unknown name, unprepared, bad split...)."""


def default_data_dir() -> str:
  """$TFDECOMP_DATA_DIR, else TFDS's default data directory."""
  return os.path.expanduser(os.environ.get("TFDECOMP_DATA_DIR") or tfds.core.constants.DATA_DIR)


def default_manual_dir(data_dir: Optional[str] = None) -> str:
  """$TFDECOMP_MANUAL_DIR, else <data_dir>/downloads/manual (TFDS's own default)."""
  if os.environ.get("TFDECOMP_MANUAL_DIR"):
    return os.path.expanduser(os.environ["TFDECOMP_MANUAL_DIR"])
  return os.path.join(data_dir or default_data_dir(), "downloads", "manual")


# ---------------------------------------------------------------------------------------------
# Names.


def resolve(name: str, config: Optional[str] = None) -> Tuple[DatasetSpec, Optional[str]]:
  """(spec, builder config) for a user-facing name.

  A registered short name (or its builder's name) gives its declared spec; `tfds:NAME` or any
  other name gives a spec for that TFDS builder (the preprocessing of the short name NAME when
  there is one); `NAME/CONFIG` selects a builder config and, for TFDS builders, `NAME[/CONFIG]:
  VERSION` a version (kept in `spec.builder`, e.g. "shapes3d:2.0.0").
  """
  if not isinstance(name, str) or not name:
    raise DataError(f"a data set name is needed, got {name!r}.")
  passthrough = name.startswith("tfds:")
  if passthrough:
    name = name[len("tfds:"):]
  name, _, version = name.partition(":")
  if "/" in name:
    name, _, named_config = name.partition("/")
    if config is not None and config != named_config:
      raise DataError(f"two configs given for {name!r}: {named_config!r} and {config!r}.")
    config = named_config
  if not passthrough:
    spec = datasets_lib.REGISTRY.get(name) if name in datasets_lib.REGISTRY else (
        datasets_lib.by_builder(name))
    if spec is not None:
      if version:
        raise DataError(f"{name!r} is built by tfdecomp in one version; drop ':{version}'.")
      return spec, config or spec.default_config
  builder = f"{name}:{version}" if version else name
  base = datasets_lib.REGISTRY.get(name) if name in datasets_lib.REGISTRY else None
  if base is not None:  # TFDS's own builder of the same data, with our preprocessing.
    spec = base.replace(name=f"tfds:{name}", builder=builder, default_config=None, in_memory=True,
                        stream=None, ground_truth=None, check_files=None, describe_source=None)
  else:
    spec = DatasetSpec(name=name, builder=builder, feature="image", labels=("label",),
                       pixel_scale=255.0)
  return spec, config


def spec_of(name: str) -> DatasetSpec:
  """The `DatasetSpec` of a name (see `resolve`)."""
  return resolve(name)[0]


def prepared_builder(builder_name: str, config: Optional[str], data_dir: Optional[str] = None,
                     manual_dir: Optional[str] = None, download: bool = False):
  """A TFDS builder whose data is prepared; tfdecomp's builders are prepared offline on first use.

  Raises:
    FileNotFoundError: for manual files a builder needs (the message names them).
    DataError: for an external TFDS data set that is not prepared and `download` is False.
  """
  data_dir = data_dir or default_data_dir()
  manual_dir = manual_dir or default_manual_dir(data_dir)
  spec = datasets_lib.by_builder(builder_name)
  builder = tfds.builder(builder_name, config=config, data_dir=data_dir)
  if spec is not None:
    if spec.check_files is not None and not builder.is_prepared():
      spec.check_files(manual_dir)
    try:
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          try_download_gcs=False, manual_dir=manual_dir))
    except FileExistsError:
      # Another process (e.g. another worker of a multi-worker run on this machine) prepared
      # the same data set meanwhile: TFDS's final rename found its directory; use that one.
      builder = tfds.builder(builder_name, config=config, data_dir=data_dir)
      if not builder.is_prepared():
        raise
  elif not builder.is_prepared():
    if not download:
      raise DataError(
          f"TFDS data set {builder_name!r} is not prepared in {data_dir}; pass --download "
          "(download=True) to let TFDS download and prepare it (needs internet), or prepare it "
          "with `tfds build`.")
    builder.download_and_prepare()
  return builder


# ---------------------------------------------------------------------------------------------
# Ground truth.


def ground_truth(name: str = "dsprites", config: Optional[str] = None, source: str = "auto",
                 data_dir: Optional[str] = None, manual_dir: Optional[str] = None
                 ) -> GroundTruthData:
  """Random access to a data set by its ground-truth factors (the spec's `ground_truth`).

  Args:
    name: a data set with ground-truth factors, e.g. "dsprites" (or "decomp_dsprites").
    config: builder config, e.g. "full" (3 x 6 x 40 x 32 x 32) or "small" (3 x 3 x 4 x 8 x 8)
      for dSprites; None for the default.
    source: dSprites: "auto" = the official npz if it is in `manual_dir`, else the renderer;
      "render" = the procedural renderer; "npz" = the official npz, held bit-packed in memory;
      "tfds" = the prepared `decomp_dsprites` records.
    data_dir: TFDS data directory (see `default_data_dir`).
    manual_dir: directory searched for manual files (see `default_manual_dir`).

  Returns:
    A `GroundTruthData` (for dSprites: factor_names shape, scale, orientation, x_position,
    y_position; observations float32 [N, 64, 64, 1] in {0, 1}).

  Raises:
    ValueError: for a data set without ground-truth factors, an unknown config or source.
    FileNotFoundError: if a required file is missing (the message names it).
  """
  spec, config = resolve(name, config)
  if spec.ground_truth is None:
    with_factors = [n for n in datasets_lib.NAMES if datasets_lib.get(n).ground_truth]
    raise DataError(f"data set name {name!r} has no ground-truth factors declared; data sets "
                    f"with factors: {', '.join(with_factors)}.")
  return spec.ground_truth(config, data_dir, manual_dir, source)


# ---------------------------------------------------------------------------------------------
# tf.data pipelines.


def _split_indices(split: str, num: int) -> np.ndarray:
  """Grid positions of a split of a streamed grid, in a fixed pseudo-random order.

  Accepts "train", "train[a:b]" with integer or percent bounds (TFDS's notation).
  """
  match = re.fullmatch(r"train(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?", split.replace(" ", ""))
  if match is None:
    raise DataError(f"split must be 'train' or a slice like 'train[:80%]' for a streamed grid, "
                    f"got {split!r}.")

  def bound(text, percent, default):
    if not text:
      return default
    value = int(text)
    return int(round(value * num / 100)) if percent else value

  order = np.random.default_rng(seeds.SPLIT_ORDER_SEED).permutation(num)
  if match.group(1) is None and match.group(3) is None:
    return order
  return order[bound(match.group(1), match.group(2), 0):bound(match.group(3), match.group(4), num)]


def _bytes_per_example(spec) -> int:
  return sum(int(np.prod(s.shape)) * s.dtype.size for s in tf.nest.flatten(spec))


def _streamed(spec: DatasetSpec, source: str) -> bool:
  return spec.stream is not None and source != "tfds"


def _label_fn(spec: DatasetSpec, features):
  """example -> y: the class (int64 []) or the factor levels (int64 [K])."""
  keys = tuple(k for k in spec.labels if k in features)
  if not keys or (spec.factors and len(keys) != len(spec.labels)):
    return None
  if spec.factors:
    return lambda example: tf.stack([tf.cast(example[k], tf.int64) for k in keys], axis=-1)
  return lambda example: tf.cast(example[keys[0]], tf.int64)


def load(name: str, split: str = "train", batch_size: int = 64, shuffle: bool = True,
         seed: Optional[int] = None, *, with_labels: bool = False, config: Optional[str] = None,
         data_dir: Optional[str] = None, manual_dir: Optional[str] = None,
         source: str = "auto", cache: Optional[bool] = None,
         shuffle_buffer_size: Optional[int] = None, drop_remainder: bool = False,
         download: bool = False) -> tf.data.Dataset:
  """A batched `tf.data.Dataset` of model inputs (see the module doc for names and shapes).

  Pipeline: decode -> cache -> shuffle -> batch -> preprocess (batched) -> prefetch; caching the
  raw examples before the shuffle gives a fresh order every epoch. With a seed, the order of every
  epoch is reproducible.

  Args:
    name: short name (pinwheel, dsprites, fashion_mnist, digits), one of our builder names, or a
      TFDS builder name (`tfds:` prefix to bypass the short names); `NAME/CONFIG` allowed.
    split: TFDS split, slices allowed ("train[:80%]"). dSprites has only "train".
    batch_size: examples per batch.
    shuffle: reshuffle every epoch.
    seed: shuffle seed; None for a random order.
    with_labels: also yield y: the class [B] (int64), or for factor data sets the factor levels
      [B, K] (int64; dSprites: shape, scale, orientation, x_position, y_position).
    config: builder config, e.g. "small" for dSprites or "large" for pinwheel.
    data_dir: TFDS data directory (see `default_data_dir`).
    manual_dir: manual directory (see `default_manual_dir`).
    source: dSprites only: "auto" (stream from the npz if present, else the renderer), "render",
      "npz" or "tfds" (prepare and read TFDS records).
    cache: cache decoded examples in memory; None = when the split needs < 1 GB.
    shuffle_buffer_size: None = the whole split when it needs < 1 GB, else 1 GB worth.
    drop_remainder: drop the last partial batch.
    download: allow a pass-through TFDS data set to download (never needed for ours).

  Returns:
    Dataset of x, or of (x, y) when with_labels.

  Raises:
    ValueError: for a bad argument (message names it), or an unprepared external data set.
    FileNotFoundError: for missing manual files (message names the file and the directory).
  """
  if batch_size < 1:
    raise DataError(f"batch_size must be a positive integer, got {batch_size}.")
  spec, config = resolve(name, config)
  data_dir = data_dir or default_data_dir()
  if _streamed(spec, source):
    return _load_streamed(spec, config, split, batch_size, shuffle, seed, with_labels, data_dir,
                          manual_dir, source, drop_remainder)
  if source not in ("auto", "tfds"):
    raise DataError(f"source must be 'auto' or 'tfds' for {name!r}, got {source!r}.")

  builder = prepared_builder(spec.builder, config, data_dir, manual_dir, download)
  features = builder.info.features
  if spec.feature not in features:
    raise DataError(f"{name!r} has no {spec.feature!r} feature; features are {list(features)}.")
  label = _label_fn(spec, features)
  if with_labels and label is None:
    raise DataError(f"with_labels=True but {name!r} has no {spec.labels[0]!r} feature; features "
                    f"are {list(features)}.")
  ds = builder.as_dataset(split=split, shuffle_files=False)
  num = int(ds.cardinality())
  if num < 0:  # Unknown size: assume a large split.
    num = 2**31

  def select(example):
    x = example[spec.feature]
    return (x, label(example)) if with_labels else x

  ds = ds.map(select, num_parallel_calls=usable_cpus())
  if cache is None:
    cache = num * _bytes_per_example(ds.element_spec) < 2**30
  if cache:
    ds = ds.cache()
  if shuffle:
    buffer = shuffle_buffer_size or int(min(num, max(1024, 2**30 // max(
        1, _bytes_per_example(ds.element_spec)))))
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if spec.is_image:
    ds = ds.map((lambda x, y: (spec.preprocess(x), y)) if with_labels else spec.preprocess,
                num_parallel_calls=usable_cpus())
  return _finish(ds)


#: Batches prepared ahead of the training step.
PREFETCH_BATCHES = 2


def usable_cpus() -> int:
  """The CPUs this process may run on (its affinity mask; all CPUs where there is none): the
  threads of a dataset's per-batch map."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # Not on Linux.
    return max(1, os.cpu_count() or 1)


def _finish(ds: tf.data.Dataset) -> tf.data.Dataset:
  """Prefetches `PREFETCH_BATCHES` and turns tf.data's autotuning off.

  With autotuning on, every iterator starts a model thread that sleeps between optimisation
  rounds, and destroying the iterator waits for the round to come: the end of each `fit` (and of
  each pass over an evaluation dataset) then stalls for up to several seconds with the CPUs idle
  (seen here: 1-5 s per `fit`, tf.data's RootDataset::Iterator destructor joining
  Model::OptimizeLoop; benchmarks that time several short `fit` calls saw it as a bimodal step
  rate). Fixed parallelism and prefetch do as well for these pipelines (an in-memory gather or
  one decode per batch).
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return ds.prefetch(PREFETCH_BATCHES).with_options(options)


def _stream_source(spec, config, split, data_dir, manual_dir, source):
  """(backend with `images(index)`, the split's grid positions)."""
  backend = spec.stream(config, data_dir, manual_dir, source)
  index = _split_indices(split, backend.num_examples)
  backend.images(index[:1])  # Builds the renderer's sprites before tf.data's threads.
  return backend, index


def _fetch_fn(spec, backend, with_labels):
  """Grid positions [B] -> preprocessed x [B, ...] (and factors [B, K]) through numpy."""
  sizes = np.asarray(backend.factor_sizes)
  shape = list(spec.example_shape)

  def fetch(positions):
    images = backend.images(positions)
    factors = np.stack(np.unravel_index(positions, sizes), axis=1).astype(np.int64)
    return images, factors

  def to_batch(positions):
    images, factors = tf.numpy_function(fetch, [positions], (tf.uint8, tf.int64),
                                        stateful=False)
    images.set_shape([None, *shape])
    factors.set_shape([None, len(sizes)])
    x = spec.preprocess(images)
    return (x, factors) if with_labels else x

  return to_batch


def _load_streamed(spec, config, split, batch_size, shuffle, seed, with_labels, data_dir,
                   manual_dir, source, drop_remainder) -> tf.data.Dataset:
  """A streamed grid: shuffled grid positions -> batch -> render/unpack."""
  backend, index = _stream_source(spec, config, split, data_dir, manual_dir, source)
  ds = tf.data.Dataset.from_tensor_slices(index)
  if shuffle:
    ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.map(_fetch_fn(spec, backend, with_labels), num_parallel_calls=usable_cpus())
  return _finish(ds)


def load_numpy(name: str, split: str = "train", max_examples: Optional[int] = None, *,
               with_labels: bool = False, **kwargs) -> Union[np.ndarray, Tuple[np.ndarray, ...]]:
  """The first `max_examples` model inputs of a split (unshuffled) as NumPy arrays.

  For example the data for a PCA-initialised prior: `load_numpy("fashion_mnist", max_examples=
  10000)`. dSprites' unshuffled order is already a fixed pseudo-random order of the grid.

  Args:
    name: as for `load`.
    split: as for `load`.
    max_examples: cap on the number of examples; None for the whole split.
    with_labels: also return the labels (see `load`).
    **kwargs: other arguments of `load` (config, data_dir, manual_dir, source, ...).

  Returns:
    x float32 [N, ...], or (x, y) when with_labels.
  """
  if max_examples is not None and max_examples < 1:
    raise DataError(f"max_examples must be positive or None, got {max_examples}.")
  batch = 1024 if max_examples is None else min(1024, max_examples)
  ds = load(name, split, batch_size=batch, shuffle=False, with_labels=with_labels, **kwargs)
  if max_examples is not None:
    ds = ds.take(-(-max_examples // batch))
  parts = list(tfds.as_numpy(ds))
  if with_labels:
    return (np.concatenate([p[0] for p in parts])[:max_examples],
            np.concatenate([p[1] for p in parts])[:max_examples])
  return np.concatenate(parts)[:max_examples]


def load_arrays(name: str, split: str, max_examples: Optional[int] = None, **kwargs):
  """(x float32 [N, ...], labels or None) of a split: `load_numpy` with labels when it has any."""
  try:
    return load_numpy(name, split, max_examples, with_labels=True, **kwargs)
  except DataError as e:
    if "with_labels" not in str(e):
      raise
  return load_numpy(name, split, max_examples, **kwargs), None


# ---------------------------------------------------------------------------------------------
# The training stream.


@dataclasses.dataclass
class TrainingData:
  """The training stream of a run and what it was made from.

  Attributes:
    dataset: `tf.data.Dataset` of x batches [batch_size, *example_shape], from step `start_step`
      to the end of epoch `epochs + 1` (one spare epoch; then it ends).
    num_examples: N, the size of the training split.
    steps_per_epoch: S.
    start_step: the optimizer step of the first batch of `dataset`.
    source: where the examples come from (for config.json).
  """
  dataset: tf.data.Dataset
  num_examples: int
  steps_per_epoch: int
  start_step: int
  source: str
  _make: Callable[[int], tf.data.Dataset] = dataclasses.field(repr=False, default=None)

  def from_step(self, start_step: int) -> "TrainingData":
    """The same stream starting at another step (the examples are not loaded again)."""
    return dataclasses.replace(self, dataset=self._make(int(start_step)),
                               start_step=int(start_step))

  def shard(self, rows, parts: int = 1) -> tf.data.Dataset:
    """One worker's share of every global batch of this stream, read on its own.

    The batch of step t keeps the rows [start, stop) of the global batch (the examples whose
    positions the noise is drawn for), split into `parts` consecutive batches of
    (stop - start) / parts rows: one per local replica, in replica order. Only those rows are
    gathered (rendered or decoded), so W workers each read 1/W of the data.

    Args:
      rows: (start, stop), 0 <= start < stop <= batch_size, (stop - start) % parts == 0.
      parts: local replicas of the worker.

    Returns:
      A `tf.data.Dataset` of x batches [(stop - start) / parts, *example_shape], `parts` per step.
    """
    return self._make(self.start_step, rows=(int(rows[0]), int(rows[1])), parts=int(parts))


def _raw_examples(spec, config, split, data_dir, manual_dir):
  """The stored examples of a split in TFDS order, as NumPy (uint8 images or float vectors)."""
  builder = prepared_builder(spec.builder, config, data_dir, manual_dir)
  ds = builder.as_dataset(split=split, shuffle_files=False).map(
      lambda example: example[spec.feature]).batch(4096)
  parts = list(tfds.as_numpy(ds))
  if not parts:
    raise DataError(f"split {split!r} of {spec.name!r} is empty.")
  return np.concatenate(parts)


def training_data(name: str, split: str = "train", *, batch_size: int, seed: int,
                  epochs: int, steps_per_epoch: Optional[int] = None, start_step: int = 0,
                  config: Optional[str] = None, data_dir: Optional[str] = None,
                  manual_dir: Optional[str] = None, source: str = "auto") -> TrainingData:
  """The batches of a training run, the batch of step t a pure function of (seed, t).

  Epoch e (0-based) uses the indices `seeds.data_order(seed, e, N, S * B)`: a fresh permutation
  of the N examples per epoch (repeated when S * B > N); step t = e * S + k takes the k-th block
  of B of them. Starting at `start_step` skips nothing but indices, so a resumed run draws
  exactly the batches of an uninterrupted one, for in-memory and streamed data alike.

  Args:
    name: a data set name (see `resolve`).
    split: the training split.
    batch_size: B (the global batch).
    seed: the run's seed.
    epochs: the last epoch (the stream ends after epochs * S steps).
    steps_per_epoch: S; None = one pass, N // B.
    start_step: the first optimizer step to yield a batch for.
    config, data_dir, manual_dir, source: as for `load`.

  Returns:
    A `TrainingData`.

  Raises:
    DataError: for a bad name, split or batch size (B larger than N without steps_per_epoch).
    FileNotFoundError: for missing manual files.
  """
  spec, config = resolve(name, config)
  data_dir = data_dir or default_data_dir()
  if _streamed(spec, source):
    backend, index = _stream_source(spec, config, split, data_dir, manual_dir, source)
    num = len(index)
    positions = tf.constant(index)
    fetch = _fetch_fn(spec, backend, with_labels=False)
    describe = (spec.describe_source(config, data_dir, manual_dir, source)
                if spec.describe_source else spec.name)
    gather = lambda idx: fetch(tf.gather(positions, idx))  # noqa: E731
  else:
    raw = _raw_examples(spec, config, split, data_dir, manual_dir)
    num = len(raw)
    stored = tf.constant(raw)
    preprocess = spec.preprocess if spec.is_image else (lambda x: tf.cast(x, tf.float32))
    describe = f"TFDS {spec.builder}{'/' + config if config else ''} split {split}, in memory"
    gather = lambda idx: preprocess(tf.gather(stored, idx))  # noqa: E731
  if steps_per_epoch is None:
    if batch_size > num:
      raise DataError(f"batch size {batch_size} is larger than the {num} training examples of "
                      f"{spec.name}.")
    steps_per_epoch = max(1, num // batch_size)
  needed = steps_per_epoch * batch_size

  def make(first_step, rows=None, parts=1):
    start, stop = rows or (0, batch_size)
    if not 0 <= start < stop <= batch_size or (stop - start) % parts:
      raise ValueError(f"rows {rows} do not split into {parts} batches of a batch of "
                       f"{batch_size}.")

    def epoch_blocks(epoch):
      order = tf.reshape(seeds.data_order(seed, epoch, num, needed), [steps_per_epoch, batch_size])
      order = tf.reshape(order[:, start:stop], [steps_per_epoch * parts, (stop - start) // parts])
      return tf.data.Dataset.from_tensor_slices(order)

    start_epoch, offset = divmod(first_step, steps_per_epoch)
    # One spare epoch: Keras's epoch iterator may look one chunk past the last step of `fit`
    # and would otherwise warn that the input ran out of data.
    return (tf.data.Dataset.range(start_epoch, max(epochs, start_epoch) + 1)
            .flat_map(epoch_blocks).skip(offset * parts)
            .map(gather, num_parallel_calls=usable_cpus(), deterministic=True)
            .apply(_finish))

  return TrainingData(dataset=make(int(start_step)), num_examples=num,
                      steps_per_epoch=steps_per_epoch, start_step=int(start_step),
                      source=describe, _make=make)
