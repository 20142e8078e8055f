"""The pinwheel generator against its definition (Adams' pinwheel.m, as called by the paper)."""

import numpy as np
import pytest

from tfdecomp.datasets.pinwheel import pinwheel_dataset_builder as pinwheel


def _polar_residuals(x, labels, rate=0.25, num_classes=4):
  """Angle of each point minus the angle its arm predicts from its radius, wrapped to (-pi, pi].

  By definition x = R(-angle) (a, b) with angle = 2 pi k / K + rate * exp(a), so
  atan2(x) = atan2(b, a) - angle, and a ~ |x| when b is small.
  """
  r = np.linalg.norm(x, axis=1)
  predicted = -(2 * np.pi * labels / num_classes + rate * np.exp(r))
  residual = np.arctan2(x[:, 1], x[:, 0]) - predicted
  return r, np.angle(np.exp(1j * residual))


def test_default_shapes_and_labels():
  x, labels = pinwheel.make_pinwheel(rng=np.random.default_rng(0))
  assert x.shape == (400, 2) and x.dtype == np.float32
  np.testing.assert_array_equal(np.bincount(labels), [100] * 4)


def test_statistics_match_definition():
  x, labels = pinwheel.make_pinwheel(0.1, 0.3, 4, 5000, 0.25, rng=np.random.default_rng(1))
  r, residual = _polar_residuals(x, labels)
  # Radial coordinate a ~ N(1, 0.3^2) (Adams' code scales it by tangential_std = 0.3).
  assert abs(r.mean() - 1.0) < 0.03, r.mean()
  assert abs(r.std() - 0.3) < 0.02, r.std()
  # Across-arm coordinate b ~ N(0, 0.1^2): the point lies on its arm's spiral.
  across = r * np.sin(residual)
  assert abs(across.std() - 0.1) < 0.015, across.std()
  assert np.quantile(np.abs(residual), 0.99) < 0.6


def test_wrong_arm_or_swapped_stds_are_detected():
  x, labels = pinwheel.make_pinwheel(rng=np.random.default_rng(2))
  _, residual = _polar_residuals(x, (labels + 1) % 4)
  assert np.median(np.abs(residual)) > 1.0  # Arms are a quarter turn apart.
  x, labels = pinwheel.make_pinwheel(0.3, 0.1, 4, 2000, rng=np.random.default_rng(3))
  r, _ = _polar_residuals(x, labels)
  assert abs(r.std() - 0.3) > 0.1  # The radial spread follows the second argument.


@pytest.mark.parametrize("split,other", [("train", "test")])
def test_splits_are_reproducible_and_different(split, other):
  def draw(name):
    return pinwheel.make_pinwheel(rng=np.random.default_rng(pinwheel.SEEDS[name]))[0]
  np.testing.assert_array_equal(draw(split), draw(split))
  assert not np.allclose(draw(split), draw(other))
