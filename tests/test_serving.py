"""TF Serving layout and tfdecomp-serve: fresh-process loading, REST parity, errors, hot swap."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest

from tfdecomp import _io
from tfdecomp import export as export_lib
from tfdecomp import model as model_lib
from tfdecomp import networks
from tfdecomp import priors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_model(seed=0):
  encoder, decoder = networks.mlp(input_dim=2, latent_dim=2, hidden_units=8)
  model = model_lib.DecompVAE(encoder, decoder, priors.Mixture(), "normal", divergence="mmd",
                              alpha=1.0, seed=seed)
  model.compile(optimizer=keras.optimizers.Adam(0.01))
  model(np.zeros([1, 2], np.float32))
  return model


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def call(port, path, body=None, raw=None):
  data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
  request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
  try:
    with urllib.request.urlopen(request, timeout=30) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
  base = str(tmp_path_factory.mktemp("serve") / "base")
  model = make_model()
  export_lib.export_version(model, base, (2,))
  port = free_port()
  env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
  proc = subprocess.Popen([sys.executable, "-m", "trainers.serve", "--model_name=vae",
                           f"--model_base_path={base}", f"--rest_api_port={port}",
                           "--file_system_poll_wait_seconds=0.3", "--max_body_bytes=200000"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  try:
    deadline = time.monotonic() + 90
    while True:
      try:
        if call(port, "/v1/models/vae")[0] == 200:
          break
      except OSError:
        pass
      if proc.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError(proc.stdout.read().decode() if proc.poll() is not None else "timeout")
      time.sleep(0.2)
    yield {"port": port, "base": base, "model": model}
  finally:
    proc.kill()
    proc.wait(timeout=10)


def expected(model, name, x, z):
  if name in ("encode", "serving_default"):
    loc, scale = model.encoder(x)
    return {"loc": loc, "scale": scale}
  if name == "decode":
    params = model.decoder(z)
    return {"mean": model.likelihood.mean(params), "params": params}
  if name == "reconstruct":
    return {"reconstruction": model.reconstruct(x)}
  return {"log_prob": model.prior.log_prob(z)}


def test_export_loads_with_tensorflow_alone(tmp_path):
  model = make_model()
  path = export_lib.export_version(model, tmp_path / "base", (2,))
  assert path.endswith(os.sep + "1")
  assert export_lib.export_version(model, tmp_path / "base", (2,)).endswith(os.sep + "2")
  with pytest.raises(FileExistsError, match="never overwritten"):
    export_lib.export_version(model, tmp_path / "base", (2,), version=2)
  x = np.random.default_rng(0).normal(size=[3, 2]).astype(np.float32)
  script = ("import sys, numpy as np, tensorflow as tf\n"
            f"m = tf.saved_model.load({path!r})\n"
            f"loc = m.signatures['encode'](x=tf.constant({x.tolist()!r}))['loc'].numpy()\n"
            "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
            "('tfdecomp', 'tensorflow_probability', 'keras', 'savedmodels'))\n"
            "print(repr((loc.tolist(), bad)))\n")
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
  loc, bad = eval(out.stdout.strip().splitlines()[-1])  # pylint: disable=eval-used
  assert not [n for n in bad if not n.startswith("keras")], bad
  np.testing.assert_allclose(loc, model.encoder(x)[0], rtol=1e-5, atol=1e-5)


def test_interrupted_export_leaves_no_version(tmp_path):
  base = str(tmp_path / "base")
  script = ("import os, sys\n"
            f"sys.path.insert(0, {ROOT!r})\n"
            "from tests.test_serving import make_model\n"
            "from tfdecomp import export\n"
            "os.rename = lambda *a: os._exit(9)  # killed between the write and the rename\n"
            f"export.export_version(make_model(), {base!r}, (2,))\n")
  proc = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  assert proc.returncode == 9, proc.stderr[-2000:]
  left = os.listdir(base)
  assert left and all(n.startswith(_io.TMP_PREFIX) for n in left)  # Written, never renamed.
  assert export_lib.versions(base) == []
  from tfdecomp import serving  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileNotFoundError, match="no version"):
    serving.ModelWatcher(base)


def test_rest_matches_the_model_in_both_formats(server):
  port, model = server["port"], server["model"]
  status, body = call(port, "/v1/models/vae")
  assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
  status, meta = call(port, "/v1/models/vae/metadata")
  defs = meta["metadata"]["signature_def"]["signature_def"]
  assert defs["encode"]["inputs"]["x"]["tensor_shape"]["dim"] == [
      {"size": "-1", "name": ""}, {"size": "2", "name": ""}]
  rng = np.random.default_rng(1)
  x = rng.normal(size=[3, 2]).astype(np.float32)
  z = rng.normal(size=[3, 2]).astype(np.float32)
  for name in ("encode", "serving_default", "decode", "reconstruct", "prior_log_prob"):
    key, value = ("x", x) if name in ("encode", "serving_default", "reconstruct") else ("z", z)
    want = {k: np.asarray(v) for k, v in expected(model, name, x, z).items()}
    for path in ("/v1/models/vae:predict", "/v1/models/vae/versions/1:predict"):
      status, rows = call(port, path, {"signature_name": name,
                                       "instances": [{key: r} for r in value.tolist()]})
      assert status == 200, rows
      status, cols = call(port, path, {"signature_name": name, "inputs": {key: value.tolist()}})
      assert status == 200, cols
      for k, v in want.items():
        got_rows = [r[k] for r in rows["predictions"]] if len(want) > 1 else rows["predictions"]
        got_cols = cols["outputs"][k] if len(want) > 1 else cols["outputs"]
        np.testing.assert_allclose(got_rows, v, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_cols, v, rtol=1e-5, atol=1e-5)
  # sample has no batch dimension: columnar only, deterministic in its seed.
  status, out = call(port, "/v1/models/vae:predict",
                     {"signature_name": "sample", "inputs": {"num_samples": 4, "seed": [1, 2]}})
  assert status == 200 and np.asarray(out["outputs"]["x"]).shape == (4, 2)
  np.testing.assert_allclose(out["outputs"]["x"], model.decode(np.asarray(out["outputs"]["z"])),
                             rtol=1e-5, atol=1e-5)


def test_concurrent_requests_each_get_their_own_rows(server):
  """Requests merged into one batch by the server still get exactly the model's answer (runs
  before the hot-swap test below replaces the served version)."""
  from concurrent.futures import ThreadPoolExecutor  # pylint: disable=g-import-not-at-top
  port, model = server["port"], server["model"]
  rng = np.random.default_rng(5)
  xs = [rng.normal(size=[int(n), 2]).astype(np.float32) for n in rng.integers(1, 4, size=24)]
  def ask(x):
    return call(port, "/v1/models/vae:predict",
                {"signature_name": "encode", "instances": [{"x": r} for r in x.tolist()]})
  with ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(ask, xs))
  for x, (status, body) in zip(xs, answers):
    assert status == 200, body
    loc, scale = model.encoder(x)
    np.testing.assert_allclose([r["loc"] for r in body["predictions"]], loc, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose([r["scale"] for r in body["predictions"]], scale, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("body,raw,status,match", [
    ({"signature_name": "nope", "instances": [[0.0, 0.0]]}, None, 400, "unknown signature_name"),
    ({"signature_name": "encode", "instances": [[0.0, 0.0, 0.0]]}, None, 400, r"shape \[batch, 2\]"),
    ({"signature_name": "encode", "inputs": {"x": [["a", "b"]]}}, None, 400, "float32"),
    ({"signature_name": "sample", "inputs": {"num_samples": 2.5, "seed": [1, 2]}}, None, 400,
     "int32"),
    (None, b"{not json", 400, "malformed JSON"),
    (None, b"[" + b"0.0," * 60000 + b"0.0]", 400, "over the limit"),
    ({"signature_name": "encode", "instances": [[0.0, 0.0]] * 1025}, None, 400, "too many"),
])
def test_bad_requests_get_400_and_the_server_keeps_serving(server, body, raw, status, match):
  port = server["port"]
  got, answer = call(port, "/v1/models/vae:predict", body, raw=raw)
  assert got == status and set(answer) == {"error"}, answer
  assert __import__("re").search(match, answer["error"]), answer
  assert call(port, "/v1/models/vae:predict",
              {"signature_name": "encode", "instances": [[0.0, 0.0]]})[0] == 200


def test_unknown_model_or_version_is_404(server):
  port = server["port"]
  assert call(port, "/v1/models/other")[0] == 404
  status, answer = call(port, "/v1/models/vae/versions/99:predict", {"instances": [[0.0, 0.0]]})
  assert status == 404 and "version 99" in answer["error"]


def test_new_version_is_picked_up_without_dropping_requests(server):
  port, base = server["port"], server["base"]
  new = make_model(seed=5)
  x = [[0.5, -0.5]]
  want = np.asarray(new.encoder(np.asarray(x, np.float32))[0])
  export_lib.export_version(new, base, (2,))
  deadline, answers = time.monotonic() + 60, 0
  while True:
    status, out = call(port, "/v1/models/vae:predict",
                       {"signature_name": "encode", "instances": x})
    assert status == 200, out  # No request fails while the version changes.
    answers += 1
    if np.allclose(out["predictions"][0]["loc"], want[0], rtol=1e-5, atol=1e-5):
      break
    assert time.monotonic() < deadline, "version 2 was not served"
  assert call(port, "/v1/models/vae")[1]["model_version_status"][0]["version"] == "2"


def test_batch_predict_cli(server, tmp_path):
  x = np.random.default_rng(2).normal(size=[5, 2]).astype(np.float32)
  np.save(tmp_path / "x.npy", x)
  env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
  subprocess.run([sys.executable, "-m", "trainers.serve", "predict",
                  f"--model_base_path={server['base']}", "--signature=encode",
                  f"--input={tmp_path / 'x.npy'}", f"--output={tmp_path / 'out.npz'}",
                  "--batch_size=2"], env=env, check=True, timeout=120, capture_output=True)
  out = np.load(tmp_path / "out.npz")
  from tfdecomp import serving  # pylint: disable=g-import-not-at-top
  want = serving.predict_arrays(server["base"], "encode", x)
  np.testing.assert_allclose(out["loc"], want["loc"], rtol=1e-6)
  assert out["scale"].shape == (5, 2)


class _FakeVersion:
  """Stands in for a LoadedVersion: row-wise "double" signature, a gate to hold the first call."""

  def __init__(self):
    import threading  # pylint: disable=g-import-not-at-top
    self.calls = []
    self.gate = threading.Event()

  def batchable(self, name):
    return name != "scalar"

  def call(self, name, arrays):
    self.calls.append((name, {k: np.asarray(v).shape for k, v in arrays.items()}))
    if len(self.calls) == 1:
      self.gate.wait(10)
    x = arrays["x"]
    if np.any(np.asarray(x) < 0):
      raise ValueError("negative input")
    return {"y": 2 * np.asarray(x)}


def test_batching_runner_merges_waiting_requests_and_isolates_failures():
  from concurrent.futures import ThreadPoolExecutor  # pylint: disable=g-import-not-at-top
  from tfdecomp import serving  # pylint: disable=g-import-not-at-top
  runner = serving.BatchingRunner(max_batch=5)
  fake = _FakeVersion()
  inputs = [np.full([n, 3], float(i), np.float32) for i, n in enumerate([1, 2, 1, 3, 1])]
  inputs.append(-np.ones([1, 3], np.float32))  # fails: only this request may fail
  try:
    with ThreadPoolExecutor(8) as pool:
      first = pool.submit(runner.run, fake, "double", {"x": np.zeros([1, 3], np.float32)})
      while not fake.calls:
        time.sleep(0.01)
      # These queue while the first call is held, so they are taken in one round.
      futures = []
      for x in inputs:  # In this order (one more in the queue before the next is sent).
        futures.append(pool.submit(runner.run, fake, "double", {"x": x}))
        while runner._queue.qsize() < len(futures):  # pylint: disable=protected-access
          time.sleep(0.005)
      scalar = pool.submit(runner.run, fake, "scalar", {"x": np.float32(3.0)})
      while runner._queue.qsize() < len(futures) + 1:  # pylint: disable=protected-access
        time.sleep(0.005)
      fake.gate.set()
      np.testing.assert_array_equal(first.result(10)["y"], np.zeros([1, 3]))
      for x, future in zip(inputs[:-1], futures[:-1]):
        np.testing.assert_array_equal(future.result(10)["y"], 2 * x)
      with pytest.raises(ValueError, match="negative"):
        futures[-1].result(10)
      assert float(scalar.result(10)["y"]) == 6.0
  finally:
    runner.close()
  sizes = [shape["x"][0] if shape["x"] else None for _, shape in fake.calls]
  # The held call; then one round: batches of at most 5 rows in arrival order (1+2+1 = 4, then
  # 3+1 and the bad one = 5, which fails and is retried request by request: 3, 1, 1), and the
  # scalar signature alone.
  assert sizes == [1, 4, 5, 3, 1, 1, None], sizes

