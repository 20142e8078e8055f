"""Every registry name has a conformance case: a new entry without one fails here."""

import pytest

from tfdecomp import divergences
from tfdecomp import likelihoods
from tfdecomp import networks
from tfdecomp import priors
from tests.conformance import cases


@pytest.mark.parametrize("field, names", [
    ("network", networks.NAMES), ("likelihood", likelihoods.NAMES), ("prior", priors.NAMES),
    ("divergence", divergences.NAMES)])
def test_every_registered_name_has_a_case(field, names):
  covered = {getattr(case, field) for case in cases.CASES}
  assert set(names) <= covered, f"no conformance case for {sorted(set(names) - covered)}"


def test_every_network_likelihood_pair_has_a_case():
  pairs = {(c.network, c.likelihood) for c in cases.CASES}
  missing = {(n, l) for n in networks.NAMES for l in likelihoods.NAMES} - pairs
  assert not missing, missing


def test_every_network_has_data_it_accepts():
  for name in networks.NAMES:
    assert networks.REGISTRY.info(name)["accepts"](cases.example_shape(name))
