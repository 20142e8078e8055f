"""Priors that learn: distributions owning variables train, save and restore; JointDistributions are
flattened; a Mixture learns exactly the parts chosen, within their constraints."""

import os

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import model as model_lib
from tfdecomp import networks
from tfdecomp import priors

tfd = tfp.distributions
tfb = tfp.bijectors


@priors.register_builder("test_maf")
def _maf(latent_dim=2, hidden_units=(8,)):
  return tfd.TransformedDistribution(
      tfd.MultivariateNormalDiag(tf.zeros(latent_dim)),
      tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(
          params=2, hidden_units=list(hidden_units), activation="tanh")))


@priors.register_builder("test_shift")
def _shift(latent_dim=2):
  return tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(latent_dim)),
                                     tfb.Shift(tf.Variable(tf.zeros(latent_dim), name="shift")))


def _data(n=64, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=[n, 2]) * [0.5, 2.0] + [3.0, -1.0]).astype(np.float32)


def _vae(prior, seed=0, lr=0.05):
  keras.utils.set_random_seed(seed)
  encoder, decoder = networks.mlp(input_dim=2, latent_dim=prior.latent_dim, hidden_units=8)
  model = model_lib.DecompVAE(encoder, decoder, prior, "normal", beta=1.0, seed=seed)
  model.compile(optimizer=keras.optimizers.Adam(lr))
  return model


def _ids(variables):
  """Identities of the storage: a keras.Variable wrapping a tf.Variable counts as that variable."""
  return {id(v.value if isinstance(v, keras.Variable) else v) for v in variables}


def _values(variables):
  return [np.array(v) for v in variables]


Z = np.random.default_rng(5).normal(size=[6, 2]).astype(np.float32)


def test_flow_prior_trains_and_its_weights_round_trip(tmp_path):
  prior = priors.FromDistribution(_maf())
  flow_variables = prior.distribution().trainable_variables
  assert len(flow_variables) == 4  # Two masked kernels and biases, built by the constructor.
  model = _vae(prior)
  assert _ids(flow_variables) <= _ids(model.trainable_variables)
  assert _ids(flow_variables) <= _ids(model.weights)
  before, log_prob_before = _values(flow_variables), prior.log_prob(Z).numpy()
  model.fit(_data(), batch_size=32, epochs=2, verbose=0)
  after = _values(flow_variables)
  assert all(not np.allclose(b, a) for b, a in zip(before, after))
  assert np.max(np.abs(prior.log_prob(Z).numpy() - log_prob_before)) > 1e-3

  path = str(tmp_path / "m.weights.h5")
  model.save_weights(path)
  fresh = _vae(priors.FromDistribution(_maf()), seed=1)
  assert not np.allclose(fresh.prior.log_prob(Z), prior.log_prob(Z))
  fresh.load_weights(path)
  for got, want in zip(_values(fresh.prior.distribution().trainable_variables), after):
    np.testing.assert_array_equal(got, want)
  np.testing.assert_allclose(fresh.prior.log_prob(Z), prior.log_prob(Z), rtol=1e-6)


def test_shift_variable_prior_learns_the_code_mean():
  shift = tf.Variable([0.0, 0.0])
  prior = priors.FromDistribution(
      tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(2)), tfb.Shift(shift)))
  assert _ids(prior.trainable_weights) == {id(shift)} and prior.learnable
  model = _vae(prior, lr=0.1)
  assert id(shift) in _ids(model.trainable_variables)
  model.fit(_data(), batch_size=32, epochs=3, verbose=0)
  learnt = shift.numpy()
  assert np.linalg.norm(learnt) > 0.05
  # log N(z; shift, I) with the learnt shift, computed independently.
  np.testing.assert_allclose(prior.log_prob(Z),
                             scipy.stats.multivariate_normal.logpdf(Z, mean=learnt), rtol=1e-5)


def test_keras_layers_inside_the_distribution_are_sublayers():
  class ShiftAndLogScale(keras.layers.Layer):
    def __init__(self):
      super().__init__()
      self.dense = keras.layers.Dense(4, kernel_initializer="zeros")

    def call(self, x):
      out = self.dense(x)
      return out[..., :2], tf.tanh(out[..., 2:])

  net = ShiftAndLogScale()
  prior = priors.FromDistribution(tfd.TransformedDistribution(
      tfd.MultivariateNormalDiag(tf.zeros(2)),
      tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=net)))
  assert _ids(net.trainable_weights) == _ids(prior.trainable_weights) and len(
      net.trainable_weights) == 2


def test_builder_prior_variables_are_created_under_the_strategy(two_replica_strategy):
  with two_replica_strategy.scope():
    prior = priors.FromDistribution(builder="test_shift")
  assert len(prior.trainable_weights) == 1
  assert isinstance(prior.trainable_weights[0].value, tf.distribute.DistributedValues)


def test_saving_an_object_prior_says_how_to_make_it_serialisable(tmp_path):
  model = _vae(priors.FromDistribution(_maf()))
  with pytest.raises(TypeError, match=r"register_builder.*builder="):
    model.save(str(tmp_path / "m.keras"))
  assert os.listdir(tmp_path) == []  # Neither an empty m.keras nor a temporary file is left.


def test_a_failed_save_leaves_an_existing_file_intact(tmp_path):
  path = tmp_path / "m.keras"
  path.write_bytes(b"an earlier model")
  with pytest.raises(TypeError):
    _vae(priors.FromDistribution(_maf())).save(str(path))
  assert path.read_bytes() == b"an earlier model" and os.listdir(tmp_path) == ["m.keras"]


def test_builder_prior_round_trips_through_keras_file(tmp_path):
  prior = priors.FromDistribution(builder="test_maf", builder_config={"hidden_units": [6]})
  assert sorted(v.shape[-1] for v in prior.trainable_weights if len(v.shape) == 2) == [4, 6]
  model = _vae(prior)
  model.fit(_data(), batch_size=32, epochs=1, verbose=0)
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert isinstance(loaded.prior, priors.FromDistribution)
  assert loaded.prior.builder == "test_maf" and loaded.prior.builder_config == {"hidden_units": [6]}
  np.testing.assert_allclose(loaded.prior.log_prob(Z), prior.log_prob(Z), rtol=1e-6)
  untrained = priors.FromDistribution(builder="test_maf", builder_config={"hidden_units": [6]})
  assert not np.allclose(untrained.log_prob(Z), prior.log_prob(Z))

  clone = priors.FromDistribution.from_config(prior.get_config())
  assert clone.latent_dim == 2 and len(clone.trainable_weights) == 4
  np.testing.assert_allclose(clone.log_prob(Z), prior.log_prob(Z), rtol=1e-6)
  with pytest.raises(ValueError, match="weight_values"):
    priors.FromDistribution(builder="test_maf", weight_values=[[0.0]])


@pytest.mark.parametrize("make, match", [
    (lambda: priors.FromDistribution(builder="no_such_flow"), "register_builder"),
    (lambda: priors.FromDistribution(), "either"),
    (lambda: priors.FromDistribution(_maf(), builder="test_maf"), "either"),
    (lambda: priors.FromDistribution(lambda: 3.0), "not a tfp Distribution"),
    (lambda: priors.FromDistribution(
        tfd.JointDistributionSequential([tfd.Normal(0.0, 1.0), tfd.Bernoulli(probs=0.5)])),
     "real-valued"),
])
def test_from_distribution_bad_arguments(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_builder_config_must_be_json_to_save():
  prior = priors.FromDistribution(builder="test_maf",
                                  builder_config={"hidden_units": (np.int64(3),)})
  with pytest.raises(TypeError, match="JSON"):
    prior.get_config()


# ---- JointDistributions --------------------------------------------------------------------------


def test_joint_distribution_is_flattened_to_a_vector():
  joint = tfd.JointDistributionSequential([tfd.Normal(1.0, 2.0), tfd.Normal(-0.5, 0.3)])
  prior = priors.FromDistribution(joint)
  assert prior.latent_dim == 2
  assert prior.distribution().event_shape == [2] and prior.distribution().batch_shape == []
  z = np.random.default_rng(0).normal(size=[7, 2]).astype(np.float32)
  expected = (scipy.stats.norm.logpdf(z[:, 0], 1.0, 2.0) +
              scipy.stats.norm.logpdf(z[:, 1], -0.5, 0.3))
  np.testing.assert_allclose(prior.log_prob(z), expected, rtol=1e-5)
  samples = prior.sample(20_000, seed=tf.constant([1, 2], tf.int32)).numpy()
  assert samples.shape == (20_000, 2)
  np.testing.assert_allclose(samples.mean(0), [1.0, -0.5], atol=0.05)
  np.testing.assert_allclose(samples.std(0), [2.0, 0.3], rtol=0.03)


def test_named_dependent_joint_concatenates_parts_in_sorted_key_order():
  joint = tfd.JointDistributionNamed({
      "scale": tfd.LogNormal(0.0, 0.5),
      "loc": tfd.MultivariateNormalDiag([0.5, -1.0]),
      "x": lambda loc, scale: tfd.Independent(tfd.Normal(loc, scale[..., tf.newaxis]), 1),
  })
  prior = priors.FromDistribution(joint)
  assert prior.latent_dim == 5  # loc [2], scale [], x [2], in sorted key order.
  z = np.random.default_rng(1).normal(size=[4, 5]).astype(np.float64)
  z[:, 2] = np.abs(z[:, 2]) + 0.1
  loc, scale, x = z[:, :2], z[:, 2], z[:, 3:]
  expected = (scipy.stats.norm.logpdf(loc, [0.5, -1.0], 1.0).sum(-1) +
              scipy.stats.lognorm.logpdf(scale, s=0.5) +
              scipy.stats.norm.logpdf(x, loc, scale[:, None]).sum(-1))
  np.testing.assert_allclose(prior.log_prob(z.astype(np.float32)), expected, rtol=1e-4)


def test_structured_event_without_joint_names_the_fix():
  joint = tfd.JointDistributionSequential([tfd.Normal(0.0, 1.0), tfd.Normal(0.0, 1.0)])
  structured = tfd.TransformedDistribution(joint, tfb.JointMap([tfb.Exp(), tfb.Identity()]))
  with pytest.raises(ValueError, match="JointDistribution"):
    priors.FromDistribution(structured)


# ---- Mixture(learnable=...) ------------------------------------------------------------------


def _mixture_log_prob(z, locs, weights, variances):
  per_component = np.stack([
      np.log(w) + scipy.stats.norm.logpdf(z, loc=mu, scale=np.sqrt(variances)).sum(-1)
      for w, mu in zip(weights, locs)], axis=-1)
  return scipy.special.logsumexp(per_component, axis=-1)


def _fit_mixture(prior, steps=30, lr=0.05):
  # Data far from the initial mixture and unbalanced, so every part has a gradient.
  rng = np.random.default_rng(0)
  z = np.concatenate([rng.normal(size=[48, 2]) * [0.6, 0.05] + [0.5, -1.5],
                      rng.normal(size=[16, 2]) * 0.3 + [-1.0, 0.5]]).astype(np.float32)
  optimizer = keras.optimizers.Adam(lr)
  for _ in range(steps):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(prior.log_prob(z))
    optimizer.apply(tape.gradient(loss, prior.trainable_weights), prior.trainable_weights)
  return z


@pytest.mark.parametrize("learnable", [
    ("weights",), ("means",), ("variances",), ("weights", "means", "variances"), "means,weights",
])
def test_mixture_learns_the_chosen_parts_within_constraints(learnable):
  prior = priors.Mixture(variance_scale=0.1, weights=[0.1, 0.2, 0.3, 0.4], learnable=learnable)
  chosen = set(priors._mixture_parts(learnable))  # pylint: disable=protected-access
  initial = {"weights": prior.component_weights, "means": prior.locs,
             "variances": prior.variances.numpy()}
  z = _fit_mixture(prior)
  now = {"weights": prior.component_weights, "means": prior.locs,
         "variances": prior.variances.numpy()}
  for part in priors.MIXTURE_PARTS:
    moved = np.max(np.abs(now[part] - initial[part]))
    if part in chosen:
      assert moved > 1e-2, part
    else:
      assert moved == 0.0, part
  np.testing.assert_allclose(now["weights"].sum(), 1.0, rtol=1e-6)
  assert np.all(now["weights"] > 0) and np.all(now["variances"] > 0)
  np.testing.assert_allclose(now["variances"].sum(), 0.1 * 2, rtol=1e-5)  # Total s * D kept.
  np.testing.assert_allclose(
      prior.log_prob(z), _mixture_log_prob(z.astype(np.float64), now["means"], now["weights"],
                                           now["variances"]), rtol=1e-4)
  np.testing.assert_allclose(scipy.special.logsumexp(prior.component_log_probs(z), -1),
                             prior.log_prob(z), rtol=1e-5)
  # The config rebuilds the current (learnt) mixture and keeps the choice.
  clone = priors.Mixture.from_config(prior.get_config())
  assert clone.learnable_parts == prior.learnable_parts
  assert {v.name for v in clone.trainable_weights} == {v.name for v in prior.trainable_weights}
  clone.variances_logits.assign(prior.variances_logits)
  np.testing.assert_allclose(clone.log_prob(z), prior.log_prob(z), rtol=1e-5)


def test_mixture_learnable_true_is_the_variances_only():
  assert [v.name for v in priors.Mixture(learnable=True).trainable_weights] == ["variances_logits"]
  assert priors.Mixture(learnable=True).get_config()["learnable"] is True
  assert not priors.Mixture().trainable_weights
  assert priors.Mixture(learnable=("variances",)).learnable is True
  with pytest.raises(ValueError, match="unknown mixture part"):
    priors.Mixture(learnable=("weights", "covariances"))
  with pytest.raises(ValueError, match="start positive"):
    priors.Mixture(weights=[0.0, 1.0, 1.0, 1.0], learnable=("weights",))


# ---- export and tf.distribute ------------------------------------------------------------------


def test_export_carries_the_learnt_mixture_and_flow(tmp_path):
  import savedmodels  # pylint: disable=g-import-not-at-top
  for i, prior in enumerate([
      priors.Mixture(variance_scale=0.1, learnable=("weights", "means", "variances")),
      priors.FromDistribution(builder="test_shift")]):
    model = _vae(prior)
    before = prior.log_prob(Z).numpy()
    model.fit(_data(), batch_size=32, epochs=2, verbose=0)
    assert np.max(np.abs(prior.log_prob(Z).numpy() - before)) > 1e-3
    loaded = savedmodels.load(savedmodels.export(model, tmp_path / f"e{i}", input_shape=(2,)))
    np.testing.assert_allclose(loaded.signatures["prior_log_prob"](z=Z)["log_prob"],
                               prior.log_prob(Z), rtol=1e-5)
    # The prior rebuilt from the export's metadata alone carries what was learnt too.
    np.testing.assert_allclose(loaded.prior.log_prob(Z), prior.log_prob(Z), rtol=1e-5)


def test_flow_prior_trains_under_mirrored_strategy(two_replica_strategy):
  with two_replica_strategy.scope():
    prior = priors.FromDistribution(builder="test_shift")
    model = _vae(prior, lr=0.1)
  shift = prior.distribution().trainable_variables[0]
  model.fit(_data(), batch_size=32, epochs=2, verbose=0)
  learnt = shift.numpy()
  assert np.linalg.norm(learnt) > 0.05
  for replica_value in two_replica_strategy.experimental_local_results(shift):
    np.testing.assert_array_equal(replica_value.numpy(), learnt)
