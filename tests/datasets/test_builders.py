"""The four TFDS builders, prepared offline with `tfds.testing.DatasetBuilderTestCase`.

The dummy data of decomp_dsprites and decomp_fashion_mnist is written by each folder's
`make_dummy_data.py` into a temporary directory, and compared with the committed copy.
"""

import filecmp
import pathlib
import tempfile

import numpy as np
import tensorflow_datasets as tfds

from tfdecomp.datasets.decomp_digits import decomp_digits_dataset_builder
from tfdecomp.datasets.decomp_dsprites import decomp_dsprites_dataset_builder
from tfdecomp.datasets.decomp_dsprites import make_dummy_data as dsprites_dummy
from tfdecomp.datasets.decomp_dsprites import official
from tfdecomp.datasets.decomp_fashion_mnist import decomp_fashion_mnist_dataset_builder
from tfdecomp.datasets.decomp_fashion_mnist import make_dummy_data as fashion_dummy
from tfdecomp.datasets.pinwheel import pinwheel_dataset_builder

_DATASETS = pathlib.Path(decomp_dsprites_dataset_builder.__file__).parent.parent


def _generated(script) -> str:
  directory = tempfile.mkdtemp(prefix="tfdecomp_dummy_")
  script.main(pathlib.Path(directory))
  return directory


class PinwheelTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = pinwheel_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["paper"]
  SPLITS = {"train": 400, "test": 400}
  EXAMPLE_DIR = tempfile.mkdtemp(prefix="tfdecomp_empty_")  # Generated data: no files needed.


class DigitsTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = decomp_digits_dataset_builder.Builder
  SPLITS = {"train": 1438, "test": 359}
  EXAMPLE_DIR = tempfile.mkdtemp(prefix="tfdecomp_empty_")


class FashionMnistTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = decomp_fashion_mnist_dataset_builder.Builder
  SPLITS = {"train": 6, "test": 3}
  EXAMPLE_DIR = _generated(fashion_dummy)


class DSpritesFromNpzTest(tfds.testing.DatasetBuilderTestCase):
  """Both configs read the tiny official-format npz; `small` keeps the rows on its grid."""
  DATASET_CLASS = decomp_dsprites_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["full", "small"]
  EXAMPLE_DIR = _generated(dsprites_dummy)

  def _download_and_prepare_as_dataset(self, builder):
    self.SPLITS = {"train": dsprites_dummy.NUM_SMALL_EXAMPLES
                   if builder.builder_config.name == "small" else dsprites_dummy.NUM_EXAMPLES}
    super()._download_and_prepare_as_dataset(builder)


class DSpritesRenderedTest(tfds.testing.DatasetBuilderTestCase):
  """Without the npz the `small` grid is rendered: every combination exactly once."""
  DATASET_CLASS = decomp_dsprites_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["small"]
  SPLITS = {"train": 2304}
  EXAMPLE_DIR = tempfile.mkdtemp(prefix="tfdecomp_no_npz_")

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # A non-empty manual directory without the npz.
    (pathlib.Path(cls.EXAMPLE_DIR) / "README").write_text("no npz here\n")


def test_committed_fashion_mnist_dummy_data_is_current():
  committed = _DATASETS / "decomp_fashion_mnist" / "dummy_data"
  names = [n for pair in decomp_fashion_mnist_dataset_builder.FILES.values() for n in pair]
  _, mismatch, errors = filecmp.cmpfiles(committed, FashionMnistTest.EXAMPLE_DIR, names,
                                         shallow=False)
  assert mismatch + errors == [], "rerun make_dummy_data.py and commit its output"


def test_committed_dsprites_dummy_data_is_current():
  name = official.OFFICIAL_FILENAME
  with np.load(_DATASETS / "decomp_dsprites" / "dummy_data" / name) as committed, \
      np.load(pathlib.Path(DSpritesFromNpzTest.EXAMPLE_DIR) / name) as fresh:
    for key in ("imgs", "latents_classes", "latents_values"):
      np.testing.assert_array_equal(committed[key], fresh[key], err_msg=key)
