"""TFDS builders of tfdecomp; importing this package registers them.

  pinwheel              Adams' pinwheel (configs paper, large)
  decomp_dsprites       dSprites, official npz or procedural renderer (configs full, small)
  decomp_fashion_mnist  Fashion-MNIST from the four IDX files in the manual directory
  decomp_digits         scikit-learn's 8x8 digits upsampled to 32x32

None of them downloads anything.
"""

# pylint: disable=unused-import
from tfdecomp.datasets.decomp_digits import decomp_digits_dataset_builder
from tfdecomp.datasets.decomp_dsprites import decomp_dsprites_dataset_builder
from tfdecomp.datasets.decomp_fashion_mnist import decomp_fashion_mnist_dataset_builder
from tfdecomp.datasets.pinwheel import pinwheel_dataset_builder

BUILDERS = {
    "pinwheel": pinwheel_dataset_builder.Builder,
    "decomp_dsprites": decomp_dsprites_dataset_builder.Builder,
    "decomp_fashion_mnist": decomp_fashion_mnist_dataset_builder.Builder,
    "decomp_digits": decomp_digits_dataset_builder.Builder,
}
