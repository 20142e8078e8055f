"""Shared start-up of the command-line entry points (absl apps).

What a command line may do and a library may not happens here, at start-up only: quieting
TensorFlow's C++ start-up lines, absl's log level, warning filters for known noise, and turning
library errors into one line on stderr with exit status 2.
"""

import os
import shlex
import signal
import sys
import tempfile
import warnings

from absl import app
from absl import flags


def quiet_tensorflow():
  """Sets TF_CPP_MIN_LOG_LEVEL=3 (unless set) and imports TensorFlow with its C++ lines captured.

  The TensorFlow wheel writes oneDNN and CUDA-probing lines straight to file descriptor 2 before
  its logging is initialised, so the level alone does not silence them: while TensorFlow is
  imported, descriptor 2 goes to a temporary file, printed again if the import fails. Set
  TFDECOMP_VERBOSE_IMPORT=1 to see them.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  if "tensorflow" in sys.modules or os.environ.get("TFDECOMP_VERBOSE_IMPORT"):
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    import tensorflow_probability  # pylint: disable=g-import-not-at-top,unused-import
    return
  try:
    fd = sys.stderr.fileno()
  except (AttributeError, ValueError, OSError):  # e.g. a notebook's replaced stderr.
    fd = None
  if fd is None:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    import tensorflow_probability  # pylint: disable=g-import-not-at-top,unused-import
    return
  sys.stderr.flush()
  saved = os.dup(fd)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), fd)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
      import tensorflow_probability  # pylint: disable=g-import-not-at-top,unused-import
    except BaseException:
      os.dup2(saved, fd)
      captured.seek(0)
      sys.stderr.write(captured.read().decode("utf-8", "replace"))
      raise
    finally:
      os.dup2(saved, fd)
      os.close(saved)


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
  quiet_tensorflow()
  define_flags()
  app.run(main, flags_parser=_parse_flags)


def fail(prog, message):
  """Reports a usage error as one line and exits with status 2."""
  sys.stderr.write(f"{prog}: error: {first_line(message)}\n")
  sys.exit(2)


def first_line(message) -> str:
  text = str(message).strip()
  return text.splitlines()[0] if text else type(message).__name__


def warner(prog):
  """A function writing "prog: warning: ..." lines to stderr."""
  def warn(message):
    sys.stderr.write(f"{prog}: warning: {first_line(message)}\n")
    sys.stderr.flush()
  return warn


def command_line(module: str, prog: str) -> str:
  """The command as the user typed it: `prog ARGS` or `python -m module ARGS`."""
  argv0 = os.path.basename(sys.argv[0]) if sys.argv else prog
  head = [prog] if argv0 == prog else ["python", "-m", module]
  return shlex.join(head + sys.argv[1:])


def interrupt_on_sigterm():
  """Makes SIGTERM (a scheduler's stop, `kill`) raise KeyboardInterrupt, as Ctrl-C does.

  Training catches KeyboardInterrupt, checkpoints the newest finished epoch and stops
  (`tfdecomp.training.Interrupted`), so a preempted run resumes exactly when rerun.
  """
  def handler(signum, frame):  # pylint: disable=unused-argument
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
  signal.signal(signal.SIGTERM, handler)


def interrupted(prog, error):
  """Reports an interrupted run as one line and exits with status 130 (as after Ctrl-C)."""
  sys.stderr.write(f"\n{prog}: {first_line(error)}\n")
  sys.exit(130)
