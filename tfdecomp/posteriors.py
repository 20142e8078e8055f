"""The approximate posterior q(z|x): a diagonal Gaussian built from encoder outputs."""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

__all__ = ["diagonal_gaussian", "scale_from_softplus", "scale_from_log_variance", "MIN_SCALE"]

# Floor on posterior standard deviations, as in the authors' code (softplus(.) + 1e-6).
MIN_SCALE = 1e-6


def diagonal_gaussian(loc, scale) -> tfd.Distribution:
  """q(z|x) = N(loc, diag(scale^2)) with batch shape [B] and event shape [D].

  Args:
    loc: float [B, D] posterior means.
    scale: float [B, D] posterior standard deviations, > 0.

  Returns:
    `tfd.Independent(tfd.Normal(loc, scale), 1)`; its samples are reparameterised.
  """
  return tfd.Independent(tfd.Normal(loc=loc, scale=scale), reinterpreted_batch_ndims=1,
                         name="DiagonalGaussian")


def scale_from_softplus(raw) -> tf.Tensor:
  """Standard deviation softplus(raw) + 1e-6 (the paper's pinwheel and Fashion-MNIST encoders)."""
  return tf.nn.softplus(raw) + MIN_SCALE


def scale_from_log_variance(log_variance) -> tf.Tensor:
  """Standard deviation exp(log_variance / 2) + 1e-6 (the paper's dSprites encoder)."""
  return tf.exp(0.5 * log_variance) + MIN_SCALE
