"""Multi-worker training: `DecompVAE.train_step` driven by a loop of our own around `strategy.run`.

Keras 3 `fit` (and `evaluate`) fail under `tf.distribute.MultiWorkerMirroredStrategy` on this
stack: their per-replica log reduction asks for `strategy.reduce("MEAN", scalar, axis=0)`
(keras-team/keras#20585). The *step* itself is fine: the model's `train_step` (gradients summed
over all replicas of all workers, divergence on the samples gathered from all of them, noise
drawn for the global batch) runs unchanged inside `strategy.run`. This module supplies what
`fit` would do around it:

  fit        a `tf.function` over a distributed iterator: `steps_per_execution` calls of
             `strategy.run(model.train_step)` per call, then one `strategy.reduce(MEAN)` of the
             logged metrics (every replica holds the mean of an equal number of rows, so the
             mean over replicas is the global-batch mean); the same Keras callbacks as `fit`
             (progress, history, TensorBoard, `RunCheckpoint`, `StopOnNonFinite`, the caller's)
             get the same calls (`on_epoch_begin`, `on_train_batch_end`, ...), and every worker
             sees the same logs, so all take the same stop decision; `fit`'s validation
             arguments run `evaluate` between `on_test_begin` and `on_test_end` (val_ logs).
  evaluate   the same for `test_step` over an array.
  restore    the chief reads the newest checkpoint of the run directory and broadcasts every
             variable (model, optimizer) and the epochs done to the other workers through one
             collective, so no shared file system is needed and all workers start equal.
  output_dir the chief writes the run directory; every other worker writes the same files into
             a temporary directory, removed when training ends (TensorFlow's documented pattern
             for multi-worker checkpoints: every worker saves, because saving may take part in
             collectives, but only the chief's copy is kept).

Data: every worker reads its own shard. Worker w of W (with L local replicas) keeps the rows
[w * B / W, (w + 1) * B / W) of every global batch of B examples, in L per-replica batches
(`tfdecomp.data.TrainingData.shard`), through `strategy.distribute_datasets_from_function`. The
tf.data auto-shard policy is set to OFF on purpose: FILE sharding does not apply (in-memory
arrays, streamed renders), and DATA sharding would make each worker produce the whole global
batch and throw (W - 1) / W of it away. Sharding by rows keeps the global batch of step t,
and hence the whole run, identical to the one-device run (`tfdecomp.seeds`).

A worker that dies: the survivors' next collective fails (the coordination service's heartbeat,
or the collective timeout of `tfdecomp.distribute.multiworker`), and the loop raises `WorkerLost`
after the chief has saved the newest finished epoch; rerunning all workers resumes from it.
"""

import contextlib
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tfdecomp import distribute

__all__ = ["WorkerLost", "fit", "evaluate", "restore", "output_dir", "is_chief", "shard_rows"]

# Collective failures that mean a peer is gone or stuck.
_LOST = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
         tf.errors.CancelledError, tf.errors.InternalError, tf.errors.FailedPreconditionError,
         tf.errors.UnknownError)


class WorkerLost(RuntimeError):
  """A collective failed: another worker died or stopped answering. Rerun all workers to resume."""


def is_chief(strategy) -> bool:
  """True unless `strategy` is multi-worker and this task is not the chief (worker 0)."""
  if not distribute.is_multiworker(strategy):
    return True
  return bool(strategy.extended.should_checkpoint)


def _task_id(strategy) -> int:
  resolver = strategy.cluster_resolver
  return int(resolver.task_id or 0)


def _is_lost(error) -> bool:
  if isinstance(error, _LOST[:4]):
    return True
  return isinstance(error, _LOST) and "ollective" in str(error)


@contextlib.contextmanager
def output_dir(strategy, out):
  """Yields `out` on the chief; a temporary directory (removed on exit) on other workers.

  Under multi-worker, a collective that fails because a peer is gone becomes `WorkerLost`.
  """
  if not distribute.is_multiworker(strategy):
    yield out
    return
  path = out if is_chief(strategy) else tempfile.mkdtemp(
      prefix=f"tfdecomp-worker{_task_id(strategy)}-")
  try:
    yield path
  except _LOST as e:
    if not _is_lost(e):
      raise
    raise WorkerLost(_lost_message(e, None, None)) from None
  except WorkerLost as e:
    if path == out:
      raise
    # A non-chief's own checkpoints are temporary: point at the chief's run directory.
    raise WorkerLost(str(e).split("; the ")[0] + "; the chief keeps the checkpoints in "
                     f"{os.path.join(os.fspath(out), 'checkpoints')}: rerun every worker with "
                     "the same command to resume") from None
  finally:
    if path != out:
      shutil.rmtree(path, ignore_errors=True)


def shard_rows(strategy, batch_size: int):
  """(start, stop, local replicas): this worker's rows of a global batch of `batch_size`."""
  workers = strategy.extended._num_workers  # pylint: disable=protected-access
  worker = strategy.extended._id_in_cluster  # pylint: disable=protected-access
  per_worker = batch_size // workers
  local = strategy.num_replicas_in_sync // workers
  return worker * per_worker, (worker + 1) * per_worker, local


def _distribute(strategy, make_dataset, batch_size):
  """A distributed dataset: each worker's `make_dataset(rows, parts)`, auto-shard OFF."""
  start, stop, local = shard_rows(strategy, batch_size)

  def dataset_fn(context):
    del context  # The rows come from the strategy's view of the cluster (see shard_rows).
    dataset = make_dataset((start, stop), local)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)

  return strategy.distribute_datasets_from_function(dataset_fn)


def _variables(model):
  seen, out = set(), []
  for v in list(model.weights) + list(model.optimizer.variables):
    if id(v) not in seen:
      seen.add(id(v))
      out.append(v)
  return out


def restore(strategy, run, model, warn=None):
  """`run.restore(model)`, and under multi-worker the chief's state sent to every worker.

  Returns:
    (epochs_done, state): as `tfdecomp.runs.RunDirectory.restore`; on non-chief workers state
    is None (their history is not kept).
  """
  if not distribute.is_multiworker(strategy):
    return run.restore(model, warn=warn)
  chief = is_chief(strategy)
  with strategy.scope():  # The optimizer's slots are mirrored variables, built on every worker.
    if not model.optimizer.built:
      model.optimizer.build(model.trainable_variables)
  # Outside the scope: Keras's loader creates temporary variables, which under the scope would be
  # mirrored (a collective broadcast the other workers do not join).
  epochs_done, state = run.restore(model, warn=warn) if chief else (0, None)
  variables = _variables(model)

  @tf.function
  def broadcast(epochs):
    def replica_fn():
      context = tf.distribute.get_replica_context()
      keep = tf.logical_and(tf.constant(chief), tf.equal(context.replica_id_in_sync_group, 0))
      # float64 holds every float32 and int64 < 2^53 (optimizer steps, seeds) exactly.
      values = [epochs] + [tf.cast(v.value, tf.float64) for v in variables]
      values = [tf.where(keep, t, tf.zeros_like(t)) for t in values]
      return context.all_reduce(tf.distribute.ReduceOp.SUM, values)
    results = strategy.run(replica_fn)
    return [strategy.experimental_local_results(r)[0] for r in results]

  try:
    received = broadcast(tf.constant(float(epochs_done), tf.float64))
  except _LOST as e:
    if not _is_lost(e):
      raise
    raise WorkerLost(_lost_message(e, run, None)) from None
  for variable, value in zip(variables, received[1:]):
    variable.assign(tf.cast(value, variable.dtype))
  return int(received[0].numpy()), state


def _lost_message(error, run, saved):
  kept = f"the checkpoint of epoch {saved} is" if saved else "the newest checkpoint is"
  return (f"training stopped: another worker died or stopped answering ({_first_line(error)}); "
          f"{kept} in {run.checkpoints_dir if run is not None else 'the run directory'}: rerun "
          "every worker with the same command to resume")


def _first_line(error):
  """The line of a collective's error that says what happened to the peer."""
  text = str(getattr(error, "message", "") or error)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  for line in lines:
    if "aborted by:" in line:
      return line.split("aborted by:", 1)[1].strip().rstrip(".: ")
  for line in lines:
    if any(word in line for word in ("unhealthy", "Connection", "Socket", "timed out",
                                     "Deadline", "unavailable", "Unavailable")):
      return line
  useful = [line for line in lines if not line.endswith("execution error:")]
  return useful[0] if useful else type(error).__name__


def _reduced(strategy, per_replica):
  return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
          for k, v in per_replica.items()}


def fit(model, training, *, epochs, initial_epoch=0, steps_per_epoch, callbacks=(), run=None,
        validation_data=None, validation_batch_size=None, validation_freq=1):
  """`model.fit(training.dataset, ...)`; under multi-worker, the loop of this module.

  Args:
    model: the compiled model (built in the strategy's scope).
    training: a `tfdecomp.data.TrainingData` starting at `initial_epoch * steps_per_epoch`.
    epochs: the last epoch.
    initial_epoch: epochs already done.
    steps_per_epoch: S.
    callbacks: Keras callbacks, called as `fit` calls them.
    run: the run directory (for the message of `WorkerLost`).
    validation_data, validation_batch_size, validation_freq: as for `fit` (validation_data a
      tuple `(x,)`; under multi-worker it is evaluated with `evaluate` below, its terms logged
      as val_<name>, between `on_test_begin` and `on_test_end`).

  Returns:
    The `keras.callbacks.History`.

  Raises:
    WorkerLost: when a collective failed (another worker died or stopped answering).
  """
  strategy = model.distribute_strategy
  if not distribute.is_multiworker(strategy):
    validation = {} if validation_data is None else {
        "validation_data": validation_data, "validation_batch_size": validation_batch_size,
        "validation_freq": validation_freq}
    return model.fit(training.dataset, epochs=epochs, initial_epoch=initial_epoch,
                     steps_per_epoch=steps_per_epoch, verbose=0, callbacks=list(callbacks),
                     shuffle=False,  # The stream's order is the run's (seeds.data_order).
                     **validation)
  import keras  # pylint: disable=g-import-not-at-top
  per_call = max(1, int(model.steps_per_execution or 1))
  if steps_per_epoch % per_call:
    per_call = 1
  batch_size = _global_batch(training)
  dataset = _distribute(strategy, training.shard, batch_size)

  @tf.function
  def train_function(iterator):
    for _ in tf.range(per_call - 1):  # A graph loop: the step is traced twice, not per_call times.
      strategy.run(model.train_step, args=(next(iterator),))
    return _reduced(strategy, strategy.run(model.train_step, args=(next(iterator),)))

  history = keras.callbacks.History()
  callback_list = keras.callbacks.CallbackList(list(callbacks) + [history], model=model)
  callback_list.set_params({"verbose": 0, "epochs": epochs, "steps": steps_per_epoch})
  model.stop_training = False
  iterator = iter(dataset)
  callback_list.on_train_begin()
  logs = {}
  try:
    for epoch in range(initial_epoch, epochs):
      model.reset_metrics()
      callback_list.on_epoch_begin(epoch)
      for begin in range(0, steps_per_epoch, per_call):
        callback_list.on_train_batch_begin(begin)
        logs = {k: float(v) for k, v in train_function(iterator).items()}
        callback_list.on_train_batch_end(begin + per_call - 1, logs)
        if model.stop_training:
          break
      epoch_logs = dict(logs)
      if validation_data is not None and _due(validation_freq, epoch + 1):
        callback_list.on_test_begin()
        x_val = validation_data[0] if isinstance(validation_data, (tuple, list)) else \
            validation_data
        val_logs = evaluate(model, x_val, validation_batch_size or _global_batch(training))
        callback_list.on_test_end(val_logs)
        epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
      callback_list.on_epoch_end(epoch, epoch_logs)  # As `fit`: also after a stop.
      if model.stop_training:
        break
  except _LOST as e:
    if not _is_lost(e):
      raise
    saved = None
    for callback in callbacks:  # Keep what the finished epochs hold (RunCheckpoint).
      if hasattr(callback, "flush"):
        saved = callback.flush() or saved
    raise WorkerLost(_lost_message(e, run, saved)) from None
  callback_list.on_train_end(logs)
  return history


def _due(freq, epoch) -> bool:
  """Whether 1-based `epoch` is a validation epoch of `fit`'s validation_freq (int or list)."""
  if isinstance(freq, int):
    return epoch % freq == 0
  return epoch in freq


def _global_batch(training):
  size = training.dataset.element_spec.shape[0]
  if size is not None:
    return int(size)
  for element in training.dataset.take(1):
    return int(element.shape[0])
  raise ValueError("the training stream is empty.")


def evaluate(model, x, batch_size):
  """`model.evaluate(x, batch_size=...)` as a dict; under multi-worker, over sharded rows.

  Under multi-worker, the batch is rounded down to a multiple of the replicas and the examples
  to whole batches; every worker evaluates its rows of each batch.
  """
  strategy = model.distribute_strategy
  if not distribute.is_multiworker(strategy):
    return model.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
  x = np.asarray(x)
  batch_size -= batch_size % strategy.num_replicas_in_sync  # Equal shares for every replica.
  steps = len(x) // batch_size if batch_size else 0
  if not steps:
    raise ValueError(f"{len(x)} evaluation examples do not fill one batch for "
                     f"{strategy.num_replicas_in_sync} replicas.")

  def make(rows, parts):
    blocks = x[:steps * batch_size].reshape(steps, batch_size, *x.shape[1:])
    blocks = blocks[:, rows[0]:rows[1]]
    blocks = blocks.reshape(steps * parts, (rows[1] - rows[0]) // parts, *x.shape[1:])
    return tf.data.Dataset.from_tensor_slices(blocks)

  dataset = _distribute(strategy, make, batch_size)

  @tf.function
  def test_function(iterator):
    return _reduced(strategy, strategy.run(model.test_step, args=(next(iterator),)))

  model.reset_metrics()
  iterator = iter(dataset)
  logs = {}
  try:
    for _ in range(steps):
      logs = test_function(iterator)
  except _LOST as e:
    if not _is_lost(e):
      raise
    raise WorkerLost(_lost_message(e, None, None)) from None
  return {k: float(v) for k, v in logs.items()}

