"""SavedModel export in TF Serving's layout: `<base>/<version>/`, written atomically.

  path = tfdecomp.export.export_version(model, "runs/my-run/export", input_shape=(2,))
  # -> runs/my-run/export/1/   (the next free integer version; never overwritten)

Every version is written to a hidden temporary directory beside it (`tfdecomp._io`) and renamed
into place, so `tensorflow_model_server --model_base_path=<base>` or `tfdecomp-serve` watching
the base path never sees half a version; a killed export leaves only a `.tmp-*` entry, which is
not an integer and is therefore ignored by both servers (and by `versions`).

Signatures (serving signature defs; inputs named, typed, trailing shape fixed, batch free):

  encode(x float32 [B, *x_shape])               -> loc [B, D], scale [B, D]     q(z|x)
  decode(z float32 [N, D])                      -> mean [N, *x_shape], params   E[x|z], p(x|z)
  reconstruct(x float32 [B, *x_shape])          -> reconstruction [B, *x_shape] E[x|z=E[z|x]]
  sample(num_samples int32 [], seed int32 [2])  -> z [n, D], x [n, *x_shape]    z ~ p(z)
  prior_log_prob(z float32 [N, D])              -> log_prob [N]                 log p(z)
  serving_default = encode

`tfdecomp.json` beside saved_model.pb records the input shape, the prior (with trained
variances) and the likelihood so `savedmodels.load` can rebuild them; the SavedModel itself
loads with TensorFlow alone.
"""

import json
import os

from tfdecomp import _io

__all__ = ["METADATA_FILE", "EXPORT_DIR", "write_savedmodel", "export_version", "export_run",
           "versions", "latest_version", "run_export_base"]

METADATA_FILE = "tfdecomp.json"
#: Directory of a run's versioned exports: `<run>/export/<version>/`.
EXPORT_DIR = "export"


def _prior_config(prior):
  """The prior's Keras config with its current (possibly trained) variance logits."""
  import keras  # pylint: disable=g-import-not-at-top
  config = keras.saving.serialize_keras_object(prior)
  if hasattr(prior, "variances_logits") and "variances_logits" in config.get("config", {}):
    config["config"]["variances_logits"] = prior.variances_logits.numpy().tolist()
  return config


def write_savedmodel(model, directory, input_shape, extra_metadata=None) -> str:
  """Writes the SavedModel of `model` (signatures above) and tfdecomp.json into `directory`.

  Not atomic by itself: callers write into a temporary directory and rename it.

  Args:
    model: a built `tfdecomp.DecompVAE`.
    directory: an existing empty directory, or a path to create.
    input_shape: the shape of one example, e.g. (64, 64, 1) or (2,).
    extra_metadata: optional JSON-able dict stored in tfdecomp.json.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  input_shape = tuple(int(d) for d in input_shape)
  latent_dim = int(model.latent_dim)
  x_spec = tf.TensorSpec([None, *input_shape], tf.float32, name="x")
  z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")

  def encode(x):
    loc, scale = model.encoder(x, training=False)
    return {"loc": loc, "scale": scale}

  def decode(z):
    params = model.decoder(z, training=False)
    return {"mean": model.likelihood.mean(params), "params": params}

  def reconstruct(x):
    loc, _ = model.encoder(x, training=False)
    return {"reconstruction": model.likelihood.mean(model.decoder(loc, training=False))}

  def sample(num_samples, seed):
    z = model.prior.distribution().sample(num_samples, seed=seed)
    return {"z": z, "x": model.likelihood.mean(model.decoder(z, training=False))}

  def prior_log_prob(z):
    return {"log_prob": model.prior.log_prob(z)}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("encode", encode, input_signature=[x_spec])
  archive.add_endpoint("decode", decode, input_signature=[z_spec])
  archive.add_endpoint("reconstruct", reconstruct, input_signature=[x_spec])
  archive.add_endpoint("sample", sample, input_signature=[
      tf.TensorSpec([], tf.int32, name="num_samples"),
      tf.TensorSpec([2], tf.int32, name="seed")])
  archive.add_endpoint("prior_log_prob", prior_log_prob, input_signature=[z_spec])
  metadata = {
      "format": 1,
      "input_shape": list(input_shape),
      "latent_dim": latent_dim,
      "prior": _prior_config(model.prior),
      "likelihood": keras.saving.serialize_keras_object(model.likelihood),
      "divergence": model.divergence,
      "model_name": model.name,
      **(extra_metadata or {}),
  }
  archive.write_out(os.fspath(directory), verbose=False)
  _io.atomic_write_text(os.path.join(directory, METADATA_FILE), json.dumps(metadata, indent=2))
  return os.fspath(directory)


def versions(base) -> list:
  """The complete versions under `base`, ascending: integer-named directories with a
  saved_model.pb (temporary `.tmp-*` entries and anything else are ignored, as TF Serving does)."""
  base = os.fspath(base)
  if not os.path.isdir(base):
    return []
  found = []
  for name in os.listdir(base):
    if name.isdigit() and os.path.isfile(os.path.join(base, name, "saved_model.pb")):
      found.append(int(name))
  return sorted(found)


def latest_version(base):
  """The highest version under `base`, or None."""
  found = versions(base)
  return found[-1] if found else None


def export_version(model, base, input_shape, version=None, extra_metadata=None) -> str:
  """Exports `model` to `<base>/<version>/` atomically (temporary directory + rename).

  Args:
    model: a built `tfdecomp.DecompVAE`.
    base: the model base path (TF Serving's `--model_base_path`).
    input_shape: the shape of one example.
    version: a positive integer; default the next free one (1 + the highest existing).
    extra_metadata: optional JSON-able dict stored in tfdecomp.json.

  Returns:
    The version directory.

  Raises:
    FileExistsError: if `<base>/<version>` exists (versions are never overwritten).
    ValueError: if `version` is not a positive integer.
  """
  base = os.path.abspath(os.fspath(base))
  if version is None:
    taken = [int(n) for n in os.listdir(base) if n.isdigit()] if os.path.isdir(base) else []
    version = max(taken, default=0) + 1
  if isinstance(version, bool) or not isinstance(version, int) or version < 1:
    raise ValueError(f"version={version!r}: give a positive integer.")
  path = os.path.join(base, str(version))
  if os.path.exists(path):
    raise FileExistsError(f"{path} exists: versions are never overwritten; choose another "
                          "--version or leave it out for the next free one.")
  with _io.atomic_directory(path) as tmp:
    write_savedmodel(model, tmp, input_shape, extra_metadata=extra_metadata)
  return path


def run_export_base(run_dir) -> str:
  """`<run>/export`, the base path of a run's versions."""
  return os.path.join(os.fspath(run_dir), EXPORT_DIR)


def export_run(model, config, run_dir, epochs_done, base=None, version=None) -> str:
  """Exports a run's model to `<base or run/export>/<next version>/`; returns the directory."""
  shape = model.encoder.inputs[0].shape[1:]
  return export_version(model, base or run_export_base(run_dir), shape, version=version,
                        extra_metadata={"run": {**config.to_dict(), "epochs_done": epochs_done}})
