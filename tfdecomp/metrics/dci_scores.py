"""Disentanglement, completeness and informativeness (Eastwood & Williams, "A Framework for the
Quantitative Evaluation of Disentangled Representations", ICLR 2018).

A gradient-boosted-trees classifier per factor (100 stages of depth-3 trees, learning rate 0.1:
scikit-learn's GradientBoostingClassifier defaults, as in disentanglement_lib) gives an importance
matrix R [D, K] (importance of code dimension d for factor k) and an accuracy (informativeness).
Disentanglement: sum_d rho_d (1 - H_K(R[d, :] / sum_k R[d, k])), rho_d = sum_k R[d, k] / sum R.
Completeness: sum_k rho_k (1 - H_D(R[:, k] / sum_d R[d, k])), rho_k = sum_d R[d, k] / sum R.
H_K is the entropy with logarithm base K.
"""

from concurrent import futures
from typing import Dict, Tuple
import warnings

import numpy as np
import scipy.stats
from sklearn import ensemble

from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import utils

IMPORTANCE_ESTIMATORS = ("gbt", "hist_gbt")


def _binned_gbt(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int,
                num_stages: int = 100, learning_rate: float = 0.1, max_depth: int = 3):
  """GradientBoostingClassifier's algorithm on histogram-binned inputs.

  The boosting loop of scikit-learn's GradientBoostingClassifier (log loss; per stage one
  regression tree per class fitted to the residuals y_k - p_k by squared error, leaves set by one
  Newton step (K - 1)/K sum r / sum p (1 - p), shrunk by the learning rate) with each tree grown
  by the histogram tree grower of HistGradientBoosting* (inputs quantised to 255 bins): same
  criterion, same leaf values, same importances (total squared-error decrease of each feature's
  splits, normalised), but split thresholds restricted to bin edges, which makes it several times
  faster. Uses scikit-learn internals (tested with 1.9).

  Returns:
    (importances [D], predicted train labels [N], predicted test labels [M]).
  """
  # pylint: disable=g-import-not-at-top
  from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
  from sklearn.ensemble._hist_gradient_boosting.common import G_H_DTYPE
  from sklearn.ensemble._hist_gradient_boosting.grower import TreeGrower
  # pylint: enable=g-import-not-at-top
  classes, y_index = np.unique(y_train, return_inverse=True)
  y_index = y_index.reshape(-1)
  num_classes = len(classes)
  num, num_features = x_train.shape
  mapper = _BinMapper(n_bins=256, random_state=seed)
  x_binned = mapper.fit_transform(np.asarray(x_train, np.float64))
  x_test_binned = mapper.transform(np.asarray(x_test, np.float64))
  num_trees = 1 if num_classes == 2 else num_classes
  onehot = (y_index[:, None] == np.arange(num_classes)[None, :]).astype(np.float64)
  prior = np.clip(onehot.mean(axis=0), np.finfo(np.float64).eps, 1.0)
  if num_classes == 2:
    raw = np.full((num, 1), np.log(prior[1] / prior[0]))
  else:
    raw = np.tile(np.log(prior), (num, 1))
  raw_test = np.tile(raw[:1], (x_test.shape[0], 1))
  hessians = np.ones(num, dtype=G_H_DTYPE)
  importances = np.zeros(num_features)
  factor = 1.0 if num_classes == 2 else (num_classes - 1.0) / num_classes
  for _ in range(num_stages):
    if num_classes == 2:
      probs = 1.0 / (1.0 + np.exp(-raw))
      residuals = onehot[:, 1:] - probs
    else:
      shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
      probs = shifted / shifted.sum(axis=1, keepdims=True)
      residuals = onehot - probs
    for k in range(num_trees):
      r = residuals[:, k]
      grower = TreeGrower(x_binned, (-r).astype(G_H_DTYPE), hessians, max_depth=max_depth,
                          min_samples_leaf=1, n_bins=256,
                          n_bins_non_missing=mapper.n_bins_non_missing_, shrinkage=1.0,
                          n_threads=1)
      grower.grow()
      # The grower's partition lists the samples leaf by leaf: per-leaf sums by reduceat.
      leaves = sorted(grower.finalized_leaves, key=lambda leaf: leaf.partition_start)
      starts = np.array([leaf.partition_start for leaf in leaves])
      lengths = np.array([leaf.partition_stop - leaf.partition_start for leaf in leaves])
      order = np.asarray(grower.splitter.partition, dtype=np.int64)
      p_k = probs[order, k]
      numerator = np.add.reduceat(r[order], starts)
      denominator = np.add.reduceat(p_k * (1.0 - p_k), starts)
      safe = np.abs(denominator) >= 1e-150
      values = learning_rate * factor * np.divide(numerator, denominator,
                                                  out=np.zeros_like(numerator), where=safe)
      for leaf, value in zip(leaves, values):
        leaf.value = value
      raw[order, k] += np.repeat(values, lengths)
      predictor = grower.make_predictor(mapper.bin_thresholds_)
      raw_test[:, k] += predictor.predict_binned(x_test_binned, mapper.missing_values_bin_idx_, 1)
      nodes = predictor.nodes
      split = nodes["is_leaf"] == 0
      np.add.at(importances, nodes["feature_idx"][split], np.maximum(nodes["gain"][split], 0.0))
  total = importances.sum()
  importances = importances / total if total > 0 else importances

  def predict(values):
    if num_classes == 2:
      return classes[(values[:, 0] > 0).astype(np.int64)]
    return classes[np.argmax(values, axis=1)]

  return importances, predict(raw), predict(raw_test)


def _fit_factor(estimator, x_train, y_train, x_test, y_test, seed):
  """Importances [D], train and test accuracy of one factor's classifier."""
  if estimator == "gbt":
    model = ensemble.GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    return (np.abs(model.feature_importances_), np.mean(model.predict(x_train) == y_train),
            np.mean(model.predict(x_test) == y_test))
  try:
    importances, train_pred, test_pred = _binned_gbt(x_train, y_train, x_test, seed)
  except (ImportError, AttributeError, TypeError) as e:  # scikit-learn internals changed.
    warnings.warn(f"estimator='hist_gbt' is unavailable with this scikit-learn ({e}); falling "
                  "back to estimator='gbt'.", RuntimeWarning)
    return _fit_factor("gbt", x_train, y_train, x_test, y_test, seed)
  return importances, np.mean(train_pred == y_train), np.mean(test_pred == y_test)


def importance_matrix(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
                      factors_test: np.ndarray, estimator: str = "gbt", num_threads: int = 2,
                      seed: int = 0) -> Tuple[np.ndarray, float, float]:
  """Importance matrix [D, K] and mean train / test accuracy over factors.

  Args:
    codes, factors: training codes [N, D] and factors [N, K].
    codes_test, factors_test: test codes [M, D] and factors [M, K].
    estimator: "gbt" (default): sklearn's GradientBoostingClassifier() itself, exactly
      disentanglement_lib's `compute_importance_gbt`, so scores compare with published ones; or
      "hist_gbt": the same boosting algorithm and importance definition with trees grown on
      255-bin histograms (`_binned_gbt`), about 15x faster but not identical: on the benchmark
      representation disentanglement/completeness differ by up to ~0.015 and the train accuracy
      by 0.01-0.03 (see benchmarks/metrics_speed.py).
    num_threads: factors fitted concurrently (tree building releases the GIL).
    seed: random_state of the classifiers.

  Returns:
    (R [D, K], train accuracy, test accuracy).
  """
  if estimator not in IMPORTANCE_ESTIMATORS:
    raise ValueError(f"estimator must be one of {IMPORTANCE_ESTIMATORS}, got {estimator!r}.")
  num_factors = factors.shape[1]
  fit = lambda k: _fit_factor(estimator, codes, factors[:, k], codes_test, factors_test[:, k],
                              seed)
  with utils.single_threaded_blas():
    if num_threads > 1:
      with futures.ThreadPoolExecutor(max_workers=num_threads) as pool:
        results = list(pool.map(fit, range(num_factors)))
    else:
      results = [fit(k) for k in range(num_factors)]
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
    estimator: "gbt" (default: exactly the reference's classifier) or "hist_gbt" (about 15x
      faster, slightly different answers); see `importance_matrix`.
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
