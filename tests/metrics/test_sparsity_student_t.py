"""Known answers for the normalised Hoyer sparsity, per-class magnitudes and the Student-t map."""

import numpy as np
import pytest
from scipy import stats

from tfdecomp import metrics


def test_hoyer_one_hot_is_one_and_constant_magnitude_is_zero():
  one_hot = np.eye(6)[np.random.default_rng(0).integers(0, 6, 300)] * 2.5
  assert metrics.hoyer_sparsity(one_hot) == pytest.approx(1.0)
  signs = np.where(np.random.default_rng(1).random((300, 6)) < 0.5, -1.0, 1.0)
  assert metrics.hoyer_sparsity(signs, normalize=False) == pytest.approx(0.0, abs=1e-12)
  # Same magnitude in every dimension after normalisation: per-dimension scales do not matter.
  assert metrics.hoyer_sparsity(signs * np.arange(1, 7)) == pytest.approx(
      metrics.hoyer_sparsity(signs), abs=1e-12)


def test_hoyer_matches_numpy_formula():
  z = np.random.default_rng(2).laplace(size=(200, 5)) * np.array([1.0, 2.0, 0.1, 5.0, 1.0])
  zn = z / z.std(axis=0, ddof=1)
  d = z.shape[1]
  expected = np.mean((np.sqrt(d) - np.abs(zn).sum(1) / np.sqrt((zn**2).sum(1))) / (np.sqrt(d) - 1))
  assert metrics.hoyer_sparsity(z) == pytest.approx(expected, rel=1e-12)
  assert 0.0 < expected < 1.0


def test_hoyer_rejects_one_dimensional_codes():
  with pytest.raises(ValueError, match="codes"):
    metrics.hoyer_sparsity(np.ones((5, 1)))


def test_per_class_latent_magnitude():
  codes = np.array([[2.0, 0.0], [4.0, 0.0], [0.0, -1.0], [0.0, 3.0]])
  labels = np.array([0, 0, 1, 1])
  out = metrics.per_class_latent_magnitude(codes, labels, num_classes=3, normalize=False)
  np.testing.assert_allclose(out[:2], [[3.0, 0.0], [0.0, 2.0]])
  assert np.all(np.isnan(out[2]))
  with pytest.raises(ValueError, match="num_classes"):
    metrics.per_class_latent_magnitude(codes, labels, num_classes=1)


@pytest.mark.parametrize("df,scale", [(9.0, 1.0), (3.0, 0.5), (30.0, 2.0)])
def test_student_t_samples_map_to_standard_normal(df, scale):
  z = stats.t.rvs(df, scale=scale, size=(4000, 2), random_state=0)
  mapped = metrics.student_t_to_normal(z, df, scale)
  assert stats.kstest(mapped.ravel(), "norm").pvalue > 0.01
  # The raw Student-t samples are detectably non-Normal (heavy tails) for small df.
  if df <= 3:
    assert stats.kstest(z.ravel() / scale, "norm").pvalue < 0.01


def test_student_t_map_is_finite_monotone_and_odd_in_the_tails():
  t = np.array([-1e12, -1e3, -40.0, -1.0, 0.0, 1.0, 40.0, 1e3, 1e12])
  out = metrics.student_t_to_normal(t, df=9.0)
  assert np.all(np.isfinite(out)) and np.all(np.diff(out) > 0)
  np.testing.assert_allclose(out, -out[::-1])
  np.testing.assert_allclose(out[3], stats.norm.ppf(stats.t.cdf(-1.0, 9.0)), rtol=1e-10)
  with pytest.raises(ValueError, match="df"):
    metrics.student_t_to_normal(t, df=0.0)
