"""`DatasetSpec`: what the rest of tfdecomp needs to know about a data set, declared in its folder.

Each data set's folder (`tfdecomp/datasets/<builder>/__init__.py`) declares one `SPEC`, and
`tfdecomp/datasets/__init__.py` registers it with one line. `tfdecomp.data` (pipelines, ground
truth), `tfdecomp.configs` (defaults, validation), `tfdecomp.training` and `tfdecomp.evaluation`
read these declarations instead of branching on names:

  feature, labels, factors     which features hold x and y; whether y is a ground-truth factor
                               matrix [N, K] (dSprites) or a class [N]
  example_shape, preprocessing the model input of one example (after scaling, resizing, clipping)
  in_memory / stream           held in memory for training, or fetched by index from a stream
                               (dSprites' renderer or official file: 737,280 images)
  ground_truth                 factor-indexed access for the disentanglement metrics
  network, likelihood,         how the presets model it, and the split they report
  eval_split
  check_files, describe_source manual files it needs; where its examples came from (config.json)

Adding a data set = one folder with a TFDS builder and a SPEC, plus one `REGISTRY.register(...)`
line; the conformance and data tests then cover it.
"""

import dataclasses
from typing import Callable, Optional, Tuple

__all__ = ["DatasetSpec"]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """The declaration of a data set.

  Attributes:
    name: the short name users type (`--dataset=digits`, `tfdecomp.data.load("digits")`).
    builder: the TFDS builder name.
    default_config: the builder config used when none is given (None: no configs).
    feature: the feature holding x ("x" for vectors, "image" for images).
    labels: features yielded as y by `with_labels=True`: one class feature, or the K factor
      features when `factors` is True.
    factors: whether `labels` are ground-truth factors (y is int64 [N, K]).
    example_shape: the shape of one model input after preprocessing, e.g. (64, 64, 1).
    pixel_scale: images are divided by it (255 for uint8 0..255; 1 for dSprites' 0/1 pixels);
      None for non-image data.
    resize: images are resized (bilinear) to resize x resize; None keeps their size.
    clip: inputs are clipped to [clip, 1 - clip] (so a Laplace or Bernoulli likelihood never sees
      exactly 0 or 1); None for no clipping.
    in_memory: training holds the split in memory (True), or fetches batches by index from
      `stream` (False).
    stream: for in_memory=False: callable(config, data_dir, manual_dir, source) returning a
      `tfdecomp.ground_truth.GroundTruthData` whose `images(index)` gives the raw examples at
      positions of its grid and whose `num_examples` is the split size.
    ground_truth: optional callable(config, data_dir, manual_dir, source) -> GroundTruthData, the
      factor-indexed access of the disentanglement metrics.
    splits: the splits the data set has.
    eval_split: the split the presets report (test loss, figures, evaluation).
    network: the network (`tfdecomp.networks.REGISTRY`) the presets use.
    likelihood: the likelihood (`tfdecomp.likelihoods.REGISTRY`) the presets use.
    check_files: optional callable(manual_dir) raising FileNotFoundError that names missing
      manual files, called before the builder is prepared.
    describe_source: optional callable(config, data_dir, manual_dir) -> str saying where the
      examples come from (e.g. "official npz at ..." or "procedural renderer").
    description: one line for help texts.
  """

  name: str
  builder: str
  default_config: Optional[str] = None
  feature: str = "image"
  labels: Tuple[str, ...] = ("label",)
  factors: bool = False
  example_shape: Tuple[int, ...] = ()
  pixel_scale: Optional[float] = 255.0
  resize: Optional[int] = None
  clip: Optional[float] = None
  in_memory: bool = True
  stream: Optional[Callable] = None
  ground_truth: Optional[Callable] = None
  splits: Tuple[str, ...] = ("train", "test")
  eval_split: str = "test"
  network: Optional[str] = None
  likelihood: Optional[str] = None
  check_files: Optional[Callable[[str], None]] = None
  describe_source: Optional[Callable[..., str]] = None
  description: str = ""

  @property
  def is_image(self) -> bool:
    return self.pixel_scale is not None

  def preprocess(self, batch):
    """Raw examples (a batch, as stored) -> float32 model inputs, as a TF op.

    Args:
      batch: tensor [B, ...] of stored examples (uint8 images or float vectors).

    Returns:
      float32 [B, *example_shape].
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    x = tf.cast(batch, tf.float32)
    if self.pixel_scale is not None and self.pixel_scale != 1:
      x = x / self.pixel_scale
    if self.resize:
      x = tf.image.resize(x, (self.resize, self.resize), method="bilinear")
    if self.clip:
      x = tf.clip_by_value(x, self.clip, 1.0 - self.clip)
    return x

  def replace(self, **changes) -> "DatasetSpec":
    return dataclasses.replace(self, **changes)
