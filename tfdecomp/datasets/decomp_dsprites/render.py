"""A vectorised NumPy renderer of the dSprites factor grid (Matthey et al., 2017).

The official data set holds every combination of five factors (colour is constant):

  shape        3 values  square, ellipse, heart (official values 1, 2, 3)
  scale        6 values  linspace(0.5, 1, 6)
  orientation 40 values  linspace(0, 2 pi, 40)
  x_position  32 values  linspace(0, 1, 32)
  y_position  32 values  linspace(0, 1, 32)

3 * 6 * 40 * 32 * 32 = 737,280 binary 64x64 images, stored in row-major factor order (y position
varies fastest). This module reproduces that grid procedurally, so nothing has to be downloaded.
It reproduces the *factor structure* exactly and the look approximately; it is not pixel-identical
to the official images (their generator was never published).

Geometry. A sprite is drawn on a 32x32 patch whose centre is the corner shared by its four middle
pixels; a shape of scale s spans about 20 * s pixels (a square of side 20 s, an ellipse with axes
24 s and 12 s, a heart of similar area). Position index p (0..31 on the full grid) puts the patch's
top-left pixel at p, so the sprite centre moves one pixel per position step and never leaves the
64x64 canvas: `x_position` moves it right (column index), `y_position` moves it down (row index).
Orientation theta rotates the shape counter-clockwise on screen about its centroid. Each sprite is
rendered once per (shape, scale, orientation) with 4x4 supersampling and thresholded at half
coverage; an image is then a sprite pasted at an integer offset, so rendering a batch is a gather
of one contiguous 4,096-byte window per image (see `DSpritesRenderer._sprite_strip`).
"""

import functools
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "x_position", "y_position")
FULL_FACTOR_SIZES = (3, 6, 40, 32, 32)
IMAGE_SIZE = 64
PATCH_SIZE = 32
_PIXELS_PER_UNIT = 10.0  # Canonical shapes live in about [-1, 1]^2; scale 1 -> 20 pixels.
_SUPERSAMPLING = 4
_STRIP_BASE = 32 * IMAGE_SIZE  # See DSpritesRenderer._sprite_strip.
_STRIP_LENGTH = 96 * IMAGE_SIZE


def full_factor_values() -> Tuple[np.ndarray, ...]:
  """The official value of every level of each factor.

  Returns:
    A tuple of five float arrays: shape [3] (1, 2, 3), scale [6], orientation [40] (radians),
    x_position [32] and y_position [32].
  """
  return (np.array([1.0, 2.0, 3.0]),
          np.linspace(0.5, 1.0, 6),
          np.linspace(0.0, 2.0 * np.pi, 40),
          np.linspace(0.0, 1.0, 32),
          np.linspace(0.0, 1.0, 32))


# Levels of the full grid kept by each configuration (indices into `full_factor_values()`).
# `small` keeps 3 shapes, 3 scales (0.6, 0.8, 1.0), 4 orientations and 8 x 8 positions:
# 2,304 images, a subset of the official grid so it can also be cut out of the official file.
CONFIG_LEVELS: Dict[str, Tuple[Tuple[int, ...], ...]] = {
    "full": tuple(tuple(range(n)) for n in FULL_FACTOR_SIZES),
    "small": ((0, 1, 2),
              (1, 3, 5),
              (0, 10, 20, 30),
              tuple(int(i) for i in np.round(np.linspace(0, 31, 8))),
              tuple(int(i) for i in np.round(np.linspace(0, 31, 8)))),
}


def config_levels(config: str) -> Tuple[np.ndarray, ...]:
  """Full-grid level indices kept by `config`: five int arrays.

  Raises:
    ValueError: if `config` is not one of `CONFIG_LEVELS`.
  """
  if config not in CONFIG_LEVELS:
    raise ValueError(f"config must be one of {sorted(CONFIG_LEVELS)}, got {config!r}.")
  return tuple(np.asarray(levels, dtype=np.int64) for levels in CONFIG_LEVELS[config])


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Whether canonical-frame points (u right, v up) lie inside shape `shape` (0, 1, 2)."""
  if shape == 0:  # Square of half-side 1.
    return np.maximum(np.abs(u), np.abs(v)) <= 1.0
  if shape == 1:  # Ellipse with semi-axes 1.2 (along u) and 0.6.
    return (u / 1.2) ** 2 + (v / 0.6) ** 2 <= 1.0
  # Heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled by 0.95 and shifted so that its centroid
  # (at y ~ 0.13 on the unit curve) sits at the origin.
  x = u / 0.95
  y = v / 0.95 + 0.13
  return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0


@functools.lru_cache(maxsize=8)
def _sprites(scales: Tuple[float, ...], orientations: Tuple[float, ...]) -> np.ndarray:
  """Binary sprites uint8 [3, len(scales), len(orientations), 32, 32], read-only."""
  ss = _SUPERSAMPLING
  # Sub-pixel sample offsets from the patch centre, in pixels (row and column are symmetric).
  offsets = (np.arange(PATCH_SIZE * ss) + 0.5) / ss - PATCH_SIZE / 2
  dy, dx = np.meshgrid(offsets, offsets, indexing="ij")  # dy grows downwards.
  x_up, y_up = dx, -dy
  sprites = np.zeros((3, len(scales), len(orientations), PATCH_SIZE, PATCH_SIZE), np.uint8)
  for j, scale in enumerate(scales):
    for k, theta in enumerate(orientations):
      c, s = np.cos(theta), np.sin(theta)
      # Rotate sample points by -theta (so the shape turns by +theta) and go to shape units.
      u = (c * x_up + s * y_up) / (scale * _PIXELS_PER_UNIT)
      v = (-s * x_up + c * y_up) / (scale * _PIXELS_PER_UNIT)
      for i in range(3):
        coverage = _inside(i, u, v).reshape(PATCH_SIZE, ss, PATCH_SIZE, ss).mean(axis=(1, 3))
        sprites[i, j, k] = coverage >= 0.5
  sprites.setflags(write=False)
  return sprites


class DSpritesRenderer:
  """Renders dSprites images for factor indices of a configuration's grid.

  Attributes:
    config: "full" or "small".
    factor_sizes: number of levels of each factor in this configuration.
    factor_values: float arrays with the official value of each level (see `full_factor_values`).
  """

  def __init__(self, config: str = "full"):
    self.config = config
    self._levels = config_levels(config)
    full_values = full_factor_values()
    self.factor_values = tuple(values[levels] for values, levels in zip(full_values,
                                                                       self._levels))
    self.factor_sizes = tuple(len(levels) for levels in self._levels)
    self._scales = tuple(float(v) for v in self.factor_values[1])
    self._orientations = tuple(float(v) for v in self.factor_values[2])
    self._x_offsets = self._levels[3]  # Patch top-left = full-grid position index.
    self._y_offsets = self._levels[4]
    self._strip = None

  @property
  def sprites(self) -> np.ndarray:
    """uint8 [3, num_scales, num_orientations, 32, 32] in {0, 1}."""
    return _sprites(self._scales, self._orientations)

  @property
  def num_images(self) -> int:
    return int(np.prod(self.factor_sizes, dtype=np.int64))

  def render(self, factors: np.ndarray) -> np.ndarray:
    """Images for factor indices.

    Args:
      factors: int array [N, 5] of level indices into this configuration's grid, columns in
        `FACTOR_NAMES` order.

    Returns:
      uint8 array [N, 64, 64, 1] with values in {0, 1}.

    Raises:
      ValueError: if `factors` has the wrong shape or an index is out of range.
    """
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != 5:
      raise ValueError(f"factors must have shape [N, 5], got {factors.shape}.")
    if factors.size and (factors.min() < 0 or np.any(factors.max(0) >= self.factor_sizes)):
      raise ValueError(f"factors must lie in [0, factor_sizes) = {self.factor_sizes} per column.")
    strip = self._sprite_strip()
    sprite = (factors[:, 0] * self.factor_sizes[1] + factors[:, 1]) * self.factor_sizes[2]
    sprite += factors[:, 2]
    corner = self._y_offsets[factors[:, 4]] * IMAGE_SIZE + self._x_offsets[factors[:, 3]]
    start = sprite * _STRIP_LENGTH + _STRIP_BASE - corner
    # Each image is one contiguous 4,096-pixel window of the strip: a row copy per image.
    windows = np.lib.stride_tricks.sliding_window_view(strip, IMAGE_SIZE * IMAGE_SIZE)
    return windows[start].reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)

  def _sprite_strip(self) -> np.ndarray:
    """All sprites laid out so that every image is a window of one flat array.

    Sprite i occupies `_STRIP_LENGTH` pixels starting at i * _STRIP_LENGTH: its 32 rows at a
    stride of 64 pixels (columns 0..31 of 64-pixel rows, the rest zero) from offset _STRIP_BASE.
    Read as a 64x64 canvas, the window starting at _STRIP_BASE - (top * 64 + left) shows the
    sprite with its top-left pixel at (top, left); since left + 32 <= 64 no row wraps, and
    _STRIP_BASE >= 31 * 64 + 31 keeps every window inside the sprite's own stretch.

    Returns:
      uint8 array [num_sprites * _STRIP_LENGTH].
    """
    if self._strip is None:
      sprites = self.sprites.reshape(-1, PATCH_SIZE, PATCH_SIZE)
      strip = np.zeros((len(sprites), _STRIP_LENGTH // IMAGE_SIZE, IMAGE_SIZE), np.uint8)
      first_row = _STRIP_BASE // IMAGE_SIZE
      strip[:, first_row:first_row + PATCH_SIZE, :PATCH_SIZE] = sprites
      self._strip = strip.reshape(-1)
    return self._strip

  def render_indices(self, index: np.ndarray) -> np.ndarray:
    """Images for row-major grid positions `index` [N]: uint8 [N, 64, 64, 1]."""
    factors = np.stack(np.unravel_index(np.asarray(index, np.int64), self.factor_sizes), axis=1)
    return self.render(factors)

  def all_factors(self) -> np.ndarray:
    """Every factor tuple of the grid in row-major order: int64 [num_images, 5]."""
    return np.stack(np.unravel_index(np.arange(self.num_images), self.factor_sizes), axis=1)

  def values(self, factors: np.ndarray) -> np.ndarray:
    """Official factor values for level indices [N, 5]: float32 [N, 5]."""
    factors = np.asarray(factors)
    return np.stack([v[factors[:, k]] for k, v in enumerate(self.factor_values)],
                    axis=1).astype(np.float32)

  def iter_batches(self, batch_size: int = 4096, start: int = 0,
                   stop: Optional[int] = None):
    """Yields (factors [B, 5], images uint8 [B, 64, 64, 1]) over the grid in row-major order."""
    stop = self.num_images if stop is None else stop
    for begin in range(start, stop, batch_size):
      index = np.arange(begin, min(begin + batch_size, stop))
      factors = np.stack(np.unravel_index(index, self.factor_sizes), axis=1)
      yield factors, self.render(factors)


def level_lookup(config: str) -> Sequence[np.ndarray]:
  """Per factor, a map from full-grid level to config level (-1 where the level is dropped)."""
  lookups = []
  for size, levels in zip(FULL_FACTOR_SIZES, config_levels(config)):
    lookup = np.full(size, -1, np.int64)
    lookup[levels] = np.arange(len(levels))
    lookups.append(lookup)
  return lookups
