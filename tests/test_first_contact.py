"""What a new user meets first: progress output, one-line errors, honest records."""

import io
import json

import numpy as np
import pytest

from tfdecomp import callbacks
from tfdecomp import configs
from tfdecomp import data
from tfdecomp import evaluation
from tfdecomp import training


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def _drive(progress, clock, steps, compile_seconds, step_seconds):
  progress.on_train_begin()
  for step in range(steps):
    clock.now += compile_seconds if step == 0 else step_seconds
    epoch = step // progress.steps_per_epoch
    if step % progress.steps_per_epoch == 0:
      progress.on_epoch_begin(epoch)
    progress.on_train_batch_end(step % progress.steps_per_epoch, {"loss": 1.0 / (step + 1)})
    if (step + 1) % progress.steps_per_epoch == 0:
      progress.on_epoch_end(epoch, {"loss": 1.0 / (step + 1)})
  progress.on_train_end()


def test_progress_does_not_extrapolate_the_compile_time(monkeypatch):
  clock = _Clock()
  monkeypatch.setattr(callbacks.time, "monotonic", clock)
  stream = io.StringIO()
  progress = callbacks.RunProgress(epochs=500, steps_per_epoch=1, stream=stream)
  _drive(progress, clock, 500, compile_seconds=15.0, step_seconds=0.01)
  lines = stream.getvalue().splitlines()
  # No ETA before a step after the first has been timed; then about 0.01 s per step.
  assert "<?" in lines[0]
  etas = [float(line.split("<")[1].split("s")[0]) for line in lines[1:-1] if "<" in line]
  assert etas and max(etas) < 10, lines
  # The last line is printed once, without an ETA, and the run ends at 100%.
  assert lines[-1].startswith("epoch 500/500") and "100%" in lines[-1] and "<" not in lines[-1]
  assert sum("100%" in line for line in lines) == 1
  assert len(lines) <= 12


def test_evaluating_a_model_on_the_wrong_data_says_so_before_loading(tmp_path):
  config = configs.make("clustering", epochs=1)
  result = training.train(config, str(tmp_path / "run"), progress=False, figures=False)
  with pytest.raises(ValueError, match=r"takes examples of shape \[2\].*dsprites.*\[64, 64, 1\]"):
    evaluation.evaluate_dataset(result.model, "dsprites", data_dir=str(tmp_path / "nothing"))
  assert not (tmp_path / "nothing").exists()  # Refused before any data was prepared.


def test_config_json_says_which_source_served_dsprites(tmp_path):
  config = configs.make("independence", dataset_config="small", batch_size=8, steps_per_epoch=2,
                        epochs=1, steps_per_execution=1)
  training.train(config, str(tmp_path / "run"), progress=False, figures=False,
                 manual_dir=str(tmp_path / "no_manual_files"))
  document = json.loads((tmp_path / "run" / "config.json").read_text())
  assert "procedural renderer" in document["data"]["source"]
  assert document["settings"]["dataset_config"] == "small"


def test_ground_truth_accepts_random_state_as_disentanglement_lib_passes():
  gt = data.ground_truth("dsprites", config="small", source="render")
  state = np.random.RandomState(0)
  factors = gt.sample_factors(50, state)
  assert factors.shape == (50, 5) and factors.dtype == np.int64
  assert np.all(factors < np.asarray(gt.factor_sizes)) and np.all(factors >= 0)
  again = gt.sample_factors(50, np.random.RandomState(0))
  np.testing.assert_array_equal(factors, again)
  _, images = gt.sample(3, np.random.RandomState(1))
  assert images.shape == (3, 64, 64, 1)


def test_unknown_names_are_one_line_listing_the_choices():
  with pytest.raises(configs.ConfigError, match="--prior must be one of gaussian, anisotropic"):
    configs.make("clustering", prior="laplace")
  with pytest.raises(configs.ConfigError, match="--network=conv64 takes 64x64xC images"):
    configs.make("clustering", network="conv64")
  with pytest.raises(configs.ConfigError, match="unknown settings colour"):
    configs.make("clustering", colour="red")
