"""Atomic file and directory writes that respect the user's umask.

Every file a run or an export holds is written under a temporary name in its final directory and
renamed into place, so a reader (a colleague, TensorBoard, a model server watching a directory)
sees either the previous version or the complete new one, never half of a file; a killed process
leaves at most a hidden `.tmp-*` entry behind, which readers ignore.

`tempfile.mkstemp` / `mkdtemp` create mode 0600 / 0700 entries whatever the umask; these helpers
create temporary entries with `os.open(..., 0o666)` / `os.mkdir(..., 0o777)` instead, so the kernel
applies the umask exactly as it does for `open(path, "w")`: with the usual umask 022 a run is
readable by the group and by others, like the `.h5` and event files Keras writes itself.
"""

import contextlib
import os
import shutil
import uuid

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path", "atomic_directory",
           "temp_directory_beside", "TMP_PREFIX"]

#: Prefix of temporary entries (readers skip names starting with it).
TMP_PREFIX = ".tmp-"


def _tmp_name(path: str, suffix: str = "") -> str:
  directory, base = os.path.split(os.path.abspath(path))
  return os.path.join(directory, f"{TMP_PREFIX}{base}.{uuid.uuid4().hex[:12]}{suffix}")


def _remove(path: str) -> None:
  try:
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      os.remove(path)
  except FileNotFoundError:
    pass


def atomic_write_bytes(path, data: bytes) -> str:
  """Writes `data` to `path` through a temporary file in the same directory and a rename.

  Returns:
    The path.
  """
  path = os.fspath(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = _tmp_name(path)
  try:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    _remove(tmp)
    raise
  return path


def atomic_write_text(path, text: str) -> str:
  """Writes `text` (UTF-8) to `path` atomically; see `atomic_write_bytes`."""
  return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
  """Yields a temporary file name next to `path`; on success it is renamed to `path`.

  For writers that take a file name (matplotlib's `savefig`, Keras's `save_weights`). The file is
  created first with the umask-respecting mode, so the writer only truncates and fills it.

  Args:
    path: the final file.
    suffix: kept on the temporary name for writers that infer the format from it (".png").
  """
  path = os.fspath(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = _tmp_name(path, suffix)
  try:
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    _remove(tmp)
    raise


def temp_directory_beside(path) -> str:
  """Creates and returns a new hidden temporary directory next to `path` (umask's mode)."""
  path = os.path.abspath(os.fspath(path))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = _tmp_name(path)
  os.mkdir(tmp, 0o777)
  return tmp


@contextlib.contextmanager
def atomic_directory(path):
  """Yields a temporary directory next to `path`; on success it is renamed to `path`.

  `path` must not exist (an existing directory is never replaced: callers pick a new name, as a
  versioned export does). Created with mode 0777 minus the umask.

  Raises:
    FileExistsError: if `path` exists, before anything is written, or if it appeared meanwhile.
  """
  path = os.path.abspath(os.fspath(path))
  if os.path.exists(path):
    raise FileExistsError(f"{path} exists.")
  tmp = temp_directory_beside(path)
  try:
    yield tmp
    # os.rename of a directory onto an existing non-empty directory fails: no silent overwrite.
    if os.path.exists(path):
      raise FileExistsError(f"{path} appeared while it was being written.")
    os.rename(tmp, path)
  except BaseException:
    _remove(tmp)
    raise
