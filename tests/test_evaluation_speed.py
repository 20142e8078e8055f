"""The fast evaluation paths give the same numbers: compiled grid encoding, compiled IWAE."""

import io

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special
from scipy import stats

from tfdecomp import data
from tfdecomp import evaluation
from tfdecomp import metrics
from tfdecomp import model as model_lib
from tfdecomp import networks
from tfdecomp import priors
from tfdecomp import progress
from tfdecomp import seeds

tfd = tfp.distributions


def test_encoded_dsprites_grid_equals_the_models_encode():
  encoder, decoder = networks.conv64(latent_dim=4)
  model = model_lib.DecompVAE(encoder, decoder, priors.Gaussian(4), "bernoulli", seed=0)
  ground_truth = data.ground_truth("dsprites", config="small", source="render")  # 2,304 images
  # A batch size that does not divide the grid exercises the reused buffer's last, short batch.
  encoded = evaluation.EncodedGroundTruth(
      ground_truth, evaluation.representation_function(model, batch_size=300), batch_size=1000,
      quiet=True)
  index = np.arange(ground_truth.num_examples)
  images = ground_truth.sample_observations_from_factors(ground_truth.index_to_factors(index))
  loc, _ = model.encode(images)
  assert encoded.codes.shape == (2304, 4) and encoded.codes.dtype == np.float64
  np.testing.assert_allclose(encoded.codes, loc.numpy(), rtol=1e-5, atol=1e-6)
  # uint8 input is cast inside the compiled graph to the same values.
  means = evaluation.encoder_means(model, batch_size=512)
  np.testing.assert_allclose(means(ground_truth.images(index[:700])), loc.numpy()[:700],
                             rtol=1e-5, atol=1e-6)


def _tiny_model():
  """q(z|x) = N(x A, softplus(x B)), p(z) = N(0, I), p(x|z) = N(z W, 0.7^2): D = 2, x in R^3."""
  rng = np.random.default_rng(0)
  a, b, w = (rng.normal(size=s).astype(np.float32) for s in ((3, 2), (3, 2), (2, 3)))
  encode_fn = lambda x: (tf.matmul(x, a), tf.nn.softplus(tf.matmul(x, b)))
  likelihood_fn = lambda z: tfd.Independent(tfd.Normal(tf.matmul(z, w), 0.7), 1)
  prior = tfd.Independent(tfd.Normal(tf.zeros([2]), 1.0), 1)
  x = rng.normal(size=(7, 3)).astype(np.float32)
  return x, (a, b, w), encode_fn, likelihood_fn, prior


def test_iwae_equals_a_numpy_logsumexp_of_the_importance_weights():
  x, (a, b, w), encode_fn, likelihood_fn, prior = _tiny_model()
  num_samples, chunk_size, seed = 10, 3, 5
  batches = [x[:4], x[4:]]
  compiled = metrics.likelihood_scores(batches, encode_fn, likelihood_fn, prior,
                                       num_importance_samples=num_samples,
                                       chunk_size=chunk_size, seed=seed, quiet=True)
  eager = metrics.likelihood_scores(batches, encode_fn, likelihood_fn, prior,
                                    num_importance_samples=num_samples, chunk_size=chunk_size,
                                    seed=seed, compiled=False, quiet=True)
  for key in ("iwae", "elbo", "kl", "reconstruction"):
    assert compiled[key] == pytest.approx(eager[key], rel=1e-5, abs=1e-5), key
  # Independent estimate: the same posterior draws (the library's seed derivation), the log
  # weights log p(x|z) + log p(z) - log q(z|x) from SciPy densities, a SciPy logsumexp.
  estimates = []
  for step, xb in enumerate(batches):
    loc, scale = xb @ a, np.log1p(np.exp(xb @ b))
    posterior = tfd.Independent(tfd.Normal(loc, scale), 1)
    chunk_seeds = tfp.random.split_seed(seeds.make_seed(seeds.iwae_batch(seed, step)), n=4)
    z = np.concatenate([posterior.sample(size, seed=s).numpy()
                        for size, s in zip((3, 3, 3, 1), chunk_seeds)])  # [K, B, 2]
    log_w = (stats.norm.logpdf(xb, z @ w, 0.7).sum(-1) + stats.norm.logpdf(z).sum(-1)
             - stats.norm.logpdf(z, loc, scale).sum(-1))
    estimates.append(special.logsumexp(log_w, axis=0) - np.log(num_samples))
  assert compiled["iwae"] == pytest.approx(np.mean(np.concatenate(estimates)), rel=1e-5)
  assert compiled["num_examples"] == 7


def test_progress_bar_prints_an_eta_and_a_final_line_and_is_quiet_on_request():
  stream = io.StringIO()
  bar = progress.Progress("encoding", 100, stream=stream, delay=0.0)
  for done in range(10, 101, 10):
    bar.update(done)
  bar.close()
  lines = stream.getvalue().splitlines()
  assert 5 <= len(lines) <= 11 and all(line.startswith("  encoding [") for line in lines)
  assert "<" in lines[1] and lines[-1].rstrip().endswith("s") and "100%" in lines[-1]
  quiet = io.StringIO()
  with progress.Progress("x", 10, stream=quiet, quiet=True) as q:
    q.update(10)
  short = io.StringIO()
  with progress.Progress("x", 10, stream=short) as s:  # Shorter than the default delay.
    s.update(10)
  assert quiet.getvalue() == "" and short.getvalue() == ""
