"""Random access to observations by ground-truth factors, for disentanglement metrics.

The interface follows disentanglement_lib's `GroundTruthData` (Locatello et al., 2019). Its
sampling methods accept a NumPy `Generator` (what tfdecomp's metrics pass) or a `RandomState`
(what disentanglement_lib's metrics pass), so both libraries' metric code can share ground-truth
objects. Metrics only use this interface and treat observations as opaque: they pass them to a
representation function.
"""

import abc
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["GroundTruthData", "GridGroundTruthData", "RepeatedGridGroundTruthData"]

Rng = Union[np.random.Generator, np.random.RandomState]


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
  def sample_observations_from_factors(self, factors: np.ndarray, rng: Rng) -> np.ndarray:
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

  def sample_factors(self, num: int, rng: Rng) -> np.ndarray:
    """Factors drawn uniformly and independently: int64 array [num, K].

    Args:
      num: number of factor tuples.
      rng: a `np.random.Generator` or a `np.random.RandomState`.
    """
    if isinstance(rng, np.random.RandomState):
      columns = [rng.randint(size, size=num) for size in self.factor_sizes]
    else:
      columns = [rng.integers(0, size, size=num) for size in self.factor_sizes]
    return np.stack(columns, axis=1).astype(np.int64)

  def sample(self, num: int, rng: Rng) -> Tuple[np.ndarray, np.ndarray]:
    """Uniform factors [num, K] and their observations [num, *observation_shape]."""
    factors = self.sample_factors(num, rng)
    return factors, self.sample_observations_from_factors(factors, rng)

  def sample_observations(self, num: int, rng: Rng) -> np.ndarray:
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


class GridGroundTruthData(GroundTruthData):
  """Every observation of a factor grid held in memory, row i = grid position i (row-major).

  Args:
    factor_names: K names.
    factor_sizes: K sizes; the grid has prod(factor_sizes) positions.
    observations: array [prod(factor_sizes), ...] in row-major factor order.
    observation_shape: shape of one decoded observation; defaults to observations.shape[1:].
    decode: maps gathered rows [N, ...] to observations [N, *observation_shape] (e.g. unpacking
      bits); defaults to a float32 cast.
  """

  def __init__(self, factor_names: Sequence[str], factor_sizes: Sequence[int],
               observations: np.ndarray, observation_shape: Optional[Sequence[int]] = None,
               decode: Optional[Callable[[np.ndarray], np.ndarray]] = None):
    if len(factor_names) != len(factor_sizes):
      raise ValueError(f"factor_names and factor_sizes must have the same length, got "
                       f"{len(factor_names)} and {len(factor_sizes)}.")
    self._names = tuple(factor_names)
    self._sizes = tuple(int(s) for s in factor_sizes)
    if len(observations) != self.num_examples:
      raise ValueError(f"observations must have prod(factor_sizes) = {self.num_examples} rows, "
                       f"got {len(observations)}.")
    self._observations = observations
    self._shape = tuple(observation_shape or observations.shape[1:])
    self._decode = decode or (lambda rows: rows.astype(np.float32))

  @classmethod
  def from_examples(cls, factor_names: Sequence[str], factor_sizes: Sequence[int],
                    factors: np.ndarray, observations: np.ndarray, **kwargs):
    """Arranges examples given in any order (e.g. a TFDS split) into the grid.

    Args:
      factor_names: K names.
      factor_sizes: K sizes.
      factors: int [M, K] factor levels of each example.
      observations: [M, ...] observations.
      **kwargs: passed to the constructor (observation_shape, decode).

    Returns:
      A `GridGroundTruthData` when every combination is observed once, a
      `RepeatedGridGroundTruthData` when some are observed several times (as in real data sets).

    Raises:
      ValueError: if some factor combination is missing.
    """
    index = np.ravel_multi_index(tuple(np.asarray(factors).T), tuple(factor_sizes))
    total = int(np.prod(factor_sizes))
    counts = np.bincount(index, minlength=total)
    if not counts.all():
      raise ValueError(f"the examples cover {int((counts > 0).sum())} of the {total} factor "
                       "combinations: the disentanglement metrics need every combination.")
    if (counts > 1).any():
      return RepeatedGridGroundTruthData(factor_names, factor_sizes, index, observations,
                                         **kwargs)
    grid = np.zeros((total,) + observations.shape[1:], observations.dtype)
    grid[index] = observations
    return cls(factor_names, factor_sizes, grid, **kwargs)

  @property
  def factor_names(self):
    return self._names

  @property
  def factor_sizes(self):
    return self._sizes

  @property
  def observation_shape(self):
    return self._shape

  def rows(self, index: np.ndarray) -> np.ndarray:
    """Stored (undecoded) rows at grid positions index [N]."""
    return self._observations[np.asarray(index)]

  def sample_observations_from_factors(self, factors, rng=None):
    del rng  # One observation per factor combination.
    return self._decode(self.rows(self.factors_to_index(factors)))


class RepeatedGridGroundTruthData(GroundTruthData):
  """A full factor grid where a combination may be observed several times.

  `sample_observations_from_factors` draws, for each factor tuple, one of its observed examples
  uniformly at random (with `rng`), so x ~ p(x | factors) is the empirical distribution of the
  examples with those factors.

  Args:
    factor_names: K names.
    factor_sizes: K sizes.
    index: int [M] grid position (row-major) of each example; every position must occur.
    observations: [M, ...] the examples.
    observation_shape, decode: as for `GridGroundTruthData`.
  """

  def __init__(self, factor_names: Sequence[str], factor_sizes: Sequence[int], index: np.ndarray,
               observations: np.ndarray, observation_shape: Optional[Sequence[int]] = None,
               decode: Optional[Callable[[np.ndarray], np.ndarray]] = None):
    self._names = tuple(factor_names)
    self._sizes = tuple(int(s) for s in factor_sizes)
    index = np.asarray(index, np.int64)
    order = np.argsort(index, kind="stable")
    self._order = order  # Examples sorted by grid position.
    counts = np.bincount(index, minlength=self.num_examples)
    if len(counts) != self.num_examples or not counts.all():
      raise ValueError("every factor combination needs at least one example.")
    self._counts = counts
    self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    self._observations = observations
    self._shape = tuple(observation_shape or observations.shape[1:])
    self._decode = decode or (lambda rows: rows.astype(np.float32))

  @property
  def factor_names(self):
    return self._names

  @property
  def factor_sizes(self):
    return self._sizes

  @property
  def observation_shape(self):
    return self._shape

  def sample_observations_from_factors(self, factors, rng=None):
    rng = rng if rng is not None else np.random.default_rng()
    position = self.factors_to_index(factors)
    pick = self._starts[position] + np.floor(
        rng.random(len(position)) * self._counts[position]).astype(np.int64)
    return self._decode(self._observations[self._order[pick]])
