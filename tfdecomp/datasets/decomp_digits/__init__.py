"""scikit-learn's handwritten digits as TFDS builder `decomp_digits`."""

from tfdecomp.datasets import spec as _spec

SPEC = _spec.DatasetSpec(
    name="digits",
    builder="decomp_digits",
    feature="image",
    labels=("label",),
    example_shape=(32, 32, 1),
    pixel_scale=255.0,
    clip=1e-6,
    in_memory=True,
    eval_split="test",
    network="dcgan32",
    likelihood="laplace",
    description="scikit-learn's 1,797 handwritten digits at 32x32 (bundled; an offline stand-in "
                "for Fashion-MNIST)",
)
