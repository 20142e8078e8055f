"""The alpha-beta decomposition objective of Mathieu et al. (2019) and the IWAE bound.

  L_ab(x) = E_q(z|x)[log p(x|z)] - beta * KL(q(z|x) || p(z)) - alpha * D(q(z), p(z))

beta controls the overlap of the encodings, alpha pulls the aggregate posterior q(z) onto the prior.
As in the authors' code, D is one scalar per batch subtracted from every example's objective, so the
loss to minimise is

  loss = mean_i[reconstruction_i + beta * kl_i] + alpha * D,

with reconstruction_i = -E_q(z|x_i)[log p(x_i|z)]: alpha has the paper's meaning (alpha = 100 on
Fashion-MNIST). beta-VAE is alpha = 0 (Higgins et al., 2017); the VAE is alpha = 0, beta = 1.

`decomposition_terms` returns per-example terms for callers that reduce them themselves (e.g.
against the global batch under `tf.distribute`); `decomposition_loss` reduces them to scalars.
"""

import numbers
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import divergences
from tfdecomp import priors as priors_lib

tfd = tfp.distributions

__all__ = ["DIVERGENCES", "decomposition_terms", "decomposition_loss", "iwae_bound", "make_seed"]

DIVERGENCES = ("mmd", "inclusive_kl", None)


def make_seed(seed) -> tf.Tensor:
  """A stateless int32 [2] seed from None (random), a Python int, or an int [2] tensor.

  A Python int always maps to the same seed (TFP's `sanitize_seed` would draw a new one per call).
  """
  if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
    if seed < 0:
      raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    state = np.random.SeedSequence(int(seed)).generate_state(2, dtype=np.uint32)
    return tf.constant(state.view(np.int32))
  return tfp.random.sanitize_seed(seed)


def _check_divergence(divergence):
  if divergence == "none":
    return None
  if divergence not in DIVERGENCES:
    raise ValueError(f"divergence must be one of 'mmd', 'inclusive_kl' or None, got "
                     f"{divergence!r}.")
  return divergence


def _check_num_samples(num_samples, name="num_samples") -> int:
  if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or (
      num_samples < 1):
    raise ValueError(f"{name} must be a positive integer, got {num_samples!r}.")
  return int(num_samples)


def _check_weight(name, value):
  """beta and alpha: non-negative numbers (checked when known in Python)."""
  if isinstance(value, numbers.Number):
    if not value >= 0 or value == float("inf"):
      raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
  return value


def _check_posterior(x, posterior):
  batch_shape = posterior.batch_shape
  event_shape = posterior.event_shape
  if batch_shape.rank != 1 or event_shape.rank != 1:
    raise ValueError("posterior must have batch shape [B] and event shape [D], got batch shape "
                     f"{batch_shape} and event shape {event_shape}.")
  if x.shape.rank is not None and x.shape.rank >= 1 and not batch_shape.is_compatible_with(
      x.shape[:1]):
    raise ValueError(f"x has {x.shape[0]} examples but the posterior has batch shape "
                     f"{batch_shape}: one posterior per example is needed.")


def _expected_log_likelihood(x, z, likelihood_fn):
  """log p(x|z_s) for z [S, B, D]: float [S, B]."""
  num_samples = tf.shape(z)[0]
  batch = tf.shape(z)[1]
  flat_z = tf.reshape(z, [num_samples * batch, tf.shape(z)[2]])
  x_shape = tf.shape(x)
  tiled_x = tf.reshape(tf.broadcast_to(x[tf.newaxis], tf.concat([[num_samples], x_shape], 0)),
                       tf.concat([[num_samples * batch], x_shape[1:]], 0))
  log_likelihood = likelihood_fn(flat_z).log_prob(tiled_x)
  if log_likelihood.shape.rank is not None and log_likelihood.shape.rank != 1:
    raise ValueError("likelihood_fn(z) must be a distribution with batch shape [N] and event shape "
                     f"x.shape[1:]; its log_prob had shape {log_likelihood.shape}.")
  return tf.reshape(log_likelihood, [num_samples, batch])


def decomposition_terms(x, posterior: tfd.Distribution,
                        likelihood_fn: Callable[[tf.Tensor], tfd.Distribution], prior,
                        divergence: Optional[str] = "mmd", num_samples: int = 1, seed=None,
                        all_gather: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
                        mmd_kwargs: Optional[dict] = None) -> dict:
  """Per-example terms of the decomposition objective.

  Args:
    x: float [B, ...] a batch of data.
    posterior: q(z|x), batch shape [B], event shape [D], reparameterised (e.g.
      `tfdecomp.posteriors.diagonal_gaussian`).
    likelihood_fn: maps z [N, D] to p(x|z), a distribution with batch shape [N] and event shape
      x.shape[1:] (e.g. `lambda z: likelihood.distribution(decoder(z))`).
    prior: a `tfdecomp.priors.Prior` or a TFP distribution with event shape [D].
    divergence: "mmd" (MMD between one posterior sample per example and as many prior samples),
      "inclusive_kl" (minibatch KL(p(z) || q(z))) or None.
    num_samples: S, posterior samples per example for the reconstruction and Monte Carlo KL.
    seed: None, int or stateless int32 [2] seed.
    all_gather: optional function concatenating a tensor over replicas along axis 0 (e.g.
      `tf.distribute.get_replica_context().all_gather(t, axis=0)`); the divergence's inputs (posterior
      samples or parameters, and this replica's prior samples) are gathered so that D is computed on
      the global batch, identically on every replica.
    mmd_kwargs: optional keyword arguments of `divergences.mmd` (kernel, scales, per_dimension).

  Returns:
    A dict with "reconstruction" [B] = -mean_s log p(x|z_s); "kl" [B] = KL(q(z|x) || p(z)), analytic
    when TFP has it, else the Monte Carlo estimate on the same z_s; "divergence", a scalar (0 when
    divergence is None); and "z" [S, B, D], the posterior samples used.

  Raises:
    ValueError: for an unknown divergence, a bad num_samples, or mismatched shapes.
  """
  divergence = _check_divergence(divergence)
  num_samples = _check_num_samples(num_samples)
  x = tf.convert_to_tensor(x)
  _check_posterior(x, posterior)
  distribution = priors_lib.as_distribution(prior)
  if posterior.event_shape[0] is not None and distribution.event_shape.rank == 1 and (
      distribution.event_shape[0] != posterior.event_shape[0]):
    raise ValueError(f"the posterior has {posterior.event_shape[0]} latent dimensions but the prior "
                     f"has {distribution.event_shape[0]}.")
  posterior_seed, prior_seed = tfp.random.split_seed(make_seed(seed), n=2)

  z = posterior.sample(num_samples, seed=posterior_seed)  # [S, B, D]
  reconstruction = -tf.reduce_mean(_expected_log_likelihood(x, z, likelihood_fn), axis=0)
  kl = divergences.kl_divergence(posterior, distribution, z)

  gather = all_gather if all_gather is not None else (lambda t: t)
  if divergence is None:
    divergence_value = tf.zeros([], z.dtype)
  else:
    batch = tf.shape(z)[1]
    prior_samples = gather(distribution.sample(batch, seed=prior_seed))
    if divergence == "mmd":
      divergence_value = divergences.mmd(gather(z[0]), prior_samples, **(mmd_kwargs or {}))
    else:
      divergence_value = divergences.inclusive_kl(
          distribution, gather(posterior.mean()), gather(posterior.stddev()),
          prior_samples=prior_samples)
  return {"reconstruction": reconstruction, "kl": kl, "divergence": divergence_value, "z": z}


def decomposition_loss(x, posterior: tfd.Distribution,
                       likelihood_fn: Callable[[tf.Tensor], tfd.Distribution], prior, beta, alpha,
                       divergence: Optional[str] = "mmd", num_samples: int = 1, seed=None,
                       mmd_kwargs: Optional[dict] = None) -> dict:
  """The decomposition objective on a batch, as scalars averaged over the batch.

  Args:
    x, posterior, likelihood_fn, prior, divergence, num_samples, seed, mmd_kwargs: see
      `decomposition_terms`.
    beta: weight >= 0 of KL(q(z|x) || p(z)).
    alpha: weight >= 0 of the divergence D(q(z), p(z)).

  Returns:
    A dict of scalars: "reconstruction" (mean of -E_q log p(x|z)), "kl" (mean KL), "divergence" (D),
    "loss" = reconstruction + beta * kl + alpha * divergence (to minimise), and "elbo" =
    -(reconstruction + kl).

  Raises:
    ValueError: for negative beta or alpha, and as `decomposition_terms`.
  """
  beta = _check_weight("beta", beta)
  alpha = _check_weight("alpha", alpha)
  terms = decomposition_terms(x, posterior, likelihood_fn, prior, divergence=divergence,
                              num_samples=num_samples, seed=seed, mmd_kwargs=mmd_kwargs)
  reconstruction = tf.reduce_mean(terms["reconstruction"])
  kl = tf.reduce_mean(terms["kl"])
  dtype = reconstruction.dtype
  loss = (reconstruction + tf.cast(beta, dtype) * kl +
          tf.cast(alpha, dtype) * terms["divergence"])
  return {"loss": loss, "reconstruction": reconstruction, "kl": kl,
          "divergence": terms["divergence"], "elbo": -(reconstruction + kl)}


def iwae_bound(x, posterior: tfd.Distribution,
               likelihood_fn: Callable[[tf.Tensor], tfd.Distribution], prior,
               num_samples: int = 1000, chunk_size: int = 100, seed=None) -> tf.Tensor:
  """The importance-weighted bound on log p(x) (Burda et al., 2016), per example.

    log p(x) >= E[log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)],  z_k ~ q(z|x),

  computed in chunks of `chunk_size` samples so that K = 1000 fits in memory (the decoder sees
  chunk_size * B latents at a time). K = 1 gives the single-sample ELBO estimate; the bound is
  non-decreasing in K in expectation and tends to log p(x).

  Args:
    x: float [B, ...].
    posterior, likelihood_fn, prior: see `decomposition_terms`.
    num_samples: K >= 1.
    chunk_size: samples per chunk (>= 1).
    seed: None, int or stateless int32 [2] seed.

  Returns:
    float [B]: the estimate of log p(x_i) for each example, in nats.
  """
  num_samples = _check_num_samples(num_samples)
  chunk_size = _check_num_samples(chunk_size, "chunk_size")
  x = tf.convert_to_tensor(x)
  _check_posterior(x, posterior)
  distribution = priors_lib.as_distribution(prior)
  sizes = [chunk_size] * (num_samples // chunk_size)
  if num_samples % chunk_size:
    sizes.append(num_samples % chunk_size)
  seeds = tfp.random.split_seed(make_seed(seed), n=len(sizes))  # a list of [2] seeds
  log_weights = []
  for size, chunk_seed in zip(sizes, seeds):
    z = posterior.sample(size, seed=chunk_seed)  # [k, B, D]
    log_weights.append(_expected_log_likelihood(x, z, likelihood_fn) +
                       distribution.log_prob(z) - posterior.log_prob(z))
  log_weights = tf.concat(log_weights, axis=0)  # [K, B]
  return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(
      tf.cast(num_samples, log_weights.dtype))
