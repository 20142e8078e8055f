"""Keras callbacks of a training run: Keras's own where they do the job, ours where Keras lacks one.

TensorBoard is `tfdecomp.tensorboard.DecompTensorBoard` (curves, images, latent histograms,
config, HParams); `TensorBoard` here is that class, kept under its old name.

Ours (Keras has no equivalent):
  RunCheckpoint    on a time (or epoch) interval, after the last epoch, and on interruption,
                   writes the model's and optimizer's weights and the run state (epochs done,
                   history) atomically into the run directory (`tfdecomp.runs.RunDirectory`);
                   `keras.callbacks.ModelCheckpoint` is neither atomic nor resumable with the
                   run's history, and `BackupAndRestore` keeps one non-atomic backup and deletes
                   it when training ends.
  StopOnNonFinite  stops training at the first non-finite loss and names the optimizer step
                   (`keras.callbacks.TerminateOnNaN` stops too, but says nothing of where, and
                   the step it sees with steps_per_execution > 1 is the call's, not the step's).
  ValidationNoise  resets the evaluation noise before each validation pass (`fit` has no hook
                   for the validation's seeds), so a resumed run's validation curves are exact.
  RunProgress      one progress line for the whole run (epochs and steps), redrawn in place on a
                   terminal and printed every ~10% otherwise. Keras's `ProgbarLogger` draws one
                   bar per epoch (500 lines for the 500 one-step epochs of the pinwheel preset)
                   and writes terminal escape codes into log files; RunProgress takes Keras's
                   rule for the remaining time (measured after the first step, so the compile
                   time is not extrapolated).
"""

import math
import sys
import time

import keras
import numpy as np

from tfdecomp import progress as progress_lib
from tfdecomp import runs as runs_lib

__all__ = ["TensorBoard", "RunCheckpoint", "StopOnNonFinite", "RunProgress", "ValidationNoise"]


def _as_float_logs(logs):
  out = {}
  for key, value in (logs or {}).items():
    try:
      out[key] = float(value)
    except (TypeError, ValueError):
      continue
  return out


def __getattr__(name):
  if name == "TensorBoard":  # The decomposition TensorBoard; imported on use (protobufs).
    from tfdecomp import tensorboard  # pylint: disable=g-import-not-at-top
    return tensorboard.DecompTensorBoard
  raise AttributeError(f"module 'tfdecomp.callbacks' has no attribute {name!r}")


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


class ValidationNoise(keras.callbacks.Callback):
  """Resets the model's evaluation noise at the start of each validation pass
  (`DecompVAE.reset_eval_noise`), so the validation curves of a resumed run equal an
  uninterrupted run's. Models without `reset_eval_noise` are left alone."""

  def on_test_begin(self, logs=None):
    reset = getattr(self.model, "reset_eval_noise", None)
    if reset is not None:
      reset()


class RunCheckpoint(keras.callbacks.Callback):
  """Checkpoints a run on a time (or epoch) interval, at the end of training and on interruption.

  A checkpoint is the model's and optimizer's weights plus the run state (epochs done, history),
  written atomically by `tfdecomp.runs.RunDirectory.save_checkpoint` at an epoch boundary, so a
  rerun resumes exactly. It is written after a finished epoch when `every_seconds` have passed
  since the last one (or every `every_epochs` epochs), after the run's last epoch, and by
  `flush()`: at the end of `fit` (also after a stop on a non-finite loss) and when the caller
  catches an interruption (`tfdecomp.training.train` does, for KeyboardInterrupt — which the
  entry points also raise on SIGTERM). Between checkpoints, the newest finished epoch is kept
  in memory (a copy of the variables, taken outside the compiled step), so `flush()` saves
  exactly the state of that epoch's end even when training has moved on into the next one.
  history.csv is rewritten with every checkpoint (the rows of its epochs).

  Writing the pair every epoch costs about 70 ms on a 2-core machine, which dominated runs of
  many short epochs (the pinwheel preset: 500 epochs of one step).

  Args:
    run: the `tfdecomp.runs.RunDirectory` (or its path).
    keep: how many checkpoints to keep (older ones are deleted).
    state: optional dict of extra JSON-able entries stored with every checkpoint.
    history: rows already recorded (from a restored checkpoint), extended at each epoch.
    nonfinite: optional `StopOnNonFinite`; epochs it stopped are not saved.
    every_seconds: seconds of training between checkpoints (0: after every epoch; None: no
      time interval).
    every_epochs: also checkpoint after every this many epochs (None: no epoch interval).
    clock: the time source (seconds), for tests.
  """

  def __init__(self, run, keep=2, state=None, history=None, nonfinite=None, every_seconds=60.0,
               every_epochs=None, clock=time.monotonic):
    super().__init__()
    if every_seconds is not None and every_seconds < 0:
      raise ValueError(f"every_seconds must be >= 0 or None, got {every_seconds}")
    if every_epochs is not None and every_epochs < 1:
      raise ValueError(f"every_epochs must be >= 1 or None, got {every_epochs}")
    self.run = run if isinstance(run, runs_lib.RunDirectory) else runs_lib.RunDirectory(run)
    self.keep = keep
    self.state = dict(state or {})
    self.history = list(history or [])
    self.nonfinite = nonfinite
    self.every_seconds = every_seconds
    self.every_epochs = every_epochs
    self.clock = clock
    self.last_saved_epoch = None
    self._last_save_time = None
    self._pending = None  # (epochs_done, rows of history, variable values) not yet saved.

  def _variables(self):
    return list(self.model.weights) + list(self.model.optimizer.variables)

  def on_train_begin(self, logs=None):
    self._last_save_time = self.clock()

  def _due(self, epochs_done):
    if epochs_done >= (self.params or {}).get("epochs", float("inf")):
      return True
    if self.every_epochs is not None and epochs_done % self.every_epochs == 0:
      return True
    if self.every_seconds is None:
      return False
    if self._last_save_time is None:
      self._last_save_time = self.clock()
    return self.clock() - self._last_save_time >= self.every_seconds

  def on_epoch_end(self, epoch, logs=None):
    logs = _as_float_logs(logs)
    if self.nonfinite is not None and self.nonfinite.message is not None:
      return
    if not all(math.isfinite(v) for v in logs.values()):
      return
    epochs_done = epoch + 1
    self.history.append({"epoch": epochs_done, **logs})
    if self._due(epochs_done):
      self._save(epochs_done)
    else:
      self._pending = (epochs_done, len(self.history),
                       [np.array(v.numpy(), copy=True) for v in self._variables()])

  def on_train_end(self, logs=None):
    self.flush()

  def flush(self):
    """Saves the newest finished epoch if it is not saved yet; returns the newest saved epoch."""
    if self._pending is None:
      return self.last_saved_epoch
    epochs_done, rows, values = self._pending
    variables = self._variables()
    current = [np.array(v.numpy(), copy=True) for v in variables]
    for variable, value in zip(variables, values):
      variable.assign(value)
    try:
      self._save(epochs_done, rows)
    finally:
      for variable, value in zip(variables, current):
        variable.assign(value)
    return self.last_saved_epoch

  def _save(self, epochs_done, rows=None):
    history = self.history[:rows] if rows is not None else self.history
    self.run.save_checkpoint(self.model, epochs_done, {**self.state, "history": history},
                             keep=self.keep)
    self.run.write_history(history)
    self.last_saved_epoch = epochs_done
    self._last_save_time = self.clock()
    self._pending = None


class RunProgress(keras.callbacks.Callback):
  """A single progress line over the whole run: epoch, step, rate and the loss components.

  On a terminal the line is redrawn in place (at most every `interval` seconds); otherwise a line
  is printed about every 10% of the run, and once at the end. The remaining time is estimated
  from the steps after the first one (which includes compiling the step), as Keras's `Progbar`
  does.

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
    self._after_first = None  # (time, steps done) after the first step.
    self._last_draw = 0.0
    self._last_decile = -1
    self._finished = False
    self._logs = {}

  @property
  def total_steps(self):
    return (self.epochs - self.initial_epoch) * self.steps_per_epoch

  def on_train_begin(self, logs=None):
    self._start = time.monotonic()

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    self._logs = _as_float_logs(logs)
    self._draw(batch + 1)

  def on_epoch_end(self, epoch, logs=None):
    self._logs = _as_float_logs(logs)
    self._draw(self.steps_per_epoch, final=epoch + 1 == self.epochs)

  def on_train_end(self, logs=None):
    if self.tty and self._start is not None:
      self.stream.write("\n")
      self.stream.flush()

  def _eta(self, now, done):
    if self._after_first is None:
      self._after_first = (now, done)
      return None
    t0, d0 = self._after_first
    if done <= d0:
      return None
    return (now - t0) / (done - d0) * (self.total_steps - done)

  def _draw(self, step_in_epoch, final=False):
    if self._finished:
      return
    now = time.monotonic()
    total = self.total_steps
    done = (self._epoch - self.initial_epoch) * self.steps_per_epoch + min(
        step_in_epoch, self.steps_per_epoch)
    fraction = done / total if total else 1.0
    eta = self._eta(now, done)
    final = final or done >= total
    if self.tty:
      if not final and now - self._last_draw < self.interval:
        return
    else:
      decile = int(fraction * 10)
      if decile == self._last_decile and not final:
        return
      self._last_decile = decile
    self._finished = final
    self._last_draw = now
    values = " ".join(f"{k} {self._logs[k]:.4g}" for k in self.keys if k in self._logs)
    line = (f"epoch {self._epoch + 1}/{self.epochs} "
            + progress_lib.bar_line(fraction, now - self._start, eta, final) + f" {values}")
    progress_lib.write_line(self.stream, line, self.tty)
