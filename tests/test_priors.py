"""Priors: densities against SciPy/NumPy, sampled moments against closed forms, validation."""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

from tfdecomp import priors

LOGITS = np.array([0.5, -1.0, 0.0, 2.0], np.float32)
SCALE = 0.7


def expected_variances(logits, scale):
  logits = np.asarray(logits, np.float64)
  return scale * len(logits) * np.exp(logits) / np.exp(logits).sum()


def make_points(dim, seed=0):
  rng = np.random.default_rng(seed)
  return np.concatenate([rng.normal(size=[20, dim]) * 2.0, np.zeros([1, dim]),
                         np.full([1, dim], 0.03)]).astype(np.float32)


def test_variance_parametrisation():
  prior = priors.Gaussian(4, variances_logits=LOGITS, variance_scale=SCALE)
  np.testing.assert_allclose(prior.variances, expected_variances(LOGITS, SCALE), rtol=1e-6)
  np.testing.assert_allclose(np.sum(prior.variances), SCALE * 4, rtol=1e-6)
  np.testing.assert_allclose(priors.Gaussian(3).variances, np.ones(3))


def test_gaussian_log_prob_matches_scipy():
  prior = priors.Gaussian(4, variances_logits=LOGITS, variance_scale=SCALE)
  z = make_points(4)
  expected = scipy.stats.norm.logpdf(z, scale=np.sqrt(expected_variances(LOGITS, SCALE))).sum(-1)
  np.testing.assert_allclose(prior.log_prob(z), expected, rtol=1e-5)
  np.testing.assert_allclose(prior(z), expected, rtol=1e-5)  # Calling the layer gives log p(z).


def test_student_t_log_prob_matches_scipy():
  prior = priors.StudentT(4, df=3.5, variances_logits=LOGITS, variance_scale=SCALE)
  z = make_points(4)
  scale = np.sqrt(expected_variances(LOGITS, SCALE))
  expected = scipy.stats.t.logpdf(z, df=3.5, scale=scale).sum(-1)
  np.testing.assert_allclose(prior.log_prob(z), expected, rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.8, 1.0])
def test_sparse_log_prob_matches_numpy(gamma):
  prior = priors.Sparse(4, gamma=gamma, spike_scale=0.05, variances_logits=LOGITS,
                        variance_scale=SCALE)
  z = make_points(4).astype(np.float64)
  slab = scipy.stats.norm.pdf(z, scale=np.sqrt(expected_variances(LOGITS, SCALE)))
  spike = scipy.stats.norm.pdf(z, scale=0.05)
  with np.errstate(divide="ignore"):
    expected = np.log(gamma * spike + (1 - gamma) * slab).sum(-1)
  finite = np.isfinite(expected)  # gamma = 1 puts no mass away from the spike's reach in float64.
  np.testing.assert_allclose(np.asarray(prior.log_prob(z))[finite], expected[finite], rtol=1e-4)


def test_mixture_log_prob_matches_numpy():
  locs = np.array([[0.0, -1.0, 0.5], [1.0, 0.0, 0.0], [-1.0, 2.0, 1.0]], np.float32)
  weights = np.array([0.2, 0.5, 0.3], np.float32)
  logits = np.array([0.3, 0.0, -0.4], np.float32)
  prior = priors.Mixture(locs, variance_scale=0.2, weights=weights, variances_logits=logits)
  z = make_points(3)
  std = np.sqrt(expected_variances(logits, 0.2))
  per_component = np.stack([
      np.log(w) + scipy.stats.norm.logpdf(z, loc=mu, scale=std).sum(-1)
      for w, mu in zip(weights, locs)], axis=-1)
  np.testing.assert_allclose(prior.log_prob(z), scipy.special.logsumexp(per_component, -1),
                             rtol=1e-5)
  np.testing.assert_allclose(prior.component_log_probs(z), per_component, rtol=1e-5)


def test_mixture_defaults_are_the_pinwheel_prior():
  prior = priors.Mixture()
  np.testing.assert_array_equal(prior.locs, [[0, -1], [0, 1], [1, 0], [-1, 0]])
  np.testing.assert_allclose(prior.variances, [0.03, 0.03], rtol=1e-6)
  np.testing.assert_allclose(prior.component_weights, [0.25] * 4)


ALL_PRIORS = {
    "gaussian": lambda: priors.Gaussian(4, variances_logits=LOGITS, variance_scale=SCALE),
    "student_t": lambda: priors.StudentT(4, df=9.0, variances_logits=LOGITS),
    "sparse": lambda: priors.Sparse(4, gamma=0.8, variances_logits=LOGITS),
    "mixture": lambda: priors.Mixture(np.eye(4, dtype=np.float32)[:3] * 2.0, variance_scale=0.1),
}


@pytest.mark.parametrize("name", sorted(ALL_PRIORS))
def test_shapes_and_float32_stability(name):
  prior = ALL_PRIORS[name]()
  dist = prior.distribution()
  assert dist.event_shape == [4] and dist.batch_shape == []
  samples = prior.sample(5, seed=1)
  assert samples.shape == (5, 4) and samples.dtype == tf.float32
  far = tf.constant([[1e3] * 4, [-1e3] * 4, [1e3, -1e3, 0.0, 5.0]], tf.float32)
  log_prob = prior.log_prob(far)
  assert log_prob.dtype == tf.float32
  assert np.all(np.isfinite(log_prob)), log_prob


def _sample_moments(prior, num=400_000):
  samples = prior.sample(num, seed=tf.constant([1, 2], tf.int32)).numpy().astype(np.float64)
  return samples, samples.mean(0), np.cov(samples, rowvar=False)


def test_gaussian_and_student_t_sample_moments():
  variances = expected_variances(LOGITS, SCALE)
  samples, mean, cov = _sample_moments(ALL_PRIORS["gaussian"]())
  np.testing.assert_allclose(mean, 0.0, atol=5 * np.sqrt(variances.max() / len(samples)))
  np.testing.assert_allclose(np.diag(cov), variances, rtol=0.015)
  np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0.0, atol=0.01)

  df = 9.0
  _, _, cov = _sample_moments(ALL_PRIORS["student_t"]())
  np.testing.assert_allclose(np.diag(cov), expected_variances(LOGITS, 1.0) * df / (df - 2),
                             rtol=0.03)


def test_sparse_sample_moments():
  gamma = 0.8
  samples, _, cov = _sample_moments(ALL_PRIORS["sparse"]())
  slab = expected_variances(LOGITS, 1.0)
  np.testing.assert_allclose(np.diag(cov), gamma * 0.05**2 + (1 - gamma) * slab, rtol=0.03)
  # Fraction of draws within 0.1 of zero: the spike's ~95.4 % share plus the slab's.
  inside = (gamma * (scipy.stats.norm.cdf(0.1, scale=0.05) - scipy.stats.norm.cdf(-0.1, scale=0.05))
            + (1 - gamma) * (scipy.stats.norm.cdf(0.1, scale=np.sqrt(slab)) -
                             scipy.stats.norm.cdf(-0.1, scale=np.sqrt(slab))))
  np.testing.assert_allclose(np.mean(np.abs(samples) < 0.1, axis=0), inside, atol=0.005)


def test_mixture_sample_moments():
  prior = ALL_PRIORS["mixture"]()
  _, mean, cov = _sample_moments(prior)
  locs = prior.locs.astype(np.float64)
  weights = prior.component_weights.astype(np.float64)
  expected_mean = weights @ locs
  expected_cov = (np.diag(expected_variances(np.zeros(4), 0.1)) +
                  np.einsum("k,ki,kj->ij", weights, locs, locs) - np.outer(expected_mean,
                                                                          expected_mean))
  np.testing.assert_allclose(mean, expected_mean, atol=0.01)
  np.testing.assert_allclose(cov, expected_cov, atol=0.015)


def test_learnable_variances_train_and_keep_total():
  prior = priors.Gaussian(3, learnable=True, variance_scale=2.0)
  assert len(prior.trainable_weights) == 1
  assert not priors.Gaussian(3).trainable_weights
  z = tf.constant([[3.0, 0.1, 0.1]] * 8)
  optimizer = keras.optimizers.SGD(0.1)
  for _ in range(20):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(prior.log_prob(z))
    optimizer.apply(tape.gradient(loss, prior.trainable_weights), prior.trainable_weights)
  variances = prior.variances.numpy()
  assert variances[0] > 2.0 > variances[1]  # The first dimension's variance grew.
  np.testing.assert_allclose(variances.sum(), 6.0, rtol=1e-5)


def test_from_pca_uses_top_squared_singular_values():
  rng = np.random.default_rng(0)
  x = rng.normal(size=[60, 4, 5]) * np.linspace(3.0, 0.1, 20).reshape(4, 5)
  prior = priors.Gaussian.from_pca(x, latent_dim=6, variance_scale=1.0)
  singular = np.linalg.svd(x.reshape(60, -1), compute_uv=False)[:6]
  expected = 6 * singular**2 / np.sum(singular**2)
  np.testing.assert_allclose(prior.variances, expected, rtol=1e-4)
  assert np.all(np.diff(prior.variances.numpy()) <= 0)  # Largest first.

  centred = priors.Gaussian.from_pca(x + 5.0, latent_dim=6, center=True)
  singular = np.linalg.svd(x.reshape(60, -1) - x.reshape(60, -1).mean(0), compute_uv=False)[:6]
  np.testing.assert_allclose(centred.variances, 6 * singular**2 / np.sum(singular**2), rtol=1e-4)


def test_config_round_trip():
  for name, make in ALL_PRIORS.items():
    prior = make()
    clone = type(prior).from_config(prior.get_config())
    z = make_points(4)
    np.testing.assert_allclose(clone.log_prob(z), prior.log_prob(z), rtol=1e-6, err_msg=name)
  serialized = keras.saving.serialize_keras_object(priors.Sparse(2, gamma=0.5))
  clone = keras.saving.deserialize_keras_object(serialized)
  assert isinstance(clone, priors.Sparse) and clone.gamma == 0.5


def test_from_distribution_wraps_any_event_vector():
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  tfd = tfp.distributions
  dist = tfd.MultivariateNormalTriL(loc=[1.0, -1.0], scale_tril=[[1.0, 0.0], [0.5, 0.7]])
  prior = priors.FromDistribution(dist)
  assert prior.latent_dim == 2
  z = make_points(2)
  np.testing.assert_allclose(prior.log_prob(z), dist.log_prob(z))
  lazy = priors.FromDistribution(lambda: dist)
  np.testing.assert_allclose(lazy.log_prob(z), dist.log_prob(z))
  with pytest.raises(ValueError, match="event shape"):
    priors.FromDistribution(tfd.Normal(0.0, 1.0))
  with pytest.raises(ValueError, match="batch shape"):
    priors.FromDistribution(tfd.MultivariateNormalDiag(tf.zeros([3, 2])))


@pytest.mark.parametrize("make, match", [
    (lambda: priors.Sparse(3, gamma=1.5), "gamma"),
    (lambda: priors.Sparse(3, gamma=-0.1), "gamma"),
    (lambda: priors.StudentT(3, df=0.0), "df"),
    (lambda: priors.StudentT(3, df=-2.0), "df"),
    (lambda: priors.Gaussian(0), "latent_dim"),
    (lambda: priors.Gaussian(3, variance_scale=0.0), "variance_scale"),
    (lambda: priors.Gaussian(3, variances_logits=[0.0, 1.0]), "variances_logits"),
    (lambda: priors.Mixture([[0.0, 1.0], [1.0, 0.0]], latent_dim=3), "width"),
    (lambda: priors.Mixture([0.0, 1.0]), "locs"),
    (lambda: priors.Mixture([[0.0], [1.0]], weights=[1.0, -1.0]), "weights"),
    (lambda: priors.Sparse(3, gamma=0.5, spike_scale=0.0), "spike_scale"),
    (lambda: priors.get("laplace", 3), "unknown prior"),
    (lambda: priors.Gaussian.from_pca(np.ones([3, 2]), 5), "latent_dim"),
])
def test_invalid_arguments_name_the_argument(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_get_builds_each_prior():
  assert isinstance(priors.get("gaussian", 3), priors.Gaussian)
  assert priors.get("student_t", 3, df=9).df == 9.0
  assert priors.get("sparse", 3, gamma=0.8).gamma == 0.8
  assert priors.get("mixture", 2).num_components == 4
