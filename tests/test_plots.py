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
