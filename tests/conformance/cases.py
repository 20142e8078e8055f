"""The conformance registry: one list of tiny model configurations, generated from the registries.

Every case is a `tfdecomp.configs.Config` (built with `configs.make`, so it passes the same
validation as a command line) plus synthetic data of the network's example shape; the model comes
from `tfdecomp.builders.build_model`, the path every user takes. The cases cover

  * every network x every likelihood (`networks.REGISTRY` x `likelihoods.REGISTRY`), each with a
    prior and a divergence taken in turn from their registries, and
  * any prior or divergence ("none" included) the pairs leave out, on the MLP,

so a new prior, divergence, network or likelihood gets every conformance test by its one
`REGISTRY.register(...)` line. The test modules (`test_conformance.py`) run each case through the
paths a user relies on: eager vs XLA step, 2-replica MirroredStrategy vs one device, `.keras`
round trip, SavedModel export round trip, get_config/from_config.

What the registries do not say is kept in the small tables below; `test_coverage.py` fails when a
registry name has no case.
"""

import dataclasses
import itertools
from typing import Optional, Tuple

import numpy as np
import pytest

from tfdecomp import configs
from tfdecomp import datasets
from tfdecomp import divergences
from tfdecomp import likelihoods
from tfdecomp import networks
from tfdecomp import priors

#: Latent size of every case (the mixture prior's default locations are 2-D).
LATENT_DIM = 2
#: Global batch of every step (4 examples per replica on 2 replicas).
BATCH = 8
#: Options given to every prior, each factory taking the ones it accepts
#: (`priors.REGISTRY.accepted_options`); values away from the defaults, so a config that drops
#: one is caught.
PRIOR_OPTIONS = {"variance_scale": 0.7, "learnable": True, "df": 5.0, "gamma": 0.6}
#: Weights of the objective's terms (away from 1, so a dropped weight shows).
BETA, ALPHA = 0.7, 3.0


def example_shape(network: str) -> Tuple[int, ...]:
  """The example shape of the first registered data set the network accepts."""
  accepts = networks.REGISTRY.info(network)["accepts"]
  for name in datasets.REGISTRY:
    shape = tuple(datasets.get(name).example_shape)
    if accepts(shape):
      return shape
  raise LookupError(f"no registered data set has examples that network {network!r} accepts; "
                    "add one or give the network a shape in tests/conformance/cases.py.")


def dataset_for(network: str) -> str:
  accepts = networks.REGISTRY.info(network)["accepts"]
  return next(n for n in datasets.REGISTRY if accepts(tuple(datasets.get(n).example_shape)))


@dataclasses.dataclass(frozen=True)
class Case:
  """One small configuration: which network, likelihood, prior and divergence."""
  network: str
  likelihood: str
  prior: str
  divergence: str

  @property
  def name(self) -> str:
    return f"{self.network}-{self.likelihood}-{self.prior}-{self.divergence}"

  @property
  def example_shape(self) -> Tuple[int, ...]:
    return example_shape(self.network)

  def config(self, **overrides) -> configs.Config:
    """The case's validated config."""
    settings = dict(dataset=dataset_for(self.network), network=self.network,
                    likelihood=self.likelihood, prior=self.prior, divergence=self.divergence,
                    latent_dim=LATENT_DIM, batch_size=BATCH, beta=BETA, alpha=ALPHA, seed=7,
                    learn_prior=PRIOR_OPTIONS["learnable"], df=PRIOR_OPTIONS["df"],
                    gamma=PRIOR_OPTIONS["gamma"],
                    prior_variance_scale=PRIOR_OPTIONS["variance_scale"], epochs=1,
                    learning_rate=1e-3, steps_per_execution=1, jit=False, pca_examples=BATCH)
    settings.update(overrides)
    return configs.make("clustering", **settings)

  def data(self, n: int = BATCH, seed: int = 0) -> np.ndarray:
    """float32 [n, *example_shape] in (0, 1): valid for every likelihood (Bernoulli included)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, size=(n, *self.example_shape)).astype(np.float32)

  def build_model(self, config: Optional[configs.Config] = None):
    """The case's DecompVAE from its config (`builders.build_model`), not compiled."""
    from tfdecomp import builders  # pylint: disable=g-import-not-at-top
    return builders.build_model(config or self.config(), self.data())


def _generate():
  cases = []
  div_names = divergences.NAMES
  prior_names = priors.NAMES
  # Every network x likelihood, priors and divergences in turn.
  for i, (network, likelihood) in enumerate(itertools.product(networks.NAMES, likelihoods.NAMES)):
    cases.append(Case(network, likelihood, prior_names[i % len(prior_names)],
                      div_names[i % len(div_names)]))
  # Any prior or divergence the pairs above missed, on the cheapest network.
  covered = {c.prior for c in cases} | {c.divergence for c in cases}
  for i, name in enumerate(n for n in prior_names + div_names if n not in covered):
    prior = name if name in prior_names else prior_names[0]
    divergence = name if name in div_names else div_names[i % len(div_names)]
    cases.append(Case("mlp", "normal", prior, divergence))
  unique = {}
  for case in cases:
    unique.setdefault(case.name, case)
  return tuple(unique.values())


#: Every conformance case.
CASES = _generate()
#: The cases as pytest parameters, with readable ids.
PARAMS = [pytest.param(case, id=case.name) for case in CASES]


def prior_case(name: str):
  """A prior of the registry with `PRIOR_OPTIONS`, and data for data-dependent priors."""
  data = np.random.default_rng(1).uniform(size=(16, 5)).astype(np.float32)
  return priors.get(name, LATENT_DIM, data=data, **PRIOR_OPTIONS)
