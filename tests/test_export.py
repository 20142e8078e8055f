"""SavedModel export: endpoints reproduce the model, priors come back with trained variances."""

import json
import os

import keras
import numpy as np
import pytest

import savedmodels
from tfdecomp import model as model_lib
from tfdecomp import networks
from tfdecomp import priors
from tfdecomp import seeds


def make_model(prior):
  encoder, decoder = networks.mlp(input_dim=2, latent_dim=prior.latent_dim, hidden_units=8)
  model = model_lib.DecompVAE(encoder, decoder, prior, "normal", divergence="mmd", alpha=1.0,
                              seed=0)
  model.compile(optimizer=keras.optimizers.Adam(0.05))
  x = np.random.default_rng(0).normal(size=[64, 2]).astype(np.float32)
  model.fit(x, batch_size=32, epochs=2, verbose=0)  # Moves the learnable prior variances.
  return model


@pytest.mark.parametrize("make_prior", [
    lambda: priors.Mixture(learnable=True),
    lambda: priors.Sparse(3, gamma=0.8, learnable=True),
    lambda: priors.StudentT(3, df=5.0),
])
def test_export_round_trip(tmp_path, make_prior):
  model = make_model(make_prior())
  path = savedmodels.export(model, tmp_path / "export", input_shape=(2,))
  loaded = savedmodels.load(path)
  x = np.random.default_rng(1).normal(size=[7, 2]).astype(np.float32)
  for got, want in zip(loaded.encode(x, batch_size=3), model.encode(x)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(loaded.reconstruct(x), model.reconstruct(x), rtol=1e-6, atol=1e-7)
  z = np.random.default_rng(2).normal(size=[5, model.latent_dim]).astype(np.float32)
  np.testing.assert_allclose(loaded.decode(z), model.decode(z), rtol=1e-6, atol=1e-7)
  # The rebuilt prior carries the trained variances.
  np.testing.assert_allclose(loaded.prior.variances, model.prior.variances, rtol=1e-6)
  np.testing.assert_allclose(loaded.prior.log_prob(z), model.prior.log_prob(z), rtol=1e-5)
  np.testing.assert_allclose(loaded.signatures["prior_log_prob"](z=z)["log_prob"],
                             model.prior.log_prob(z), rtol=1e-5)
  # p(x|z) from the export equals the model's.
  want = model.likelihood.distribution(model.decoder(z[:, :])).log_prob(x[:5])
  np.testing.assert_allclose(loaded.likelihood_fn(z).log_prob(x[:5]), want, rtol=1e-5)
  # Sampling: an explicit seed reproduces the model's own prior draw.
  seed = seeds.make_seed(3)
  expected = model.decode(model.prior.distribution().sample(4, seed=seed))
  np.testing.assert_allclose(loaded.sample(4, seed=3), expected, rtol=1e-5, atol=1e-6)


def test_export_is_atomic_and_refuses_to_overwrite(tmp_path):
  model = make_model(priors.Mixture())
  path = savedmodels.export(model, tmp_path / "export", input_shape=(2,))
  with pytest.raises(FileExistsError, match="overwrite"):
    savedmodels.export(model, path, input_shape=(2,))
  savedmodels.export(model, path, input_shape=(2,), overwrite=True)
  assert sorted(os.listdir(tmp_path)) == ["export"]  # No temporary directories left behind.
  with open(os.path.join(path, "tfdecomp.json"), encoding="utf-8") as f:
    assert json.load(f)["input_shape"] == [2]


def test_loading_something_else_names_the_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="tfdecomp.json"):
    savedmodels.load(tmp_path)
