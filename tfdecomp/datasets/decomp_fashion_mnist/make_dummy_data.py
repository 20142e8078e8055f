"""Writes the dummy data of `decomp_fashion_mnist`: the four IDX .gz files with a few images.

Usage: python -m tfdecomp.datasets.decomp_fashion_mnist.make_dummy_data [output_dir]
(defaults to this folder's `dummy_data/`). Train holds 6 images, test 3; the output is
byte-for-byte reproducible.
"""

import os
import pathlib
import sys

import numpy as np

from tfdecomp.datasets.decomp_fashion_mnist import decomp_fashion_mnist_dataset_builder as builder
from tfdecomp.datasets.decomp_fashion_mnist import idx

NUM_EXAMPLES = {"train": 6, "test": 3}


def arrays(split: str):
  """(images uint8 [n, 28, 28], labels uint8 [n]) for a split, from a fixed seed."""
  rng = np.random.default_rng(0 if split == "train" else 1)
  n = NUM_EXAMPLES[split]
  return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
          rng.integers(0, 10, n, dtype=np.uint8))


def main(output_dir: pathlib.Path) -> pathlib.Path:
  output_dir.mkdir(parents=True, exist_ok=True)
  for split, (images_name, labels_name) in builder.FILES.items():
    images, labels = arrays(split)
    idx.write_idx(os.fspath(output_dir / images_name), images)
    idx.write_idx(os.fspath(output_dir / labels_name), labels)
  return output_dir


if __name__ == "__main__":
  main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1
       else pathlib.Path(__file__).parent / "dummy_data")
