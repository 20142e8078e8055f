"""The run directory: what a training run holds, written atomically, read back by `load_run`.

  <run>/config.json          every resolved setting ("settings"), the seed, package versions,
                             the command that started the run, where the data came from
  <run>/checkpoints/         ckpt-EEEEE.weights.h5 (model + optimizer) and ckpt-EEEEE.json (run
                             state: epochs done, optimizer steps, history); the JSON is written
                             last and marks the pair complete; the newest `keep` pairs are kept
  <run>/history.csv          one row per finished epoch (epochs counted from 1, as the progress
                             line and TensorBoard count them)
  <run>/metrics.json         the test-set loss terms of the trained model; the evaluator adds
                             its results under "evaluation"
  <run>/tensorboard/         TensorBoard logs (train/, validation/)
  <run>/plots/               figures

Every file is written under a temporary name in its directory and renamed (`tfdecomp._io`), with
the umask's permissions. A checkpoint that cannot be read (truncated, corrupt) is skipped with one
warning naming it, and the newest readable one is used; a run is resumed by rerunning the same
command on the same directory.
"""

import datetime
import glob
import json
import os
import re
import warnings
from typing import Callable, List, Optional, Tuple

from tfdecomp import _io
from tfdecomp import configs as configs_lib

__all__ = ["RunDirectory", "RunError", "RunWarning", "Checkpoint", "load_config", "load_run",
           "write_history_csv", "read_history_csv"]

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
_CHECKPOINT = re.compile(r"^ckpt-(\d+)\.json$")


class RunError(ValueError):
  """A run directory that cannot be used as asked; the message names the file and the fix."""


class RunWarning(UserWarning):
  """Something in a run directory was skipped (e.g. an unreadable checkpoint)."""


def _warn(message: str) -> None:
  warnings.warn(message, RunWarning, stacklevel=3)


def write_history_csv(path, history: List[dict]) -> None:
  """Writes [{column: value}] rows (one per epoch, "epoch" counted from 1) as CSV, atomically."""
  columns = []
  for row in history:
    columns += [k for k in row if k not in columns]
  lines = [",".join(columns)]
  for row in history:
    lines.append(",".join(
        "" if c not in row else str(int(row[c])) if c == "epoch" else repr(float(row[c]))
        for c in columns))
  _io.atomic_write_text(path, "\n".join(lines) + "\n")


def read_history_csv(path) -> List[dict]:
  """The rows of a history CSV as dicts of floats ("epoch" as int)."""
  import csv  # pylint: disable=g-import-not-at-top
  with open(path, newline="", encoding="utf-8") as f:
    return [{k: int(v) if k == "epoch" else float(v) for k, v in row.items() if v != ""}
            for row in csv.DictReader(f)]


class Checkpoint:
  """One complete checkpoint: `epochs_done`, its weights file and its state dict."""

  def __init__(self, epochs_done: int, weights_path: str, state_path: str):
    self.epochs_done = epochs_done
    self.weights_path = weights_path
    self.state_path = state_path

  def read_state(self) -> dict:
    """The run state; raises ValueError/OSError if the JSON is unreadable."""
    with open(self.state_path, encoding="utf-8") as f:
      state = json.load(f)
    if not isinstance(state, dict) or int(state.get("epochs_done", -1)) != self.epochs_done:
      raise ValueError(f"{self.state_path} does not describe epoch {self.epochs_done}.")
    return state

  def __repr__(self):
    return f"Checkpoint({self.epochs_done}, {self.weights_path!r})"


class RunDirectory:
  """The files of one training run (see the module docstring).

  Args:
    path: the run directory (need not exist yet).
  """

  def __init__(self, path):
    self.path = os.fspath(path)

  # ---- paths --------------------------------------------------------------------------------

  def join(self, *names) -> str:
    return os.path.join(self.path, *names)

  @property
  def config_path(self) -> str:
    return self.join(CONFIG_FILE)

  @property
  def checkpoints_dir(self) -> str:
    return self.join("checkpoints")

  @property
  def tensorboard_dir(self) -> str:
    return self.join("tensorboard")

  @property
  def plots_dir(self) -> str:
    return self.join("plots")

  @property
  def history_path(self) -> str:
    return self.join(HISTORY_FILE)

  @property
  def metrics_path(self) -> str:
    return self.join(METRICS_FILE)

  @property
  def export_dir(self) -> str:
    """Where the run's versioned SavedModels go (`<run>/export/<version>/`)."""
    return self.join("export")

  # ---- config ------------------------------------------------------------------------------

  def exists(self) -> bool:
    return os.path.exists(self.config_path)

  def read_document(self) -> dict:
    """The whole config.json document.

    Raises:
      RunError: if it is missing or unreadable.
    """
    if not os.path.exists(self.config_path):
      raise RunError(f"{self.config_path} not found: {self.path} is not a directory written by "
                     "tfdecomp-train.")
    try:
      with open(self.config_path, encoding="utf-8") as f:
        document = json.load(f)
      document["settings"]  # pylint: disable=pointless-statement
      return document
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise RunError(f"{self.config_path} is not a readable tfdecomp run config ({e}); restore "
                     "it or start a new run with another --out.") from None

  def read_config(self) -> configs_lib.Config:
    """The `Config` the run was trained with."""
    try:
      return configs_lib.Config.from_dict(self.read_document()["settings"])
    except TypeError as e:
      raise RunError(f"{self.config_path} lacks settings ({e}).") from None

  def create(self, config: configs_lib.Config, *, command: Optional[str] = None,
             extra: Optional[dict] = None, versions: Optional[dict] = None) -> dict:
    """Creates the run directory, or checks that an existing one holds the same settings.

    Args:
      config: the resolved config.
      command: the command that started the run, as the user typed it.
      extra: more entries for config.json (e.g. {"data": {"source": ...}}).
      versions: package versions (default: `package_versions()`).

    Returns:
      The config.json document.

    Raises:
      RunError: if `path` is a file, or holds a run with different settings.
    """
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise RunError(f"--out={self.path} is a file, not a directory; choose a directory.")
    settings = config.to_dict()
    if self.exists():
      previous = self.read_document().get("settings", {})
      old = {k: v for k, v in previous.items() if k not in configs_lib.RESUMABLE}
      new = {k: v for k, v in settings.items() if k not in configs_lib.RESUMABLE}
      if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise RunError(
            f"--out={self.path} holds a run with different settings ({', '.join(diff)}); choose "
            "a new --out or rerun with the same flags to resume.")
    document = {"settings": settings, "seed": config.seed,
                "versions": versions or package_versions(), "command": command,
                "written": datetime.datetime.now().isoformat(timespec="seconds"),
                **(extra or {})}
    try:
      for sub in (self.checkpoints_dir, self.tensorboard_dir, self.plots_dir):
        os.makedirs(sub, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
      raise RunError(f"cannot create the run directory {self.path}: {e}") from None
    _io.atomic_write_text(self.config_path, json.dumps(document, indent=2) + "\n")
    return document

  # ---- checkpoints -------------------------------------------------------------------------

  def checkpoints(self) -> List[Checkpoint]:
    """The complete checkpoints (weights and state present), newest first."""
    found = []
    for state_path in glob.glob(os.path.join(self.checkpoints_dir, "ckpt-*.json")):
      match = _CHECKPOINT.match(os.path.basename(state_path))
      if not match:
        continue
      weights = state_path[:-len(".json")] + ".weights.h5"
      if os.path.exists(weights):
        found.append(Checkpoint(int(match.group(1)), weights, state_path))
    return sorted(found, key=lambda c: c.epochs_done, reverse=True)

  def save_checkpoint(self, model, epochs_done: int, state: dict, keep: int = 2) -> Checkpoint:
    """Writes the weights (model + optimizer) and then the state of `epochs_done`, atomically.

    Args:
      model: the compiled model.
      epochs_done: epochs finished.
      state: JSON-able run state (history, ...); epochs_done and optimizer_steps are added.
      keep: how many checkpoints to keep (older ones are deleted).
    """
    stem = os.path.join(self.checkpoints_dir, f"ckpt-{epochs_done:05d}")
    with _io.atomic_path(stem + ".weights.h5", suffix=".weights.h5") as tmp:
      model.save_weights(tmp, overwrite=True)
    state = {**state, "epochs_done": int(epochs_done),
             "optimizer_steps": int(model.optimizer.iterations.numpy())}
    _io.atomic_write_text(stem + ".json", json.dumps(state))
    for old in self.checkpoints()[keep:]:
      for path in (old.state_path, old.weights_path):
        try:
          os.remove(path)
        except FileNotFoundError:
          pass
    return Checkpoint(epochs_done, stem + ".weights.h5", stem + ".json")

  def restore(self, model, warn: Optional[Callable[[str], None]] = None
              ) -> Tuple[int, Optional[dict]]:
    """Loads the newest readable checkpoint into `model` (built and compiled).

    Unreadable checkpoints (corrupt JSON, truncated weights) are skipped, each with one warning
    naming the file.

    Args:
      model: the model, compiled (its optimizer's variables are restored too).
      warn: receives one line per skipped checkpoint (default: a `RunWarning`).

    Returns:
      (epochs_done, state), or (0, None) when there is no (readable) checkpoint.

    Raises:
      RunError: if checkpoints exist but none of them can be read.
    """
    warn = warn or _warn
    found = self.checkpoints()
    if not found:
      return 0, None
    if not model.optimizer.built:
      model.optimizer.build(model.trainable_variables)
    skipped = []
    for checkpoint in found:
      try:
        state = checkpoint.read_state()
      except (OSError, ValueError, TypeError) as e:
        warn(f"skipped checkpoint {checkpoint.state_path}: unreadable ({_first_line(e)})")
        skipped.append(checkpoint.state_path)
        continue
      try:
        model.load_weights(checkpoint.weights_path)
      except Exception as e:  # pylint: disable=broad-except  (h5py raises OSError, KeyError, ...)
        warn(f"skipped checkpoint {checkpoint.weights_path}: unreadable ({_first_line(e)})")
        skipped.append(checkpoint.weights_path)
        continue
      return checkpoint.epochs_done, state
    raise RunError(f"no checkpoint in {self.checkpoints_dir} can be read ({', '.join(skipped)}); "
                   "remove the directory to start again.")

  # ---- history and metrics -----------------------------------------------------------------

  def write_history(self, history: List[dict]) -> None:
    write_history_csv(self.history_path, history)

  def read_metrics(self) -> dict:
    """metrics.json as a dict ({} if absent; an unreadable file is reported and ignored)."""
    if not os.path.exists(self.metrics_path):
      return {}
    try:
      with open(self.metrics_path, encoding="utf-8") as f:
        document = json.load(f)
      return document if isinstance(document, dict) else {}
    except (OSError, ValueError) as e:
      _warn(f"ignored unreadable {self.metrics_path} ({_first_line(e)})")
      return {}

  def write_metrics(self, metrics: dict, keep_evaluation: bool = True) -> None:
    """Writes the trained model's test-set terms, keeping an earlier "evaluation" entry."""
    document = dict(metrics)
    if keep_evaluation and "evaluation" in self.read_metrics():
      document["evaluation"] = self.read_metrics()["evaluation"]
    _io.atomic_write_text(self.metrics_path, json.dumps(document, indent=2) + "\n")

  def update_metrics(self, key: str, value) -> str:
    """Sets one entry of metrics.json (e.g. "evaluation"), keeping the others; returns the path."""
    document = self.read_metrics()
    document[key] = value
    _io.atomic_write_text(self.metrics_path, json.dumps(document, indent=2) + "\n")
    return self.metrics_path


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def package_versions() -> dict:
  """Versions of Python and of the packages a run depends on."""
  import platform  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  import tfdecomp  # pylint: disable=g-import-not-at-top
  return {"python": platform.python_version(), "tensorflow": tf.__version__,
          "keras": keras.__version__, "tensorflow_probability": tfp.__version__,
          "numpy": np.__version__, "tfdecomp": tfdecomp.__version__}


def load_config(run_dir) -> configs_lib.Config:
  """The `Config` a run was trained with, from `<run_dir>/config.json`.

  Raises:
    RunError: if the file is missing or not a tfdecomp run's config.
  """
  return RunDirectory(run_dir).read_config()


def load_run(run_dir, warn: Optional[Callable[[str], None]] = None):
  """Rebuilds a run's model and loads its newest readable checkpoint.

  No data is read: the networks are built from the data set's declared example shape (a
  data-dependent prior's variances come from the checkpoint).

  Args:
    run_dir: the run directory.
    warn: receives one line per skipped (unreadable) checkpoint.

  Returns:
    (model, config, epochs_done): the compiled `DecompVAE` with trained weights.

  Raises:
    RunError: if the run has no readable checkpoint or its files cannot be read.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfdecomp import builders  # pylint: disable=g-import-not-at-top
  run = RunDirectory(run_dir)
  config = run.read_config()
  shape = tuple(config.dataset_spec.example_shape)
  placeholder = np.ones((max(64, config.latent_dim), *shape), np.float32)
  model = builders.build_model(config, placeholder)
  builders.compile_model(model, config, steps_per_epoch=1)
  epochs_done, _ = run.restore(model, warn=warn)
  if not epochs_done:
    raise RunError(f"{run.checkpoints_dir} holds no complete checkpoint: the run has not "
                   "finished an epoch yet.")
  return model, config, epochs_done
