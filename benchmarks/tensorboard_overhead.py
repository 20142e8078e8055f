"""Step rate of training with and without the TensorBoard callback, at its default settings.

What `tfdecomp.training.train` runs, minus checkpoints and the progress line: the preset's
model and training stream, `fit` with the run's validation (`training.validation_split`), with
and without `tfdecomp.tensorboard.DecompTensorBoard` (default update_freq, image_freq="auto",
the 1,000-example evaluation batch). Each preset is compiled once, then the two variants are
timed alternately (`--repeats` times each, whole `fit` calls including the callback's start
and end writes) and the median step rates are compared. The process's CPU time per step (all
threads) is compared too: on a shared or virtual machine the wall-clock rate of one variant
varies by 10-25% between repeats, and the CPU time shows the callback's own work without the
neighbours' share.

  python benchmarks/tensorboard_overhead.py                      # clustering, sparsity_digits
  python benchmarks/tensorboard_overhead.py --only=clustering --repeats=5

Target (issue 14): the rate with the callback within 5% of the rate without it. On a shared
machine the spread between repeats of the same variant is printed too: a difference smaller
than it is noise.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import shutil
import statistics
import tempfile
import time
import warnings

import keras

from tfdecomp import builders
from tfdecomp import configs
from tfdecomp import data
from tfdecomp import seeds
from tfdecomp import tensorboard
from tfdecomp import training

PRESETS = {"clustering": {}, "sparsity_digits": {"epochs": 10}}


class _Timer(keras.callbacks.Callback):
  """Last in the list: times from after the others' on_train_begin to after their last
  on_epoch_end, i.e. the training steps and everything done between them (validation, the
  callback's scalars and any images during training), without the callback's one-off start
  (config text) and end (the final images)."""

  def on_train_begin(self, logs=None):
    self.train_begin = time.perf_counter()
    self.cpu_begin = time.process_time()

  def on_epoch_end(self, epoch, logs=None):
    self.last_epoch_end = time.perf_counter()
    self.cpu_end = time.process_time()


def rates(name, overrides, repeats):
  config = configs.make(name, **overrides)
  stream = data.training_data(config.dataset_name, "train", batch_size=config.batch_size,
                              seed=config.seed, epochs=config.epochs * (2 * repeats + 1),
                              steps_per_epoch=config.steps_per_epoch)
  example = data.load_numpy(config.dataset_name, "train", max_examples=config.pca_examples)
  x_eval, labels = data.load_arrays(config.dataset_name, config.eval_split, max_examples=10000)
  seeds.initialize(config.seed)
  model = builders.build_model(config, example)
  builders.compile_model(model, config, stream.steps_per_epoch)
  validation = training.validation_split(x_eval, config, stream.steps_per_epoch)
  steps = stream.steps_per_epoch * config.epochs
  dataset = stream.dataset.repeat()
  logdir = tempfile.mkdtemp(prefix="tb-overhead-")

  def fit(with_callback):
    callbacks = []
    if with_callback:
      callbacks.append(tensorboard.DecompTensorBoard(
          os.path.join(logdir, str(time.monotonic_ns())),
          examples=x_eval[:training.TENSORBOARD_EXAMPLES],
          labels=None if labels is None else labels[:training.TENSORBOARD_EXAMPLES],
          config=config))
    timer = _Timer()
    start = time.perf_counter()
    model.fit(dataset, epochs=config.epochs, steps_per_epoch=stream.steps_per_epoch,
              verbose=0, callbacks=[*callbacks, timer], **validation)
    end = time.perf_counter()
    return (steps / (timer.last_epoch_end - timer.train_begin), steps / (end - start),
            steps / (timer.cpu_end - timer.cpu_begin))

  model.fit(dataset, epochs=2, steps_per_epoch=stream.steps_per_epoch, verbose=0,
            **{**validation, "validation_freq": 1})  # Compile the train and test steps.
  found = {False: [], True: []}
  for _ in range(repeats):
    for variant in (False, True):
      found[variant].append(fit(variant))
  shutil.rmtree(logdir, ignore_errors=True)
  return config, steps, found


def main():
  warnings.filterwarnings("ignore", category=UserWarning)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", choices=sorted(PRESETS), default=None)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  print(f"{os.cpu_count()} CPU(s); load average before: {os.getloadavg()[0]:.2f}")
  for name in [args.only] if args.only else PRESETS:
    config, steps, found = rates(name, PRESETS[name], args.repeats)
    print(f"{name}: {config.epochs} epochs, {steps} steps per fit, {args.repeats} fits each")
    for i, what in enumerate(("step rate during training", "whole fit (with start and end)",
                              "steps per CPU second during training (all threads)")):
      series = {v: [r[i] for r in found[v]] for v in (False, True)}
      without, with_tb = (statistics.median(series[v]) for v in (False, True))
      spread = max((max(r) - min(r)) / statistics.median(r) for r in series.values())
      print(f"  {what}:")
      print(f"    without callback  {without:8.1f} steps/s  "
            f"({', '.join(f'{r:.1f}' for r in series[False])})")
      print(f"    with callback     {with_tb:8.1f} steps/s  "
            f"({', '.join(f'{r:.1f}' for r in series[True])})")
      print(f"    with / without    {with_tb / without:8.3f}  (target >= 0.95; spread between "
            f"repeats of one variant {spread:.1%})")
  print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
