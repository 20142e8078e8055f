"""Load test of tfdecomp-serve: N concurrent clients for a bounded time, per signature.

  python benchmarks/serve_load.py --model=pinwheel --clients=8 --seconds=10
  python benchmarks/serve_load.py --model=dsprites --clients=8 --seconds=10

Exports an untrained model (pinwheel MLP, or the dSprites conv64 networks) to a temporary base
path, starts `python -m trainers.serve` on 127.0.0.1 at a free port, and for each signature runs
`--clients` threads posting one-example requests (row format; one keep-alive connection each,
TCP_NODELAY as urllib3 and curl set it) for `--seconds`; prints requests/s
and p50/p99 latency. Halfway through the last signature a new version is exported, to check that
no request is lost during a version switch. Exits 1 if any request failed.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _connect(port):
  """A keep-alive connection with Nagle's algorithm off, as HTTP clients such as urllib3 and
  curl open them. (With Nagle on, http.client sends the headers and the body in two segments and
  the body waits for the server's delayed ACK: up to 200 ms per request on Linux.)"""
  connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
  connection.connect()
  connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  return connection


def build(name):
  import keras  # pylint: disable=g-import-not-at-top
  from tfdecomp import model as model_lib, networks, priors  # pylint: disable=g-import-not-at-top
  if name == "pinwheel":
    shape, d = (2,), 2
    enc, dec = networks.mlp(input_dim=2, latent_dim=d, hidden_units=100)
    lik = "normal"
  else:
    shape, d = (64, 64, 1), 10
    enc, dec = networks.conv64(latent_dim=d)
    lik = "bernoulli"
  model = model_lib.DecompVAE(enc, dec, priors.Gaussian(d), lik, divergence="none", seed=0)
  model.compile(optimizer=keras.optimizers.Adam())
  model(np.zeros([1, *shape], np.float32))
  return model, shape, d


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--model", choices=["pinwheel", "dsprites"], default="pinwheel")
  parser.add_argument("--clients", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=10.0)
  args = parser.parse_args()
  from tfdecomp import export  # pylint: disable=g-import-not-at-top
  model, shape, d = build(args.model)
  base = os.path.join(tempfile.mkdtemp(), "base")
  export.export_version(model, base, shape)
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
  proc = subprocess.Popen([sys.executable, "-m", "trainers.serve", "--model_name=m",
                           f"--model_base_path={base}", f"--rest_api_port={port}",
                           "--file_system_poll_wait_seconds=0.5"], env=env)
  url = f"http://127.0.0.1:{port}/v1/models/m"
  try:
    for _ in range(600):
      try:
        urllib.request.urlopen(url, timeout=5).read()
        break
      except OSError:
        time.sleep(0.2)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=[1, *shape]).round(3).tolist()
    z = rng.normal(size=[1, d]).round(3).tolist()
    bodies = {"encode": {"instances": [{"x": x[0]}]},
              "reconstruct": {"instances": [{"x": x[0]}]},
              "decode": {"instances": [{"z": z[0]}]},
              "prior_log_prob": {"instances": [{"z": z[0]}]}}
    failures = 0
    print(f"{args.model}: {args.clients} clients, {args.seconds:.0f} s per signature")
    for i, (name, body) in enumerate(bodies.items()):
      data = json.dumps({"signature_name": name, **body}).encode()
      latencies, errors = [], []
      stop = time.monotonic() + args.seconds
      def client():
        connection = None
        while time.monotonic() < stop:
          t = time.perf_counter()
          try:
            if connection is None:
              connection = _connect(port)
            connection.request("POST", "/v1/models/m:predict", body=data,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
              raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
            latencies.append(time.perf_counter() - t)
          except Exception as e:  # pylint: disable=broad-except
            errors.append(repr(e))
            if connection is not None:
              connection.close()
            connection = None
        if connection is not None:
          connection.close()
      threads = [threading.Thread(target=client) for _ in range(args.clients)]
      for t in threads:
        t.start()
      if i == len(bodies) - 1:  # A version switch under load.
        time.sleep(args.seconds / 2)
        export.export_version(model, base, shape)
      for t in threads:
        t.join()
      lat = np.asarray(latencies) * 1000
      failures += len(errors)
      print(f"  {name:15s} {len(lat) / args.seconds:8.1f} req/s  p50 {np.percentile(lat, 50):6.1f}"
            f" ms  p99 {np.percentile(lat, 99):6.1f} ms  failed {len(errors)}")
    status = json.loads(urllib.request.urlopen(url, timeout=5).read())
    print(f"  served version after the switch: "
          f"{status['model_version_status'][0]['version']}; failed requests: {failures}")
    return 1 if failures else 0
  finally:
    proc.kill()
    proc.wait()


if __name__ == "__main__":
  raise SystemExit(main())
