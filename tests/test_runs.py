"""The run directory keeps its promises: resume is exact, faults fall back, files are readable."""

import json
import os
import signal
import stat

import numpy as np
import pytest

import keras

from tfdecomp import configs
from tfdecomp import runs
from tfdecomp import training


def _clustering(**kwargs):
  return configs.make("clustering", **{"epochs": 3, **kwargs})


def _history(out):
  with open(os.path.join(out, "history.csv"), encoding="utf-8") as f:
    return f.read()


def _train(config, out, **kwargs):
  return training.train(config, str(out), progress=False, figures=False, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("preset, overrides", [
    ("clustering", {}),
    # The streamed path: dSprites rendered by index, a few steps of a small factor grid.
    ("independence", dict(dataset_config="small", batch_size=16, steps_per_epoch=3,
                          steps_per_execution=1)),
])
def test_resume_draws_exactly_what_an_uninterrupted_run_draws(tmp_path, preset, overrides):
  full = configs.make(preset, epochs=4, **overrides)
  half = configs.make(preset, epochs=2, **overrides)
  _train(full, tmp_path / "whole")
  _train(half, tmp_path / "resumed")
  result = _train(full, tmp_path / "resumed")
  assert result.resumed_from == 2
  assert _history(tmp_path / "whole") == _history(tmp_path / "resumed")
  assert len(_history(tmp_path / "whole").splitlines()) == 1 + 4


def test_preparing_the_data_does_not_change_what_training_draws(tmp_path):
  """The first run on an empty data directory prepares the data set (which draws random
  numbers) and must still give the same history as a run on the prepared directory."""
  data_dir = str(tmp_path / "empty_data_dir")
  _train(_clustering(), tmp_path / "first", data_dir=data_dir)
  _train(_clustering(), tmp_path / "second", data_dir=data_dir)
  assert _history(tmp_path / "first") == _history(tmp_path / "second")


def _latest(out):
  return runs.RunDirectory(out).checkpoints()[0]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["weights", "state", "history"])
def test_a_damaged_file_is_skipped_with_one_warning(tmp_path, damage):
  out = tmp_path / "run"
  _train(_clustering(), out, checkpoint_seconds=0)  # A checkpoint after every epoch.
  reference = tmp_path / "reference"
  _train(_clustering(epochs=4), reference)
  newest = _latest(out)
  assert newest.epochs_done == 3
  if damage == "weights":
    os.truncate(newest.weights_path, 1000)
  elif damage == "state":
    with open(newest.state_path, "w", encoding="utf-8") as f:
      f.write('{"epochs_done": 3, "hist')
  else:
    with open(out / "history.csv", "w", encoding="utf-8") as f:
      f.write("garbage\x00")
  warnings = []
  result = _train(_clustering(epochs=4), out, warn=warnings.append)
  if damage == "history":
    assert warnings == [] and result.resumed_from == 3
    assert _history(out) == _history(reference)  # Rewritten from the checkpoint's history.
  else:
    assert len(warnings) == 1 and os.path.basename(
        newest.weights_path if damage == "weights" else newest.state_path) in warnings[0]
    assert result.resumed_from == 2
    # Epochs 3 and 4 are trained again from the intact checkpoint of epoch 2, exactly.
    assert _history(out) == _history(reference)


def test_no_readable_checkpoint_is_one_clear_error(tmp_path):
  out = tmp_path / "run"
  _train(_clustering(epochs=2), out, checkpoint_seconds=0)
  for checkpoint in runs.RunDirectory(out).checkpoints():
    os.truncate(checkpoint.weights_path, 100)
  with pytest.raises(runs.RunError, match="no checkpoint .* can be read"):
    _train(_clustering(epochs=4), out, warn=lambda line: None)


def test_out_naming_a_file_is_refused(tmp_path):
  path = tmp_path / "a_file"
  path.write_text("x")
  with pytest.raises(runs.RunError, match="is a file"):
    _train(_clustering(epochs=1), path)


def test_a_corrupt_config_is_one_clear_error(tmp_path):
  out = tmp_path / "run"
  _train(_clustering(epochs=1), out)
  (out / "config.json").write_text("{not json")
  with pytest.raises(runs.RunError, match="config.json is not a readable"):
    _train(_clustering(epochs=2), out)


def test_files_respect_the_umask(tmp_path):
  old = os.umask(0o027)
  try:
    out = tmp_path / "run"
    training.train(_clustering(epochs=1), str(out), progress=False)
  finally:
    os.umask(old)
  checked = 0
  for root, dirs, files in os.walk(out):
    for name in dirs:
      assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o750, name
    for name in files:
      mode = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
      assert mode == 0o640, (os.path.join(root, name), oct(mode))
      checked += 1
  names = {name for _, _, files in os.walk(out) for name in files}
  assert {"config.json", "history.csv", "metrics.json", "aggregate_posterior.png"} <= names
  assert checked >= 8


def test_config_json_records_the_run(tmp_path):
  out = tmp_path / "run"
  _train(_clustering(epochs=1), out, command="tfdecomp-train --epochs=1")
  document = json.loads((out / "config.json").read_text())
  assert document["command"] == "tfdecomp-train --epochs=1"
  assert document["settings"]["prior_variance_scale"] == 0.03
  assert "in memory" in document["data"]["source"]
  assert np.isfinite(json.loads((out / "metrics.json").read_text())["loss"])


def test_every_epoch_takes_exactly_its_steps_whatever_steps_per_execution(tmp_path):
  # 7 steps per epoch and 4 steps per compiled call: a call that does not divide the epoch.
  config = configs.make("clustering", epochs=3, batch_size=50, steps_per_epoch=7,
                        steps_per_execution=4)
  result = _train(config, tmp_path / "run")
  assert result.steps == 21


class _Clock:
  """A clock that advances `tick` seconds per reading."""

  def __init__(self, tick):
    self.now, self.tick = 0.0, tick

  def __call__(self):
    self.now += self.tick
    return self.now


def _record_saves(monkeypatch):
  saved = []
  real = runs.RunDirectory.save_checkpoint

  def recording(self, model, epochs_done, state, keep=2):
    saved.append(epochs_done)
    assert [row["epoch"] for row in state["history"]] == list(range(1, epochs_done + 1))
    return real(self, model, epochs_done, state, keep=keep)

  monkeypatch.setattr(runs.RunDirectory, "save_checkpoint", recording)
  return saved


def test_checkpoints_follow_the_epoch_interval_and_the_last_epoch(tmp_path, monkeypatch):
  saved = _record_saves(monkeypatch)
  _train(_clustering(epochs=7), tmp_path / "run", checkpoint_seconds=None, checkpoint_epochs=3)
  assert saved == [3, 6, 7]
  assert [c.epochs_done for c in runs.RunDirectory(tmp_path / "run").checkpoints()] == [7, 6]


def test_checkpoints_follow_the_time_interval(tmp_path, monkeypatch):
  """every_seconds=2.5 with a clock advancing 1 s per reading: readings at train begin (1) and
  after epochs 1, 2, 3 (2, 3, 4: due, reset to 4), 4, 5, 6 (5, 6, 7: due) make epochs 3 and 6
  due; the last epoch (7) is always saved, and each saved history holds exactly its epochs."""
  from tfdecomp import callbacks
  saved = _record_saves(monkeypatch)
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(optimizer="adam", loss="mse")
  checkpoint = callbacks.RunCheckpoint(runs.RunDirectory(tmp_path / "run"), every_seconds=2.5,
                                       clock=_Clock(1.0))
  os.makedirs(tmp_path / "run" / "checkpoints")
  model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=7, verbose=0, callbacks=[checkpoint])
  assert saved == [3, 6, 7]
  with pytest.raises(ValueError, match="every_seconds"):
    callbacks.RunCheckpoint(tmp_path, every_seconds=-1)


class _KillAt(keras.callbacks.Callback):
  """Sends this process SIGTERM after the step of epoch `epoch` (1-based), before its end."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch
    self._current = None

  def on_epoch_begin(self, epoch, logs=None):
    self._current = epoch + 1

  def on_train_batch_end(self, batch, logs=None):
    if self._current == self.epoch:
      os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_mid_epoch_checkpoints_the_last_finished_epoch_and_resume_is_exact(tmp_path):
  """SIGTERM (turned into KeyboardInterrupt as the entry points do) arrives after epoch 3's
  step has changed the weights: the checkpoint must hold epoch 2's weights, not the current
  ones, so that the rerun reproduces the uninterrupted history exactly."""
  from trainers import _cli
  _train(_clustering(epochs=5), tmp_path / "whole")
  previous = signal.getsignal(signal.SIGTERM)
  _cli.interrupt_on_sigterm()
  try:
    with pytest.raises(training.Interrupted, match="epoch 2/5") as raised:
      _train(_clustering(epochs=5), tmp_path / "run", callbacks=[_KillAt(3)],
             checkpoint_seconds=None)
  finally:
    signal.signal(signal.SIGTERM, previous)
  assert isinstance(raised.value, KeyboardInterrupt) and raised.value.epochs_done == 2
  assert [c.epochs_done for c in runs.RunDirectory(tmp_path / "run").checkpoints()] == [2]
  assert len(_history(tmp_path / "run").splitlines()) == 1 + 2
  result = _train(_clustering(epochs=5), tmp_path / "run")
  assert result.resumed_from == 2
  assert _history(tmp_path / "run") == _history(tmp_path / "whole")
