"""Writes the dummy data of `decomp_dsprites`: a tiny npz with the official file's keys.

Usage: python -m tfdecomp.datasets.decomp_dsprites.make_dummy_data [output_dir]
(defaults to this folder's `dummy_data/`). The file holds 24 full-grid factor tuples, 8 of which
belong to the `small` config, with images from the procedural renderer.
"""

import pathlib
import sys

import numpy as np

from tfdecomp.datasets.decomp_dsprites import official
from tfdecomp.datasets.decomp_dsprites import render

NUM_EXAMPLES = 24
NUM_SMALL_EXAMPLES = 8


def factors() -> np.ndarray:
  """Full-grid factor tuples [24, 5]: 8 inside the small grid, 16 outside it (fixed seed)."""
  rng = np.random.default_rng(0)
  small = render.config_levels("small")
  inside = np.stack([rng.choice(levels, NUM_SMALL_EXAMPLES, replace=False)
                     if len(levels) >= NUM_SMALL_EXAMPLES else rng.choice(levels,
                                                                         NUM_SMALL_EXAMPLES)
                     for levels in small], axis=1)
  # Scale level 0 is not in the small grid, so these rows are dropped by the `small` config.
  outside = np.stack([rng.integers(0, n, NUM_EXAMPLES - NUM_SMALL_EXAMPLES)
                      for n in render.FULL_FACTOR_SIZES], axis=1)
  outside[:, 1] = 0
  rows = np.concatenate([inside, outside])
  assert len(np.unique(np.ravel_multi_index(tuple(rows.T), render.FULL_FACTOR_SIZES))) == len(rows)
  return rows


def main(output_dir: pathlib.Path) -> pathlib.Path:
  output_dir.mkdir(parents=True, exist_ok=True)
  path = output_dir / official.OFFICIAL_FILENAME
  official.write_npz(str(path), factors())
  return path


if __name__ == "__main__":
  main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1
       else pathlib.Path(__file__).parent / "dummy_data")
