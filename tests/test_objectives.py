"""The decomposition objective and the IWAE bound against NumPy and a linear-Gaussian model."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import divergences
from tfdecomp import likelihoods
from tfdecomp import objectives
from tfdecomp import posteriors
from tfdecomp import priors
from tfdecomp import seeds

tfd = tfp.distributions

RNG = np.random.default_rng(0)
X = RNG.uniform(size=[6, 2]).astype(np.float64)
LOC = RNG.normal(size=[6, 3])
SCALE = RNG.uniform(0.3, 1.0, size=[6, 3])
WEIGHT = RNG.normal(size=[3, 4])
LIKELIHOOD = likelihoods.Normal()


def likelihood_fn(z):
  return LIKELIHOOD.distribution(tf.matmul(z, WEIGHT))


def numpy_log_likelihood(x, z):
  params = z @ WEIGHT
  loc, raw = params[..., :2], params[..., 2:]
  return scipy.stats.norm.logpdf(x, loc, np.logaddexp(0, raw) + 1e-6).sum(-1)


def posterior():
  return posteriors.diagonal_gaussian(tf.constant(LOC), tf.constant(SCALE))


def gaussian64():
  return tfd.Independent(tfd.Normal(tf.zeros(3, tf.float64), tf.constant([0.5, 1.0, 2.0],
                                                                          tf.float64)), 1)


def test_terms_match_numpy_on_the_same_samples():
  terms = objectives.decomposition_terms(X, posterior(), likelihood_fn, gaussian64(),
                                         divergence=None, num_samples=4, seed=7)
  z = terms["z"].numpy()
  assert z.shape == (4, 6, 3)
  np.testing.assert_allclose(terms["reconstruction"],
                             -numpy_log_likelihood(X[None], z).mean(0), rtol=1e-10)
  prior_var = np.array([0.25, 1.0, 4.0])
  exact_kl = np.sum(0.5 * (SCALE**2 / prior_var + LOC**2 / prior_var - 1 -
                           np.log(SCALE**2 / prior_var)), -1)
  np.testing.assert_allclose(terms["kl"], exact_kl, rtol=1e-10)
  assert float(terms["divergence"]) == 0.0


def test_monte_carlo_kl_for_student_t_uses_the_reconstruction_samples():
  prior = tfd.Independent(tfd.StudentT(5.0, tf.zeros(3, tf.float64), 1.0), 1)
  terms = objectives.decomposition_terms(X, posterior(), likelihood_fn, prior, divergence=None,
                                         num_samples=3, seed=1)
  z = terms["z"].numpy()
  expected = np.mean(scipy.stats.norm.logpdf(z, LOC, SCALE).sum(-1) -
                     scipy.stats.t.logpdf(z, 5.0).sum(-1), axis=0)
  np.testing.assert_allclose(terms["kl"], expected, rtol=1e-8)


@pytest.mark.parametrize("divergence", ["mmd", "inclusive_kl"])
def test_loss_combines_terms_with_beta_and_alpha(divergence):
  prior = gaussian64()
  out = objectives.decomposition_loss(X, posterior(), likelihood_fn, prior, beta=0.3, alpha=7.0,
                                      divergence=divergence, seed=5)
  terms = objectives.decomposition_terms(X, posterior(), likelihood_fn, prior,
                                         divergence=divergence, seed=5)
  z = terms["z"].numpy()[0]
  # Reproduce the divergence independently from the same prior draw.
  prior_seed = tfp.random.split_seed(seeds.make_seed(5), n=2)[1]
  prior_samples = prior.sample(6, seed=prior_seed).numpy()
  if divergence == "mmd":
    from tests.test_divergences import numpy_mmd  # pylint: disable=g-import-not-at-top
    expected_d = numpy_mmd(z, prior_samples)
  else:
    log_q = np.array([scipy.special.logsumexp(scipy.stats.norm.logpdf(zj, LOC, SCALE).sum(-1)) -
                      np.log(6) for zj in prior_samples])
    expected_d = np.mean(prior.log_prob(prior_samples).numpy() - log_q)
  np.testing.assert_allclose(out["divergence"], expected_d, rtol=1e-8)
  rec = np.mean(terms["reconstruction"])
  kl = np.mean(terms["kl"])
  np.testing.assert_allclose(out["reconstruction"], rec, rtol=1e-12)
  np.testing.assert_allclose(out["loss"], rec + 0.3 * kl + 7.0 * expected_d, rtol=1e-8)
  np.testing.assert_allclose(out["elbo"], -(rec + kl), rtol=1e-12)


def test_same_seed_same_loss_and_gradients_flow():
  loc = tf.Variable(LOC)
  with tf.GradientTape() as tape:
    post = posteriors.diagonal_gaussian(loc, tf.constant(SCALE))
    first = objectives.decomposition_loss(X, post, likelihood_fn, gaussian64(), 1.0, 10.0,
                                          seed=11)["loss"]
  second = objectives.decomposition_loss(X, posterior(), likelihood_fn, gaussian64(), 1.0, 10.0,
                                         seed=11)["loss"]
  np.testing.assert_allclose(first, second)
  grad = tape.gradient(first, loc)
  assert grad is not None and np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_all_gather_computes_divergence_on_the_gathered_batch():
  calls = []

  def fake_gather(t):
    calls.append(t.shape)
    return tf.concat([t, t + 1.0], axis=0)

  terms = objectives.decomposition_terms(X, posterior(), likelihood_fn, gaussian64(), "mmd",
                                         seed=3, all_gather=fake_gather)
  assert [tuple(s) for s in calls] == [(6, 3), (6, 3)]  # Prior samples and posterior samples.
  assert np.isfinite(terms["divergence"])


def linear_gaussian_model(rng):
  """x = A z + noise: p(x) = N(0, A A^T + s^2 I) and the exact posterior are closed form."""
  a = rng.normal(size=[2, 2])
  noise = 0.5
  x = rng.normal(size=[5, 2]) * 1.5
  cov = a @ a.T + noise**2 * np.eye(2)
  log_px = scipy.stats.multivariate_normal(np.zeros(2), cov).logpdf(x)
  # A deliberately imperfect diagonal posterior.
  post_cov = np.linalg.inv(np.eye(2) + a.T @ a / noise**2)
  post_mean = x @ (post_cov @ a.T / noise**2).T
  posterior_dist = posteriors.diagonal_gaussian(tf.constant(post_mean + 0.2),
                                                tf.constant(np.sqrt(np.diag(post_cov)) * 1.3
                                                            * np.ones([5, 2])))
  lik = lambda z: tfd.Independent(tfd.Normal(tf.matmul(z, tf.constant(a.T)), noise), 1)
  prior = tfd.Independent(tfd.Normal(tf.zeros(2, tf.float64), 1.0), 1)
  return x, posterior_dist, lik, prior, log_px


def test_iwae_single_sample_is_the_elbo_sample():
  x, post, lik, prior, _ = linear_gaussian_model(np.random.default_rng(1))
  value = objectives.iwae_bound(x, post, lik, prior, num_samples=1, seed=4)
  chunk_seed = tfp.random.split_seed(seeds.make_seed(4), n=1)[0]
  z = post.sample(1, seed=chunk_seed)
  expected = (lik(z[0]).log_prob(x) + prior.log_prob(z[0]) - post.log_prob(z[0]))
  np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_iwae_expectation_and_monotonicity_and_convergence():
  x, post, lik, prior, log_px = linear_gaussian_model(np.random.default_rng(2))
  terms = objectives.decomposition_terms(x, post, lik, prior, divergence=None,
                                         num_samples=20000, seed=0)
  elbo = -(terms["reconstruction"] + terms["kl"]).numpy()
  k1_draws = np.stack([objectives.iwae_bound(x, post, lik, prior, num_samples=1, seed=s).numpy()
                       for s in range(400)])
  # E[IWAE_1] = ELBO: within four standard errors of the 400-draw mean.
  np.testing.assert_array_less(np.abs(k1_draws.mean(0) - elbo), 4 * k1_draws.std(0) / 20 + 0.01)
  k10 = np.mean([objectives.iwae_bound(x, post, lik, prior, num_samples=10, seed=s).numpy()
                 for s in range(100)], axis=0)
  k1000 = np.mean([objectives.iwae_bound(x, post, lik, prior, num_samples=1000, chunk_size=64,
                                         seed=s).numpy() for s in range(4)], axis=0)
  assert np.all(elbo < k10) and np.all(k10 < k1000 + 0.02)
  # A lower bound in expectation that tightens to log p(x) (missing the -log K would add 6.9).
  assert np.all(k1000 <= log_px + 0.05)
  np.testing.assert_allclose(k1000, log_px, atol=0.1)
  assert np.all(log_px - elbo > 0.1)  # The test posterior is imperfect: the gap is real.


@pytest.mark.parametrize("kwargs, match", [
    (dict(beta=-1.0, alpha=0.0), "beta"),
    (dict(beta=1.0, alpha=-0.5), "alpha"),
    (dict(beta=1.0, alpha=1.0, divergence="wasserstein"), "divergence"),
    (dict(beta=1.0, alpha=1.0, num_samples=0), "num_samples"),
])
def test_invalid_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    objectives.decomposition_loss(X, posterior(), likelihood_fn, gaussian64(), **kwargs)


def test_mismatched_shapes_are_reported():
  with pytest.raises(ValueError, match="one posterior per example"):
    objectives.decomposition_terms(X[:4], posterior(), likelihood_fn, gaussian64())
  with pytest.raises(ValueError, match="latent dimensions"):
    objectives.decomposition_terms(X, posterior(), likelihood_fn, priors.Gaussian(5))
  with pytest.raises(ValueError, match="chunk_size"):
    objectives.iwae_bound(X, posterior(), likelihood_fn, gaussian64(), chunk_size=0)


def test_works_with_prior_layers_in_float32():
  x = X.astype(np.float32)
  post = posteriors.diagonal_gaussian(tf.constant(LOC, tf.float32), tf.constant(SCALE, tf.float32))
  weight = tf.constant(WEIGHT, tf.float32)
  fn = lambda z: LIKELIHOOD.distribution(tf.matmul(z, weight))
  for prior in (priors.Gaussian(3), priors.StudentT(3, 9.0), priors.Sparse(3, 0.8),
                priors.Mixture(np.eye(3, dtype=np.float32))):
    for divergence in ("mmd", "inclusive_kl", None):
      out = objectives.decomposition_loss(x, post, fn, prior, 1.0, 1.0, divergence, seed=2)
      assert all(np.isfinite(v) for v in out.values()), (prior.name, divergence, out)
  assert np.all(np.isfinite(objectives.iwae_bound(x, post, fn, priors.Sparse(3, 0.8),
                                                  num_samples=30, chunk_size=8)))
