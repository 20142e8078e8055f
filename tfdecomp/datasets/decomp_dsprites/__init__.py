"""dSprites: TFDS builder `decomp_dsprites`, procedural renderer and official-file reader."""

from tfdecomp.datasets import spec as _spec
from tfdecomp.datasets.decomp_dsprites import ground_truth as _ground_truth

SPEC = _spec.DatasetSpec(
    name="dsprites",
    builder="decomp_dsprites",
    default_config="full",
    feature="image",
    labels=_ground_truth.LABELS,
    factors=True,
    example_shape=(64, 64, 1),
    pixel_scale=1.0,  # Stored as 0/1, not 0/255 (as TFDS's own dsprites).
    in_memory=False,
    stream=_ground_truth.make,
    ground_truth=_ground_truth.make,
    splits=("train",),
    eval_split="train",
    network="conv64",
    likelihood="bernoulli",
    describe_source=_ground_truth.describe_source,
    description="dSprites 64x64 (official npz in the manual directory, else rendered): 737,280 "
                "images with 5 ground-truth factors",
)
