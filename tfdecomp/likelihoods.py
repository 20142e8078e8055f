"""Likelihoods p(x|z): turn decoder outputs into TFP distributions over one example.

A decoder maps z [N, D] to a parameter tensor [N, ..., C * params_per_channel]; a likelihood turns
it into a distribution with batch shape [N] and event shape [..., C] (every pixel or coordinate of an
example is part of the event, so `log_prob` sums over them).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import registry
from tfdecomp._config_object import ConfigObject
from tfdecomp.posteriors import MIN_SCALE

tfd = tfp.distributions

__all__ = ["Likelihood", "Bernoulli", "Laplace", "Normal", "build", "get", "NAMES", "REGISTRY"]


class Likelihood(ConfigObject):
  """Base class. Subclasses define `params_per_channel`, `_distribution` and `mean`."""

  #: Decoder outputs per data channel (1: one parameter per value; 2: location and scale).
  params_per_channel = 1

  def distribution(self, params) -> tfd.Distribution:
    """p(x|z) from decoder outputs.

    Args:
      params: float [N, ..., C * params_per_channel].

    Returns:
      A distribution with batch shape [N] and event shape [..., C].
    """
    params = tf.convert_to_tensor(params)
    if params.shape.rank is not None and params.shape.rank < 2:
      raise ValueError(f"decoder outputs must have shape [N, ..., channels], got {params.shape}.")
    return tfd.Independent(self._distribution(params),
                           reinterpreted_batch_ndims=tf.rank(params) - 1
                           if params.shape.rank is None else params.shape.rank - 1)

  def _distribution(self, params) -> tfd.Distribution:
    raise NotImplementedError

  def mean(self, params) -> tf.Tensor:
    """E[x|z] from decoder outputs: float [N, ..., C]."""
    raise NotImplementedError


@keras.saving.register_keras_serializable(package="tfdecomp")
class Bernoulli(Likelihood):
  """Bernoulli(sigmoid(params)) per value; params are logits. For binary images (dSprites).

  `log_prob` is x * log p + (1 - x) * log(1 - p), also defined for x in [0, 1].
  """

  def _distribution(self, params):
    return tfd.Bernoulli(logits=params, dtype=params.dtype)

  def mean(self, params):
    return tf.sigmoid(params)


@keras.saving.register_keras_serializable(package="tfdecomp")
class Laplace(Likelihood):
  """Laplace(params, scale) per value with a fixed scale (0.1: the paper's Fashion-MNIST model).

  Args:
    scale: the fixed Laplace scale b > 0 (the standard deviation is sqrt(2) * b).
  """

  def __init__(self, scale: float = 0.1):
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
      raise ValueError(f"scale must be a positive number, got {scale!r}.")
    self.scale = scale

  def _distribution(self, params):
    return tfd.Laplace(loc=params, scale=tf.constant(self.scale, params.dtype))

  def mean(self, params):
    return tf.convert_to_tensor(params)

  def get_config(self):
    return {"scale": self.scale}


@keras.saving.register_keras_serializable(package="tfdecomp")
class Normal(Likelihood):
  """Normal with a learned, per-example scale: params = concat([loc, raw_scale], axis=-1).

  scale = softplus(raw_scale) + 1e-6 (the paper's pinwheel decoder). For C data channels the
  decoder outputs 2C values per position.
  """

  params_per_channel = 2

  def _split(self, params):
    params = tf.convert_to_tensor(params)
    if params.shape[-1] is not None and params.shape[-1] % 2:
      raise ValueError("Normal likelihood needs an even number of decoder outputs "
                       f"(location and scale per channel), got {params.shape[-1]}.")
    loc, raw_scale = tf.split(params, 2, axis=-1)
    return loc, tf.nn.softplus(raw_scale) + MIN_SCALE

  def _distribution(self, params):
    loc, scale = self._split(params)
    return tfd.Normal(loc=loc, scale=scale)

  def mean(self, params):
    return self._split(params)[0]


REGISTRY = registry.Registry("likelihood")
"""Likelihoods by name; `build(name, **options)` passes the options the class takes (`scale`
for "laplace")."""
REGISTRY.register("bernoulli", Bernoulli)
REGISTRY.register("laplace", Laplace)
REGISTRY.register("normal", Normal)
NAMES = REGISTRY.names()


def build(name: str, **options) -> Likelihood:
  """A likelihood by name with its options (unused options are ignored).

  Raises:
    ValueError: for an unknown name or an invalid option.
  """
  return REGISTRY.build(name, **options)


def get(name_or_likelihood) -> Likelihood:
  """A likelihood by name ("bernoulli", "laplace", "normal"), a config dict, or as it is."""
  if isinstance(name_or_likelihood, Likelihood):
    return name_or_likelihood
  if isinstance(name_or_likelihood, dict):
    return keras.saving.deserialize_keras_object(name_or_likelihood)
  return REGISTRY.build(name_or_likelihood)
