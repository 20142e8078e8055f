"""Pinwheel: TFDS builder `pinwheel` and the generator `make_pinwheel`."""

from tfdecomp.datasets import spec as _spec

SPEC = _spec.DatasetSpec(
    name="pinwheel",
    builder="pinwheel",
    default_config="paper",
    feature="x",
    labels=("label",),
    example_shape=(2,),
    pixel_scale=None,
    in_memory=True,
    eval_split="test",
    network="mlp",
    likelihood="normal",
    description="Adams' pinwheel, 4 arms x 100 points per split (generated)",
)
