"""DecompVAE: the decomposition VAE as a Keras model trained with `fit`.

Objective (Mathieu et al., 2019, eq. 7), maximised per example and averaged over the batch:

  L_ab(x) = E_q(z|x)[log p(x|z)] - beta * KL(q(z|x) || p(z)) - alpha * D(q(z), p(z)),

minimised here as loss = reconstruction + beta * kl + alpha * divergence with
reconstruction = -E_q log p(x|z) and kl averaged over the batch, and D one scalar per batch (the
aggregate posterior of the batch against the prior; `tfdecomp.objectives`). The logged ELBO is
-(reconstruction + kl).

The step is written for `tf.distribute` (Keras 3, TensorFlow backend, which *sums* gradients over
replicas): per-example terms are reduced against the global batch size with
`tf.nn.compute_average_loss`, the divergence is computed on the posterior samples gathered from
every replica and scaled by 1/num_replicas. Training noise is layout-independent: a pure
function of (seed, optimizer step, position of the example in the global batch). Every replica
draws the global batch's noise from the step's seed and keeps its own rows
(`objectives.decomposition_terms(rows=...)`), so one device, R replicas and W workers draw the
same numbers and take the same step up to float summation order, and a run restored from a
checkpoint draws the same noise as an uninterrupted one.
"""

import os

import numpy as np
import keras
import tensorflow as tf

from tfdecomp import _io
from tfdecomp import divergences
from tfdecomp import likelihoods as likelihoods_lib
from tfdecomp import objectives
from tfdecomp import posteriors
from tfdecomp import priors as priors_lib
from tfdecomp import schedules
from tfdecomp import seeds

__all__ = ["DecompVAE", "LastValue", "FirstNonFinite"]

# Logged metrics, in order.
_TERMS = ("loss", "reconstruction", "kl", "divergence", "elbo")


@keras.saving.register_keras_serializable(package="tfdecomp")
class LastValue(keras.metrics.Metric):
  """A metric whose result is the last value it was given (e.g. the current beta)."""

  def __init__(self, name="last_value", dtype="float32", **kwargs):
    super().__init__(name=name, dtype=dtype, **kwargs)
    self.value = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="value",
                                   aggregation="only_first_replica")

  def update_state(self, value):
    self.value.assign(tf.cast(value, self.dtype))

  def result(self):
    return tf.identity(self.value)


@keras.saving.register_keras_serializable(package="tfdecomp")
class FirstNonFinite(keras.metrics.Metric):
  """The first optimizer step whose loss was NaN or infinite since the last reset; -1 if none.

  Under tf.distribute it watches the first replica's loss (a non-finite loss on any replica
  reaches every replica's weights through the summed gradients by the next step).
  """

  def __init__(self, name="first_nonfinite_step", **kwargs):
    super().__init__(name=name, dtype="int64", **kwargs)
    self.step = self.add_variable(shape=(), initializer=keras.initializers.Constant(-1),
                                  dtype="int64", name="step", aggregation="only_first_replica")

  def update_state(self, loss, step):
    bad = tf.logical_not(tf.math.is_finite(loss))
    first = tf.logical_and(bad, self.step < 0)
    self.step.assign(tf.where(first, tf.cast(step, tf.int64), self.step))

  def reset_state(self):
    self.step.assign(tf.constant(-1, tf.int64))

  def result(self):
    return tf.identity(self.step)


def _unpack_x(data):
  """x from a batch that may be x, (x,), (x, y) or (x, y, sample_weight)."""
  if isinstance(data, (tuple, list)):
    return data[0]
  if isinstance(data, dict):
    for key in ("x", "image", "inputs"):
      if key in data:
        return data[key]
    raise ValueError(f"a dict batch needs an 'x' or 'image' entry, got keys {sorted(data)}.")
  return data


@keras.saving.register_keras_serializable(package="tfdecomp")
class DecompVAE(keras.Model):
  """A VAE trained with the alpha-beta decomposition objective.

  Args:
    encoder: `keras.Model`, x [B, *x_shape] -> (loc [B, D], scale [B, D]), scale > 0
      (`tfdecomp.networks`).
    decoder: `keras.Model`, z [N, D] -> likelihood parameters
      [N, *x_shape[:-1], channels * likelihood.params_per_channel].
    prior: a `tfdecomp.priors.Prior` layer with `latent_dim` D.
    likelihood: a `tfdecomp.likelihoods.Likelihood` or its name ("bernoulli", "laplace",
      "normal").
    beta: weight of KL(q(z|x) || p(z)): a number >= 0 or a `tfdecomp.schedules.Schedule` of the
      optimizer step.
    alpha: weight of D(q(z), p(z)): a number >= 0 or a schedule.
    divergence: a name in `tfdecomp.divergences.REGISTRY` ("mmd", "inclusive_kl"), or None /
      "none" (no D term; alpha is then ignored).
    num_samples: S, posterior samples per example for the reconstruction term, >= 1.
    seed: int seed of the training and evaluation noise; None picks one at random (it is stored
      in the config, so a saved model keeps it).
    **kwargs: `keras.Model` arguments (name, ...).

  Raises:
    ValueError: for an unknown divergence, negative weights, num_samples < 1, or a prior whose
      latent_dim differs from the encoder's output width.

  Logged metrics: loss, reconstruction, kl, divergence, elbo (batch means, averaged over the
  epoch as usual in Keras) and beta, alpha (their current values).
  """

  def __init__(self, encoder, decoder, prior, likelihood="normal", beta=1.0, alpha=0.0,
               divergence=None, num_samples=1, seed=None, **kwargs):
    super().__init__(**kwargs)
    divergence = divergences.resolve(divergence)
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or \
        num_samples < 1:
      raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    if not isinstance(prior, priors_lib.Prior):
      raise ValueError(f"prior must be a tfdecomp.priors.Prior layer, got {type(prior).__name__}.")
    latent_dim = encoder.outputs[0].shape[-1] if getattr(encoder, "outputs", None) else None
    if latent_dim is not None and latent_dim != prior.latent_dim:
      raise ValueError(f"the encoder outputs {latent_dim} latent dimensions but the prior has "
                       f"latent_dim={prior.latent_dim}; make them equal.")
    if seed is None:
      seed = seeds.random_seed()
    self.encoder = encoder
    self.decoder = decoder
    self.prior = prior
    self.likelihood = likelihoods_lib.get(likelihood)
    self.beta = schedules.get(beta, "beta")
    self.alpha = schedules.get(alpha, "alpha")
    self.divergence = divergence
    self.num_samples = int(num_samples)
    self.seed = int(seed)
    self._eval_seeds = seeds.eval_generator(self.seed)
    self._trackers = {name: keras.metrics.Mean(name=name) for name in _TERMS}
    self._beta_tracker = LastValue(name="beta")
    self._alpha_tracker = LastValue(name="alpha")
    self.nonfinite_tracker = FirstNonFinite()
    self.built = True

  @property
  def latent_dim(self):
    """D, the prior's latent dimension."""
    return self.prior.latent_dim

  @property
  def metrics(self):
    return [*self._trackers.values(), self._beta_tracker, self._alpha_tracker,
            self.nonfinite_tracker]

  # ---- seeds -------------------------------------------------------------------------------

  def train_seed(self, step):
    """The stateless seed of the training noise at `step`: int32 [2], the same on every replica.

    `seeds.train_step_seed(self.seed, step)`; `step` is the optimizer step
    (`optimizer.iterations` before the update). Each replica keeps its rows of the global draw.
    """
    return seeds.train_step_seed(self.seed, step)

  def reset_eval_noise(self, step=None):
    """Makes the evaluation noise from now on a pure function of (seed, `step`).

    `test_step` draws from a `SeedGenerator` whose state is not part of the weights; resetting
    it before each validation pass (`tfdecomp.callbacks.ValidationNoise`) and before the final
    test-set evaluation makes those numbers the same in a resumed run as in an uninterrupted
    one. `step` defaults to the optimizer's iterations.
    """
    if step is None:
      step = int(self.optimizer.iterations.numpy()) if self.optimizer is not None else 0
    state = self._eval_seeds.state
    state.assign(tf.constant(seeds.eval_state(self.seed, step), dtype=state.dtype))

  def _eval_seed(self):
    # SeedGenerator yields int64 [2]; TFP's stateless samplers want int32 [2].
    return seeds.fold_replica(tf.cast(self._eval_seeds.next(), tf.int64))

  # ---- the objective ----------------------------------------------------------------------

  def posterior(self, x, training=False):
    """q(z|x) = N(loc, diag(scale^2)): batch shape [B], event shape [D]."""
    loc, scale = self.encoder(x, training=training)
    return posteriors.diagonal_gaussian(loc, scale)

  def compute_terms(self, x, seed, training=False, global_rows=False):
    """The objective's terms on a batch (`tfdecomp.objectives.decomposition_terms`).

    Args:
      x: float [B, *x_shape] (this replica's share of the batch).
      seed: int32 [2] stateless seed.
      training: passed to the networks (BatchNorm statistics).
      global_rows: draw the noise of the global batch of B * R examples from `seed` and keep
        this replica's rows [r * B, (r + 1) * B) (the training step); otherwise `seed` is already
        this replica's own (evaluation).

    Returns:
      dict: reconstruction [B], kl [B], divergence scalar (on the global batch), z [S, B, D].
    """
    def likelihood_fn(z):
      return self.likelihood.distribution(self.decoder(z, training=training))

    strategy = tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    all_gather = rows = None
    context = tf.distribute.get_replica_context()
    if replicas > 1:
      all_gather = lambda t: context.all_gather(t, axis=0)  # noqa: E731  (differentiable)
    if global_rows:
      batch = tf.shape(x)[0]
      replica = 0 if context is None or replicas == 1 else context.replica_id_in_sync_group
      rows = (tf.cast(replica, tf.int32) * batch, batch * replicas)
    return objectives.decomposition_terms(
        x, self.posterior(x, training=training), likelihood_fn, self.prior,
        divergence=self.divergence, num_samples=self.num_samples, seed=seed,
        all_gather=all_gather, rows=rows)

  def _objective(self, x, seed, beta, alpha, training):
    """Returns (loss scaled for the replica sum, dict of this replica's metric values, batch)."""
    terms = self.compute_terms(x, seed, training=training, global_rows=training)
    if self.divergence is None:
      alpha = tf.zeros_like(alpha)
    scaled, values = objectives.combine_terms(
        terms, beta, alpha, num_replicas=tf.distribute.get_strategy().num_replicas_in_sync,
        extra_loss=tf.add_n(self.losses) if self.losses else None)
    return scaled, values, tf.shape(terms["reconstruction"])[0]

  def _update_metrics(self, values, batch, beta, alpha):
    weight = tf.cast(batch, tf.float32)
    for name in _TERMS:
      self._trackers[name].update_state(values[name], sample_weight=weight)
    self._beta_tracker.update_state(beta)
    self._alpha_tracker.update_state(alpha)
    return {m.name: m.result() for m in self.metrics if m is not self.nonfinite_tracker}

  def _weights_at(self, step):
    return self.beta(step), self.alpha(step)

  def train_step(self, data):
    x = _unpack_x(data)
    step = tf.identity(self.optimizer.iterations)  # The value before this step's update.
    beta, alpha = self._weights_at(step)
    with tf.GradientTape() as tape:
      scaled, values, batch = self._objective(x, self.train_seed(step), beta, alpha, training=True)
    grads = tape.gradient(scaled, self.trainable_variables)
    self.optimizer.apply(grads, self.trainable_variables)
    self.nonfinite_tracker.update_state(values["loss"], step)
    return self._update_metrics(values, batch, beta, alpha)

  def test_step(self, data):
    x = _unpack_x(data)
    step = self.optimizer.iterations if self.optimizer is not None else 0
    beta, alpha = self._weights_at(step)
    _, values, batch = self._objective(x, self._eval_seed(), beta, alpha, training=False)
    return self._update_metrics(values, batch, beta, alpha)

  # ---- inference ----------------------------------------------------------------------------

  def call(self, inputs, training=False):
    """Deterministic pass (what `predict` returns).

    Args:
      inputs: x [B, *x_shape].
      training: passed to the networks.

    Returns:
      dict: loc [B, D], scale [B, D] (q(z|x)) and reconstruction [B, *x_shape] = E[x|z = loc].
    """
    loc, scale = self.encoder(inputs, training=training)
    params = self.decoder(loc, training=training)
    return {"loc": loc, "scale": scale, "reconstruction": self.likelihood.mean(params)}

  def encode(self, x, batch_size=None):
    """q(z|x) parameters.

    Args:
      x: [B, *x_shape].
      batch_size: optional chunk size for large inputs.

    Returns:
      (loc [B, D], scale [B, D]) float32 tensors.
    """
    if batch_size is None:
      loc, scale = self.encoder(x, training=False)
      return tf.convert_to_tensor(loc), tf.convert_to_tensor(scale)
    outs = [self.encoder(x[i:i + batch_size], training=False)
            for i in range(0, len(x), batch_size)]
    return tf.concat([o[0] for o in outs], 0), tf.concat([o[1] for o in outs], 0)

  def likelihood_fn(self, z):
    """p(x|z) for z [N, D]: a distribution with batch shape [N] and event shape x_shape."""
    return self.likelihood.distribution(self.decoder(z, training=False))

  def decode(self, z):
    """E[x|z], the mean of p(x|z) (probabilities for Bernoulli).

    Args:
      z: [N, D].

    Returns:
      [N, *x_shape] float32 tensor.
    """
    return self.likelihood.mean(self.decoder(z, training=False))

  def reconstruct(self, x, sample=False, seed=None):
    """E[x|z] at z = E[z|x] (or at one z ~ q(z|x) when `sample`).

    Args:
      x: [B, *x_shape].
      sample: decode a posterior sample instead of the posterior mean.
      seed: sampling seed: None (fresh noise), an int or an int32 [2] tensor (reproducible).

    Returns:
      [B, *x_shape] float32 tensor.
    """
    loc, scale = self.encode(x)
    if sample:
      z = posteriors.diagonal_gaussian(loc, scale).sample(seed=seeds.stateless(seed))
    else:
      z = loc
    return self.decode(z)

  def sample(self, n, seed=None):
    """Draws z ~ p(z) and returns E[x|z].

    Args:
      n: number of samples.
      seed: None (fresh noise), an int or a stateless int32 [2] seed (reproducible).

    Returns:
      [n, *x_shape] float32 tensor.
    """
    return self.decode(self.prior.sample(n, seed=seeds.stateless(seed)))

  def traverse(self, x, dim, values):
    """Latent traversals: decode E[z|x] with dimension `dim` set to each of `values`.

    Args:
      x: [B, *x_shape].
      dim: latent dimension in [0, D).
      values: [V] values given to z_dim.

    Returns:
      [B, V, *x_shape] float32 tensor.

    Raises:
      ValueError: if `dim` is out of range.
    """
    if not 0 <= int(dim) < self.latent_dim:
      raise ValueError(f"dim must be in [0, {self.latent_dim}), got {dim!r}.")
    loc, _ = self.encode(x)
    values = tf.convert_to_tensor(values, loc.dtype)
    batch, num_values = tf.shape(loc)[0], tf.shape(values)[0]
    z = tf.repeat(loc[:, tf.newaxis, :], num_values, axis=1)        # [B, V, D]
    mask = tf.one_hot(int(dim), self.latent_dim, dtype=loc.dtype)   # [D]
    z = z * (1 - mask) + values[tf.newaxis, :, tf.newaxis] * mask
    images = self.decode(tf.reshape(z, [-1, self.latent_dim]))
    return tf.reshape(images, tf.concat([[batch, num_values], tf.shape(images)[1:]], 0))

  # ---- serialization -----------------------------------------------------------------------

  def save(self, filepath, overwrite=True, **kwargs):
    """`keras.Model.save`, written atomically for `.keras` files.

    Keras opens the file before serialising the model, so a failing save (e.g. a prior that
    cannot be serialised) would leave an empty file or wipe an existing one; here the model is
    written to a temporary file beside `filepath` and renamed into place only on success.
    """
    path = os.fspath(filepath) if isinstance(filepath, (str, os.PathLike)) else None
    if path is None or not path.endswith(".keras") or (not overwrite and os.path.exists(path)):
      return super().save(filepath, overwrite=overwrite, **kwargs)
    with _io.atomic_path(path, suffix=".keras") as tmp:
      return super().save(tmp, overwrite=True, **kwargs)

  def get_config(self):
    return {
        "name": self.name,
        "trainable": self.trainable,
        "encoder": keras.saving.serialize_keras_object(self.encoder),
        "decoder": keras.saving.serialize_keras_object(self.decoder),
        "prior": keras.saving.serialize_keras_object(self.prior),
        "likelihood": keras.saving.serialize_keras_object(self.likelihood),
        "beta": schedules.serialize(self.beta),
        "alpha": schedules.serialize(self.alpha),
        "divergence": self.divergence,
        "num_samples": self.num_samples,
        "seed": self.seed,
    }

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    for key in ("encoder", "decoder", "prior", "likelihood", "beta", "alpha"):
      config[key] = keras.saving.deserialize_keras_object(config[key])
    return cls(**config)
