"""Sweeps: a grid of settings x seeds, one run directory per grid point and seed, resumable,
runnable as independent commands, collected into tables, TensorBoard HParams data and figures.

  import tfdecomp
  sweep = tfdecomp.sweeps.define("clustering", "beta=0,1;alpha=0,1", seeds=(0, 1, 2),
                                 overrides={"epochs": 100}, out="sweeps/pinwheel")
  tfdecomp.sweeps.run_all(sweep)              # sequential; finished runs are skipped
  tfdecomp.sweeps.run(sweep, 3)               # only run 3 (what one job of an array does)
  tfdecomp.sweeps.collect("sweeps/pinwheel")  # results.csv, results.md, tensorboard/, plots/

A grid is text, axes separated by ';' and values by ',': "beta=0,0.5,1;alpha=0,1,10;prior=
gaussian,student_t". An axis is any `tfdecomp.configs.Config` field (the trainer's flags carry the
same names) except `experiment` (a sweep is one preset), `seed` (the sweep's seeds) and
`mixture_locs` (its values contain the separators: give it as a fixed setting). Values are typed
by the field (numbers, true/false, names; "none" for a setting that may be left to its default).
Every grid point is resolved and validated (`tfdecomp.configs.make`) before anything is written or
trained; errors are `SweepError`s (or `ConfigError`s for fixed settings), one line naming the axis.

The sweep directory:
  <out>/sweep.json            the definition: experiment, grid, seeds, fixed settings, evaluation
                              settings, and the runs (index, name, grid point, seed)
  <out>/runs/<name>/          one `tfdecomp.runs.RunDirectory` per grid point and seed, named by
                              its settings ("beta=0,alpha=1,seed=2"); its metrics.json holds the
                              evaluation ("evaluation") and the sweep's record ("sweep": timings,
                              or the failure of a run whose loss became non-finite)
  <out>/results.csv           one row per run: settings, seed, status, final training losses
                              ("train.*"), test-set terms ("test.*"), every scalar metric
                              ("factor_vae.train_accuracy", "likelihood.iwae", ...), timings
  <out>/results_summary.csv   one row per grid point: mean and std over seeds of every column
  <out>/results.md            the Markdown table: mean +- std over seeds (sample std, ddof = 1)
  <out>/tensorboard/          the HParams dashboard's data (tensorboard --logdir <out>/tensorboard)
  <out>/plots/                the sweep figures that apply (`tfdecomp.sweep_plots`)

Runs are numbered grid point by grid point (the first axis varies slowest), seeds innermost.
A run is *done* when it has trained all its epochs and holds an evaluation made with the sweep's
evaluation settings; done runs are skipped, an interrupted run resumes from its newest checkpoint
(`tfdecomp.training.train`), a trained but unevaluated run is only evaluated, and a run that
stopped on a non-finite loss is recorded as failed and skipped on later passes (delete its
directory to retry). Rerunning a sweep with more `epochs` (or other `configs.RESUMABLE` settings)
or other evaluation settings continues its runs; any other change of the definition is refused.
"""

import csv
import dataclasses
import datetime
import gc
import io
import json
import math
import os
import re
import shutil
import time
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfdecomp import _io
from tfdecomp import configs as configs_lib
from tfdecomp import runs as runs_lib

__all__ = ["SweepError", "Axis", "Evaluation", "RunSpec", "Sweep", "RunOutcome", "Collected",
           "NOT_AXES", "parse_grid", "format_grid", "format_value", "run_name", "define", "load",
           "status", "run", "run_all", "index_command", "collect", "read_results", "aggregate",
           "markdown_table", "table_columns", "write_hparams"]

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
FORMAT = 1

#: Config fields that cannot be grid axes, and why.
NOT_AXES = {
    "experiment": "a sweep is one preset: give it as --experiment",
    "seed": "seeds are the sweep's own: use --seeds=N (and --seed=S for the first)",
    "mixture_locs": "its values contain ',' and ';': give it as a fixed --mixture_locs",
}

#: Run statuses (see the module docstring).
STATUSES = ("new", "partial", "trained", "done", "failed")

_SAFE = re.compile(r"[^A-Za-z0-9._+-]")


class SweepError(ValueError):
  """An invalid sweep (grid, seeds, evaluation settings, directory); one line naming the fix."""


# ---------------------------------------------------------------------------------------------
# Grid.


@dataclasses.dataclass(frozen=True)
class Axis:
  """One grid axis: a `Config` field and the values it takes."""
  name: str
  values: Tuple[Any, ...]


def _field_types() -> Dict[str, Any]:
  return typing.get_type_hints(configs_lib.Config)


def _base_type(hint) -> Tuple[Any, bool]:
  """(X, optional) of X or Optional[X]."""
  if typing.get_origin(hint) is typing.Union:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0], True
  return hint, False


def _parse_value(axis: str, text: str, hint) -> Any:
  kind, optional = _base_type(hint)
  if optional and text.lower() in ("none", "default"):
    return None
  if kind is bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1"):
      return True
    if lowered in ("false", "no", "0"):
      return False
    raise SweepError(f"grid axis {axis}: {text!r} is not true or false.")
  if kind is int:
    try:
      return int(text)
    except ValueError:
      raise SweepError(f"grid axis {axis}: {text!r} is not an integer.") from None
  if kind is float:
    try:
      return float(text)
    except ValueError:
      raise SweepError(f"grid axis {axis}: {text!r} is not a number.") from None
  if kind is str:
    return text
  raise SweepError(f"grid axis {axis}: values of this setting cannot be given in a grid.")


def parse_grid(text) -> Tuple[Axis, ...]:
  """Parses "name=v1,v2;name=v1,..." into axes, typed by the `Config` fields.

  Args:
    text: the grid (empty: no axes, a sweep over seeds only), or axes already parsed (a sequence
      of `Axis` or of (name, values) pairs, or a {name: values} dict), which are checked likewise.

  Returns:
    The axes, in the order given.

  Raises:
    SweepError: for a malformed axis, an unknown setting, a setting that cannot be an axis, an
      empty axis, a value of the wrong type, or a repeated axis or value; the message names the
      axis.
  """
  types = _field_types()
  if isinstance(text, str):
    pairs = []
    for part in text.split(";"):
      part = part.strip()
      if not part:
        continue
      name, eq, values = part.partition("=")
      name = name.strip().lstrip("-")
      if not eq or not name:
        raise SweepError(f"grid axis {part!r} must look like name=value,value (axes separated "
                         "by ';').")
      pairs.append((name, [v.strip() for v in values.split(",")] if values.strip() else []))
  elif isinstance(text, dict):
    pairs = list(text.items())
  else:
    pairs = [(a.name, a.values) if isinstance(a, Axis) else tuple(a) for a in text]
  axes = []
  for name, values in pairs:
    if name in NOT_AXES:
      raise SweepError(f"grid axis {name}: cannot be an axis ({NOT_AXES[name]}).")
    if name not in types:
      axable = sorted(n for n in types if n not in NOT_AXES)
      raise SweepError(f"grid axis {name}: unknown setting; axes are the trainer's settings: "
                       f"{', '.join(axable)}.")
    if any(a.name == name for a in axes):
      raise SweepError(f"grid axis {name} is given twice.")
    values = list(values)
    if not values:
      raise SweepError(f"grid axis {name} has no values (write {name}=value,value).")
    parsed = []
    for value in values:
      if isinstance(value, str):
        if not value:
          raise SweepError(f"grid axis {name} has an empty value.")
        value = _parse_value(name, value, types[name])
      if value in parsed:
        raise SweepError(f"grid axis {name}: value {format_value(value)} is given twice.")
      parsed.append(value)
    axes.append(Axis(name, tuple(parsed)))
  return tuple(axes)


def format_value(value) -> str:
  """A setting's value as it appears in run names, tables and grids: 0.5, 100, true, none."""
  if value is None:
    return "none"
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, float):
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
      return str(int(value))
    return repr(value)
  return str(value)


def format_grid(axes: Sequence[Axis]) -> str:
  """The canonical text of a grid (`parse_grid(format_grid(axes)) == axes`)."""
  return ";".join(f"{a.name}={','.join(format_value(v) for v in a.values)}" for a in axes)


def run_name(point: Dict[str, Any], seed: int) -> str:
  """The run directory name of a grid point and seed: "beta=0,alpha=1,seed=2"."""
  parts = [f"{name}={_SAFE.sub('-', format_value(value))}" for name, value in point.items()]
  return ",".join(parts + [f"seed={int(seed)}"])


# ---------------------------------------------------------------------------------------------
# Definition.


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """How each run is evaluated after training (`tfdecomp.evaluation.evaluate_dataset`).

  Attributes:
    enabled: evaluate at all (otherwise a run is done once trained).
    metrics: metric names (`tfdecomp.evaluation.METRICS`); None = all that apply.
    seed: seed of the metrics' sampling.
    max_examples: evaluation examples for sparsity, clustering and the likelihood pool.
    likelihood_examples: examples of the ELBO/IWAE estimates.
    iwae_samples: importance samples K of the IWAE bound (0: none).
    student_t_mapping: map Student-t codes to Normal ones before scoring.
    metric_args: per-metric keyword arguments, e.g. {"factor_vae": {"variant": "paper"}}.
  """
  enabled: bool = True
  metrics: Optional[Tuple[str, ...]] = None
  seed: int = 0
  max_examples: int = 10000
  likelihood_examples: int = 1000
  iwae_samples: int = 1000
  student_t_mapping: bool = True
  metric_args: Dict[str, dict] = dataclasses.field(default_factory=dict)

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["metrics"] = list(self.metrics) if self.metrics is not None else None
    return d

  @classmethod
  def from_dict(cls, d: Optional[dict]) -> "Evaluation":
    d = dict(d or {})
    if d.get("metrics") is not None:
      d["metrics"] = tuple(d["metrics"])
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      raise SweepError(f"unknown evaluation settings {', '.join(unknown)}.")
    return cls(**d)

  def check(self) -> "Evaluation":
    """Validates the settings; returns self. Raises SweepError naming the setting."""
    from tfdecomp import evaluation  # pylint: disable=g-import-not-at-top
    if self.metrics is not None:
      if not self.metrics:
        raise SweepError("--metrics is empty; leave it out for all metrics that apply.")
      unknown = sorted(set(self.metrics) - set(evaluation.METRICS))
      if unknown:
        raise SweepError(f"--metrics: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(evaluation.METRICS)}.")
    for name in ("max_examples", "likelihood_examples"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepError(f"--{name} must be a positive integer; got {value!r}.")
    if isinstance(self.iwae_samples, bool) or not isinstance(self.iwae_samples, int) or (
        self.iwae_samples < 0):
      raise SweepError(f"--iwae_samples must be an integer >= 0; got {self.iwae_samples!r}.")
    if not isinstance(self.metric_args, dict) or not all(
        isinstance(v, dict) for v in self.metric_args.values()):
      raise SweepError("--metric_args must be a JSON object {metric: {argument: value}}.")
    unknown = sorted(set(self.metric_args) - set(evaluation.METRICS))
    if unknown:
      raise SweepError(f"--metric_args names unknown metrics {', '.join(unknown)}.")
    return self


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """One run of a sweep: its index, name, grid point, seed, resolved config and directory."""
  index: int
  name: str
  point: Dict[str, Any]
  seed: int
  config: configs_lib.Config
  path: str


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A validated sweep definition (`define`, `load`) and its runs."""
  experiment: str
  axes: Tuple[Axis, ...]
  seeds: Tuple[int, ...]
  overrides: Dict[str, Any]
  evaluation: Evaluation
  out: str
  runs: Tuple[RunSpec, ...]

  @property
  def grid(self) -> str:
    return format_grid(self.axes)

  @property
  def points(self) -> List[Dict[str, Any]]:
    """The grid points in run order, each once."""
    seen, points = set(), []
    for spec in self.runs:
      key = tuple(spec.point.items())
      if key not in seen:
        seen.add(key)
        points.append(dict(spec.point))
    return points

  def join(self, *names) -> str:
    return os.path.join(self.out, *names)

  @property
  def sweep_file(self) -> str:
    return self.join(SWEEP_FILE)

  def to_dict(self) -> dict:
    return {"format": FORMAT, "experiment": self.experiment, "grid": self.grid,
            "axes": [[a.name, list(a.values)] for a in self.axes], "seeds": list(self.seeds),
            "overrides": dict(self.overrides), "evaluation": self.evaluation.to_dict(),
            "runs": [{"index": r.index, "name": r.name, "point": r.point, "seed": r.seed}
                     for r in self.runs]}


def define(experiment: str, grid="", *, seeds: Sequence[int] = (0,),
           overrides: Optional[Dict[str, Any]] = None, evaluation: Optional[Evaluation] = None,
           out) -> Sweep:
  """Parses and validates a sweep; nothing is written.

  Args:
    experiment: a preset (`tfdecomp.configs.PRESETS`).
    grid: the grid (see `parse_grid`).
    seeds: the seeds of every grid point (distinct integers >= 0).
    overrides: settings applied to every run (`Config` fields; None values are ignored).
    evaluation: how runs are evaluated (default `Evaluation()`: all metrics that apply, the
      evaluator's defaults).
    out: the sweep directory.

  Returns:
    The `Sweep`, with every run's resolved config.

  Raises:
    ConfigError: for an unknown preset, or a fixed setting that is unknown or invalid.
    SweepError: for a bad grid (naming the axis, and the grid point when the value is only
      invalid together with other axes' values), grid points that resolve to the same settings,
      bad seeds or evaluation settings.
  """
  overrides = {k: v for k, v in dict(overrides or {}).items() if v is not None}
  configs_lib.get(experiment)  # An unknown preset fails first.
  axes = parse_grid(grid)
  for axis in axes:
    if axis.name in overrides:
      raise SweepError(f"--{axis.name} is both a grid axis and a fixed setting; give it once.")
  seeds = tuple(seeds)
  if not seeds:
    raise SweepError("--seeds must be at least 1.")
  for seed in seeds:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
      raise SweepError(f"seeds must be integers >= 0; got {seed!r}.")
  if len(set(seeds)) != len(seeds):
    raise SweepError(f"seeds must be distinct; got {list(seeds)}.")
  seeds = tuple(int(s) for s in seeds)
  evaluation = (evaluation or Evaluation()).check()
  points = [dict(zip([a.name for a in axes], values))
            for values in _product([a.values for a in axes])]
  resolved, seen = [], {}
  for point in points:
    try:
      config = configs_lib.make(experiment, **overrides, **point)
    except configs_lib.ConfigError as e:
      raise _blame(point, e) from None
    key = json.dumps(config.to_dict(), sort_keys=True)
    if key in seen:
      raise SweepError(
          f"grid points {_point_text(seen[key])} and {_point_text(point)} resolve to the same "
          "settings (a value that does not apply, e.g. alpha with --divergence=none); remove "
          "one.")
    seen[key] = point
    resolved.append((point, config))
  out = os.fspath(out)
  specs, names = [], set()
  for point, config in resolved:
    for seed in seeds:
      name = run_name(point, seed)
      if name in names:
        raise SweepError(f"two runs would be named {name}: use values that differ in their "
                         "letters and digits.")
      names.add(name)
      specs.append(RunSpec(index=len(specs), name=name, point=point, seed=seed,
                           config=config.replace(seed=seed),
                           path=os.path.join(out, RUNS_DIR, name)))
  return Sweep(experiment=experiment, axes=axes, seeds=seeds, overrides=overrides,
               evaluation=evaluation, out=out, runs=tuple(specs))


def _blame(point: dict, error: configs_lib.ConfigError) -> ValueError:
  """The error of an invalid grid point: a SweepError "grid axis beta=-1: <error>" naming the
  first axis the message names, else the ConfigError itself (a fixed setting is at fault)."""
  named = [n for n in re.findall(r"--(\w+)", str(error)) if n in point]
  if not named:
    return error
  others = {k: v for k, v in point.items() if k != named[0]}
  where = f" (at grid point {_point_text(point)})" if others else ""
  return SweepError(f"grid axis {named[0]}={format_value(point[named[0]])}{where}: {error}")


def _product(lists):
  result = [()]
  for values in lists:
    result = [r + (v,) for r in result for v in values]
  return result


def _point_text(point) -> str:
  return ",".join(f"{k}={format_value(v)}" for k, v in point.items()) or "(none)"


def _identity(document: dict) -> dict:
  """What must not change between passes over one sweep directory."""
  overrides = {k: v for k, v in document.get("overrides", {}).items()
               if k not in configs_lib.RESUMABLE}
  return {"experiment": document.get("experiment"), "grid": document.get("grid"),
          "seeds": document.get("seeds"), "overrides": overrides}


def load(out) -> Sweep:
  """The sweep defined in `<out>/sweep.json`.

  Raises:
    SweepError: if there is no readable sweep.json.
  """
  path = os.path.join(os.fspath(out), SWEEP_FILE)
  document = _read_document(path)
  if document is None:
    raise SweepError(f"{path} not found: {out} is not a sweep directory (written by "
                     "tfdecomp-sweep).")
  try:
    return define(document["experiment"], [Axis(n, tuple(v)) for n, v in document["axes"]],
                  seeds=document["seeds"], overrides=document["overrides"],
                  evaluation=Evaluation.from_dict(document.get("evaluation")), out=out)
  except (KeyError, TypeError) as e:
    raise SweepError(f"{path} is not a readable sweep definition ({e}).") from None


def _read_document(path) -> Optional[dict]:
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      document = json.load(f)
  except (OSError, ValueError) as e:
    raise SweepError(f"{path} is not readable ({e}); restore it or choose a new --out.") from None
  if not isinstance(document, dict):
    raise SweepError(f"{path} is not a sweep definition; choose a new --out.")
  return document


def write_definition(sweep: Sweep, command: Optional[str] = None) -> str:
  """Writes `<out>/sweep.json`, or checks that an existing one defines the same sweep.

  Returns:
    The path of sweep.json.

  Raises:
    SweepError: if the directory holds another sweep (the message names what differs).
  """
  if os.path.exists(sweep.out) and not os.path.isdir(sweep.out):
    raise SweepError(f"--out={sweep.out} is a file, not a directory; choose a directory.")
  document = {**sweep.to_dict(), "command": command,
              "written": datetime.datetime.now().isoformat(timespec="seconds")}
  previous = _read_document(sweep.sweep_file)
  if previous is not None:
    old, new = _identity(previous), _identity(document)
    if old != new:
      diff = [k for k in new if old.get(k) != new[k]]
      raise SweepError(f"--out={sweep.out} holds another sweep (its {', '.join(diff)} differ); "
                       "choose a new --out, or rerun with the same definition to continue it.")
  os.makedirs(os.path.join(sweep.out, RUNS_DIR), exist_ok=True)
  _io.atomic_write_text(sweep.sweep_file, json.dumps(document, indent=2) + "\n")
  return sweep.sweep_file


def index_command(sweep: Sweep, index: int, program: Sequence[str] = ("tfdecomp-sweep",),
                  extra: Sequence[str] = ()) -> str:
  """The command line that runs only run `index` of `sweep` (`tfdecomp-sweep ... --index=I`).

  Every command holds the whole definition, so each one is independent: a cluster scheduler may
  run them in any order, in parallel, into the same directory.

  Args:
    sweep: the sweep.
    index: the run.
    program: the command's head (e.g. ("python", "-m", "trainers.sweep")).
    extra: more arguments (e.g. --data_dir=...).

  Raises:
    SweepError: if the seeds are not consecutive (the command line gives --seed and --seeds).
  """
  import shlex  # pylint: disable=g-import-not-at-top
  first = sweep.seeds[0]
  if list(sweep.seeds) != list(range(first, first + len(sweep.seeds))):
    raise SweepError(f"seeds {list(sweep.seeds)} are not consecutive; a command line gives "
                     "--seed=S --seeds=N.")
  args = [f"--experiment={sweep.experiment}", f"--grid={sweep.grid}",
          f"--seeds={len(sweep.seeds)}", f"--seed={first}", f"--out={sweep.out}"]
  for name, value in sweep.overrides.items():
    args.append(f"--{name}={format_value(value)}")
  defaults, ev = Evaluation(), sweep.evaluation
  if not ev.enabled:
    args.append("--noevaluate")
  if ev.metrics is not None:
    args.append(f"--metrics={','.join(ev.metrics)}")
  for name, flag in (("seed", "eval_seed"), ("max_examples", "max_examples"),
                     ("likelihood_examples", "likelihood_examples"),
                     ("iwae_samples", "iwae_samples")):
    if getattr(ev, name) != getattr(defaults, name):
      args.append(f"--{flag}={getattr(ev, name)}")
  if not ev.student_t_mapping:
    args.append("--nostudent_t_mapping")
  if ev.metric_args:
    args.append(f"--metric_args={json.dumps(ev.metric_args, separators=(',', ':'))}")
  return shlex.join([*program, *args, *extra, f"--index={int(index)}"])


# ---------------------------------------------------------------------------------------------
# Running.


@dataclasses.dataclass
class RunOutcome:
  """What `run` did.

  Attributes:
    spec: the run.
    before: its status before (`STATUSES`).
    action: "skipped", "evaluated" (already trained), "trained" (and evaluated) or "failed".
    train_seconds: wall time of training in this call.
    evaluate_seconds: wall time of the evaluation in this call.
    message: a one-line note (the failure, why it was skipped).
  """
  spec: RunSpec
  before: str
  action: str
  train_seconds: float = 0.0
  evaluate_seconds: float = 0.0
  message: str = ""

  def describe(self) -> str:
    if self.action == "skipped":
      return f"skipped ({self.message})"
    if self.action == "failed":
      return f"FAILED: {self.message}"
    parts = []
    if self.action == "trained":
      epochs = self.spec.config.epochs
      parts.append(f"trained {epochs} epoch{'s' if epochs != 1 else ''} in "
                   f"{self.train_seconds:.0f}s" + (" (resumed)" if self.before == "partial"
                                                    else ""))
    if self.evaluate_seconds:
      parts.append(f"evaluated in {self.evaluate_seconds:.0f}s")
    return ", ".join(parts) or "done"


def _expected_arguments(evaluation: Evaluation) -> dict:
  return {"metrics": list(evaluation.metrics) if evaluation.metrics is not None else None,
          "seed": evaluation.seed, "max_examples": evaluation.max_examples,
          "likelihood_examples": evaluation.likelihood_examples,
          "iwae_samples": evaluation.iwae_samples,
          "student_t_mapping": evaluation.student_t_mapping,
          "metric_args": evaluation.metric_args}


def _trained_epochs(run_dir: runs_lib.RunDirectory, metrics: dict) -> int:
  """Epochs of the final training (0 unless metrics.json and a checkpoint agree)."""
  epochs = metrics.get("epochs")
  if not isinstance(epochs, int):
    return 0
  checkpoints = run_dir.checkpoints()
  return epochs if checkpoints and checkpoints[0].epochs_done == epochs else 0


def status(spec: RunSpec, evaluation: Optional[Evaluation] = None) -> str:
  """The state of one run: "new", "partial", "trained", "done" or "failed" (module docstring)."""
  evaluation = evaluation or Evaluation()
  run_dir = runs_lib.RunDirectory(spec.path)
  if not run_dir.exists():
    return "new"
  metrics = _quiet_metrics(run_dir)
  record = metrics.get("sweep") if isinstance(metrics.get("sweep"), dict) else {}
  if record.get("failed") and record.get("epochs") == spec.config.epochs:
    return "failed"
  if _trained_epochs(run_dir, metrics) != spec.config.epochs:
    return "partial"
  if not evaluation.enabled:
    return "done"
  document = metrics.get("evaluation")
  if not isinstance(document, dict):
    return "trained"
  arguments = document.get("arguments", {})
  expected = _expected_arguments(evaluation)
  if any(arguments.get(k) != v for k, v in expected.items()):
    return "trained"
  if document.get("model", {}).get("epochs_done") != spec.config.epochs:
    return "trained"
  return "done"


def _quiet_metrics(run_dir) -> dict:
  import warnings  # pylint: disable=g-import-not-at-top
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", runs_lib.RunWarning)
    return run_dir.read_metrics()


def evaluate_run(model, spec: RunSpec, evaluation: Evaluation, *, data_dir=None, manual_dir=None,
                 progress: Optional[Callable[[str], None]] = None) -> dict:
  """Evaluates a run's model with the sweep's settings; returns the "evaluation" document.

  The document has `tfdecomp-evaluate`'s shape ({"results", "arguments", "model"}), its arguments
  also naming the metrics requested (None: all that apply).
  """
  from tfdecomp import evaluation as evaluation_lib  # pylint: disable=g-import-not-at-top
  config = spec.config
  document = evaluation_lib.evaluate_dataset(
      model, config.dataset, dataset_config=config.dataset_config,
      metrics=list(evaluation.metrics) if evaluation.metrics is not None else None,
      seed=evaluation.seed, max_examples=evaluation.max_examples,
      likelihood_examples=evaluation.likelihood_examples, iwae_samples=evaluation.iwae_samples,
      student_t_mapping=evaluation.student_t_mapping, metric_args=evaluation.metric_args,
      data_dir=data_dir, manual_dir=manual_dir, progress=progress)
  document["arguments"].update(
      source=os.path.abspath(spec.path),
      **{k: v for k, v in _expected_arguments(evaluation).items()})
  document["model"] = {**config.to_dict(), "epochs_done": config.epochs}
  return document


def run(sweep: Sweep, index: int, *, data_dir: Optional[str] = None,
        manual_dir: Optional[str] = None, command: Optional[str] = None, progress: bool = True,
        stream=None, warn: Optional[Callable[[str], None]] = None, figures: bool = True,
        write: bool = True) -> RunOutcome:
  """Brings run `index` of `sweep` to "done": trains (or resumes) it, then evaluates it.

  Args:
    sweep: the sweep (`define` or `load`).
    index: the run, 0 <= index < len(sweep.runs).
    data_dir, manual_dir: see `tfdecomp.data`.
    command: the command line, recorded in the run's config.json.
    progress: draw training's progress line and the evaluation's lines on `stream`.
    stream: where progress goes (default stderr).
    warn: receives one line per warning about the run directory.
    figures: write the run's own figures (`tfdecomp.training.train`).
    write: write (or check) sweep.json first.

  Returns:
    A `RunOutcome`. A non-finite loss is an outcome ("failed", recorded in the run's
    metrics.json), not an exception, so that a sequential sweep carries on.

  Raises:
    SweepError: for an index out of range or a directory holding another sweep.
    ConfigError, DataError, FileNotFoundError, RunError: as `tfdecomp.training.train`.
  """
  import sys  # pylint: disable=g-import-not-at-top
  from tfdecomp import training  # pylint: disable=g-import-not-at-top
  if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
      0 <= index < len(sweep.runs)):
    raise SweepError(f"--index must be in 0..{len(sweep.runs) - 1} (the sweep has "
                     f"{len(sweep.runs)} runs); got {index!r}.")
  if write:
    write_definition(sweep, command=command)
  spec = sweep.runs[int(index)]
  stream = stream or sys.stderr
  before = status(spec, sweep.evaluation)
  if before == "done":
    return RunOutcome(spec, before, "skipped", message="done")
  run_dir = runs_lib.RunDirectory(spec.path)
  record = _quiet_metrics(run_dir).get("sweep", {}) if before != "new" else {}
  record = record if isinstance(record, dict) else {}
  if before == "failed":
    return RunOutcome(spec, before, "skipped",
                      message=f"failed earlier: {record.get('failed')}; delete {spec.path} to "
                              "retry")
  base = {"index": spec.index, "name": spec.name, "point": spec.point, "seed": spec.seed,
          "epochs": spec.config.epochs}
  start = time.monotonic()
  if before == "trained":
    model, _, _ = runs_lib.load_run(spec.path, warn=warn)
    train_seconds, action = 0.0, "evaluated"
    previous_train = float(record.get("train_seconds", 0.0) or 0.0)
  else:
    try:
      result = training.train(spec.config, spec.path, data_dir=data_dir, manual_dir=manual_dir,
                              command=command, progress=progress, stream=stream, warn=warn,
                              figures=figures)
    except training.NonFiniteLoss as e:
      message = str(e).splitlines()[0]
      run_dir.update_metrics("sweep", {**base, "failed": message})
      return RunOutcome(spec, before, "failed", time.monotonic() - start, message=message)
    model, action = result.model, "trained"
    train_seconds = time.monotonic() - start
    previous_train = float(record.get("train_seconds", 0.0) or 0.0) if before == "partial" else 0.0
  evaluate_seconds = 0.0
  if sweep.evaluation.enabled:
    start = time.monotonic()
    say = (lambda line: (stream.write(f"  {line}\n"), stream.flush())) if progress else None
    document = evaluate_run(model, spec, sweep.evaluation, data_dir=data_dir,
                            manual_dir=manual_dir, progress=say)
    run_dir.update_metrics("evaluation", document)
    from tfdecomp import tensorboard  # pylint: disable=g-import-not-at-top
    tensorboard.write_evaluation(run_dir.tensorboard_dir, document, step=spec.config.epochs)
    evaluate_seconds = time.monotonic() - start
  run_dir.update_metrics("sweep", {
      **base, "train_seconds": round(previous_train + train_seconds, 3),
      "evaluate_seconds": round(evaluate_seconds, 3),
      "finished": datetime.datetime.now().isoformat(timespec="seconds")})
  del model
  return RunOutcome(spec, before, action, train_seconds, evaluate_seconds)


def run_all(sweep: Sweep, indices: Optional[Sequence[int]] = None, *,
            report: Optional[Callable[[str], None]] = None, **kwargs) -> List[RunOutcome]:
  """Runs the sweep's runs one after the other (`run`); finished runs are skipped.

  Args:
    sweep: the sweep.
    indices: the runs (default: all).
    report: receives one line per run ("[3/18] beta=0,alpha=1,seed=0: trained ...").
    **kwargs: passed to `run`.

  Returns:
    One `RunOutcome` per run.
  """
  import keras  # pylint: disable=g-import-not-at-top
  indices = range(len(sweep.runs)) if indices is None else list(indices)
  command = kwargs.pop("command", None)
  write_definition(sweep, command=command)
  outcomes = []
  for i, index in enumerate(indices):
    spec = sweep.runs[index]
    if report is not None and status(spec, sweep.evaluation) != "done":
      report(f"[{i + 1}/{len(indices)}] {spec.name}")
    outcome = run(sweep, index, command=command, write=False, **kwargs)
    outcomes.append(outcome)
    if report is not None:
      report(f"[{i + 1}/{len(indices)}] {spec.name}: {outcome.describe()}")
    if outcome.action != "skipped":
      keras.backend.clear_session()  # Each run builds its own model; free the last one.
      gc.collect()
  return outcomes


# ---------------------------------------------------------------------------------------------
# Results.


@dataclasses.dataclass
class Collected:
  """What `collect` wrote and read.

  Attributes:
    sweep: the sweep.
    rows: one dict per run (the columns of results.csv).
    summary: one dict per grid point (`aggregate`).
    columns: the columns of the Markdown table.
    table: the Markdown table.
    paths: {"results_csv", "summary_csv", "results_md", "tensorboard", "plots"} -> path.
    figures: paths of the sweep figures.
  """
  sweep: Sweep
  rows: List[dict]
  summary: List[dict]
  columns: List[str]
  table: str
  paths: Dict[str, str]
  figures: List[str]


_COUNT_KEYS = re.compile(r"(^|\.)(num_\w+|examples|epochs)$")
_SCHEDULE = re.compile(r"^(train|test)\.(alpha|beta)$")  # The weights' values at the end.


def _flatten(prefix: str, values: dict) -> dict:
  out = {}
  for key, value in values.items():
    if key == "seconds" or isinstance(value, (dict, list, str)) or value is None:
      continue
    if isinstance(value, bool):
      value = float(value)
    if isinstance(value, (int, float)):
      out[f"{prefix}.{key}"] = float(value)
  return out


def read_run(spec: RunSpec, evaluation: Optional[Evaluation] = None) -> dict:
  """One row of results.csv: settings, seed, status, final losses, metrics, timings."""
  row = {"index": spec.index, "name": spec.name, **spec.point, "seed": spec.seed,
         "status": status(spec, evaluation)}
  run_dir = runs_lib.RunDirectory(spec.path)
  if row["status"] == "new":
    return row
  metrics = _quiet_metrics(run_dir)
  history = []
  if os.path.exists(run_dir.history_path):
    try:
      history = runs_lib.read_history_csv(run_dir.history_path)
    except (OSError, ValueError, KeyError):
      history = []
  if history:
    row["epochs_done"] = int(history[-1].get("epoch", len(history)))
    row.update(_flatten("train", {k: v for k, v in history[-1].items() if k != "epoch"}))
  row.update(_flatten("test", {k: v for k, v in metrics.items()
                               if k not in ("evaluation", "sweep", "split", "examples",
                                            "epochs")}))
  document = metrics.get("evaluation")
  if isinstance(document, dict) and row["status"] == "done":
    for name, result in document.get("results", {}).items():
      if isinstance(result, dict):
        row.update(_flatten(name, result))
  record = metrics.get("sweep")
  if isinstance(record, dict):
    for key in ("train_seconds", "evaluate_seconds"):
      if isinstance(record.get(key), (int, float)):
        row[key] = float(record[key])
  return row


def _value_columns(rows) -> List[str]:
  """The result columns (train.*, test.*, metrics, timings): float values, not settings."""
  columns = []
  for row in rows:
    columns += [k for k, v in row.items() if isinstance(v, float) and k not in columns
                and ("." in k or k.endswith("_seconds"))]
  return columns


def write_csv(path, rows: List[dict], columns: Sequence[str]) -> str:
  """Writes rows as CSV atomically (floats with full precision, missing values empty)."""
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(columns)
  for row in rows:
    writer.writerow(["" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float)
                     else format_value(row[c]) for c in columns])
  return _io.atomic_write_text(path, buffer.getvalue())


def read_results(path) -> List[dict]:
  """Reads a results.csv back: index, seed and epochs_done as ints, other numbers (including
  numeric settings) as floats, the rest as strings; empty cells are left out."""
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  out = []
  for row in rows:
    parsed = {}
    for key, value in row.items():
      if value == "":
        continue
      if key in ("index", "seed", "epochs_done"):
        parsed[key] = int(value)
        continue
      try:
        parsed[key] = float(value)
      except ValueError:
        parsed[key] = value
    out.append(parsed)
  return out


def aggregate(rows: List[dict], axes: Sequence[str], columns: Sequence[str]) -> List[dict]:
  """Mean and sample std (ddof = 1) over seeds, per grid point.

  Args:
    rows: results rows (`read_run`), each with the axes' values. Only rows whose status is
      "done" (or that have no status) enter the statistics; the others are counted in "runs".
    axes: the axis names; rows with equal values on them form one grid point.
    columns: the numeric columns to aggregate; non-finite and missing values are left out.

  Returns:
    One dict per grid point, in first-seen order: {"point": {axis: value}, "runs": rows in it,
    "done": rows with status "done", "mean": {column: float}, "std": {column: float (NaN with
    fewer than 2 values)}, "count": {column: values used}}.
  """
  groups: Dict[tuple, List[dict]] = {}
  for row in rows:
    groups.setdefault(tuple(row.get(a) for a in axes), []).append(row)
  summary = []
  for key, members in groups.items():
    entry = {"point": dict(zip(axes, key)), "runs": len(members),
             "done": sum(r.get("status") == "done" for r in members), "mean": {}, "std": {},
             "count": {}}
    finished = [r for r in members if r.get("status", "done") == "done"]
    for column in columns:
      values = np.array([r[column] for r in finished if isinstance(r.get(column), float)
                         and math.isfinite(r[column])], dtype=np.float64)
      entry["count"][column] = int(values.size)
      entry["mean"][column] = float(values.mean()) if values.size else float("nan")
      entry["std"][column] = float(values.std(ddof=1)) if values.size > 1 else float("nan")
    summary.append(entry)
  return summary


def table_columns(rows: List[dict], columns: Optional[Sequence[str]] = None) -> List[str]:
  """The columns of the Markdown table: the given ones, or by default the test-set
  reconstruction, KL and divergence and every metric (of the likelihood, the ELBO and IWAE),
  leaving out counts (num_*, examples), timings, and columns constant or empty over the runs."""
  available = _value_columns(rows)
  if columns is not None:
    return [c for c in columns if c in available]
  chosen = []
  for column in available:
    if column.startswith("train.") or column.endswith("_seconds") or _COUNT_KEYS.search(column):
      continue
    if column.startswith("test.") and column not in ("test.reconstruction", "test.kl",
                                                      "test.divergence"):
      continue
    if column in ("likelihood.reconstruction", "likelihood.kl"):  # As test.*, on fewer examples.
      continue
    values = {round(r[column], 12) for r in rows if isinstance(r.get(column), float)
              and math.isfinite(r[column])}
    if len(values) > 1:
      chosen.append(column)
  return chosen


def format_mean_std(mean: float, std: float) -> str:
  """"0.4512 ± 0.013" (std to 2 significant digits), "0.4512" for one value, "—" for none."""
  if not math.isfinite(mean):
    return "—"
  if not math.isfinite(std):
    return f"{mean:.4g}"
  return f"{mean:.4g} ± {std:.2g}"


def markdown_table(summary: List[dict], axes: Sequence[str], columns: Sequence[str]) -> str:
  """A Markdown table: one row per grid point, the axes, the seeds done, mean ± std per column."""
  header = [*axes, "seeds", *columns]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
  for entry in summary:
    cells = [format_value(entry["point"][a]) for a in axes]
    cells.append(f"{entry['done']}/{entry['runs']}")
    cells += [format_mean_std(entry["mean"][c], entry["std"][c]) for c in columns]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_hparams(logdir: str, sweep: Sweep, rows: List[dict], metrics: Sequence[str]) -> str:
  """Writes the HParams dashboard's data: the experiment (axes, seed, metrics) and one session
  per run with a result (its settings, and each metric as a scalar at its final epoch).

  Values of an axis are given to TensorBoard as numbers, booleans or strings ("none" for a
  default left unset); the fixed settings are the same in every run and are not repeated.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top

  def typed(values):
    if any(v is None or isinstance(v, str) for v in values):
      return [format_value(v) for v in values]
    if all(isinstance(v, bool) for v in values):
      return list(values)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
      return list(values)
    return [float(v) for v in values]

  domains = {a.name: typed(a.values) for a in sweep.axes}
  params = {name: hp.HParam(name, hp.Discrete(values)) for name, values in domains.items()}
  params["seed"] = hp.HParam("seed", hp.Discrete(list(sweep.seeds)))
  with tf.summary.create_file_writer(logdir).as_default():
    hp.hparams_config(hparams=list(params.values()),
                      metrics=[hp.Metric(m, display_name=m) for m in metrics])
  for row, spec in zip(rows, sweep.runs):
    values = [row.get(m) for m in metrics]
    if not any(isinstance(v, float) and math.isfinite(v) for v in values):
      continue
    session = {params[a.name]: typed(a.values)[a.values.index(spec.point[a.name])]
               for a in sweep.axes}
    session[params["seed"]] = spec.seed
    step = int(row.get("epochs_done", spec.config.epochs))
    with tf.summary.create_file_writer(os.path.join(logdir, spec.name)).as_default():
      hp.hparams(session, trial_id=spec.name)
      for metric, value in zip(metrics, values):
        if isinstance(value, float) and math.isfinite(value):
          tf.summary.scalar(metric, value, step=step)
  return logdir


def _replace_directory(path: str, build: Callable[[str], Any]):
  """Builds a directory beside `path` and puts it in the place of the old one."""
  tmp = _io.temp_directory_beside(path)
  try:
    result = build(tmp)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  old = None
  if os.path.exists(path):
    old = _io.temp_directory_beside(path)
    os.rmdir(old)
    os.rename(path, old)
  os.rename(tmp, path)
  if old:
    shutil.rmtree(old, ignore_errors=True)
  return result


def collect(out, *, columns: Optional[Sequence[str]] = None, figures: bool = True,
            hparams: bool = True, data_dir: Optional[str] = None,
            manual_dir: Optional[str] = None) -> Collected:
  """Builds the sweep's tables, HParams data and figures from its run directories.

  Runs that have not finished yet appear in results.csv with their status; the table counts
  the seeds done per grid point. Each call rebuilds every output.

  Args:
    out: the sweep directory.
    columns: the Markdown table's columns (default `table_columns`).
    figures: write the sweep figures (`tfdecomp.sweep_plots.sweep_figures`).
    hparams: write the HParams dashboard's data.
    data_dir, manual_dir: where the data of the aggregate-posterior figure are.

  Returns:
    A `Collected`.

  Raises:
    SweepError: if `out` is not a sweep directory.
  """
  sweep = load(out)
  rows = [read_run(spec, sweep.evaluation) for spec in sweep.runs]
  axes = [a.name for a in sweep.axes]
  values = _value_columns(rows)
  csv_columns = ["index", "name", *axes, "seed", "status", "epochs_done"]
  csv_columns += [c for c in values if c.startswith("train.")]
  csv_columns += [c for c in values if c.startswith("test.")]
  csv_columns += [c for c in values if not c.startswith(("train.", "test."))
                  and not c.endswith("_seconds")]
  csv_columns += [c for c in values if c.endswith("_seconds")]
  paths = {"results_csv": sweep.join("results.csv"),
           "summary_csv": sweep.join("results_summary.csv"),
           "results_md": sweep.join("results.md"), "tensorboard": sweep.join("tensorboard"),
           "plots": sweep.join("plots")}
  write_csv(paths["results_csv"], rows, csv_columns)
  numeric = [c for c in csv_columns if c in values]
  summary = aggregate(rows, axes, numeric)
  flat = [{**entry["point"], "runs": entry["runs"], "done": entry["done"],
           **{f"{c}.mean": entry["mean"][c] for c in numeric},
           **{f"{c}.std": entry["std"][c] for c in numeric}} for entry in summary]
  write_csv(paths["summary_csv"], flat,
            [*axes, "runs", "done", *[f"{c}.{s}" for c in numeric for s in ("mean", "std")]])
  chosen = table_columns(rows, columns)
  table = markdown_table(summary, axes, chosen)
  done = sum(r["status"] == "done" for r in rows)
  _io.atomic_write_text(paths["results_md"], (
      f"# Sweep {sweep.experiment}: {sweep.grid or '(no grid)'}\n\n"
      f"{len(sweep.runs)} runs ({len(sweep.points)} grid points x {len(sweep.seeds)} seeds), "
      f"{done} done. Mean ± sample std (ddof = 1) over seeds; columns: test.* are the trained "
      f"model's test-set loss terms, the others the evaluation's metrics.\n\n{table}"))
  if hparams:
    metric_columns = [c for c in numeric if not c.endswith("_seconds")
                      and not _COUNT_KEYS.search(c) and not _SCHEDULE.match(c)]
    _replace_directory(paths["tensorboard"],
                       lambda tmp: write_hparams(tmp, sweep, rows, metric_columns))
  written = []
  if figures:
    from tfdecomp import sweep_plots  # pylint: disable=g-import-not-at-top
    names = _replace_directory(paths["plots"], lambda tmp: sweep_plots.sweep_figures(
        sweep, rows, summary, tmp, data_dir=data_dir, manual_dir=manual_dir))
    written = [os.path.join(paths["plots"], os.path.basename(p)) for p in names]
  return Collected(sweep=sweep, rows=rows, summary=summary, columns=chosen, table=table,
                   paths=paths, figures=written)
