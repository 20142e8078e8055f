"""Input pipelines and ground-truth access of tfdecomp.data (offline, small data)."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfdecomp import data
from tfdecomp.datasets.decomp_dsprites import official
from tfdecomp.datasets.decomp_dsprites import render
from tfdecomp.datasets.decomp_fashion_mnist import make_dummy_data as fashion_dummy


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds_data"))


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory):
  """A manual directory with the Fashion-MNIST fixture and no dSprites npz."""
  path = tmp_path_factory.mktemp("manual")
  fashion_dummy.main(path)
  return str(path)


@pytest.fixture(scope="module")
def npz_dir(tmp_path_factory):
  """A manual directory whose official-format npz covers the whole `small` grid."""
  path = tmp_path_factory.mktemp("npz_manual")
  levels = render.config_levels("small")
  small = render.DSpritesRenderer("small").all_factors()
  full_factors = np.stack([levels[k][small[:, k]] for k in range(5)], axis=1)
  order = np.random.default_rng(0).permutation(len(full_factors))  # Any file order works.
  official.write_npz(str(path / official.OFFICIAL_FILENAME), full_factors[order])
  return str(path)


def _epochs(ds, n=2):
  return [np.concatenate([b.numpy() for b in ds]) for _ in range(n)]


def test_pinwheel_is_deterministic_for_a_seed(data_dir):
  first = _epochs(data.load("pinwheel", batch_size=64, seed=3, data_dir=data_dir))
  again = _epochs(data.load("pinwheel", batch_size=64, seed=3, data_dir=data_dir))
  other = _epochs(data.load("pinwheel", batch_size=64, seed=4, data_dir=data_dir), 1)
  assert first[0].shape == (400, 2) and first[0].dtype == np.float32
  np.testing.assert_array_equal(first[0], again[0])
  np.testing.assert_array_equal(first[1], again[1])
  assert not np.array_equal(first[0], first[1])  # Reshuffled every epoch...
  assert not np.array_equal(first[0], other[0])  # ...and differently for another seed.
  np.testing.assert_array_equal(np.sort(first[0], axis=0), np.sort(first[1], axis=0))


def test_pinwheel_labels_and_splits(data_dir):
  x, y = data.load_numpy("pinwheel", "test", with_labels=True, data_dir=data_dir)
  assert x.shape == (400, 2) and y.shape == (400,)
  np.testing.assert_array_equal(np.bincount(y), [100] * 4)
  train = data.load_numpy("pinwheel", "train", data_dir=data_dir)
  assert not np.allclose(np.sort(train, axis=0), np.sort(x, axis=0))


def test_digits_are_32x32_clipped(data_dir):
  x, y = next(iter(data.load("digits", batch_size=128, seed=0, with_labels=True,
                             data_dir=data_dir)))
  assert x.shape == (128, 32, 32, 1) and x.dtype == tf.float32 and y.shape == (128,)
  assert float(tf.reduce_min(x)) == pytest.approx(1e-6)
  assert float(tf.reduce_max(x)) == pytest.approx(1 - 1e-6)
  assert 0.05 < float(tf.reduce_mean(x)) < 0.5


def test_fashion_mnist_from_manual_dir(data_dir, manual_dir):
  x, y = data.load_numpy("fashion_mnist", "train", with_labels=True, data_dir=data_dir,
                         manual_dir=manual_dir)
  images, labels = fashion_dummy.arrays("train")
  assert x.shape == (6, 32, 32, 1) and x.dtype == np.float32
  assert x.min() >= 1e-6 and x.max() <= 1 - 1e-6
  # The IDX images, scaled to [0, 1], resized to 32x32 and clipped (TFDS's order differs).
  expected = tf.clip_by_value(tf.image.resize(images[..., None] / 255.0, (32, 32)),
                              1e-6, 1 - 1e-6).numpy()
  for xi, yi in zip(x, y):
    distances = np.abs(expected - xi).max(axis=(1, 2, 3))
    assert distances.min() < 1e-5 and labels[distances.argmin()] == yi


def test_fashion_mnist_missing_files_name_file_and_directory(tmp_path):
  with pytest.raises(FileNotFoundError) as error:
    data.load("fashion_mnist", data_dir=str(tmp_path / "data"),
              manual_dir=str(tmp_path / "no_such_dir"))
  assert str(tmp_path / "no_such_dir") in str(error.value)
  assert "train-images-idx3-ubyte.gz" in str(error.value)


def test_dsprites_stream_matches_ground_truth(data_dir):
  ds = data.load("dsprites", config="small", batch_size=100, seed=0, with_labels=True,
                 data_dir=data_dir)
  xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
  x, y = np.concatenate(xs), np.concatenate(ys)
  assert x.shape == (2304, 64, 64, 1) and x.dtype == np.float32 and y.shape == (2304, 5)
  assert set(np.unique(x)) == {0.0, 1.0}
  truth = data.ground_truth("dsprites", "small", source="render")
  np.testing.assert_array_equal(x, truth.sample_observations_from_factors(y, None))
  assert len(np.unique(truth.factors_to_index(y))) == 2304  # Every image exactly once.


def test_dsprites_stream_is_deterministic_and_splits_partition(data_dir):
  def index(split, seed):
    ds = data.load("dsprites", split, config="small", batch_size=512, seed=seed,
                   with_labels=True, data_dir=data_dir)
    truth = data.ground_truth("dsprites", "small", source="render")
    return np.concatenate([truth.factors_to_index(y.numpy()) for _, y in ds])
  np.testing.assert_array_equal(index("train[:80%]", 1), index("train[:80%]", 1))
  assert not np.array_equal(index("train[:80%]", 1), index("train[:80%]", 2))
  head, tail = index("train[:80%]", 1), index("train[80%:]", 1)
  assert len(head) == round(0.8 * 2304) and len(head) + len(tail) == 2304
  assert not set(head) & set(tail)
  with pytest.raises(ValueError, match="split"):
    data.load("dsprites", "test", config="small", data_dir=data_dir)


def test_dsprites_sources_agree(data_dir, npz_dir):
  rendered = data.ground_truth("dsprites", "small", source="render")
  from_npz = data.ground_truth("dsprites", "small", source="auto", data_dir=data_dir,
                               manual_dir=npz_dir)
  assert isinstance(from_npz, data.GridGroundTruthData)
  from_tfds = data.ground_truth("dsprites", "small", source="tfds", data_dir=data_dir,
                                manual_dir=npz_dir)
  factors = rendered.sample_factors(300, np.random.default_rng(0))
  expected = rendered.sample_observations_from_factors(factors, None)
  for other in (from_npz, from_tfds):
    assert other.factor_sizes == rendered.factor_sizes
    np.testing.assert_array_equal(other.sample_observations_from_factors(factors, None), expected)
  streamed = data.load_numpy("dsprites", max_examples=50, config="small", data_dir=data_dir,
                             manual_dir=npz_dir, with_labels=True)
  np.testing.assert_array_equal(streamed[0],
                                rendered.sample_observations_from_factors(streamed[1], None))


def test_ground_truth_interface():
  truth = data.ground_truth("dsprites", "full", source="render")
  assert truth.factor_names == ("shape", "scale", "orientation", "x_position", "y_position")
  assert tuple(truth.factor_sizes) == (3, 6, 40, 32, 32) and truth.num_examples == 737280
  rng = np.random.default_rng(0)
  factors, obs = truth.sample(64, rng)
  assert factors.shape == (64, 5) and obs.shape == (64, 64, 64, 1) and obs.dtype == np.float32
  assert np.all(factors < np.array(truth.factor_sizes)) and factors.min() >= 0
  # "All examples sharing factor k = v": fix the scale, vary the rest.
  factors[:, 1] = 2
  same_scale = truth.sample_observations_from_factors(factors, rng)
  areas = same_scale.sum(axis=(1, 2, 3))
  for shape in range(3):
    sel = factors[:, 0] == shape
    if sel.sum() > 1:
      assert areas[sel].std() / areas[sel].mean() < 0.05


def test_grid_backend_from_examples_requires_full_grid():
  observations = np.arange(6, dtype=np.float32)[:, None]
  factors = np.array([[i, j] for i in range(2) for j in range(3)])[::-1]
  grid = data.GridGroundTruthData.from_examples(("a", "b"), (2, 3), factors, observations[::-1])
  np.testing.assert_array_equal(grid.sample_observations_from_factors(np.array([[1, 2]]), None),
                                [[5.0]])
  with pytest.raises(ValueError, match="combinations"):
    data.GridGroundTruthData.from_examples(("a", "b"), (2, 3), factors[:5], observations[:5])


def test_ground_truth_errors(tmp_path):
  with pytest.raises(ValueError, match="name"):
    data.ground_truth("shapes3d")
  with pytest.raises(ValueError, match="config"):
    data.ground_truth("dsprites", "tiny")
  with pytest.raises(ValueError, match="source"):
    data.ground_truth("dsprites", source="hdf5")
  with pytest.raises(FileNotFoundError) as error:
    data.ground_truth("dsprites", source="npz", manual_dir=str(tmp_path))
  assert official.OFFICIAL_FILENAME in str(error.value) and str(tmp_path) in str(error.value)


def test_load_argument_errors(data_dir):
  with pytest.raises(ValueError, match="batch_size"):
    data.load("pinwheel", batch_size=0, data_dir=data_dir)
  with pytest.raises(ValueError, match="source"):
    data.load("pinwheel", source="render", data_dir=data_dir)


def test_tfds_pass_through_with_mock_data(tmp_path):
  with pytest.raises(ValueError, match="download=True"):
    data.load("tfds:fashion_mnist", data_dir=str(tmp_path))
  # mock_data replaces download_and_prepare and the records: nothing is downloaded.
  with tfds.testing.mock_data(num_examples=8):
    x, y = next(iter(data.load("tfds:fashion_mnist", batch_size=4, with_labels=True,
                               download=True)))
    assert x.shape == (4, 32, 32, 1) and y.shape == (4,)
    assert tf.reduce_min(x) >= np.float32(1e-6) and tf.reduce_max(x) <= np.float32(1 - 1e-6)
    x, y = next(iter(data.load("tfds:dsprites", batch_size=4, with_labels=True,
                               download=True)))
    assert x.shape == (4, 64, 64, 1) and y.shape == (4, 5)


def test_default_directories(monkeypatch, tmp_path):
  monkeypatch.setenv("TFDECOMP_DATA_DIR", str(tmp_path))
  monkeypatch.delenv("TFDECOMP_MANUAL_DIR", raising=False)
  assert data.default_data_dir() == str(tmp_path)
  assert data.default_manual_dir() == os.path.join(str(tmp_path), "downloads", "manual")


def test_tfds_load_works_offline_after_import(data_dir):
  config = tfds.download.DownloadConfig(try_download_gcs=False)
  ds = tfds.load("pinwheel", split="train", data_dir=data_dir,
                 download_and_prepare_kwargs={"download_config": config})
  assert len(list(ds)) == 400
