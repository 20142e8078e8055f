"""`decomp_dsprites`: dSprites with TFDS's `dsprites` feature schema, built without a download.

Source, in order of preference:
  1. DeepMind's official `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` in the manual directory
     (`<data_dir>/downloads/manual/` by default);
  2. otherwise the procedural renderer in `render.py`, which reproduces the official factor grid
     (not the official pixels).

Configs: `full` (737,280 images) and `small` (2,304 images: 3 shapes x 3 scales x 4 orientations
x 8 x 8 positions, a subset of the official grid) for tests and CI. Labels are level indices of the
config's grid; `value_*` are the official factor values.

Preparing `full` writes 737,280 PNG-encoded records (minutes of CPU, ~100 MB). Training code does
not need that: `tfdecomp.data.load("dsprites")` streams the same images from the renderer (or the
npz) through tf.data.
"""

import numpy as np
import tensorflow_datasets as tfds

from tfdecomp.datasets.decomp_dsprites import official
from tfdecomp.datasets.decomp_dsprites import render

_CITATION = """\
@misc{dsprites17,
  author = {Loic Matthey and Irina Higgins and Demis Hassabis and Alexander Lerchner},
  title = {dSprites: Disentanglement testing Sprites dataset},
  howpublished= {https://github.com/deepmind/dsprites-dataset/},
  year = "2017",
}"""


class DSpritesConfig(tfds.core.BuilderConfig):
  """A dSprites factor grid: `full` or `small` (see `render.CONFIG_LEVELS`)."""


class Builder(tfds.core.GeneratorBasedBuilder):
  """dSprites from the official npz when present, else from a procedural renderer."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: official npz or procedural renderer; configs full and small.",
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Optional. To build from the official images instead of the procedural renderer, place
  {official.OFFICIAL_FILENAME} (from {official.OFFICIAL_URL})
  in the manual directory. Without it the images are rendered procedurally.
  """
  BUILDER_CONFIGS = [
      DSpritesConfig(name="full", description="The official grid: 737,280 images."),
      DSpritesConfig(name="small", description=(
          "3 shapes x 3 scales x 4 orientations x 8 x 8 positions = 2,304 images.")),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    sizes = render.DSpritesRenderer(self.builder_config.name).factor_sizes
    features = {"image": tfds.features.Image(shape=(64, 64, 1))}
    for name, size in zip(render.FACTOR_NAMES, sizes):
      features["label_" + name] = tfds.features.ClassLabel(num_classes=size)
    for name in render.FACTOR_NAMES:
      features["value_" + name] = tfds.features.Tensor(shape=[], dtype=np.float32)
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        homepage="https://github.com/deepmind/dsprites-dataset",
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    npz_path = None
    try:
      candidate = dl_manager.manual_dir / official.OFFICIAL_FILENAME
      if candidate.exists():
        npz_path = candidate
    except AssertionError:  # No manual directory: render.
      pass
    return {"train": self._generate_examples(npz_path)}

  def _generate_examples(self, npz_path):
    config = self.builder_config.name
    renderer = render.DSpritesRenderer(config)
    if npz_path is not None:
      with npz_path.open("rb") as f:
        for images, factors, values in official.iter_npz(f, config, path=str(npz_path)):
          yield from _records(images, factors, values, renderer.factor_sizes)
    else:
      for factors, images in renderer.iter_batches():
        yield from _records(images, factors, renderer.values(factors), renderer.factor_sizes)


def _records(images, factors, values, sizes):
  index = np.ravel_multi_index(tuple(factors.T), sizes)
  for i in range(len(images)):
    record = {"image": images[i]}
    for k, name in enumerate(render.FACTOR_NAMES):
      record["label_" + name] = int(factors[i, k])
      record["value_" + name] = np.float32(values[i, k])
    yield int(index[i]), record
