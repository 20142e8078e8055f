"""MirroredStrategy on 2 logical CPUs takes exactly the single-device step of the global batch.

The training noise is layout-independent: the step's seed is cast(fold_in([seed, 0], step),
int32), split into a posterior and a prior seed; the posterior noise is
stateless_normal([S, B_global, D]) for the whole global batch (each replica keeps its rows) and
the divergence's prior samples are the B_global samples of prior.sample(B_global, prior_seed).
The reference below draws that noise by hand on one device, computes the objective on the whole
batch (mean of per-example terms + alpha * D) and takes one SGD step; the replicated `fit` must
land on the same weights. A plain `reduce_mean` per replica (Keras sums replica gradients), a
divergence computed on half batches, or noise that depends on the replica would all fail.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import divergences
from tfdecomp import model as model_lib
from tfdecomp import networks
from tfdecomp import priors

BATCH = 16
LR = 0.05


def make_model(divergence):
  encoder, decoder = networks.mlp(input_dim=2, latent_dim=2, hidden_units=16)
  return model_lib.DecompVAE(encoder, decoder, priors.Gaussian(2, variance_scale=0.5),
                             "normal", beta=0.7, alpha=3.0, divergence=divergence, seed=123)


def step_seeds(model, step):
  fold = tf.random.experimental.stateless_fold_in  # The model folds int64 data.
  base = fold(tf.constant([model.seed, 0], tf.int64), tf.constant(step, tf.int64))
  return tfp.random.split_seed(tf.cast(base, tf.int32), n=2)


def reference_step(model, x):
  """One SGD step on one device with the global batch's noise and the global-batch objective."""
  prior = model.prior.distribution()
  posterior_seed, prior_seed = step_seeds(model, 0)
  with tf.GradientTape() as tape:
    loc, scale = model.encoder(x, training=True)
    z = loc + scale * tf.random.stateless_normal([len(x), 2], seed=posterior_seed)
    mean = model.decoder(z, training=True)
    rec = -model.likelihood.distribution(mean).log_prob(x)
    posterior = tfp.distributions.Independent(tfp.distributions.Normal(loc, scale), 1)
    kl = tfp.distributions.kl_divergence(posterior, prior)
    prior_samples = prior.sample(len(x), seed=prior_seed)
    if model.divergence == "mmd":
      d = divergences.mmd(z, prior_samples)
    else:
      d = divergences.inclusive_kl(prior, loc, scale, prior_samples=prior_samples)
    loss = tf.reduce_mean(rec) + 0.7 * tf.reduce_mean(kl) + 3.0 * d
  grads = tape.gradient(loss, model.trainable_variables)
  for var, grad in zip(model.trainable_variables, grads):
    var.assign_sub(LR * grad)
  return float(loss)


@pytest.mark.parametrize("divergence", ["mmd", "inclusive_kl"])
def test_two_replicas_take_the_single_device_step(divergence, two_replica_strategy):
  x = np.random.default_rng(0).normal(size=[BATCH, 2]).astype(np.float32)
  strategy = two_replica_strategy
  with strategy.scope():
    replicated = make_model(divergence)
    replicated.compile(optimizer=keras.optimizers.SGD(LR))
  initial = [w.numpy() for w in replicated.trainable_variables]

  reference = make_model(divergence)
  for var, value in zip(reference.trainable_variables, initial):
    var.assign(value)
  expected_loss = reference_step(reference, x)

  history = replicated.fit(tf.data.Dataset.from_tensor_slices(x).batch(BATCH), epochs=1,
                           verbose=0, shuffle=False).history
  np.testing.assert_allclose(history["loss"][0], expected_loss, rtol=1e-4)
  moved = 0.0
  for got, want, start in zip(replicated.trainable_variables, reference.trainable_variables,
                              initial):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    moved = max(moved, float(np.max(np.abs(want.numpy() - start))))
  assert moved > 1e-3  # The step is large enough that a factor of 2 would show.


def fit_history(divergence, strategy, epochs=4):
  rng = np.random.default_rng(1)
  x = rng.normal(size=[4 * BATCH, 2]).astype(np.float32)
  with strategy.scope():
    keras.utils.set_random_seed(7)
    model = make_model(divergence)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
  data = tf.data.Dataset.from_tensor_slices(x).batch(BATCH, drop_remainder=True)
  history = model.fit(data, epochs=epochs, verbose=0, shuffle=False).history
  return history, [w.numpy() for w in model.trainable_variables]


@pytest.mark.parametrize("divergence", ["mmd", "inclusive_kl"])
def test_two_replicas_give_the_one_device_loss_history(divergence, two_replica_strategy):
  """Same seed, same data: 2 replicas and 1 device have the same history (float tolerance)."""
  one, one_weights = fit_history(divergence, tf.distribute.get_strategy())
  two, two_weights = fit_history(divergence, two_replica_strategy)
  for name in ("loss", "reconstruction", "kl", "divergence"):
    np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-6, err_msg=name)
  for got, want in zip(two_weights, one_weights):
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
  assert len(set(np.round(one["loss"], 4))) == len(one["loss"])  # The loss moved every epoch.


@pytest.mark.slow
@pytest.mark.parametrize("divergence", ["mmd", "inclusive_kl"])
def test_train_api_mirrored_history_equals_one_device(divergence, two_replica_strategy, tmp_path):
  """`training.train(strategy=...)`: 2 replicas give the 1-device history of the same seed."""
  from tfdecomp import configs, training  # pylint: disable=g-import-not-at-top
  config = configs.make("clustering", epochs=3, divergence=divergence, steps_per_execution=1,
                        jit=False)
  runs = [training.train(config, str(tmp_path / name), progress=False, figures=False,
                         strategy=strategy).history
          for name, strategy in (("one", None), ("two", two_replica_strategy))]
  for name in ("loss", "reconstruction", "kl", "divergence"):
    np.testing.assert_allclose([h[name] for h in runs[1]], [h[name] for h in runs[0]],
                               rtol=1e-4, atol=1e-6, err_msg=name)


def test_batch_that_does_not_split_over_replicas_is_a_config_error(two_replica_strategy,
                                                                   tmp_path):
  from tfdecomp import configs, training  # pylint: disable=g-import-not-at-top
  with pytest.raises(configs.ConfigError, match="--batch_size=399 does not split over 2"):
    training.train(configs.make("clustering", epochs=1, batch_size=399), str(tmp_path / "r"),
                   progress=False, figures=False, strategy=two_replica_strategy)
