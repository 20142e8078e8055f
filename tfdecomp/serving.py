"""A TF Serving-compatible REST server (Starlette app on uvicorn) and batch inference.

Speaks the subset of TF Serving's REST API a client of these models uses, so the same client code
works against `tensorflow_model_server --rest_api_port=... --model_base_path=<base>`:

  GET  /v1/models/<name>[/versions/<v>]             version status
  GET  /v1/models/<name>[/versions/<v>]/metadata    signature defs
  POST /v1/models/<name>[/versions/<v>]:predict
       {"signature_name": "encode", "instances": [{"x": ...}, ...]}  -> {"predictions": [...]}
       {"signature_name": "encode", "inputs": {"x": [...]}}          -> {"outputs": {...}}

Rows (`instances`) are one dict per example (or the bare value when the signature has one
input); with one output, `predictions` is a list of values, otherwise a list of dicts, as in TF
Serving. Columnar `inputs` may be a dict or a bare value for a one-input signature; a one-output
signature answers a bare value. Errors are `{"error": "..."}`: 400 for a request to fix (unknown
signature, wrong inner shape or dtype, malformed JSON, a body over `max_body_bytes`, more than
`max_instances` examples), 404 for an unknown model name or version.

The highest version under the base path is served; a `ModelWatcher` thread polls the base path
every `poll_seconds` and loads a newer version beside the served one before swapping a single
reference, so requests in flight finish on the old version and none is dropped.

Model calls go through one `BatchingRunner` thread: requests that arrive while a call is running
wait, and those for the same version and signature are then run as one batch (TF Serving's
batching, with no batching delay: a lone request runs at once). One TensorFlow call at a time
keeps concurrent requests from oversubscribing the intra-op thread pool, which on a small machine
made the latency's tail ten times its median.
"""

import collections
import concurrent.futures
import os
import queue
import threading

import numpy as np
import orjson

from tfdecomp import export as export_lib

__all__ = ["BatchingRunner", "ModelWatcher", "RequestError", "LoadedVersion", "make_app", "serve",
           "predict_arrays", "MAX_BODY_BYTES", "MAX_INSTANCES"]

#: Default limit of a request body (bytes); a dSprites image as JSON is ~20 kB.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Default limit of examples in one request.
MAX_INSTANCES = 1024


class RequestError(ValueError):
  """A request the client must fix; `status` is the HTTP status (400 or 404)."""

  def __init__(self, message, status=400):
    super().__init__(message)
    self.status = status


_DTYPE_NAMES = {"float32": "DT_FLOAT", "int32": "DT_INT32", "float64": "DT_DOUBLE",
                "int64": "DT_INT64"}


class LoadedVersion:
  """One loaded version: its signatures with their input specs and output names."""

  def __init__(self, path, version):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.path = path
    self.version = int(version)
    self.module = tf.saved_model.load(path)
    self.signatures = {}
    for name, fn in self.module.signatures.items():
      _, kwargs = fn.structured_input_signature
      outputs = sorted(fn.structured_outputs)
      self.signatures[name] = (fn, dict(sorted(kwargs.items())), outputs)

  def metadata(self):
    """TF Serving's `signature_def` map for /metadata."""
    def tensor_info(spec, key):
      dims = [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape.as_list()]
      return {"dtype": _DTYPE_NAMES.get(spec.dtype.name, spec.dtype.name),
              "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": key}
    defs = {}
    for name, (fn, inputs, outputs) in self.signatures.items():
      outs = fn.structured_outputs
      defs[name] = {
          "inputs": {k: tensor_info(s, k) for k, s in inputs.items()},
          "outputs": {k: tensor_info(outs[k], k) for k in outputs},
          "method_name": "tensorflow/serving/predict"}
    return {"signature_def": {"signature_def": defs}}

  def _convert(self, name, value, spec):
    try:
      array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except (ValueError, TypeError):
      raise RequestError(f"input {name!r}: expected {spec.dtype.name} numbers of shape "
                         f"{_shape_text(spec)}, got a value that is not a numeric array.") from None
    if spec.dtype.is_integer and not np.all(np.asarray(value, dtype=np.float64) == array):
      raise RequestError(f"input {name!r}: expected {spec.dtype.name} (integers), got "
                         "non-integer numbers.")
    if not spec.shape.is_compatible_with(array.shape):
      raise RequestError(f"input {name!r}: expected shape {_shape_text(spec)}, got "
                         f"{list(array.shape)}.")
    return array

  def run(self, signature_name, inputs):
    """Runs a signature on a dict of numpy-convertible inputs; returns a dict of numpy arrays."""
    arrays = self.convert(signature_name, inputs)
    return self.call(signature_name, arrays)

  def convert(self, signature_name, inputs):
    """Validates a request's inputs against the signature; returns a dict of numpy arrays."""
    if signature_name not in self.signatures:
      raise RequestError(f"unknown signature_name {signature_name!r}; this model has "
                         f"{sorted(self.signatures)}.")
    _, specs, _ = self.signatures[signature_name]
    if not isinstance(inputs, dict) or set(inputs) != set(specs):
      got = sorted(inputs) if isinstance(inputs, dict) else "a bare value"
      raise RequestError(f"signature {signature_name!r} takes inputs {sorted(specs)}, got {got}.")
    return {k: self._convert(k, inputs[k], specs[k]) for k in specs}

  def call(self, signature_name, arrays):
    """Runs a signature on validated arrays (from `convert`); returns a dict of numpy arrays."""
    fn = self.signatures[signature_name][0]
    return {k: v.numpy() for k, v in fn(**arrays).items()}

  def batchable(self, signature_name):
    """Whether every input of the signature has a free leading batch dimension."""
    specs = self.signatures[signature_name][1]
    return all(s.shape.rank and s.shape[0] is None for s in specs.values())


class BatchingRunner:
  """Runs model calls on one thread, merging the requests that wait into one batch.

  `run(loaded, signature_name, arrays)` blocks until the result is ready. While one call runs,
  new requests queue; the next round takes every queued request, groups those for the same
  version and signature (when all its inputs have a batch dimension), concatenates them along
  the batch axis up to `max_batch` examples, makes one call and hands each request its rows.
  The signatures are row-wise (inference-mode layers), so a request's answer does not depend on
  what it was batched with, up to float summation order. A failing batch is retried request by
  request, so one bad request cannot fail the others.

  Args:
    max_batch: most examples in one merged call.
  """

  def __init__(self, max_batch=MAX_INSTANCES):
    self.max_batch = int(max_batch)
    self._queue = queue.SimpleQueue()
    self._thread = threading.Thread(target=self._loop, name="tfdecomp-batching-runner",
                                    daemon=True)
    self._thread.start()

  def run(self, loaded, signature_name, arrays):
    future = concurrent.futures.Future()
    self._queue.put((loaded, signature_name, arrays, future))
    return future.result()

  def close(self):
    self._queue.put(None)
    self._thread.join(timeout=5)

  def _loop(self):
    while True:
      item = self._queue.get()
      if item is None:
        return
      pending = [item]
      while True:
        try:
          item = self._queue.get_nowait()
        except queue.Empty:
          break
        if item is None:
          self._queue.put(None)
          break
        pending.append(item)
      try:
        self._run_round(pending)
      except BaseException as e:  # pylint: disable=broad-except  (never leave a request waiting)
        for request in pending:
          if not request[3].done():
            request[3].set_exception(e)

  def _run_round(self, pending):
    groups = collections.OrderedDict()
    for request in pending:
      loaded, name, _, future = request
      key = (id(loaded), name) if loaded.batchable(name) else (id(future),)
      groups.setdefault(key, []).append(request)
    for group in groups.values():
      if len(group) == 1:
        self._run_one(*group[0])
        continue
      batch, size = [], 0
      for request in group:
        rows = len(next(iter(request[2].values())))
        if batch and size + rows > self.max_batch:
          self._run_batch(batch)
          batch, size = [], 0
        batch.append(request)
        size += rows
      self._run_batch(batch)

  @staticmethod
  def _run_one(loaded, name, arrays, future):
    try:
      future.set_result(loaded.call(name, arrays))
    except BaseException as e:  # pylint: disable=broad-except  (reported to the request)
      future.set_exception(e)

  def _run_batch(self, batch):
    if len(batch) == 1:
      self._run_one(*batch[0])
      return
    loaded, name = batch[0][0], batch[0][1]
    sizes = [len(next(iter(arrays.values()))) for _, _, arrays, _ in batch]
    try:
      merged = {k: np.concatenate([arrays[k] for _, _, arrays, _ in batch], axis=0)
                for k in batch[0][2]}
      out = loaded.call(name, merged)
    except Exception:  # pylint: disable=broad-except  (retry alone: only the bad one fails)
      for request in batch:
        self._run_one(*request)
      return
    offsets = np.cumsum([0] + sizes)
    for (_, _, _, future), lo, hi in zip(batch, offsets[:-1], offsets[1:]):
      future.set_result({k: v[lo:hi] for k, v in out.items()})


def _shape_text(spec):
  return "[" + ", ".join("batch" if d is None else str(d) for d in spec.shape.as_list()) + "]"


class ModelWatcher:
  """Serves the highest version under `base_path`, polling for newer ones.

  Args:
    base_path: the model base path (`<base>/<version>/`).
    poll_seconds: seconds between polls (TF Serving's --file_system_poll_wait_seconds).
  """

  def __init__(self, base_path, poll_seconds=1.0):
    self.base_path = os.path.abspath(os.fspath(base_path))
    self.poll_seconds = float(poll_seconds)
    self.current = None
    self._stop = threading.Event()
    self._thread = None
    self.poll()
    if self.current is None:
      raise FileNotFoundError(f"no version under --model_base_path={self.base_path}: export one "
                              "with `tfdecomp-export --run DIR --base BASE`.")

  def poll(self):
    """Loads the highest version if it is newer than the served one; returns True if swapped."""
    latest = export_lib.latest_version(self.base_path)
    if latest is None or (self.current is not None and latest <= self.current.version):
      return False
    loaded = LoadedVersion(os.path.join(self.base_path, str(latest)), latest)
    self.current = loaded  # One reference swap: requests holding the old version finish on it.
    return True

  def start(self):
    def loop():
      while not self._stop.wait(self.poll_seconds):
        try:
          self.poll()
        except Exception:  # pylint: disable=broad-except  (keep serving the current version)
          pass
    self._thread = threading.Thread(target=loop, name="tfdecomp-model-watcher", daemon=True)
    self._thread.start()

  def stop(self):
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=5)


def _predict(loaded, body, runner=None):
  """Answers one :predict body (a parsed JSON object) on `loaded`, through `runner` if given."""
  def run(signature_name, inputs):
    arrays = loaded.convert(signature_name, inputs)
    if runner is None:
      return loaded.call(signature_name, arrays)
    return runner.run(loaded, signature_name, arrays)

  if not isinstance(body, dict):
    raise RequestError('the request body must be a JSON object {"signature_name": ..., '
                       '"instances": [...]} or {"inputs": ...}.')
  name = body.get("signature_name", "serving_default")
  if name not in loaded.signatures:
    raise RequestError(f"unknown signature_name {name!r}; this model has "
                       f"{sorted(loaded.signatures)}.")
  _, specs, outputs = loaded.signatures[name]
  if ("instances" in body) == ("inputs" in body):
    raise RequestError('give exactly one of "instances" (row format) and "inputs" (columnar).')
  if "inputs" in body:
    inputs = body["inputs"]
    if not isinstance(inputs, dict) and len(specs) == 1:
      inputs = {next(iter(specs)): inputs}
    if isinstance(inputs, dict):
      for k, v in inputs.items():
        if k in specs and specs[k].shape.rank and isinstance(v, list) and len(v) > MAX_INSTANCES:
          raise RequestError(f"too many examples ({len(v)}); send at most {MAX_INSTANCES} per "
                             "request.")
    result = run(name, inputs)
    out = {k: result[k].tolist() for k in outputs}
    return {"outputs": out[outputs[0]] if len(outputs) == 1 else out}
  instances = body["instances"]
  if not isinstance(instances, list) or not instances:
    raise RequestError('"instances" must be a non-empty list of examples.')
  if len(instances) > MAX_INSTANCES:
    raise RequestError(f"too many instances ({len(instances)}); send at most {MAX_INSTANCES} per "
                       "request.")
  if any(spec.shape.rank == 0 or spec.shape[0] is not None for spec in specs.values()):
    raise RequestError(f"signature {name!r} has inputs without a batch dimension; use the "
                       'columnar format {"inputs": {...}}.')
  if len(specs) == 1 and not all(isinstance(i, dict) for i in instances):
    rows = {next(iter(specs)): instances}
  else:
    if not all(isinstance(i, dict) and set(i) == set(specs) for i in instances):
      raise RequestError(f"each instance must be an object with keys {sorted(specs)}.")
    rows = {k: [i[k] for i in instances] for k in specs}
  result = run(name, rows)
  if len(outputs) == 1:
    return {"predictions": result[outputs[0]].tolist()}
  n = len(instances)
  return {"predictions": [{k: result[k][i].tolist() for k in outputs} for i in range(n)]}


def make_app(watcher, model_name, max_body_bytes=MAX_BODY_BYTES, runner=None):
  """The Starlette application serving `watcher`'s model under /v1/models/<model_name>.

  Model calls go through `runner` (a `BatchingRunner`; a new one when None).
  """
  runner = runner if runner is not None else BatchingRunner()
  from starlette.applications import Starlette  # pylint: disable=g-import-not-at-top
  from starlette.concurrency import run_in_threadpool  # pylint: disable=g-import-not-at-top
  from starlette.responses import Response  # pylint: disable=g-import-not-at-top

  class JSONResponse(Response):
    """JSON by orjson: a dSprites image parses in a fifth of the standard library's time."""
    media_type = "application/json"

    def render(self, content):
      return orjson.dumps(content)
  from starlette.routing import Route  # pylint: disable=g-import-not-at-top

  def error(message, status):
    return JSONResponse({"error": str(message)}, status_code=status)

  def resolve(request):
    if request.path_params["name"] != model_name:
      raise RequestError(f"Servable not found for request: model {request.path_params['name']!r}"
                         f" (this server has {model_name!r}).", 404)
    loaded = watcher.current
    version = request.path_params.get("version")
    if version is not None and (not version.isdigit() or int(version) != loaded.version):
      raise RequestError(f"Servable not found for request: version {version} of {model_name!r}"
                         f" (serving version {loaded.version}).", 404)
    return loaded

  async def status(request):
    try:
      loaded = resolve(request)
    except RequestError as e:
      return error(e, e.status)
    return JSONResponse({"model_version_status": [{
        "version": str(loaded.version), "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]})

  async def metadata(request):
    try:
      loaded = resolve(request)
    except RequestError as e:
      return error(e, e.status)
    return JSONResponse({"model_spec": {"name": model_name, "signature_name": "",
                                        "version": str(loaded.version)},
                         "metadata": loaded.metadata()})

  async def predict(request):
    try:
      loaded = resolve(request)
      declared = request.headers.get("content-length")
      if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise RequestError(f"request body of {declared} bytes is over the limit of "
                           f"{max_body_bytes}; send fewer instances per request.")
      raw = bytearray()
      async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_body_bytes:
          raise RequestError(f"request body is over the limit of {max_body_bytes} bytes; send "
                             "fewer instances per request.")
      try:
        body = orjson.loads(raw)
      except orjson.JSONDecodeError as e:
        raise RequestError(f"malformed JSON in the request body: {e}.") from None
      return JSONResponse(await run_in_threadpool(_predict, loaded, body, runner))
    except RequestError as e:
      return error(e, e.status)

  base = "/v1/models/{name}"
  routes = []
  for prefix in (base, base + "/versions/{version}"):
    routes += [Route(prefix, status, methods=["GET"]),
               Route(prefix + "/metadata", metadata, methods=["GET"]),
               Route(prefix + ":predict", predict, methods=["POST"])]
  return Starlette(routes=routes)


def serve(model_base_path, model_name="default", host="127.0.0.1", port=8501,
          poll_seconds=1.0, max_body_bytes=MAX_BODY_BYTES, log=None):
  """Serves the highest version under `model_base_path` over HTTP until interrupted."""
  import uvicorn  # pylint: disable=g-import-not-at-top
  watcher = ModelWatcher(model_base_path, poll_seconds=poll_seconds)
  watcher.start()
  if log:
    log(f"serving {model_name!r} version {watcher.current.version} from {watcher.base_path} "
        f"at http://{host}:{port}/v1/models/{model_name}")
  runner = BatchingRunner()
  try:
    uvicorn.run(make_app(watcher, model_name, max_body_bytes, runner), host=host, port=port,
                log_level="warning", access_log=False)
  finally:
    runner.close()
    watcher.stop()


def predict_arrays(model_base_path, signature, inputs, batch_size=256, progress=None):
  """Runs `signature` of the highest version under `model_base_path` on arrays, in chunks.

  Args:
    model_base_path: a base path `<base>/<version>/` or one version directory.
    signature: the signature name.
    inputs: dict of input name -> array with a leading batch dimension [B, ...] (or one array
      for a one-input signature).
    batch_size: examples per call.
    progress: optional callable(done, total) after each chunk.

  Returns:
    Dict of output name -> array [B, ...].
  """
  path = os.fspath(model_base_path)
  latest = export_lib.latest_version(path)
  loaded = LoadedVersion(path if latest is None else os.path.join(path, str(latest)),
                         latest or 0)
  if signature not in loaded.signatures:
    raise RequestError(f"unknown --signature {signature!r}; choose from "
                       f"{sorted(loaded.signatures)}.")
  _, specs, _ = loaded.signatures[signature]
  if not isinstance(inputs, dict):
    if len(specs) != 1:
      raise RequestError(f"signature {signature!r} takes inputs {sorted(specs)}; pass an .npz.")
    inputs = {next(iter(specs)): inputs}
  total = len(next(iter(inputs.values())))
  results = {}
  for start in range(0, total, batch_size):
    chunk = loaded.run(signature, {k: v[start:start + batch_size] for k, v in inputs.items()})
    for k, v in chunk.items():
      results.setdefault(k, []).append(v)
    if progress:
      progress(min(start + batch_size, total), total)
  return {k: np.concatenate(v, 0) for k, v in results.items()}


