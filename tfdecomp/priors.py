"""Structured priors p(z) as Keras layers that build TFP distributions.

Each prior is a `keras.layers.Layer`, so learnable parameters are tracked, saved and mirrored under
`tf.distribute` like any other weight. `prior.distribution()` returns a
`tfp.distributions.Distribution` with `event_shape == [latent_dim]` and empty batch shape, composed
from TFP pieces; `sample` and `log_prob` delegate to it, and calling the layer on z returns
log p(z).

Per-dimension variances follow Mathieu et al. (2019):

  sigma^2_d = s * D * softmax(v)_d,   d = 1..D,

with D = latent_dim, s = `variance_scale` and v = `variances_logits` (zeros give the isotropic
variance s). With `learnable=True` the logits v are trained; the total variance sum_d sigma^2_d = s*D
stays fixed, so the prior cannot shrink or inflate itself to cheat the KL. A `Mixture` can also
learn its weights (through logits) and means (`learnable=("weights", "means", "variances")`).

`FromDistribution` wraps any TFP distribution (a flow, a JointDistribution flattened to a vector);
the variables it owns are the layer's weights. To save it to `.keras`, build it from a function
registered with `register_builder`.
"""

import json
from typing import Callable, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import registry

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = [
    "Prior",
    "Gaussian",
    "StudentT",
    "Sparse",
    "Mixture",
    "FromDistribution",
    "register_builder",
    "BUILDERS",
    "MIXTURE_PARTS",
    "PINWHEEL_LOCS",
    "as_distribution",
    "get",
    "NAMES",
    "REGISTRY",
]

# The clustering experiment's component means (Mathieu et al., 2019, pinwheel data).
PINWHEEL_LOCS = ((0.0, -1.0), (0.0, 1.0), (1.0, 0.0), (-1.0, 0.0))


def _check_latent_dim(latent_dim) -> int:
  if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
    raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}.")
  return int(latent_dim)


def _check_positive(name: str, value) -> float:
  try:
    value = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be a positive number, got {value!r}.") from None
  if not np.isfinite(value) or value <= 0:
    raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
  return value


def _as_logits(variances_logits, latent_dim: int) -> np.ndarray:
  if variances_logits is None:
    return np.zeros([latent_dim], np.float32)
  logits = np.asarray(variances_logits, np.float32)
  if logits.shape != (latent_dim,):
    raise ValueError(
        f"variances_logits must have shape [latent_dim] = [{latent_dim}], got {list(logits.shape)}.")
  if not np.all(np.isfinite(logits)):
    raise ValueError("variances_logits must be finite.")
  return logits


class Prior(keras.layers.Layer):
  """Base class: a distribution over R^D whose variances are s * D * softmax(v).

  Subclasses implement `distribution()`. Calling the layer on z [..., D] returns log p(z) [...].

  Args:
    latent_dim: D, the number of latent dimensions.
    variances_logits: v, float [D]; None gives zeros (isotropic variances s).
    variance_scale: s > 0, the mean per-dimension variance.
    learnable: whether v is trained.
  """

  def __init__(self, latent_dim: int, variances_logits=None, variance_scale: float = 1.0,
               learnable: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = _check_latent_dim(latent_dim)
    self.variance_scale = _check_positive("variance_scale", variance_scale)
    self.learnable = bool(learnable)
    self._initial_logits = _as_logits(variances_logits, self.latent_dim)
    self.variances_logits = self.add_weight(
        name="variances_logits",
        shape=(self.latent_dim,),
        initializer=keras.initializers.Constant(self._initial_logits),
        trainable=self.learnable,
        dtype="float32",
    )
    self.built = True

  @property
  def variances(self) -> tf.Tensor:
    """sigma^2_d = s * D * softmax(v)_d: float32 [D]."""
    return (self.variance_scale * self.latent_dim) * tf.nn.softmax(
        tf.convert_to_tensor(self.variances_logits))

  @property
  def scales(self) -> tf.Tensor:
    """sigma_d: float32 [D]."""
    return tf.sqrt(self.variances)

  def distribution(self) -> tfd.Distribution:
    """The prior as a TFP distribution with event shape [D] and empty batch shape."""
    raise NotImplementedError

  def sample(self, num: int, seed=None) -> tf.Tensor:
    """Draws `num` samples: float32 [num, D]. `seed`: None, int or stateless int32 [2]."""
    return self.distribution().sample(num, seed=seed)

  def log_prob(self, z) -> tf.Tensor:
    """log p(z) for z [..., D]: float32 [...]."""
    return self.distribution().log_prob(z)

  def call(self, z):
    return self.log_prob(z)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1])

  def get_config(self):
    config = super().get_config()
    config.update({
        "latent_dim": self.latent_dim,
        "variances_logits": self._initial_logits.tolist(),
        "variance_scale": self.variance_scale,
        "learnable": self.learnable,
    })
    return config


@keras.saving.register_keras_serializable(package="tfdecomp")
class Gaussian(Prior):
  """Independent Gaussian prior N(0, diag(sigma^2)); isotropic when `variances_logits` is None.

  Args:
    latent_dim: D.
    variances_logits: v, float [D]: anisotropic variances s * D * softmax(v). See `from_pca`.
    variance_scale: s > 0 (default 1: the standard normal when v = 0).
    learnable: train v (the paper's "learnable anisotropic prior").
  """

  def distribution(self) -> tfd.Distribution:
    scale = self.scales
    return tfd.Independent(tfd.Normal(loc=tf.zeros_like(scale), scale=scale),
                           reinterpreted_batch_ndims=1, name="Gaussian")

  @classmethod
  def from_pca(cls, x, latent_dim: int, variance_scale: float = 1.0, learnable: bool = False,
               center: bool = False, **kwargs) -> "Gaussian":
    """An anisotropic Gaussian whose variances follow the data's principal spectrum.

    v_d = log(lambda_d), where lambda_1 >= ... >= lambda_D are the D largest squared singular values
    of the flattened data matrix, so sigma^2_d = s * D * lambda_d / sum_k lambda_k, largest first.
    The authors' code took the 11th-20th largest values in ascending order (a slip of
    `scipy.sparse.linalg.svds`, which sorts ascending); this takes the intended top D.

    Args:
      x: array [N, ...]: N examples, flattened to [N, F].
      latent_dim: D <= min(N, F).
      variance_scale: s.
      learnable: train the logits afterwards.
      center: subtract the mean example first (classical PCA). The paper's construction uses the
        raw data (False).
      **kwargs: passed to the constructor.

    Returns:
      A `Gaussian` prior.

    Raises:
      ValueError: if x has fewer than two dimensions or too few examples/features, or is not finite.
    """
    latent_dim = _check_latent_dim(latent_dim)
    x = np.asarray(x, np.float64)
    if x.ndim < 2:
      raise ValueError(f"x must have shape [N, ...] with at least 2 dimensions, got {x.shape}.")
    x = x.reshape(x.shape[0], -1)
    if latent_dim > min(x.shape):
      raise ValueError(f"from_pca needs latent_dim <= min(N, features) = {min(x.shape)}, got "
                       f"latent_dim={latent_dim} for data of shape {x.shape}.")
    if not np.all(np.isfinite(x)):
      raise ValueError("x contains NaN or infinite values.")
    if center:
      x = x - x.mean(axis=0, keepdims=True)
    # Squared singular values are the eigenvalues of the smaller Gram matrix.
    gram = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    eigenvalues = np.linalg.eigvalsh(gram)[::-1][:latent_dim]
    eigenvalues = np.maximum(eigenvalues, np.finfo(np.float32).tiny)
    return cls(latent_dim, variances_logits=np.log(eigenvalues).astype(np.float32),
               variance_scale=variance_scale, learnable=learnable, **kwargs)


@keras.saving.register_keras_serializable(package="tfdecomp")
class StudentT(Prior):
  """Independent Student-t per dimension: loc 0, scale sigma_d, `df` degrees of freedom.

  The heavy tails favour axis-aligned codes (the paper's dSprites run uses df = 9).

  Args:
    latent_dim: D.
    df: degrees of freedom nu > 0.
    variances_logits, variance_scale, learnable: see `Prior`; sigma_d^2 is the squared *scale*
      parameter, not the variance (which is sigma_d^2 * nu / (nu - 2) for nu > 2).
  """

  def __init__(self, latent_dim: int, df: float, variances_logits=None, variance_scale: float = 1.0,
               learnable: bool = False, **kwargs):
    self.df = _check_positive("df", df)
    super().__init__(latent_dim, variances_logits=variances_logits, variance_scale=variance_scale,
                     learnable=learnable, **kwargs)

  def distribution(self) -> tfd.Distribution:
    scale = self.scales
    return tfd.Independent(tfd.StudentT(df=self.df, loc=tf.zeros_like(scale), scale=scale),
                           reinterpreted_batch_ndims=1, name="StudentT")

  def get_config(self):
    return {**super().get_config(), "df": self.df}


@keras.saving.register_keras_serializable(package="tfdecomp")
class Sparse(Prior):
  """Spike-and-slab prior, independent per dimension:

    p(z_d) = gamma * N(z_d; 0, spike_scale^2) + (1 - gamma) * N(z_d; 0, sigma_d^2).

  Args:
    latent_dim: D.
    gamma: weight of the spike, in [0, 1] (gamma = 0 is the Gaussian slab alone).
    spike_scale: standard deviation of the spike (0.05 in the paper).
    variances_logits, variance_scale, learnable: the slab variances sigma_d^2, see `Prior`.
  """

  def __init__(self, latent_dim: int, gamma: float, spike_scale: float = 0.05,
               variances_logits=None, variance_scale: float = 1.0, learnable: bool = False,
               **kwargs):
    try:
      gamma = float(gamma)
    except (TypeError, ValueError):
      raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}.") from None
    if not 0.0 <= gamma <= 1.0:
      raise ValueError(f"gamma must be in [0, 1], got {gamma!r}.")
    self.gamma = gamma
    self.spike_scale = _check_positive("spike_scale", spike_scale)
    super().__init__(latent_dim, variances_logits=variances_logits, variance_scale=variance_scale,
                     learnable=learnable, **kwargs)

  def distribution(self) -> tfd.Distribution:
    slab = self.scales
    spike = tf.fill(tf.shape(slab), tf.constant(self.spike_scale, slab.dtype))
    weights = tf.constant([self.gamma, 1.0 - self.gamma], slab.dtype)
    mixture = tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(probs=tf.broadcast_to(weights, [self.latent_dim, 2])),
        components_distribution=tfd.Normal(loc=tf.zeros([self.latent_dim, 2], slab.dtype),
                                           scale=tf.stack([spike, slab], axis=-1)))
    return tfd.Independent(mixture, reinterpreted_batch_ndims=1, name="Sparse")

  def get_config(self):
    return {**super().get_config(), "gamma": self.gamma, "spike_scale": self.spike_scale}


MIXTURE_PARTS = ("weights", "means", "variances")
"""The parts of a `Mixture` that `learnable` can select."""


def _mixture_parts(learnable) -> Tuple[str, ...]:
  """`learnable` of a Mixture as the tuple of learnt parts, in `MIXTURE_PARTS` order."""
  if isinstance(learnable, (bool, np.bool_)):
    return ("variances",) if learnable else ()
  if isinstance(learnable, str):
    learnable = [part.strip() for part in learnable.split(",") if part.strip()]
  try:
    parts = set(learnable)
  except TypeError:
    raise ValueError(f"learnable must be True, False or a subset of {MIXTURE_PARTS}, got "
                     f"{learnable!r}.") from None
  unknown = sorted(str(p) for p in parts - set(MIXTURE_PARTS))
  if unknown:
    raise ValueError(f"learnable: unknown mixture part(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(MIXTURE_PARTS)}.")
  return tuple(part for part in MIXTURE_PARTS if part in parts)


@keras.saving.register_keras_serializable(package="tfdecomp")
class Mixture(Prior):
  """Mixture of K diagonal Gaussians with shared per-dimension variances:

    p(z) = sum_k w_k N(z; mu_k, diag(sigma^2)),   w = softmax(u),   sigma^2 = s * D * softmax(v).

  The default is the paper's clustering prior: 4 equal-weight components at (0, -1), (0, 1),
  (1, 0), (-1, 0) with variance 0.03 per dimension.

  What is learnt is chosen with `learnable`:
    - "weights": the logits u [K] (initialised to log w), so the weights stay on the simplex
      (w_k > 0, sum_k w_k = 1);
    - "means": the component means mu [K, D];
    - "variances": the logits v [D] of the shared variances (positive, total s * D fixed; see
      `Prior`).
  `learnable=True` means ("variances",) (the paper's learnable prior), `False` nothing.

  Args:
    locs: initial component means mu, float [K, D]; None gives `PINWHEEL_LOCS`.
    variance_scale: s, the per-dimension variance of each component when v = 0.
    weights: initial w, K non-negative numbers (normalised here); None gives 1/K each. Learnt
      weights must start positive.
    variances_logits: initial v, see `Prior`.
    learnable: True, False, or a subset of ("weights", "means", "variances") (a sequence or a
      comma-separated string).
    latent_dim: optional; if given it must equal the width D of `locs`.

  Attributes:
    locs: the current means, numpy float32 [K, D].
    component_weights: the current weights w, numpy float32 [K].
    means, weights_logits, variances_logits: the variables mu [K, D], u [K], v [D] (trainable as
      chosen by `learnable`).
  """

  def __init__(self, locs=None, variance_scale: float = 0.03, weights=None, variances_logits=None,
               learnable: Union[bool, Sequence[str], str] = False,
               latent_dim: Optional[int] = None, **kwargs):
    locs = np.asarray(PINWHEEL_LOCS if locs is None else locs, np.float32)
    if locs.ndim != 2 or locs.shape[0] < 1 or locs.shape[1] < 1:
      raise ValueError(f"locs must have shape [K, D] (K components in D dimensions), got "
                       f"{list(locs.shape)}.")
    if not np.all(np.isfinite(locs)):
      raise ValueError("locs must be finite.")
    if latent_dim is not None and _check_latent_dim(latent_dim) != locs.shape[1]:
      raise ValueError(f"locs have width {locs.shape[1]} but latent_dim is {latent_dim}: give "
                       f"one mean of length {latent_dim} per component.")
    num_components = locs.shape[0]
    if weights is None:
      weights = np.full([num_components], 1.0 / num_components, np.float32)
    weights = np.asarray(weights, np.float32)
    if weights.shape != (num_components,) or np.any(weights < 0) or not np.all(
        np.isfinite(weights)) or weights.sum() <= 0:
      raise ValueError(f"weights must be {num_components} non-negative numbers with a positive "
                       f"sum (one per row of locs), got {weights.tolist()}.")
    parts = _mixture_parts(learnable)
    if "weights" in parts and np.any(weights <= 0):
      raise ValueError(f"learnt mixture weights must start positive (their logits are log w), "
                       f"got {weights.tolist()}.")
    self.learnable_parts = parts
    self._initial_locs = locs
    self._initial_weights = weights / weights.sum()
    super().__init__(locs.shape[1], variances_logits=variances_logits,
                     variance_scale=variance_scale, learnable="variances" in parts, **kwargs)
    self.learnable = parts if parts not in ((), ("variances",)) else bool(parts)
    with np.errstate(divide="ignore"):
      initial_logits = np.log(self._initial_weights)
    self.weights_logits = self.add_weight(
        name="weights_logits", shape=(num_components,),
        initializer=keras.initializers.Constant(initial_logits),
        trainable="weights" in parts, dtype="float32")
    self.means = self.add_weight(
        name="means", shape=locs.shape, initializer=keras.initializers.Constant(locs),
        trainable="means" in parts, dtype="float32")

  @property
  def num_components(self) -> int:
    return self._initial_locs.shape[0]

  @property
  def locs(self) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(self.means), np.float32)

  @property
  def component_weights(self) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(self.mixture_weights), np.float32)

  @property
  def mixture_weights(self) -> tf.Tensor:
    """w = softmax(u): float32 [K]."""
    return tf.nn.softmax(tf.convert_to_tensor(self.weights_logits))

  def distribution(self) -> tfd.Distribution:
    scale = self.scales
    locs = tf.convert_to_tensor(self.means)
    components = tfd.Independent(
        tfd.Normal(loc=locs, scale=tf.broadcast_to(scale, tf.shape(locs))),
        reinterpreted_batch_ndims=1)
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=tf.convert_to_tensor(self.weights_logits)),
        components_distribution=components, name="Mixture")

  def component_log_probs(self, z) -> tf.Tensor:
    """log w_k + log N(z; mu_k, diag(sigma^2)) for z [..., D]: float32 [..., K]."""
    dist = self.distribution()
    z = tf.convert_to_tensor(z, tf.float32)
    return (tf.nn.log_softmax(tf.convert_to_tensor(self.weights_logits)) +
            dist.components_distribution.log_prob(z[..., tf.newaxis, :]))

  def get_config(self):
    config = super().get_config()
    config.pop("latent_dim")
    # The current means and weights (the initial ones until they are learnt), so a prior rebuilt
    # from the config alone (e.g. `savedmodels.load`) carries what was learnt.
    config.update({"locs": self.locs.tolist(), "weights": self.component_weights.tolist(),
                   "learnable": (list(self.learnable) if isinstance(self.learnable, tuple)
                                 else self.learnable)})
    return config


BUILDERS = registry.Registry("prior builder")
"""Named functions building the distribution of a `FromDistribution` prior: fn(**config) ->
tfd.Distribution. Register one with `register_builder`; a prior built from a name and a JSON
config can be saved to and loaded from `.keras` files."""


def register_builder(name: str, fn: Optional[Callable[..., tfd.Distribution]] = None):
  """Registers fn(**builder_config) -> tfd.Distribution under `name` (a decorator without `fn`).

    @priors.register_builder("maf2")
    def maf2(latent_dim=2, hidden_units=(16,)):
      return tfd.TransformedDistribution(
          tfd.MultivariateNormalDiag(tf.zeros(latent_dim)),
          tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(2, hidden_units=hidden_units)))

    prior = priors.FromDistribution(builder="maf2", builder_config={"hidden_units": [8]})

  The module that registers the builder must be imported before a saved model using it is loaded.

  Raises:
    ValueError: if `name` is already registered.
  """
  return BUILDERS.register(name, fn)


def _flatten_joint(dist: tfd.Distribution) -> tfd.Distribution:
  """A JointDistribution as a distribution over the concatenation of its parts (vector event).

  Each part (event shape s_i, n_i = prod(s_i) numbers) is reshaped to [n_i] and the parts are
  concatenated in `tf.nest.flatten` order (dicts by sorted key). The bijector only reshapes and
  permutes, so log p(z) is the joint's log density of the unflattened parts.
  """
  structure = dist.event_shape
  shapes = tf.nest.flatten(structure)
  if any(not tf.TensorShape(shape).is_fully_defined() for shape in shapes):
    raise ValueError(f"the JointDistribution's parts need fully known event shapes, got "
                     f"{structure}.")
  if any(tf.TensorShape(shape).rank != 0 for shape in tf.nest.flatten(dist.batch_shape)):
    raise ValueError(f"the JointDistribution must have empty batch shapes, got "
                     f"{dist.batch_shape}; wrap its parts in tfd.Independent.")
  if any(not tf.as_dtype(dtype).is_floating for dtype in tf.nest.flatten(dist.dtype)):
    raise ValueError(f"every part of the JointDistribution must be real-valued, got dtypes "
                     f"{dist.dtype}.")
  sizes = [int(np.prod(shape)) for shape in shapes]
  tokens = tf.nest.pack_sequence_as(structure, list(range(len(shapes))))
  bijector = tfb.Chain([
      tfb.Invert(tfb.Split(sizes)),                                          # list -> [sum n_i]
      tfb.JointMap([tfb.Reshape([n], event_shape_in=shape) for n, shape in zip(sizes, shapes)]),
      tfb.Restructure(list(range(len(shapes))), tokens),                     # structure -> list
  ])
  return tfd.TransformedDistribution(dist, bijector, name=f"Flat{dist.name}")


def _check_vector_event(dist: tfd.Distribution) -> int:
  event_shape = dist.event_shape
  if tf.nest.is_nested(event_shape):
    raise ValueError(f"the distribution has a structured event {event_shape}: pass the "
                     "tfd.JointDistribution itself (it is flattened to a vector), or concatenate "
                     "its parts with a bijector (tfb.Invert(tfb.Split(sizes))).")
  if event_shape.rank != 1 or event_shape[0] is None:
    raise ValueError(f"the distribution must have event shape [D], got {event_shape}; wrap it "
                     "in tfd.Independent (batch -> event) or tfb.Reshape to make it a vector.")
  if dist.batch_shape.rank != 0:
    raise ValueError(f"the distribution must have empty batch shape, got {dist.batch_shape}; wrap "
                     "it in tfd.Independent to make batch dimensions part of the event.")
  return int(event_shape[0])


@keras.saving.register_keras_serializable(package="tfdecomp")
class FromDistribution(Prior):
  """Wraps a TFP distribution over R^D (a flow, a hierarchical model, ...) as a prior layer.

  Downstream code needs only `sample` and `log_prob`; KL(q(z|x) || p(z)) falls back to its Monte
  Carlo estimate when TFP registers no closed form. The variance parametrisation of `Prior` does
  not apply.

  The distribution's variables are the layer's weights: every `tf.Variable` reachable from it
  (the bijectors' parameters, `tfp.util.TransformedVariable`s, a `tfb.AutoregressiveNetwork`'s
  kernels) and every Keras layer it holds (e.g. a `shift_and_log_scale_fn`) are in
  `model.trainable_variables`, trained by `fit`, and saved and restored by `save_weights` /
  `load_weights` and `.keras` files. Lazily built networks are built here (one `log_prob` call).
  Keras 3 `keras.Variable`s passed to TFP constructors are read once as constants by TFP: use
  `tf.Variable` or `tfp.util.TransformedVariable` for learnable parameters. To place the
  variables under a `tf.distribute` strategy, create them inside its scope: pass a builder (a
  callable or a registered name) and construct the prior there.

  A `tfd.JointDistribution` is flattened to a vector event: its parts, each reshaped to a vector,
  are concatenated in `tf.nest.flatten` order (dicts by sorted key), so log p(z) is the joint
  density of the parts of z.

  Saving the prior's *config* (`model.save("m.keras")`) needs the distribution to be rebuilt
  from data: register a builder (`register_builder`) and pass `builder` + `builder_config`.
  Other forms raise a TypeError at save time saying so; `save_weights` works for every form.

  Args:
    distribution_or_fn: a `tfd.Distribution`, or a callable with no arguments returning one
      (called once, here).
    builder: instead, the name of a builder registered with `register_builder`.
    builder_config: keyword arguments of the builder (JSON-serialisable for saving).
    weight_values: optional values of the layer's weights, in `weights` order, assigned after
      building (`get_config` records the current ones, so a prior rebuilt from its config alone,
      e.g. by `savedmodels.load`, carries what was learnt).
    **kwargs: `keras.layers.Layer` arguments (name, ...).

  Raises:
    ValueError: for a value that is not a distribution, a non-vector event or a non-empty batch
      shape (the message names the fix), or an unknown builder name.
  """

  def __init__(self, distribution_or_fn: Union[tfd.Distribution, Callable[[], tfd.Distribution],
                                               None] = None,
               builder: Optional[str] = None, builder_config: Optional[dict] = None,
               weight_values: Optional[Sequence] = None, **kwargs):
    if (distribution_or_fn is None) == (builder is None):
      raise ValueError("pass either a distribution (or a callable returning one) or builder=NAME "
                       "of a function registered with tfdecomp.priors.register_builder.")
    if distribution_or_fn is not None and not (isinstance(distribution_or_fn, tfd.Distribution)
                                               or callable(distribution_or_fn)):
      raise ValueError("distribution_or_fn must be a tfp Distribution or a callable returning one, "
                       f"got {type(distribution_or_fn).__name__}.")
    if builder_config is not None and builder is None:
      raise ValueError("builder_config needs builder=NAME.")
    keras.layers.Layer.__init__(self, **kwargs)
    self.builder = builder
    self.builder_config = dict(builder_config or {})
    with tf.name_scope(self.name):
      if builder is not None:
        try:
          dist = BUILDERS.get(builder)(**self.builder_config)
        except registry.UnknownNameError as e:
          raise ValueError(f"{e} Register it with tfdecomp.priors.register_builder (import the "
                           "module that does so before loading a model).") from None
      elif isinstance(distribution_or_fn, tfd.Distribution):
        dist = distribution_or_fn
      else:
        dist = distribution_or_fn()
    if not isinstance(dist, tfd.Distribution):
      raise ValueError(f"the builder returned {type(dist).__name__}, not a tfp Distribution.")
    if isinstance(dist, tfd.JointDistribution):
      dist = _flatten_joint(dist)
    self.latent_dim = _check_vector_event(dist)
    # Builds lazily created variables (e.g. tfb.AutoregressiveNetwork's) before collecting them.
    dist.log_prob(tf.zeros([1, self.latent_dim], dist.dtype))
    self._dist = dist
    # Keras layers inside the distribution become sublayers (Keras tracks and saves them).
    self._owned_layers = list(dist._flatten(  # pylint: disable=protected-access
        predicate=lambda x: isinstance(x, keras.layers.Layer), expand_composites=False))
    layer_ids = {id(v.value) for layer in self._owned_layers for v in layer.variables}
    # Raw tf.Variables (bijector parameters, tf_keras networks): Keras 3 does not see them, so
    # each is wrapped in a keras.Variable sharing its storage (`keras.Variable(tf_variable)`),
    # which the layer tracks as its own weight (trained, saved and restored by Keras).
    self.distribution_variables = [
        keras.Variable(v, trainable=v.trainable, name=v.name.split(":")[0].replace("/", "_"))
        for v in dist.variables if id(v) not in layer_ids]
    self.variance_scale = None
    self.learnable = bool(self.trainable_weights)
    self.built = True
    if weight_values is not None:
      self._assign_weights(weight_values)

  def _assign_weights(self, values):
    weights = self.weights
    if len(values) != len(weights):
      raise ValueError(f"weight_values has {len(values)} arrays but prior {self.name!r} has "
                       f"{len(weights)} weights; give the values of the same distribution.")
    for weight, value in zip(weights, values):
      value = np.asarray(value, weight.dtype)
      if tuple(value.shape) != tuple(weight.shape):
        raise ValueError(f"weight_values: {weight.name} has shape {tuple(weight.shape)}, got "
                         f"{tuple(value.shape)}.")
      weight.assign(value)

  # ---- the prior -------------------------------------------------------------------------------

  @property
  def variances(self) -> tf.Tensor:
    return self.distribution().variance()

  def distribution(self) -> tfd.Distribution:
    return self._dist

  def get_config(self):
    if self.builder is None:
      raise TypeError(
          f"prior {self.name!r} wraps a distribution object, which cannot be saved to a .keras "
          "file: register a function that builds it (@tfdecomp.priors.register_builder(\"name\")"
          " def build(**config): return tfd...) and use FromDistribution(builder=\"name\", "
          "builder_config={...}); or save only the weights with save_weights().")
    try:
      json.dumps(self.builder_config)
    except TypeError as e:
      raise TypeError(f"prior {self.name!r}: builder_config must be JSON-serialisable to be "
                      f"saved ({e}).") from None
    config = keras.layers.Layer.get_config(self)
    config.update({"builder": self.builder, "builder_config": self.builder_config,
                   "weight_values": [np.asarray(w).tolist() for w in self.weights]})
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    if "distribution_or_fn" in config:  # Configs written before builders existed.
      config["distribution_or_fn"] = keras.saving.deserialize_keras_object(
          config["distribution_or_fn"])
    return cls(**config)


def as_distribution(prior: Union[Prior, tfd.Distribution]) -> tfd.Distribution:
  """The TFP distribution of a `Prior` layer; a distribution is returned as it is."""
  if isinstance(prior, Prior):
    return prior.distribution()
  if isinstance(prior, tfd.Distribution):
    return prior
  raise ValueError(f"prior must be a tfdecomp Prior or a tfp Distribution, got "
                   f"{type(prior).__name__}.")


REGISTRY = registry.Registry("prior")
"""Priors by name. Each factory takes latent_dim, the keyword `data` (examples [N, ...] for
data-dependent priors such as "anisotropic"; ignored by the others) and its own options; the
registered `default_variance_scale` is used when a config gives none."""


@REGISTRY.register("gaussian", default_variance_scale=1.0)
def _gaussian(latent_dim, *, data=None, variance_scale=1.0, learnable=False):
  del data
  return Gaussian(latent_dim, variance_scale=variance_scale, learnable=learnable)


@REGISTRY.register("anisotropic", default_variance_scale=1.0, needs_data=True)
def _anisotropic(latent_dim, *, data=None, variance_scale=1.0, learnable=False):
  if data is None:
    raise ValueError("the anisotropic prior needs data: its variances follow the data's PCA "
                     "spectrum (pass data=examples [N, ...]).")
  return Gaussian.from_pca(data, latent_dim, variance_scale=variance_scale, learnable=learnable)


@REGISTRY.register("student_t", default_variance_scale=1.0)
def _student_t(latent_dim, *, data=None, df=9.0, variance_scale=1.0, learnable=False):
  del data
  return StudentT(latent_dim, df=df, variance_scale=variance_scale, learnable=learnable)


@REGISTRY.register("sparse", default_variance_scale=1.0)
def _sparse(latent_dim, *, data=None, gamma=0.8, variance_scale=1.0, learnable=False):
  del data
  return Sparse(latent_dim, gamma=gamma, variance_scale=variance_scale, learnable=learnable)


@REGISTRY.register("mixture", default_variance_scale=0.03)
def _mixture(latent_dim, *, data=None, mixture_locs=None, variance_scale=0.03, learnable=False):
  del data
  return Mixture(locs=mixture_locs, variance_scale=variance_scale, learnable=learnable,
                 latent_dim=latent_dim)


NAMES = REGISTRY.names()


def get(name: str, latent_dim: int, **kwargs) -> Prior:
  """Builds a prior by name (see `REGISTRY`): "gaussian", "anisotropic" (needs `data`),
  "student_t" (`df`), "sparse" (`gamma`), "mixture" (`mixture_locs`).

  Args:
    name: a registered name.
    latent_dim: D (for "mixture" it must match the width of the locations).
    **kwargs: the prior's options; options other priors take are ignored.

  Raises:
    ValueError: for an unknown name or invalid arguments.
  """
  return REGISTRY.build(name, latent_dim, **kwargs)
