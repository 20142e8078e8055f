"""Divergences between the aggregate posterior q(z) and the prior p(z), and KL helpers.

Pure functions of tensors (Mathieu et al., 2019, section 4 and the authors' `mmd_dim`/`kld_inc`):

- `mmd`: the unbiased estimate of the squared maximum mean discrepancy between a batch of aggregate
  posterior samples and a batch of prior samples, with an inverse multiquadric (or RBF) kernel,
  summed over kernel scales and, by default, over latent dimensions.
- `inclusive_kl`: the minibatch estimate of KL(p(z) || q(z)), q(z) = (1/B) sum_i q(z|x_i).
- `kl_divergence`: KL(q(z|x) || p(z)) per example, analytic when TFP has it, else Monte Carlo.

`REGISTRY` holds the divergences D(q(z), p(z)) the objective can use, by name ("mmd",
"inclusive_kl"); "none" (or None) means no D term, and `resolve` is the one place that says so.
Each entry is a function of the prior distribution and the global batch's posterior samples z,
means and scales and prior samples, and declares which of these it reads (`inputs`), so that
under tf.distribute only those are gathered from the replicas.
"""

import functools
import math
from typing import Optional, Sequence

import numpy as np

import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import priors as priors_lib
from tfdecomp import registry

tfd = tfp.distributions

__all__ = ["mmd", "inclusive_kl", "kl_divergence", "DEFAULT_MMD_SCALES", "KERNELS", "REGISTRY",
           "NAMES", "resolve", "aggregate_posterior_log_prob"]

# The authors' scales s; each gives the kernel constant C = 2 s.
DEFAULT_MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
KERNELS = ("imq", "rbf")


@functools.lru_cache(maxsize=None)
def _imq_rational(constants):
  """Coefficients (lowest degree first) of P, Q, N with, for v = 1 / (1 + u),

    sum_s C_s / (C_s + u)       =  P(v) / Q(v),
    sum_s -C_s / (C_s + u)^2    = -v^2 N(v) / Q(v)^2,

  from C_s / (C_s + u) = C_s v / L_s(v), L_s(v) = 1 + (C_s - 1) v: Q = prod_s L_s,
  P = sum_s C_s v prod_{t != s} L_t, N = sum_s C_s prod_{t != s} L_t^2 (computed in float64).
  One sum of S scales then costs two divisions (v and P / Q) and 2S multiply-adds instead of S
  divisions: a vector division costs about 16 multiply-adds on these CPUs. v lies in (0, 1] for
  every u >= 0 and each L_s(v) between min(C_s, 1) and max(C_s, 1), so nothing overflows; the
  float32 result is within ~1e-6 (relative) of the exact sum for u from 0 to 1e12
  (tests/test_divergences.py checks it against float64).
  """
  from numpy.polynomial import polynomial  # pylint: disable=g-import-not-at-top
  linear = [np.array([1.0, c - 1.0]) for c in constants]

  def product(factors, size):
    out = np.array([1.0])
    for factor in factors:
      out = polynomial.polymul(out, factor)
    return np.pad(out, (0, size - len(out)))

  num = len(constants)
  q = product(linear, num + 1)
  p = sum(product([np.array([0.0, c])] + linear[:s] + linear[s + 1:], num + 1)
          for s, c in enumerate(constants))
  squares = [polynomial.polymul(f, f) for f in linear]
  n = sum(c * product(squares[:s] + squares[s + 1:], 2 * num - 1) for s, c in enumerate(constants))
  return tuple(p.tolist()), tuple(q.tolist()), tuple(n.tolist())


def _horner(coefficients, x):
  out = tf.fill(tf.shape(x), tf.constant(coefficients[-1], x.dtype))
  for c in coefficients[-2::-1]:
    out = out * x + tf.constant(c, x.dtype)
  return out


def _kernel_values(sq_dist, constants, kernel):
  """sum over scales of k_C as a function of the squared distance u."""
  if kernel == "imq" and len(constants) > 2:
    p, q, _ = _imq_rational(tuple(constants))
    v = 1.0 / (1.0 + sq_dist)
    return _horner(p, v) / _horner(q, v)
  total = tf.zeros_like(sq_dist)
  for c in constants:
    c = tf.constant(c, sq_dist.dtype)
    total += c / (c + sq_dist) if kernel == "imq" else tf.exp(-sq_dist / c)
  return total


def _kernel_derivatives(sq_dist, constants, kernel):
  """d/du of `_kernel_values`."""
  if kernel == "imq" and len(constants) > 2:
    _, q, n = _imq_rational(tuple(constants))
    v = 1.0 / (1.0 + sq_dist)
    ratio = v / _horner(q, v)
    return -_horner(n, v) * tf.square(ratio)
  total = tf.zeros_like(sq_dist)
  for c in constants:
    c = tf.constant(c, sq_dist.dtype)
    total -= c / tf.square(c + sq_dist) if kernel == "imq" else tf.exp(-sq_dist / c) / c
  return total


def _pairwise(a, b, per_dimension):
  diff = a[:, tf.newaxis, :] - b[tf.newaxis, :, :]  # [B, B', D]
  sq_dist = tf.square(diff)
  if not per_dimension:
    sq_dist = tf.reduce_sum(sq_dist, axis=-1, keepdims=True)  # [B, B', 1]
  return diff, sq_dist


# Elements of a block of pair terms: blocks of 2^18 floats (1 MiB) stay in a core's L2 cache.
_BLOCK_ELEMENTS = 2 ** 18


def _over_row_blocks(per_row, a, b):
  """per_row(a_block [R, D]) -> [R, ...], for blocks of R rows of a, concatenated: [B, ...].

  R is chosen so that a block's R x B' x D pair terms fit in `_BLOCK_ELEMENTS`; the blocks run in
  an XLA while loop, so the pair terms of one block are reduced while still in cache and no
  B x B' x D temporary exists (it would be 50 MB at B = 500, D = 50, and grows as B^2). Shapes may
  be unknown when traced (a batch of None inside `fit`): XLA compiles for concrete shapes, and the
  block arithmetic below folds to constants then.
  """
  n, m, width = a.shape[0], b.shape[0], a.shape[1]
  if n is not None and m is not None and width is not None:
    if max(1, _BLOCK_ELEMENTS // max(1, m * width)) >= n:
      return per_row(a)
  n, m, width = tf.shape(a)[0], tf.shape(b)[0], tf.shape(a)[1]
  rows = tf.minimum(n, tf.maximum(1, _BLOCK_ELEMENTS // tf.maximum(1, m * width)))
  blocks = (n + rows - 1) // rows
  padded = tf.pad(a, [[0, blocks * rows - n], [0, 0]])   # Padding rows are computed, then dropped.
  blocked = tf.reshape(padded, tf.stack([blocks, rows, width]))
  blocked.set_shape([None, None, a.shape[1]])
  out = tf.map_fn(per_row, blocked, parallel_iterations=1)
  return tf.reshape(out, tf.concat([[blocks * rows], tf.shape(out)[2:]], 0))[:n]


# Forward and backward passes are separate XLA computations, each reducing the pair terms block by
# block (autodiff of the forward pass would store them all for the backward pass). A trace may
# generalise to unknown shapes (reduce_retracing); XLA still compiles each concrete shape, with
# static blocks. See benchmarks/mmd_speed.py.
@tf.function(jit_compile=True, reduce_retracing=True)
def _kernel_sum_xla(a, b, constants, kernel, per_dimension):
  def per_row(a_rows):
    _, sq_dist = _pairwise(a_rows, b, per_dimension)
    values = _kernel_values(sq_dist, constants, kernel)
    return tf.reduce_sum(values, axis=list(range(1, values.shape.rank)))

  # About B^2 D terms of order one. One float32 sum of all of them loses ~1e-3 of the estimate (a
  # difference of such sums) at B = 500, D = 50; per-row float32 sums of B*D terms added up in
  # float64 keep it to ~1e-7 at a fraction of the cost of casting every term.
  return tf.reduce_sum(tf.cast(_over_row_blocks(per_row, a, b), tf.float64))


@tf.function(jit_compile=True, reduce_retracing=True)
def _kernel_sum_grad_xla(a, b, upstream, constants, kernel, per_dimension):
  """upstream * d/da of sum_ij k(a_i, b_j), [B, D]: a reduction over j only.

  The kernel is symmetric, so the gradient with respect to b is this function with a and b
  swapped, and for b = a it is twice this (the pairs' terms are antisymmetric in i, j). One
  reduction axis lets the pair terms be reduced block by block like the forward pass.
  """
  def per_row(a_rows):
    diff, sq_dist = _pairwise(a_rows, b, per_dimension)
    weighted = (2.0 * upstream) * _kernel_derivatives(sq_dist, constants, kernel) * diff
    return tf.reduce_sum(weighted, axis=1)

  return _over_row_blocks(per_row, a, b)


def _kernel_sum(a, b, constants, kernel, per_dimension, symmetric):
  """sum over i, j (and d when per_dimension) and scales of k_C(a_i, b_j); b is a when symmetric.

  Returns a float64 scalar; gradients flow back in the inputs' dtype, each computed only when
  asked for (a function's unused outputs are pruned).
  """

  @tf.custom_gradient
  def within(x):
    def grad(upstream):
      upstream = tf.cast(upstream, x.dtype)
      return _kernel_sum_grad_xla(x, x, 2.0 * upstream, constants, kernel, per_dimension)
    # The inputs' gradient is grad's: stop_gradient keeps a recording tape from asking the XLA
    # function for its intermediates (its block loop's lists cannot leave XLA).
    return _kernel_sum_xla(tf.stop_gradient(x), tf.stop_gradient(x), constants, kernel,
                           per_dimension), grad

  @tf.custom_gradient
  def across(x, y):
    def grad(upstream):
      upstream = tf.cast(upstream, x.dtype)
      return (_kernel_sum_grad_xla(x, y, upstream, constants, kernel, per_dimension),
              _kernel_sum_grad_xla(y, x, upstream, constants, kernel, per_dimension))
    return _kernel_sum_xla(tf.stop_gradient(x), tf.stop_gradient(y), constants, kernel,
                           per_dimension), grad

  return within(a) if symmetric else across(a, b)


def _mmd_estimate(z_q, z_p, constants, kernel, per_dimension):
  batch = tf.cast(tf.shape(z_q)[0], tf.float64)
  width = tf.cast(tf.shape(z_q)[1], tf.float64) if per_dimension else tf.ones([], tf.float64)
  # Both kernels give k(a, a) = 1, so the diagonal of each within-sample sum is B per scale (and per
  # dimension); removing it leaves the i != j sums of the unbiased estimate.
  diagonal = batch * width * len(constants)
  within = (_kernel_sum(z_p, z_p, constants, kernel, per_dimension, symmetric=True) +
            _kernel_sum(z_q, z_q, constants, kernel, per_dimension, symmetric=True) -
            2.0 * diagonal)
  across = _kernel_sum(z_p, z_q, constants, kernel, per_dimension, symmetric=False)
  estimate = within / (batch * (batch - 1.0)) - 2.0 * across / (batch * batch)
  return tf.cast(estimate, z_q.dtype)


def mmd(z_q, z_p, kernel: str = "imq", scales: Sequence[float] = DEFAULT_MMD_SCALES,
        per_dimension: bool = True) -> tf.Tensor:
  """Unbiased squared MMD between two equally sized batches, summed over scales (and dimensions).

  For each scale s (kernel constant C = 2 s) and, with `per_dimension`, each latent dimension d:

    MMD^2 = 1/(B(B-1)) sum_{i != j} [k(p_i, p_j) + k(q_i, q_j)] - 2/B^2 sum_{i,j} k(p_i, q_j)

  with k(a, b) = C / (C + (a - b)^2) ("imq", inverse multiquadric) or exp(-(a - b)^2 / C) ("rbf"),
  where a, b are the d-th coordinates (per_dimension=True, the authors' `mmd_dim`) or whole vectors
  with the squared Euclidean distance (per_dimension=False). The result is the sum over scales (and
  dimensions). With the defaults this is the regulariser of Mathieu et al. (2019).

  Args:
    z_q: float [B, D] samples of the aggregate posterior (one z ~ q(z|x_i) per example).
    z_p: float [B, D] samples of the prior.
    kernel: "imq" or "rbf".
    scales: positive kernel scales s.
    per_dimension: kernel on each coordinate separately (True) or on whole vectors (False).

  Returns:
    A scalar of the inputs' dtype. It can be slightly negative (the estimate is unbiased).

  Raises:
    ValueError: for an unknown kernel, non-positive scales, or inputs that are not [B, D] of equal
      shape with B >= 2.
  """
  if kernel not in KERNELS:
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
  scales = tuple(float(s) for s in scales)
  if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
    raise ValueError(f"scales must be positive numbers, got {scales}.")
  z_q = tf.convert_to_tensor(z_q)
  z_p = tf.convert_to_tensor(z_p, dtype=z_q.dtype)
  if z_q.shape.rank != 2 or z_p.shape.rank != 2:
    raise ValueError(f"z_q and z_p must have shape [B, D], got {z_q.shape} and {z_p.shape}.")
  if not z_q.shape.is_compatible_with(z_p.shape):
    raise ValueError(f"z_q and z_p must have the same shape [B, D], got {z_q.shape} and "
                     f"{z_p.shape}.")
  if z_q.shape[0] is not None and z_q.shape[0] < 2:
    raise ValueError(f"the MMD estimate needs a batch of at least 2 samples, got {z_q.shape[0]}.")
  constants = tuple(2.0 * s for s in scales)
  return _mmd_estimate(z_q, z_p, constants, kernel, bool(per_dimension))


def _log_mean_exp(x, axis):
  return tf.reduce_logsumexp(x, axis=axis) - tf.math.log(tf.cast(tf.shape(x)[axis], x.dtype))


def aggregate_posterior_log_prob(z, q_loc, q_scale) -> tf.Tensor:
  """log q(z_j) for the minibatch aggregate posterior q(z) = (1/B) sum_i N(z; mu_i, diag(s_i^2)).

  Args:
    z: float [M, D] points.
    q_loc: float [B, D] posterior means mu_i.
    q_scale: float [B, D] posterior standard deviations s_i.

  Returns:
    float [M]: log-mean-exp over i of log N(z_j; mu_i, diag(s_i^2)), computed stably.
  """
  log_q = tfd.Normal(q_loc[tf.newaxis], q_scale[tf.newaxis]).log_prob(z[:, tf.newaxis, :])
  return _log_mean_exp(tf.reduce_sum(log_q, axis=-1), axis=1)  # [M]


def inclusive_kl(prior, q_loc, q_scale, num_samples: Optional[int] = None, seed=None,
                 prior_samples=None) -> tf.Tensor:
  """Minibatch estimate of the inclusive KL(p(z) || q(z)) (the authors' `kld_inc`).

  Draws z_j ~ p(z), j = 1..M, and returns the mean over j of log p(z_j) - log q(z_j), where q(z) =
  (1/B) sum_i q(z|x_i) is the aggregate posterior of the batch.

  Args:
    prior: a `tfdecomp.priors.Prior` or a TFP distribution with event shape [D].
    q_loc: float [B, D] posterior means.
    q_scale: float [B, D] posterior standard deviations.
    num_samples: M, the number of prior samples (default B).
    seed: None, int or stateless int32 [2] seed for the prior samples.
    prior_samples: optional float [M, D] samples to use instead of drawing them.

  Returns:
    A scalar.
  """
  distribution = priors_lib.as_distribution(prior)
  q_loc = tf.convert_to_tensor(q_loc, distribution.dtype)
  q_scale = tf.convert_to_tensor(q_scale, distribution.dtype)
  if q_loc.shape.rank != 2 or not q_loc.shape.is_compatible_with(q_scale.shape):
    raise ValueError(f"q_loc and q_scale must both have shape [B, D], got {q_loc.shape} and "
                     f"{q_scale.shape}.")
  if prior_samples is None:
    if num_samples is None:
      num_samples = tf.shape(q_loc)[0]
    elif int(num_samples) < 1:
      raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    prior_samples = distribution.sample(num_samples, seed=seed)
  prior_samples = tf.convert_to_tensor(prior_samples, distribution.dtype)
  if distribution.reparameterization_type != tfd.FULLY_REPARAMETERIZED:
    # Gradients through samples that are not reparameterised (e.g. mixtures) would be wrong.
    prior_samples = tf.stop_gradient(prior_samples)
  log_p = distribution.log_prob(prior_samples)
  log_q = aggregate_posterior_log_prob(prior_samples, q_loc, q_scale)
  return tf.reduce_mean(log_p - log_q)


def kl_divergence(posterior, prior, z=None) -> tf.Tensor:
  """KL(q(z|x) || p(z)) for each example.

  Analytic when TFP registers a closed form for the pair (Gaussian posterior and Gaussian prior);
  otherwise the Monte Carlo estimate mean_s [log q(z_s|x) - log p(z_s)] on the given samples, both
  densities joint over the D dimensions.

  Args:
    posterior: q(z|x), a distribution with batch shape [B] and event shape [D].
    prior: a `Prior` or a TFP distribution with event shape [D].
    z: float [S, B, D] samples of q(z|x); needed when there is no closed form.

  Returns:
    float [B].

  Raises:
    ValueError: if there is no closed form and no samples were given.
  """
  distribution = priors_lib.as_distribution(prior)
  try:
    return tfd.kl_divergence(posterior, distribution)
  except NotImplementedError:
    pass
  if z is None:
    raise ValueError(f"KL({type(posterior).__name__} || {distribution.name}) has no closed form in "
                     "TFP: pass posterior samples z [S, B, D] for the Monte Carlo estimate.")
  return tf.reduce_mean(posterior.log_prob(z) - distribution.log_prob(z), axis=0)


REGISTRY = registry.Registry("divergence")


@REGISTRY.register("mmd", inputs=("z",))
def _mmd_term(prior, z, loc, scale, prior_samples, **options):
  """MMD between one posterior sample per example and as many prior samples."""
  del prior, loc, scale
  return mmd(z, prior_samples, **options)


@REGISTRY.register("inclusive_kl", inputs=("loc", "scale"))
def _inclusive_kl_term(prior, z, loc, scale, prior_samples, **options):
  """Minibatch KL(p(z) || q(z)) with the batch's aggregate posterior."""
  del z
  return inclusive_kl(prior, loc, scale, prior_samples=prior_samples, **options)


#: Every value a config or a command line may give, "none" included.
NAMES = REGISTRY.names() + ("none",)


def resolve(name) -> Optional[str]:
  """The divergence's registered name, or None for no D term (None or "none").

  Raises:
    ValueError: for any other unknown name (the message lists the choices).
  """
  if name is None or name == "none":
    return None
  if name not in REGISTRY:
    raise registry.UnknownNameError(
        f"unknown divergence name {name!r}; choose one of {', '.join(NAMES)}.")
  return name
