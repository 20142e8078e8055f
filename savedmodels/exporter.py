"""Export a trained DecompVAE as a SavedModel for serving, and load it back for evaluation.

The SavedModel has named endpoints (also serving signatures) with dict outputs, modelled on
disentanglement_lib's `gaussian_encoder` / `decoder` / `reconstructions` signatures; randomness is
an explicit stateless seed input:

  encode(x [B, *x_shape])               -> {"loc": [B, D], "scale": [B, D]}      q(z|x)
  decode(z [N, D])                      -> {"mean": [N, *x_shape], "params": decoder outputs}
  reconstruct(x [B, *x_shape])          -> {"reconstruction": [B, *x_shape]}    E[x | z = E[z|x]]
  sample(num_samples [], seed int32[2]) -> {"z": [n, D], "x": [n, *x_shape]}   z ~ p(z), E[x|z]
  prior_log_prob(z [N, D])              -> {"log_prob": [N]}

`tfdecomp.json` beside it records the input shape, the prior (with its trained variances) and the
likelihood, so `load` can rebuild p(z) and p(x|z) as TFP distributions: evaluation (ELBO, IWAE,
every metric) runs from the exported artifact alone.

  python -m savedmodels --run runs/clustering-... [--out DIR]
"""

import json
import os
import shutil

from tfdecomp import _io
from tfdecomp import export as export_lib
from tfdecomp.export import METADATA_FILE
from tfdecomp.export import export_version

__all__ = ["METADATA_FILE", "export", "export_version", "load", "ExportedModel"]


def export(model, path, input_shape, overwrite=False, extra_metadata=None) -> str:
  """Writes `model` as one SavedModel directory at `path`, atomically (unversioned).

  For TF Serving's `<base>/<version>/` layout use `export_version` (`tfdecomp.export`). The
  archive (signatures in `tfdecomp.export`) is written to a temporary sibling directory and
  renamed into place, so `path` is either absent, the previous export, or the complete new one.

  Args:
    model: a built `tfdecomp.DecompVAE`.
    path: the SavedModel directory to create.
    input_shape: the shape of one example, e.g. (64, 64, 1) or (2,).
    overwrite: replace an existing export at `path`.
    extra_metadata: optional JSON-able dict stored in tfdecomp.json.

  Returns:
    The path.

  Raises:
    FileExistsError: if `path` exists and `overwrite` is False.
  """
  path = os.path.abspath(os.fspath(path))
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it.")
  tmp = _io.temp_directory_beside(path)
  try:
    export_lib.write_savedmodel(model, tmp, input_shape, extra_metadata=extra_metadata)
    if os.path.exists(path):
      old = _io.temp_directory_beside(path)
      os.replace(path, os.path.join(old, "export"))
      os.replace(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return path


class ExportedModel:
  """A loaded export with the interface evaluation needs (that of `DecompVAE` where shared).

  Attributes:
    input_shape: shape of one example.
    latent_dim: D.
    prior: the `tfdecomp.priors.Prior` (rebuilt from the metadata, with trained variances).
    likelihood: the `tfdecomp.likelihoods.Likelihood`.
    signatures: the raw SavedModel endpoints.
  """

  def __init__(self, path):
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tfdecomp  # pylint: disable=g-import-not-at-top,unused-import  (registers classes)

    self.path = os.fspath(path)
    latest = export_lib.latest_version(self.path)
    if latest is not None and not os.path.exists(os.path.join(self.path, METADATA_FILE)):
      self.path = os.path.join(self.path, str(latest))  # A base path: its highest version.
    meta_path = os.path.join(self.path, METADATA_FILE)
    if not os.path.exists(meta_path):
      raise FileNotFoundError(f"{meta_path} not found: {self.path} is not a tfdecomp export "
                              "(write one with `python -m savedmodels --run DIR`).")
    with open(meta_path, encoding="utf-8") as f:
      self.metadata = json.load(f)
    self._module = tf.saved_model.load(self.path)
    self.input_shape = tuple(self.metadata["input_shape"])
    self.latent_dim = int(self.metadata["latent_dim"])
    self.prior = keras.saving.deserialize_keras_object(self.metadata["prior"])
    self.likelihood = keras.saving.deserialize_keras_object(self.metadata["likelihood"])

  def encode(self, x, batch_size=None):
    """(loc [B, D], scale [B, D]) of q(z|x), in chunks of `batch_size` if given."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    chunks = [x] if batch_size is None else [x[i:i + batch_size]
                                              for i in range(0, len(x), batch_size)]
    outs = [self._module.encode(tf.convert_to_tensor(c, tf.float32)) for c in chunks]
    return tf.concat([o["loc"] for o in outs], 0), tf.concat([o["scale"] for o in outs], 0)

  def decode(self, z):
    """E[x|z]: [N, *input_shape]."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return self._module.decode(tf.convert_to_tensor(z, tf.float32))["mean"]

  def likelihood_fn(self, z):
    """p(x|z) for z [N, D]: a distribution with batch [N] and event `input_shape`."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return self.likelihood.distribution(
        self._module.decode(tf.convert_to_tensor(z, tf.float32))["params"])

  def reconstruct(self, x):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return self._module.reconstruct(tf.convert_to_tensor(x, tf.float32))["reconstruction"]

  def sample(self, n, seed=0):
    """E[x|z] for n draws z ~ p(z); `seed` an int or int32 [2]."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tfdecomp import seeds  # pylint: disable=g-import-not-at-top
    return self._module.sample(tf.constant(n, tf.int32), seeds.make_seed(seed))["x"]

  @property
  def signatures(self):
    return self._module.signatures


def load(path) -> ExportedModel:
  """Loads an export written by `export`."""
  return ExportedModel(path)


def main(argv=None):
  import argparse  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(prog="python -m savedmodels",
                                   description="Export a training run as a SavedModel.")
  parser.add_argument("--run", required=True, help="run directory written by tfdecomp-train")
  parser.add_argument("--out", default=None, help="export directory (default <run>/savedmodel)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing export")
  args = parser.parse_args(argv)
  from tfdecomp import runs  # pylint: disable=g-import-not-at-top
  out = args.out or os.path.join(args.run, "savedmodel")
  try:
    model, config, epochs = runs.load_run(args.run)
    shape = model.encoder.inputs[0].shape[1:]
    export(model, out, shape, overwrite=args.overwrite,
           extra_metadata={"run": {**config.to_dict(), "epochs_done": epochs}})
  except (runs.RunError, FileExistsError, FileNotFoundError) as e:
    print(f"savedmodels: {e}", file=sys.stderr)
    return 2
  print(f"exported {args.run} (epoch {epochs}) -> {out}")
  return 0
