"""Encoder and decoder networks of the paper's three experiments.

Each builder returns an `(encoder, decoder)` pair of functional `keras.Model`s:

  encoder: x [B, *x_shape] -> (loc [B, D], scale [B, D]), scale > 0
  decoder: z [N, D] -> params [N, *x_shape[:-1], channels * params_per_channel]

The layers return tensors only; the posterior q(z|x) = Normal(loc, scale) and the likelihood
p(x|z) are built from these tensors in model code (`tfdecomp.model`), because `tfp.layers` are
tf_keras layers that a Keras 3 model rejects. `params_per_channel` is the likelihood's
(`tfdecomp.likelihoods`): 1 for Bernoulli logits or Laplace locations, 2 for a Normal's
(loc, raw scale).

Architectures follow the authors' code (github.com/iffsid/disentangling-disentanglement):

  mlp      pinwheel, 2-D data: hidden ReLU layers of 100 units; loc and softplus scale heads.
  conv64   dSprites, 64x64x1: convs 4x4/2 with 32, 32, 64, 64 filters + ReLU, dense 128, heads
           for loc and log-variance; decoder dense 128 -> 4*4*64 (ReLU), transposed convs 4x4/2
           with 64, 64, 32 filters + ReLU and a last one to the output channels.
  dcgan32  Fashion-MNIST, 32x32x1: convs 4x4/2 with 32, 64, 128 filters (no bias), LeakyReLU 0.2,
           BatchNorm after the 2nd and 3rd, 4x4 valid convs for loc and softplus scale; decoder a
           4x4 valid transposed conv to 4x4x128 then transposed convs 4x4/2 with 64, 32 filters,
           each followed by BatchNorm + ReLU, and a last one to the output channels. Weights are
           initialised from N(0, 0.02^2) as in DCGAN.
"""

import keras
from keras import layers
from keras import ops

from tfdecomp import convolutions
from tfdecomp import posteriors
from tfdecomp import registry

__all__ = ["PositiveScale", "mlp", "conv64", "dcgan32", "build", "get", "NAMES", "REGISTRY"]

_EPSILON = posteriors.MIN_SCALE


@keras.saving.register_keras_serializable(package="tfdecomp")
class PositiveScale(layers.Layer):
  """Maps unconstrained head outputs to a positive scale.

  transform "softplus":     scale = softplus(raw) + epsilon
  transform "log_variance": scale = exp(0.5 * raw) + epsilon   (raw is log sigma^2)

  Args:
    transform: "softplus" or "log_variance".
    epsilon: floor added to the scale, 1e-6 as in the authors' code.
    **kwargs: `keras.layers.Layer` arguments.

  Raises:
    ValueError: if `transform` is not one of the two names.
  """

  def __init__(self, transform="softplus", epsilon=_EPSILON, **kwargs):
    super().__init__(**kwargs)
    if transform not in ("softplus", "log_variance"):
      raise ValueError(
          f"transform must be 'softplus' or 'log_variance', got {transform!r}.")
    self.transform = transform
    self.epsilon = float(epsilon)

  def call(self, raw):
    if self.transform == "softplus":
      return ops.softplus(raw) + self.epsilon
    return ops.exp(0.5 * raw) + self.epsilon

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(transform=self.transform, epsilon=self.epsilon)
    return config


def _check_positive_int(name, value):
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def mlp(input_dim=2, latent_dim=2, hidden_units=100, num_hidden_layers=1,
        params_per_channel=2, name="mlp"):
  """The pinwheel networks: fully connected ReLU layers.

  Args:
    input_dim: size of the data vectors (2 for pinwheel).
    latent_dim: D, size of the latent code.
    hidden_units: width of every hidden layer (100 in the paper).
    num_hidden_layers: number of hidden layers in the encoder and in the decoder (1 in the paper).
    params_per_channel: likelihood parameters per data dimension (2 for a Normal likelihood).
    name: prefix of the two models' names.

  Returns:
    (encoder, decoder): encoder maps x [B, input_dim] to (loc [B, D], scale [B, D]) with
    scale = softplus + 1e-6; decoder maps z [N, D] to params [N, input_dim * params_per_channel].

  Raises:
    ValueError: if a size is not a positive integer.
  """
  for arg, value in (("input_dim", input_dim), ("latent_dim", latent_dim),
                     ("hidden_units", hidden_units), ("num_hidden_layers", num_hidden_layers),
                     ("params_per_channel", params_per_channel)):
    _check_positive_int(arg, value)

  x = keras.Input((input_dim,), name="x")
  h = x
  for i in range(num_hidden_layers):
    h = layers.Dense(hidden_units, activation="relu", name=f"hidden_{i}")(h)
  loc = layers.Dense(latent_dim, name="loc")(h)
  scale = PositiveScale("softplus", name="scale")(layers.Dense(latent_dim, name="raw_scale")(h))
  encoder = keras.Model(x, [loc, scale], name=f"{name}_encoder")

  z = keras.Input((latent_dim,), name="z")
  h = z
  for i in range(num_hidden_layers):
    h = layers.Dense(hidden_units, activation="relu", name=f"hidden_{i}")(h)
  params = layers.Dense(input_dim * params_per_channel, name="params")(h)
  decoder = keras.Model(z, params, name=f"{name}_decoder")
  return encoder, decoder


def conv64(latent_dim=10, channels=1, params_per_channel=1, name="conv64"):
  """The dSprites networks for 64x64 images.

  Args:
    latent_dim: D, size of the latent code (10 in the paper).
    channels: image channels (1 for dSprites).
    params_per_channel: likelihood parameters per pixel channel (1 for Bernoulli logits).
    name: prefix of the two models' names.

  Returns:
    (encoder, decoder): encoder maps x [B, 64, 64, channels] to (loc [B, D], scale [B, D]) with
    scale = exp(0.5 * log sigma^2) + 1e-6; decoder maps z [N, D] to
    params [N, 64, 64, channels * params_per_channel].

  Raises:
    ValueError: if a size is not a positive integer.
  """
  for arg, value in (("latent_dim", latent_dim), ("channels", channels),
                     ("params_per_channel", params_per_channel)):
    _check_positive_int(arg, value)

  x = keras.Input((64, 64, channels), name="x")
  h = x
  for i, filters in enumerate((32, 32, 64, 64)):
    h = convolutions.Conv2D(filters, 4, strides=2, padding="same", activation="relu",
                      name=f"conv_{i}")(h)                       # 32, 16, 8, 4 pixels.
  h = layers.Flatten(name="flatten")(h)                          # 4 * 4 * 64 = 1024.
  h = layers.Dense(128, name="dense")(h)                         # Linear, as in the authors' code.
  loc = layers.Dense(latent_dim, name="loc")(h)
  scale = PositiveScale("log_variance", name="scale")(
      layers.Dense(latent_dim, name="log_variance")(h))
  encoder = keras.Model(x, [loc, scale], name=f"{name}_encoder")

  z = keras.Input((latent_dim,), name="z")
  h = layers.Dense(128, activation="relu", name="dense_0")(z)
  h = layers.Dense(4 * 4 * 64, activation="relu", name="dense_1")(h)
  h = layers.Reshape((4, 4, 64), name="reshape")(h)
  for i, filters in enumerate((64, 64, 32)):
    h = convolutions.Conv2DTranspose(filters, 4, strides=2, padding="same", activation="relu",
                               name=f"deconv_{i}")(h)            # 8, 16, 32 pixels.
  params = convolutions.Conv2DTranspose(channels * params_per_channel, 4, strides=2,
                                        padding="same", name="params")(h)              # 64 pixels.
  decoder = keras.Model(z, params, name=f"{name}_decoder")
  return encoder, decoder


def dcgan32(latent_dim=50, channels=1, params_per_channel=1, base_filters=32, name="dcgan32"):
  """The Fashion-MNIST DCGAN networks for 32x32 images.

  Args:
    latent_dim: D, size of the latent code (50 in the paper).
    channels: image channels (1 for Fashion-MNIST).
    params_per_channel: likelihood parameters per pixel channel (1 for Laplace locations).
    base_filters: filters of the first conv; the others are 2x and 4x (32 in the paper).
    name: prefix of the two models' names.

  Returns:
    (encoder, decoder): encoder maps x [B, 32, 32, channels] to (loc [B, D], scale [B, D]) with
    scale = softplus + 1e-6; decoder maps z [N, D] to
    params [N, 32, 32, channels * params_per_channel].

  Raises:
    ValueError: if a size is not a positive integer.
  """
  for arg, value in (("latent_dim", latent_dim), ("channels", channels),
                     ("params_per_channel", params_per_channel), ("base_filters", base_filters)):
    _check_positive_int(arg, value)

  def init():
    return keras.initializers.RandomNormal(0.0, 0.02)

  def batch_norm(name):
    # PyTorch's BatchNorm2d defaults: running-average momentum 0.1, epsilon 1e-5.
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)

  x = keras.Input((32, 32, channels), name="x")
  h = convolutions.Conv2D(base_filters, 4, strides=2, padding="same", use_bias=False,
                    kernel_initializer=init(), name="conv_0")(x)                    # 16x16.
  h = layers.LeakyReLU(0.2, name="lrelu_0")(h)
  h = convolutions.Conv2D(base_filters * 2, 4, strides=2, padding="same", use_bias=False,
                    kernel_initializer=init(), name="conv_1")(h)                    # 8x8.
  h = layers.LeakyReLU(0.2, name="lrelu_1")(batch_norm("bn_1")(h))
  h = convolutions.Conv2D(base_filters * 4, 4, strides=2, padding="same", use_bias=False,
                    kernel_initializer=init(), name="conv_2")(h)                    # 4x4.
  h = layers.LeakyReLU(0.2, name="lrelu_2")(batch_norm("bn_2")(h))
  # One 4x4 valid conv for both heads (2D filters), split afterwards: the same maths as two
  # convs, one kernel launch instead of two.
  heads = convolutions.Conv2D(2 * latent_dim, 4, padding="valid", kernel_initializer=init(),
                        name="heads")(h)                                            # 1x1.
  heads = layers.Flatten(name="flatten")(heads)
  loc, raw_scale = ops.split(heads, 2, axis=-1)
  scale = PositiveScale("softplus", name="scale")(raw_scale)
  encoder = keras.Model(x, [loc, scale], name=f"{name}_encoder")

  z = keras.Input((latent_dim,), name="z")
  h = layers.Reshape((1, 1, latent_dim), name="reshape")(z)
  h = convolutions.Conv2DTranspose(base_filters * 4, 4, padding="valid", use_bias=False,
                             kernel_initializer=init(), name="deconv_0")(h)          # 4x4.
  h = layers.ReLU(name="relu_0")(batch_norm("bn_0")(h))
  for i, filters in enumerate((base_filters * 2, base_filters), start=1):
    h = convolutions.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                               kernel_initializer=init(), name=f"deconv_{i}")(h)     # 8, 16.
    h = layers.ReLU(name=f"relu_{i}")(batch_norm(f"bn_{i}")(h))
  params = convolutions.Conv2DTranspose(channels * params_per_channel, 4, strides=2,
                                        padding="same", use_bias=False,
                                        kernel_initializer=init(), name="params")(h)  # 32x32.
  decoder = keras.Model(z, params, name=f"{name}_decoder")
  return encoder, decoder


REGISTRY = registry.Registry("network")
"""Networks by name. Each entry builds (encoder, decoder) from the shape of one example, the
latent size and the likelihood's parameters per channel; `accepts(input_shape)` (registered info)
says which example shapes it takes."""


def _register(name, from_shape, builder, accepts, describe):
  REGISTRY.register(name, from_shape, builder=builder, accepts=accepts, describe=describe)


def _mlp_from_shape(input_shape, latent_dim, params_per_channel=2, **options):
  return mlp(input_dim=int(input_shape[0]), latent_dim=latent_dim,
             params_per_channel=params_per_channel, **options)


def _image_builder(fn):
  def build(input_shape, latent_dim, params_per_channel=1, **options):
    return fn(latent_dim=latent_dim, channels=int(input_shape[-1]),
              params_per_channel=params_per_channel, **options)
  build.__name__ = fn.__name__
  build.__doc__ = fn.__doc__
  return build


_register("mlp", _mlp_from_shape, mlp, lambda shape: len(shape) == 1, "vectors [F]")
_register("conv64", _image_builder(conv64), conv64,
          lambda shape: len(shape) == 3 and tuple(shape[:2]) == (64, 64), "64x64xC images")
_register("dcgan32", _image_builder(dcgan32), dcgan32,
          lambda shape: len(shape) == 3 and tuple(shape[:2]) == (32, 32), "32x32xC images")
NAMES = REGISTRY.names()


def build(name, input_shape, latent_dim, params_per_channel=1, **options):
  """Builds the named (encoder, decoder) pair for examples of `input_shape`.

  Args:
    name: a registered network ("mlp", "conv64", "dcgan32").
    input_shape: the shape of one example, e.g. (2,) or (64, 64, 1).
    latent_dim: D.
    params_per_channel: the likelihood's decoder outputs per data channel.
    **options: the builder's own options (e.g. hidden_units for "mlp").

  Returns:
    (encoder, decoder).

  Raises:
    ValueError: for an unknown name or an input shape the network does not take.
  """
  info = REGISTRY.info(name)
  input_shape = tuple(int(d) for d in input_shape)
  if not info["accepts"](input_shape):
    raise ValueError(f"network {name!r} takes {info['describe']}; the data's examples have shape "
                     f"{list(input_shape)}.")
  return REGISTRY.get(name)(input_shape, latent_dim, params_per_channel, **options)


def get(name, **kwargs):
  """Builds the named (encoder, decoder) pair from the builder's own keyword arguments.

  Args:
    name: one of `NAMES` ("mlp", "conv64", "dcgan32").
    **kwargs: the builder's keyword arguments (`mlp`, `conv64`, `dcgan32`).

  Returns:
    (encoder, decoder) as returned by the builder.

  Raises:
    ValueError: if `name` is unknown.
  """
  return REGISTRY.info(name)["builder"](**kwargs)
