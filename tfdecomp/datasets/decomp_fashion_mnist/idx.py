"""Reader and writer for the IDX format of (Fashion-)MNIST (LeCun et al.), optionally gzipped.

An IDX file is: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions d, d big-endian uint32 sizes, then the
values in C order, big-endian.
"""

import gzip
import io
import struct
from typing import BinaryIO, Union

import numpy as np

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}


def _maybe_gunzip(data: bytes) -> bytes:
  return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_idx(source: Union[str, BinaryIO], name: str = "") -> np.ndarray:
  """Reads an IDX array from a path or binary file object (gzip detected from the content).

  Args:
    source: path or binary file object.
    name: file name used in error messages (defaults to the path).

  Returns:
    The array in native byte order, e.g. uint8 [60000, 28, 28] for training images.

  Raises:
    ValueError: naming the file, if it is not a valid IDX file (bad magic number, unknown type,
      or a size that does not match its header).
  """
  name = name or (source if isinstance(source, str) else getattr(source, "name", "<idx>"))
  if isinstance(source, str):
    with open(source, "rb") as f:
      raw = f.read()
  else:
    raw = source.read()
  try:
    data = _maybe_gunzip(raw)
  except (OSError, EOFError) as e:
    raise ValueError(f"{name} is not a readable gzip file: {e}") from e
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
    raise ValueError(f"{name} is not an IDX file (bad magic number {data[:4]!r}).")
  dtype = np.dtype(_DTYPES[data[2]])
  ndim = data[3]
  header = 4 + 4 * ndim
  if len(data) < header:
    raise ValueError(f"{name} is not an IDX file (header truncated).")
  shape = struct.unpack(">" + "I" * ndim, data[4:header])
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) - header != expected:
    raise ValueError(f"{name}: header says shape {shape} ({expected} bytes of data) but the file "
                     f"holds {len(data) - header} bytes; the file is truncated or corrupt.")
  return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(
      dtype.newbyteorder("="))


def write_idx(target: Union[str, BinaryIO], array: np.ndarray, compress: bool = None) -> None:
  """Writes `array` as IDX; gzip-compressed when `compress` (default: path ends with .gz).

  The gzip header carries no timestamp, so the output is byte-for-byte reproducible.
  """
  array = np.asarray(array)
  code = _CODES.get(array.dtype.newbyteorder("="))
  if code is None:
    raise ValueError(f"array dtype must be one of {sorted(str(d) for d in _CODES)}, "
                     f"got {array.dtype}.")
  payload = (bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
             + array.astype(np.dtype(_DTYPES[code])).tobytes())
  if compress is None:
    compress = isinstance(target, str) and target.endswith(".gz")
  if compress:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
      f.write(payload)
    payload = buffer.getvalue()
  if isinstance(target, str):
    with open(target, "wb") as f:
      f.write(payload)
  else:
    target.write(payload)
