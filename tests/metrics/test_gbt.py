"""The compiled gradient-boosted trees against scikit-learn's GradientBoostingClassifier."""

import numpy as np
import pytest
from sklearn import ensemble

from tfdecomp.metrics import gbt


def _data(num, num_features, num_classes, seed, decimals=None):
  """Labels that depend on the features (plus label noise), and held-out inputs."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(num, num_features))
  if decimals is not None:
    x = np.round(x, decimals)  # repeated values: thresholds only between distinct values
  score = x[:, 0] + 0.5 * x[:, -1] ** 2 + 0.4 * rng.normal(size=num)
  edges = np.quantile(score, np.linspace(0, 1, num_classes + 1)[1:-1])
  y = np.digitize(score, edges) * 10 + 7  # arbitrary label values
  return x, y, rng.normal(size=(200, num_features))


@pytest.mark.parametrize("num_classes,decimals", [(4, None), (2, None), (5, 1)])
def test_one_feature_equals_sklearn(num_classes, decimals):
  """Depth-2 trees on one feature: no two candidate splits tie, so every number must agree.

  Initial log-priors, gradients, thresholds (between distinct float32 values only), Newton leaf
  values and the learning rate all show in the decision values, on training and held-out inputs,
  for multiclass and binary labels.
  """
  x, y, x_test = _data(1500, 1, num_classes, seed=num_classes, decimals=decimals)
  kwargs = dict(learning_rate=0.3, max_depth=2)
  ours = gbt.GradientBoostedTrees(num_stages=30, **kwargs).fit(x, y)
  reference = ensemble.GradientBoostingClassifier(n_estimators=30, random_state=0,
                                                  **kwargs).fit(x, y)
  np.testing.assert_array_equal(ours.classes_, reference.classes_)
  for inputs in (x, x_test):
    np.testing.assert_allclose(ours.decision_function(inputs),
                               reference.decision_function(inputs), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(inputs), reference.predict(inputs))


@pytest.mark.parametrize("num_features,num_classes,decimals", [(5, 4, None), (5, 2, None),
                                                               (3, 5, 1)])
def test_several_features_equal_sklearn_on_training_data(num_features, num_classes, decimals):
  """Several features: where two features split a (small) node into the same two sets,
  each implementation credits whichever its own random feature order visits first.
  The training partitions, hence training decision values, still agree exactly; importances and
  held-out predictions agree up to those few credits."""
  x, y, x_test = _data(1500, num_features, num_classes, seed=num_classes, decimals=decimals)
  kwargs = dict(learning_rate=0.3, max_depth=2)
  ours = gbt.GradientBoostedTrees(num_stages=30, **kwargs).fit(x, y)
  reference = ensemble.GradientBoostingClassifier(n_estimators=30, random_state=0,
                                                  **kwargs).fit(x, y)
  np.testing.assert_allclose(ours.decision_function(x), reference.decision_function(x),
                             rtol=0, atol=1e-9)
  np.testing.assert_allclose(ours.feature_importances_, reference.feature_importances_,
                             atol=2e-3)
  assert np.mean(ours.predict(x_test) == reference.predict(x_test)) > 0.98


def test_default_configuration_agrees_with_sklearn():
  """Depth-3 trees, 100 stages: small nodes now have exact ties between candidate splits.

  A node holding targets (a, b, a) scores "split off the first" and "split off the last" equally;
  scikit-learn's pick then depends on its summation rounding, ours takes the first (and between
  features each takes the first in its random feature order). Numbers agree up to the spread of
  scikit-learn's own random states.
  """
  x, y, x_test = _data(1500, 6, 6, seed=3)
  ours = gbt.GradientBoostedTrees().fit(x, y)
  references = [ensemble.GradientBoostingClassifier(random_state=s).fit(x, y) for s in range(3)]
  spread = max(np.abs(r.feature_importances_ - references[0].feature_importances_).max()
               for r in references[1:])
  gap = np.abs(ours.feature_importances_ - references[0].feature_importances_).max()
  assert gap <= max(2 * spread, 0.01)
  for inputs in (x, x_test):
    assert np.mean(ours.predict(inputs) == references[0].predict(inputs)) > 0.95
  assert ours.feature_importances_.sum() == pytest.approx(1.0)
  assert np.all(ours.feature_importances_ >= 0)


def test_importances_follow_the_informative_features():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1000, 4))
  y = (x[:, 2] > 0).astype(int) + 2 * (x[:, 0] > 0.5)
  importances = gbt.GradientBoostedTrees(num_stages=20).fit(x, y).feature_importances_
  assert importances[[0, 2]].sum() > 0.97


def test_deterministic_given_the_random_state():
  x, y, x_test = _data(700, 4, 3, seed=5)
  a = gbt.GradientBoostedTrees(num_stages=20, random_state=3).fit(x, y)
  b = gbt.GradientBoostedTrees(num_stages=20, random_state=3).fit(x, y)
  np.testing.assert_array_equal(a.decision_function(x_test), b.decision_function(x_test))
  np.testing.assert_array_equal(a.feature_importances_, b.feature_importances_)


def test_tied_features_share_the_credit():
  """Two identical columns tie at every split: a random feature order splits their credit
  about evenly (as scikit-learn's does), where a fixed order would credit one of them only."""
  rng = np.random.default_rng(0)
  z = rng.normal(size=(2000, 1))
  x = np.concatenate([z, z, rng.normal(size=(2000, 1))], axis=1)
  y = (z[:, 0] + 0.5 * rng.normal(size=2000) > 0).astype(int)
  importances = gbt.GradientBoostedTrees(num_stages=50).fit(x, y).feature_importances_
  reference = ensemble.GradientBoostingClassifier(n_estimators=50, random_state=0).fit(x, y)
  assert importances[0] + importances[1] > 0.8
  assert 0.3 < importances[0] / (importances[0] + importances[1]) < 0.7
  np.testing.assert_allclose(importances, reference.feature_importances_, atol=0.1)


def test_constant_and_pure_inputs():
  x = np.zeros((50, 2))
  y = np.arange(50) % 2
  model = gbt.GradientBoostedTrees(num_stages=5).fit(x, y)  # nothing to split on
  np.testing.assert_array_equal(model.feature_importances_, [0.0, 0.0])
  reference = ensemble.GradientBoostingClassifier(n_estimators=5).fit(x, y)
  np.testing.assert_allclose(model.decision_function(x), reference.decision_function(x),
                             atol=1e-12)


def test_bad_input():
  x = np.random.default_rng(0).normal(size=(20, 3))
  with pytest.raises(ValueError, match="single class"):
    gbt.GradientBoostedTrees().fit(x, np.zeros(20))
  with pytest.raises(ValueError, match="20 labels"):
    gbt.GradientBoostedTrees().fit(x, np.zeros(19))
  with pytest.raises(ValueError, match=r"\[n, F\]"):
    gbt.GradientBoostedTrees().fit(x[:, 0], np.arange(20) % 2)
  bad = x.copy()
  bad[3, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    gbt.GradientBoostedTrees().fit(bad, np.arange(20) % 2)
  with pytest.raises(ValueError, match="num_stages"):
    gbt.GradientBoostedTrees(num_stages=0)
  with pytest.raises(ValueError, match="learning_rate"):
    gbt.GradientBoostedTrees(learning_rate=0.0)
  with pytest.raises(ValueError, match="fit"):
    gbt.GradientBoostedTrees().predict(x)
  model = gbt.GradientBoostedTrees(num_stages=2).fit(x, np.arange(20) % 2)
  with pytest.raises(ValueError, match="3"):
    model.predict(x[:, :2])
