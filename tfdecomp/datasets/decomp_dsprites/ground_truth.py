"""Factor-indexed access to dSprites: the procedural renderer, the official npz, or TFDS records.

`make(config, data_dir, manual_dir, source)` returns a `GroundTruthData` over the config's factor
grid (shape, scale, orientation, x_position, y_position) whose observations are float32
[N, 64, 64, 1] in {0, 1}, and whose `images(index)` gives the uint8 images at grid positions.
"""

import os
from typing import Optional

import numpy as np

from tfdecomp.datasets.decomp_dsprites import official
from tfdecomp.datasets.decomp_dsprites import render
from tfdecomp.ground_truth import GridGroundTruthData
from tfdecomp.ground_truth import GroundTruthData

__all__ = ["RenderedDSprites", "PackedDSprites", "make", "npz_path", "describe_source",
           "LABELS", "SOURCES"]

LABELS = tuple("label_" + name for name in render.FACTOR_NAMES)
SOURCES = ("auto", "render", "npz", "tfds")


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


def _unpack(rows: np.ndarray) -> np.ndarray:
  return np.unpackbits(rows, axis=1).reshape(-1, 64, 64, 1).astype(np.float32)


class PackedDSprites(GridGroundTruthData):
  """dSprites images held bit-packed in memory (377 MB for `full`), one row per grid position."""

  def __init__(self, sizes, packed):
    super().__init__(render.FACTOR_NAMES, sizes, packed, observation_shape=(64, 64, 1),
                     decode=_unpack)

  def images(self, index: np.ndarray) -> np.ndarray:
    """uint8 images {0, 1} [N, 64, 64, 1] at grid positions index [N]."""
    return np.unpackbits(self.rows(index), axis=1).reshape(-1, 64, 64, 1)


def npz_path(data_dir: Optional[str], manual_dir: Optional[str]) -> str:
  """Where the official npz is looked for."""
  from tfdecomp import data  # pylint: disable=g-import-not-at-top  (data imports this package)
  return os.path.join(manual_dir or data.default_manual_dir(data_dir), official.OFFICIAL_FILENAME)


def describe_source(config: Optional[str], data_dir: Optional[str] = None,
                    manual_dir: Optional[str] = None, source: str = "auto") -> str:
  """Which source `make(..., source)` would read: the official file or the renderer."""
  path = npz_path(data_dir, manual_dir)
  if source == "render" or (source == "auto" and not os.path.exists(path)):
    return f"procedural renderer (config {config or 'full'}; no official npz at {path})"
  if source == "tfds":
    return f"prepared TFDS records of decomp_dsprites/{config or 'full'}"
  return f"official npz {path} (config {config or 'full'})"


def make(config: Optional[str] = "full", data_dir: Optional[str] = None,
         manual_dir: Optional[str] = None, source: str = "auto") -> GroundTruthData:
  """Random access to dSprites by its ground-truth factors.

  Args:
    config: "full" (3 x 6 x 40 x 32 x 32) or "small" (3 x 3 x 4 x 8 x 8).
    data_dir: TFDS data directory (see `tfdecomp.data.default_data_dir`).
    manual_dir: directory searched for the official npz (see `tfdecomp.data.default_manual_dir`).
    source: "auto" = the official npz if it is in `manual_dir`, else the renderer;
      "render" = the procedural renderer (renders on demand, no memory);
      "npz" = the official npz, held bit-packed in memory (377 MB for `full`);
      "tfds" = the prepared `decomp_dsprites` records (prepared first if needed), bit-packed.

  Raises:
    ValueError: for an unknown config or source.
    FileNotFoundError: if source="npz" and the file is not in `manual_dir`.
  """
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  config = config or "full"
  render.config_levels(config)  # Validates config.
  if source not in SOURCES:
    raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}.")
  data_dir = data_dir or data.default_data_dir()
  path = npz_path(data_dir, manual_dir)
  if source == "auto":
    source = "npz" if os.path.exists(path) else "render"
  if source == "render":
    return RenderedDSprites(config)
  sizes = render.DSpritesRenderer(config).factor_sizes
  if source == "npz":
    if not os.path.exists(path):
      raise FileNotFoundError(
          f"{official.OFFICIAL_FILENAME} not found: expected {path}. Download it from "
          f"{official.OFFICIAL_URL} into {os.path.dirname(path)}, pass manual_dir=, or use "
          "source='render'.")
    return PackedDSprites(sizes, official.load_packed_grid(path, config))
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = data.prepared_builder("decomp_dsprites", config, data_dir, manual_dir)
  factors, rows = [], []
  for batch in tfds.as_numpy(builder.as_dataset(split="train").batch(4096)):
    factors.append(np.stack([batch[k] for k in LABELS], axis=1))
    rows.append(np.packbits(batch["image"].reshape(len(batch["image"]), -1), axis=1))
  grid = GridGroundTruthData.from_examples(render.FACTOR_NAMES, sizes, np.concatenate(factors),
                                           np.concatenate(rows))
  return PackedDSprites(sizes, grid.rows(np.arange(grid.num_examples)))
