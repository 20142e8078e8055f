"""Likelihoods p(x|z): log-densities summed over each example, against SciPy/NumPy."""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats

from tfdecomp import likelihoods

RNG = np.random.default_rng(0)
PARAMS = RNG.normal(size=[3, 4, 4, 1])
X_GREY = RNG.uniform(size=[3, 4, 4, 1])
X_BINARY = (X_GREY > 0.5).astype(np.float64)


def test_bernoulli_logits_sum_over_pixels():
  dist = likelihoods.Bernoulli().distribution(PARAMS)
  assert dist.batch_shape == [3] and dist.event_shape == [4, 4, 1]
  p = scipy.special.expit(PARAMS)
  for x in (X_BINARY, X_GREY):  # Also defined for grey values in [0, 1].
    expected = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=(1, 2, 3))
    np.testing.assert_allclose(dist.log_prob(x), expected, rtol=1e-10)
  np.testing.assert_allclose(likelihoods.Bernoulli().mean(PARAMS), p, rtol=1e-12)


def test_laplace_fixed_scale():
  dist = likelihoods.Laplace(scale=0.1).distribution(PARAMS)
  expected = scipy.stats.laplace.logpdf(X_GREY, loc=PARAMS, scale=0.1).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(dist.log_prob(X_GREY), expected, rtol=1e-10)
  np.testing.assert_allclose(likelihoods.Laplace().mean(PARAMS), PARAMS)


def test_normal_learned_scale_for_2d_data():
  params = RNG.normal(size=[5, 4])
  x = RNG.normal(size=[5, 2])
  dist = likelihoods.Normal().distribution(params)
  assert dist.batch_shape == [5] and dist.event_shape == [2]
  scale = np.logaddexp(0.0, params[:, 2:]) + 1e-6
  expected = scipy.stats.norm.logpdf(x, params[:, :2], scale).sum(-1)
  np.testing.assert_allclose(dist.log_prob(x), expected, rtol=1e-10)
  np.testing.assert_allclose(likelihoods.Normal().mean(params), params[:, :2])
  assert likelihoods.Normal.params_per_channel == 2


def test_get_and_serialization():
  assert isinstance(likelihoods.get("bernoulli"), likelihoods.Bernoulli)
  lap = likelihoods.Laplace(0.3)
  assert likelihoods.get(lap) is lap
  clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(lap))
  assert clone == lap and clone.scale == 0.3
  with pytest.raises(ValueError, match="unknown likelihood"):
    likelihoods.get("poisson")
  with pytest.raises(ValueError, match="scale"):
    likelihoods.Laplace(scale=0.0)
  with pytest.raises(ValueError, match="even number"):
    likelihoods.Normal().distribution(np.zeros([2, 3]))
