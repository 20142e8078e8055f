"""Fashion-MNIST from local IDX files as TFDS builder `decomp_fashion_mnist`."""

import os

from tfdecomp.datasets import spec as _spec
from tfdecomp.datasets.decomp_fashion_mnist.files import FILES as _FILES


def check_files(manual_dir: str) -> None:
  """Raises FileNotFoundError naming the IDX files missing from `manual_dir`."""
  missing = [name for pair in _FILES.values() for name in pair if not os.path.exists(os.path.join(manual_dir, name))]
  if missing:
    raise FileNotFoundError(
        f"Fashion-MNIST needs {', '.join(missing)} in the manual directory {manual_dir} "
        "(--manual_dir=DIR, manual_dir= or $TFDECOMP_MANUAL_DIR). Get the four files from "
        "https://github.com/zalandoresearch/fashion-mnist; nothing is downloaded. Without them, "
        "'digits' is an offline stand-in.")


SPEC = _spec.DatasetSpec(
    name="fashion_mnist",
    builder="decomp_fashion_mnist",
    feature="image",
    labels=("label",),
    example_shape=(32, 32, 1),
    pixel_scale=255.0,
    resize=32,
    clip=1e-6,
    in_memory=True,
    eval_split="test",
    network="dcgan32",
    likelihood="laplace",
    check_files=check_files,
    description="Fashion-MNIST resized to 32x32 (the four IDX files in the manual directory)",
)
