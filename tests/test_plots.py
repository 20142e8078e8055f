"""Tests for tfdecomp.plots: every figure renders and is written."""

import numpy as np
import pytest

from tfdecomp import plots
from tfdecomp import priors


def test_training_curves_from_dict_and_csv(tmp_path):
  history = {"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.5], "kl": [1.0, 1.1, 1.2],
             "val_loss": [3.1, 2.2, 1.7]}
  plots.training_curves(history, path=tmp_path / "a.png")
  assert (tmp_path / "a.png").stat().st_size > 0
  (tmp_path / "h.csv").write_text("epoch,loss\n0,2.0\n1,1.0\n")
  plots.training_curves(str(tmp_path / "h.csv"), path=tmp_path / "b.png")
  assert (tmp_path / "b.png").exists()
  with pytest.raises(ValueError, match="history"):
    plots.training_curves({})


def test_aggregate_posterior_over_prior(tmp_path):
  rng = np.random.default_rng(0)
  loc = rng.normal(size=(50, 2))
  prior = priors.Mixture()
  fig = plots.aggregate_posterior(loc, lambda z: prior.log_prob(z).numpy(),
                                  samples=loc + 0.1 * rng.normal(size=loc.shape),
                                  labels=np.arange(50) % 4, path=tmp_path / "p.png")
  assert fig.axes and (tmp_path / "p.png").exists()
  with pytest.raises(ValueError, match=r"\[N, 2\]"):
    plots.aggregate_posterior(rng.normal(size=(5, 3)))


def test_image_figures(tmp_path):
  rng = np.random.default_rng(0)
  x = rng.random((4, 8, 8, 1))
  plots.reconstructions(x, x[::-1], path=tmp_path / "r.png")
  plots.traversals(rng.random((3, 5, 8, 8, 1)), path=tmp_path / "t.png",
                   values=np.linspace(-2, 2, 5))
  plots.scatter_reconstructions(rng.normal(size=(9, 2)), rng.normal(size=(9, 2)),
                                path=tmp_path / "s.png")
  for name in ("r.png", "t.png", "s.png"):
    assert (tmp_path / name).stat().st_size > 0
  assert not list(tmp_path.glob(".tmp-*"))


def test_training_curves_draw_the_validated_epochs_and_the_test_value():
  nan = float("nan")
  history = {"epoch": [1, 2, 3, 4], "loss": [4.0, 3.0, 2.0, 1.0],
             "val_loss": [4.5, nan, nan, 1.5], "beta": [1.0] * 4, "val_beta": [1.0] * 4}
  fig = plots.training_curves(history, final={"loss": 1.2, "split": "test"})
  loss, beta = fig.axes[0], fig.axes[1]
  train, validation, test = loss.get_lines()
  np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])  # Epochs counted from 1.
  np.testing.assert_array_equal(validation.get_xdata(), [1, 4])
  np.testing.assert_array_equal(validation.get_ydata(), [4.5, 1.5])
  assert test.get_ydata()[0] == 1.2 and test.get_xdata()[0] == 4
  assert len(beta.get_lines()) == 1  # No validation copy of a weight.


def test_aggregate_posterior_titles_weights_and_draws_a_sampled_density():
  rng = np.random.default_rng(0)
  fig = plots.aggregate_posterior(rng.normal(size=(50, 2)), beta=1.0, alpha=100.0,
                                  prior_samples=rng.normal(size=(4000, 2)),
                                  axis_labels=("z3", "z7"))
  ax = fig.axes[0]
  assert "beta = 1, alpha = 100" in ax.get_title()
  assert ax.get_xlabel() == "z3" and ax.get_ylabel() == "z7"
  assert len(fig.axes) == 2  # The colour bar.


def test_class_magnitudes_is_the_per_class_mean_of_normalised_magnitudes(tmp_path):
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(3), 40)
  loc = rng.normal(size=(120, 5)) * np.array([0.1, 3.0, 1.0, 0.5, 2.0])
  loc[labels == 2, 4] += 6.0
  fig = plots.class_magnitudes(loc, labels, path=tmp_path / "c.png")
  table = np.asarray(fig.axes[0].images[0].get_array())
  normalised = np.abs(loc / loc.std(axis=0, ddof=1))
  expected = np.stack([normalised[labels == c].mean(axis=0) for c in range(3)])
  order = np.argsort(-expected.mean(axis=0))
  np.testing.assert_allclose(table, expected[:, order])
  assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(d) for d in order]
  assert (tmp_path / "c.png").exists()
  with pytest.raises(ValueError, match="one class per example"):
    plots.class_magnitudes(loc, labels[:5])


def test_pair_plot_draws_the_lower_triangle(tmp_path):
  rng = np.random.default_rng(0)
  fig = plots.pair_plot(rng.normal(size=(100, 6)), [4, 1, 0], rng.normal(size=(500, 6)),
                        labels=np.arange(100) % 3, path=tmp_path / "p.pdf", beta=1, alpha=0)
  assert len(fig.axes) == 6  # 3 diagonal + 3 below.
  assert [ax.get_xlabel() for ax in fig.axes[-3:]] == ["z4", "z1", "z0"]
  assert (tmp_path / "p.pdf").read_bytes()[:4] == b"%PDF"
  with pytest.raises(ValueError, match=">= 2 dims"):
    plots.pair_plot(rng.normal(size=(10, 3)), [0])
