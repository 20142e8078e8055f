"""`tfdecomp-export --run DIR [--base DIR] [--version N]`: a run as `<base>/<version>/`.

The layout TF Serving serves (`tensorflow_model_server --model_base_path=<base>`) and
`tfdecomp-serve` serves; the default base is `<run>/export`, the version the next free one.
"""

from absl import flags

from trainers import _cli

FLAGS = flags.FLAGS
PROG = "tfdecomp-export"


def define_flags():
  flags.DEFINE_string("run", None, "Run directory written by tfdecomp-train.")
  flags.DEFINE_string("base", None, "Model base path (default <run>/export).")
  flags.DEFINE_integer("version", None, "Integer version (default: the next free one).")


def main(argv):
  if len(argv) > 1:
    _cli.fail(PROG, f"unexpected arguments {' '.join(argv[1:])!r}.")
  if not FLAGS.run:
    _cli.fail(PROG, "--run is required (a run directory written by tfdecomp-train).")
  from tfdecomp import export, runs  # pylint: disable=g-import-not-at-top
  try:
    model, config, epochs = runs.load_run(FLAGS.run, warn=_cli.warner(PROG))
    path = export.export_run(model, config, FLAGS.run, epochs, base=FLAGS.base,
                             version=FLAGS.version)
  except (ValueError, OSError) as e:  # RunError, FileExistsError, ...
    _cli.fail(PROG, e)
  print(f"{PROG}: exported {FLAGS.run} (epoch {epochs}) -> {path}")


def run():
  """Console-script entry point (`tfdecomp-export`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
