"""Mutual Information Gap (Chen et al., "Isolating Sources of Disentanglement in VAEs", 2018).

For each factor, the gap between the largest and second largest mutual information with a single
code dimension, divided by the factor's entropy, averaged over factors. Codes are discretised with
equal-width histograms (20 bins), as in disentanglement_lib.
"""

from typing import Dict

import numpy as np

from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import utils


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> Dict[str, float]:
  """MIG of given codes [N, D] (D >= 2) and factors int [N, K]: {"discrete_mig"}."""
  codes = np.asarray(codes)
  if codes.ndim != 2 or codes.shape[1] < 2:
    raise ValueError(f"codes must have shape [N, D] with D >= 2, got {codes.shape}.")
  mi = utils.discrete_mutual_info(utils.histogram_discretize(codes, num_bins), factors)
  entropy = utils.discrete_entropy(factors)
  top = np.sort(mi, axis=0)[::-1]
  return {"discrete_mig": float(np.mean((top[0] - top[1]) / entropy))}


def mig(ground_truth: GroundTruthData,
        representation_fn: utils.RepresentationFn,
        seed=0,
        num_train: int = 10000,
        num_bins: int = 20,
        encode_batch_size: int = utils.DEFAULT_ENCODE_BATCH_SIZE) -> Dict[str, float]:
  """Mutual Information Gap with disentanglement_lib's defaults.

  Args:
    ground_truth: the dataset.
    representation_fn: observations [n, *obs] -> codes [n, D] (NumPy).
    seed: int seed or np.random.Generator.
    num_train: sampled points (10,000).
    num_bins: histogram bins per code dimension (20).
    encode_batch_size: observations per call of `representation_fn`.

  Returns:
    {"discrete_mig"}: in [0, 1]; 1 when every factor is captured by exactly one dimension.
  """
  rng = utils.make_rng(seed)
  codes, factors = utils.sample_factor_codes(ground_truth, representation_fn, num_train, rng,
                                             encode_batch_size)
  return mig_from_codes(codes, factors, num_bins)
