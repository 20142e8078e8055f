r"""Images (or points) per second of the dSprites renderer and of each input pipeline.

  python benchmarks/data_throughput.py                      # small sizes, about 15 s
  python benchmarks/data_throughput.py --batches=500 --render_examples=737280 \
      --fashion_examples=60000

Pipelines are timed over `--batches` batches after a first batch (which includes preparing the
TFDS records on first use and the renderer's sprites), with data
prepared in a temporary TFDS directory (or `--data_dir`). Fashion-MNIST uses the files in
`--manual_dir` when they are there, otherwise a synthetic IDX set of `--fashion_examples` images.
"""

import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from tfdecomp import data
from tfdecomp.datasets.decomp_dsprites import render
from tfdecomp.datasets.decomp_fashion_mnist import decomp_fashion_mnist_dataset_builder as fmnist
from tfdecomp.datasets.decomp_fashion_mnist import idx

_BATCHES = flags.DEFINE_integer("batches", 300, "Batches timed per pipeline.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size of the pipelines.")
_RENDER_EXAMPLES = flags.DEFINE_integer("render_examples", 100_000,
                                        "Images rendered in the renderer benchmark.")
_FASHION_EXAMPLES = flags.DEFINE_integer(
    "fashion_examples", 2_000, "Synthetic Fashion-MNIST training images when no files are found.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir (default: a temporary one).")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Manual dir with the Fashion-MNIST files.")


def _rate(count: int, seconds: float) -> str:
  return f"{count / seconds:>12,.0f} /s  ({count:,} in {seconds:.2f} s)"


def bench_renderer():
  for config in ("small", "full"):
    renderer = render.DSpritesRenderer(config)
    start = time.perf_counter()
    renderer.render_indices([0])  # Builds the sprites.
    setup = time.perf_counter() - start
    rng = np.random.default_rng(0)
    n = min(_RENDER_EXAMPLES.value, 10 * renderer.num_images)
    index = rng.integers(0, renderer.num_images, n)
    start = time.perf_counter()
    for begin in range(0, n, 1024):
      renderer.render_indices(index[begin:begin + 1024])
    print(f"renderer {config:5s} random batches of 1024  {_rate(n, time.perf_counter() - start)}"
          f"  (sprite set-up {setup:.2f} s)")
    start = time.perf_counter()
    count = 0
    for _, images in renderer.iter_batches(8192, stop=min(n, renderer.num_images)):
      count += len(images)
    print(f"renderer {config:5s} grid order            {_rate(count, time.perf_counter() - start)}")


def bench_pipeline(label: str, **kwargs):
  start = time.perf_counter()
  ds = data.load(batch_size=_BATCH_SIZE.value, seed=0, **kwargs).repeat()
  iterator = iter(ds)
  next(iterator)
  setup = time.perf_counter() - start
  start = time.perf_counter()
  count = 0
  for _ in range(_BATCHES.value):
    count += int(next(iterator).shape[0])
  print(f"pipeline {label:28s}{_rate(count, time.perf_counter() - start)}  "
        f"(prepare + first batch {setup:.2f} s)")


def _fashion_manual_dir(tmp: pathlib.Path) -> str:
  manual = _MANUAL_DIR.value or data.default_manual_dir(_DATA_DIR.value)
  if all(os.path.exists(os.path.join(manual, n)) for p in fmnist.FILES.values() for n in p):
    return manual
  rng = np.random.default_rng(0)
  tmp.mkdir(parents=True, exist_ok=True)
  for split, (images_name, labels_name) in fmnist.FILES.items():
    n = _FASHION_EXAMPLES.value if split == "train" else 100
    idx.write_idx(str(tmp / images_name), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    idx.write_idx(str(tmp / labels_name), rng.integers(0, 10, n, dtype=np.uint8))
  print(f"(Fashion-MNIST files not found in {manual}: timing {_FASHION_EXAMPLES.value:,} "
        "synthetic images)")
  return str(tmp)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  tfds.disable_progress_bar()
  with tempfile.TemporaryDirectory() as tmp:
    data_dir = _DATA_DIR.value or tmp
    bench_renderer()
    bench_pipeline("dsprites full (rendered)", name="dsprites", data_dir=data_dir,
                   source="render")
    bench_pipeline("dsprites small (rendered)", name="dsprites", config="small",
                   data_dir=data_dir, source="render")
    bench_pipeline("dsprites small (TFDS records)", name="dsprites", config="small",
                   data_dir=data_dir, source="tfds")
    bench_pipeline("pinwheel large", name="pinwheel", config="large", data_dir=data_dir)
    bench_pipeline("digits", name="digits", data_dir=data_dir)
    bench_pipeline("fashion_mnist", name="fashion_mnist", data_dir=data_dir,
                   manual_dir=_fashion_manual_dir(pathlib.Path(tmp) / "fashion_manual"))


if __name__ == "__main__":
  app.run(main)
