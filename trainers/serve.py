"""`tfdecomp-serve`: TF Serving's REST API for an export, and batch inference without a server.

  tfdecomp-serve --model_name=vae --model_base_path=runs/RUN/export --rest_api_port=8501
  tfdecomp-serve predict --model_base_path=runs/RUN/export --signature=encode \
      --input=x.npy --output=out.npz
"""

import gc
import sys

from absl import flags

from trainers import _cli

FLAGS = flags.FLAGS
PROG = "tfdecomp-serve"


def define_flags():
  flags.DEFINE_string("model_name", "default", "Model name in /v1/models/<name>.")
  flags.DEFINE_string("model_base_path", None, "Base path holding <version>/ directories.")
  flags.DEFINE_integer("rest_api_port", 8501, "HTTP port.")
  flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0 exposes the server).")
  flags.DEFINE_float("file_system_poll_wait_seconds", 1.0,
                     "Seconds between polls of the base path for a new version.")
  flags.DEFINE_integer("max_body_bytes", 32 * 1024 * 1024, "Largest request body accepted.")
  flags.DEFINE_string("signature", "serving_default", "predict: the signature to run.")
  flags.DEFINE_string("input", None, "predict: .npy (one-input signature) or .npz of inputs.")
  flags.DEFINE_string("output", None, "predict: .npz to write the outputs to.")
  flags.DEFINE_integer("batch_size", 256, "predict: examples per call.")


def _predict():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfdecomp import _io, serving  # pylint: disable=g-import-not-at-top
  if not FLAGS.input or not FLAGS.output:
    raise ValueError("predict needs --input=x.npy|.npz and --output=out.npz.")
  loaded = np.load(FLAGS.input)
  inputs = dict(loaded) if hasattr(loaded, "files") else loaded
  total = len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)
  from tfdecomp import progress as progress_lib  # pylint: disable=g-import-not-at-top
  with progress_lib.Progress(f"{FLAGS.signature} on {total} examples", total,
                             quiet=total <= 10 * FLAGS.batch_size) as bar:
    outputs = serving.predict_arrays(FLAGS.model_base_path, FLAGS.signature, inputs,
                                     batch_size=FLAGS.batch_size,
                                     progress=lambda done, _: bar.update(done))
  with _io.atomic_path(FLAGS.output, suffix=".npz") as tmp:
    np.savez(tmp, **outputs)
  print(f"{PROG}: wrote {FLAGS.output} ({', '.join(f'{k} {list(v.shape)}' for k, v in outputs.items())})")


def main(argv):
  if len(argv) > 2 or (len(argv) == 2 and argv[1] != "predict"):
    _cli.fail(PROG, f"unexpected arguments {' '.join(argv[1:])!r} (the only command is "
                    "`predict`).")
  if not FLAGS.model_base_path:
    _cli.fail(PROG, "--model_base_path is required (a directory of <version>/ exports).")
  from tfdecomp import serving  # pylint: disable=g-import-not-at-top
  try:
    if len(argv) == 2:
      _predict()
      return
    # A full garbage collection walks every object TensorFlow and Keras created at import
    # (~500k; ~180 ms here), and the parsing of JSON requests triggers one every few hundred
    # requests: that pause was the tail of the serving latency. Frozen objects are skipped.
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    import keras  # pylint: disable=g-import-not-at-top,unused-import
    gc.collect()
    gc.freeze()
    serving.serve(FLAGS.model_base_path, model_name=FLAGS.model_name, host=FLAGS.host,
                  port=FLAGS.rest_api_port, poll_seconds=FLAGS.file_system_poll_wait_seconds,
                  max_body_bytes=FLAGS.max_body_bytes,
                  log=lambda line: print(f"{PROG}: {line}", file=sys.stderr, flush=True))
  except (ValueError, OSError) as e:
    _cli.fail(PROG, e)


def run():
  """Console-script entry point (`tfdecomp-serve`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
