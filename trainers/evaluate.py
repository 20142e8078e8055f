"""Evaluate a trained model: disentanglement, sparsity, clustering and likelihood metrics.

  python -m trainers.evaluate --run=runs/clustering-...            # a training run directory
  python -m trainers.evaluate --savedmodel=DIR --dataset=dsprites   # an export (savedmodels)
  python -m trainers.evaluate --run=DIR --metrics=factor_vae,mig --metric_args='{"factor_vae":
      {"num_train": 2000}}'

The default metrics are all that apply (see `tfdecomp.evaluation`). Results, with every argument,
the data set and the model's settings, are written to metrics.json (under "evaluation") in the run
directory (or --out), and printed as a table.
"""

import json
import os
import sys

from absl import flags

from trainers import _cli

PROG = "tfdecomp-evaluate"
FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (on start-up only: importing this module defines none)."""
  flags.DEFINE_string("run", None, "Training run directory (written by tfdecomp-train).")
  flags.DEFINE_string("savedmodel", None, "Exported model directory (written by savedmodels).")
  flags.DEFINE_string("dataset", None, "Data set: pinwheel, dsprites, fashion_mnist, digits or any "
                      "TFDS name (default: the run's).")
  flags.DEFINE_string("dataset_config", "full", "dSprites factor grid: full or small.")
  flags.DEFINE_string("split", None, "Split of the evaluation examples (default: the run's).")
  flags.DEFINE_string("metrics", None, "Comma-separated metrics (default: all that apply).")
  flags.DEFINE_integer("seed", 0, "Seed of the metrics' sampling.")
  flags.DEFINE_integer("max_examples", 10000, "Evaluation examples for sparsity/clustering.")
  flags.DEFINE_integer("likelihood_examples", 1000, "Examples for the ELBO/IWAE estimates.")
  flags.DEFINE_integer("iwae_samples", 1000, "Importance samples K of the IWAE bound (0: none).")
  flags.DEFINE_bool("student_t_mapping", True, "Map Student-t codes to Normal before scoring.")
  flags.DEFINE_string("metric_args", None, "JSON of per-metric keyword arguments.")
  flags.DEFINE_string("data_dir", None, "TFDS data directory.")
  flags.DEFINE_string("manual_dir", None, "Directory with manually downloaded files.")
  flags.DEFINE_string("out", None, "Where metrics.json goes (default: the run or export dir).")


class UsageError(ValueError):
  """A bad command line or input: reported as one line, exit status 2."""


def _load_model():
  if bool(FLAGS.run) == bool(FLAGS.savedmodel):
    raise UsageError("give exactly one of --run and --savedmodel.")
  if FLAGS.run:
    from trainers import runs
    try:
      model, config, epochs = runs.load_run(FLAGS.run)
    except runs.RunError as e:
      raise UsageError(str(e)) from None
    settings = {**config.to_dict(), "epochs_done": epochs}
    return model, settings, FLAGS.run
  import savedmodels
  try:
    model = savedmodels.load(FLAGS.savedmodel)
  except (FileNotFoundError, OSError) as e:
    raise UsageError(str(e)) from None
  return model, model.metadata.get("run", {}), FLAGS.savedmodel


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments {' '.join(argv[1:])!r} (flags are written --name=value).")
  import tfdecomp  # noqa: F401  (imports TensorFlow quietly)
  from tfdecomp import callbacks, data, evaluation
  try:
    metric_args = json.loads(FLAGS.metric_args) if FLAGS.metric_args else {}
    if not isinstance(metric_args, dict):
      raise UsageError("--metric_args must be a JSON object {metric: {argument: value}}.")
    metrics = [m.strip() for m in FLAGS.metrics.split(",") if m.strip()] if FLAGS.metrics else None
    if metrics:
      unknown = sorted(set(metrics) - set(evaluation.METRICS))
      if unknown:
        raise UsageError(f"unknown --metrics {unknown}; choose from {list(evaluation.METRICS)}.")
    model, settings, where = _load_model()
    dataset = FLAGS.dataset or settings.get("dataset")
    if not dataset:
      raise UsageError("--dataset is needed (the export does not name its data set).")
    split = FLAGS.split or settings.get("eval_split") or "test"
    kwargs = {"data_dir": FLAGS.data_dir, "manual_dir": FLAGS.manual_dir}
    try:
      x, labels = data.load_numpy(dataset, split, max_examples=FLAGS.max_examples,
                                  with_labels=True, **kwargs)
      ground_truth = None
      if metrics is None or any(m in evaluation.DISENTANGLEMENT for m in metrics):
        ground_truth = evaluation.discover_ground_truth(dataset, split, FLAGS.dataset_config,
                                                        **kwargs)
    except (FileNotFoundError, ValueError) as e:
      raise UsageError(f"cannot load {dataset} split {split!r}: {str(e).splitlines()[0]}") from None
    if tuple(x.shape[1:]) != tuple(model.encoder.inputs[0].shape[1:] if hasattr(
        model, "encoder") else model.input_shape):
      raise UsageError(f"{dataset} examples have shape {x.shape[1:]}, but the model takes "
                       f"{model.encoder.inputs[0].shape[1:] if hasattr(model, 'encoder') else model.input_shape}.")
    print(f"{PROG}: {where} on {dataset} {split} ({len(x)} examples)", file=sys.stderr, flush=True)
    results = evaluation.evaluate(
        model, x, labels, metrics=metrics, ground_truth=ground_truth, seed=FLAGS.seed,
        student_t_mapping=FLAGS.student_t_mapping, iwae_samples=FLAGS.iwae_samples,
        likelihood_examples=FLAGS.likelihood_examples, metric_args=metric_args,
        progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
  except UsageError as e:
    _fail(str(e))
  except ValueError as e:
    _fail(str(e).splitlines()[0])

  out_dir = FLAGS.out or where
  path = os.path.join(out_dir, "metrics.json")
  document = {}
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      document = json.load(f)
  document["evaluation"] = {
      "results": results,
      "arguments": {"dataset": dataset, "dataset_config": FLAGS.dataset_config, "split": split,
                    "seed": FLAGS.seed, "examples": int(len(x)),
                    "likelihood_examples": FLAGS.likelihood_examples,
                    "iwae_samples": FLAGS.iwae_samples,
                    "student_t_mapping": FLAGS.student_t_mapping, "metric_args": metric_args,
                    "source": os.path.abspath(where)},
      "model": settings,
  }
  os.makedirs(out_dir, exist_ok=True)
  callbacks.atomic_write_text(path, json.dumps(document, indent=2) + "\n")
  print(format_table(results))
  print(f"{PROG}: wrote {path}")


def format_table(results):
  """One line per scalar result: metric, key, value."""
  rows = [(name, key, value) for name, result in results.items()
          for key, value in result.items()
          if isinstance(value, (int, float)) and key != "seconds"]
  width = max([len(f"{n}.{k}") for n, k, _ in rows] + [10])
  lines = [f"{'metric'.ljust(width)}  value"]
  lines += [f"{(n + '.' + k).ljust(width)}  {v:.4f}" if isinstance(v, float) else
            f"{(n + '.' + k).ljust(width)}  {v}" for n, k, v in rows]
  return "\n".join(lines)


def _fail(message):
  _cli.fail(PROG, message)


def run():
  """Console-script entry point (`tfdecomp-evaluate`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
