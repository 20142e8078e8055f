"""The approximate posterior q(z|x): a diagonal Gaussian built from encoder outputs."""

import tensorflow_probability as tfp

tfd = tfp.distributions

__all__ = ["diagonal_gaussian", "MIN_SCALE"]

# Floor on posterior standard deviations, as in the authors' code (softplus(.) + 1e-6); the
# encoders' `networks.PositiveScale` adds it, the Normal likelihood too.
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
