"""Choosing the `tf.distribute` strategy of a training run.

  strategy = tfdecomp.distribute.get("auto")   # or "mirrored", or a tf.distribute.Strategy
  with strategy.scope():
    model = ...; model.compile(...)           # variables mirrored on every replica

Names:
  auto         one device, or `mirrored` when more than one GPU is visible;
  mirrored     `tf.distribute.MirroredStrategy` over all visible GPUs (all logical CPUs when
               there is no GPU, e.g. a CPU split into logical devices in tests);
  multiworker  `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG` (`multiworker`);
               `tfdecomp.training.train` drives it with the loop of `tfdecomp.distributed_loop`
               (Keras 3 `fit` fails under it on this stack, keras-team/keras#20585).

The data set is batched with the global batch size B; each of the R replicas takes B / R
examples, so B must be divisible by R. The training noise does not depend on R
(`tfdecomp.model`: every replica draws the global batch's noise and keeps its rows), so the same
seed gives the same loss history on one device and on R replicas up to float summation order.
"""

import json
import os

import tensorflow as tf

__all__ = ["STRATEGIES", "get", "check_batch", "multiworker", "is_multiworker", "split_cpu",
           "COLLECTIVE_TIMEOUT", "HEARTBEAT_TIMEOUT"]

#: Strategy names accepted by `get` (and `--strategy`).
STRATEGIES = ("auto", "mirrored", "multiworker")

#: Seconds a multi-worker collective may wait for its peers before it fails
#: (`CommunicationOptions(timeout_seconds=...)`); 0 = no timeout (the default). It catches a
#: worker that is alive but stuck (a dead one is caught by the heartbeat, below). Off by default:
#: TensorFlow enforces it with one sleeping thread per collective, held for the whole timeout,
#: and at the pinwheel preset's few thousand collectives a second a 300 s timeout exhausted the
#: process's threads ("std::system_error: Resource temporarily unavailable"). When set, it must
#: exceed the longest pause between two steps of the slowest worker (the first step's tracing, a
#: checkpoint); set it with $TFDECOMP_COLLECTIVE_TIMEOUT.
COLLECTIVE_TIMEOUT = 0.0
#: Seconds without a heartbeat after which the coordination service declares a worker dead and
#: fails the others (TensorFlow's default is 10 s); override with $TFDECOMP_HEARTBEAT_TIMEOUT.
HEARTBEAT_TIMEOUT = 10.0


def get(strategy="auto") -> tf.distribute.Strategy:
  """A `tf.distribute.Strategy` from a name in `STRATEGIES`, None (= "auto") or a strategy.

  Raises:
    ValueError: for an unknown name, or "multiworker" without a usable TF_CONFIG.
  """
  if isinstance(strategy, tf.distribute.Strategy):
    return strategy
  name = "auto" if strategy is None else strategy
  if name not in STRATEGIES:
    raise ValueError(f"--strategy={name!r} is not one of {', '.join(STRATEGIES)}.")
  if name == "multiworker":  # Before anything initialises TensorFlow's context.
    return multiworker()
  gpus = tf.config.list_logical_devices("GPU")
  if name == "auto":
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
  devices = gpus or tf.config.list_logical_devices("CPU")
  return tf.distribute.MirroredStrategy([d.name for d in devices])


def is_multiworker(strategy) -> bool:
  """True for a `MultiWorkerMirroredStrategy` over more than one worker."""
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return False
  return bool(strategy.extended._in_multi_worker_mode())  # pylint: disable=protected-access


def _env_seconds(name, default):
  value = os.environ.get(name)
  if not value:
    return default
  try:
    seconds = float(value)
  except ValueError:
    raise ValueError(f"${name}={value!r} is not a number of seconds.") from None
  if seconds < 0:
    raise ValueError(f"${name}={value!r} must be >= 0 (0 disables it).")
  return seconds


def multiworker(timeout_seconds: float = None, heartbeat_seconds: float = None
                ) -> tf.distribute.MultiWorkerMirroredStrategy:
  """`MultiWorkerMirroredStrategy` from `TF_CONFIG`, with bounded failure detection.

  Call it before any other TensorFlow operation of the process (TensorFlow starts the worker's
  server and its collective engine here). A worker that dies is noticed by the coordination
  service (no heartbeat for `heartbeat_seconds`), a worker that hangs by the per-collective
  timeout (`timeout_seconds`); either way the other workers' next step fails instead of waiting
  forever (`tfdecomp.distributed_loop.WorkerLost`).

  Args:
    timeout_seconds: per-collective timeout (default `COLLECTIVE_TIMEOUT`; 0 disables it).
    heartbeat_seconds: coordination-service heartbeat timeout (default `HEARTBEAT_TIMEOUT`).

  Raises:
    ValueError: without a usable TF_CONFIG (one line saying what is missing).
  """
  text = os.environ.get("TF_CONFIG")
  if not text:
    raise ValueError("--strategy=multiworker needs TF_CONFIG, e.g. '{\"cluster\": {\"worker\": "
                     "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", "
                     "\"index\": 0}}' (see BUILD.md).")
  try:
    document = json.loads(text)
    workers = document["cluster"]["worker"]
    task = document["task"]
    index = int(task["index"])
    assert task["type"] in ("worker", "chief") and isinstance(workers, list)
  except (ValueError, KeyError, TypeError, AssertionError):
    raise ValueError("TF_CONFIG must be JSON with cluster.worker (a list of host:port) and task "
                     "{type: worker, index: i} (see BUILD.md).") from None
  if task["type"] == "worker" and not 0 <= index < len(workers):
    raise ValueError(f"TF_CONFIG task index {index} is not in the {len(workers)} workers of its "
                     "cluster.")
  if timeout_seconds is None:
    timeout_seconds = _env_seconds("TFDECOMP_COLLECTIVE_TIMEOUT", COLLECTIVE_TIMEOUT)
  if heartbeat_seconds is None:
    heartbeat_seconds = _env_seconds("TFDECOMP_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT)
  # pylint: disable=g-import-not-at-top
  from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
  from tensorflow.python.distribute import multi_worker_util
  from tensorflow.python.eager import context
  # pylint: enable=g-import-not-at-top
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  spec = resolver.cluster_spec()
  if context.context().coordination_service is None and heartbeat_seconds:
    # What MultiWorkerMirroredStrategy configures itself, with a bounded heartbeat.
    jobs = [job for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        heartbeat_timeout_in_ms=int(heartbeat_seconds * 1000),
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=j, num_tasks=spec.num_tasks(j))
            for j in jobs])
  options = tf.distribute.experimental.CommunicationOptions(
      timeout_seconds=timeout_seconds or None)
  try:
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver,
                                                     communication_options=options)
  except RuntimeError as e:
    if "program startup" not in str(e):
      raise
    raise ValueError("--strategy=multiworker must be set up before TensorFlow runs anything in "
                     "the process: start one fresh process per worker.") from None


def split_cpu(devices: int) -> None:
  """Splits the CPU into `devices` logical devices (to run the mirrored path without GPUs).

  A process-wide setting: call it at start-up, before TensorFlow has initialised its devices
  (the entry points' `--cpu_devices`; tests/conftest.py does the same for the test process).
  """
  cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(devices))


def check_batch(strategy: tf.distribute.Strategy, batch_size: int) -> None:
  """Raises ValueError unless the global batch splits evenly over the strategy's replicas."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ValueError(f"--batch_size={batch_size} does not split over {replicas} replicas; "
                     f"use a multiple of {replicas}.")
