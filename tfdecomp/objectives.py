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

import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import divergences
from tfdecomp import priors as priors_lib
from tfdecomp import seeds

tfd = tfp.distributions

__all__ = ["combine_terms", "decomposition_terms", "decomposition_loss", "iwae_bound"]


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
                        divergence_kwargs: Optional[dict] = None, rows=None) -> dict:
  """Per-example terms of the decomposition objective.

  Args:
    x: float [B, ...] a batch of data.
    posterior: q(z|x), batch shape [B], event shape [D], reparameterised (e.g.
      `tfdecomp.posteriors.diagonal_gaussian`).
    likelihood_fn: maps z [N, D] to p(x|z), a distribution with batch shape [N] and event shape
      x.shape[1:] (e.g. `lambda z: likelihood.distribution(decoder(z))`).
    prior: a `tfdecomp.priors.Prior` or a TFP distribution with event shape [D].
    divergence: a name in `tfdecomp.divergences.REGISTRY`: "mmd" (MMD between one posterior
      sample per example and as many prior samples), "inclusive_kl" (minibatch KL(p(z) || q(z)));
      or None / "none".
    num_samples: S, posterior samples per example for the reconstruction and Monte Carlo KL.
    seed: None, int or stateless int32 [2] seed.
    all_gather: optional function concatenating a tensor over replicas along axis 0 (e.g.
      `tf.distribute.get_replica_context().all_gather(t, axis=0)`); the divergence's posterior
      inputs (samples or parameters) are gathered so that D is computed on the global batch,
      identically on every replica.
    divergence_kwargs: optional keyword arguments of the divergence (for "mmd": kernel, scales,
      per_dimension).
    rows: optional (offset, global_batch) scalars: x holds rows [offset, offset + B) of a global
      batch of G examples split over replicas. The noise is then a function of (seed, row of the
      global batch) only: the posterior's standard-normal noise eps [S, G, D] is drawn for the
      global batch and this replica keeps eps[:, offset:offset + B] (z = loc + scale * eps, so q
      must be a diagonal Gaussian, `tfdecomp.posteriors.diagonal_gaussian`), and the divergence's
      G prior samples are drawn whole on every replica. With rows=(0, B) this is exactly the draw
      without `rows`, so one device and R replicas draw the same numbers for the same example.

  Returns:
    A dict with "reconstruction" [B] = -mean_s log p(x|z_s); "kl" [B] = KL(q(z|x) || p(z)), analytic
    when TFP has it, else the Monte Carlo estimate on the same z_s; "divergence", a scalar (0 when
    divergence is None); and "z" [S, B, D], the posterior samples used.

  Raises:
    ValueError: for an unknown divergence, a bad num_samples, or mismatched shapes.
  """
  divergence = divergences.resolve(divergence)
  num_samples = _check_num_samples(num_samples)
  x = tf.convert_to_tensor(x)
  _check_posterior(x, posterior)
  distribution = priors_lib.as_distribution(prior)
  if posterior.event_shape[0] is not None and distribution.event_shape.rank == 1 and (
      distribution.event_shape[0] != posterior.event_shape[0]):
    raise ValueError(f"the posterior has {posterior.event_shape[0]} latent dimensions but the prior "
                     f"has {distribution.event_shape[0]}.")
  posterior_seed, prior_seed = tfp.random.split_seed(seeds.make_seed(seed), n=2)

  if rows is None:
    z = posterior.sample(num_samples, seed=posterior_seed)  # [S, B, D]
    prior_batch = None
  else:
    z = _rows_of_global_sample(posterior, num_samples, posterior_seed, *rows)
    prior_batch = rows[1]
  reconstruction = -tf.reduce_mean(_expected_log_likelihood(x, z, likelihood_fn), axis=0)
  kl = divergences.kl_divergence(posterior, distribution, z)

  gather = all_gather if all_gather is not None else (lambda t: t)
  if divergence is None:
    divergence_value = tf.zeros([], z.dtype)
  else:
    if prior_batch is None:  # This replica's share, gathered.
      prior_samples = gather(distribution.sample(tf.shape(z)[1], seed=prior_seed))
    else:  # The global batch's samples, the same on every replica.
      prior_samples = distribution.sample(prior_batch, seed=prior_seed)
    needed = divergences.REGISTRY.info(divergence)["inputs"]
    inputs = {"z": lambda: z[0], "loc": posterior.mean, "scale": posterior.stddev}
    gathered = {k: gather(inputs[k]()) if k in needed else None for k in inputs}
    divergence_value = divergences.REGISTRY.get(divergence)(
        distribution, prior_samples=prior_samples, **gathered, **(divergence_kwargs or {}))
  return {"reconstruction": reconstruction, "kl": kl, "divergence": divergence_value, "z": z}


def _rows_of_global_sample(posterior, num_samples, seed, offset, global_batch):
  """z [S, B, D]: rows [offset, offset + B) of the diagonal Gaussian's draw for G examples.

  Normal sampling in TFP is stateless_normal(shape, seed) * scale + loc; drawing the standard
  noise at the global shape [S, G, D] and slicing keeps each example's noise independent of how
  the batch is split (with offset 0 and G = B it is `posterior.sample(S, seed)` bit for bit).
  """
  base = getattr(posterior, "distribution", posterior)
  if not isinstance(base, tfd.Normal):
    raise ValueError("rows= needs a diagonal Gaussian posterior (tfdecomp.posteriors."
                     f"diagonal_gaussian), got {type(posterior).__name__}.")
  loc = tf.convert_to_tensor(base.loc)
  scale = tf.convert_to_tensor(base.scale)
  batch = tf.shape(loc)[0]
  dims = tf.shape(loc)[1]
  shape = tf.stack([num_samples, tf.cast(global_batch, tf.int32), dims])
  eps = tf.random.stateless_normal(shape, seed=seed, dtype=loc.dtype)
  eps = tf.slice(eps, tf.stack([0, tf.cast(offset, tf.int32), 0]),
                 tf.stack([num_samples, batch, dims]))  # A dynamic slice of static size.
  return eps * scale + loc


def combine_terms(terms: dict, beta, alpha, num_replicas: int = 1, extra_loss=None):
  """The objective's equation, in the one place it is written.

    loss = mean_i reconstruction_i + beta * mean_i kl_i + alpha * D

  Args:
    terms: `decomposition_terms` output: "reconstruction" [B] and "kl" [B] (this replica's
      examples) and "divergence", a scalar on the global batch.
    beta: weight >= 0 of KL(q(z|x) || p(z)) (number or scalar tensor).
    alpha: weight >= 0 of D(q(z), p(z)).
    num_replicas: R, replicas whose gradients are summed (Keras 3 sums them under
      tf.distribute). The loss to differentiate reduces the per-example terms against the global
      batch B * R (`tf.nn.compute_average_loss`) and divides the (already global) D and
      `extra_loss` by R, so that the sum over replicas is the single-device gradient.
    extra_loss: optional scalar added to the loss (e.g. `model.losses`), divided by R.

  Returns:
    (loss_to_differentiate, values): the scaled scalar loss, and the dict of scalars "loss",
    "reconstruction", "kl", "divergence" (batch means of this replica, D as given) and "elbo" =
    -(reconstruction + kl).
  """
  reconstruction, kl = terms["reconstruction"], terms["kl"]
  dtype = reconstruction.dtype
  beta = tf.cast(beta, dtype)
  alpha = tf.cast(alpha, dtype)
  divergence = tf.convert_to_tensor(terms["divergence"], dtype)
  global_batch = tf.shape(reconstruction)[0] * num_replicas
  scaled = (tf.nn.compute_average_loss(reconstruction, global_batch_size=global_batch)
            + beta * tf.nn.compute_average_loss(kl, global_batch_size=global_batch)
            + alpha * divergence / num_replicas)
  if extra_loss is not None:
    scaled += tf.cast(extra_loss, dtype) / num_replicas
  rec_mean, kl_mean = tf.reduce_mean(reconstruction), tf.reduce_mean(kl)
  values = {"loss": rec_mean + beta * kl_mean + alpha * divergence,
            "reconstruction": rec_mean, "kl": kl_mean, "divergence": divergence,
            "elbo": -(rec_mean + kl_mean)}
  return scaled, values


def decomposition_loss(x, posterior: tfd.Distribution,
                       likelihood_fn: Callable[[tf.Tensor], tfd.Distribution], prior, beta, alpha,
                       divergence: Optional[str] = "mmd", num_samples: int = 1, seed=None,
                       divergence_kwargs: Optional[dict] = None) -> dict:
  """The decomposition objective on a batch, as scalars averaged over the batch.

  Args:
    x, posterior, likelihood_fn, prior, divergence, num_samples, seed, divergence_kwargs: see
      `decomposition_terms`.
    beta: weight >= 0 of KL(q(z|x) || p(z)).
    alpha: weight >= 0 of the divergence D(q(z), p(z)).

  Returns:
    A dict of scalars (`combine_terms`): "reconstruction" (mean of -E_q log p(x|z)), "kl" (mean
    KL), "divergence" (D), "loss" = reconstruction + beta * kl + alpha * divergence (to
    minimise), and "elbo" = -(reconstruction + kl).

  Raises:
    ValueError: for negative beta or alpha, and as `decomposition_terms`.
  """
  beta = _check_weight("beta", beta)
  alpha = _check_weight("alpha", alpha)
  terms = decomposition_terms(x, posterior, likelihood_fn, prior, divergence=divergence,
                              num_samples=num_samples, seed=seed,
                              divergence_kwargs=divergence_kwargs)
  return combine_terms(terms, beta, alpha)[1]


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
  chunk_seeds = tfp.random.split_seed(seeds.make_seed(seed), n=len(sizes))  # a list of [2] seeds
  log_weights = []
  for size, chunk_seed in zip(sizes, chunk_seeds):
    z = posterior.sample(size, seed=chunk_seed)  # [k, B, D]
    log_weights.append(_expected_log_likelihood(x, z, likelihood_fn) +
                       distribution.log_prob(z) - posterior.log_prob(z))
  log_weights = tf.concat(log_weights, axis=0)  # [K, B]
  return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(
      tf.cast(num_samples, log_weights.dtype))
