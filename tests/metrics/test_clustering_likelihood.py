"""Clustering scores under a mixture prior, and the test-set likelihood (IWAE >= ELBO)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import metrics
from tfdecomp import priors

tfd = tfp.distributions


def _pinwheel_codes(noise=0.0, seed=0):
  prior = priors.Mixture()
  labels = np.repeat(np.arange(prior.num_components), 50)
  codes = prior.locs[labels] + noise * np.random.default_rng(seed).normal(size=(len(labels), 2))
  return prior, codes, labels


def test_codes_at_component_means_cluster_perfectly_under_any_labelling():
  prior, codes, labels = _pinwheel_codes()
  permuted = np.array([2, 0, 3, 1])[labels]
  for assignment in ("responsibility", "nearest"):
    scores = metrics.clustering_scores(codes, permuted, prior, assignment=assignment)
    assert scores["cluster_accuracy"] == 1.0 and scores["nmi"] == pytest.approx(1.0)
  locs_only = metrics.clustering_scores(codes, labels, prior.locs, assignment="nearest")
  assert locs_only["cluster_accuracy"] == 1.0 and "mmd" not in locs_only


def test_random_codes_cluster_at_chance():
  prior, _, labels = _pinwheel_codes()
  codes = np.random.default_rng(1).normal(size=(len(labels), 2))
  scores = metrics.clustering_scores(codes, labels, prior)
  assert scores["cluster_accuracy"] < 0.5 and scores["nmi"] < 0.1


def test_mmd_is_small_for_prior_samples_and_large_for_collapsed_codes():
  prior = priors.Mixture()
  samples = prior.sample(400, seed=3).numpy()
  labels = np.zeros(400, np.int64)
  near = metrics.clustering_scores(samples, labels, prior, seed=0)["mmd"]
  far = metrics.clustering_scores(np.zeros((400, 2)) + 0.01 * samples, labels, prior, seed=0)["mmd"]
  assert abs(near) < 0.05 and far > 10 * max(abs(near), 1e-3)


def test_matched_accuracy_and_bad_arguments():
  assert metrics.matched_accuracy([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
  assert metrics.matched_accuracy([0, 0, 1, 1], [0, 1, 0, 1]) == 0.5
  prior, codes, labels = _pinwheel_codes()
  with pytest.raises(ValueError, match="assignment"):
    metrics.clustering_scores(codes, labels, prior, assignment="kmeans")
  with pytest.raises(ValueError, match="mixture"):
    metrics.clustering_scores(codes, labels, priors.Gaussian(2))


def _linear_gaussian_model(exact_posterior):
  """p(z) = N(0, 1), p(x|z) = N(z, 1), so p(x) = N(0, 2) and q*(z|x) = N(x/2, 1/sqrt(2))."""
  prior = tfd.Independent(tfd.Normal(tf.zeros([1]), 1.0), 1)
  likelihood_fn = lambda z: tfd.Independent(tfd.Normal(z, 1.0), 1)
  if exact_posterior:
    encode_fn = lambda x: (x / 2.0, tf.fill(tf.shape(x), np.sqrt(0.5).astype(np.float32)))
  else:
    encode_fn = lambda x: (tf.zeros_like(x), tf.ones_like(x))
  return encode_fn, likelihood_fn, prior


def test_iwae_is_at_least_elbo_and_tends_to_log_marginal():
  x = np.random.default_rng(0).normal(scale=np.sqrt(2.0), size=(64, 1)).astype(np.float32)
  log_px = float(np.mean(tfd.Normal(0.0, np.sqrt(2.0)).log_prob(x[:, 0])))
  encode_fn, likelihood_fn, prior = _linear_gaussian_model(exact_posterior=False)
  data = tf.data.Dataset.from_tensor_slices((x, np.zeros(64))).batch(32)
  scores = metrics.likelihood_scores(data, encode_fn, likelihood_fn, prior,
                                     num_importance_samples=500, chunk_size=250)
  assert scores["num_examples"] == 64
  assert scores["elbo"] == pytest.approx(-(scores["reconstruction"] + scores["kl"]))
  assert scores["iwae"] >= scores["elbo"] + 0.05
  assert scores["iwae"] == pytest.approx(log_px, abs=0.03)
  assert scores["iwae"] <= log_px + 0.03
  exact = metrics.likelihood_scores(x, *_linear_gaussian_model(True), num_importance_samples=10)
  assert exact["iwae"] == pytest.approx(log_px, abs=1e-4)
  exact_kl = tfd.kl_divergence(tfd.Normal(x / 2, np.float32(np.sqrt(0.5))), tfd.Normal(0.0, 1.0))
  assert exact["kl"] == pytest.approx(float(np.mean(exact_kl)), rel=1e-5)
