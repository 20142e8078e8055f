"""Separated Attribute Predictability (Kumar et al., "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", ICLR 2018, Section 3).

Score matrix S[d, k]: how well code dimension d alone predicts factor k (test accuracy of a 1-D
linear SVM for discrete factors, squared correlation for continuous ones). SAP is the mean over
factors of the gap between the two best dimensions.
"""

from concurrent import futures
from typing import Dict

import numpy as np
from sklearn import svm

from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import utils


def _svm_accuracy(x_train, y_train, x_test, y_test):
  classifier = svm.LinearSVC(C=0.01, class_weight="balanced")
  classifier.fit(x_train[:, None], y_train)
  return np.mean(classifier.predict(x_test[:, None]) == y_test)


def sap_score_matrix(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
                     factors_test: np.ndarray, continuous_factors: bool = False,
                     num_threads: int = 1) -> np.ndarray:
  """Score matrix [D, K] as disentanglement_lib's `compute_score_matrix`.

  Args:
    codes, factors: training codes [N, D] and factors [N, K].
    codes_test, factors_test: test codes [M, D] and factors [M, K] (discrete factors only).
    continuous_factors: squared correlation instead of 1-D LinearSVC(C=0.01, balanced) accuracy.
    num_threads: threads for the D x K independent SVM fits (liblinear releases the GIL).

  Returns:
    float64 [D, K].
  """
  num_codes, num_factors = codes.shape[1], factors.shape[1]
  if continuous_factors:
    codes_c = codes - codes.mean(axis=0)
    factors_c = factors - factors.mean(axis=0)
    n = codes.shape[0]
    cov = codes_c.T @ factors_c / (n - 1)
    var_codes = np.var(codes, axis=0, ddof=1)
    var_factors = np.var(factors, axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
      scores = cov**2 / (var_codes[:, None] * var_factors[None, :])
    return np.where(var_codes[:, None] > 1e-12, scores, 0.0)
  pairs = [(d, k) for d in range(num_codes) for k in range(num_factors)]
  matrix = np.zeros([num_codes, num_factors])
  fit = lambda p: _svm_accuracy(codes[:, p[0]], factors[:, p[1]], codes_test[:, p[0]],
                                factors_test[:, p[1]])
  with utils.single_threaded_blas():
    if num_threads > 1:
      with futures.ThreadPoolExecutor(max_workers=num_threads) as pool:
        results = list(pool.map(fit, pairs))
    else:
      results = [fit(p) for p in pairs]
  for (d, k), value in zip(pairs, results):
    matrix[d, k] = value
  return matrix


def sap(ground_truth: GroundTruthData,
        representation_fn: utils.RepresentationFn,
        seed=0,
        num_train: int = 10000,
        num_test: int = 5000,
        continuous_factors: bool = False,
        num_threads: int = 1,
        encode_batch_size: int = utils.DEFAULT_ENCODE_BATCH_SIZE) -> Dict[str, float]:
  """SAP score with disentanglement_lib's defaults.

  Args:
    ground_truth: the dataset.
    representation_fn: observations [n, *obs] -> codes [n, D] (NumPy), D >= 2.
    seed: int seed or np.random.Generator.
    num_train: training points (10,000).
    num_test: test points for the discrete-factor classifiers (5,000).
    continuous_factors: treat factors as continuous (False).
    num_threads: threads for the independent classifier fits.
    encode_batch_size: observations per call of `representation_fn`.

  Returns:
    {"SAP_score"}.
  """
  rng = utils.make_rng(seed)
  codes, factors = utils.sample_factor_codes(ground_truth, representation_fn, num_train, rng,
                                             encode_batch_size)
  codes_test, factors_test = utils.sample_factor_codes(ground_truth, representation_fn, num_test,
                                                       rng, encode_batch_size)
  if codes.shape[1] < 2:
    raise ValueError(f"SAP needs codes with at least 2 dimensions, got {codes.shape[1]}.")
  matrix = sap_score_matrix(codes, factors, codes_test, factors_test, continuous_factors,
                            num_threads)
  top = np.sort(matrix, axis=0)
  return {"SAP_score": float(np.mean(top[-1] - top[-2]))}
