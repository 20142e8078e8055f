"""Gradient-boosted trees: scikit-learn's GradientBoostingClassifier algorithm, compiled.

DCI (Eastwood & Williams 2018) as disentanglement_lib computes it fits
`sklearn.ensemble.GradientBoostingClassifier()` (100 stages of depth-3 regression trees, learning
rate 0.1, log loss) once per factor and reads `feature_importances_`. On dSprites that is
113 classes x 100 stages = 11,300 exact trees on 10,000 x D codes: minutes of CPU, because
scikit-learn sorts the samples of every node for every feature again.

`GradientBoostedTrees` runs the same algorithm to the formula, compiled with Numba:
- initial raw predictions from the class priors (log p_k / geometric mean, or the logit of the
  positive class for two classes), as `DummyClassifier(strategy="prior")` + the loss's link;
- per stage the negative gradients y_k - p_k (softmax, or sigmoid for two classes), one
  regression tree per class (one in all for two classes) grown to `max_depth` by exhaustive
  best-first-found squared-error splits: candidate thresholds halfway between consecutive distinct
  float32 values of a node (values closer than 1e-7 count as equal), proxy
  S_L^2 / n_L + S_R^2 / n_R, nodes with impurity <= machine epsilon or fewer than 2 samples kept
  as leaves;
- leaves set by one Newton step, (K - 1)/K * mean(r) / mean(p (1 - p)) (without the factor for
  two classes; 0 where the denominator is below 1e-150), shrunk by the learning rate;
- feature importances: the total weighted impurity decrease of each feature's splits, summed over
  the trees and normalised (scikit-learn averages per-tree importances over the trees that split
  and normalises: the same numbers).
Every feature is sorted once; each tree keeps the per-feature sorted lists partitioned by node, so a
tree costs O(depth x features x samples) instead of scikit-learn's per-node sorts.

The results equal scikit-learn's except where two candidate splits score *exactly* the same in a
node, which happens in small nodes whose targets repeat (samples of one class that have shared
every leaf so far): between features, both implementations take the first in a random
per-node feature order (so scikit-learn's own answer depends on its `random_state`); between
positions of one feature, scikit-learn's summation rounding decides, this implementation takes the
first. `tests/metrics/test_gbt.py` checks importances, decision values and predictions against
scikit-learn.
"""

from typing import Optional

import numba
import numpy as np

from tfdecomp.metrics import utils

#: Two feature values closer than this count as equal (scikit-learn's FEATURE_THRESHOLD, float32).
FEATURE_THRESHOLD = np.float32(1e-7)
#: Nodes whose impurity is at most this are leaves (scikit-learn's tree EPSILON).
_EPSILON = float(np.finfo(np.float64).eps)
#: Relative margin by which a split score must beat the best so far (rounding, not a real gain).
_TIE_MARGIN = 1e-12
#: Leaf denominators below this give a zero update (scikit-learn's `_safe_divide`).
_TINY_DENOMINATOR = 1e-150


@numba.njit(cache=True, nogil=True)
def _grow_tree(vals, idx, tvals, target, inverse, max_depth, feature, threshold, left, right,
               leaf_of, goes_left, ibuf, vbuf, tbuf, importances):
  """Grows one squared-error regression tree; returns its node count.

  Args:
    vals, idx, tvals: float32 / int32 / float64 [F, n]: per feature, the feature's values, the
      sample ids and their targets in ascending order of the feature. Partitioned in place: every
      node that is split further occupies the same segment [start, end) of every row.
    target: float64 [n] regression targets by sample id.
    inverse: float64 [n + 1], inverse[m] = 1 / m.
    max_depth: leaves are at most this deep.
    feature, threshold, left, right: [max_nodes] outputs; left[j] = -1 marks a leaf.
    leaf_of: int64 [n] output: the leaf of each sample.
    goes_left: uint8 [n], ibuf: int32 [n], vbuf: float32 [n], tbuf: float64 [n]: scratch.
    importances: float64 [F]: each split adds (n_j imp_j - n_L imp_L - n_R imp_R) / n.
  """
  num_features, n = vals.shape
  max_nodes = feature.shape[0]
  start = np.zeros(max_nodes, np.int64)
  end = np.zeros(max_nodes, np.int64)
  depth = np.zeros(max_nodes, np.int64)
  impurity = np.zeros(max_nodes)
  total = np.zeros(max_nodes)
  sq_total = np.zeros(max_nodes)
  stack = np.zeros(max_nodes, np.int64)
  order = np.zeros(num_features, np.int64)
  for j in range(max_nodes):
    left[j] = -1
    right[j] = -1
    feature[j] = -1
    threshold[j] = -2.0

  s = 0.0
  sq = 0.0
  for i in range(n):
    s += target[i]
    sq += target[i] * target[i]
  end[0] = n
  total[0] = s
  sq_total[0] = sq
  impurity[0] = sq / n - (s / n) ** 2.0
  node_count = 1
  stack_size = 1
  while stack_size > 0:
    stack_size -= 1
    j = stack[stack_size]
    lo = start[j]
    hi = end[j]
    size = hi - lo
    is_leaf = depth[j] >= max_depth or size < 2 or impurity[j] <= _EPSILON
    best_feature = -1
    best_pos = hi
    best_threshold = 0.0
    if not is_leaf:
      # A split must beat the best so far by a relative margin: ties in exact arithmetic go to
      # the first position, as scikit-learn's strict `>` intends, not to summation rounding.
      bar = -np.inf
      s_node = total[j]
      # Features in a random order, as scikit-learn visits them: of features that tie (split
      # the node into the same two sets, typically in small nodes), a uniformly random one
      # wins, rather than always the lowest index, which would bias the importances.
      for f in range(num_features):
        order[f] = f
      for f in range(num_features - 1, 0, -1):
        g = np.random.randint(0, f + 1)
        order[f], order[g] = order[g], order[f]
      for position in range(num_features):
        f = order[position]
        v = vals[f]
        t = tvals[f]
        if v[hi - 1] <= v[lo] + FEATURE_THRESHOLD:
          continue  # constant in this node
        s_left = 0.0
        for q in range(lo, hi - 1):
          s_left += t[q]
          if v[q + 1] <= v[q] + FEATURE_THRESHOLD:
            continue  # no threshold between equal values
          s_right = s_node - s_left
          # S_L^2 / n_L + S_R^2 / n_R, with reciprocals from a table.
          proxy = s_left * s_left * inverse[q + 1 - lo] + s_right * s_right * inverse[hi - q - 1]
          if proxy > bar:
            bar = proxy + _TIE_MARGIN * abs(proxy)
            best_feature = f
            best_pos = q + 1
            best_threshold = np.float64(v[q]) / 2.0 + np.float64(v[q + 1]) / 2.0
      if best_pos >= hi:
        is_leaf = True
    if not is_leaf:
      t = tvals[best_feature]
      s_left = 0.0
      sq_left = 0.0
      for q in range(lo, best_pos):
        s_left += t[q]
        sq_left += t[q] * t[q]
      n_left = float(best_pos - lo)
      n_right = float(hi - best_pos)
      s_right = total[j] - s_left
      sq_right = sq_total[j] - sq_left
      imp_left = sq_left / n_left - (s_left / n_left) ** 2.0
      imp_right = sq_right / n_right - (s_right / n_right) ** 2.0
      improvement = (size / n) * (impurity[j] - n_right / size * imp_right
                                            - n_left / size * imp_left)
      if improvement + _EPSILON < 0.0:
        is_leaf = True
    if is_leaf:
      for q in range(lo, hi):
        leaf_of[idx[0, q]] = j
      continue
    feature[j] = best_feature
    threshold[j] = best_threshold
    importances[best_feature] += (size * impurity[j] - n_left * imp_left
                                  - n_right * imp_right) / n
    left[j] = node_count
    right[j] = node_count + 1
    node_count += 2
    ids = idx[best_feature]
    if depth[j] + 1 >= max_depth:
      # The children are leaves: no need to partition the other features.
      for q in range(lo, best_pos):
        leaf_of[ids[q]] = left[j]
      for q in range(best_pos, hi):
        leaf_of[ids[q]] = right[j]
      continue
    for q in range(lo, best_pos):
      goes_left[ids[q]] = 1
    for q in range(best_pos, hi):
      goes_left[ids[q]] = 0
    # Stable partition of every other feature's segment: left samples first.
    for f in range(num_features):
      if f == best_feature:
        continue
      row_ids = idx[f]
      row_vals = vals[f]
      row_t = tvals[f]
      a = lo
      b = 0
      for q in range(lo, hi):
        i = row_ids[q]
        if goes_left[i]:
          row_ids[a] = i
          row_vals[a] = row_vals[q]
          row_t[a] = row_t[q]
          a += 1
        else:
          ibuf[b] = i
          vbuf[b] = row_vals[q]
          tbuf[b] = row_t[q]
          b += 1
      for c in range(b):
        row_ids[a + c] = ibuf[c]
        row_vals[a + c] = vbuf[c]
        row_t[a + c] = tbuf[c]
    for c in range(2):
      child = left[j] + c
      start[child] = lo if c == 0 else best_pos
      end[child] = best_pos if c == 0 else hi
      depth[child] = depth[j] + 1
      impurity[child] = imp_left if c == 0 else imp_right
      total[child] = s_left if c == 0 else s_right
      sq_total[child] = sq_left if c == 0 else sq_right
      stack[stack_size] = child
      stack_size += 1
  return node_count


@numba.njit(cache=True, nogil=True)
def _apply(x, feature, threshold, left, right, out):
  """Leaf index of each row of x [m, F] (float32) in one tree, into out [m]."""
  for i in range(x.shape[0]):
    j = 0
    while left[j] >= 0:
      if np.float64(x[i, feature[j]]) <= threshold[j]:
        j = left[j]
      else:
        j = right[j]
    out[i] = j


@numba.njit(cache=True, nogil=True)
def _boost(sorted_vals, sorted_idx, labels, num_classes, raw, num_stages, learning_rate,
           max_depth, feature, threshold, left, right, value, importances, seed):
  """The boosting loop. Fills the tree arrays [S, T, max_nodes] and importances [F] (unnormalised)
  and updates raw [n, T] in place; returns the number of trees with more than one node."""
  np.random.seed(seed)  # Numba's generator, per thread: the feature orders of this fit.
  num_features, n = sorted_vals.shape
  num_trees = raw.shape[1]
  binary = num_classes == 2
  factor = 1.0 if binary else (num_classes - 1.0) / num_classes
  neg_grad = np.zeros((n, num_trees))
  vals = np.empty_like(sorted_vals)
  idx = np.empty_like(sorted_idx)
  tvals = np.empty(sorted_vals.shape)
  leaf_of = np.zeros(n, np.int64)
  goes_left = np.zeros(n, np.uint8)
  ibuf = np.zeros(n, np.int32)
  vbuf = np.zeros(n, np.float32)
  tbuf = np.zeros(n)
  inverse = np.zeros(n + 1)
  for m in range(1, n + 1):
    inverse[m] = 1.0 / m
  probs = np.zeros(num_classes)
  max_nodes = feature.shape[2]
  numer = np.zeros(max_nodes)
  denom = np.zeros(max_nodes)
  count = np.zeros(max_nodes)
  relevant = 0
  for stage in range(num_stages):
    for i in range(n):
      if binary:
        p = 1.0 / (1.0 + np.exp(-raw[i, 0]))
        neg_grad[i, 0] = (1.0 if labels[i] == 1 else 0.0) - p
      else:
        top = raw[i, 0]
        for k in range(1, num_trees):
          top = max(top, raw[i, k])
        sum_exp = 0.0
        for k in range(num_trees):
          probs[k] = np.exp(raw[i, k] - top)
          sum_exp += probs[k]
        for k in range(num_trees):
          neg_grad[i, k] = (1.0 if labels[i] == k else 0.0) - probs[k] / sum_exp
    for k in range(num_trees):
      target = neg_grad[:, k].copy()
      vals[:, :] = sorted_vals
      idx[:, :] = sorted_idx
      for f in range(num_features):
        for q in range(n):
          tvals[f, q] = target[sorted_idx[f, q]]
      nodes = _grow_tree(vals, idx, tvals, target, inverse, max_depth, feature[stage, k],
                         threshold[stage, k], left[stage, k], right[stage, k], leaf_of,
                         goes_left, ibuf, vbuf, tbuf, importances)
      if nodes > 1:
        relevant += 1
      positive = 1 if binary else k
      numer[:] = 0.0
      denom[:] = 0.0
      count[:] = 0.0
      for i in range(n):
        j = leaf_of[i]
        r = target[i]
        prob = (1.0 if labels[i] == positive else 0.0) - r
        numer[j] += r
        denom[j] += prob * (1.0 - prob)
        count[j] += 1.0
      for j in range(nodes):
        if left[stage, k, j] >= 0 or count[j] == 0.0:
          value[stage, k, j] = 0.0
          continue
        d = denom[j] / count[j]
        if abs(d) < _TINY_DENOMINATOR:
          value[stage, k, j] = 0.0
        else:
          value[stage, k, j] = factor * (numer[j] / count[j]) / d
      for i in range(n):
        raw[i, k] += learning_rate * value[stage, k, leaf_of[i]]
  return relevant


@numba.njit(cache=True, nogil=True)
def _predict_raw(x, raw, learning_rate, feature, threshold, left, right, value):
  """Adds every tree's shrunk leaf values for the rows of x [m, F] to raw [m, T]."""
  leaves = np.zeros(x.shape[0], np.int64)
  for stage in range(feature.shape[0]):
    for k in range(feature.shape[1]):
      _apply(x, feature[stage, k], threshold[stage, k], left[stage, k], right[stage, k],
             leaves)
      for i in range(x.shape[0]):
        raw[i, k] += learning_rate * value[stage, k, leaves[i]]


class GradientBoostedTrees:
  """Multiclass gradient-boosted trees, `sklearn.ensemble.GradientBoostingClassifier`'s algorithm.

  Same defaults as scikit-learn's classifier (which disentanglement_lib's DCI uses) and the same
  answers: see the module docstring. Deterministic for a given `random_state`.

  Args:
    num_stages: boosting stages (scikit-learn's `n_estimators`), 100.
    learning_rate: shrinkage of every tree, 0.1.
    max_depth: depth of the regression trees, 3.
    random_state: seed of the order in which each node visits the features (it decides ties).

  Attributes after `fit`:
    classes_: the sorted class labels [C].
    feature_importances_: float64 [F], non-negative, summing to 1 (zeros if no tree split).
    num_split_trees: trees with more than one node.
  """

  def __init__(self, num_stages: int = 100, learning_rate: float = 0.1, max_depth: int = 3,
               random_state: int = 0):
    if not learning_rate > 0:
      raise ValueError(f"learning_rate must be positive, got {learning_rate!r}.")
    self.num_stages = utils.check_positive("num_stages", num_stages)
    self.learning_rate = float(learning_rate)
    self.max_depth = utils.check_positive("max_depth", max_depth)
    self.random_state = int(random_state) % 2**32
    self.classes_: Optional[np.ndarray] = None

  def fit(self, x: np.ndarray, y: np.ndarray) -> "GradientBoostedTrees":
    """Fits to inputs x [n, F] (cast to float32, as scikit-learn's trees do) and labels y [n]."""
    x = self._check_inputs(x)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
      raise ValueError(f"y must be a vector of {len(x)} labels, got shape {y.shape}.")
    self.classes_, labels = np.unique(y, return_inverse=True)
    num_classes = len(self.classes_)
    if num_classes < 2:
      raise ValueError(f"y has a single class ({self.classes_[0]!r}); a classifier needs at least "
                       "two.")
    self.num_features_ = x.shape[1]
    prior = np.clip(np.bincount(labels, minlength=num_classes) / len(labels),
                    np.finfo(np.float64).eps, 1.0 - np.finfo(np.float64).eps)
    if num_classes == 2:
      self._raw_init = np.array([np.log(prior[1] / (1.0 - prior[1]))])
    else:
      self._raw_init = np.log(prior / np.exp(np.mean(np.log(prior))))
    num_trees = len(self._raw_init)
    x_columns = np.ascontiguousarray(x.T)
    sorted_idx = np.argsort(x_columns, axis=1, kind="stable").astype(np.int32)
    sorted_vals = np.ascontiguousarray(np.take_along_axis(x_columns, sorted_idx, axis=1))
    max_nodes = 2 ** (self.max_depth + 1) - 1
    shape = (self.num_stages, num_trees, max_nodes)
    self._feature = np.full(shape, -1, np.int64)
    self._threshold = np.zeros(shape)
    self._left = np.full(shape, -1, np.int64)
    self._right = np.full(shape, -1, np.int64)
    self._value = np.zeros(shape)
    importances = np.zeros(x.shape[1])
    raw = np.tile(self._raw_init, (len(x), 1))
    self.num_split_trees = int(_boost(
        sorted_vals, sorted_idx, labels.astype(np.int64).reshape(-1), num_classes, raw,
        self.num_stages, self.learning_rate, self.max_depth, self._feature, self._threshold,
        self._left, self._right, self._value, importances, self.random_state))
    total = importances.sum()
    self.feature_importances_ = importances / total if total > 0 else np.zeros_like(importances)
    return self

  def decision_function(self, x: np.ndarray) -> np.ndarray:
    """Raw predictions [m, C] (log-odds [m] for two classes), as scikit-learn's."""
    if self.classes_ is None:
      raise ValueError("Call fit before decision_function or predict.")
    x = self._check_inputs(x)
    if x.shape[1] != self.num_features_:
      raise ValueError(f"x has {x.shape[1]} features; the model was fitted on "
                       f"{self.num_features_}.")
    raw = np.tile(self._raw_init, (len(x), 1))
    _predict_raw(x, raw, self.learning_rate, self._feature, self._threshold, self._left,
                 self._right, self._value)
    return raw[:, 0] if raw.shape[1] == 1 else raw

  def predict(self, x: np.ndarray) -> np.ndarray:
    """Class labels [m]: the largest raw prediction (log-odds >= 0 for two classes)."""
    raw = self.decision_function(x)
    if raw.ndim == 1:
      return self.classes_[(raw >= 0).astype(np.int64)]
    return self.classes_[np.argmax(raw, axis=1)]

  @staticmethod
  def _check_inputs(x):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
      raise ValueError(f"x must be a non-empty [n, F] matrix, got shape {x.shape}.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
      raise ValueError("x contains NaN or infinite values.")
    return x
