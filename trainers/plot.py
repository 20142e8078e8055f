"""Regenerates a run's figures: `python -m trainers.plot --run DIR` (console script
`tfdecomp-plot`).

Every figure that applies to the run (`tfdecomp.plots.run_figures`: training and validation
curves, aggregate posterior or its pair plot, the per-class sparsity figure, reconstructions,
samples, traversals) is written again to `<run>/plots/` as PNG and PDF, from the newest
checkpoint, history.csv and metrics.json, without training (`tfdecomp.plots.regenerate`).
"""

from absl import flags

from trainers import _cli

PROG = "tfdecomp-plot"
FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (on start-up only: importing this module defines none)."""
  flags.DEFINE_string("run", None, "Training run directory (written by tfdecomp-train).")
  flags.DEFINE_list("formats", ["png", "pdf"], "File formats of each figure.")
  flags.DEFINE_string("data_dir", None, "TFDS data directory.")
  flags.DEFINE_string("manual_dir", None, "Directory with manually downloaded files.")


def main(argv):
  if len(argv) > 1:
    _cli.fail(PROG, f"unexpected arguments {' '.join(argv[1:])!r} (flags are written "
                    "--name=value).")
  if not FLAGS.run:
    _cli.fail(PROG, "--run=DIR is required (a directory written by tfdecomp-train).")
  from tfdecomp import plots  # pylint: disable=g-import-not-at-top
  try:
    paths = plots.regenerate(FLAGS.run, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir,
                             formats=tuple(FLAGS.formats), warn=_cli.warner(PROG))
  except (ValueError, OSError) as e:  # RunError, DataError, FileNotFoundError.
    _cli.fail(PROG, e)
  for path in paths:
    print(path)
  print(f"{PROG}: wrote {len(paths)} file(s) to {FLAGS.run}/plots")


def run():
  """Console-script entry point (`tfdecomp-plot`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
