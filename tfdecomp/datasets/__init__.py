"""tfdecomp's data sets: one folder each (TFDS builder + `SPEC`), registered below.

  pinwheel       `pinwheel`              Adams' pinwheel (configs paper, large)
  dsprites       `decomp_dsprites`       dSprites, official npz or procedural renderer (full, small)
  fashion_mnist  `decomp_fashion_mnist`  Fashion-MNIST from the four IDX files in the manual dir
  digits         `decomp_digits`         scikit-learn's 8x8 digits upsampled to 32x32

Importing this package registers the TFDS builders; none of them downloads anything. `REGISTRY`
maps each short name to its `DatasetSpec` (see `tfdecomp.datasets.spec`): add a data set with a
new folder and one `REGISTRY.register` line.
"""

from tfdecomp import registry as _registry
# Importing the builder modules registers them with TFDS.
from tfdecomp.datasets import decomp_digits
from tfdecomp.datasets import decomp_dsprites
from tfdecomp.datasets import decomp_fashion_mnist
from tfdecomp.datasets import pinwheel
from tfdecomp.datasets.decomp_digits import decomp_digits_dataset_builder  # noqa: F401
from tfdecomp.datasets.decomp_dsprites import decomp_dsprites_dataset_builder  # noqa: F401
from tfdecomp.datasets.decomp_fashion_mnist import decomp_fashion_mnist_dataset_builder  # noqa: F401
from tfdecomp.datasets.pinwheel import pinwheel_dataset_builder  # noqa: F401
from tfdecomp.datasets.spec import DatasetSpec

__all__ = ["DatasetSpec", "REGISTRY", "NAMES", "get", "by_builder"]

REGISTRY = _registry.Registry("dataset")
REGISTRY.register(pinwheel.SPEC.name, pinwheel.SPEC)
REGISTRY.register(decomp_dsprites.SPEC.name, decomp_dsprites.SPEC)
REGISTRY.register(decomp_fashion_mnist.SPEC.name, decomp_fashion_mnist.SPEC)
REGISTRY.register(decomp_digits.SPEC.name, decomp_digits.SPEC)
NAMES = REGISTRY.names()


def get(name: str) -> DatasetSpec:
  """The spec of a registered short name (raises a ValueError listing the names)."""
  return REGISTRY.get(name)


def by_builder(builder: str):
  """The spec whose TFDS builder is `builder`, or None."""
  for name in REGISTRY:
    if REGISTRY.get(name).builder == builder:
      return REGISTRY.get(name)
  return None
