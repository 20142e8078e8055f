"""Reading a training run directory back: its settings and its trained model.

A run directory is what `trainers.train` writes: config.json (the resolved settings), checkpoints/
(weights after each epoch), history.csv, metrics.json, tensorboard/ and plots/.
"""

import dataclasses
import json
import os

from trainers import configs

__all__ = ["RunError", "load_config", "load_run"]


class RunError(ValueError):
  """A run directory that cannot be read; the message says which file and why."""


def load_config(run_dir) -> configs.Config:
  """The `Config` a run was trained with, from `<run_dir>/config.json`.

  Raises:
    RunError: if the file is missing or not a tfdecomp run's config.
  """
  path = os.path.join(os.fspath(run_dir), "config.json")
  if not os.path.exists(path):
    raise RunError(f"{path} not found: --run must be a directory written by tfdecomp-train.")
  try:
    with open(path, encoding="utf-8") as f:
      settings = json.load(f)["settings"]
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    raise RunError(f"{path} is not a tfdecomp run config ({e}).") from None
  names = {field.name for field in dataclasses.fields(configs.Config)}
  return configs.Config(**{k: v for k, v in settings.items() if k in names})


def load_run(run_dir, x_sample=None):
  """Rebuilds a run's model and loads its newest checkpoint.

  Args:
    run_dir: the run directory.
    x_sample: optional examples [N, ...] of the run's data (their shape builds the networks); by
      default a few examples of its evaluation split are loaded.

  Returns:
    (model, config, epochs_done): the compiled `DecompVAE` with trained weights.

  Raises:
    RunError: if the run has no complete checkpoint or its files cannot be read.
  """
  from trainers import train  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  from tfdecomp import callbacks  # pylint: disable=g-import-not-at-top
  config = load_config(run_dir)
  if x_sample is None:
    x_sample, _ = train.load_arrays(config, config.eval_split, num=max(64, config.latent_dim))
  model = train.build_model(config, x_sample)
  train.compile_model(model, config, steps_per_epoch=1)
  checkpoints = os.path.join(os.fspath(run_dir), "checkpoints")
  epochs_done, _ = callbacks.RunCheckpoint.restore(model, checkpoints)
  if not epochs_done:
    raise RunError(f"{checkpoints} holds no complete checkpoint: the run has not finished an "
                   "epoch yet.")
  return model, config, epochs_done
