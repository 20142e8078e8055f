"""Reproduces one of the paper's claims: `python -m trainers.reproduce` (`tfdecomp-reproduce`).

  tfdecomp-reproduce --experiment=clustering --budget=small     # <= 60 min on 2 CPU cores
  tfdecomp-reproduce --experiment=sparsity --budget=paper --list  # the runs, for a cluster
  tfdecomp-reproduce --experiment=sparsity --budget=paper --report_only   # after the cluster

Runs (or resumes) the claim's sweeps, evaluates every run with the metrics of the claim, and
writes <out>/report.md (tables, the claim's comparisons and verdict, the paper's values, the
command, budget, machine and wall time, figures) and claims.json. The budgets and the claims are
`tfdecomp.reproduce`: `small` fits 2 CPU cores, `paper` is the authors' settings, `smoke` only
proves the pipeline.
"""

import sys

from absl import flags

from trainers import _cli

PROG = "tfdecomp-reproduce"
FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (on start-up only: importing this module defines none)."""
  flags.DEFINE_enum("experiment", None, ["clustering", "independence", "sparsity"],
                    "The claim to reproduce.")
  flags.DEFINE_enum("budget", "small", ["small", "paper", "smoke"],
                    "small: <= 60 min on 2 CPU cores; paper: the authors' settings; smoke: a "
                    "minute, proves the pipeline only.")
  flags.DEFINE_string("out", None, "Output directory (default results/<experiment>-<budget>).")
  flags.DEFINE_bool("list", False, "Print one independent command per run, then exit.")
  flags.DEFINE_bool("report_only", False, "Only collect the existing runs and write the report.")
  flags.DEFINE_string("data_dir", None, "TFDS data directory.")
  flags.DEFINE_string("manual_dir", None, "Directory with manually downloaded files (the "
                      "Fashion-MNIST IDX files).")


def main(argv):
  if len(argv) > 1:
    _cli.fail(PROG, f"unexpected arguments {' '.join(argv[1:])!r} (flags are written "
                    "--name=value).")
  if FLAGS.experiment is None:
    _cli.fail(PROG, "--experiment is needed: clustering, independence or sparsity.")
  import os  # pylint: disable=g-import-not-at-top
  from tfdecomp import configs, data, reproduce, runs, sweeps  # pylint: disable=g-import-not-at-top
  out = FLAGS.out or os.path.join("results", f"{FLAGS.experiment}-{FLAGS.budget}")
  paths = {"data_dir": FLAGS.data_dir, "manual_dir": FLAGS.manual_dir}
  say = lambda line: print(f"{PROG}: {line}", file=sys.stderr, flush=True)  # noqa: E731
  try:
    if FLAGS.list:
      study = reproduce.study(FLAGS.experiment, FLAGS.budget, **paths)
      extra = [f"--{k}={v}" for k, v in paths.items() if v]
      for plan, sweep in zip(study.plans, reproduce.define_sweeps(study, out)):
        extra_plan = extra + ([] if plan.figures else ["--nofigures"])
        for index in range(len(sweep.runs)):
          print(sweeps.index_command(sweep, index, ["tfdecomp-sweep"], extra_plan))
      say(f"then: {PROG} --experiment={FLAGS.experiment} --budget={FLAGS.budget} --out={out} "
          "--report_only")
      return
    result = reproduce.reproduce(FLAGS.experiment, FLAGS.budget, out, train=not FLAGS.report_only,
                                 command=_cli.command_line("trainers.reproduce", PROG),
                                 report=say, warn=_cli.warner(PROG), **paths)
  except (configs.ConfigError, data.DataError, runs.RunError, sweeps.SweepError,
          FileNotFoundError, ValueError) as e:
    _cli.fail(PROG, e)
  for comparison in result.claim.comparisons:
    say(f"  {comparison.quantity}: {comparison.a} vs {comparison.b} ({comparison.expected}): "
        f"{comparison.result}")
  print(f"{PROG}: {FLAGS.experiment} ({FLAGS.budget}): {result.claim.verdict} "
        f"({result.wall_seconds / 60:.1f} min) -> {result.path}")
  sys.exit(1 if result.failed else 0)


def run():
  """Console-script entry point (`tfdecomp-reproduce`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
