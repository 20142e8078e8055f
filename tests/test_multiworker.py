"""Scale-out through the command line and across processes (tfdecomp.distributed_loop).

  * `tfdecomp-train --strategy=mirrored --cpu_devices=2` gives the one-device loss history;
  * two worker processes (MultiWorkerMirroredStrategy, TF_CONFIG on 127.0.0.1, free ports) end
    with identical weights, equal to a one-process run on the same global batches (pinwheel
    with inclusive KL, dSprites-small with MMD: both divergences on the gathered global batch);
  * a worker killed mid-run makes the other exit with one clear line within the heartbeat
    bound, and rerunning both resumes from the chief's last checkpoint.

Every subprocess has a timeout and is killed in `finally`; each worker gets its own TMPDIR
under pytest's tmp_path, so even a killed worker leaves nothing behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tfdecomp import configs
from tfdecomp import runs
from tfdecomp import training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240  # Seconds for any one subprocess.

# Trains each (preset, overrides) in turn under one MultiWorkerMirroredStrategy and saves the
# final weights and loss history of each run; then a run whose data are NaN, which must stop.
WORKER = """
import dataclasses, json, sys
import numpy as np
from tfdecomp import configs, distribute, training
jobs, dump = json.loads(sys.argv[1]), sys.argv[2]
strategy = distribute.get("multiworker")
training.EVAL_EXAMPLES = 64
out = {}
for i, (preset, overrides, run_dir) in enumerate(jobs):
  result = training.train(configs.make(preset, **overrides), run_dir, progress=False,
                          figures=False, strategy=strategy)
  for j, w in enumerate(result.model.get_weights()):
    out[f"{i}_w{j}"] = np.asarray(w)
  out[f"{i}_loss"] = np.asarray([h["loss"] for h in result.history])
original = training._training_data
def poisoned(config, kwargs):
  stream = original(config, kwargs)
  make = stream._make
  return dataclasses.replace(stream, _make=lambda step, **kw: make(step, **kw).map(
      lambda x: x * np.nan))
training._training_data = poisoned
try:
  training.train(configs.make("clustering", epochs=3, jit=False), jobs[0][2] + "-nan",
                 progress=False, figures=False, strategy=strategy)
except training.NonFiniteLoss as e:
  out["nan"] = np.asarray(str(e))
np.savez(dump, **out)
"""

JOBS = [
    ("clustering", dict(epochs=3, jit=False)),  # Inclusive KL, batch 400, one step per epoch.
    ("independence", dict(dataset_config="small", batch_size=16, steps_per_epoch=2, epochs=2,
                          divergence="mmd", alpha=1.0, steps_per_execution=2)),
]


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _env(tmp_path, name, **extra):
  tmp = tmp_path / f"tmp-{name}"
  tmp.mkdir(exist_ok=True)
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO, TMPDIR=str(tmp), **extra)


def _cluster_env(tmp_path, workers=2, tag="worker"):
  addresses = [f"127.0.0.1:{p}" for p in _free_ports(workers)]
  return [_env(tmp_path, f"{tag}{i}", TF_CONFIG=json.dumps(
      {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}}))
          for i in range(workers)]


def _start(args, env, log):
  return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=log,
                          stderr=subprocess.STDOUT, text=True)


def _wait(procs, timeout=TIMEOUT):
  deadline = time.monotonic() + timeout
  for p in procs:
    p.wait(timeout=max(1.0, deadline - time.monotonic()))
  return [p.returncode for p in procs]


def _kill(procs):
  for p in procs:
    if p.poll() is None:
      p.kill()
      p.wait(timeout=30)


def _train_cli(*flags):
  return ["-m", "trainers.train", *flags]


def test_worker_shards_reassemble_the_global_batch():
  """Worker w of W reads rows [w B / W, (w + 1) B / W) of each global batch, L batches a step."""
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  stream = data.training_data("pinwheel", batch_size=8, seed=3, epochs=2, steps_per_epoch=3,
                              start_step=2)
  whole = np.stack([b.numpy() for b in stream.dataset.take(4)])           # [steps, 8, 2]
  shards = [np.stack([b.numpy() for b in stream.shard((4 * w, 4 * w + 4), parts=2).take(8)])
            for w in range(2)]                                              # [2 * steps, 2, 2]
  rebuilt = np.concatenate([s.reshape(4, 4, 2) for s in shards], axis=1)
  np.testing.assert_array_equal(rebuilt, whole)
  with pytest.raises(ValueError, match="do not split into 3 batches"):
    stream.shard((0, 4), parts=3)


@pytest.mark.parametrize("tf_config, needle", [
    (None, "--strategy=multiworker needs TF_CONFIG"),
    ("{not json", "TF_CONFIG must be JSON with cluster.worker"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
     "task index 3 is not in the 1 workers"),
])
def test_bad_tf_config_is_one_line(monkeypatch, tf_config, needle):
  from tfdecomp import distribute  # pylint: disable=g-import-not-at-top
  if tf_config is None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
  else:
    monkeypatch.setenv("TF_CONFIG", tf_config)
  with pytest.raises(ValueError, match=needle) as error:
    distribute.get("multiworker")
  assert "\n" not in str(error.value)


@pytest.mark.slow
def test_cli_mirrored_two_devices_gives_the_one_device_history(tmp_path):
  """Several epochs of pinwheel, MMD and inclusive KL: 2 logical CPUs == 1 device."""
  divergences = ("mmd", "inclusive_kl")
  procs, logs = [], []
  try:
    for divergence in divergences:
      logs.append(open(tmp_path / f"{divergence}.log", "w+"))
      procs.append(_start(_train_cli("--epochs=4", f"--divergence={divergence}", "--jit=false",
                                     f"--out={tmp_path / divergence}", "--strategy=mirrored",
                                     "--cpu_devices=2"),
                          _env(tmp_path, divergence), logs[-1]))
    # Meanwhile, the one-device runs in this process.
    one = {d: training.train(configs.make("clustering", epochs=4, divergence=d, jit=False),
                             str(tmp_path / f"one-{d}"), progress=False, figures=False).history
           for d in divergences}
    codes = _wait(procs)
  finally:
    _kill(procs)
  for code, log in zip(codes, logs):
    log.seek(0)
    assert code == 0, log.read()[-3000:]
  for divergence in divergences:
    two = runs.read_history_csv(tmp_path / divergence / "history.csv")
    assert len(two) == len(one[divergence]) == 4
    for name in ("loss", "reconstruction", "kl", "divergence"):
      np.testing.assert_allclose([h[name] for h in two], [h[name] for h in one[divergence]],
                                 rtol=1e-4, atol=1e-6, err_msg=f"{divergence} {name}")
    assert len({round(h["loss"], 4) for h in two}) == 4  # The loss moved every epoch.


@pytest.mark.slow
def test_two_workers_hold_equal_weights_equal_to_one_process(tmp_path, monkeypatch):
  envs = _cluster_env(tmp_path)
  jobs = [[preset, overrides, str(tmp_path / f"w0-{preset}")] for preset, overrides in JOBS]
  procs, logs = [], []
  try:
    for i, env in enumerate(envs):
      logs.append(open(tmp_path / f"worker{i}.log", "w+"))
      worker_jobs = [[p, o, d.replace("/w0-", f"/w{i}-")] for p, o, d in jobs]
      procs.append(_start(["-c", WORKER, json.dumps(worker_jobs), str(tmp_path / f"w{i}.npz")],
                          env, logs[-1]))
    # Meanwhile, the same runs in this process on one device.
    monkeypatch.setattr(training, "EVAL_EXAMPLES", 64)
    reference = [training.train(configs.make(preset, **overrides), str(tmp_path / f"one-{preset}"),
                                progress=False, figures=False)
                 for preset, overrides in JOBS]
    codes = _wait(procs)
  finally:
    _kill(procs)
  for code, log in zip(codes, logs):
    log.seek(0)
    assert code == 0, log.read()[-3000:]
  got = [np.load(tmp_path / f"w{i}.npz") for i in range(2)]
  for j, result in enumerate(reference):
    weights = result.model.get_weights()
    for k, want in enumerate(weights):
      np.testing.assert_array_equal(got[1][f"{j}_w{k}"], got[0][f"{j}_w{k}"])  # Workers agree.
      np.testing.assert_allclose(got[0][f"{j}_w{k}"], want, rtol=1e-4, atol=1e-5,
                                 err_msg=f"{JOBS[j][0]} weight {k}")
    np.testing.assert_allclose(got[0][f"{j}_loss"], [h["loss"] for h in result.history],
                               rtol=1e-5)
    assert len(got[0][f"{j}_loss"]) == result.epochs
  for i in range(2):  # Both workers stopped at the first step of the NaN run.
    assert "non-finite loss (nan) at optimizer step 1 (epoch 1)" in str(got[i]["nan"])
  # The chief wrote the run directories; the other worker's temporary directories are gone.
  assert (tmp_path / "w0-clustering" / "history.csv").exists()
  assert not (tmp_path / "w1-clustering").exists()
  assert not os.listdir(tmp_path / "tmp-worker1")


@pytest.mark.slow
def test_killed_worker_stops_the_other_and_a_rerun_resumes(tmp_path):
  out = tmp_path / "run"
  flags = [f"--out={out}", "--strategy=multiworker", "--jit=false"]
  envs = _cluster_env(tmp_path)
  procs, logs = [], []
  try:
    for i, env in enumerate(envs):
      env["TFDECOMP_HEARTBEAT_TIMEOUT"] = "5"  # The bound on noticing a dead worker.
      logs.append(open(tmp_path / f"first{i}.log", "w+"))
      procs.append(_start(_train_cli("--epochs=2000", "--checkpoint_secs=0", *flags), env,
                          logs[-1]))
    deadline = time.monotonic() + TIMEOUT
    while not runs.RunDirectory(out).checkpoints() and time.monotonic() < deadline:
      assert procs[0].poll() is None and procs[1].poll() is None, "a worker ended early"
      time.sleep(0.2)
    assert runs.RunDirectory(out).checkpoints(), "no checkpoint within the timeout"
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = procs[0].wait(timeout=60)
    waited = time.monotonic() - killed
  finally:
    _kill(procs)
  logs[0].seek(0)
  lines = logs[0].read().strip().splitlines()
  assert code == 1, lines[-5:]
  assert "another worker died or stopped answering" in lines[-1], lines[-5:]
  assert "rerun every worker with the same command to resume" in lines[-1]
  assert waited < 30  # The heartbeat bound (5 s) plus the chief's last checkpoint.
  done = runs.RunDirectory(out).checkpoints()[0].epochs_done
  assert 0 < done < 2000

  envs = _cluster_env(tmp_path, tag="again")  # New ports: old ones may linger in TIME_WAIT.
  procs, logs = [], []
  try:
    for i, env in enumerate(envs):
      logs.append(open(tmp_path / f"again{i}.log", "w+"))
      procs.append(_start(_train_cli(f"--epochs={done + 3}", *flags), env, logs[-1]))
    codes = _wait(procs)
  finally:
    _kill(procs)
  text = []
  for log in logs:
    log.seek(0)
    text.append(log.read())
  assert codes == [0, 0], text[0][-2000:] + text[1][-2000:]
  assert f"resuming {out} after epoch {done}/{done + 3}" in text[0]
  assert f"({done + 3} epochs, {done + 3} steps)" in text[0]
  history = runs.read_history_csv(out / "history.csv")
  assert [h["epoch"] for h in history] == list(range(1, done + 4))
  assert not os.listdir(tmp_path / "tmp-again1")  # The rerun non-chief cleaned up.
