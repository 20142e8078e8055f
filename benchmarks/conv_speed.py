"""Forward + backward time of the conv64 / dcgan32 4x4/2 convolutions, per layer and variant.

TensorFlow's kernels (tf.nn.conv2d / conv2d_transpose) against the rewrites in
tfdecomp.convolutions, timed interleaved in one process (robust to a shared machine) and reported
as GFLOP/s and as the speed-up over TensorFlow's kernel, in tf.function or XLA mode.

  python benchmarks/conv_speed.py --mode=tf
  python benchmarks/conv_speed.py --mode=xla
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import time

import numpy as np
import tensorflow as tf

from tfdecomp import convolutions

# name, kind ("c" conv, "t" transposed), batch, input size, input channels, output channels.
LAYERS = [("conv64 conv_0", "c", 64, 64, 1, 32), ("conv64 conv_1", "c", 64, 32, 32, 32),
          ("conv64 conv_2", "c", 64, 16, 32, 64), ("conv64 conv_3", "c", 64, 8, 64, 64),
          ("conv64 deconv_0", "t", 64, 4, 64, 64), ("conv64 deconv_1", "t", 64, 8, 64, 64),
          ("conv64 deconv_2", "t", 64, 16, 64, 32), ("conv64 params", "t", 64, 32, 32, 1),
          ("dcgan32 conv_0", "c", 500, 32, 1, 32), ("dcgan32 conv_1", "c", 500, 16, 32, 64),
          ("dcgan32 conv_2", "c", 500, 8, 64, 128), ("dcgan32 deconv_1", "t", 500, 4, 128, 64),
          ("dcgan32 deconv_2", "t", 500, 8, 64, 32), ("dcgan32 params", "t", 500, 16, 32, 1)]


def _tf_conv(x, kernel):
  return tf.nn.conv2d(x, kernel, 2, "SAME")


def _tf_conv_transpose(x, kernel):
  b, h, w, _ = x.shape
  return tf.nn.conv2d_transpose(x, kernel, [b, 2 * h, 2 * w, kernel.shape[2]], 2, "SAME")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--mode", choices=["eager", "tf", "xla"], default="tf")
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  print(f"mode {args.mode}; cores {os.cpu_count()}; medians of {args.rounds} interleaved rounds")
  for name, kind, b, h, c, f in LAYERS:
    x = tf.constant(rng.normal(size=[b, h, h, c]).astype(np.float32))
    kernel = tf.Variable(rng.normal(size=[4, 4, c, f] if kind == "c" else [4, 4, f, c])
                         .astype(np.float32))
    fns = ([_tf_conv, convolutions.conv_s2d, convolutions.conv_patches] if kind == "c"
           else [_tf_conv_transpose, convolutions.conv_transpose_subpixel])
    out_size = h // 2 if kind == "c" else h
    flops = 3 * 2 * b * out_size ** 2 * 16 * c * f   # forward, input and kernel gradients.
    steps = []
    for fn in fns:
      def step(x, fn=fn):
        with tf.GradientTape() as tape:
          tape.watch(x)
          y = fn(x, kernel)
          loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, kernel])
      if args.mode != "eager":
        step = tf.function(step, jit_compile=args.mode == "xla")
      step(x)
      steps.append(step)
    repeats = 5 if b == 64 else 3
    times = [[] for _ in fns]
    for _ in range(args.rounds):
      for i, step in enumerate(steps):
        start = time.perf_counter()
        for _ in range(repeats):
          grads = step(x)
        grads[1].numpy()
        times[i].append((time.perf_counter() - start) / repeats)
    medians = [float(np.median(t)) for t in times]
    print(f"{name:17s} " + "  ".join(
        f"{fn.__name__.strip('_'):23s} {1e3 * m:7.2f} ms {flops / m / 1e9:6.1f} GFLOP/s "
        f"x{medians[0] / m:4.2f}" for fn, m in zip(fns, medians)), flush=True)


if __name__ == "__main__":
  main()
