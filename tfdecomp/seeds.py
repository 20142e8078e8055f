"""Every random seed tfdecomp derives, named in one place.

A run has one integer seed (`Config.seed`, `DecompVAE(seed=...)`). Everything random is a pure
function of it and of a position in the run, so a run restored from a checkpoint draws exactly
what an uninterrupted run draws, and no derivation depends on global random state:

  initial weights      `initialize(seed)` seeds Keras/TF/NumPy/Python just before the networks
                       are built (after data preparation, whose own randomness cannot shift them)
  data order           `data_order(seed, epoch, n, needed)`: the examples of epoch e, a pure
                       function of (seed, epoch); a run resumed at any step continues the order
  training noise       `train_noise(seed, step)` / `train_step_seed`: posterior and prior samples
                       of optimizer step t, drawn for the whole global batch on every replica
                       (each keeps its rows), so the noise of an example depends on
                       (seed, step, its row in the global batch) only, not on the device layout
  evaluation noise     `eval_generator(seed)`: a Keras SeedGenerator for `test_step` (stream 1)
  figures              `figures_rng(seed)`, `figures_sample_seed(seed)`
  metrics              `metric_rng(seed)`; `likelihood_batch(seed, i)` and `iwae_batch(seed, i)`
                       for the i-th batch of the likelihood estimates
  split order          `SPLIT_ORDER_SEED`: the fixed order in which a streamed factor grid is
                       sliced into splits ("train[:80%]"); part of the data set's definition

Stateless seeds are int32 [2] tensors (TFP's `PRNGS.md`); `make_seed` turns a Python int into one
deterministically (TFP's `sanitize_seed` draws a new one per call).
"""

import numbers
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

__all__ = ["make_seed", "stateless", "random_seed", "initialize", "train_noise", "train_step_seed",
           "fold_replica",
           "eval_generator", "eval_state", "data_order", "figures_rng", "figures_sample_seed", "metric_rng",
           "likelihood_batch", "iwae_batch", "SPLIT_ORDER_SEED", "EVAL_STREAM"]

#: Offset of the evaluation seed stream from the run's seed.
EVAL_STREAM = 1
#: Seed of the fixed order of a streamed factor grid's examples (dSprites' splits).
SPLIT_ORDER_SEED = 0
# Epoch e's permutations use stateless seeds [seed, e * _EPOCH_STRIDE + i], i = 0, 1, ...
_EPOCH_STRIDE = 1009
# The IWAE batches draw from a stream disjoint from the ELBO batches'.
_IWAE_STREAM = 1_000_003


def make_seed(seed) -> tf.Tensor:
  """A stateless int32 [2] seed from None (random), a Python int, or an int [2] tensor.

  A Python int always maps to the same seed, through NumPy's `SeedSequence`.

  Raises:
    ValueError: for a negative int.
  """
  if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
    if seed < 0:
      raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    state = np.random.SeedSequence(int(seed)).generate_state(2, dtype=np.uint32)
    return tf.constant(state.view(np.int32))
  return tfp.random.sanitize_seed(seed)


def stateless(seed) -> Optional[tf.Tensor]:
  """None stays None (fresh noise); an int or [2] tensor becomes a stateless int32 [2] seed."""
  return None if seed is None else make_seed(seed)


def random_seed() -> int:
  """A fresh seed for a model built without one (stored in its config, so a save keeps it)."""
  return int(np.random.default_rng().integers(0, 2**31 - 1))


def initialize(seed: int) -> None:
  """Seeds Python, NumPy and TensorFlow (Keras's initialisers) for building a run's networks.

  Call it right before the networks are built: whatever ran before (preparing a TFDS data set,
  loading files) then cannot change the initial weights.
  """
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(int(seed))


def train_noise(seed: int, step) -> tf.Tensor:
  """The int64 [2] stateless seed of the training noise at optimizer step `step`.

  fold_in([seed, 0], step); `step` is `optimizer.iterations` before the update.
  """
  base = tf.constant([int(seed), 0], tf.int64)
  return tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64))


def train_step_seed(seed: int, step) -> tf.Tensor:
  """int32 [2]: `train_noise(seed, step)` as TFP's samplers take it, identical on all replicas.

  Not folded with the replica id: the training step draws the global batch's noise from it and
  each replica keeps its own rows (`objectives.decomposition_terms(rows=...)`).
  """
  return tf.cast(train_noise(seed, step), tf.int32)


def fold_replica(seed) -> tf.Tensor:
  """Folds the replica id into a seed under tf.distribute (R > 1); returns int32 [2].

  Used for the evaluation noise (`test_step`), whose draws may depend on the layout.

  Without it every replica would draw the same noise (`keras.random.SeedGenerator` and a shared
  stateless seed give identical numbers on all replicas).
  """
  context = tf.distribute.get_replica_context()
  if context is not None and tf.distribute.get_strategy().num_replicas_in_sync > 1:
    seed = tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), tf.cast(context.replica_id_in_sync_group, tf.int64))
  return tf.cast(seed, tf.int32)


def eval_generator(seed: int, name: str = "eval_seeds"):
  """The Keras `SeedGenerator` of evaluation noise (`test_step`): stream `EVAL_STREAM`."""
  import keras  # pylint: disable=g-import-not-at-top
  return keras.random.SeedGenerator(int(seed) + EVAL_STREAM, name=name)


def eval_state(seed: int, step: int) -> list:
  """The state [seed + EVAL_STREAM, (1024 * step) mod 2^31] of the evaluation generator at
  optimizer step `step` (`DecompVAE.reset_eval_noise`).

  A validation pass (at most 1,024 batches) then draws the same noise whether or not the run
  was resumed in between: its draws depend on (seed, step), not on the passes before it. The
  counter stays below 2^31 because the seed is cast to int32 (`fold_replica`); it is distinct
  for the first 2^21 steps.
  """
  return [int(seed) + EVAL_STREAM, (1024 * int(step)) % (2 ** 31)]


def data_order(seed: int, epoch, num_examples: int, needed: int) -> tf.Tensor:
  """Example indices of one epoch: int [needed], a pure function of (seed, epoch).

  Concatenates ceil(needed / num_examples) permutations of range(num_examples), the i-th from
  argsort(stateless_uniform(seed=[seed, epoch * 1009 + i])), and keeps the first `needed`: an
  epoch of S steps of B examples uses needed = S * B, repeating examples when S * B > N.

  Args:
    seed: the run's seed.
    epoch: 0-based epoch (int or scalar tensor).
    num_examples: N.
    needed: indices to return.
  """
  perms = max(1, -(-int(needed) // int(num_examples)))
  epoch = tf.cast(epoch, tf.int64)
  orders = [tf.argsort(tf.random.stateless_uniform(
      [num_examples], seed=tf.stack([tf.constant(int(seed), tf.int64), epoch * _EPOCH_STRIDE + i])))
            for i in range(perms)]
  return tf.concat(orders, 0)[:needed]


def figures_rng(seed: int) -> np.random.Generator:
  """NumPy generator of the figures' posterior samples."""
  return np.random.default_rng(int(seed))


def figures_sample_seed(seed: int) -> int:
  """Seed of the prior samples drawn for the figures."""
  return int(seed)


def metric_rng(seed) -> np.random.Generator:
  """NumPy generator of a metric's sampling: from an int, a SeedSequence or a Generator."""
  if isinstance(seed, np.random.Generator):
    return seed
  return np.random.default_rng(seed)


def likelihood_batch(seed: int, index: int) -> tf.Tensor:
  """Stateless seed of the ELBO estimate on batch `index` of a likelihood evaluation."""
  return tf.constant([int(seed), int(index)], tf.int32)


def iwae_batch(seed: int, index: int) -> tf.Tensor:
  """Stateless seed of the IWAE estimate on batch `index` (disjoint from `likelihood_batch`)."""
  return tf.constant([int(seed), int(index) + _IWAE_STREAM], tf.int32)
