"""Choosing the `tf.distribute` strategy of a training run.

  strategy = tfdecomp.distribute.get("auto")   # or "mirrored", or a tf.distribute.Strategy
  with strategy.scope():
    model = ...; model.compile(...)           # variables mirrored on every replica

Names:
  auto         one device, or `mirrored` when more than one GPU is visible;
  mirrored     `tf.distribute.MirroredStrategy` over all visible GPUs (all logical CPUs when
               there is no GPU, e.g. a CPU split into logical devices in tests);
  multiworker  `tf.distribute.MultiWorkerMirroredStrategy` configured by `TF_CONFIG` (not yet
               wired into `tfdecomp.training.train`: Keras 3 `fit` fails under it on this stack,
               keras-team/keras#20585; see issue 12).

The data set is batched with the global batch size B; each of the R replicas takes B / R
examples, so B must be divisible by R. The training noise does not depend on R
(`tfdecomp.model`: every replica draws the global batch's noise and keeps its rows), so the same
seed gives the same loss history on one device and on R replicas up to float summation order.
"""

import tensorflow as tf

__all__ = ["STRATEGIES", "get", "check_batch"]

#: Strategy names accepted by `get` (and `--strategy`).
STRATEGIES = ("auto", "mirrored", "multiworker")


def get(strategy="auto") -> tf.distribute.Strategy:
  """A `tf.distribute.Strategy` from a name in `STRATEGIES`, None (= "auto") or a strategy.

  Raises:
    ValueError: for an unknown name, or "multiworker" (not supported by `fit` on this stack).
  """
  if isinstance(strategy, tf.distribute.Strategy):
    return strategy
  name = "auto" if strategy is None else strategy
  if name not in STRATEGIES:
    raise ValueError(f"--strategy={name!r} is not one of {', '.join(STRATEGIES)}.")
  gpus = tf.config.list_logical_devices("GPU")
  if name == "auto":
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
  if name == "mirrored":
    devices = gpus or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  raise ValueError("--strategy=multiworker is not supported yet (Keras 3 fit fails under "
                   "MultiWorkerMirroredStrategy on this stack); use auto or mirrored.")


def check_batch(strategy: tf.distribute.Strategy, batch_size: int) -> None:
  """Raises ValueError unless the global batch splits evenly over the strategy's replicas."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ValueError(f"--batch_size={batch_size} does not split over {replicas} replicas; "
                     f"use a multiple of {replicas}.")
