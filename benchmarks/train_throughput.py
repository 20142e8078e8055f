"""Training throughput (examples/second) of the three presets' models, with and without XLA.

Random data of the right shape, the presets' batch sizes, priors and divergences; each
configuration is warmed up (compilation) and timed over several windows of `steps` optimizer
steps, reporting the median. For the sparsity model it also times the step without the MMD term
(alpha = 0, no divergence) to give the MMD's share of the step.

  python benchmarks/train_throughput.py                  # all presets, jit on and off
  python benchmarks/train_throughput.py --only=clustering --windows=7
  python benchmarks/train_throughput.py --only=sparsity --processes=10   # spread over 10 fresh
                                                                         # processes (bimodal?)

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


def measure(config, jit, steps, windows, steps_per_execution):
  """Median examples/second over `windows` windows of `steps` steps (after a warm-up)."""
  keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  shape = SHAPES[config.dataset]
  x = rng.random((config.batch_size, *shape), dtype=np.float32)
  if config.likelihood == "bernoulli":
    x = (x > 0.5).astype(np.float32)
  model = builders.build_model(config, rng.random((200, *shape), dtype=np.float32))
  model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, amsgrad=True),
                jit_compile=jit, steps_per_execution=steps_per_execution)
  ds = tf.data.Dataset.from_tensors(x).repeat()
  model.fit(ds, epochs=1, steps_per_epoch=2 * steps_per_execution, verbose=0)   # compile.
  model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)                      # warm up.
  rates = []
  for _ in range(windows):
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    rates.append(steps * config.batch_size / (time.perf_counter() - start))
  return statistics.median(rates)


def main():
  warnings.filterwarnings("ignore", category=UserWarning)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", choices=sorted(TARGETS), action="append")
  parser.add_argument("--windows", type=int, default=5)
  parser.add_argument("--jit", choices=["on", "off", "both"], default="both")
  parser.add_argument("--processes", type=int, default=1,
                      help="time each configuration in this many fresh processes and print the "
                           "spread (min / median / max) of their rates")
  parser.add_argument("--no-mmd-share", action="store_true",
                      help="skip the sparsity preset's run without the MMD")
  args = parser.parse_args()
  jits = {"on": (True,), "off": (False,), "both": (True, False)}[args.jit]
  if args.processes > 1:
    for name in args.only or ["clustering", "independence", "sparsity"]:
      for jit in jits:
        rates = []
        for _ in range(args.processes):
          out = subprocess.run(
              [sys.executable, __file__, f"--only={name}", f"--jit={'on' if jit else 'off'}",
               f"--windows={args.windows}", "--no-mmd-share"],
              check=True, capture_output=True, text=True).stdout
          rates.append(float(out.strip().splitlines()[-1].split("ex/s")[0].split()[-1]))
        print(f"{name:13s} jit={str(jit):5s} {args.processes} fresh processes: min "
              f"{min(rates):.0f}  median {statistics.median(rates):.0f}  max {max(rates):.0f} "
              f"ex/s  max/min {max(rates) / min(rates):.2f}  all "
              + " ".join(f"{r:.0f}" for r in rates), flush=True)
    return
  names = args.only or ["clustering", "independence", "sparsity"]
  # (steps per window, steps_per_execution)
  plan = {"clustering": (500, 100), "independence": (20, 10), "sparsity": (6, 3)}
  print(f"cores: {os.cpu_count()}  tensorflow {tf.__version__}  keras {keras.__version__}")
  for name in names:
    config = configs.make(name)
    steps, spe = plan[name]
    for jit in jits:
      rate = measure(config, jit, steps, args.windows, spe)
      line = (f"{name:13s} {config.network:8s} batch {config.batch_size:4d} prior "
              f"{config.prior:9s} D={config.divergence:12s} jit={str(jit):5s} "
              f"{rate:10.0f} ex/s  (target >= {TARGETS[name]})")
      if name == "sparsity" and not args.no_mmd_share:
        no_d = configs.make(name, alpha=0.0, divergence="none")
        rate_no_d = measure(no_d, jit, steps, args.windows, spe)
        share = 1.0 - rate / rate_no_d
        line += f"; without MMD {rate_no_d:.0f} ex/s -> MMD {100 * share:.0f}% of the step"
      print(line, flush=True)


if __name__ == "__main__":
  main()
