"""Random access to observations by ground-truth factors, for disentanglement metrics.

The interface follows disentanglement_lib's `GroundTruthData` (Locatello et al., 2019) with NumPy
`Generator`s instead of `RandomState`s. Metrics only use this interface and treat observations as
opaque: they pass them to a representation function.
"""

import abc
from typing import Sequence, Tuple

import numpy as np


class GroundTruthData(abc.ABC):
  """A dataset whose examples are indexed by a grid of discrete ground-truth factors.

  Subclasses define `factor_names`, `factor_sizes`, `observation_shape` and
  `sample_observations_from_factors`.
  """

  @property
  @abc.abstractmethod
  def factor_names(self) -> Sequence[str]:
    """Names of the K factors, e.g. ("shape", "scale", "orientation", ...)."""

  @property
  @abc.abstractmethod
  def factor_sizes(self) -> Sequence[int]:
    """Number of values of each of the K factors."""

  @property
  @abc.abstractmethod
  def observation_shape(self) -> Tuple[int, ...]:
    """Shape of one observation, e.g. (64, 64, 1)."""

  @abc.abstractmethod
  def sample_observations_from_factors(self, factors: np.ndarray,
                                       rng: np.random.Generator) -> np.ndarray:
    """Observations for given factor values.

    Args:
      factors: int array [N, K]; column k holds values in [0, factor_sizes[k]).
      rng: randomness for datasets where several observations share the same factors.

    Returns:
      float32 array [N, *observation_shape].
    """

  @property
  def num_factors(self) -> int:
    return len(self.factor_sizes)

  @property
  def num_examples(self) -> int:
    """Size of the full factor grid."""
    return int(np.prod(self.factor_sizes, dtype=np.int64))

  def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
    """Factors drawn uniformly and independently: int64 array [num, K]."""
    return np.stack([rng.integers(0, size, size=num) for size in self.factor_sizes], axis=1)

  def sample(self, num: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Uniform factors [num, K] and their observations [num, *observation_shape]."""
    factors = self.sample_factors(num, rng)
    return factors, self.sample_observations_from_factors(factors, rng)

  def sample_observations(self, num: int, rng: np.random.Generator) -> np.ndarray:
    """Observations [num, *observation_shape] with uniformly drawn factors."""
    return self.sample(num, rng)[1]

  def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
    """Row-major position of each factor tuple in the full grid: int64 [N]."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != self.num_factors:
      raise ValueError(f"factors must have shape [N, {self.num_factors}], got {factors.shape}.")
    return np.ravel_multi_index(tuple(factors.T), tuple(self.factor_sizes))

  def index_to_factors(self, index: np.ndarray) -> np.ndarray:
    """Inverse of `factors_to_index`: int64 [N, K]."""
    return np.stack(np.unravel_index(np.asarray(index), tuple(self.factor_sizes)), axis=1)
