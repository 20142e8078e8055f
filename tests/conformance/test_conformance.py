"""Every conformance case (`cases.CASES`) through every path a user relies on.

  XLA                    the `jit_compile=True` step trains; the XLA-compiled model and prior
                         compute what the eager ones do (see the test for why the noisy
                         losses are not compared);
  MirroredStrategy       one step on 2 replicas (the CPU split into 2 logical devices) equals the
                         global-batch step on one device (each share with its rows of the
                         global batch's noise, and its own BatchNorm statistics);
  .keras                 `model.save` / `keras.saving.load_model` keep weights and outputs;
  SavedModel             `savedmodels.export` / `load` endpoints reproduce the in-memory model;
  get_config             `DecompVAE.from_config(get_config())` is the same model.

Each step uses SGD: Adam's first step is invariant to the scale of the gradient and would hide a
gradient summed instead of averaged over replicas.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import savedmodels
from tests.conformance import cases
from tests.conformance import checks

LR = 1e-3


def _sgd():
  return keras.optimizers.SGD(LR)


def _copy_of(model, case):
  other = case.build_model()
  other.set_weights(model.get_weights())
  return other


def _assert_moved(after, before, what):
  moved = max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(after, before))
  assert moved > 1e-5, f"{what}: the step did not move the weights"


@pytest.mark.parametrize("case", cases.PARAMS)
def test_xla_step_runs_and_xla_agrees_with_eager(case):
  """The XLA-compiled step trains, and the compiled model computes what the eager one does.

  The two steps' losses are not compared: XLA draws other noise than TensorFlow's kernels from
  the same stateless seeds (tf.random.stateless_normal differs, and so do the integer bits for a
  seed with a negative component), so a jit and a non-jit run of one seed follow different noise.
  """
  x = case.data()
  eager = case.build_model()
  xla = _copy_of(eager, case)
  checks.perturb(eager)
  xla.set_weights(eager.get_weights())
  compiled = tf.function(lambda t: xla(t, training=False), jit_compile=True)
  for key, value in eager(x, training=False).items():
    checks.close(compiled(tf.constant(x))[key], value, f"XLA call()[{key!r}]", rtol=1e-4,
                 atol=1e-5)
  z = np.random.default_rng(4).normal(size=[5, eager.latent_dim]).astype(np.float32)
  log_prob = tf.function(xla.prior.log_prob, jit_compile=True)
  checks.close(log_prob(tf.constant(z)), eager.prior.log_prob(z), "XLA prior log_prob",
               rtol=1e-4, atol=1e-5)
  before = [w.numpy() for w in xla.trainable_weights]
  xla.compile(optimizer=_sgd(), jit_compile=True)
  history = checks.fit_one_step(xla, x)
  assert np.isfinite(history["loss"]), history
  _assert_moved(xla.trainable_weights, before, "XLA")


@pytest.mark.parametrize("case", cases.PARAMS)
def test_two_replicas_take_the_single_device_step(case, two_replica_strategy):
  strategy = two_replica_strategy
  x = case.data()
  with strategy.scope():
    replicated = case.build_model()
    replicated.compile(optimizer=_sgd(), jit_compile=False)
  reference = _copy_of(replicated, case)
  before = [w.numpy() for w in reference.trainable_variables]
  loss, grads = checks.replicated_reference_gradients(reference, x,
                                                      strategy.num_replicas_in_sync)
  history = replicated.fit(tf.data.Dataset.from_tensor_slices(x).batch(len(x)), epochs=1,
                           verbose=0, shuffle=False).history
  checks.close(history["loss"][0], loss, "replicated loss", rtol=1e-4, atol=1e-4)
  for var, grad, start in zip(replicated.trainable_variables, grads, before):
    assert grad is not None, f"no gradient reaches {var.path}"
    checks.close(var, start - LR * grad.numpy(), f"replicated weight {var.path}", rtol=1e-4,
                 atol=1e-6)
  _assert_moved(replicated.trainable_variables, before, "replicated")


@pytest.mark.parametrize("case", cases.PARAMS)
def test_keras_file_round_trip(case, tmp_path):
  x = case.data()
  model = case.build_model()
  checks.perturb(model)
  path = tmp_path / "model.keras"
  model.save(path)
  loaded = keras.saving.load_model(path)
  assert type(loaded) is type(model)
  checks.assert_same_model(loaded, model, x, ".keras load")


@pytest.mark.parametrize("case", cases.PARAMS)
def test_savedmodel_export_round_trip(case, tmp_path):
  x = case.data()
  model = case.build_model()
  checks.perturb(model)
  loaded = savedmodels.load(savedmodels.export(model, tmp_path / "export", case.example_shape))
  for got, want in zip(loaded.encode(x), model.encode(x)):
    checks.close(got, want, "encode")
  checks.close(loaded.reconstruct(x), model.reconstruct(x), "reconstruct")
  z = np.random.default_rng(2).normal(size=[5, model.latent_dim]).astype(np.float32)
  checks.close(loaded.decode(z), model.decode(z), "decode")
  checks.close(loaded.likelihood_fn(z).log_prob(x[:5]), model.likelihood_fn(z).log_prob(x[:5]),
               "log p(x|z)", rtol=1e-5, atol=1e-4)
  checks.close(loaded.prior.log_prob(z), model.prior.log_prob(z), "rebuilt prior log_prob")
  checks.close(loaded.signatures["prior_log_prob"](z=z)["log_prob"], model.prior.log_prob(z),
               "prior_log_prob endpoint")
  checks.close(loaded.sample(4, seed=3), model.sample(4, seed=3), "sample")


@pytest.mark.parametrize("case", cases.PARAMS)
def test_model_config_round_trip(case):
  checks.assert_model_config_round_trip(case.build_model(), case.data())
