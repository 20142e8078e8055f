"""Modularity and explicitness (Ridgeway & Mozer, "Learning Deep Disentangled Embeddings With the
F-Statistic Loss", NeurIPS 2018).

Modularity: each code dimension should carry information about one factor only: per dimension,
1 - (sum_k m_dk^2 - max_k m_dk^2) / (max_k m_dk^2 (K - 1)) with m the mutual information of the
histogram-discretised (20 bins) dimension and the factor, averaged over dimensions.
Explicitness: per factor, the one-vs-rest ROC-AUC of a logistic regression on the standardised
codes, averaged over factors.
"""

from concurrent import futures
from typing import Dict, Tuple

import numpy as np
from sklearn import linear_model
from sklearn import metrics as sk_metrics

from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import utils


def modularity_from_mutual_info(mutual_info: np.ndarray) -> float:
  """Modularity score from a mutual-information matrix [D, K] (0 for dimensions with no MI)."""
  squared = np.square(mutual_info)
  top = np.max(squared, axis=1)
  with np.errstate(divide="ignore", invalid="ignore"):
    delta = (np.sum(squared, axis=1) - top) / (top * (squared.shape[1] - 1.0))
  score = np.where(top == 0.0, 0.0, 1.0 - delta)
  return float(np.mean(score))


def _one_hot(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
  return (labels[:, None] == classes[None, :]).astype(np.int64)


def explicitness_per_factor(codes_train: np.ndarray, y_train: np.ndarray, codes_test: np.ndarray,
                            y_test: np.ndarray) -> Tuple[float, float]:
  """Train and test ROC-AUC (one-vs-rest, macro) of LogisticRegression() on standardised codes.

  Matches disentanglement_lib: labels are binarised over the classes present in each split and the
  classifier's probability columns follow the training classes.
  """
  clf = linear_model.LogisticRegression().fit(codes_train, y_train)
  scores = []
  for codes, y in ((codes_train, y_train), (codes_test, y_test)):
    present = np.unique(y)
    if not np.array_equal(present, clf.classes_):
      raise ValueError("every factor value must occur in both the train and the test sample; "
                       "increase num_train/num_test.")
    scores.append(float(sk_metrics.roc_auc_score(_one_hot(y, present),
                                                 clf.predict_proba(codes))))
  return scores[0], scores[1]


def modularity_explicitness(ground_truth: GroundTruthData,
                            representation_fn: utils.RepresentationFn,
                            seed=0,
                            num_train: int = 10000,
                            num_test: int = 5000,
                            num_bins: int = 20,
                            num_threads: int = 1,
                            encode_batch_size: int = utils.DEFAULT_ENCODE_BATCH_SIZE
                            ) -> Dict[str, float]:
  """Modularity and explicitness with disentanglement_lib's defaults.

  Args:
    ground_truth: the dataset.
    representation_fn: observations [n, *obs] -> codes [n, D] (NumPy).
    seed: int seed or np.random.Generator.
    num_train: training points (10,000).
    num_test: test points (5,000).
    num_bins: histogram bins for the mutual information (20).
    num_threads: threads for the K independent logistic regressions.
    encode_batch_size: observations per call of `representation_fn`.

  Returns:
    {"modularity_score", "explicitness_score_train", "explicitness_score_test"}.
  """
  rng = utils.make_rng(seed)
  codes, factors = utils.sample_factor_codes(ground_truth, representation_fn, num_train, rng,
                                             encode_batch_size)
  codes_test, factors_test = utils.sample_factor_codes(ground_truth, representation_fn, num_test,
                                                       rng, encode_batch_size)
  mutual_info = utils.discrete_mutual_info(utils.histogram_discretize(codes, num_bins), factors)
  codes_norm, mean, std = utils.normalize(codes)
  codes_test_norm, _, _ = utils.normalize(codes_test, mean, std)
  fit = lambda k: explicitness_per_factor(codes_norm, factors[:, k], codes_test_norm,
                                         factors_test[:, k])
  with utils.single_threaded_blas():
    if num_threads > 1:
      with futures.ThreadPoolExecutor(max_workers=num_threads) as pool:
        results = list(pool.map(fit, range(factors.shape[1])))
    else:
      results = [fit(k) for k in range(factors.shape[1])]
  train, test = np.array(results).T
  return {"modularity_score": modularity_from_mutual_info(mutual_info),
          "explicitness_score_train": float(np.mean(train)),
          "explicitness_score_test": float(np.mean(test))}
