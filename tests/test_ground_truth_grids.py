"""Ground truth from examples in any order: a full grid, repeated observations, a partial grid."""

import numpy as np
import pytest

from tfdecomp import ground_truth


def _examples(repeats):
  """Examples of a 2 x 3 grid whose observation encodes its factors (10 * f0 + f1) and its copy."""
  factors, observations = [], []
  for f0 in range(2):
    for f1 in range(3):
      for copy in range(repeats[(f0, f1)]):
        factors.append((f0, f1))
        observations.append([10 * f0 + f1, copy])
  order = np.random.default_rng(0).permutation(len(factors))
  return np.array(factors)[order], np.array(observations, np.float32)[order]


def test_a_grid_observed_once_is_arranged_in_row_major_order():
  factors, observations = _examples({(a, b): 1 for a in range(2) for b in range(3)})
  data = ground_truth.GridGroundTruthData.from_examples(["a", "b"], [2, 3], factors, observations)
  assert type(data) is ground_truth.GridGroundTruthData
  got = data.sample_observations_from_factors(np.array([[1, 2], [0, 1]]),
                                              np.random.RandomState(0))
  np.testing.assert_array_equal(got[:, 0], [12, 1])


def test_repeated_observations_are_drawn_uniformly_among_the_copies():
  repeats = {(a, b): 1 + (a + b) % 3 for a in range(2) for b in range(3)}  # 1, 2 or 3 copies.
  factors, observations = _examples(repeats)
  data = ground_truth.GridGroundTruthData.from_examples(["a", "b"], [2, 3], factors, observations)
  assert isinstance(data, ground_truth.RepeatedGridGroundTruthData)
  rng = np.random.RandomState(1)
  for cell, copies in repeats.items():
    drawn = data.sample_observations_from_factors(np.array([cell] * 3000), rng)
    np.testing.assert_array_equal(drawn[:, 0], 10 * cell[0] + cell[1])  # The right factors.
    counts = np.bincount(drawn[:, 1].astype(int), minlength=copies)
    assert len(counts) == copies
    # Uniform over the copies: each within 5 standard deviations of 3000 / copies.
    p = 1 / copies
    assert np.all(np.abs(counts - 3000 * p) <= 5 * np.sqrt(3000 * p * (1 - p)) + 1e-9), counts


def test_a_partial_grid_is_refused_in_one_line():
  repeats = {(a, b): 1 for a in range(2) for b in range(3)}
  repeats[(1, 2)] = 0
  factors, observations = _examples(repeats)
  with pytest.raises(ValueError, match=r"cover 5 of the 6 factor combinations"):
    ground_truth.GridGroundTruthData.from_examples(["a", "b"], [2, 3], factors, observations)
