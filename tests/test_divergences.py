"""Divergences: MMD against a NumPy double loop, inclusive KL against closed forms, KL fallback."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import divergences
from tfdecomp import posteriors
from tfdecomp import priors

tfd = tfp.distributions


def numpy_mmd(q, p, kernel="imq", scales=divergences.DEFAULT_MMD_SCALES, per_dimension=True):
  """The paper's estimator written as explicit loops."""
  q = np.asarray(q, np.float64)
  p = np.asarray(p, np.float64)
  batch, dim = q.shape

  def k(a, b, c):
    sq = (a - b)**2 if per_dimension else np.sum((a - b)**2)
    return c / (c + sq) if kernel == "imq" else np.exp(-sq / c)

  total = 0.0
  for s in scales:
    c = 2.0 * s
    for d in (range(dim) if per_dimension else [slice(None)]):
      within = across = 0.0
      for i in range(batch):
        for j in range(batch):
          if i != j:
            within += k(p[i, d], p[j, d], c) + k(q[i, d], q[j, d], c)
          across += k(p[i, d], q[j, d], c)
      total += within / (batch * (batch - 1)) - 2.0 * across / batch**2
  return total


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("per_dimension", [True, False])
def test_mmd_matches_numpy_double_loop(kernel, per_dimension):
  rng = np.random.default_rng(1)
  q = rng.normal(size=[7, 3])
  p = rng.normal(size=[7, 3]) * 1.5 + 0.3
  scales = (0.1, 1.0, 5.0) if kernel == "rbf" else divergences.DEFAULT_MMD_SCALES
  value = divergences.mmd(q, p, kernel=kernel, scales=scales, per_dimension=per_dimension)
  expected = numpy_mmd(q, p, kernel, scales, per_dimension)
  np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_mmd_float32_keeps_precision_at_paper_batch_size():
  rng = np.random.default_rng(2)
  q = rng.normal(size=[500, 50]).astype(np.float32)
  p = rng.normal(size=[500, 50]).astype(np.float32)
  value32 = divergences.mmd(q, p)
  value64 = divergences.mmd(q.astype(np.float64), p.astype(np.float64))
  assert value32.dtype == tf.float32
  np.testing.assert_allclose(value32, value64, atol=1e-5)


def test_mmd_near_zero_for_same_distribution_positive_for_shifted():
  rng = np.random.default_rng(3)
  # The estimate's spread for two N(0, I) batches of 200 in 4-D is about 0.04 (unbiased: mean 0).
  same = [float(divergences.mmd(rng.normal(size=[200, 4]), rng.normal(size=[200, 4])))
          for _ in range(10)]
  shifted = float(divergences.mmd(rng.normal(size=[200, 4]) + 0.5, rng.normal(size=[200, 4])))
  assert abs(np.mean(same)) < 0.04
  assert shifted > 0.5


def naive_mmd_tf(q, p, scales=divergences.DEFAULT_MMD_SCALES):
  """Plain TensorFlow autodiff of the same estimator, for gradient checks."""
  batch = tf.cast(tf.shape(q)[0], q.dtype)

  def ksum(a, b):
    sq = tf.square(a[:, None] - b[None])
    return tf.reduce_sum(sum(2 * s / (2 * s + sq) for s in scales))

  diagonal = batch * tf.cast(tf.shape(q)[1], q.dtype) * len(scales)
  return ((ksum(p, p) + ksum(q, q) - 2 * diagonal) / (batch * (batch - 1)) -
          2 * ksum(p, q) / batch**2)


def test_mmd_gradients_match_autodiff_of_the_formula():
  rng = np.random.default_rng(4)
  q = tf.constant(rng.normal(size=[9, 3]))
  p = tf.constant(rng.normal(size=[9, 3]) + 0.2)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([q, p])
    fused = divergences.mmd(q, p)
    naive = naive_mmd_tf(q, p)
  for var in (q, p):
    np.testing.assert_allclose(tape.gradient(fused, var), tape.gradient(naive, var), rtol=1e-9,
                               atol=1e-12)


@pytest.mark.parametrize("unknown_batch", [False, True])
def test_mmd_reduced_in_row_blocks_matches_the_formula(monkeypatch, unknown_batch):
  """Blocks of 3 rows for B = 11 (the last block padded), with a static or a None batch (fit's)."""
  monkeypatch.setattr(divergences, "_BLOCK_ELEMENTS", 3 * 11 * 3)
  blocks = []
  map_fn = tf.map_fn

  def spy(fn, elems, **kwargs):
    blocks.append(elems.shape.as_list())
    return map_fn(fn, elems, **kwargs)

  monkeypatch.setattr(tf, "map_fn", spy)
  # Scales of this test only, so the XLA functions are traced afresh with the small blocks.
  scales = (0.37, 1.3, 4.1) if unknown_batch else (0.41, 1.7, 3.9)
  rng = np.random.default_rng(6)
  q = tf.constant(rng.normal(size=[11, 3]))
  p = tf.constant(rng.standard_t(3.0, size=[11, 3]) + 0.2)
  spec = tf.TensorSpec([None if unknown_batch else 11, 3], tf.float64)

  @tf.function(input_signature=[spec, spec])
  def value_and_grads(q, p):
    with tf.GradientTape() as tape:
      tape.watch([q, p])
      value = divergences.mmd(q, p, scales=scales)
    return value, tape.gradient(value, [q, p])

  value, grads = value_and_grads(q, p)
  # One trace of the forward and one of the gradient function serve all three sums: 4 blocks of 3.
  assert blocks == [[None, None, 3] if unknown_batch else [4, 3, 3]] * 2
  np.testing.assert_allclose(value, numpy_mmd(q, p, scales=scales), rtol=1e-10)
  with tf.GradientTape() as tape:
    tape.watch([q, p])
    naive = naive_mmd_tf(q, p, scales)
  for grad, expected in zip(grads, tape.gradient(naive, [q, p])):
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
def test_mmd_inside_tf_function(jit):
  rng = np.random.default_rng(5)
  q = tf.Variable(rng.normal(size=[16, 2]).astype(np.float32))
  p = tf.constant(rng.normal(size=[16, 2]).astype(np.float32))

  @tf.function(jit_compile=jit)
  def value_and_grad():
    with tf.GradientTape() as tape:
      value = divergences.mmd(q, p)
    return value, tape.gradient(value, q)

  value, grad = value_and_grad()
  np.testing.assert_allclose(value, numpy_mmd(q.numpy(), p.numpy()), rtol=1e-4)
  assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("args, match", [
    (dict(z_q=np.zeros([4, 2]), z_p=np.zeros([5, 2])), "same shape"),
    (dict(z_q=np.zeros([4]), z_p=np.zeros([4])), r"\[B, D\]"),
    (dict(z_q=np.zeros([1, 2]), z_p=np.zeros([1, 2])), "at least 2"),
    (dict(z_q=np.zeros([4, 2]), z_p=np.zeros([4, 2]), kernel="gauss"), "kernel"),
    (dict(z_q=np.zeros([4, 2]), z_p=np.zeros([4, 2]), scales=(1.0, -1.0)), "scales"),
])
def test_mmd_invalid_arguments(args, match):
  with pytest.raises(ValueError, match=match):
    divergences.mmd(**args)


def test_inclusive_kl_matches_direct_computation():
  rng = np.random.default_rng(6)
  loc = rng.normal(size=[5, 3])
  scale = rng.uniform(0.3, 1.5, size=[5, 3])
  z = rng.normal(size=[8, 3])
  prior = priors.StudentT(3, df=4.0)
  value = divergences.inclusive_kl(prior, loc, scale, prior_samples=z)
  log_p = scipy.stats.t.logpdf(z, df=4.0).sum(-1)
  log_q = np.array([
      scipy.special.logsumexp([scipy.stats.norm.logpdf(zj, loc[i], scale[i]).sum()
                               for i in range(5)]) - np.log(5) for zj in z])
  np.testing.assert_allclose(value, np.mean(log_p - log_q), rtol=1e-5)


def test_inclusive_kl_converges_to_the_true_kl():
  # All encodings equal: q(z) = N(m, s^2 I) exactly, and KL(N(0, I) || N(m, s^2 I)) is closed form.
  dim, m, s = 3, 0.4, 1.3
  loc = np.full([50, dim], m, np.float64)
  scale = np.full([50, dim], s, np.float64)
  prior = tfd.Independent(tfd.Normal(tf.zeros(dim, tf.float64), 1.0), 1)
  value = divergences.inclusive_kl(prior, loc, scale, num_samples=200_000, seed=3)
  exact = dim * (np.log(s) + (1.0 + m**2) / (2 * s**2) - 0.5)
  np.testing.assert_allclose(value, exact, rtol=0.01)


def test_inclusive_kl_of_mixture_aggregate_posterior_by_monte_carlo():
  # q(z) is an equal mixture of two Gaussians; the estimate with many prior samples must agree with
  # an independent NumPy Monte Carlo of E_p[log p - log q].
  loc = np.array([[-1.0], [1.0]])
  scale = np.array([[0.5], [0.5]])
  prior = tfd.Independent(tfd.Normal(tf.zeros(1, tf.float64), 1.0), 1)
  value = divergences.inclusive_kl(prior, loc, scale, num_samples=400_000, seed=4)
  z = np.random.default_rng(7).normal(size=400_000)
  log_q = np.log(0.5 * scipy.stats.norm.pdf(z, -1, 0.5) + 0.5 * scipy.stats.norm.pdf(z, 1, 0.5))
  np.testing.assert_allclose(value, np.mean(scipy.stats.norm.logpdf(z) - log_q), rtol=0.02)


def test_kl_divergence_analytic_and_monte_carlo():
  rng = np.random.default_rng(8)
  loc = rng.normal(size=[4, 3])
  scale = rng.uniform(0.5, 1.5, size=[4, 3])
  posterior = posteriors.diagonal_gaussian(loc, scale)
  prior_var = np.array([0.5, 1.0, 2.0])
  prior = tfd.Independent(tfd.Normal(tf.zeros(3, tf.float64), np.sqrt(prior_var)), 1)
  exact = np.sum(0.5 * (scale**2 / prior_var + loc**2 / prior_var - 1 - np.log(scale**2 / prior_var)),
                 axis=-1)
  np.testing.assert_allclose(divergences.kl_divergence(posterior, prior), exact, rtol=1e-10)
  z = posterior.sample(100_000, seed=tf.constant([3, 4]))
  mc = tf.reduce_mean(posterior.log_prob(z) - prior.log_prob(z), axis=0)
  np.testing.assert_allclose(mc, exact, atol=0.02)


def test_kl_divergence_falls_back_to_joint_monte_carlo():
  rng = np.random.default_rng(9)
  loc = rng.normal(size=[4, 2]).astype(np.float32)
  scale = np.full([4, 2], 0.3, np.float32)
  posterior = posteriors.diagonal_gaussian(loc, scale)
  prior = priors.Mixture()  # Not registered in TFP: Monte Carlo with the joint log p(z).
  z = posterior.sample(3, seed=tf.constant([1, 1])).numpy()
  value = divergences.kl_divergence(posterior, prior, z)
  log_q = scipy.stats.norm.logpdf(z, loc, scale).sum(-1)
  comps = np.stack([scipy.stats.norm.logpdf(z, mu, np.sqrt(0.03)).sum(-1) + np.log(0.25)
                    for mu in prior.locs], -1)
  expected = np.mean(log_q - scipy.special.logsumexp(comps, axis=-1), axis=0)
  np.testing.assert_allclose(value, expected, rtol=1e-4)
  with pytest.raises(ValueError, match="Monte Carlo"):
    divergences.kl_divergence(posterior, prior)


@pytest.mark.parametrize("scales", [divergences.DEFAULT_MMD_SCALES, (0.05, 0.3, 1.0, 7.0)])
def test_imq_scale_sum_as_one_rational_function_is_exact_in_float32(scales):
  """The IMQ kernel summed over scales, and its derivative, as evaluated inside the fused MMD
  (one rational function of v = 1 / (1 + u)), against the per-scale sum in float64 for squared
  distances u from 0 to 1e12."""
  constants = tuple(2.0 * s for s in scales)
  u = np.concatenate([[0.0], np.logspace(-9, 12, 3000)])
  values = divergences._kernel_values(tf.constant(u, tf.float32), constants, "imq").numpy()
  slopes = divergences._kernel_derivatives(tf.constant(u, tf.float32), constants, "imq").numpy()
  exact = sum(c / (c + u) for c in constants)
  exact_slopes = -sum(c / (c + u) ** 2 for c in constants)
  np.testing.assert_allclose(values, exact, rtol=2e-6)
  np.testing.assert_allclose(slopes, exact_slopes, rtol=4e-6)
