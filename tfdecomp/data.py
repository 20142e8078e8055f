"""Input pipelines and ground-truth factor access for the paper's data sets.

Short names and what they load (the TFDS builders live in `tfdecomp.datasets`; nothing downloads):

  name            builder (default config)        model input x                         label y
  pinwheel        pinwheel (paper)                float32 [B, 2], raw coordinates       arm [B]
  dsprites        decomp_dsprites (full)          float32 [B, 64, 64, 1] in {0, 1}      factors [B, 5]
  fashion_mnist   decomp_fashion_mnist            float32 [B, 32, 32, 1] in [1e-6, 1-1e-6]  class [B]
  digits          decomp_digits                   float32 [B, 32, 32, 1] in [1e-6, 1-1e-6]  class [B]

Any other name is a TFDS builder name passed through (images scaled to [0, 1]); prefix `tfds:` to
reach a TFDS builder whose name is also a short name here, e.g. `tfds:fashion_mnist` (TFDS's own,
which downloads; it gets the same 32x32 preprocessing) or `tfds:dsprites`.

Fashion-MNIST is resized to 32x32 (bilinear) and clipped to [1e-6, 1 - 1e-6] as in Mathieu et al.
(2019), so that a Laplace or Bernoulli likelihood never sees exact 0 or 1; the digits stand-in gets
the same treatment.

dSprites is streamed, not read from TFDS records, unless `source="tfds"`: the full grid is 737,280
images (3 GB as uint8), and writing it as TFDS records costs minutes of PNG encoding; rendering a
batch procedurally (or unpacking it from the official npz held bit-packed in memory, 377 MB) is
faster than decoding PNGs. Both give the same examples; splits of the stream (`"train[:80%]"`) are
taken from a fixed pseudo-random order of the grid, like TFDS's shuffled records.

Directories: `data_dir` defaults to $TFDECOMP_DATA_DIR, else TFDS's default ($TFDS_DATA_DIR or
~/tensorflow_datasets); `manual_dir` (where the official dSprites npz and the Fashion-MNIST IDX
files go) defaults to $TFDECOMP_MANUAL_DIR, else <data_dir>/downloads/manual.
"""

import os
import re
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

import tfdecomp.datasets  # pylint: disable=unused-import  (registers the builders)
from tfdecomp.datasets.decomp_dsprites import official
from tfdecomp.datasets.decomp_dsprites import render
from tfdecomp.datasets.decomp_fashion_mnist import decomp_fashion_mnist_dataset_builder
from tfdecomp.ground_truth import GroundTruthData

__all__ = [
    "GroundTruthData", "GridGroundTruthData", "RenderedDSprites", "ground_truth", "load",
    "load_numpy", "default_data_dir", "default_manual_dir", "SHORT_NAMES",
]

# Short name -> (TFDS builder, default config).
SHORT_NAMES: Dict[str, Tuple[str, Optional[str]]] = {
    "pinwheel": ("pinwheel", "paper"),
    "dsprites": ("decomp_dsprites", "full"),
    "fashion_mnist": ("decomp_fashion_mnist", None),
    "digits": ("decomp_digits", None),
}
_OURS = {builder for builder, _ in SHORT_NAMES.values()}
_CLIP = 1e-6
_FASHION_FILES = decomp_fashion_mnist_dataset_builder.FILES
_DSPRITES_LABELS = tuple("label_" + name for name in render.FACTOR_NAMES)


def default_data_dir() -> str:
  """$TFDECOMP_DATA_DIR, else TFDS's default data directory."""
  return os.path.expanduser(os.environ.get("TFDECOMP_DATA_DIR") or tfds.core.constants.DATA_DIR)


def default_manual_dir(data_dir: Optional[str] = None) -> str:
  """$TFDECOMP_MANUAL_DIR, else <data_dir>/downloads/manual (TFDS's own default)."""
  if os.environ.get("TFDECOMP_MANUAL_DIR"):
    return os.path.expanduser(os.environ["TFDECOMP_MANUAL_DIR"])
  return os.path.join(data_dir or default_data_dir(), "downloads", "manual")


# ---------------------------------------------------------------------------------------------
# Ground-truth backends.


class GridGroundTruthData(GroundTruthData):
  """Every observation of a factor grid held in memory, row i = grid position i (row-major).

  Args:
    factor_names: K names.
    factor_sizes: K sizes; the grid has prod(factor_sizes) positions.
    observations: array [prod(factor_sizes), ...] in row-major factor order.
    observation_shape: shape of one decoded observation; defaults to observations.shape[1:].
    decode: maps gathered rows [N, ...] to observations [N, *observation_shape] (e.g. unpacking
      bits); defaults to a float32 cast.
  """

  def __init__(self, factor_names: Sequence[str], factor_sizes: Sequence[int],
               observations: np.ndarray, observation_shape: Optional[Sequence[int]] = None,
               decode: Optional[Callable[[np.ndarray], np.ndarray]] = None):
    if len(factor_names) != len(factor_sizes):
      raise ValueError(f"factor_names and factor_sizes must have the same length, got "
                       f"{len(factor_names)} and {len(factor_sizes)}.")
    self._names = tuple(factor_names)
    self._sizes = tuple(int(s) for s in factor_sizes)
    if len(observations) != self.num_examples:
      raise ValueError(f"observations must have prod(factor_sizes) = {self.num_examples} rows, "
                       f"got {len(observations)}.")
    self._observations = observations
    self._shape = tuple(observation_shape or observations.shape[1:])
    self._decode = decode or (lambda rows: rows.astype(np.float32))

  @classmethod
  def from_examples(cls, factor_names: Sequence[str], factor_sizes: Sequence[int],
                    factors: np.ndarray, observations: np.ndarray, **kwargs):
    """Arranges examples given in any order (e.g. a TFDS split) into the grid.

    Args:
      factor_names: K names.
      factor_sizes: K sizes.
      factors: int [M, K] factor levels of each example.
      observations: [M, ...] observations.
      **kwargs: passed to the constructor (observation_shape, decode).

    Raises:
      ValueError: if some factor combination is missing.
    """
    index = np.ravel_multi_index(tuple(np.asarray(factors).T), tuple(factor_sizes))
    total = int(np.prod(factor_sizes))
    grid = np.zeros((total,) + observations.shape[1:], observations.dtype)
    seen = np.zeros(total, bool)
    grid[index] = observations
    seen[index] = True
    if not seen.all():
      raise ValueError(f"the examples cover {int(seen.sum())} of the {total} factor combinations; "
                       "every combination is needed.")
    return cls(factor_names, factor_sizes, grid, **kwargs)

  @property
  def factor_names(self):
    return self._names

  @property
  def factor_sizes(self):
    return self._sizes

  @property
  def observation_shape(self):
    return self._shape

  def rows(self, index: np.ndarray) -> np.ndarray:
    """Stored (undecoded) rows at grid positions index [N]."""
    return self._observations[np.asarray(index)]

  def sample_observations_from_factors(self, factors, rng=None):
    del rng  # One observation per factor combination.
    return self._decode(self.rows(self.factors_to_index(factors)))


class RenderedDSprites(GroundTruthData):
  """dSprites rendered on demand by `render.DSpritesRenderer`: no stored images at all."""

  def __init__(self, config: str = "full"):
    self.renderer = render.DSpritesRenderer(config)
    self.config = config

  @property
  def factor_names(self):
    return render.FACTOR_NAMES

  @property
  def factor_sizes(self):
    return self.renderer.factor_sizes

  @property
  def observation_shape(self):
    return (64, 64, 1)

  def images(self, index: np.ndarray) -> np.ndarray:
    """uint8 images {0, 1} [N, 64, 64, 1] at grid positions index [N]."""
    return self.renderer.render_indices(index)

  def sample_observations_from_factors(self, factors, rng=None):
    del rng
    return self.renderer.render(np.asarray(factors)).astype(np.float32)


def _unpack_dsprites(rows: np.ndarray) -> np.ndarray:
  return np.unpackbits(rows, axis=1).reshape(-1, 64, 64, 1).astype(np.float32)


def _dsprites_images(data: GroundTruthData, index: np.ndarray) -> np.ndarray:
  """uint8 {0, 1} images [N, 64, 64, 1] of a dSprites backend at grid positions index."""
  if isinstance(data, RenderedDSprites):
    return data.images(index)
  return np.unpackbits(data.rows(index), axis=1).reshape(-1, 64, 64, 1)


def ground_truth(name: str = "dsprites", config: str = "full", source: str = "auto",
                 data_dir: Optional[str] = None, manual_dir: Optional[str] = None
                 ) -> GroundTruthData:
  """Random access to a data set by its ground-truth factors.

  Args:
    name: "dsprites" (or "decomp_dsprites").
    config: "full" (3 x 6 x 40 x 32 x 32) or "small" (3 x 3 x 4 x 8 x 8).
    source: "auto" = the official npz if it is in `manual_dir`, else the renderer;
      "render" = the procedural renderer (renders on demand, no memory);
      "npz" = the official npz, held bit-packed in memory (377 MB for `full`);
      "tfds" = the prepared `decomp_dsprites` records (prepared first if needed), bit-packed.
    data_dir: TFDS data directory (see `default_data_dir`).
    manual_dir: directory searched for the official npz (see `default_manual_dir`).

  Returns:
    A `GroundTruthData` with factor_names ("shape", "scale", "orientation", "x_position",
    "y_position") whose observations are float32 [N, 64, 64, 1] in {0, 1}.

  Raises:
    ValueError: for an unknown name, config or source.
    FileNotFoundError: if source="npz" and the file is not in `manual_dir`.
  """
  if name not in ("dsprites", "decomp_dsprites"):
    raise ValueError(f"name must be 'dsprites' (the only ground-truth data set), got {name!r}.")
  render.config_levels(config)  # Validates config.
  if source not in ("auto", "render", "npz", "tfds"):
    raise ValueError(f"source must be 'auto', 'render', 'npz' or 'tfds', got {source!r}.")
  data_dir = data_dir or default_data_dir()
  npz_path = os.path.join(manual_dir or default_manual_dir(data_dir), official.OFFICIAL_FILENAME)
  if source == "auto":
    source = "npz" if os.path.exists(npz_path) else "render"
  if source == "render":
    return RenderedDSprites(config)
  sizes = render.DSpritesRenderer(config).factor_sizes
  if source == "npz":
    if not os.path.exists(npz_path):
      raise FileNotFoundError(
          f"{official.OFFICIAL_FILENAME} not found: expected {npz_path}. Download it from "
          f"{official.OFFICIAL_URL} into {os.path.dirname(npz_path)}, pass manual_dir=, or use "
          "source='render'.")
    packed = official.load_packed_grid(npz_path, config)
  else:
    builder = _prepared_builder("decomp_dsprites", config, data_dir, manual_dir)
    ds = builder.as_dataset(split="train").batch(4096)
    factors, rows = [], []
    for batch in tfds.as_numpy(ds):
      factors.append(np.stack([batch[k] for k in _DSPRITES_LABELS], axis=1))
      rows.append(np.packbits(batch["image"].reshape(len(batch["image"]), -1), axis=1))
    return GridGroundTruthData.from_examples(
        render.FACTOR_NAMES, sizes, np.concatenate(factors), np.concatenate(rows),
        observation_shape=(64, 64, 1), decode=_unpack_dsprites)
  return GridGroundTruthData(render.FACTOR_NAMES, sizes, packed, observation_shape=(64, 64, 1),
                             decode=_unpack_dsprites)


# ---------------------------------------------------------------------------------------------
# Input pipelines.


def _resolve(name: str, config: Optional[str]) -> Tuple[str, Optional[str], str]:
  """(TFDS builder name, config, preprocessing key) for a user-facing name."""
  if name.startswith("tfds:"):
    builder = name[len("tfds:"):]
    return builder, config, builder
  if name in SHORT_NAMES:
    builder, default_config = SHORT_NAMES[name]
    return builder, config or default_config, name
  if name in _OURS:
    short = next(k for k, (b, _) in SHORT_NAMES.items() if b == name)
    return name, config or SHORT_NAMES[short][1], short
  return name, config, name


def _prepared_builder(builder_name: str, config: Optional[str], data_dir: str,
                      manual_dir: Optional[str], download: bool = False):
  """A TFDS builder whose data is prepared; our builders are prepared offline on first use."""
  builder = tfds.builder(builder_name, config=config, data_dir=data_dir)
  manual_dir = manual_dir or default_manual_dir(data_dir)
  if builder_name == "decomp_fashion_mnist" and not builder.is_prepared():
    missing = [name for pair in _FASHION_FILES.values() for name in pair
               if not os.path.exists(os.path.join(manual_dir, name))]
    if missing:
      raise FileNotFoundError(
          f"Fashion-MNIST needs {', '.join(missing)} in the manual directory {manual_dir} "
          "(pass manual_dir= or set $TFDECOMP_MANUAL_DIR). Get the four files from "
          "https://github.com/zalandoresearch/fashion-mnist; nothing is downloaded. Without them, "
          "'digits' is an offline stand-in.")
  if builder_name in _OURS:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        try_download_gcs=False, manual_dir=manual_dir or default_manual_dir(data_dir)))
  elif not builder.is_prepared():
    if not download:
      raise ValueError(
          f"TFDS data set {builder_name!r} is not prepared in {data_dir}; pass download=True to "
          "let TFDS download and prepare it (needs internet), or prepare it with `tfds build`.")
    builder.download_and_prepare()
  return builder


def _split_indices(split: str, num: int) -> np.ndarray:
  """Grid positions of a split of a streamed grid, in a fixed pseudo-random order.

  Accepts "train", "train[a:b]" with integer or percent bounds (TFDS's notation).
  """
  match = re.fullmatch(r"train(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?", split.replace(" ", ""))
  if match is None:
    raise ValueError(f"split must be 'train' or a slice like 'train[:80%]' for a streamed grid, "
                     f"got {split!r}.")

  def bound(text, percent, default):
    if not text:
      return default
    value = int(text)
    return int(round(value * num / 100)) if percent else value

  order = np.random.default_rng(0).permutation(num)
  if match.group(1) is None and match.group(3) is None:
    return order
  return order[bound(match.group(1), match.group(2), 0):bound(match.group(3), match.group(4), num)]


def _image_fn(key: str) -> Callable[[tf.Tensor], tf.Tensor]:
  """Batched uint8 images -> float32 model inputs for a preprocessing key."""
  binary = key == "dsprites"  # TFDS's dSprites and ours store {0, 1}, not {0, 255}.
  resize = 32 if key == "fashion_mnist" else None
  clip = key in ("fashion_mnist", "digits")

  def fn(images):
    x = tf.cast(images, tf.float32)
    if not binary:
      x = x / 255.0
    if resize:
      x = tf.image.resize(x, (resize, resize), method="bilinear")
    if clip:
      x = tf.clip_by_value(x, _CLIP, 1.0 - _CLIP)
    return x

  return fn


def _bytes_per_example(spec) -> int:
  return sum(int(np.prod(s.shape)) * s.dtype.size for s in tf.nest.flatten(spec))


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
      TFDS builder name (`tfds:` prefix to bypass the short names).
    split: TFDS split, slices allowed ("train[:80%]"). dSprites has only "train".
    batch_size: examples per batch.
    shuffle: reshuffle every epoch.
    seed: shuffle seed; None for a random order.
    with_labels: also yield y: the class [B] (int64), or for dSprites the factor levels [B, 5]
      (int64, columns shape, scale, orientation, x_position, y_position).
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
    raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
  builder_name, config, key = _resolve(name, config)
  data_dir = data_dir or default_data_dir()
  if builder_name == "decomp_dsprites" and source != "tfds":
    return _load_streamed(config, split, batch_size, shuffle, seed, with_labels, data_dir,
                          manual_dir, source, drop_remainder)
  if source not in ("auto", "tfds"):
    raise ValueError(f"source must be 'auto' or 'tfds' for {name!r}, got {source!r}.")

  builder = _prepared_builder(builder_name, config, data_dir, manual_dir, download)
  features = builder.info.features
  ds = builder.as_dataset(split=split, shuffle_files=False)
  num = int(ds.cardinality())
  if num < 0:  # Unknown size: assume a large split.
    num = 2**31
  label_keys = (_DSPRITES_LABELS if key == "dsprites"
                else ("label",) if "label" in features else ())
  if with_labels and not label_keys:
    raise ValueError(f"with_labels=True but {name!r} has no 'label' feature.")
  x_key = "x" if key == "pinwheel" else "image"
  if x_key not in features:
    raise ValueError(f"{name!r} has no {x_key!r} feature; features are {list(features)}.")

  def select(example):
    x = example[x_key]
    if not with_labels:
      return x
    y = (tf.stack([tf.cast(example[k], tf.int64) for k in label_keys], axis=-1)
         if key == "dsprites" else tf.cast(example[label_keys[0]], tf.int64))
    return x, y

  ds = ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)
  if cache is None:
    cache = num * _bytes_per_example(ds.element_spec) < 2**30
  if cache:
    ds = ds.cache()
  if shuffle:
    buffer = shuffle_buffer_size or int(min(num, max(1024, 2**30 // max(
        1, _bytes_per_example(ds.element_spec)))))
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if x_key == "image":
    to_input = _image_fn(key)
    ds = ds.map((lambda x, y: (to_input(x), y)) if with_labels else to_input,
                num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)


def _load_streamed(config, split, batch_size, shuffle, seed, with_labels, data_dir, manual_dir,
                   source, drop_remainder) -> tf.data.Dataset:
  """dSprites from a ground-truth backend: shuffled grid positions -> batch -> render/unpack."""
  data = ground_truth("dsprites", config, source=source, data_dir=data_dir, manual_dir=manual_dir)
  index = _split_indices(split, data.num_examples)
  _dsprites_images(data, index[:1])  # Builds the renderer's sprites before tf.data's threads.
  sizes = np.asarray(data.factor_sizes)

  def fetch(positions):
    images = _dsprites_images(data, positions)
    factors = np.stack(np.unravel_index(positions, sizes), axis=1).astype(np.int64)
    return images, factors

  def to_batch(positions):
    images, factors = tf.numpy_function(fetch, [positions], (tf.uint8, tf.int64),
                                        stateful=False)
    images.set_shape([None, 64, 64, 1])
    factors.set_shape([None, 5])
    x = tf.cast(images, tf.float32)
    return (x, factors) if with_labels else x

  ds = tf.data.Dataset.from_tensor_slices(index)
  if shuffle:
    ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)


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
    raise ValueError(f"max_examples must be positive or None, got {max_examples}.")
  batch = 1024 if max_examples is None else min(1024, max_examples)
  ds = load(name, split, batch_size=batch, shuffle=False, with_labels=with_labels, **kwargs)
  if max_examples is not None:
    ds = ds.take(-(-max_examples // batch))
  parts = list(tfds.as_numpy(ds))
  if with_labels:
    return (np.concatenate([p[0] for p in parts])[:max_examples],
            np.concatenate([p[1] for p in parts])[:max_examples])
  return np.concatenate(parts)[:max_examples]
