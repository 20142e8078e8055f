"""Sweeps over trainer settings: `python -m trainers.sweep` (console script `tfdecomp-sweep`).

  tfdecomp-sweep --experiment=clustering --grid='beta=0,1;alpha=0,1' --seeds=3 --out=DIR
  tfdecomp-sweep ... --list          # one independent command per run, for a job array
  tfdecomp-sweep ... --index=I       # only run I (e.g. I=$SLURM_ARRAY_TASK_ID)
  tfdecomp-sweep --collect=DIR       # results.csv, results.md, tensorboard/, plots/

Any trainer flag can be a grid axis; the other trainer flags given here apply to every run. Each
run is trained, then evaluated; finished runs are skipped, interrupted ones resume. Without
--list/--index the runs go one after the other, then the results are collected. The procedure is
`tfdecomp.sweeps`; a bad grid fails before training with one line naming the axis (exit 2); a
run whose loss became non-finite makes the exit status 1.
"""

import json
import sys

from absl import flags

from trainers import _cli
from trainers import train

PROG = "tfdecomp-sweep"
FLAGS = flags.FLAGS
# (flag, kind, default, help) of the evaluation of every run (as tfdecomp-evaluate's).
EVALUATION = (
    ("evaluate", "bool", True, "Evaluate each run after training."),
    ("metrics", "string", None, "Comma-separated metrics (default: all that apply)."),
    ("eval_seed", "integer", 0, "Seed of the metrics' sampling."),
    ("max_examples", "integer", 10000, "Evaluation examples for sparsity/clustering."),
    ("likelihood_examples", "integer", 1000, "Examples for the ELBO/IWAE estimates."),
    ("iwae_samples", "integer", 1000, "Importance samples K of the IWAE bound (0: none)."),
    ("student_t_mapping", "bool", True, "Map Student-t codes to Normal before scoring."),
    ("metric_args", "string", None, "JSON of per-metric keyword arguments."),
)


def define_flags():
  """Defines the command-line flags (on start-up only: importing this module defines none)."""
  flags.DEFINE_string("experiment", "clustering", "Preset of every run (see tfdecomp-train).")
  flags.DEFINE_string("grid", "", "Axes 'name=v1,v2;name=v1,...' over trainer settings.")
  flags.DEFINE_integer("seeds", 3, "Seeds per grid point: --seed, --seed+1, ...")
  flags.DEFINE_integer("seed", 0, "The first seed.")
  flags.DEFINE_string("out", None, "The sweep directory.")
  flags.DEFINE_bool("list", False, "Print one independent command per run, then exit.")
  flags.DEFINE_integer("index", None, "Run only this run (0-based, in --list order).")
  flags.DEFINE_string("collect", None, "Build the tables and figures of this sweep directory.")
  flags.DEFINE_bool("figures", True, "Write each run's own figures.")
  for name, kind, text in train.SETTINGS:
    getattr(flags, f"DEFINE_{kind}")(name, None, f"[every run] {text}")
  for name, kind, default, text in EVALUATION:
    getattr(flags, f"DEFINE_{kind}")(name, default, text)
  flags.DEFINE_string("data_dir", None, "TFDS data directory.")
  flags.DEFINE_string("manual_dir", None, "Directory with manually downloaded files.")


def _definition(sweeps):
  try:
    metric_args = json.loads(FLAGS.metric_args) if FLAGS.metric_args else {}
  except ValueError as e:
    raise sweeps.SweepError(f"--metric_args is not JSON ({e}).") from None
  metrics = FLAGS.metrics and tuple(m.strip() for m in FLAGS.metrics.split(",") if m.strip())
  evaluation = sweeps.Evaluation(
      enabled=FLAGS.evaluate, metrics=metrics if FLAGS.metrics is not None else None,
      seed=FLAGS.eval_seed, max_examples=FLAGS.max_examples,
      likelihood_examples=FLAGS.likelihood_examples, iwae_samples=FLAGS.iwae_samples,
      student_t_mapping=FLAGS.student_t_mapping, metric_args=metric_args)
  return sweeps.define(
      FLAGS.experiment, FLAGS.grid, seeds=range(FLAGS.seed, FLAGS.seed + FLAGS.seeds),
      overrides={name: FLAGS[name].value for name, _, _ in train.SETTINGS},
      evaluation=evaluation, out=FLAGS.out)


def main(argv):
  if len(argv) > 1:
    _cli.fail(PROG, f"unexpected arguments {' '.join(argv[1:])!r} (flags are written "
                    "--name=value).")
  from tfdecomp import configs, data, runs, sweeps, training  # pylint: disable=g-import-not-at-top
  _cli.interrupt_on_sigterm()
  say = lambda line: print(f"{PROG}: {line}", file=sys.stderr, flush=True)  # noqa: E731
  paths = {"data_dir": FLAGS.data_dir, "manual_dir": FLAGS.manual_dir}
  command = _cli.command_line("trainers.sweep", PROG)
  outcomes = []
  try:
    if FLAGS.collect:
      return _report(sweeps.collect(FLAGS.collect, **paths))
    if not FLAGS.out:
      raise sweeps.SweepError("--out is needed: the sweep directory.")
    sweep = _definition(sweeps)
    if FLAGS.list:
      head = [PROG] if command.startswith(PROG) else ["python", "-m", "trainers.sweep"]
      extra = [f"--{k}={v}" for k, v in paths.items() if v] + [
          "--nofigures"] * (not FLAGS.figures)
      print("\n".join(sweeps.index_command(sweep, i, head, extra)
                      for i in range(len(sweep.runs))))
      return say(f"{len(sweep.runs)} runs, to run in any order or in parallel; then "
                 f"{PROG} --collect={FLAGS.out}")
    common = dict(command=command, figures=FLAGS.figures, warn=_cli.warner(PROG), **paths)
    if FLAGS.index is not None:
      outcomes = [sweeps.run(sweep, FLAGS.index, **common)]
      say(f"run {FLAGS.index} {outcomes[0].spec.name}: {outcomes[0].describe()}")
    else:
      outcomes = sweeps.run_all(sweep, report=say, **common)
      _report(sweeps.collect(FLAGS.out, **paths))
  except (configs.ConfigError, data.DataError, runs.RunError, sweeps.SweepError,
          FileNotFoundError) as e:
    _cli.fail(PROG, e)
  except training.Interrupted as e:
    _cli.interrupted(PROG, f"{e} (the sweep skips finished runs)")
  failed = [o.spec.name for o in outcomes if o.action == "failed"]
  if failed:
    say(f"{len(failed)} run(s) stopped on a non-finite loss: {', '.join(failed)}")
    sys.exit(1)


def _report(collected):
  print(collected.table, end="")
  print(f"{PROG}: wrote {collected.paths['results_csv']}, {collected.paths['results_md']}, "
        f"{collected.paths['tensorboard']} and {len(collected.figures)} figure(s) in "
        f"{collected.paths['plots']}")


def run():
  """Console-script entry point (`tfdecomp-sweep`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
