"""Reads DeepMind's official `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` without 3 GB of RAM.

The file holds `imgs` (uint8 [737280, 64, 64] in {0, 1}), `latents_classes` (int [737280, 6]) and
`latents_values` (float [737280, 6]); column 0 of the latents is the constant colour. `np.load`
would inflate `imgs` to 3 GB, so the image member is streamed from the zip archive in chunks.
"""

import io
import zipfile
from typing import BinaryIO, Iterator, Tuple, Union

import numpy as np

from tfdecomp.datasets.decomp_dsprites import render

OFFICIAL_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
OFFICIAL_URL = ("https://github.com/deepmind/dsprites-dataset/raw/master/" + OFFICIAL_FILENAME)
_KEYS = ("imgs", "latents_classes", "latents_values")


def _read_header(member: BinaryIO, name: str, path: str):
  version = np.lib.format.read_magic(member)
  if version == (1, 0):
    return np.lib.format.read_array_header_1_0(member)
  if version in ((2, 0), (3, 0)):
    return np.lib.format.read_array_header_2_0(member)
  raise ValueError(f"{path}: member {name}.npy has unsupported .npy version {version}.")


def iter_npz(fileobj: Union[str, BinaryIO], config: str = "full", chunk_size: int = 8192,
             path: str = "") -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Streams the official file, keeping the rows that belong to `config`'s grid.

  Args:
    fileobj: path or binary file object of the npz archive.
    config: "full" or "small" (see `render.CONFIG_LEVELS`).
    chunk_size: rows read at a time.
    path: name of the file for error messages (defaults to `fileobj` when it is a path).

  Yields:
    (images uint8 [B, 64, 64, 1] in {0, 1}, factors int64 [B, 5] as level indices of `config`'s
    grid, values float32 [B, 5] official factor values), in file order.

  Raises:
    ValueError: naming the file, if it is not a zip archive, lacks one of imgs, latents_classes,
      latents_values, or the arrays have the wrong shapes.
  """
  path = path or (fileobj if isinstance(fileobj, str) else getattr(fileobj, "name", "<npz>"))
  try:
    archive = zipfile.ZipFile(fileobj)
  except zipfile.BadZipFile as e:
    raise ValueError(f"{path} is not an .npz (zip) archive; expected the official "
                     f"{OFFICIAL_FILENAME} from {OFFICIAL_URL}.") from e
  with archive:
    names = set(archive.namelist())
    missing = [k for k in _KEYS if k + ".npy" not in names]
    if missing:
      raise ValueError(f"{path} lacks the arrays {missing}; expected the official "
                       f"{OFFICIAL_FILENAME} with keys {list(_KEYS)}.")
    with archive.open("latents_classes.npy") as member:
      classes = np.lib.format.read_array(member)
    with archive.open("latents_values.npy") as member:
      values = np.lib.format.read_array(member)
    if classes.ndim != 2 or classes.shape[1] != 6 or values.shape != classes.shape:
      raise ValueError(f"{path}: latents_classes and latents_values must both have shape "
                       f"[N, 6], got {classes.shape} and {values.shape}.")
    lookups = render.level_lookup(config)
    local = np.stack([lookups[k][classes[:, k + 1]] for k in range(5)], axis=1)
    keep = np.all(local >= 0, axis=1)
    with archive.open("imgs.npy") as member:
      shape, fortran_order, dtype = _read_header(member, "imgs", path)
      if (len(shape) != 3 or shape[0] != len(classes) or shape[1:] != (64, 64)
          or fortran_order):
        raise ValueError(f"{path}: imgs must be a C-ordered array [{len(classes)}, 64, 64], got "
                         f"shape {shape} (fortran_order={fortran_order}).")
      row_bytes = 64 * 64 * dtype.itemsize
      for begin in range(0, shape[0], chunk_size):
        count = min(chunk_size, shape[0] - begin)
        buffer = _read_exactly(member, count * row_bytes, path)
        rows = slice(begin, begin + count)
        selected = keep[rows]
        if not selected.any():
          continue
        images = np.frombuffer(buffer, dtype=dtype).reshape(count, 64, 64, 1)[selected]
        yield (images.astype(np.uint8), local[rows][selected],
               values[rows][selected][:, 1:].astype(np.float32))


def _read_exactly(member: BinaryIO, size: int, path: str) -> bytes:
  data = io.BytesIO()
  while data.tell() < size:
    block = member.read(size - data.tell())
    if not block:
      raise ValueError(f"{path}: imgs ends early; the file is truncated.")
    data.write(block)
  return data.getvalue()


def load_packed_grid(fileobj: Union[str, BinaryIO], config: str = "full",
                     path: str = "") -> np.ndarray:
  """The config's grid from the official file as bit-packed images in row-major factor order.

  Args:
    fileobj: path or binary file object of the npz archive.
    config: "full" or "small".
    path: name of the file for error messages.

  Returns:
    uint8 array [num_images, 512]: `np.packbits` of each flattened 64x64 binary image (377 MB
    for the full grid instead of 3 GB), row i holding the image of grid position i.

  Raises:
    ValueError: if the file does not cover every factor combination of the config exactly once.
  """
  sizes = render.DSpritesRenderer(config).factor_sizes
  total = int(np.prod(sizes))
  packed = np.zeros((total, 512), np.uint8)
  seen = np.zeros(total, bool)
  for images, factors, _ in iter_npz(fileobj, config, path=path):
    index = np.ravel_multi_index(tuple(factors.T), sizes)
    packed[index] = np.packbits(images.reshape(len(images), -1), axis=1)
    seen[index] = True
  if not seen.all():
    raise ValueError(f"{path or fileobj}: {int((~seen).sum())} of the {total} factor "
                     f"combinations of config {config!r} are missing; is it the official file?")
  return packed


def write_npz(path: str, factors_full: np.ndarray) -> None:
  """Writes an npz with the official keys for full-grid factors [N, 5] (for tests/fixtures).

  Images come from the procedural renderer, so the file mimics the official layout:
  imgs uint8 [N, 64, 64], latents_classes int64 [N, 6], latents_values float64 [N, 6].
  """
  factors_full = np.asarray(factors_full, np.int64)
  renderer = render.DSpritesRenderer("full")
  values = np.stack([v[factors_full[:, k]] for k, v in enumerate(render.full_factor_values())],
                    axis=1)
  n = len(factors_full)
  np.savez_compressed(path,
                      imgs=renderer.render(factors_full)[..., 0],
                      latents_classes=np.concatenate([np.zeros((n, 1), np.int64), factors_full],
                                                     axis=1),
                      latents_values=np.concatenate([np.ones((n, 1)), values], axis=1),
                      metadata=np.array("tfdecomp test fixture"))
