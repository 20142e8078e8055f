"""The β-VAE disentanglement score (Higgins et al., "beta-VAE", ICLR 2017).

One training point: fix factor k, draw two batches of observations that agree on factor k only,
and take the mean absolute difference of their codes over the batch; the label is k. A linear
classifier (scikit-learn logistic regression, as disentanglement_lib's `beta_vae_sklearn`) predicts
k; the score is its accuracy.
"""

from typing import Dict

import numpy as np
from sklearn import linear_model

from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import utils


def _feature_batch(ground_truth, representation_fn, batch_size, num_points, rng,
                   encode_batch_size):
  """Points [num_points, D] (mean |code1 - code2| over a batch) and labels [num_points]."""
  num_factors = ground_truth.num_factors
  labels = rng.integers(num_factors, size=num_points)
  first = ground_truth.sample_factors(num_points * batch_size, rng).reshape(
      num_points, batch_size, num_factors)
  second = ground_truth.sample_factors(num_points * batch_size, rng).reshape(
      num_points, batch_size, num_factors)
  rows = np.arange(num_points)
  second[rows, :, labels] = first[rows, :, labels]
  # Interleave the two batches of each point so a chunk holds complete pairs of batches.
  pairs = np.stack([first, second], axis=1)  # [P, 2, B, K]
  points_per_chunk = max(1, encode_batch_size // (2 * batch_size))
  features = []
  for start in range(0, num_points, points_per_chunk):
    block = pairs[start:start + points_per_chunk]
    codes = utils.encode_factors(ground_truth, representation_fn, block.reshape(-1, num_factors),
                                 rng, encode_batch_size=block.shape[0] * 2 * batch_size)
    codes = codes.reshape(block.shape[0], 2, batch_size, -1)
    features.append(np.mean(np.abs(codes[:, 0] - codes[:, 1]), axis=1))
  return np.concatenate(features, axis=0), labels


def beta_vae_score(ground_truth: GroundTruthData,
                   representation_fn: utils.RepresentationFn,
                   seed=0,
                   batch_size: int = 64,
                   num_train: int = 10000,
                   num_eval: int = 5000,
                   encode_batch_size: int = utils.DEFAULT_ENCODE_BATCH_SIZE) -> Dict[str, float]:
  """β-VAE score with disentanglement_lib's defaults.

  Args:
    ground_truth: the dataset.
    representation_fn: observations [n, *obs] -> codes [n, D] (NumPy).
    seed: int seed or np.random.Generator.
    batch_size: pairs of observations averaged into one point (64).
    num_train: training points (10,000).
    num_eval: evaluation points (5,000).
    encode_batch_size: observations per call of `representation_fn`.

  Returns:
    {"train_accuracy", "eval_accuracy"} of `sklearn.linear_model.LogisticRegression()` (default
    settings, as disentanglement_lib).
  """
  batch_size = utils.check_positive("batch_size", batch_size)
  num_train = utils.check_positive("num_train", num_train)
  num_eval = utils.check_positive("num_eval", num_eval)
  rng = utils.make_rng(seed)
  train_x, train_y = _feature_batch(ground_truth, representation_fn, batch_size, num_train, rng,
                                    encode_batch_size)
  model = linear_model.LogisticRegression(random_state=int(rng.integers(2**31 - 1)))
  with utils.single_threaded_blas():
    model.fit(train_x, train_y)
  train_accuracy = np.mean(model.predict(train_x) == train_y)
  eval_x, eval_y = _feature_batch(ground_truth, representation_fn, batch_size, num_eval, rng,
                                  encode_batch_size)
  eval_accuracy = np.mean(model.predict(eval_x) == eval_y)
  return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy)}
