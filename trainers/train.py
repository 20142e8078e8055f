"""Trains a decomposition VAE: `python -m trainers.train` (console script `tfdecomp-train`).

With no flags it runs the paper's clustering experiment (pinwheel, 4-component mixture prior,
inclusive KL, 500 epochs of batch 400). Other presets: `--experiment=independence` (dSprites),
`sparsity` (Fashion-MNIST) and `sparsity_digits` (the offline digits stand-in); flags override
single settings. The procedure and the run directory are `tfdecomp.training.train` and
`tfdecomp.runs`; this file parses flags and reports errors in one line (exit status 2; a
non-finite loss exits with 1 and keeps the last good checkpoint; Ctrl-C or SIGTERM checkpoint
the newest finished epoch and exit with 130: the same command resumes).
"""

import os
import sys

from absl import flags

from trainers import _cli

PROG = "tfdecomp-train"
FLAGS = flags.FLAGS

# (flag, kind, help); each is a `tfdecomp.configs.Config` field of the same name, default None
# (= the preset's).
SETTINGS = (
    ("dataset", "string", "Data set (tfdecomp.datasets.REGISTRY): pinwheel, dsprites, "
     "fashion_mnist, digits."),
    ("dataset_config", "string", "The data set's builder config, e.g. small for dsprites."),
    ("network", "string", "Network (default: the data set's): mlp, conv64, dcgan32."),
    ("likelihood", "string", "Likelihood (default: the data set's): bernoulli, laplace, normal."),
    ("prior", "string", "Prior: gaussian, anisotropic, student_t, sparse, mixture."),
    ("learn_prior", "bool", "Train the prior's variances."),
    ("df", "float", "Student-t degrees of freedom (> 0)."),
    ("gamma", "float", "Sparse prior's spike weight, in [0, 1]."),
    ("prior_variance_scale", "float", "s in sigma^2_d = s * D * softmax(v) (default: the prior's)."),
    ("mixture_locs", "string", "Mixture means, components separated by ';': '0,-1;0,1;1,0;-1,0'."),
    ("beta", "float", "Weight of KL(q(z|x) || p(z)), >= 0."),
    ("alpha", "float", "Weight of the divergence D(q(z), p(z)), >= 0."),
    ("beta_schedule", "string", "How beta moves with the optimizer step: constant, "
     "linear_warmup (0 -> beta over --beta_schedule_steps) or cyclical (ramps over "
     "--beta_ramp_fraction of every --beta_schedule_steps)."),
    ("beta_schedule_steps", "integer", "Warm-up length or cyclical period of beta, in steps."),
    ("beta_ramp_fraction", "float", "Cyclical beta: ramp share of a period, in (0, 1] (0.5)."),
    ("alpha_schedule", "string", "How alpha moves with the optimizer step: constant, "
     "linear_warmup or cyclical (as --beta_schedule)."),
    ("alpha_schedule_steps", "integer", "Warm-up length or cyclical period of alpha, in steps."),
    ("alpha_ramp_fraction", "float", "Cyclical alpha: ramp share of a period, in (0, 1] (0.5)."),
    ("divergence", "string", "D: mmd, inclusive_kl or none."),
    ("latent_dim", "integer", "Latent dimensions D."),
    ("batch_size", "integer", "Global batch size."),
    ("epochs", "integer", "Epochs to train (in total, counting resumed ones)."),
    ("steps_per_epoch", "integer", "Optimizer steps per epoch (default: one pass)."),
    ("learning_rate", "float", "Adam (amsgrad) learning rate."),
    ("num_samples", "integer", "Posterior samples per example."),
    ("steps_per_execution", "integer", "Optimizer steps per compiled call."),
    ("likelihood_scale", "float", "Laplace likelihood scale."),
    ("jit", "bool", "Compile the training step with XLA (default: the preset's)."),
)


def define_flags():
  """Defines the command-line flags (on start-up only: importing this module defines none)."""
  flags.DEFINE_string("experiment", "clustering",
                      "Preset: clustering, independence, sparsity, sparsity_digits.")
  for name, kind, text in SETTINGS:
    getattr(flags, f"DEFINE_{kind}")(name, None, text)
  flags.DEFINE_integer("seed", 0, "Seed of weights, data order and noise.")
  flags.DEFINE_string("out", None, "Run directory (default runs/<experiment>-<timestamp>).")
  flags.DEFINE_string("data_dir", None, "TFDS data directory (default $TFDECOMP_DATA_DIR or "
                      "~/tensorflow_datasets).")
  flags.DEFINE_string("manual_dir", None, "Directory with manually downloaded files (Fashion-"
                      "MNIST IDX files, official dSprites npz); default $TFDECOMP_MANUAL_DIR or "
                      "<data_dir>/downloads/manual.")
  flags.DEFINE_float("checkpoint_secs", 60.0, "Seconds of training between checkpoints (0: after "
                     "every epoch); one is also written after the last epoch and on Ctrl-C or "
                     "SIGTERM.", lower_bound=0.0)
  flags.DEFINE_enum("strategy", "auto", ["auto", "mirrored", "multiworker"],
                    "tf.distribute strategy: auto (one device, or mirrored when >1 GPU is "
                    "visible), mirrored (all GPUs, or all logical CPUs), multiworker "
                    "(MultiWorkerMirroredStrategy from $TF_CONFIG; run one process per worker, "
                    "see BUILD.md).")
  flags.DEFINE_integer("cpu_devices", None, "Split the CPU into this many logical devices (the "
                       "mirrored path without GPUs: tests, benchmarks).", lower_bound=1)
  flags.DEFINE_integer("checkpoint_epochs", None, "Also checkpoint every this many epochs.",
                       lower_bound=1)


def config_from_flags(flag_values):
  """The resolved, validated `Config` of the flags (raises `tfdecomp.configs.ConfigError`)."""
  from tfdecomp import configs  # pylint: disable=g-import-not-at-top
  overrides = {name: getattr(flag_values, name) for name, _, _ in SETTINGS}
  return configs.make(flag_values.experiment, seed=flag_values.seed, **overrides)


def default_out(config):
  import datetime  # pylint: disable=g-import-not-at-top
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return f"runs/{config.experiment}-{stamp}"


def main(argv):
  if len(argv) > 1:
    _cli.fail(PROG, f"unexpected arguments {' '.join(argv[1:])!r} (flags are written "
                    "--name=value).")
  # pylint: disable=g-import-not-at-top
  from tfdecomp import configs, data, distribute, distributed_loop, runs, training
  # pylint: enable=g-import-not-at-top
  _cli.interrupt_on_sigterm()
  if FLAGS.cpu_devices:
    distribute.split_cpu(FLAGS.cpu_devices)
  try:
    config = config_from_flags(FLAGS)
    out = FLAGS.out or default_out(config)
    result = training.train(config, out, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir,
                            command=_cli.command_line("trainers.train", PROG),
                            warn=_cli.warner(PROG), checkpoint_seconds=FLAGS.checkpoint_secs,
                            checkpoint_epochs=FLAGS.checkpoint_epochs, strategy=FLAGS.strategy)
  except (configs.ConfigError, data.DataError, runs.RunError, FileNotFoundError) as e:
    _cli.fail(PROG, e)
  except training.Interrupted as e:
    _cli.interrupted(PROG, e)
  except training.NonFiniteLoss as e:
    sys.stderr.write(f"{PROG}: {e}\n")
    sys.exit(1)
  except distributed_loop.WorkerLost as e:
    # TensorFlow's collective engine cannot be shut down cleanly after a peer is lost (its
    # threads may keep the interpreter from exiting): report and leave at once.
    sys.stderr.write(f"{PROG}: {e}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)  # pylint: disable=protected-access
  m = result.metrics
  terms = ", ".join(f"{k} {m[k]:.4g}" for k in ("reconstruction", "kl", "divergence", "elbo")
                    if k in m)
  epochs = f"{result.epochs} epoch{'s' if result.epochs != 1 else ''}"
  print(f"{PROG}: {config.experiment} done in {result.seconds:.1f}s ({epochs}, {result.steps} "
        f"steps); {m['split']} loss {m['loss']:.4g} ({terms}) -> {result.run_dir}", flush=True)


def run():
  """Console-script entry point (`tfdecomp-train`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
