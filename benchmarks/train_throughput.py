"""Training throughput (examples/second) of the three presets' models, with and without XLA.

Random data of the right shape, the presets' batch sizes, priors and divergences; each
configuration is warmed up (compilation) and timed over several windows of `steps` optimizer
steps, reporting the median. For the sparsity model it also times the step without the MMD term
(alpha = 0, no divergence) to give the MMD's share of the step.

  python benchmarks/train_throughput.py                  # all presets, jit on and off
  python benchmarks/train_throughput.py --only=clustering --windows=7
  python benchmarks/train_throughput.py --strategy=mirrored      # 1 vs 2 logical CPU devices
  python benchmarks/train_throughput.py --strategy=multiworker   # 1 device vs 2 local workers

With --strategy the step runs without XLA (a replicated step cannot be XLA-compiled), on the
same global batch: `mirrored` splits the CPU into 2 logical devices in one process
(MirroredStrategy, Keras `fit`); `multiworker` starts 2 worker processes of this script on
127.0.0.1 (MultiWorkerMirroredStrategy from TF_CONFIG, the loop of tfdecomp.distributed_loop).
Scaling efficiency = (examples/s on 2) / (2 x examples/s on 1). On one 2-core machine the
replicas share the same cores, so no speed-up is expected: the figure is the overhead a real
multi-GPU or multi-host run pays (gradient all-reduce, the all_gather of z for the divergence).
  python benchmarks/train_throughput.py --only=sparsity --processes=10   # spread over 10 fresh
                                                                         # processes (bimodal?)

Each line also gives the step's GFLOP/s (analytic FLOPs of the encoder's and decoder's dense and
convolution layers, counted from the built model: 2 per multiply-add, training = 3 x forward, the
convention of ../shared/bench/tf_peak.py) and its share of two ceilings measured at the start of
the same run: TensorFlow's float32 matmul (1024^3) and TensorFlow's own convolution kernels
(tf.nn.conv2d / conv2d_transpose, forward + backward) on the preset's conv layers. --no-ceilings
skips them.

Targets (issue 4; 2 CPU cores): dSprites conv64 batch 64 >= 780 ex/s; Fashion-MNIST dcgan32 batch
500 sparse prior + MMD (alpha 100) >= 950 ex/s with the MMD < 25% of the step; pinwheel MLP batch
400 mixture + inclusive KL >= 69,000 ex/s.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import statistics
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfdecomp import builders
from tfdecomp import configs

TARGETS = {"clustering": 69000, "independence": 780, "sparsity": 950}
SHAPES = {"pinwheel": (2,), "dsprites": (64, 64, 1), "fashion_mnist": (32, 32, 1)}


def _batch(config):
  rng = np.random.default_rng(0)
  shape = SHAPES[config.dataset]
  x = rng.random((config.batch_size, *shape), dtype=np.float32)
  if config.likelihood == "bernoulli":
    x = (x > 0.5).astype(np.float32)
  return x, rng.random((200, *shape), dtype=np.float32)


def _layer_macs(layer):
  """Multiply-adds per example of one Dense / Conv2D / Conv2DTranspose layer of a built model."""
  if isinstance(layer, keras.layers.Conv2DTranspose):
    kh, kw, f, c = layer.kernel.shape
    return int(np.prod(layer.input.shape[1:3])) * kh * kw * c * f
  if isinstance(layer, keras.layers.Conv2D):
    return int(np.prod(layer.output.shape[1:3])) * int(np.prod(layer.kernel.shape))
  if isinstance(layer, keras.layers.Dense):
    return int(np.prod(layer.input.shape[1:])) * int(layer.kernel.shape[1])
  return 0


def train_flops(model):
  """Analytic training FLOPs per example: 3 x 2 x the multiply-adds of the two networks."""
  return 6 * sum(_layer_macs(layer) for net in (model.encoder, model.decoder)
                 for layer in net._flatten_layers(include_self=False))  # pylint: disable=protected-access


def _conv_layers(model):
  """The Conv2D and Conv2DTranspose layers of the model's encoder and decoder, in order."""
  return [layer for net in (model.encoder, model.decoder)
          for layer in net._flatten_layers(include_self=False)  # pylint: disable=protected-access
          if isinstance(layer, keras.layers.Conv2D)]  # Conv2DTranspose is a Conv2D subclass.


def _gflops(fn, flops, seconds=2.0):
  fn()
  fn()
  n, start = 0, time.perf_counter()
  while n < 3 or time.perf_counter() - start < seconds:
    fn()
    n += 1
  return n * flops / (time.perf_counter() - start) / 1e9


def matmul_ceiling(n=1024):
  """GFLOP/s of TensorFlow's float32 n x n matmul (tf.function)."""
  a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
  mm = tf.function(lambda: tf.matmul(a, b)[0, 0])
  return _gflops(lambda: mm().numpy(), 2.0 * n ** 3)


def conv_ceiling(model, batch):
  """GFLOP/s of TensorFlow's own kernels on the model's conv layers (forward + backward: kernel
  gradients everywhere, input gradients but for the first layer), run as one tf.function."""
  layers = _conv_layers(model)
  if not layers:
    return None
  specs = [("t" if isinstance(layer, keras.layers.Conv2DTranspose) else "c",
            tuple(layer.input.shape[1:]), tuple(layer.kernel.shape), tuple(layer.output.shape[1:]),
            layer.strides[0], layer.padding.upper()) for layer in layers]
  rng = np.random.default_rng(0)
  xs = [tf.constant(rng.standard_normal((batch, *inp), dtype=np.float32)) for _, inp, *_ in specs]
  ks = [tf.Variable(rng.standard_normal(k, dtype=np.float32) * 0.05) for _, _, k, *_ in specs]

  @tf.function
  def step():
    total = 0.0
    with tf.GradientTape() as tape:
      tape.watch(xs[1:])
      for (kind, _, _, out, stride, padding), x, k in zip(specs, xs, ks):
        y = (tf.nn.conv2d(x, k, stride, padding) if kind == "c" else
             tf.nn.conv2d_transpose(x, k, [batch, *out], stride, padding))
        total += tf.reduce_sum(y * y)
    grads = tape.gradient(total, ks + xs[1:])
    return tf.add_n([tf.reduce_sum(g) for g in grads])

  macs = [_layer_macs(layer) for layer in layers]
  return _gflops(lambda: step().numpy(), batch * (6 * sum(macs) - 2 * macs[0]))


def _model(config, jit, steps_per_execution, strategy=None):
  keras.utils.set_random_seed(0)
  x, example = _batch(config)
  with (strategy or tf.distribute.get_strategy()).scope():
    model = builders.build_model(config, example)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, amsgrad=True),
                  jit_compile=jit, steps_per_execution=steps_per_execution)
  return model, x


def measure(config, jit, steps, windows, steps_per_execution, strategy=None):
  """Median examples/second over `windows` windows of `steps` steps (after a warm-up)."""
  model, x = _model(config, jit, steps_per_execution, strategy)
  # Autotuning off, as tfdecomp.data does: otherwise the end of each timed `fit` can wait
  # seconds for tf.data's autotune thread (the "2x slow mode" of issue 16; see data._finish).
  options = tf.data.Options()
  options.autotune.enabled = False
  ds = tf.data.Dataset.from_tensors(x).repeat().with_options(options)
  model.fit(ds, epochs=1, steps_per_epoch=2 * steps_per_execution, verbose=0)   # compile.
  model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)                      # warm up.
  rates = []
  for _ in range(windows):
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    rates.append(steps * config.batch_size / (time.perf_counter() - start))
  return statistics.median(rates)


class _Windows(keras.callbacks.Callback):
  """Wall time of every epoch after the first (the warm-up)."""

  def __init__(self):
    super().__init__()
    self.seconds = []
    self._start = None

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    if epoch > 0:
      self.seconds.append(time.perf_counter() - self._start)


class _Stream:
  """The one random global batch, repeated, as `tfdecomp.distributed_loop.fit` reads a stream."""

  def __init__(self, x):
    self.x = x
    self.dataset = tf.data.Dataset.from_tensors(x).repeat()

  def shard(self, rows, parts=1):
    start, stop = rows
    share = self.x[start:stop].reshape(parts, (stop - start) // parts, *self.x.shape[1:])
    return tf.data.Dataset.from_tensor_slices(share).repeat()


def worker(name, steps, windows, spe):
  """One worker of the 2-worker measurement; the chief prints `rate <examples/s>`."""
  from tfdecomp import distribute, distributed_loop  # pylint: disable=g-import-not-at-top
  strategy = distribute.get("multiworker")
  config = configs.make(name)
  steps = max(spe, steps - steps % spe)
  model, x = _model(config, False, spe, strategy)
  timer = _Windows()
  distributed_loop.fit(model, _Stream(x), epochs=1 + windows, steps_per_epoch=steps,
                       callbacks=[timer])
  if distributed_loop.is_chief(strategy):
    print(f"rate {statistics.median(steps * config.batch_size / t for t in timer.seconds)}",
          flush=True)


def _two_workers(name, windows):
  import json  # pylint: disable=g-import-not-at-top
  import socket  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  sockets = [socket.socket() for _ in range(2)]
  for sock in sockets:
    sock.bind(("127.0.0.1", 0))
  workers = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
  for sock in sockets:
    sock.close()
  procs = []
  try:
    for i in range(2):
      env = dict(os.environ, TF_CONFIG=json.dumps(
          {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}))
      procs.append(subprocess.Popen(
          [sys.executable, __file__, f"--only={name}", f"--windows={windows}",
           f"--worker={i}"], env=env, stdout=subprocess.PIPE, text=True))
    out = procs[0].communicate(timeout=1800)[0]
    procs[1].wait(timeout=60)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  rates = [float(line.split()[1]) for line in out.splitlines() if line.startswith("rate ")]
  if not rates:
    raise RuntimeError(f"the 2-worker run of {name} printed no rate: {out[-500:]}")
  return rates[0]


def scaling(names, strategy_name, windows, plan):
  """1 device vs 2 (logical devices or local workers), without XLA, same global batch."""
  two = None
  if strategy_name == "mirrored":
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  for name in names:
    config = configs.make(name)
    steps, spe = plan[name]
    if two is not None:
      spe = 1  # Keras's multi-step fit fails under MirroredStrategy (tfdecomp.builders).
    one = measure(config, False, steps, windows, spe)
    rate = (measure(config, False, steps, windows, spe, strategy=two) if two is not None
            else _two_workers(name, windows))
    label = "2 logical devices" if two is not None else "2 local workers  "
    print(f"{name:13s} {config.network:8s} batch {config.batch_size:4d} "
          f"D={config.divergence:12s} steps/call {spe:3d} 1 device {one:9.0f} ex/s  {label} "
          f"{rate:9.0f} ex/s  speed-up {rate / one:4.2f}x  "
          f"efficiency {100 * rate / (2 * one):3.0f}%", flush=True)


def _efficiency(rate, flops, ceilings, name):
  """'<GFLOP/s> GFLOP/s (<p>% of matmul, <q>% of TF conv kernels)' for a rate in examples/s."""
  gflops = rate * flops / 1e9
  shares = [f"{100 * gflops / ceilings[key]:.0f}% of {label}"
            for key, label in (("matmul", "matmul"), (name, "TF conv kernels"))
            if key in ceilings]
  return f"{gflops:.2f} GFLOP/s" + (f" ({', '.join(shares)})" if shares else "")


def main():
  warnings.filterwarnings("ignore", category=UserWarning)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", choices=sorted(TARGETS), action="append")
  parser.add_argument("--windows", type=int, default=5)
  parser.add_argument("--strategy", choices=["mirrored", "multiworker"],
                      help="measure 1 vs 2 devices (mirrored) or 1 device vs 2 local workers")
  parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # A worker of --strategy.
  parser.add_argument("--jit", choices=["on", "off", "both"], default="both")
  parser.add_argument("--processes", type=int, default=1,
                      help="time each configuration in this many fresh processes and print the "
                           "spread (min / median / max) of their rates")
  parser.add_argument("--no-mmd-share", action="store_true",
                      help="skip the sparsity preset's run without the MMD")
  parser.add_argument("--no-ceilings", action="store_true",
                      help="skip measuring the matmul and conv-kernel ceilings")
  args = parser.parse_args()
  jits = {"on": (True,), "off": (False,), "both": (True, False)}[args.jit]
  names = args.only or ["clustering", "independence", "sparsity"]
  ceilings = {}
  if not (args.no_ceilings or args.worker is not None or args.strategy):
    ceilings = {"matmul": matmul_ceiling()}
    print(f"cores: {os.cpu_count()}  tensorflow {tf.__version__}  keras {keras.__version__}  "
          f"ceilings: matmul 1024^3 {ceilings['matmul']:.0f} GFLOP/s", flush=True)
    for name in names:
      config = configs.make(name)
      conv = conv_ceiling(_model(config, False, 1)[0], config.batch_size)
      if conv is not None:
        ceilings[name] = conv
        print(f"  {name}: TensorFlow's conv kernels on its conv layers (batch "
              f"{config.batch_size}, forward + backward) {conv:.0f} GFLOP/s", flush=True)
  if args.processes > 1:
    for name in names:
      flops = train_flops(_model(configs.make(name), False, 1)[0])
      for jit in jits:
        rates = []
        for _ in range(args.processes):
          out = subprocess.run(
              [sys.executable, __file__, f"--only={name}", f"--jit={'on' if jit else 'off'}",
               f"--windows={args.windows}", "--no-mmd-share", "--no-ceilings"],
              check=True, capture_output=True, text=True).stdout
          rates.append(float(out.strip().splitlines()[-1].split("ex/s")[0].split()[-1]))
        median = statistics.median(rates)
        print(f"{name:13s} jit={str(jit):5s} {args.processes} fresh processes: min "
              f"{min(rates):.0f}  median {median:.0f}  max {max(rates):.0f} "
              f"ex/s  max/min {max(rates) / min(rates):.2f}  median "
              f"{_efficiency(median, flops, ceilings, name)}  all "
              + " ".join(f"{r:.0f}" for r in rates), flush=True)
    return
  # (steps per window, steps_per_execution)
  plan = {"clustering": (500, 100), "independence": (20, 10), "sparsity": (6, 3)}
  if args.worker is not None:
    worker(names[0], *plan[names[0]][:1], args.windows, plan[names[0]][1])
    return
  if args.strategy == "mirrored":
    from tfdecomp import distribute  # pylint: disable=g-import-not-at-top
    distribute.split_cpu(2)
  if not ceilings:
    print(f"cores: {os.cpu_count()}  tensorflow {tf.__version__}  keras {keras.__version__}")
  if args.strategy:
    scaling(names, args.strategy, args.windows, plan)
    return
  for name in names:
    config = configs.make(name)
    steps, spe = plan[name]
    flops = train_flops(_model(config, False, 1)[0])
    for jit in jits:
      rate = measure(config, jit, steps, args.windows, spe)
      line = (f"{name:13s} {config.network:8s} batch {config.batch_size:4d} prior "
              f"{config.prior:9s} D={config.divergence:12s} jit={str(jit):5s} "
              f"{rate:10.0f} ex/s  {_efficiency(rate, flops, ceilings, name)}  "
              f"(target >= {TARGETS[name]})")
      if name == "sparsity" and not args.no_mmd_share:
        no_d = configs.make(name, alpha=0.0, divergence="none")
        rate_no_d = measure(no_d, jit, steps, args.windows, spe)
        share = 1.0 - rate / rate_no_d
        line += f"; without MMD {rate_no_d:.0f} ex/s -> MMD {100 * share:.0f}% of the step"
      print(line, flush=True)


if __name__ == "__main__":
  main()
