"""Shared start-up of the command-line entry points (absl apps)."""

import sys
import warnings

from absl import app
from absl import flags


def _parse_flags(argv):
  # absl's app.run logs at INFO, which lets TFDS print a line per data set it opens.
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  # disentanglement_lib's default logistic regressions (beta-VAE score, explicitness) stop at 100
  # iterations, as here, and scikit-learn warns each time.
  from sklearn.exceptions import ConvergenceWarning  # pylint: disable=g-import-not-at-top
  warnings.filterwarnings("ignore", category=ConvergenceWarning)
  return flags.FLAGS(argv)


def run_app(main, define_flags):
  """Defines the flags (only now, never at import) and runs `main` under absl."""
  define_flags()
  app.run(main, flags_parser=_parse_flags)


def fail(prog, message):
  """Reports a usage error as one line and exits with status 2."""
  sys.stderr.write(f"{prog}: error: {message}\n")
  sys.exit(2)
