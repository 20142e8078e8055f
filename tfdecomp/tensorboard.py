"""TensorBoard for decomposition VAEs: curves, images, latent histograms, config and HParams.

  model.fit(data, validation_data=x_val, callbacks=[
      tfdecomp.tensorboard.DecompTensorBoard("runs/r/tensorboard", examples=x_val[:1000],
                                             labels=y_val[:1000], config=config)])

`tfdecomp.training.train` adds it (log_dir = the run's `tensorboard/`), and writes the test-set
terms after training (`write_metrics`); `tfdecomp-evaluate --run` adds the evaluation's metrics
(`write_evaluation`). The layout (tags; steps are epochs counted from 1 unless noted):

  train/        epoch/<term>           loss, reconstruction, kl, divergence, elbo, beta, alpha
                epoch/learning_rate
                step/<term>            the same every `update_freq` optimizer steps (step =
                step/learning_rate     optimizer steps done)
                prior/<parameter>      the prior's learnable parameters, when it has any:
                                       prior/variance/zD, prior/weight/kK (mixture weights),
                                       prior/mean/kK_zD (at most 64 scalars; larger ones as
                                       histograms prior/<variable name>)
  validation/   epoch/<term>           the loss terms on `validation_data` (fit's val_ logs)
  . (root)      config                 text: the run's settings as a markdown table (step 0)
                (hparams plugin)       the session: the run's settings as hyperparameters
                images/reconstructions inputs (top row) above E[x|z = E[z|x]]      (image data)
                images/prior_samples   E[x|z], z ~ p(z) from a fixed seed           (image data)
                images/traversals      the most active dimensions swept from -2.5 to 2.5
                images/aggregate_posterior  E[z|x] of the evaluation batch over the prior's
                                       density (D = 2; for D > 2 its two most active
                                       dimensions, the density as a histogram of prior samples)
                images/data_reconstructions 2-D data and their reconstructions (2-D data)
                posterior/loc/zD       histograms of E[z_d|x] over the evaluation batch
                posterior/scale/zD     histograms of the posterior standard deviations
                test/<term>            the test-set terms (`write_metrics`, step = epochs)
                evaluation/<metric>/<key>  tfdecomp-evaluate's scalar results

In the HParams dashboard each run is one session; its metrics are the scalar tags above (the
last value of each), so runs and sweeps compare side by side with `tensorboard --logdir` on their
common parent. No experiment config is written per run: TensorBoard infers one from the
sessions, which keeps a parent directory of many runs consistent.

Cost. Nothing is added to the compiled step: the logged metrics come from `fit`'s logs, and
images and histograms are computed between epochs from a fixed evaluation batch. Events are
built as TensorBoard's protobufs and appended with TensorFlow's record writer (no TensorFlow summary
ops: an eager `tf.summary.scalar` costs about 0.2 ms here, which the 500 one-step epochs of the
pinwheel preset would feel). Epochs shorter than `scalar_interval` (1 s) are buffered: their
scalars (the loss terms, and the learning rate and prior parameters read at each epoch's end)
are kept in memory and written together once a second, each at its own epoch. Work done right
after a step competes with TensorFlow's threads winding down: one write of 100 epochs costs a
third of 100 writes, one after each epoch (0.05 vs 0.17 ms an epoch, measured in the pinwheel
fit). Every epoch reaches the file by the end of `fit`. Images and histograms are written every
`image_freq` epochs; the default ("auto") writes them whenever the time spent on them stays within `image_budget` (2%) of the training
time (the first after about 50 s of training), and always after the last epoch
(benchmarks/tensorboard_overhead.py measures the step rate with and without the callback).
"""

import io
import json
import math
import os
import time
from typing import Optional

import numpy as np
import keras

__all__ = ["DecompTensorBoard", "EventWriter", "write_metrics", "write_evaluation",
           "latent_activity", "most_active", "image_grid_array", "config_markdown",
           "hparams_of", "UPDATE_FREQ", "IMAGE_BUDGET", "FIRST_IMAGE_SECONDS",
           "SCALAR_INTERVAL"]

#: Default optimizer steps between step-level scalars.
UPDATE_FREQ = 100
#: Default share of the training time that images and histograms may take (image_freq="auto").
IMAGE_BUDGET = 0.02
#: The cost assumed for the first image write with image_freq="auto" (seconds; then measured):
#: with a 2% budget, the first images come after about 50 s of training, and a run shorter than
#: that has its images only after its last epoch.
FIRST_IMAGE_SECONDS = 1.0
#: Seconds between writes of the epoch scalars of short epochs (DecompTensorBoard's default).
SCALAR_INTERVAL = 1.0
#: Loss terms of the validation writer (beta and alpha are the same as in training).
_VALIDATION_TERMS = ("loss", "reconstruction", "kl", "divergence", "elbo")
#: At most this many scalars per prior parameter; larger ones are written as a histogram.
_MAX_PRIOR_SCALARS = 64


class EventWriter:
  """Writes TensorBoard events to one directory: an `events.out.tfevents.*` record file.

  The file is created on the first write. Values are built as the `tf.summary` v2 ops build
  them (scalars and histograms as tensors with their plugin's metadata), images as PNG. Events
  are serialised in the caller's thread and appended with TensorFlow's record writer (the
  TFRecord framing TensorBoard reads, its CRC in C++: TensorBoard's own writer computes it in
  Python on a background thread, which holds the GIL against the training loop). Buffered
  writes reach the file at least every `flush_secs` seconds of writing, on `flush` and `close`.

  Args:
    logdir: the directory of this TensorBoard "run" (e.g. `<log_dir>/train`).
    flush_secs: the longest time a written event stays in memory while events are written.
  """

  _scalar_metadata = None
  _count = 0  # Distinguishes files created in the same second by one process.

  def __init__(self, logdir, flush_secs: float = 10.0):
    self.logdir = os.fspath(logdir)
    self.flush_secs = float(flush_secs)
    self._writer = None
    self._last_flush = 0.0
    self.path = None

  def _open(self):
    import socket  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
    os.makedirs(self.logdir, exist_ok=True)
    EventWriter._count += 1
    self.path = os.path.join(self.logdir, "events.out.tfevents.%010d.%s.%d.%d" % (
        time.time(), socket.gethostname(), os.getpid(), EventWriter._count))
    self._writer = tf.io.TFRecordWriter(self.path)
    self._writer.write(event_pb2.Event(wall_time=time.time(),
                                       file_version="brain.Event:2").SerializeToString())
    self._last_flush = time.monotonic()

  def _add(self, summary, step):
    from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
    if self._writer is None:
      self._open()
    self._writer.write(event_pb2.Event(wall_time=time.time(), step=int(step),
                                       summary=summary).SerializeToString())
    if time.monotonic() - self._last_flush >= self.flush_secs:
      self.flush()

  def scalars(self, values: dict, step: int, prefix: str = "") -> None:
    """Writes {tag: number} as scalars at `step` (non-numeric values are skipped)."""
    from tensorboard.compat.proto import summary_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import tensor_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import types_pb2  # pylint: disable=g-import-not-at-top
    if EventWriter._scalar_metadata is None:
      from tensorboard.plugins.scalar import metadata  # pylint: disable=g-import-not-at-top
      EventWriter._scalar_metadata = metadata.create_summary_metadata(display_name=None,
                                                                      description=None)
    summary = summary_pb2.Summary()
    for tag, value in values.items():
      try:
        value = float(value)
      except (TypeError, ValueError):
        continue
      # What tf.summary.scalar writes: a float32 scalar tensor with the scalars plugin's
      # metadata (built directly: TensorBoard's make_tensor_proto costs ~25 us a value).
      summary.value.add(tag=prefix + tag, metadata=EventWriter._scalar_metadata,
                        tensor=tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                                      float_val=[value]))
    if summary.value:
      self._add(summary, step)

  def histogram(self, tag: str, data, step: int, buckets: int = 30) -> None:
    """Writes a histogram of `data` (any shape)."""
    from tensorboard.plugins.histogram import summary_v2  # pylint: disable=g-import-not-at-top
    data = np.asarray(data, np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size and np.ptp(data) <= 1e-9 * (1.0 + np.abs(data).max()):
      data = np.full_like(data, data[0])  # A (near-)constant: one bucket, no 0/0 bucket width.
    self._add(summary_v2.histogram_pb(tag, data, buckets=buckets), step)

  def image(self, tag: str, image, step: int, description: Optional[str] = None) -> None:
    """Writes an image: uint8 or [0, 1] float [H, W] or [H, W, 1 | 3 | 4], or PNG bytes.

    As `tf.summary.image` writes it: a string tensor [width, height, PNG] with the images
    plugin's metadata; `description` (markdown) is shown on the image's card.
    """
    from tensorboard.compat.proto import summary_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import tensor_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import tensor_shape_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import types_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.plugins.image import metadata  # pylint: disable=g-import-not-at-top
    png, (height, width, _) = _png(image)
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]),
        string_val=[str(width).encode(), str(height).encode(), png])
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(
        display_name=None, description=description))
    self._add(summary, step)

  def text(self, tag: str, text: str, step: int = 0) -> None:
    """Writes markdown text."""
    from tensorboard.plugins.text import summary_v2  # pylint: disable=g-import-not-at-top
    self._add(summary_v2.text_pb(tag, text), step)

  def hparams(self, hparams: dict, trial_id: Optional[str] = None) -> None:
    """Writes the HParams plugin's session start: {name: bool | int | float | str}."""
    from tensorboard.plugins.hparams import summary_v2  # pylint: disable=g-import-not-at-top
    self._add(summary_v2.hparams_pb(hparams, trial_id=trial_id), 0)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()
      self._last_flush = time.monotonic()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def _png(image):
  """(PNG bytes, (height, width, channels)) of an image array or of PNG bytes."""
  from PIL import Image  # pylint: disable=g-import-not-at-top  (matplotlib depends on Pillow)
  if isinstance(image, (bytes, bytearray)):
    with Image.open(io.BytesIO(image)) as decoded:
      return bytes(image), (decoded.height, decoded.width, len(decoded.getbands()))
  array = np.asarray(image)
  if array.dtype != np.uint8:
    array = (np.clip(np.nan_to_num(array.astype(np.float64)), 0.0, 1.0) * 255 + 0.5).astype(
        np.uint8)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  if array.ndim not in (2, 3):
    raise ValueError(f"an image must be [H, W] or [H, W, channels], got {array.shape}.")
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  channels = 1 if array.ndim == 2 else array.shape[-1]
  return buffer.getvalue(), (array.shape[0], array.shape[1], channels)


def _figure_png(fig, dpi=80) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=dpi)  # The figures lay themselves out (tight_layout).
  return buffer.getvalue()


def image_grid_array(rows, pad: int = 2, min_size: int = 48) -> np.ndarray:
  """Tiles images into one array, with `pad` white pixels between them.

  Args:
    rows: [R, C, H, W, channels] values in [0, 1] (channels 1 or 3).
    pad: pixels between images.
    min_size: images smaller than this are enlarged by an integer factor (nearest neighbour),
      so that 8x8 or 32x32 images stay visible in TensorBoard.

  Returns:
    float [R * (H + pad) - pad, C * (W + pad) - pad, channels] in [0, 1].
  """
  rows = np.clip(np.asarray(rows, np.float32), 0.0, 1.0)
  if rows.ndim != 5:
    raise ValueError(f"rows must be [R, C, H, W, channels], got {rows.shape}.")
  factor = max(1, int(math.ceil(min_size / max(rows.shape[2], rows.shape[3]))))
  if factor > 1:
    rows = rows.repeat(factor, axis=2).repeat(factor, axis=3)
  r, c, h, w, ch = rows.shape
  out = np.ones((r * (h + pad) - pad, c * (w + pad) - pad, ch), np.float32)
  for i in range(r):
    for j in range(c):
      out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = rows[i, j]
  return out


def latent_activity(loc) -> np.ndarray:
  """Activity of each latent dimension: Var_x[E[z_d|x]] over a batch (Burda et al., 2016).

  Args:
    loc: posterior means E[z|x], [N, D].

  Returns:
    float64 [D].
  """
  loc = np.asarray(loc, np.float64)
  return np.var(loc, axis=0) if len(loc) > 1 else np.zeros(loc.shape[-1])


def most_active(loc, k: int) -> np.ndarray:
  """The `k` most active dimensions (`latent_activity`), most active first: int [min(k, D)]."""
  activity = latent_activity(loc)
  return np.argsort(-activity, kind="stable")[:min(int(k), activity.size)]


def _settings_value(value):
  """A config value as a bool, int, float or str (HParams accepts only those)."""
  if isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (np.floating,)):
    return float(value)
  if value is None:
    return "none"
  return json.dumps(value)


def hparams_of(settings: dict) -> dict:
  """The HParams of a run: every setting as a bool, int, float or str (None -> "none")."""
  return {str(k): _settings_value(v) for k, v in settings.items()}


def config_markdown(settings: dict) -> str:
  """The settings as a two-column markdown table (setting | value)."""
  lines = ["| setting | value |", "|---|---|"]
  for key in sorted(settings):
    value = settings[key]
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    lines.append(f"| {key} | {text.replace('|', '/')} |")
  return "\n".join(lines)


def _model_settings(model) -> dict:
  """Settings of a model without a run config (the DecompVAE's own arguments)."""
  settings = {}
  for name in ("latent_dim", "divergence", "num_samples", "seed"):
    if hasattr(model, name):
      settings[name] = getattr(model, name)
  prior = getattr(model, "prior", None)
  if prior is not None:
    settings["prior"] = type(prior).__name__
  likelihood = getattr(model, "likelihood", None)
  if likelihood is not None:
    settings["likelihood"] = type(likelihood).__name__
  return settings


def _float_logs(logs):
  out = {}
  for key, value in (logs or {}).items():
    try:
      out[key] = float(value)
    except (TypeError, ValueError):
      continue
  return out


class DecompTensorBoard(keras.callbacks.Callback):
  """Writes a decomposition VAE's training to TensorBoard (see the module docstring).

  Works in any `fit`; the images, histograms and prior parameters need a `DecompVAE` (or a
  model with its `encode`, `decode`, `sample`, `traverse` and `prior`), and are skipped for
  other models or when `examples` is None.

  Args:
    log_dir: the TensorBoard directory (a run's `tensorboard/`).
    examples: optional fixed evaluation batch x [N, ...] for images and histograms (a few
      hundred to a thousand examples).
    labels: optional [N] classes of `examples` (colour the aggregate posterior).
    config: optional run settings (a `tfdecomp.configs.Config` or a dict) for the config table
      and the HParams session; default: the model's own arguments.
    update_freq: optimizer steps between step-level scalars (None or 0: none).
    image_freq: epochs between images and histograms, or "auto" (see the module docstring), or
      None / 0 (none).
    image_budget: share of the training time images and histograms may take with "auto".
    max_images: columns of the reconstruction and sample grids.
    traversal_dims: rows of the traversal image (the most active dimensions).
    traversal_values: values given to the traversed dimension.
    seed: seed of the prior samples (the same every time, so epochs compare).
    hparams: write the HParams session.
    trial_id: the session's name in the HParams dashboard (default: derived by TensorBoard).
    scalar_interval: seconds between writes of buffered epoch scalars (0: write every epoch).
  """

  def __init__(self, log_dir, examples=None, labels=None, config=None,
               update_freq: Optional[int] = UPDATE_FREQ, image_freq="auto",
               image_budget: float = IMAGE_BUDGET, max_images: int = 8, traversal_dims: int = 6,
               traversal_values=np.linspace(-2.5, 2.5, 9), seed: int = 0, hparams: bool = True,
               trial_id: Optional[str] = None, scalar_interval: float = SCALAR_INTERVAL):
    super().__init__()
    if image_freq not in (None, "auto") and (not isinstance(image_freq, int) or image_freq < 0):
      raise ValueError(f"image_freq must be 'auto', None or an integer >= 0, got {image_freq!r}.")
    self.log_dir = os.fspath(log_dir)
    self.examples = None if examples is None else np.asarray(examples, np.float32)
    self.labels = None if labels is None else np.asarray(labels)
    if config is not None and hasattr(config, "to_dict"):
      config = config.to_dict()
    self.config = dict(config) if config is not None else None
    self.update_freq = int(update_freq or 0)
    self.image_freq = image_freq or 0
    self.image_budget = float(image_budget)
    self.max_images = int(max_images)
    self.traversal_dims = int(traversal_dims)
    self.traversal_values = np.asarray(traversal_values, np.float32)
    self.seed = int(seed)
    self.write_hparams = bool(hparams)
    self.trial_id = trial_id
    self.scalar_interval = float(scalar_interval)
    # Buffered epochs: (epochs_done, train terms, validation terms, prior parameters).
    self._pending = []
    self._last_scalars = 0.0
    self.train = EventWriter(os.path.join(self.log_dir, "train"))
    self.validation = EventWriter(os.path.join(self.log_dir, "validation"))
    self.root = EventWriter(self.log_dir)
    self.image_seconds = 0.0  # Time spent on images and histograms.
    self.images_written = 0
    self._train_start = None
    self._step0 = 0
    self._previous_step = 0
    self._epoch = 0
    self._first_epoch = None
    self._learnt_prior = False
    self._last_image_epoch = None

  # ---- fit hooks --------------------------------------------------------------------------

  def on_train_begin(self, logs=None):
    self._train_start = time.monotonic()
    optimizer = getattr(self.model, "optimizer", None)
    self._step0 = int(optimizer.iterations.numpy()) if optimizer is not None else 0
    self._previous_step = self._step0
    self._pending = []
    self._last_scalars = time.monotonic()
    self._first_epoch = None
    prior = getattr(self.model, "prior", None)
    self._learnt_prior = bool(prior is not None and getattr(prior, "trainable_weights", None))
    settings = self.config if self.config is not None else _model_settings(self.model)
    self.root.text("config", config_markdown(settings), step=0)
    if self.write_hparams:
      self.root.hparams(hparams_of(settings), trial_id=self.trial_id)
    self.root.flush()

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch
    if self._first_epoch is None:
      self._first_epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    if not self.update_freq:
      return
    # Optimizer steps done, counted without reading the device (with steps_per_execution > 1
    # Keras calls this once per execution, with `batch` the execution's last step).
    steps = (self.params or {}).get("steps") or 0
    step = self._step0 + (self._epoch - (self._first_epoch or 0)) * steps + batch + 1
    previous, self._previous_step = self._previous_step, step
    if step // self.update_freq == previous // self.update_freq:
      return
    values = _float_logs(logs)
    values["learning_rate"] = self._learning_rate()
    self.train.scalars(values, step, prefix="step/")

  def on_epoch_end(self, epoch, logs=None):
    epochs_done = epoch + 1
    logs = _float_logs(logs)
    train = {k: v for k, v in logs.items() if not k.startswith("val_")}
    validation = {k[len("val_"):]: v for k, v in logs.items()
                  if k.startswith("val_") and k[len("val_"):] in _VALIDATION_TERMS}
    train["learning_rate"] = self._learning_rate()
    parameters = self._prior_parameters() if self._learnt_prior else {}
    self._pending.append((epochs_done, train, validation, parameters))
    images = self._images_due(epochs_done)
    if images or time.monotonic() - self._last_scalars >= self.scalar_interval:
      self.write_epoch_scalars()
    if images:
      self.write_images(epochs_done)

  def write_epoch_scalars(self):
    """Writes the buffered epochs' scalars (each at its own epoch)."""
    if not self._pending:
      return
    pending, self._pending = self._pending, []
    for epochs_done, train, validation, parameters in pending:
      self.train.scalars(train, epochs_done, prefix="epoch/")
      if validation:
        self.validation.scalars(validation, epochs_done, prefix="epoch/")
      if parameters:
        self.train.scalars(_prior_scalars(parameters), epochs_done)
        for name, value in parameters.items():
          if value.size > _MAX_PRIOR_SCALARS:
            self.train.histogram(f"prior/{name}", value, epochs_done)
    self._last_scalars = time.monotonic()

  def on_train_end(self, logs=None):
    self.write_epoch_scalars()
    epochs_done = self._epoch + 1
    if (self.image_freq and self.examples is not None and self._last_image_epoch != epochs_done
        and self._train_start is not None and self._first_epoch is not None):
      self.write_images(epochs_done)
    for writer in (self.train, self.validation, self.root):
      writer.close()

  # ---- what is written --------------------------------------------------------------------

  def _learning_rate(self):
    optimizer = getattr(self.model, "optimizer", None)
    if optimizer is None:
      return float("nan")
    try:
      variable = getattr(optimizer, "_learning_rate", None)
      if isinstance(variable, keras.Variable):  # A constant (or callback-set) rate: one read.
        return float(variable.numpy())
      return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
      return float("nan")

  def _prior_parameters(self):
    """{name: numpy array} of the prior's trained parameters, by meaning."""
    prior = getattr(self.model, "prior", None)
    if prior is None or not getattr(prior, "trainable_weights", None):
      return {}
    trainable = {id(v) for v in prior.trainable_weights}
    out = {}
    named = (("variances_logits", "variance", lambda p: p.variances),
             ("weights_logits", "weight", lambda p: p.mixture_weights),
             ("means", "mean", lambda p: p.means))
    seen = set()
    for attr, name, value in named:
      variable = getattr(prior, attr, None)
      if variable is not None and id(variable) in trainable:
        out[name] = np.asarray(keras.ops.convert_to_numpy(value(prior)))
        seen.add(id(variable))
    for variable in prior.trainable_weights:
      if id(variable) not in seen:
        label = variable.name.split(":")[0].replace("/", "_")
        out[label] = np.asarray(keras.ops.convert_to_numpy(variable))
    return out

  def _images_due(self, epochs_done):
    if not self.image_freq or self.examples is None or not hasattr(self.model, "encode"):
      return False
    if isinstance(self.image_freq, int):
      return epochs_done % self.image_freq == 0
    # "auto": write when the time spent on images, with the next write (its cost estimated from
    # the writes so far, FIRST_IMAGE_SECONDS before any), stays within the budget.
    elapsed = time.monotonic() - self._train_start
    per_write = (self.image_seconds / self.images_written if self.images_written
                 else FIRST_IMAGE_SECONDS)
    return self.image_seconds + per_write <= self.image_budget * max(elapsed - self.image_seconds,
                                                                     0.0)

  def write_images(self, step):
    """Writes the images and latent histograms of the evaluation batch at `step` (epochs)."""
    if self.examples is None or not hasattr(self.model, "encode"):
      return
    start = time.monotonic()
    model, x = self.model, self.examples
    loc, scale = (np.asarray(t) for t in model.encode(x, batch_size=500))
    latent_dim = loc.shape[1]
    for d in range(latent_dim):
      self.root.histogram(f"posterior/loc/z{d}", loc[:, d], step)
      self.root.histogram(f"posterior/scale/z{d}", scale[:, d], step)
    active = most_active(loc, max(2, self.traversal_dims))
    if x.ndim == 4:  # Images [N, H, W, C].
      n = min(self.max_images, len(x))
      reconstruction = np.asarray(model.decode(loc[:n]))
      self.root.image("images/reconstructions",
                      image_grid_array(np.stack([x[:n], reconstruction])), step,
                      "Top row: evaluation inputs x; bottom row: E[x|z = E[z|x]].")
      from tfdecomp import seeds  # pylint: disable=g-import-not-at-top
      samples = np.asarray(model.sample(n, seed=seeds.make_seed(self.seed)))
      self.root.image("images/prior_samples", image_grid_array(samples[None]), step,
                      "E[x|z] for z ~ p(z), the same draws of z at every step.")
      dims = active[:self.traversal_dims]
      rows = np.stack([np.asarray(model.traverse(x[:1], int(d), self.traversal_values))[0]
                       for d in dims])
      values = self.traversal_values
      self.root.image(
          "images/traversals", image_grid_array(rows), step,
          f"Rows: latent dimensions {', '.join(f'z{d}' for d in dims)} (most active first: "
          f"Var E[z_d|x]); columns: z_d from {values.min():g} to {values.max():g}, the other "
          "dimensions at E[z|x] of the first evaluation example.")
    elif x.ndim == 2 and x.shape[1] == 2:
      from tfdecomp import plots  # pylint: disable=g-import-not-at-top
      fig = plots.scatter_reconstructions(x, np.asarray(model.decode(loc)))
      self.root.image("images/data_reconstructions", _figure_png(fig), step,
                      "2-D data and their reconstructions E[x|z = E[z|x]].")
    prior = getattr(model, "prior", None)
    if prior is not None and latent_dim >= 2:
      self.root.image("images/aggregate_posterior",
                      _figure_png(self._aggregate_posterior(loc, scale, active[:2], step)), step,
                      "E[z|x] of the evaluation batch over the prior's density"
                      + ("." if latent_dim == 2 else
                         f" (dimensions z{active[0]}, z{active[1]}, the most active; the "
                         "density is a histogram of prior samples)."))
    self.root.flush()
    self._last_image_epoch = step
    self.images_written += 1
    self.image_seconds += time.monotonic() - start

  def _aggregate_posterior(self, loc, scale, dims, step):
    from tfdecomp import plots  # pylint: disable=g-import-not-at-top
    from tfdecomp import seeds  # pylint: disable=g-import-not-at-top
    model = self.model
    labels = self.labels if self.labels is not None and self.labels.ndim == 1 else None
    beta, alpha = _current_weights(model)
    title = f"aggregate posterior over p(z), epoch {step}"
    if loc.shape[1] == 2:
      rng = np.random.default_rng(self.seed)
      return plots.aggregate_posterior(
          loc, lambda z: model.prior.log_prob(z).numpy(),
          samples=loc + scale * rng.standard_normal(loc.shape), labels=labels, title=title,
          beta=beta, alpha=alpha, grid_size=80)
    prior_samples = np.asarray(model.prior.sample(5000, seed=seeds.make_seed(self.seed)))
    return plots.aggregate_posterior(
        loc[:, dims], prior_samples=prior_samples[:, dims], labels=labels, title=title,
        axis_labels=[f"z{d}" for d in dims], beta=beta, alpha=alpha)


def _prior_scalars(parameters):
  """{tag: value} of the prior's parameters with at most _MAX_PRIOR_SCALARS entries each."""
  scalars = {}
  for name, value in parameters.items():
    if value.size > _MAX_PRIOR_SCALARS:
      continue
    if name == "variance":
      keys = [f"prior/variance/z{d}" for d in range(value.size)]
    elif name == "weight":
      keys = [f"prior/weight/k{k}" for k in range(value.size)]
    elif name == "mean" and value.ndim == 2:
      keys = [f"prior/mean/k{k}_z{d}" for k in range(value.shape[0])
              for d in range(value.shape[1])]
    else:
      keys = [f"prior/{name}/{i}" for i in range(value.size)]
    scalars.update(zip(keys, value.ravel().tolist()))
  return scalars


def _current_weights(model):
  """(beta, alpha) at the model's optimizer step, or (None, None)."""
  try:
    step = model.optimizer.iterations
    return float(model.beta(step)), (float(model.alpha(step)) if model.divergence else 0.0)
  except (AttributeError, TypeError, ValueError):
    return None, None


def write_metrics(log_dir, metrics: dict, step: int, prefix: str = "test/") -> None:
  """Writes the numeric entries of `metrics` (e.g. metrics.json's test-set terms) as scalars
  `<prefix><name>` in the root of `log_dir` at `step`."""
  writer = EventWriter(log_dir)
  writer.scalars({k: v for k, v in metrics.items()
                  if k not in ("epochs", "examples") and not isinstance(v, (dict, list, str,
                                                                              bool))},
                 step, prefix=prefix)
  writer.close()


def write_evaluation(log_dir, document: dict, step: Optional[int] = None) -> int:
  """Writes an evaluation's scalar results (`tfdecomp.evaluation` document) into `log_dir`.

  Each `results[metric][key]` number becomes `evaluation/<metric>/<key>` at `step` (default:
  the evaluated model's epochs, `document["model"]["epochs_done"]`, else 0). Returns the number
  of scalars written.
  """
  if step is None:
    step = int((document.get("model") or {}).get("epochs_done", 0) or 0)
  values = {}
  for metric, result in (document.get("results") or {}).items():
    for key, value in (result or {}).items():
      if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "seconds" \
          and math.isfinite(float(value)):
        values[f"evaluation/{metric}/{key}"] = value
  if values:
    writer = EventWriter(log_dir)
    writer.scalars(values, step)
    writer.close()
  return len(values)
