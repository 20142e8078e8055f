"""`decomp_digits`: scikit-learn's bundled 8x8 handwritten digits, upsampled to 32x32.

1,797 real grey-level images (UCI optical recognition of handwritten digits, values 0..16) that
ship with scikit-learn, so the sparsity experiment can run on real images with no download when
the Fashion-MNIST files are absent. Each image is divided by 16, upsampled to 32x32 with bilinear
interpolation (half-pixel centres, edges clamped) and stored as uint8 0..255 with its label.
Splits: `test` holds every fifth image (index % 5 == 4, 359 images), `train` the other 1,438.
"""

import numpy as np
import tensorflow_datasets as tfds

IMAGE_SIZE = 32


def upsample(images: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
  """Bilinear upsampling with half-pixel centres: float [N, h, w] -> float [N, size, size]."""
  _, h, w = images.shape

  def weights(src, dst):
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    m = np.zeros((dst, src))
    m[np.arange(dst), lo] += 1 - (pos - lo)
    m[np.arange(dst), hi] += pos - lo
    return m

  rows, cols = weights(h, size), weights(w, size)
  return np.einsum("ih,nhw,jw->nij", rows, images, cols)


def load_images():
  """(images uint8 [1797, 32, 32, 1], labels int64 [1797]) from scikit-learn."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = upsample(digits.images.astype(np.float64) / 16.0)
  images = np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)[..., None]
  return images, digits.target.astype(np.int64)


class Builder(tfds.core.GeneratorBasedBuilder):
  """scikit-learn digits, 32x32."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Bundled with scikit-learn.
    return {"train": self._generate_examples(False), "test": self._generate_examples(True)}

  def _generate_examples(self, test: bool):
    images, labels = load_images()
    for i in range(len(images)):
      if (i % 5 == 4) == test:
        yield i, {"image": images[i], "label": int(labels[i])}
