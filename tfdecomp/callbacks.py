"""Keras callbacks for training runs: checkpoints with resume, TensorBoard scalars, progress, NaNs.

  RunCheckpoint    after every finished epoch, writes the model's and optimizer's weights and the
                   run state (epochs done, history) atomically; `RunCheckpoint.restore` resumes.
  EpochSummaries   TensorBoard scalars of every logged metric at each epoch end.
  StopOnNonFinite  stops training at the first non-finite loss and names the optimizer step.
  ProgressBar      one live line over the whole run (epochs and steps) with the loss components.

Atomicity: every file is written under a temporary name in the same directory and renamed, so a
SIGKILL leaves either the previous or the new version. A checkpoint is the pair
`ckpt-EEEEE.weights.h5` + `ckpt-EEEEE.json`; the JSON is written last and marks the pair complete.
"""

import glob
import json
import math
import os
import re
import sys
import tempfile
import time

import keras
import tensorflow as tf

__all__ = ["RunCheckpoint", "EpochSummaries", "StopOnNonFinite", "ProgressBar",
           "atomic_write_text", "write_history_csv"]


def atomic_write_text(path, text):
  """Writes `text` to `path` through a temporary file and a rename."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_history_csv(path, history):
  """Writes [{column: value}] rows (one per epoch) as CSV, atomically."""
  columns = []
  for row in history:
    columns += [k for k in row if k not in columns]
  lines = [",".join(columns)]
  for row in history:
    lines.append(",".join(
        "" if c not in row else str(int(row[c])) if c == "epoch" else repr(float(row[c]))
        for c in columns))
  atomic_write_text(path, "\n".join(lines) + "\n")


def _as_float_logs(logs):
  out = {}
  for key, value in (logs or {}).items():
    try:
      out[key] = float(value)
    except (TypeError, ValueError):
      continue
  return out


class StopOnNonFinite(keras.callbacks.Callback):
  """Stops training at the first NaN/inf loss, naming the optimizer step.

  The step comes from `model.nonfinite_tracker` (`DecompVAE` records the first non-finite step
  inside the compiled step, so it is exact even with `steps_per_execution` > 1); for other
  models it is bounded by the optimizer's iteration count. After a stop, `message` holds one line
  describing it and `step` the step (1-based count of optimizer updates).
  """

  def __init__(self):
    super().__init__()
    self.message = None
    self.step = None
    self.epoch = 0

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is None or math.isfinite(float(loss)):
      return
    tracker = getattr(self.model, "nonfinite_tracker", None)
    step = int(tracker.result()) if tracker is not None else -1
    if step < 0:
      step = int(self.model.optimizer.iterations.numpy()) - 1
    self.step = step + 1
    self.message = (f"training stopped: non-finite loss ({float(loss)}) at optimizer step "
                    f"{self.step} (epoch {self.epoch + 1})")
    self.model.stop_training = True


class RunCheckpoint(keras.callbacks.Callback):
  """Saves weights (model + optimizer) and the run state after every finished epoch.

  Args:
    directory: the checkpoints directory.
    keep: how many checkpoints to keep (older ones are deleted).
    state: optional dict of extra JSON-able entries stored with every checkpoint.
    history: rows already recorded (from `restore`), extended at each epoch.
    on_saved: optional callable(epochs_done, history) run after each save (e.g. to rewrite
      history.csv from the same rows).
    nonfinite: optional `StopOnNonFinite`; epochs it stopped are not saved.
  """

  _PATTERN = re.compile(r"ckpt-(\d+)\.json$")

  def __init__(self, directory, keep=2, state=None, history=None, on_saved=None,
               nonfinite=None):
    super().__init__()
    self.directory = os.fspath(directory)
    self.keep = keep
    self.state = dict(state or {})
    self.history = list(history or [])
    self.on_saved = on_saved
    self.nonfinite = nonfinite
    self.last_saved_epoch = None

  @classmethod
  def latest(cls, directory):
    """(epochs_done, weights_path, state) of the newest complete checkpoint, or None."""
    best = None
    for path in glob.glob(os.path.join(os.fspath(directory), "ckpt-*.json")):
      match = cls._PATTERN.search(path)
      if not match:
        continue
      epochs_done = int(match.group(1))
      weights = path[:-len(".json")] + ".weights.h5"
      if os.path.exists(weights) and (best is None or epochs_done > best[0]):
        best = (epochs_done, weights, path)
    if best is None:
      return None
    with open(best[2], encoding="utf-8") as f:
      return best[0], best[1], json.load(f)

  @classmethod
  def restore(cls, model, directory):
    """Loads the newest complete checkpoint into `model` (built and compiled).

    Returns:
      (epochs_done, state) or (0, None) when there is no checkpoint.
    """
    found = cls.latest(directory)
    if found is None:
      return 0, None
    epochs_done, weights, state = found
    if not model.optimizer.built:
      model.optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    return epochs_done, state

  def on_epoch_end(self, epoch, logs=None):
    logs = _as_float_logs(logs)
    if self.nonfinite is not None and self.nonfinite.message is not None:
      return
    if not all(math.isfinite(v) for v in logs.values()):
      return
    epochs_done = epoch + 1
    self.history.append({"epoch": epoch, **logs})
    os.makedirs(self.directory, exist_ok=True)
    stem = os.path.join(self.directory, f"ckpt-{epochs_done:05d}")
    tmp = os.path.join(self.directory, f".tmp-ckpt-{epochs_done:05d}.weights.h5")
    self.model.save_weights(tmp, overwrite=True)
    os.replace(tmp, stem + ".weights.h5")
    state = {**self.state, "epochs_done": epochs_done,
             "optimizer_steps": int(self.model.optimizer.iterations.numpy()),
             "history": self.history}
    atomic_write_text(stem + ".json", json.dumps(state))
    self.last_saved_epoch = epochs_done
    self._prune(epochs_done)
    if self.on_saved is not None:
      self.on_saved(epochs_done, self.history)

  def _prune(self, newest):
    for path in glob.glob(os.path.join(self.directory, "ckpt-*.json")):
      match = self._PATTERN.search(path)
      if match and int(match.group(1)) <= newest - self.keep:
        for p in (path, path[:-len(".json")] + ".weights.h5"):
          try:
            os.remove(p)
          except FileNotFoundError:
            pass


class EpochSummaries(keras.callbacks.Callback):
  """Writes every logged metric as a TensorBoard scalar at each epoch end (step = epoch + 1).

  Args:
    logdir: the TensorBoard directory (scalars go to `logdir/train`, "val_" metrics to
      `logdir/validation`, under the unprefixed name).
  """

  def __init__(self, logdir):
    super().__init__()
    self.logdir = os.fspath(logdir)
    self._writers = {}

  def _writer(self, name):
    if name not in self._writers:
      self._writers[name] = tf.summary.create_file_writer(os.path.join(self.logdir, name))
    return self._writers[name]

  def on_epoch_end(self, epoch, logs=None):
    for key, value in _as_float_logs(logs).items():
      split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
      with self._writer(split).as_default():
        tf.summary.scalar(f"epoch_{tag}", value, step=epoch + 1)
    for writer in self._writers.values():
      writer.flush()

  def on_train_end(self, logs=None):
    for writer in self._writers.values():
      writer.close()
    self._writers = {}


class ProgressBar(keras.callbacks.Callback):
  """A single progress line over the whole run: epoch, step, rate and the loss components.

  On a terminal the line is redrawn in place (at most every `interval` seconds); otherwise a line
  is printed about every 10% of the run.

  Args:
    epochs: the run's last epoch (total).
    steps_per_epoch: optimizer steps per epoch.
    initial_epoch: epochs already done (resumed run).
    keys: logged metrics to show.
    stream: output stream (default stderr).
    interval: minimum seconds between redraws on a terminal.
  """

  def __init__(self, epochs, steps_per_epoch, initial_epoch=0,
               keys=("loss", "reconstruction", "kl", "divergence", "elbo"), stream=None,
               interval=0.2):
    super().__init__()
    self.epochs = epochs
    self.steps_per_epoch = max(1, int(steps_per_epoch))
    self.initial_epoch = initial_epoch
    self.keys = keys
    self.stream = stream or sys.stderr
    self.interval = interval
    self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
    self._epoch = initial_epoch
    self._start = None
    self._last_draw = 0.0
    self._last_decile = -1
    self._logs = {}

  def on_train_begin(self, logs=None):
    self._start = time.monotonic()

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    self._logs = _as_float_logs(logs)
    self._draw(batch + 1)

  def on_epoch_end(self, epoch, logs=None):
    self._logs = _as_float_logs(logs)
    self._draw(self.steps_per_epoch, force=epoch + 1 == self.epochs)

  def on_train_end(self, logs=None):
    if self.tty:
      self.stream.write("\n")
      self.stream.flush()

  def _draw(self, step_in_epoch, force=False):
    now = time.monotonic()
    total = (self.epochs - self.initial_epoch) * self.steps_per_epoch
    done = (self._epoch - self.initial_epoch) * self.steps_per_epoch + min(
        step_in_epoch, self.steps_per_epoch)
    fraction = done / total if total else 1.0
    if self.tty:
      if not force and now - self._last_draw < self.interval:
        return
    else:
      decile = int(fraction * 10)
      if decile == self._last_decile and not force:
        return
      self._last_decile = decile
    self._last_draw = now
    elapsed = now - self._start
    eta = elapsed / fraction - elapsed if fraction > 0 else float("nan")
    width = 24
    filled = int(round(width * fraction))
    bar = "=" * filled + "." * (width - filled)
    values = " ".join(f"{k} {self._logs[k]:.4g}" for k in self.keys if k in self._logs)
    line = (f"epoch {self._epoch + 1}/{self.epochs} [{bar}] {100 * fraction:3.0f}% "
            f"{elapsed:.0f}s<{eta:.0f}s {values}")
    if line == getattr(self, "_last_line", None):
      return
    self._last_line = line
    if self.tty:
      self.stream.write("\r" + line[:200] + "\x1b[K")
    else:
      self.stream.write(line + "\n")
    self.stream.flush()
