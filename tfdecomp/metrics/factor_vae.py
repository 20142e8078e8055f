"""The FactorVAE disentanglement score (Kim & Mnih, "Disentangling by Factorising", ICML 2018).

One vote: fix factor k at a random value, draw a batch of observations that share it, divide each
code dimension's variance over the batch by its global variance, and vote (k, d*) for the
dimension d* of least normalised variance. A majority-vote classifier maps each dimension to the
factor it most often wins; the score is its accuracy. The disentanglement paper (Mathieu et al.
2019) reports this score on encoder means over all of dSprites.
"""

from typing import Dict

import numpy as np

from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import utils


def _votes_from_variances(local_variances: np.ndarray, global_variances: np.ndarray,
                          active: np.ndarray, factor_index: np.ndarray,
                          num_factors: int) -> np.ndarray:
  """Vote matrix [K, num_active] from per-vote variances [V, D] and voted factors [V]."""
  ratios = local_variances[:, active] / global_variances[active]
  winners = np.argmin(ratios, axis=1)
  num_active = int(active.sum())
  return np.bincount(factor_index * num_active + winners,
                     minlength=num_factors * num_active).reshape(num_factors, num_active)


def _batched_votes(ground_truth, representation_fn, batch_size, num_votes, rng, global_variances,
                   active, encode_batch_size):
  """disentanglement_lib's voting: every vote draws and encodes its own batch of observations."""
  num_factors = ground_truth.num_factors
  factor_index = rng.integers(num_factors, size=num_votes)
  factors = ground_truth.sample_factors(num_votes * batch_size, rng).reshape(
      num_votes, batch_size, num_factors)
  rows = np.arange(num_votes)
  factors[rows, :, factor_index] = factors[rows, 0, factor_index][:, None]
  # Encode whole votes per chunk so that each chunk holds complete batches.
  votes_per_chunk = max(1, encode_batch_size // batch_size)
  local_variances = np.empty([num_votes, global_variances.shape[0]])
  for start in range(0, num_votes, votes_per_chunk):
    block = factors[start:start + votes_per_chunk]
    codes = utils.encode_factors(ground_truth, representation_fn,
                                 block.reshape(-1, num_factors), rng,
                                 encode_batch_size=block.shape[0] * batch_size)
    codes = codes.reshape(block.shape[0], batch_size, -1)
    local_variances[start:start + block.shape[0]] = np.var(codes, axis=1, ddof=1)
  return _votes_from_variances(local_variances, global_variances, active, factor_index,
                               num_factors)


def _dataset_votes(codes, ground_truth, batch_size, num_votes, rng, global_variances, active):
  """The paper's voting: batches drawn from codes of the whole factor grid, encoded once."""
  sizes = np.asarray(ground_truth.factor_sizes)
  num_factors = len(sizes)
  factor_index = rng.integers(num_factors, size=num_votes)
  local_variances = np.empty([num_votes, codes.shape[1]])
  votes_per_chunk = max(1, 2_000_000 // (batch_size * codes.shape[1]))
  for start in range(0, num_votes, votes_per_chunk):
    k = factor_index[start:start + votes_per_chunk]
    factors = ground_truth.sample_factors(len(k) * batch_size, rng).reshape(
        len(k), batch_size, num_factors)
    rows = np.arange(len(k))
    factors[rows, :, k] = factors[rows, 0, k][:, None]
    index = np.ravel_multi_index(tuple(np.moveaxis(factors, -1, 0)), tuple(sizes))
    local_variances[start:start + len(k)] = np.var(codes[index], axis=1, ddof=1)
  return _votes_from_variances(local_variances, global_variances, active, factor_index,
                               num_factors)


def factor_vae_score(ground_truth: GroundTruthData,
                     representation_fn: utils.RepresentationFn,
                     seed=0,
                     batch_size: int = None,
                     num_train: int = None,
                     num_eval: int = None,
                     num_variance_estimate: int = 10000,
                     prune_threshold: float = None,
                     variant: str = "disentanglement_lib",
                     encode_batch_size: int = utils.DEFAULT_ENCODE_BATCH_SIZE) -> Dict[str, float]:
  """FactorVAE score: accuracy of the majority-vote classifier on train and eval votes.

  Two variants:
    "disentanglement_lib" (default; Locatello et al. 2019's `compute_factor_vae` and settings):
      global variances (ddof 1) from `num_variance_estimate` (10,000) sampled observations;
      dimensions whose global std is below `prune_threshold` (0.05, absolute) are dropped; each of
      `num_train` (10,000) / `num_eval` (5,000) votes draws and encodes its own batch of
      `batch_size` (64) observations.
    "paper" (Mathieu et al. 2019, after the authors' `compute_disentanglement`): the whole factor
      grid is encoded once (`ground_truth.num_examples` observations, e.g. all 737,280 of
      dSprites); global std over it; no pruning (`prune_threshold` 0); `num_train` (20,000) votes of
      `batch_size` (1,000) codes each, drawn from that table. The authors report the training
      accuracy; `num_eval` defaults to 0 and `eval_accuracy` is then NaN. Batch members are drawn
      with replacement from the grid points sharing the fixed factor (the authors draw without
      replacement; with at least 18,432 candidates per batch on dSprites the difference is
      negligible).

  Args:
    ground_truth: the dataset.
    representation_fn: observations [n, *obs] -> codes [n, D] (NumPy).
    seed: int seed or np.random.Generator for all sampling.
    batch_size: observations per vote (64; paper variant 1,000).
    num_train: votes used to build the classifier (10,000; paper variant 20,000).
    num_eval: votes used to evaluate it (5,000; paper variant 0).
    num_variance_estimate: observations used for the global variances (disentanglement_lib
      variant only).
    prune_threshold: minimum global std of an active dimension (0.05; paper variant 0).
    variant: "disentanglement_lib" or "paper".
    encode_batch_size: observations per call of `representation_fn`.

  Returns:
    {"train_accuracy", "eval_accuracy", "num_active_dims"}. `num_active_dims` counts the dimensions
    that survive pruning (disentanglement_lib reports len(mask), i.e. always D: a slip).

  Raises:
    ValueError: for an unknown `variant` or non-positive sizes.
  """
  if variant not in ("disentanglement_lib", "paper"):
    raise ValueError(f"variant must be 'disentanglement_lib' or 'paper', got {variant!r}.")
  paper = variant == "paper"
  batch_size = utils.check_positive(
      "batch_size", batch_size if batch_size is not None else (1000 if paper else 64))
  if batch_size < 2:
    raise ValueError(f"batch_size must be at least 2 to estimate a variance, got {batch_size}.")
  num_train = utils.check_positive(
      "num_train", num_train if num_train is not None else (20000 if paper else 10000))
  num_eval = num_eval if num_eval is not None else (0 if paper else 5000)
  if num_eval < 0:
    raise ValueError(f"num_eval must be non-negative, got {num_eval}.")
  if prune_threshold is None:
    prune_threshold = 0.0 if paper else 0.05
  rng = utils.make_rng(seed)

  if paper:
    all_factors = ground_truth.index_to_factors(np.arange(ground_truth.num_examples))
    codes = utils.encode_factors(ground_truth, representation_fn, all_factors, rng,
                                 encode_batch_size)
    global_variances = np.var(codes, axis=0, ddof=1)
  else:
    num_variance_estimate = utils.check_positive("num_variance_estimate", num_variance_estimate)
    codes, _ = utils.sample_factor_codes(ground_truth, representation_fn, num_variance_estimate,
                                         rng, encode_batch_size)
    global_variances = np.var(codes, axis=0, ddof=1)
  active = np.sqrt(global_variances) >= prune_threshold
  if not active.any():
    return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}

  def votes(num):
    if paper:
      return _dataset_votes(codes, ground_truth, batch_size, num, rng, global_variances, active)
    return _batched_votes(ground_truth, representation_fn, batch_size, num, rng,
                          global_variances, active, encode_batch_size)

  train_votes = votes(num_train)
  classifier = np.argmax(train_votes, axis=0)  # Factor predicted for each active dimension.
  columns = np.arange(train_votes.shape[1])
  train_accuracy = train_votes[classifier, columns].sum() / train_votes.sum()
  if num_eval > 0:
    eval_votes = votes(num_eval)
    eval_accuracy = eval_votes[classifier, columns].sum() / eval_votes.sum()
  else:
    eval_accuracy = float("nan")
  return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy),
          "num_active_dims": int(active.sum())}
