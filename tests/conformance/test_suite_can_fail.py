"""The conformance checks catch broken entries: each broken object below must fail its check."""

import pytest

from tfdecomp import priors
from tests.conformance import cases
from tests.conformance import checks


class DropsVarianceScale(priors.StudentT):
  """A prior whose get_config drops an argument that has a default."""

  def get_config(self):
    config = super().get_config()
    config.pop("variance_scale")
    return config


class DropsDf(priors.StudentT):
  """A prior whose get_config drops a required argument."""

  def get_config(self):
    config = super().get_config()
    config.pop("df")
    return config


class ForgetsWeights(priors.Gaussian):
  """A prior whose rebuilt copy ignores the weights it is given."""

  def set_weights(self, weights):
    del weights


@pytest.mark.parametrize("prior", [
    DropsVarianceScale(cases.LATENT_DIM, df=5.0, variance_scale=0.7),
    DropsDf(cases.LATENT_DIM, df=5.0),
    ForgetsWeights(cases.LATENT_DIM, learnable=True),
], ids=["drops_variance_scale", "drops_df", "forgets_weights"])
def test_a_broken_prior_fails_the_config_check(prior):
  with pytest.raises(AssertionError):
    checks.assert_prior_config_round_trip(prior)


def test_the_model_check_catches_a_model_that_forgets_its_divergence():
  case = next(c for c in cases.CASES if c.divergence == "mmd")
  model = case.build_model()
  original = type(model).get_config

  class Forgetful(type(model)):
    def get_config(self):
      return {**original(self), "divergence": None}

  broken = Forgetful.from_config(original(model))
  broken.set_weights(model.get_weights())
  with pytest.raises(AssertionError):
    checks.assert_model_config_round_trip(broken, case.data())
