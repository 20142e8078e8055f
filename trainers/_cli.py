"""Shared start-up of the command-line entry points (absl apps).

What a command line may do and a library may not happens here, at start-up only: quieting
TensorFlow's C++ start-up lines, absl's log level, warning filters for known noise, and turning
library errors into one line on stderr with exit status 2.
"""

import difflib
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


def closest_flag(name, names):
  """The defined flag name closest to `name` (difflib), or None."""
  matches = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.5)
  return matches[0] if matches else None


def flag_error_line(error, names):
  """One line for a command-line flag error: the flag, and the closest valid one if unknown."""
  if isinstance(error, flags.UnrecognizedFlagError):
    name = error.flagname
    if name.startswith("no") and name[2:] in names:  # --nojit for a non-boolean flag.
      return f"--{name}: --{name[2:]} is not a boolean flag; give it a value."
    guess = closest_flag(name, names)
    hint = f"; did you mean --{guess}?" if guess else "; see --help for the flags."
    return f"unknown flag --{name}{hint}"
  return first_line(error)


def _program_flag_names(main):
  """Flags a user of this program may give: its own and absl's (help, flagfile, ...)."""
  names = set(flags.FLAGS)
  module = sys.modules.get(getattr(main, "__module__", ""), None)
  own = {f.name for f in flags.FLAGS.get_key_flags_for_module(sys.argv[0])} if sys.argv else set()
  if module is not None:
    own |= {f.name for f in flags.FLAGS.get_key_flags_for_module(module)}
  # absl, TensorFlow and TFDS define many flags of their own: suggest the program's first.
  return own or names, names


def run_app(main, define_flags):
  """Defines the flags (only now, never at import) and runs `main` under absl.

  A flag error (unknown flag, bad value) is one line on stderr naming the flag, and the closest
  valid one for an unknown flag, with exit status 2, as for other usage errors.
  """
  quiet_tensorflow()
  define_flags()
  module = sys.modules.get(getattr(main, "__module__", ""), None)
  prog = getattr(module, "PROG", None) or os.path.basename(sys.argv[0] if sys.argv else "")

  def parse(argv):
    try:
      return _parse_flags(argv)
    except flags.Error as e:
      own, every = _program_flag_names(main)
      line = flag_error_line(e, own)
      if isinstance(e, flags.UnrecognizedFlagError) and "did you mean" not in line:
        line = flag_error_line(e, every)
      fail(prog, line)

  app.run(main, flags_parser=parse)


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
