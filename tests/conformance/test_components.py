"""get_config/from_config of every registered prior, network (and each of its layers) and
likelihood: a rebuilt object gives the same log_prob / outputs with the same weights."""

import numpy as np
import pytest

from tfdecomp import likelihoods
from tfdecomp import networks
from tfdecomp import priors
from tests.conformance import cases
from tests.conformance import checks


@pytest.mark.parametrize("name", priors.NAMES)
def test_prior_config_round_trip(name):
  checks.assert_prior_config_round_trip(cases.prior_case(name))


@pytest.mark.parametrize("name", networks.NAMES)
def test_network_config_round_trip(name):
  encoder, decoder = networks.build(name, cases.example_shape(name), cases.LATENT_DIM,
                                    params_per_channel=2)
  checks.assert_network_config_round_trip(encoder)
  checks.assert_network_config_round_trip(decoder)


@pytest.mark.parametrize("name", likelihoods.NAMES)
def test_likelihood_config_round_trip(name):
  likelihood = likelihoods.build(name, scale=0.3)
  rebuilt = checks.rebuild(likelihood)
  assert rebuilt == likelihood and rebuilt.get_config() == likelihood.get_config()
  rng = np.random.default_rng(0)
  params = rng.normal(size=[4, 3, 2 * likelihood.params_per_channel]).astype(np.float32)
  x = rng.uniform(0.05, 0.95, size=[4, 3, 2]).astype(np.float32)
  checks.close(rebuilt.distribution(params).log_prob(x), likelihood.distribution(params).log_prob(x),
               "likelihood log_prob")
