"""The training procedure: from a `Config` to a trained, evaluated run directory.

  import tfdecomp
  config = tfdecomp.configs.make("clustering", epochs=50, seed=1)
  result = tfdecomp.training.train(config, "runs/my-run")   # resumes if the run exists
  result.metrics["elbo"], result.model.encode(x)

`train` does, in order:
  1. data: the training stream (`tfdecomp.data.training_data`: the batch of step t a pure
     function of (seed, t)), examples for data-dependent priors, and the evaluation split;
  2. the run directory (`tfdecomp.runs.RunDirectory`): config.json, or a check that an existing
     run holds the same settings;
  3. the model: `tfdecomp.seeds.initialize(seed)`, then `tfdecomp.builders.build_model` and
     `compile_model`, so that preparing a data set (which draws random numbers) cannot change
     the initial weights;
  4. resume from the newest readable checkpoint, if any;
  5. `fit` with the run's callbacks (`tfdecomp.callbacks`): checkpoints + history.csv every
     `checkpoint_seconds` (and after the last epoch, and on Ctrl-C), TensorBoard
     (`tfdecomp.tensorboard`: curves, images, histograms, config, HParams), NaN stop, progress
     line; validation on the evaluation split (`validation_split`: every epoch, or every K
     epochs when an epoch is short);
  6. the test-set loss terms to metrics.json, the SavedModel to `<run>/export/<version>/`
     (`tfdecomp.export`, TF Serving's layout), and the figures to plots/.

Errors a user can fix are `tfdecomp.configs.ConfigError` (settings, including those that only
fail against the data), `tfdecomp.data.DataError` / `FileNotFoundError` (data),
`tfdecomp.runs.RunError` (run directory); a non-finite loss raises `NonFiniteLoss` after keeping
the last good checkpoint; a KeyboardInterrupt during training checkpoints the newest finished
epoch and raises `Interrupted` (a KeyboardInterrupt): rerunning the same call resumes exactly.
"""

import dataclasses
import math
import os
import sys
import time
from typing import Any, Callable, List, Optional, Sequence

from tfdecomp import configs as configs_lib
from tfdecomp import runs as runs_lib

__all__ = ["train", "TrainResult", "NonFiniteLoss", "Interrupted", "EVAL_EXAMPLES",
           "CHECKPOINT_SECONDS"]

#: Evaluation examples for the test-set loss and the figures.
EVAL_EXAMPLES = 10000

#: Evaluation examples of the validation curves during training (`validation_split`).
VALIDATION_EXAMPLES = 2000
#: A validation pass may have this share of an epoch's steps (else it runs every K epochs).
VALIDATION_SHARE = 0.1
#: Examples of TensorBoard's images and latent histograms (the fixed evaluation batch).
TENSORBOARD_EXAMPLES = 1000


#: Default seconds of training between checkpoints (one is also written after the last epoch
#: and on interruption).
CHECKPOINT_SECONDS = 60.0


class NonFiniteLoss(RuntimeError):
  """Training stopped on a NaN/inf loss; the last good checkpoint was kept."""


class Interrupted(KeyboardInterrupt):
  """Training was interrupted (Ctrl-C, or SIGTERM where the caller turns it into
  KeyboardInterrupt, as the entry points do); the newest finished epoch was checkpointed.

  Attributes:
    epochs_done: the epochs in the newest checkpoint (0 if none).
    run_dir: the run directory.
  """

  def __init__(self, message, epochs_done, run_dir):
    super().__init__(message)
    self.epochs_done = epochs_done
    self.run_dir = run_dir


@dataclasses.dataclass
class TrainResult:
  """What `train` returns.

  Attributes:
    run_dir: the run directory (written by the chief under multi-worker training).
    config: the config trained.
    model: the trained `DecompVAE`.
    metrics: the test-set loss terms written to metrics.json.
    history: one dict per finished epoch (as history.csv).
    epochs: epochs finished in total.
    steps: optimizer steps taken in total.
    resumed_from: epochs that were already done when this call started.
    seconds: wall time of this call.
    figures: paths of the figures written.
  """
  run_dir: str
  config: configs_lib.Config
  model: Any
  metrics: dict
  history: List[dict]
  epochs: int
  steps: int
  resumed_from: int
  seconds: float
  figures: List[str]


def train(config: configs_lib.Config, out, *, data_dir: Optional[str] = None,
          manual_dir: Optional[str] = None, command: Optional[str] = None,
          callbacks: Sequence = (), progress: bool = True, stream=None,
          warn: Optional[Callable[[str], None]] = None, figures: bool = True,
          checkpoint_seconds: Optional[float] = CHECKPOINT_SECONDS,
          checkpoint_epochs: Optional[int] = None, strategy=None) -> TrainResult:
  """Trains (or resumes) the run of `config` in the directory `out`.

  Args:
    config: a resolved, validated config (`tfdecomp.configs.make`).
    out: the run directory; an existing run with the same settings is resumed after its last
      finished epoch (with more `epochs`, training continues).
    data_dir: TFDS data directory (default `tfdecomp.data.default_data_dir()`).
    manual_dir: directory with manually downloaded files (Fashion-MNIST, official dSprites).
    command: the command line that started the run, recorded in config.json.
    callbacks: more Keras callbacks for `fit`.
    progress: draw the progress line on `stream`.
    stream: where progress and notes go (default stderr).
    warn: receives one line per warning about the run directory (skipped checkpoints).
    figures: write the figures to plots/.
    checkpoint_seconds: seconds of training between checkpoints (0: after every epoch; None:
      only after the last epoch and on interruption).
    checkpoint_epochs: also checkpoint every this many epochs (None: no epoch interval).
    strategy: "auto" (None), "mirrored", "multiworker" or a `tf.distribute.Strategy`
      (`tfdecomp.distribute`); the model, optimizer and metrics are built in its scope and each
      global batch is split over its replicas (multi-worker: `tfdecomp.distributed_loop`; the
      chief writes `out`, the other workers a temporary directory). Not a setting of the run: a
      run may resume under another one.

  Returns:
    A `TrainResult`.

  Raises:
    ConfigError, DataError, FileNotFoundError, RunError: see the module docstring.
    NonFiniteLoss: when training hit a NaN/inf loss.
    Interrupted: on KeyboardInterrupt during training, after checkpointing.
    WorkerLost: (`tfdecomp.distributed_loop`) under multi-worker, when another worker died.
  """
  from tfdecomp import distributed_loop  # pylint: disable=g-import-not-at-top
  strategy = _strategy(strategy, config)  # Multi-worker: before any other TensorFlow op.
  chief = distributed_loop.is_chief(strategy)
  with distributed_loop.output_dir(strategy, out) as written:  # A temporary dir on non-chiefs.
    result = _train(config, written, data_dir=data_dir, manual_dir=manual_dir, command=command,
                    callbacks=callbacks, progress=progress and chief, stream=stream, warn=warn,
                    figures=figures and chief, checkpoint_seconds=checkpoint_seconds,
                    checkpoint_epochs=checkpoint_epochs, strategy=strategy)
  return result if chief else dataclasses.replace(result, run_dir=os.fspath(out))


def _train(config, out, *, data_dir, manual_dir, command, callbacks, progress, stream, warn,
           figures, checkpoint_seconds, checkpoint_epochs, strategy):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfdecomp import builders  # pylint: disable=g-import-not-at-top
  from tfdecomp import callbacks as callbacks_lib  # pylint: disable=g-import-not-at-top
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  from tfdecomp import distributed_loop  # pylint: disable=g-import-not-at-top
  from tfdecomp import plots  # pylint: disable=g-import-not-at-top
  from tfdecomp import seeds  # pylint: disable=g-import-not-at-top

  stream = stream or sys.stderr
  start = time.monotonic()
  run = runs_lib.RunDirectory(out)
  if os.path.exists(run.path) and not os.path.isdir(run.path):
    raise runs_lib.RunError(f"--out={run.path} is a file, not a directory; choose a directory.")
  data_kwargs = {"data_dir": data_dir, "manual_dir": manual_dir}

  # 1. Data.
  training = _training_data(config, data_kwargs)
  example = data.load_numpy(config.dataset_name, "train", max_examples=config.pca_examples,
                            **data_kwargs)
  x_eval, labels = data.load_arrays(config.dataset_name, config.eval_split,
                                    max_examples=EVAL_EXAMPLES, **data_kwargs)
  steps_per_epoch = training.steps_per_epoch

  # 2. The run directory.
  run.create(config, command=command, extra={"data": {
      "source": training.source, "train_examples": training.num_examples,
      "steps_per_epoch": steps_per_epoch}})

  # 3. The model, seeded after the data, in the strategy's scope.
  seeds.initialize(config.seed)
  with strategy.scope():
    model = builders.build_model(config, example)
    builders.compile_model(model, config, steps_per_epoch)

  # 4. Resume.
  epochs_done, state = distributed_loop.restore(strategy, run, model, warn=warn)
  history = list(state["history"]) if state else []
  if epochs_done:
    stream.write(f"resuming {run.path} after epoch {epochs_done}/{config.epochs}\n")
    training = training.from_step(epochs_done * steps_per_epoch)

  # 5. Fit.
  nonfinite = callbacks_lib.StopOnNonFinite()
  checkpoint = callbacks_lib.RunCheckpoint(run, state={"config": config.to_dict()},
                                           history=history, nonfinite=nonfinite,
                                           every_seconds=checkpoint_seconds,
                                           every_epochs=checkpoint_epochs)
  if epochs_done < config.epochs:
    from tfdecomp import tensorboard  # pylint: disable=g-import-not-at-top
    validation = validation_split(x_eval, config, steps_per_epoch, epochs_done)
    fit_callbacks = [nonfinite, checkpoint, callbacks_lib.ValidationNoise(),
                     tensorboard.DecompTensorBoard(
                         run.tensorboard_dir, examples=x_eval[:TENSORBOARD_EXAMPLES],
                         labels=None if labels is None else labels[:TENSORBOARD_EXAMPLES],
                         config=config, seed=config.seed, trial_id=os.path.basename(
                             os.path.normpath(run.path))),
                     *callbacks]
    if progress:
      fit_callbacks.append(callbacks_lib.RunProgress(config.epochs, steps_per_epoch, epochs_done,
                                                     stream=stream))
    try:
      distributed_loop.fit(model, training, epochs=config.epochs, initial_epoch=epochs_done,
                           steps_per_epoch=steps_per_epoch, callbacks=fit_callbacks, run=run,
                           **validation)
    except KeyboardInterrupt:
      saved = checkpoint.flush() or epochs_done
      raise Interrupted(f"interrupted; the checkpoint of epoch {saved}/{config.epochs} is in "
                        f"{run.checkpoints_dir}: rerun the same command to resume",
                        saved, run.path) from None
  if nonfinite.message:
    kept = checkpoint.last_saved_epoch or epochs_done
    raise NonFiniteLoss(f"{nonfinite.message}; kept the last good checkpoint "
                        f"(epoch {kept}) in {run.checkpoints_dir}")
  history = checkpoint.history
  if history:  # Also repairs a history.csv damaged since the checkpoint was written.
    run.write_history(history)

  # 6. Test-set loss terms and figures.
  eval_n = (len(x_eval) // config.batch_size) * config.batch_size or len(x_eval)
  model.reset_eval_noise()  # The test-set noise: a function of (seed, step), resumed or not.
  results = distributed_loop.evaluate(model, x_eval[:eval_n],
                                     batch_size=min(config.batch_size, eval_n))
  metrics = {"split": config.eval_split, "examples": int(eval_n),
             "epochs": config.epochs, **{k: float(v) for k, v in results.items()}}
  run.write_metrics(metrics)
  from tfdecomp import tensorboard  # pylint: disable=g-import-not-at-top
  tensorboard.write_metrics(run.tensorboard_dir, metrics, step=config.epochs)
  from tfdecomp import export as export_lib  # pylint: disable=g-import-not-at-top
  if epochs_done < config.epochs or not export_lib.versions(export_lib.run_export_base(run.path)):
    export_lib.export_run(model, config, run.path, config.epochs)  # <run>/export/<version>/
  written = (plots.run_figures(model, config, history, np.asarray(x_eval), labels, run.plots_dir,
                              final=metrics) if figures else [])
  return TrainResult(run_dir=run.path, config=config, model=model, metrics=metrics,
                     history=history, epochs=config.epochs,
                     steps=int(model.optimizer.iterations.numpy()), resumed_from=epochs_done,
                     seconds=time.monotonic() - start, figures=written)


def validation_split(x_eval, config, steps_per_epoch: int, epochs_done: int = 0) -> dict:
  """`fit`'s validation arguments: the first VALIDATION_EXAMPLES evaluation examples (whole
  batches), evaluated after epoch 1 and every K epochs.

  K = ceil(validation steps / (VALIDATION_SHARE * steps per epoch)): every epoch when a
  validation pass has at most 10% of an epoch's steps (dSprites, Fashion-MNIST), every K epochs
  for the sets whose epochs are short (pinwheel's one-step epochs: K = 10; digits: K = 3).
  """
  batch = config.batch_size
  n = min(len(x_eval), VALIDATION_EXAMPLES)
  n = (n // batch) * batch or n
  val_steps = max(1, math.ceil(n / batch))
  every = max(1, math.ceil(val_steps / (VALIDATION_SHARE * max(1, steps_per_epoch))))
  # Not "and the last epoch": the schedule must not depend on `epochs`, which a resumed run may
  # raise, or history.csv would differ from an uninterrupted run's.
  epochs = sorted({1, *range(every, config.epochs + 1, every)} - set(range(1, epochs_done + 1)))
  return {"validation_data": (x_eval[:n],), "validation_batch_size": min(batch, n),
          "validation_freq": epochs}


def _training_data(config, data_kwargs):
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  try:
    return data.training_data(
        config.dataset_name, "train", batch_size=config.batch_size, seed=config.seed,
        epochs=config.epochs, steps_per_epoch=config.steps_per_epoch,
        **data_kwargs)
  except data.DataError as e:
    if "larger than" in str(e):
      raise configs_lib.ConfigError(f"--batch_size={config.batch_size}: {e}") from None
    raise


def _strategy(strategy, config):
  from tfdecomp import distribute  # pylint: disable=g-import-not-at-top
  try:
    strategy = distribute.get(strategy)
    distribute.check_batch(strategy, config.batch_size)
  except ValueError as e:
    raise configs_lib.ConfigError(str(e)) from None
  return strategy
