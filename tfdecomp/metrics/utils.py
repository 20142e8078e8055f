"""Shared helpers for the metrics: batched encoding, sampling, discretisation, mutual information.

The reference implementations (disentanglement_lib, Locatello et al. 2019) call the
representation function on mini-batches of 16 or 64 observations and compute D x K mutual
informations with one scikit-learn call each. Here factors are drawn for a whole metric at once,
observations are encoded in large chunks (`encode_batch_size`), and contingency tables come from a
single `np.bincount` per code dimension, which gives the same numbers far faster.
"""

import contextlib
from typing import Callable, Optional, Tuple

import numpy as np
import threadpoolctl

from tfdecomp import seeds
from tfdecomp.ground_truth import GroundTruthData

RepresentationFn = Callable[[np.ndarray], np.ndarray]

#: Observations per call of `representation_fn` (64 x 64 x 1 float32 images: 16 MiB). Large
#: enough to amortise a TensorFlow call; much larger chunks fall out of cache and get slower.
DEFAULT_ENCODE_BATCH_SIZE = 1024


@contextlib.contextmanager
def single_threaded_blas():
  """Limits BLAS/OpenMP pools to one thread for the small fits inside the metrics.

  scikit-learn's solvers on [10000, 10] inputs spend most of their time synchronising BLAS and
  OpenMP threads; on a loaded 2-core machine a single thread is about 4x faster (same results).
  """
  with threadpoolctl.threadpool_limits(limits=1):
    yield


def make_rng(seed) -> np.random.Generator:
  """A NumPy Generator from an int seed, a SeedSequence or an existing Generator."""
  return seeds.metric_rng(seed)


def check_positive(name: str, value: int) -> int:
  """Returns `int(value)`, raising a ValueError naming `name` when it is not a positive integer."""
  if int(value) != value or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}.")
  return int(value)


def encode_factors(ground_truth: GroundTruthData, representation_fn: RepresentationFn,
                   factors: np.ndarray, rng: np.random.Generator,
                   encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE) -> np.ndarray:
  """Codes of observations generated from `factors`, encoded in chunks.

  Args:
    ground_truth: the dataset; observations are only passed to `representation_fn`.
    representation_fn: maps observations [n, *obs] to codes [n, D].
    factors: int [N, K] factor values.
    rng: randomness for `sample_observations_from_factors`.
    encode_batch_size: observations per call of `representation_fn`.

  Returns:
    float64 array [N, D].

  Raises:
    ValueError: if `representation_fn` does not return one code vector per observation.
  """
  encode_batch_size = check_positive("encode_batch_size", encode_batch_size)
  chunks = []
  for start in range(0, len(factors), encode_batch_size):
    block = factors[start:start + encode_batch_size]
    observations = ground_truth.sample_observations_from_factors(block, rng)
    codes = np.asarray(representation_fn(observations))
    if codes.ndim != 2 or codes.shape[0] != len(block):
      raise ValueError("representation_fn must map [n, *observation_shape] observations to [n, D] "
                       f"codes; got shape {codes.shape} for n = {len(block)}.")
    chunks.append(codes.astype(np.float64, copy=False))
  return np.concatenate(chunks, axis=0)


def sample_factor_codes(ground_truth: GroundTruthData, representation_fn: RepresentationFn,
                        num_points: int, rng: np.random.Generator,
                        encode_batch_size: int = DEFAULT_ENCODE_BATCH_SIZE
                        ) -> Tuple[np.ndarray, np.ndarray]:
  """Uniformly sampled factors and the codes of their observations.

  Returns:
    codes float64 [num_points, D] and factors int64 [num_points, K].
  """
  num_points = check_positive("num_points", num_points)
  factors = ground_truth.sample_factors(num_points, rng)
  return encode_factors(ground_truth, representation_fn, factors, rng, encode_batch_size), factors


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
  """Per-dimension equal-width histogram bins, as disentanglement_lib's `histogram_discretizer`.

  Each column is digitised against the left edges of `np.histogram(column, num_bins)`, so values
  are in 1..num_bins (bin 0 is never used; the maximum falls in bin num_bins).

  Args:
    codes: [N, D] array.
    num_bins: number of bins per dimension.

  Returns:
    int64 [N, D].
  """
  num_bins = check_positive("num_bins", num_bins)
  codes = np.asarray(codes)
  out = np.empty(codes.shape, dtype=np.int64)
  for d in range(codes.shape[1]):
    edges = np.histogram_bin_edges(codes[:, d], num_bins)
    out[:, d] = np.digitize(codes[:, d], edges[:-1])
  return out


def _dense_labels(values: np.ndarray) -> Tuple[np.ndarray, int]:
  """Maps arbitrary integer labels to 0..n-1 (as sklearn's contingency matrix does)."""
  uniques, inverse = np.unique(values, return_inverse=True)
  return inverse.reshape(-1), len(uniques)


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
  """Mutual information (nats) between each discrete code dimension and each factor.

  Equal to `sklearn.metrics.mutual_info_score(factors[:, k], codes[:, d])` for every (d, k), from
  one bincount per pair on dense labels.

  Args:
    codes: int [N, D] discretised codes.
    factors: int [N, K] factors.

  Returns:
    float64 [D, K].
  """
  codes = np.asarray(codes)
  factors = np.asarray(factors)
  if codes.shape[0] != factors.shape[0]:
    raise ValueError(f"codes and factors must have the same number of rows, got {codes.shape[0]} "
                     f"and {factors.shape[0]}.")
  n = codes.shape[0]
  code_labels = [_dense_labels(codes[:, d]) for d in range(codes.shape[1])]
  factor_labels = [_dense_labels(factors[:, k]) for k in range(factors.shape[1])]
  mi = np.zeros([codes.shape[1], factors.shape[1]])
  for d, (a, na) in enumerate(code_labels):
    pa = np.bincount(a, minlength=na) / n
    for k, (b, nb) in enumerate(factor_labels):
      joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) / n
      pb = np.bincount(b, minlength=nb) / n
      nz = joint > 0
      outer = np.outer(pa, pb)
      value = np.sum(joint[nz] * (np.log(joint[nz]) - np.log(outer[nz])))
      mi[d, k] = max(value, 0.0)
  return mi


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
  """Entropy (nats) of each column of an int [N, K] array: float64 [K]."""
  factors = np.asarray(factors)
  out = np.zeros(factors.shape[1])
  for k in range(factors.shape[1]):
    labels, num = _dense_labels(factors[:, k])
    p = np.bincount(labels, minlength=num) / len(labels)
    p = p[p > 0]
    out[k] = -np.sum(p * np.log(p))
  return out


def normalize(data: np.ndarray, mean: Optional[np.ndarray] = None,
              std: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Column-standardised [N, D] data, and the mean and std used (computed when not given)."""
  if mean is None:
    mean = np.mean(data, axis=0)
  if std is None:
    std = np.std(data, axis=0)
    std = np.where(std > 0, std, 1.0)  # Constant columns stay 0 instead of NaN.
  return (data - mean) / std, mean, std
