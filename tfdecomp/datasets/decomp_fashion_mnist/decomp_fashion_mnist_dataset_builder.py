"""`decomp_fashion_mnist`: Fashion-MNIST (Xiao et al., 2017) read from the four official IDX files.

Place `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`
and `t10k-labels-idx1-ubyte.gz` (from https://github.com/zalandoresearch/fashion-mnist) in the
manual directory, `<data_dir>/downloads/manual/` by default, then
`tfds.load("decomp_fashion_mnist", data_dir=..., download_config=tfds.download.DownloadConfig(
manual_dir=...))` or `tfdecomp.data.load("fashion_mnist")`. Nothing is downloaded.

When online, TFDS's own builder gives the same images and labels (features `image` uint8
28x28x1, `label` ClassLabel(10)) and downloads the files itself:
`tfds.load("fashion_mnist")`, or `tfdecomp.data.load("tfds:fashion_mnist")` to get the same
32x32 preprocessing as here.
"""

import numpy as np
import tensorflow_datasets as tfds

from tfdecomp.datasets.decomp_fashion_mnist import idx
from tfdecomp.datasets.decomp_fashion_mnist.files import FILES
LABEL_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


class Builder(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST from local IDX files."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Download the four files {', '.join(f for pair in FILES.values() for f in pair)}
  from https://github.com/zalandoresearch/fashion-mnist (data/fashion/) and place them, still
  gzipped, in the manual directory.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(names=LABEL_NAMES),
        }),
        supervised_keys=("image", "label"),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = dl_manager.manual_dir
    paths = {}
    for split, names in FILES.items():
      paths[split] = tuple(manual_dir / name for name in names)
      for path in paths[split]:
        if not path.exists():
          raise FileNotFoundError(
              f"Fashion-MNIST file {path.name} not found in the manual directory {manual_dir} "
              f"(expected {path}).\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return {split: self._generate_examples(*p) for split, p in paths.items()}

  def _generate_examples(self, images_path, labels_path):
    with images_path.open("rb") as f:
      images = idx.read_idx(f, name=str(images_path))
    with labels_path.open("rb") as f:
      labels = idx.read_idx(f, name=str(labels_path))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
      raise ValueError(f"{images_path} must hold uint8 images [N, 28, 28], got "
                       f"{images.dtype} {images.shape}.")
    if labels.shape != images.shape[:1]:
      raise ValueError(f"{labels_path} holds {labels.shape} labels but {images_path} holds "
                       f"{len(images)} images.")
    for i in range(len(images)):
      yield i, {"image": images[i][..., None], "label": int(labels[i])}
