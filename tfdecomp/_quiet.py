"""Imports TensorFlow without the C++ start-up chatter.

The TensorFlow wheel writes oneDNN and CUDA-probing lines straight to file descriptor 2 before its
logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` alone does not silence them. This module sets the
level (unless the user chose one) and, while TensorFlow is imported for the first time, sends
descriptor 2 to a temporary file; if the import fails, what was captured is printed again.
"""

import os
import sys
import tempfile


def import_tensorflow_quietly():
  """Imports `tensorflow` and `tensorflow_probability`; returns nothing."""
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
