"""The procedural dSprites renderer and the official-file reader."""

import numpy as np
import pytest

from tfdecomp.datasets.decomp_dsprites import official
from tfdecomp.datasets.decomp_dsprites import render


@pytest.fixture(scope="module")
def full():
  return render.DSpritesRenderer("full")


def _centroid(images):
  """(row, column) centroid and area of binary images [N, 64, 64, 1]."""
  img = images[..., 0].astype(np.float64)
  area = img.sum(axis=(1, 2))
  rows = (img.sum(axis=2) * np.arange(64)).sum(axis=1) / area
  cols = (img.sum(axis=1) * np.arange(64)).sum(axis=1) / area
  return rows, cols, area


@pytest.mark.parametrize("config,count", [("full", 737280), ("small", 2304)])
def test_image_count_is_product_of_factor_sizes(config, count):
  renderer = render.DSpritesRenderer(config)
  assert renderer.num_images == int(np.prod(renderer.factor_sizes)) == count
  rendered = sum(len(images) for _, images in renderer.iter_batches(32768))
  assert rendered == count


def test_factor_values_match_official_grid(full):
  values = full.factor_values
  assert full.factor_sizes == (3, 6, 40, 32, 32)
  np.testing.assert_allclose(values[1], np.linspace(0.5, 1, 6))
  np.testing.assert_allclose(values[2], np.linspace(0, 2 * np.pi, 40))
  np.testing.assert_allclose(values[3], np.linspace(0, 1, 32))


def test_images_are_binary_uint8_and_inside_canvas(full):
  images = full.render(full.all_factors()[::97])
  assert images.dtype == np.uint8 and images.shape[1:] == (64, 64, 1)
  assert set(np.unique(images)) == {0, 1}
  assert images.reshape(len(images), -1).sum(axis=1).min() > 20  # Never empty or clipped away.


@pytest.mark.parametrize("axis", [3, 4])
def test_position_moves_centroid_monotonically(full, axis):
  rng = np.random.default_rng(0)
  for _ in range(20):
    base = [rng.integers(0, n) for n in full.factor_sizes]
    factors = np.tile(base, (32, 1))
    factors[:, axis] = np.arange(32)
    rows, cols, area = _centroid(full.render(factors))
    moving, still = (cols, rows) if axis == 3 else (rows, cols)
    np.testing.assert_allclose(np.diff(moving), 1.0, atol=1e-9)  # One pixel per step.
    np.testing.assert_allclose(still, still[0], atol=1e-9)
    np.testing.assert_array_equal(area, area[0])


def test_scale_increases_area_monotonically(full):
  for shape in range(3):
    for orientation in range(0, 40, 3):
      factors = np.array([[shape, s, orientation, 16, 16] for s in range(6)])
      area = _centroid(full.render(factors))[2]
      assert np.all(np.diff(area) > 0), (shape, orientation, area)
      ratio = area[-1] / area[0]  # Area grows like scale^2: (1 / 0.5)^2 = 4.
      assert 3.3 < ratio < 4.7, (shape, orientation, ratio)


def test_orientation_leaves_area_nearly_unchanged(full):
  for shape in range(3):
    for scale in range(6):
      factors = np.array([[shape, scale, o, 10, 20] for o in range(40)])
      area = _centroid(full.render(factors))[2]
      # Rasterising a small rotated sprite moves a few edge pixels; a scale step changes the
      # area by 20-44 %.
      assert area.max() / area.min() < 1.12, (shape, scale, area.min(), area.max())
      assert area.std() / area.mean() < 0.04, (shape, scale, area.std() / area.mean())


def test_orientation_rotates_the_heart(full):
  factors = np.array([[2, 5, o, 16, 16] for o in (0, 10, 20)])
  images = full.render(factors).reshape(3, -1).astype(int)
  assert np.abs(images[0] - images[1]).sum() > 40
  assert np.abs(images[0] - images[2]).sum() > 40
  # Orientation 2 pi (last level) is a full turn: almost the starting image.
  turn = full.render(np.array([[2, 5, 0, 16, 16], [2, 5, 39, 16, 16]])).reshape(2, -1)
  assert np.abs(turn[0].astype(int) - turn[1]).sum() < 10


def test_shapes_differ(full):
  for scale in (0, 5):
    images = full.render(np.array([[s, scale, 7, 16, 16] for s in range(3)]))
    flat = images.reshape(3, -1).astype(int)
    for i in range(3):
      for j in range(i + 1, 3):
        assert np.abs(flat[i] - flat[j]).sum() > 0.1 * min(flat[i].sum(), flat[j].sum())


def test_small_grid_is_a_subset_of_full_grid(full):
  small = render.DSpritesRenderer("small")
  levels = render.config_levels("small")
  factors = small.all_factors()[::7]
  full_factors = np.stack([levels[k][factors[:, k]] for k in range(5)], axis=1)
  np.testing.assert_array_equal(small.render(factors), full.render(full_factors))
  np.testing.assert_allclose(small.values(factors), full.values(full_factors))


def test_render_rejects_bad_factors(full):
  with pytest.raises(ValueError, match="shape"):
    full.render(np.zeros((3, 4), int))
  with pytest.raises(ValueError, match="factor_sizes"):
    full.render(np.array([[3, 0, 0, 0, 0]]))
  with pytest.raises(ValueError, match="config"):
    render.DSpritesRenderer("medium")


def test_npz_reader_keeps_config_rows_and_values(tmp_path):
  rows = np.array([[0, 1, 0, 0, 0], [2, 5, 30, 31, 4], [1, 0, 0, 0, 0], [1, 3, 10, 9, 13]])
  path = str(tmp_path / official.OFFICIAL_FILENAME)
  official.write_npz(path, rows)
  images, factors, values = zip(*official.iter_npz(path, "small", chunk_size=3))
  factors = np.concatenate(factors)
  # Row 2 (scale level 0) is not in the small grid; level 31 of x is small level 7, etc.
  np.testing.assert_array_equal(factors, [[0, 0, 0, 0, 0], [2, 2, 3, 7, 1], [1, 1, 1, 2, 3]])
  small = render.DSpritesRenderer("small")
  np.testing.assert_array_equal(np.concatenate(images), small.render(factors))
  np.testing.assert_allclose(np.concatenate(values), small.values(factors), rtol=1e-6)


def test_npz_reader_errors_name_the_file(tmp_path):
  not_zip = tmp_path / "not_a_zip.npz"
  not_zip.write_bytes(b"hello")
  with pytest.raises(ValueError, match="not_a_zip.npz"):
    next(official.iter_npz(str(not_zip)))
  missing = tmp_path / "missing_keys.npz"
  np.savez(missing, imgs=np.zeros((1, 64, 64), np.uint8))
  with pytest.raises(ValueError, match=r"missing_keys.npz.*latents_classes"):
    next(official.iter_npz(str(missing)))
  incomplete = tmp_path / "incomplete.npz"
  official.write_npz(str(incomplete), np.zeros((1, 5), int))
  with pytest.raises(ValueError, match="incomplete.npz.*missing"):
    official.load_packed_grid(str(incomplete), "small")
