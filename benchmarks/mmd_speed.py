"""Forward + backward time of the per-dimension IMQ MMD (the sparsity experiment's regulariser).

Compares tfdecomp.divergences.mmd (fused XLA forward and backward, float64 accumulation) with the
same estimator written as plain TensorFlow and differentiated by autodiff, with and without XLA.

  python benchmarks/mmd_speed.py                 # B = 500, D = 50 (the paper's Fashion-MNIST run)
  python benchmarks/mmd_speed.py --batch 64 --dim 10
"""

import argparse
import time

import numpy as np

import tfdecomp
from tfdecomp import divergences
import tensorflow as tf


def plain_mmd(z_q, z_p):
  """Broadcast implementation: materialises B x B x D tensors per scale."""
  batch = tf.cast(tf.shape(z_q)[0], z_q.dtype)
  constants = [2.0 * s for s in divergences.DEFAULT_MMD_SCALES]

  def kernel_sum(a, b):
    sq = tf.square(a[:, None, :] - b[None, :, :])
    return tf.reduce_sum(tf.add_n([c / (c + sq) for c in constants]))

  diagonal = batch * tf.cast(tf.shape(z_q)[1], z_q.dtype) * len(constants)
  return ((kernel_sum(z_p, z_p) + kernel_sum(z_q, z_q) - 2.0 * diagonal) / (batch * (batch - 1.0))
          - 2.0 * kernel_sum(z_p, z_q) / (batch * batch))


def time_step(fn, z_q, z_p, jit, repeats, unknown_batch=False):
  """Median ms of value and gradient; unknown_batch traces with a batch of None, as `fit` does."""
  spec = tf.TensorSpec([None if unknown_batch else z_p.shape[0], z_p.shape[1]], z_p.dtype)

  @tf.function(jit_compile=jit, input_signature=[spec, spec])
  def step(q, p):
    with tf.GradientTape() as tape:
      tape.watch(q)
      value = fn(q, p)
    return value, tape.gradient(value, q)

  step(z_q, z_p)  # Trace and compile.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    value, grad = step(z_q, z_p)
    grad.numpy()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times)), float(value)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=500)
  parser.add_argument("--dim", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  z_q = tf.constant(rng.normal(size=[args.batch, args.dim]).astype(np.float32))
  z_p = tf.constant(rng.normal(size=[args.batch, args.dim]).astype(np.float32))
  exact = float(divergences.mmd(tf.cast(z_q, tf.float64), tf.cast(z_p, tf.float64)))
  print(f"MMD forward+backward, B={args.batch}, D={args.dim}, 6 IMQ scales "
        f"(median of {args.repeats}); float64 value {exact:.7f}")
  rows = [("tfdecomp.divergences.mmd", divergences.mmd, False, False),
          ("  traced with batch None", divergences.mmd, False, True),
          ("plain autodiff", plain_mmd, False, False),
          ("plain autodiff, XLA", plain_mmd, True, False)]
  baseline = None
  for name, fn, jit, unknown_batch in rows:
    ms, value = time_step(fn, z_q, z_p, jit, args.repeats, unknown_batch)
    baseline = baseline or ms
    print(f"  {name:28s} {ms:8.1f} ms   x{ms / baseline:5.2f}   value {value:.7f} "
          f"(error {abs(value - exact):.1e})")


if __name__ == "__main__":
  main()
