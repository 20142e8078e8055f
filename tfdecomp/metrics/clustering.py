"""Clustering quality of codes under a mixture prior.

The paper only shows pictures for its pinwheel experiment; these numbers summarise them:
  - "mmd": squared MMD between aggregate-posterior samples and as many prior samples
    (`tfdecomp.divergences.mmd`, the per-dimension inverse multiquadric estimator of the paper);
  - "cluster_accuracy": each code is assigned to a prior component (largest posterior
    responsibility w_k N(z; mu_k, Sigma_k), or nearest component mean), components are matched to
    the true labels one-to-one by the Hungarian algorithm (scipy's linear_sum_assignment) to
    maximise agreement, and the fraction of agreeing codes is reported;
  - "nmi": normalised mutual information between assignments and labels (scikit-learn, arithmetic
    normalisation), which needs no matching.
"""

from typing import Dict, Optional

import numpy as np
from scipy import optimize
from sklearn import metrics as sk_metrics

from tfdecomp import seeds


def _locs_and_log_probs(prior, codes, assignment):
  """Component scores [N, K] (higher is better) from a prior, a distribution or locs [K, D]."""
  if isinstance(prior, (np.ndarray, list, tuple)):
    locs = np.asarray(prior, dtype=np.float64)
    if locs.ndim != 2 or locs.shape[1] != codes.shape[1]:
      raise ValueError(f"prior locs must have shape [K, {codes.shape[1]}], got {locs.shape}.")
    if assignment == "responsibility":
      raise ValueError("assignment='responsibility' needs a mixture prior, not component means; "
                       "use assignment='nearest'.")
    return -np.sum(np.square(codes[:, None, :] - locs[None]), axis=-1)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfdecomp import priors as priors_lib  # pylint: disable=g-import-not-at-top
  dist = priors_lib.as_distribution(prior)
  components = getattr(dist, "components_distribution", None)
  if components is None:
    raise ValueError("prior must be a mixture (tfd.MixtureSameFamily or tfdecomp.priors.Mixture) "
                     f"or an array of component means, got {type(dist).__name__}.")
  z = tf.convert_to_tensor(codes, components.dtype)
  if assignment == "nearest":
    locs = components.mean().numpy().astype(np.float64)
    return -np.sum(np.square(codes[:, None, :] - locs[None]), axis=-1)
  log_weights = tf.math.log_softmax(dist.mixture_distribution.logits_parameter())
  return (log_weights + components.log_prob(z[:, tf.newaxis, :])).numpy()


def matched_accuracy(labels: np.ndarray, assignments: np.ndarray) -> float:
  """Agreement of cluster assignments with labels after the best one-to-one relabelling."""
  labels = np.asarray(labels).reshape(-1)
  assignments = np.asarray(assignments).reshape(-1)
  label_ids, label_index = np.unique(labels, return_inverse=True)
  cluster_ids, cluster_index = np.unique(assignments, return_inverse=True)
  counts = np.zeros([len(cluster_ids), len(label_ids)], dtype=np.int64)
  np.add.at(counts, (cluster_index.reshape(-1), label_index.reshape(-1)), 1)
  rows, cols = optimize.linear_sum_assignment(counts, maximize=True)
  return float(counts[rows, cols].sum() / len(labels))


def cluster_assignments(codes, prior, assignment: str = "responsibility") -> np.ndarray:
  """Index of the prior component each code [N, D] belongs to: int64 [N].

  Args:
    codes: float [N, D].
    prior: a `tfdecomp.priors.Mixture`, a `tfd.MixtureSameFamily`, or component means [K, D].
    assignment: "responsibility" (argmax_k log w_k + log p_k(z)) or "nearest" (nearest mean).
  """
  if assignment not in ("responsibility", "nearest"):
    raise ValueError(f"assignment must be 'responsibility' or 'nearest', got {assignment!r}.")
  codes = np.asarray(codes, dtype=np.float64)
  if codes.ndim != 2:
    raise ValueError(f"codes must have shape [N, D], got {codes.shape}.")
  return np.argmax(_locs_and_log_probs(prior, codes, assignment), axis=1)


def clustering_scores(codes, labels, prior, assignment: str = "responsibility",
                      posterior_samples=None, prior_samples=None, num_mmd_samples: int = 1000,
                      seed: int = 0) -> Dict[str, float]:
  """Clustering agreement with the true labels, and MMD between q(z) and the prior.

  Args:
    codes: float [N, D] codes used for the assignment (encoder means).
    labels: int [N] true cluster labels (e.g. the pinwheel arm).
    prior: a mixture prior (`tfdecomp.priors.Mixture`, `tfd.MixtureSameFamily`) or means [K, D].
    assignment: "responsibility" or "nearest" (see `cluster_assignments`).
    posterior_samples: float [M, D] aggregate-posterior samples (one z ~ q(z|x) per example) for
      the MMD; defaults to `codes`.
    prior_samples: float [M, D] prior samples; drawn from `prior` when None (needs a prior
      distribution, not bare means).
    num_mmd_samples: at most this many samples of each side enter the MMD (its cost is quadratic).
    seed: seed for the subsampling and the prior samples.

  Returns:
    {"cluster_accuracy", "nmi"} and, when prior samples are available, "mmd".
  """
  codes = np.asarray(codes, dtype=np.float64)
  labels = np.asarray(labels).reshape(-1)
  if labels.shape[0] != codes.shape[0]:
    raise ValueError(f"labels must have one entry per code ({codes.shape[0]}), got "
                     f"{labels.shape[0]}.")
  assignments = cluster_assignments(codes, prior, assignment)
  scores = {
      "cluster_accuracy": matched_accuracy(labels, assignments),
      "nmi": float(sk_metrics.normalized_mutual_info_score(labels, assignments)),
  }
  mmd = clustering_mmd(codes if posterior_samples is None else posterior_samples, prior,
                       prior_samples, num_mmd_samples, seed)
  if mmd is not None:
    scores["mmd"] = mmd
  return scores


def clustering_mmd(posterior_samples, prior=None, prior_samples=None,
                   num_samples: int = 1000, seed: int = 0) -> Optional[float]:
  """`tfdecomp.divergences.mmd` between aggregate-posterior and prior samples (None if no prior
  samples can be had: `prior` given as bare means and `prior_samples` None)."""
  rng = seeds.metric_rng(seed)
  q = np.asarray(posterior_samples, dtype=np.float32)
  if prior_samples is None:
    if prior is None or isinstance(prior, (np.ndarray, list, tuple)):
      return None
    from tfdecomp import priors as priors_lib  # pylint: disable=g-import-not-at-top
    dist = priors_lib.as_distribution(prior)
    prior_samples = dist.sample(min(num_samples, len(q)),
                                seed=[int(rng.integers(2**31 - 1)), 0]).numpy()
  p = np.asarray(prior_samples, dtype=np.float32)
  num = min(num_samples, len(q), len(p))
  if num < 2:
    raise ValueError("the MMD needs at least 2 posterior and 2 prior samples.")
  q = q[rng.choice(len(q), num, replace=False)]
  p = p[rng.choice(len(p), num, replace=False)]
  from tfdecomp import divergences  # pylint: disable=g-import-not-at-top
  return float(divergences.mmd(q, p))
