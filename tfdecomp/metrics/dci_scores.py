"""Disentanglement, completeness and informativeness (Eastwood & Williams, "A Framework for the
Quantitative Evaluation of Disentangled Representations", ICLR 2018).

A gradient-boosted-trees classifier per factor (100 stages of depth-3 trees, learning rate 0.1:
scikit-learn's GradientBoostingClassifier defaults, as in disentanglement_lib; by default fitted
by `tfdecomp.metrics.gbt`, the same algorithm compiled) gives an importance
matrix R [D, K] (importance of code dimension d for factor k) and an accuracy (informativeness).
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
from tfdecomp.metrics import gbt
from tfdecomp.metrics import utils

#: How the per-factor classifiers are fitted: "gbt", tfdecomp's compiled implementation of
#: GradientBoostingClassifier's algorithm (`tfdecomp.metrics.gbt`); "sklearn", scikit-learn's
#: GradientBoostingClassifier itself (disentanglement_lib's `compute_importance_gbt`, verbatim).
IMPORTANCE_ESTIMATORS = ("gbt", "sklearn")


def _fit_factor(estimator, x_train, y_train, x_test, y_test, seed):
  """Importances [D], train and test accuracy of one factor's classifier."""
  if estimator == "gbt":
    model = gbt.GradientBoostedTrees(random_state=seed).fit(x_train, y_train)
  else:
    model = ensemble.GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
  return (np.abs(model.feature_importances_), np.mean(model.predict(x_train) == y_train),
          np.mean(model.predict(x_test) == y_test))


def importance_matrix(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
                      factors_test: np.ndarray, estimator: str = "gbt", num_threads: int = 2,
                      seed: int = 0) -> Tuple[np.ndarray, float, float]:
  """Importance matrix [D, K] and mean train / test accuracy over factors.

  Args:
    codes, factors: training codes [N, D] and factors [N, K].
    codes_test, factors_test: test codes [M, D] and factors [M, K].
    estimator: "gbt" (default): scikit-learn's GradientBoostingClassifier() algorithm (100
      stages of depth-3 trees, learning rate 0.1), as disentanglement_lib fits it, compiled
      (`tfdecomp.metrics.gbt`): the same importances and accuracies (up to how ties between
      equally good splits fall), about 15x faster. "sklearn": scikit-learn's classifier itself.
    num_threads: factors fitted concurrently (both estimators release the GIL).
    seed: random_state of the classifiers (it orders the features in each node, which decides
      ties between equally good splits).

  Returns:
    (R [D, K], train accuracy, test accuracy).
  """
  if estimator not in IMPORTANCE_ESTIMATORS:
    raise ValueError(f"estimator must be one of {IMPORTANCE_ESTIMATORS}, got {estimator!r}.")
  num_factors = factors.shape[1]
  fit = lambda k: _fit_factor(estimator, codes, factors[:, k], codes_test, factors_test[:, k],
                              seed)
  # Largest problems first (a fit costs about classes x samples): balances the threads.
  order = sorted(range(num_factors), key=lambda k: -len(np.unique(factors[:, k])))
  with utils.single_threaded_blas():
    if num_threads > 1:
      with futures.ThreadPoolExecutor(max_workers=num_threads) as pool:
        fitted = dict(zip(order, pool.map(fit, order)))
    else:
      fitted = {k: fit(k) for k in order}
  results = [fitted[k] for k in range(num_factors)]
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
    estimator: "gbt" (default: the reference's classifier, compiled) or "sklearn"
      (scikit-learn's own); see `importance_matrix`.
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
