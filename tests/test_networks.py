"""Tests for tfdecomp.networks: output shapes, positive scales, argument checks."""

import numpy as np
import pytest

from tfdecomp import networks


@pytest.mark.parametrize("name,x_shape,kwargs,params_shape", [
    ("mlp", (2,), {"latent_dim": 2}, (4,)),
    ("mlp", (3,), {"input_dim": 3, "latent_dim": 5, "num_hidden_layers": 2,
                   "params_per_channel": 1}, (3,)),
    ("conv64", (64, 64, 1), {"latent_dim": 10}, (64, 64, 1)),
    ("conv64", (64, 64, 3), {"latent_dim": 4, "channels": 3, "params_per_channel": 2},
     (64, 64, 6)),
    ("dcgan32", (32, 32, 1), {"latent_dim": 50}, (32, 32, 1)),
])
def test_shapes_and_positive_scale(name, x_shape, kwargs, params_shape):
  encoder, decoder = networks.get(name, **kwargs)
  x = np.random.default_rng(0).random((3, *x_shape)).astype(np.float32)
  loc, scale = encoder(x)
  latent_dim = kwargs["latent_dim"]
  assert loc.shape == (3, latent_dim) and scale.shape == (3, latent_dim)
  assert np.all(np.asarray(scale) > 0)
  params = decoder(np.zeros((7, latent_dim), np.float32))
  assert params.shape == (7, *params_shape)


def test_paper_layer_sizes():
  encoder, decoder = networks.conv64(latent_dim=10)
  convs = [l.filters for l in encoder.layers if l.__class__.__name__ == "Conv2D"]
  assert convs == [32, 32, 64, 64]
  deconvs = [l.filters for l in decoder.layers if l.__class__.__name__ == "Conv2DTranspose"]
  assert deconvs == [64, 64, 32, 1]
  encoder, decoder = networks.dcgan32(latent_dim=50)
  bns = [l for l in encoder.layers if l.__class__.__name__ == "BatchNormalization"]
  assert len(bns) == 2
  deconvs = [l.filters for l in decoder.layers if l.__class__.__name__ == "Conv2DTranspose"]
  assert deconvs == [128, 64, 32, 1]
  encoder, _ = networks.mlp()
  assert [l.units for l in encoder.layers if l.name.startswith("hidden")] == [100]


def test_bad_arguments():
  with pytest.raises(ValueError, match="latent_dim"):
    networks.mlp(latent_dim=0)
  with pytest.raises(ValueError, match="network name"):
    networks.get("resnet")
  with pytest.raises(ValueError, match="transform"):
    networks.PositiveScale("exp")
