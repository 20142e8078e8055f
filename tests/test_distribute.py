"""MirroredStrategy on 2 logical CPUs takes exactly the single-device step of the global batch.

Each replica draws its noise from fold_in(train_seed(step), replica_id) on its half of the batch.
The reference below redraws that noise on one device, computes the objective on the whole batch
by hand (mean of per-example terms + alpha * D on the gathered samples) and takes one SGD step; the
replicated `fit` must land on the same weights. A plain `reduce_mean` per replica (Keras sums
replica gradients) or a divergence computed on half batches would both fail.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import divergences
from tfdecomp import model as model_lib
from tfdecomp import networks
from tfdecomp import objectives
from tfdecomp import priors
from tfdecomp import seeds

BATCH = 16
LR = 0.05


def make_model(divergence):
  encoder, decoder = networks.mlp(input_dim=2, latent_dim=2, hidden_units=16)
  return model_lib.DecompVAE(encoder, decoder, priors.Gaussian(2, variance_scale=0.5),
                             "normal", beta=0.7, alpha=3.0, divergence=divergence, seed=123)


def replica_seed(model, step, replica):
  fold = tf.random.experimental.stateless_fold_in  # The model folds int64 data.
  base = fold(tf.constant([model.seed, 0], tf.int64), tf.constant(step, tf.int64))
  return tf.cast(fold(base, tf.constant(replica, tf.int64)), tf.int32)


def reference_step(model, x, num_replicas):
  """One SGD step on one device with the replicas' noise and the global-batch objective."""
  halves = np.split(x, num_replicas)
  prior = model.prior.distribution()
  with tf.GradientTape() as tape:
    rec, kl, z0, prior_samples, locs, scales = [], [], [], [], [], []
    for r, half in enumerate(halves):
      seed = replica_seed(model, 0, r)
      likelihood_fn = lambda z: model.likelihood.distribution(model.decoder(z, training=True))
      loc, scale = model.encoder(half, training=True)
      posterior = tfp.distributions.Independent(tfp.distributions.Normal(loc, scale), 1)
      terms = objectives.decomposition_terms(half, posterior, likelihood_fn, prior,
                                             divergence=None, seed=seed)
      rec.append(terms["reconstruction"])
      kl.append(terms["kl"])
      z0.append(terms["z"][0])
      prior_seed = tfp.random.split_seed(seeds.make_seed(seed), n=2)[1]
      prior_samples.append(prior.sample(len(half), seed=prior_seed))
      locs.append(loc)
      scales.append(scale)
    if model.divergence == "mmd":
      d = divergences.mmd(tf.concat(z0, 0), tf.concat(prior_samples, 0))
    else:
      d = divergences.inclusive_kl(prior, tf.concat(locs, 0), tf.concat(scales, 0),
                                   prior_samples=tf.concat(prior_samples, 0))
    loss = (tf.reduce_mean(tf.concat(rec, 0)) + 0.7 * tf.reduce_mean(tf.concat(kl, 0)) +
            3.0 * d)
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
  expected_loss = reference_step(reference, x, strategy.num_replicas_in_sync)

  history = replicated.fit(tf.data.Dataset.from_tensor_slices(x).batch(BATCH), epochs=1,
                           verbose=0, shuffle=False).history
  np.testing.assert_allclose(history["loss"][0], expected_loss, rtol=1e-4)
  moved = 0.0
  for got, want, start in zip(replicated.trainable_variables, reference.trainable_variables,
                              initial):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    moved = max(moved, float(np.max(np.abs(want.numpy() - start))))
  assert moved > 1e-3  # The step is large enough that a factor of 2 would show.
