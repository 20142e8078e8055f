"""The conformance checks, as plain functions raising AssertionError (so a test can prove that each
one catches a broken entry: `test_suite_can_fail.py`)."""

import itertools
import json

import keras
import numpy as np
import tensorflow as tf

from tfdecomp import objectives
from tfdecomp import seeds

from tests.conformance import cases

RTOL, ATOL = 1e-5, 1e-6


def close(got, want, what, rtol=RTOL, atol=ATOL):
  """assert_allclose that also refuses NaN/inf (two NaN arrays would otherwise compare equal)."""
  got, want = np.asarray(got), np.asarray(want)
  assert np.all(np.isfinite(want)), f"{what}: the reference is not finite"
  np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def perturb(model_or_layer, seed=0):
  """Moves every float weight away from its initial value, so a loader that re-initialises
  instead of restoring is caught.

  The change is zero-mean (w * (1 + 0.1 e) + 0.01 e', e, e' ~ U(-1, 1)): a same-sign shift of
  every kernel entry would add up over a layer's fan-in and compound through a deep network (the
  64x64 convnet's latent scale grew to ~1e3 and its Normal log-likelihood overflowed). BN
  variances (initially 1) stay positive.
  """
  rng = np.random.default_rng(seed)
  for v in model_or_layer.weights:
    if not np.issubdtype(np.dtype(v.dtype), np.floating):
      continue
    scale = rng.uniform(-1.0, 1.0, size=v.shape).astype(v.dtype)
    shift = rng.uniform(-1.0, 1.0, size=v.shape).astype(v.dtype)
    v.assign(np.asarray(v) * (1.0 + 0.1 * scale) + 0.01 * shift)


def rebuild(obj):
  """type(obj).from_config(obj.get_config()); a failure to rebuild is an AssertionError."""
  config = obj.get_config()
  try:
    return type(obj).from_config(config)
  except Exception as e:  # noqa: BLE001  (any failure is a conformance failure)
    raise AssertionError(f"{type(obj).__name__}.from_config(get_config()) failed: "
                         f"{type(e).__name__}: {e}") from e


def _json(config):
  return json.dumps(config, sort_keys=True, default=repr)


def assert_prior_config_round_trip(prior, num=6):
  """A prior rebuilt from its config is the same distribution: as built (the config alone, which
  the SavedModel metadata relies on) and, with the weights copied, after its weights moved."""
  z = np.random.default_rng(3).normal(size=[num, prior.latent_dim]).astype(np.float32)
  seed = seeds.make_seed(5)
  rebuilt = rebuild(prior)
  assert _json(rebuilt.get_config()) == _json(prior.get_config()), "config changed on rebuild"
  close(rebuilt.log_prob(z), prior.log_prob(z), "log_prob from the config alone")
  close(rebuilt.sample(num, seed=seed), prior.sample(num, seed=seed), "samples from the config")
  perturb(prior)
  rebuilt.set_weights(prior.get_weights())
  close(rebuilt.log_prob(z), prior.log_prob(z), "log_prob with the weights copied")
  close(rebuilt(z), prior(z), "call with the weights copied")


def _probe(shape, n=2, seed=0):
  shape = [n if d is None else d for d in shape]
  return np.random.default_rng(seed).uniform(0.05, 0.95, size=shape).astype(np.float32)


def assert_network_config_round_trip(network):
  """A functional network (and each of its layers) rebuilt from its config, with the weights
  copied, computes the same outputs."""
  perturb(network)
  x = _probe(network.inputs[0].shape)
  rebuilt = rebuild(network)
  rebuilt.set_weights(network.get_weights())
  for got, want in zip(tf.nest.flatten(rebuilt(x, training=False)),
                       tf.nest.flatten(network(x, training=False))):
    close(got, want, f"{network.name} outputs")
  for layer in network.layers:
    if isinstance(layer, keras.layers.InputLayer):
      continue
    inputs = _probe(layer.input.shape)
    copy = rebuild(layer)
    copy(inputs)  # builds it
    copy.set_weights(layer.get_weights())
    close(copy(inputs, training=False), layer(inputs, training=False),
          f"{network.name}/{layer.name} ({type(layer).__name__}) outputs")


def terms(model, x, seed=11):
  """The objective's terms of `model` on x with a fixed seed, as numpy."""
  out = model.compute_terms(tf.constant(x), seeds.make_seed(seed), training=False)
  return {k: np.asarray(v) for k, v in out.items()}


def assert_same_model(got, want, x, what):
  """Two models compute the same outputs, objective terms and prior."""
  assert len(got.weights) == len(want.weights), f"{what}: number of weights"
  for a, b in zip(got.weights, want.weights):
    close(a, b, f"{what}: weight {b.path}")
  for key, value in want(x, training=False).items():
    close(got(x, training=False)[key], value, f"{what}: call()[{key!r}]")
  got_terms, want_terms = terms(got, x), terms(want, x)
  for key in want_terms:
    close(got_terms[key], want_terms[key], f"{what}: terms[{key!r}]", rtol=1e-4, atol=1e-5)
  z = np.random.default_rng(4).normal(size=[5, want.latent_dim]).astype(np.float32)
  close(got.prior.log_prob(z), want.prior.log_prob(z), f"{what}: prior log_prob")
  close(got.sample(3, seed=2), want.sample(3, seed=2), f"{what}: sample")
  for key in ("beta", "alpha", "divergence", "num_samples", "seed"):
    assert _json(got.get_config()[key]) == _json(want.get_config()[key]), f"{what}: {key}"


def assert_model_config_round_trip(model, x):
  """DecompVAE.from_config(get_config()) with the weights copied is the same model."""
  perturb(model)
  rebuilt = rebuild(model)
  rebuilt.set_weights(model.get_weights())
  assert_same_model(rebuilt, model, x, "from_config")
  assert _json(rebuilt.get_config()) == _json(model.get_config()), "config changed on rebuild"


def fit_one_step(model, x):
  history = model.fit(x, batch_size=len(x), epochs=1, shuffle=False, verbose=0).history
  return {k: v[0] for k, v in history.items()}


def replicated_reference_gradients(model, x, num_replicas):
  """Loss and gradients of one step on one device, computed as R replicas would.

  Each replica r takes its share x_r of the global batch and its rows of the global batch's noise
  (drawn from the step's seed, the same on every replica: `seeds.train_step_seed`); the divergence's
  inputs are gathered over the replicas. Here the gather is emulated with two passes over the
  shares: the first records what each share hands to `all_gather`, the second returns the
  concatenation of those records, exactly as `ReplicaContext.all_gather` does, and gradients flow
  through them to every share (as through the differentiable all_gather).

  Returns:
    (loss, [gradient per trainable variable]) with the loss the global-batch objective.
  """
  shares = np.split(x, num_replicas)
  beta, alpha = model.beta(0), model.alpha(0)
  if model.divergence is None:
    alpha = 0.0

  def share_terms(r, gather):
    share = tf.constant(shares[r])
    likelihood_fn = lambda z: model.likelihood.distribution(model.decoder(z, training=True))
    return objectives.decomposition_terms(
        share, model.posterior(share, training=True), likelihood_fn, model.prior,
        divergence=model.divergence, num_samples=model.num_samples,
        seed=seeds.train_step_seed(model.seed, 0), all_gather=gather,
        rows=(r * len(share), len(x)))

  with tf.GradientTape() as tape:
    records = [[] for _ in shares]
    for r in range(num_replicas):
      # Recording pass: a stand-in of the gathered shape (its values are not used).
      share_terms(r, lambda t, r=r: records[r].append(t) or tf.concat([t] * num_replicas, 0))
    total, values = 0.0, []
    for r in range(num_replicas):
      calls = itertools.count()

      def gather(t, calls=calls):  # The i-th gather of a share: the i-th records, concatenated.
        del t
        i = next(calls)
        return tf.concat([records[s][i] for s in range(num_replicas)], 0)

      scaled, value = objectives.combine_terms(share_terms(r, gather), beta, alpha,
                                               num_replicas=num_replicas)
      total += scaled
      values.append(value)
  grads = tape.gradient(total, model.trainable_variables)
  loss = float(np.mean([float(v["loss"]) for v in values]))
  return loss, grads


__all__ = ["close", "perturb", "rebuild", "assert_prior_config_round_trip",
           "assert_network_config_round_trip", "assert_model_config_round_trip",
           "assert_same_model", "fit_one_step", "replicated_reference_gradients", "cases"]
