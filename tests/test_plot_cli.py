"""tfdecomp-plot regenerates every figure that applies to a run, without training."""

import os
import subprocess
import sys

import pytest

from tfdecomp import configs
from tfdecomp import plots
from tfdecomp import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _figures(names):
  return {f"{name}.{fmt}" for name in names for fmt in plots.FORMATS}


RUNS = {
    "pinwheel": (dict(experiment="clustering", epochs=3),
                 ["training_curves", "aggregate_posterior", "reconstructions"]),
    "dsprites_small": (dict(experiment="independence", dataset_config="small", batch_size=16,
                            steps_per_epoch=2, epochs=2, steps_per_execution=1),
                       ["training_curves", "aggregate_posterior_pairs", "reconstructions",
                        "samples", "traversals"]),
    # Digits have one class per example: the paper's sparsity figure applies.
    "digits_sparsity": (dict(experiment="sparsity_digits", steps_per_epoch=2, epochs=1,
                             steps_per_execution=1),
                        ["training_curves", "aggregate_posterior_pairs", "class_magnitudes",
                         "reconstructions", "samples", "traversals"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_applicable_figure_is_regenerated(tmp_path, name):
  settings, expected = RUNS[name]
  out = tmp_path / name
  training.train(configs.make(**settings), str(out), progress=False, figures=False)
  assert not os.listdir(out / "plots")
  if name == "pinwheel":  # The command line, once.
    done = subprocess.run([sys.executable, "-m", "trainers.plot", f"--run={out}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    assert f"wrote {2 * len(expected)} file(s)" in done.stdout
  else:
    plots.regenerate(out)
  assert set(os.listdir(out / "plots")) == _figures(expected)
  for path in (out / "plots").iterdir():
    assert path.stat().st_size > 1000, path


def test_a_directory_that_is_not_a_run_is_one_clear_error(tmp_path):
  from tfdecomp import runs  # pylint: disable=g-import-not-at-top
  with pytest.raises(runs.RunError, match="config.json not found"):
    plots.regenerate(tmp_path)
