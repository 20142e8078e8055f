"""Evaluate a trained model: disentanglement, sparsity, clustering and likelihood metrics.

  python -m trainers.evaluate --run=runs/clustering-...            # a training run directory
  python -m trainers.evaluate --savedmodel=DIR --dataset=dsprites   # an export (savedmodels)
  python -m trainers.evaluate --run=DIR --metrics=factor_vae,mig --metric_args='{"factor_vae":
      {"num_train": 2000}}'

The default metrics are all that apply (`tfdecomp.evaluation`). Results, with every argument and
the model's settings, go under "evaluation" in the run's metrics.json; an export is never
modified: its results go to `<export>.metrics.json` beside it (or to --out). A table is printed.
For a run, the scalar results are also written to its TensorBoard (`evaluation/<metric>/<key>`,
`tfdecomp.tensorboard.write_evaluation`).
"""

import json
import os

from absl import flags

from trainers import _cli

PROG = "tfdecomp-evaluate"
FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (on start-up only: importing this module defines none)."""
  flags.DEFINE_string("run", None, "Training run directory (written by tfdecomp-train).")
  flags.DEFINE_string("savedmodel", None, "Exported model directory (written by savedmodels).")
  flags.DEFINE_string("dataset", None, "Data set: pinwheel, dsprites, fashion_mnist, digits or any "
                      "TFDS name, NAME/CONFIG allowed (default: the run's).")
  flags.DEFINE_string("dataset_config", None, "Builder config, e.g. small for dsprites' factor "
                      "grid (default: the run's, else the data set's default).")
  flags.DEFINE_string("split", None, "Split of the evaluation examples (default: the run's).")
  flags.DEFINE_string("metrics", None, "Comma-separated metrics (default: all that apply).")
  flags.DEFINE_integer("seed", 0, "Seed of the metrics' sampling.")
  flags.DEFINE_integer("max_examples", 10000, "Evaluation examples for sparsity/clustering.")
  flags.DEFINE_integer("likelihood_examples", 1000, "Examples for the ELBO/IWAE estimates.")
  flags.DEFINE_integer("iwae_samples", 1000, "Importance samples K of the IWAE bound (0: none).")
  flags.DEFINE_bool("student_t_mapping", True, "Map Student-t codes to Normal before scoring.")
  flags.DEFINE_string("metric_args", None, "JSON of per-metric keyword arguments.")
  flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDECOMP_DATA_DIR, else "
                      "TFDS's).")
  flags.DEFINE_string("manual_dir", None, "Directory with manually downloaded files.")
  flags.DEFINE_bool("download", False, "Let TFDS download and prepare an external data set that "
                    "is not prepared yet (needs internet); off: nothing is downloaded.")
  flags.DEFINE_string("out", None, "Directory for metrics.json (default: the run directory; for "
                      "an export, <export>.metrics.json beside it).")


def _load_model():
  from tfdecomp import runs  # pylint: disable=g-import-not-at-top
  if bool(FLAGS.run) == bool(FLAGS.savedmodel):
    raise ValueError("give exactly one of --run and --savedmodel.")
  if FLAGS.run:
    model, config, epochs = runs.load_run(FLAGS.run, warn=_cli.warner(PROG))
    return model, {**config.to_dict(), "epochs_done": epochs}, FLAGS.run
  import savedmodels  # pylint: disable=g-import-not-at-top
  model = savedmodels.load(FLAGS.savedmodel)
  return model, model.metadata.get("run", {}), FLAGS.savedmodel


def main(argv):
  if len(argv) > 1:
    _cli.fail(PROG, f"unexpected arguments {' '.join(argv[1:])!r} (flags are written "
                    "--name=value).")
  import sys  # pylint: disable=g-import-not-at-top
  from tfdecomp import evaluation, runs  # pylint: disable=g-import-not-at-top
  try:
    metric_args = json.loads(FLAGS.metric_args) if FLAGS.metric_args else {}
    if not isinstance(metric_args, dict):
      raise ValueError("--metric_args must be a JSON object {metric: {argument: value}}.")
    metrics = [m.strip() for m in FLAGS.metrics.split(",") if m.strip()] if FLAGS.metrics else None
    if metrics:
      unknown = sorted(set(metrics) - set(evaluation.METRICS))
      if unknown:
        raise ValueError(f"unknown --metrics {unknown}; choose from {list(evaluation.METRICS)}.")
    model, settings, where = _load_model()
    dataset = FLAGS.dataset or settings.get("dataset")
    if not dataset:
      raise ValueError("--dataset is needed (the export does not name its data set).")
    config = FLAGS.dataset_config or (settings.get("dataset_config") if not FLAGS.dataset
                                      else None)
    print(f"{PROG}: {where} on {dataset}", file=sys.stderr, flush=True)
    document = evaluation.evaluate_dataset(
        model, dataset, split=FLAGS.split or (settings.get("eval_split") if not FLAGS.dataset
                                              else None),
        dataset_config=config, metrics=metrics, seed=FLAGS.seed, max_examples=FLAGS.max_examples,
        likelihood_examples=FLAGS.likelihood_examples, iwae_samples=FLAGS.iwae_samples,
        student_t_mapping=FLAGS.student_t_mapping, metric_args=metric_args,
        data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir, download=FLAGS.download,
        progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
  except (ValueError, OSError) as e:  # Library errors (ConfigError, DataError, RunError, ...).
    _cli.fail(PROG, e)

  document["arguments"]["source"] = os.path.abspath(where)
  document["model"] = settings
  if FLAGS.out:
    path = runs.RunDirectory(FLAGS.out).update_metrics("evaluation", document)
  elif FLAGS.run:
    run_dir = runs.RunDirectory(FLAGS.run)
    path = run_dir.update_metrics("evaluation", document)
    from tfdecomp import tensorboard  # pylint: disable=g-import-not-at-top
    tensorboard.write_evaluation(run_dir.tensorboard_dir, document)  # Beside the curves.
  else:
    from tfdecomp import _io  # pylint: disable=g-import-not-at-top
    path = evaluation.export_results_path(FLAGS.savedmodel)
    _io.atomic_write_text(path, json.dumps({"evaluation": document}, indent=2) + "\n")
  print(format_table(document["results"]))
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


def run():
  """Console-script entry point (`tfdecomp-evaluate`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
