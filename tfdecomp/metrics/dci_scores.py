"""Disentanglement, completeness and informativeness (Eastwood & Williams, "A Framework for the
Quantitative Evaluation of Disentangled Representations", ICLR 2018).

A gradient-boosted-trees classifier per factor gives an importance matrix R [D, K] (feature
importance of code dimension d for factor k) and an accuracy (informativeness).
Disentanglement: sum_d rho_d (1 - H_K(R[d, :] / sum_k R[d, k])), rho_d = sum_k R[d, k] / sum R.
Completeness: sum_k rho_k (1 - H_D(R[:, k] / sum_d R[d, k])), rho_k = sum_d R[d, k] / sum R.
H_K is the entropy with logarithm base K.
"""

from concurrent import futures
from typing import Dict, Tuple

import numpy as np
import scipy.stats
from sklearn import ensemble

from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import utils

IMPORTANCE_ESTIMATORS = ("gbt", "hist_gbt")


def _hist_gbt_importances(model: ensemble.HistGradientBoostingClassifier,
                          num_features: int) -> np.ndarray:
  """Total split gain of each feature over all trees, normalised to sum 1 (LightGBM's "gain").

  HistGradientBoostingClassifier has no `feature_importances_`; the split gains are read from the
  fitted trees' node arrays.
  """
  gains = np.zeros(num_features)
  for trees in model._predictors:  # pylint: disable=protected-access
    for tree in trees:
      nodes = tree.nodes[tree.nodes["is_leaf"] == 0]
      np.add.at(gains, nodes["feature_idx"], np.maximum(nodes["gain"], 0.0))
  total = gains.sum()
  return gains / total if total > 0 else gains


def _fit_factor(estimator, x_train, y_train, x_test, y_test, seed):
  """Importances [D], train and test accuracy of one factor's classifier."""
  if estimator == "gbt":
    model = ensemble.GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    importances = np.abs(model.feature_importances_)
  else:
    # Settings chosen to mimic GradientBoostingClassifier's defaults (100 stages of depth-3 trees,
    # learning rate 0.1, no early stopping, no regularisation).
    model = ensemble.HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_depth=3, max_leaf_nodes=None, min_samples_leaf=1,
        l2_regularization=0.0, early_stopping=False, random_state=seed).fit(x_train, y_train)
    importances = _hist_gbt_importances(model, x_train.shape[1])
  return (importances, np.mean(model.predict(x_train) == y_train),
          np.mean(model.predict(x_test) == y_test))


def importance_matrix(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
                      factors_test: np.ndarray, estimator: str = "gbt", num_threads: int = 2,
                      seed: int = 0) -> Tuple[np.ndarray, float, float]:
  """Importance matrix [D, K] and mean train / test accuracy over factors.

  Args:
    codes, factors: training codes [N, D] and factors [N, K].
    codes_test, factors_test: test codes [M, D] and factors [M, K].
    estimator: "gbt" (sklearn GradientBoostingClassifier with default settings and its impurity
      importances, exactly disentanglement_lib's `compute_importance_gbt`) or "hist_gbt"
      (HistGradientBoostingClassifier with matched settings and split-gain importances; several
      times faster, close but not identical answers: see benchmarks/metrics_speed.py).
    num_threads: factors fitted concurrently (tree building releases the GIL).
    seed: random_state of the classifiers.

  Returns:
    (R [D, K], train accuracy, test accuracy).
  """
  if estimator not in IMPORTANCE_ESTIMATORS:
    raise ValueError(f"estimator must be one of {IMPORTANCE_ESTIMATORS}, got {estimator!r}.")
  num_factors = factors.shape[1]
  with futures.ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
    results = list(pool.map(
        lambda k: _fit_factor(estimator, codes, factors[:, k], codes_test, factors_test[:, k],
                              seed), range(num_factors)))
  matrix = np.stack([r[0] for r in results], axis=1)
  return matrix, float(np.mean([r[1] for r in results])), float(np.mean([r[2] for r in results]))


def disentanglement(importance: np.ndarray) -> float:
  """Importance-weighted mean over code dimensions of 1 - H_K(row distribution)."""
  per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])
  if importance.sum() == 0.0:
    importance = np.ones_like(importance)
  weights = importance.sum(axis=1) / importance.sum()
  return float(np.sum(per_code * weights))


def completeness(importance: np.ndarray) -> float:
  """Importance-weighted mean over factors of 1 - H_D(column distribution)."""
  per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])
  if importance.sum() == 0.0:
    importance = np.ones_like(importance)
  weights = importance.sum(axis=0) / importance.sum()
  return float(np.sum(per_factor * weights))


def dci(ground_truth: GroundTruthData,
        representation_fn: utils.RepresentationFn,
        seed=0,
        num_train: int = 10000,
        num_test: int = 5000,
        estimator: str = "gbt",
        num_threads: int = 2,
        encode_batch_size: int = utils.DEFAULT_ENCODE_BATCH_SIZE) -> Dict[str, float]:
  """DCI scores with disentanglement_lib's defaults.

  Args:
    ground_truth: the dataset.
    representation_fn: observations [n, *obs] -> codes [n, D] (NumPy).
    seed: int seed or np.random.Generator.
    num_train: training points (10,000).
    num_test: test points (5,000).
    estimator: "gbt" (exact reference) or "hist_gbt" (fast); see `importance_matrix`.
    num_threads: factors fitted concurrently.
    encode_batch_size: observations per call of `representation_fn`.

  Returns:
    {"disentanglement", "completeness", "informativeness_train", "informativeness_test"}; the
    informativeness values are classification accuracies, as in disentanglement_lib.
  """
  rng = utils.make_rng(seed)
  codes, factors = utils.sample_factor_codes(ground_truth, representation_fn, num_train, rng,
                                             encode_batch_size)
  codes_test, factors_test = utils.sample_factor_codes(ground_truth, representation_fn, num_test,
                                                       rng, encode_batch_size)
  importance, train_accuracy, test_accuracy = importance_matrix(
      codes, factors, codes_test, factors_test, estimator, num_threads,
      seed=int(rng.integers(2**31 - 1)))
  return {"disentanglement": disentanglement(importance),
          "completeness": completeness(importance),
          "informativeness_train": train_accuracy,
          "informativeness_test": test_accuracy}
