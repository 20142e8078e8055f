"""IDX reading and writing, and Fashion-MNIST's errors for missing or bad files."""

import io
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfdecomp.datasets  # noqa: F401  (registers the builders)
from tfdecomp.datasets.decomp_fashion_mnist import decomp_fashion_mnist_dataset_builder as fmnist
from tfdecomp.datasets.decomp_fashion_mnist import idx
from tfdecomp.datasets.decomp_fashion_mnist import make_dummy_data


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype,shape", [(np.uint8, (5, 28, 28)), (np.uint8, (7,)),
                                         (np.int32, (3, 2)), (np.float32, (2, 3, 4))])
def test_round_trip(tmp_path, suffix, dtype, shape):
  array = (np.random.default_rng(0).random(shape) * 200 - 50).astype(dtype)
  path = str(tmp_path / ("array" + suffix))
  idx.write_idx(path, array)
  back = idx.read_idx(path)
  assert back.dtype == array.dtype and back.shape == array.shape
  np.testing.assert_array_equal(back, array)


def test_header_is_big_endian_mnist_layout():
  buffer = io.BytesIO()
  idx.write_idx(buffer, np.arange(6, dtype=np.uint8).reshape(2, 3), compress=False)
  assert buffer.getvalue() == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5])


def test_gzip_output_is_reproducible(tmp_path):
  array = np.arange(100, dtype=np.uint8)
  idx.write_idx(str(tmp_path / "a.gz"), array)
  idx.write_idx(str(tmp_path / "b.gz"), array)
  assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_bad_files_name_the_file(tmp_path):
  bad_magic = tmp_path / "bad-magic-idx3-ubyte"
  bad_magic.write_bytes(b"\x01\x02\x03\x04" + bytes(10))
  with pytest.raises(ValueError, match="bad-magic-idx3-ubyte.*magic"):
    idx.read_idx(str(bad_magic))
  truncated = tmp_path / "truncated-idx3-ubyte"
  buffer = io.BytesIO()
  idx.write_idx(buffer, np.zeros((4, 28, 28), np.uint8), compress=False)
  truncated.write_bytes(buffer.getvalue()[:-10])
  with pytest.raises(ValueError, match="truncated-idx3-ubyte.*truncated"):
    idx.read_idx(str(truncated))
  not_gzip = tmp_path / "broken.gz"
  not_gzip.write_bytes(b"\x1f\x8b" + bytes(20))
  with pytest.raises(ValueError, match="broken.gz"):
    idx.read_idx(str(not_gzip))


def _prepare(manual_dir: pathlib.Path, data_dir: pathlib.Path):
  builder = tfds.builder("decomp_fashion_mnist", data_dir=str(data_dir))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False, manual_dir=str(manual_dir)))
  return builder


def test_missing_file_error_names_file_and_directory(tmp_path):
  manual = tmp_path / "manual"
  make_dummy_data.main(manual)
  (manual / "t10k-labels-idx1-ubyte.gz").unlink()
  with pytest.raises(FileNotFoundError) as error:
    _prepare(manual, tmp_path / "data")
  assert "t10k-labels-idx1-ubyte.gz" in str(error.value)
  assert str(manual) in str(error.value)


def test_mismatched_files_error_names_them(tmp_path):
  manual = tmp_path / "manual"
  make_dummy_data.main(manual)
  idx.write_idx(str(manual / fmnist.FILES["test"][1]), np.zeros(5, np.uint8))
  with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
    _prepare(manual, tmp_path / "data")


def test_fixture_round_trips_through_builder(tmp_path):
  manual = tmp_path / "manual"
  make_dummy_data.main(manual)
  builder = _prepare(manual, tmp_path / "data")
  examples = list(tfds.as_numpy(builder.as_dataset(split="test", shuffle_files=False)))
  images, labels = make_dummy_data.arrays("test")
  assert len(examples) == len(images)
  stored = sorted((e["image"][..., 0].tobytes(), int(e["label"])) for e in examples)
  expected = sorted((im.tobytes(), int(lab)) for im, lab in zip(images, labels))
  assert stored == expected
