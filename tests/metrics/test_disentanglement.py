"""Oracle-representation tests of the supervised disentanglement metrics (known answers)."""

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from tfdecomp import metrics
from tfdecomp.ground_truth import GroundTruthData
from tfdecomp.metrics import dci_scores as dci_lib
from tfdecomp.metrics import modularity as modularity_lib
from tfdecomp.metrics import utils


class FactorsAsObservations(GroundTruthData):
  """Four factors; an observation is its factor vector as floats."""

  factor_names = ("a", "b", "c", "d")
  factor_sizes = (4, 5, 6, 7)
  observation_shape = (4,)

  def sample_observations_from_factors(self, factors, rng):
    del rng
    return np.asarray(factors, np.float32)


DATA = FactorsAsObservations()
NUM_FACTORS = 4
HADAMARD = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0


def perfect(noise_dims=2, seed=1):
  """Each factor copied into its own dimension, plus `noise_dims` dimensions of pure noise."""
  rng = np.random.default_rng(seed)
  return lambda x: np.concatenate([x / np.asarray(DATA.factor_sizes),
                                   rng.normal(size=(len(x), noise_dims))], axis=1)


def rotated(seed=2, hadamard=False):
  """The factors standardised and mixed by a fixed random rotation.

  With `hadamard`, the rotation mixes every factor into every dimension with equal weight. The
  FactorVAE score only drops under such rotations: a generic rotation keeps a distinct dominant
  dimension per factor, which is all its majority vote needs.
  """
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(NUM_FACTORS, NUM_FACTORS)))
  if hadamard:
    q = HADAMARD
  sizes = np.asarray(DATA.factor_sizes)
  return lambda x: ((x - (sizes - 1) / 2) / (sizes / np.sqrt(12))) @ q


def noise(dims=3, seed=3):
  rng = np.random.default_rng(seed)
  return lambda x: rng.normal(size=(len(x), dims))


FACTOR_VAE = dict(batch_size=32, num_train=400, num_eval=300, num_variance_estimate=1000)
BETA_VAE = dict(batch_size=16, num_train=300, num_eval=200)


def test_factor_vae_perfect_rotated_noise():
  good = metrics.factor_vae_score(DATA, perfect(), seed=0, **FACTOR_VAE)
  assert set(good) == {"train_accuracy", "eval_accuracy", "num_active_dims"}
  assert good["eval_accuracy"] > 0.99 and good["num_active_dims"] == NUM_FACTORS + 2
  mixed = metrics.factor_vae_score(DATA, rotated(hadamard=True), seed=0, **FACTOR_VAE)
  assert mixed["eval_accuracy"] < 0.7
  chance = metrics.factor_vae_score(DATA, noise(), seed=0, **FACTOR_VAE)["eval_accuracy"]
  assert abs(chance - 1 / NUM_FACTORS) < 0.12


def test_factor_vae_prunes_collapsed_dimensions():
  rep = lambda x: np.concatenate([perfect(0)(x), np.full((len(x), 2), 3.0)], axis=1)
  result = metrics.factor_vae_score(DATA, rep, seed=0, **FACTOR_VAE)
  assert result["num_active_dims"] == NUM_FACTORS and result["eval_accuracy"] > 0.99
  dead = metrics.factor_vae_score(DATA, lambda x: np.zeros((len(x), 2)), seed=0, **FACTOR_VAE)
  assert dead == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_factor_vae_paper_variant():
  good = metrics.factor_vae_score(DATA, perfect(), variant="paper", num_train=500, batch_size=50)
  assert good["train_accuracy"] > 0.99 and np.isnan(good["eval_accuracy"])
  bad = metrics.factor_vae_score(DATA, noise(), variant="paper", num_train=500, batch_size=50,
                                 num_eval=200)
  assert bad["eval_accuracy"] < 0.6
  with pytest.raises(ValueError, match="variant"):
    metrics.factor_vae_score(DATA, perfect(), variant="kim")


def test_factor_vae_is_deterministic_given_seed():
  rep = rotated()
  assert (metrics.factor_vae_score(DATA, rep, seed=5, **FACTOR_VAE) ==
          metrics.factor_vae_score(DATA, rep, seed=5, **FACTOR_VAE))


def test_beta_vae_perfect_rotated_noise():
  good = metrics.beta_vae_score(DATA, perfect(), seed=0, **BETA_VAE)
  assert set(good) == {"train_accuracy", "eval_accuracy"} and good["eval_accuracy"] > 0.97
  mixed = metrics.beta_vae_score(DATA, rotated(hadamard=True), seed=0, **BETA_VAE)
  assert mixed["eval_accuracy"] < 0.6
  bad = metrics.beta_vae_score(DATA, noise(), seed=0, **BETA_VAE)["eval_accuracy"]
  assert bad < 0.45


def test_mig_perfect_rotated_noise():
  good = metrics.mig(DATA, perfect(), seed=0, num_train=3000)["discrete_mig"]
  rot = metrics.mig(DATA, rotated(), seed=0, num_train=3000)["discrete_mig"]
  bad = metrics.mig(DATA, noise(), seed=0, num_train=3000)["discrete_mig"]
  assert good > 0.9 and rot < good - 0.3 and bad < 0.05


def test_dci_perfect_rotated():
  kwargs = dict(num_train=600, num_test=300)
  good = metrics.dci(DATA, perfect(1), seed=0, **kwargs)
  assert set(good) == {"disentanglement", "completeness", "informativeness_train",
                       "informativeness_test"}
  assert good["disentanglement"] > 0.9 and good["informativeness_test"] > 0.95
  assert metrics.dci(DATA, rotated(), seed=0, **kwargs)["disentanglement"] < 0.6


def test_dci_sklearn_estimator_on_oracles():
  kwargs = dict(num_train=600, num_test=300, estimator="sklearn")
  assert metrics.dci(DATA, perfect(1), seed=0, **kwargs)["disentanglement"] > 0.9
  assert metrics.dci(DATA, rotated(), seed=0, **kwargs)["disentanglement"] < 0.6
  with pytest.raises(ValueError, match="estimator"):
    metrics.dci(DATA, perfect(), estimator="xgb", num_train=100, num_test=100)


@pytest.mark.parametrize("representation", ["perfect", "rotated"])
def test_dci_compiled_estimator_matches_sklearn(representation):
  """The compiled estimator gives scikit-learn's DCI on the same samples (ties aside)."""
  representation_fn = perfect(1) if representation == "perfect" else rotated()
  rng = np.random.default_rng(0)
  codes, factors = utils.sample_factor_codes(DATA, representation_fn, 800, rng)
  codes_test, factors_test = utils.sample_factor_codes(DATA, representation_fn, 400, rng)
  ours = dci_lib.importance_matrix(codes, factors, codes_test, factors_test, "gbt")
  reference = dci_lib.importance_matrix(codes, factors, codes_test, factors_test, "sklearn")
  np.testing.assert_allclose(ours[0], reference[0], atol=0.01)
  assert ours[1] == pytest.approx(reference[1], abs=0.01)
  assert ours[2] == pytest.approx(reference[2], abs=0.01)
  for score in (dci_lib.disentanglement, dci_lib.completeness):
    assert score(ours[0]) == pytest.approx(score(reference[0]), abs=0.005)


def test_dci_scores_of_known_importance_matrices():
  assert dci_lib.disentanglement(np.diag([5.0, 5.0, 5.0])) == pytest.approx(1.0)
  assert dci_lib.completeness(np.diag([5.0, 5.0, 5.0])) == pytest.approx(1.0)
  assert dci_lib.disentanglement(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-6)
  # One code explaining everything: complete-less (each factor uses one code) but not disentangled.
  one_code = np.array([[1.0, 1.0], [0.0, 0.0]])
  assert dci_lib.completeness(one_code) == pytest.approx(1.0)
  assert dci_lib.disentanglement(one_code) == pytest.approx(0.0, abs=1e-6)


def test_sap_perfect_vs_noise():
  good = metrics.sap(DATA, perfect(), seed=0, num_train=1000, num_test=500)["SAP_score"]
  bad = metrics.sap(DATA, noise(), seed=0, num_train=1000, num_test=500)["SAP_score"]
  assert good > 0.15 and bad < 0.05
  cont = metrics.sap(DATA, perfect(), seed=0, num_train=1000, num_test=500,
                     continuous_factors=True)["SAP_score"]
  assert cont > 0.9


def test_modularity_explicitness_perfect_rotated():
  kwargs = dict(num_train=2000, num_test=1000)
  good = metrics.modularity_explicitness(DATA, perfect(0), seed=0, **kwargs)
  assert set(good) == {"modularity_score", "explicitness_score_train", "explicitness_score_test"}
  assert good["modularity_score"] > 0.95 and good["explicitness_score_test"] > 0.9
  rot = metrics.modularity_explicitness(DATA, rotated(), seed=0, **kwargs)
  assert rot["modularity_score"] < good["modularity_score"] - 0.1


def test_modularity_of_known_mutual_information():
  assert modularity_lib.modularity_from_mutual_info(np.eye(3)) == pytest.approx(1.0)
  assert modularity_lib.modularity_from_mutual_info(np.ones((3, 3))) == pytest.approx(0.0)
  assert modularity_lib.modularity_from_mutual_info(np.zeros((2, 3))) == 0.0


def test_mutual_information_matches_sklearn():
  rng = np.random.default_rng(0)
  codes = rng.integers(0, 7, size=(500, 3)) * 3 + 1
  factors = np.stack([codes[:, 0] // 6, rng.integers(0, 4, 500)], axis=1)
  mi = utils.discrete_mutual_info(codes, factors)
  for d in range(3):
    for k in range(2):
      assert mi[d, k] == pytest.approx(sk_metrics.mutual_info_score(factors[:, k], codes[:, d]),
                                       abs=1e-12)
  entropy = utils.discrete_entropy(factors)
  assert entropy[1] == pytest.approx(sk_metrics.mutual_info_score(factors[:, 1], factors[:, 1]))


def test_histogram_discretize_matches_numpy_histogram_bins():
  x = np.random.default_rng(0).normal(size=(300, 2))
  out = utils.histogram_discretize(x, 20)
  for d in range(2):
    expected = np.digitize(x[:, d], np.histogram(x[:, d], 20)[1][:-1])
    np.testing.assert_array_equal(out[:, d], expected)
  assert out.min() == 1 and out.max() == 20


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="num_points"):
    metrics.mig(DATA, perfect(), num_train=0)
  with pytest.raises(ValueError, match="representation_fn"):
    metrics.mig(DATA, lambda x: np.zeros(len(x)), num_train=10)
  with pytest.raises(ValueError, match="batch_size"):
    metrics.factor_vae_score(DATA, perfect(), batch_size=1)
