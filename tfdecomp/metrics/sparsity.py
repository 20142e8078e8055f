"""Sparsity of codes: the normalised Hoyer measure and per-class average latent magnitudes.

Mathieu et al. (2019), Section 5 "sparsity": codes (encoder means on the test set) are divided by
their per-dimension standard deviation over the data, so that collapsing a dimension cannot fake
sparsity, then per example

  Hoyer(z) = (sqrt(D) - |z|_1 / |z|_2) / (sqrt(D) - 1),

which is 1 for a one-hot vector and 0 for a vector whose entries all have the same magnitude; the
score is the mean over examples.
"""

from typing import Dict, Optional

import numpy as np


def _as_codes(codes) -> np.ndarray:
  codes = np.asarray(codes, dtype=np.float64)
  if codes.ndim != 2 or codes.shape[1] < 2:
    raise ValueError(f"codes must have shape [N, D] with D >= 2, got {codes.shape}.")
  return codes


def hoyer_per_example(codes, normalize: bool = True) -> np.ndarray:
  """Normalised Hoyer sparsity of each code vector.

  Args:
    codes: float [N, D], D >= 2.
    normalize: divide each dimension by its std over the N codes first (the paper's measure).
      Dimensions with zero std are left as they are (they are zero after centring-free division
      only if they are zero).

  Returns:
    float64 [N] in [0, 1]; an all-zero code gets 0.
  """
  codes = _as_codes(codes)
  if normalize:
    std = np.std(codes, axis=0, ddof=1) if codes.shape[0] > 1 else np.ones(codes.shape[1])
    codes = codes / np.where(std > 0, std, 1.0)
  dim = codes.shape[1]
  l1 = np.sum(np.abs(codes), axis=1)
  l2 = np.sqrt(np.sum(np.square(codes), axis=1))
  ratio = np.divide(l1, l2, out=np.full_like(l1, np.sqrt(dim)), where=l2 > 0)
  return (np.sqrt(dim) - ratio) / (np.sqrt(dim) - 1.0)


def hoyer_sparsity(codes, normalize: bool = True) -> float:
  """Mean normalised Hoyer sparsity of codes [N, D] (see `hoyer_per_example`)."""
  return float(np.mean(hoyer_per_example(codes, normalize)))


def per_class_latent_magnitude(codes, labels, num_classes: Optional[int] = None,
                               normalize: bool = True) -> np.ndarray:
  """Average absolute code value per class and dimension (the paper's sparsity figure data).

  Args:
    codes: float [N, D] encoder means.
    labels: int [N] class labels in [0, num_classes).
    num_classes: C; default max(labels) + 1.
    normalize: divide each dimension by its std over all N codes first, as for the Hoyer measure.

  Returns:
    float64 [C, D]: mean over examples of class c of |z_d| (NaN rows for empty classes).
  """
  codes = np.asarray(codes, dtype=np.float64)
  labels = np.asarray(labels).reshape(-1)
  if codes.ndim != 2 or labels.shape[0] != codes.shape[0]:
    raise ValueError(f"codes must be [N, D] and labels [N]; got {codes.shape} and {labels.shape}.")
  if labels.size and (labels.min() < 0 or np.any(labels != np.round(labels))):
    raise ValueError("labels must be non-negative integers.")
  labels = labels.astype(np.int64)
  num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
  if labels.size and labels.max() >= num_classes:
    raise ValueError(f"labels must be < num_classes={num_classes}, got {labels.max()}.")
  if normalize and codes.shape[0] > 1:
    std = np.std(codes, axis=0, ddof=1)
    codes = codes / np.where(std > 0, std, 1.0)
  sums = np.zeros([num_classes, codes.shape[1]])
  np.add.at(sums, labels, np.abs(codes))
  counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    return sums / counts[:, None]


def sparsity_scores(codes, labels=None, num_classes: Optional[int] = None) -> Dict[str, object]:
  """{"hoyer": mean normalised Hoyer, "per_class_magnitude": [C, D] list (if labels given)}."""
  scores = {"hoyer": hoyer_sparsity(codes)}
  if labels is not None:
    scores["per_class_magnitude"] = per_class_latent_magnitude(codes, labels, num_classes).tolist()
  return scores
