"""Trains a decomposition VAE: `python -m trainers.train` (console script `tfdecomp-train`).

With no flags it runs the paper's clustering experiment (pinwheel, 4-component mixture prior,
inclusive KL, 500 epochs of batch 400) in well under a minute on 2 CPU cores. Other presets:
`--experiment=independence` (dSprites) and `--experiment=sparsity` (Fashion-MNIST); shorten them
on a CPU with `--epochs` / `--steps_per_epoch`. Flags override single settings of the preset.

The run directory (`--out`, default runs/<experiment>-<timestamp>) receives config.json,
checkpoints/, tensorboard/, history.csv, metrics.json and plots/. Rerunning with the same `--out`
resumes from the last finished epoch. Invalid settings fail before training with one line and
exit status 2; a non-finite loss stops training (exit status 1) and keeps the last good
checkpoint.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylint: disable=g-import-not-at-top,wrong-import-position
import dataclasses
import datetime
import json
import math
import platform
import sys
import time
import warnings

from absl import flags

from trainers import _cli
from trainers import configs

FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (on start-up only: importing this module defines none)."""
  flags.DEFINE_string("experiment", "clustering",
                      f"Preset: {', '.join(configs.EXPERIMENTS)}.")
  flags.DEFINE_string("dataset", None, f"Override the dataset: {', '.join(configs.DATASETS)}.")
  flags.DEFINE_string("prior", None, f"Override the prior: {', '.join(configs.PRIORS)}.")
  flags.DEFINE_bool("learn_prior", None, "Train the prior's variances.")
  flags.DEFINE_float("df", None, "Student-t degrees of freedom (> 0).")
  flags.DEFINE_float("gamma", None, "Sparse prior's spike weight, in [0, 1].")
  flags.DEFINE_float("beta", None, "Weight of KL(q(z|x) || p(z)), >= 0.")
  flags.DEFINE_float("alpha", None, "Weight of the divergence D(q(z), p(z)), >= 0.")
  flags.DEFINE_string("divergence", None, f"Override D: {', '.join(configs.DIVERGENCES)}.")
  flags.DEFINE_string("mixture_locs", None,
                      "Mixture prior means, components separated by ';', e.g. '0,-1;0,1;1,0;-1,0'.")
  flags.DEFINE_integer("latent_dim", None, "Latent dimensions D.")
  flags.DEFINE_integer("batch_size", None, "Global batch size.")
  flags.DEFINE_integer("epochs", None, "Epochs to train (in total, counting resumed ones).")
  flags.DEFINE_integer("steps_per_epoch", None, "Optimizer steps per epoch (default: one pass).")
  flags.DEFINE_float("learning_rate", None, "Adam (amsgrad) learning rate.")
  flags.DEFINE_integer("num_samples", None, "Posterior samples per example.")
  flags.DEFINE_integer("steps_per_execution", None, "Optimizer steps per compiled call.")
  flags.DEFINE_integer("seed", 0, "Seed of weights, data order and noise.")
  flags.DEFINE_string("out", None, "Run directory (default runs/<experiment>-<timestamp>).")
  flags.DEFINE_bool("jit", None, "Compile the training step with XLA (default: the preset's).")


_OVERRIDES = ("dataset", "prior", "learn_prior", "df", "gamma", "beta", "alpha", "divergence",
              "latent_dim", "batch_size", "epochs", "steps_per_epoch", "learning_rate",
              "num_samples", "steps_per_execution", "seed", "jit")
# Settings that may differ when a run directory is resumed.
_RESUMABLE = ("epochs", "jit", "steps_per_execution")

PROG = "tfdecomp-train"


class UsageError(ValueError):
  """A bad command line or setting: reported as one line, exit status 2."""


def resolve_config(flag_values):
  """The preset named by --experiment with the given flags applied, validated.

  Args:
    flag_values: an object with the flags as attributes (absl FLAGS or a namespace).

  Returns:
    A validated `configs.Config`.

  Raises:
    UsageError: for any invalid setting.
  """
  try:
    config = configs.get(flag_values.experiment)
    overrides = {k: getattr(flag_values, k) for k in _OVERRIDES
                 if getattr(flag_values, k, None) is not None}
    if getattr(flag_values, "mixture_locs", None):
      overrides["mixture_locs"] = configs.parse_locs(flag_values.mixture_locs)
    if "divergence" in overrides and overrides["divergence"] == "none" and (
        "alpha" not in overrides):
      overrides["alpha"] = 0.0
    if overrides.get("prior", config.prior) != "mixture" and config.prior == "mixture":
      overrides.setdefault("prior_variance_scale", 1.0)
    if overrides.get("prior") == "mixture" and config.prior != "mixture":
      overrides.setdefault("prior_variance_scale", 0.03)
    config = dataclasses.replace(config, **overrides)
    return configs.validate(config)
  except ValueError as e:
    raise UsageError(str(e)) from None


# ---- data -----------------------------------------------------------------------------------

def _data_module():
  from tfdecomp import data  # noqa: F401  (imported lazily: it pulls in TFDS)
  return data


# Datasets small enough to hold in memory and reshuffle per epoch from a stateless seed.
_IN_MEMORY = ("pinwheel", "digits")
_EVAL_EXAMPLES = 10000


def load_arrays(config, split, num=None):
  """(x float32 [N, ...], labels [N] (or [N, K]) ) of a split, its first `num` examples.

  Raises:
    UsageError: if the data cannot be loaded (e.g. missing manual files).
  """
  from tfdecomp import data
  try:
    return data.load_numpy(config.dataset, split, max_examples=num, with_labels=True)
  except Exception as e:  # pylint: disable=broad-except
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UsageError(f"cannot load {config.dataset} split {split!r}: {first}") from None


def streamed_training_data(config, initial_epoch):
  """Batches of a large dataset from `tfdecomp.data.load`, shuffled with seed + initial_epoch."""
  from tfdecomp import data
  try:
    ds = data.load(config.dataset, "train", batch_size=config.batch_size, shuffle=True,
                   seed=config.seed + initial_epoch, drop_remainder=True)
  except Exception as e:  # pylint: disable=broad-except
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UsageError(f"cannot load {config.dataset}: {first}") from None
  return ds.repeat()


def train_stream(x, config, initial_epoch, steps_per_epoch):
  """An infinite-epoch stream of training batches whose order is a function of (seed, epoch).

  Every epoch draws fresh permutations with a stateless seed of (seed, epoch), so a resumed run
  sees the same batches as an uninterrupted one.
  """
  import tensorflow as tf
  n = len(x)
  batch = config.batch_size
  needed = steps_per_epoch * batch
  perms = max(1, math.ceil(needed / n))
  x_const = tf.constant(x)

  def epoch_batches(epoch):
    seeds = [tf.stack([tf.constant(config.seed, tf.int64), epoch * 1009 + i]) for i in range(perms)]
    order = tf.concat([tf.argsort(tf.random.stateless_uniform([n], seed=s)) for s in seeds], 0)
    xs = tf.gather(x_const, order[:needed])
    return tf.data.Dataset.from_tensor_slices(
        tf.reshape(xs, [steps_per_epoch, batch, *x.shape[1:]]))

  return (tf.data.Dataset.range(initial_epoch, config.epochs + 1)
          .flat_map(epoch_batches).prefetch(tf.data.AUTOTUNE))


# ---- model ----------------------------------------------------------------------------------

def build_model(config, x_sample):
  """The DecompVAE of a config (networks, prior, likelihood), compiled."""
  import keras
  from tfdecomp import likelihoods, model as model_lib, networks, priors
  likelihood = likelihoods.get(config.likelihood)
  if config.likelihood == "laplace":
    likelihood = likelihoods.Laplace(scale=config.likelihood_scale)
  shape = x_sample.shape[1:]
  ppc = likelihood.params_per_channel
  if config.network == "mlp":
    encoder, decoder = networks.mlp(input_dim=int(shape[0]), latent_dim=config.latent_dim,
                                    params_per_channel=ppc)
  else:
    builder = {"conv64": networks.conv64, "dcgan32": networks.dcgan32}[config.network]
    encoder, decoder = builder(latent_dim=config.latent_dim, channels=int(shape[-1]),
                               params_per_channel=ppc)
  kwargs = {"variance_scale": config.prior_variance_scale, "learnable": config.learn_prior}
  if config.prior == "anisotropic":
    prior = priors.Gaussian.from_pca(x_sample, config.latent_dim, **kwargs)
  elif config.prior == "mixture":
    prior = priors.Mixture(locs=config.mixture_locs, **kwargs)
  elif config.prior == "student_t":
    prior = priors.StudentT(config.latent_dim, df=config.df, **kwargs)
  elif config.prior == "sparse":
    prior = priors.Sparse(config.latent_dim, gamma=config.gamma, **kwargs)
  else:
    prior = priors.Gaussian(config.latent_dim, **kwargs)
  model = model_lib.DecompVAE(
      encoder, decoder, prior, likelihood, beta=config.beta, alpha=config.alpha,
      divergence=None if config.divergence == "none" else config.divergence,
      num_samples=config.num_samples, seed=config.seed, name=f"{config.experiment}_vae")
  return model


def compile_model(model, config, steps_per_epoch):
  import keras
  model.compile(
      optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=0.9, beta_2=0.999,
                                      amsgrad=True),
      jit_compile=config.jit,
      steps_per_execution=max(1, min(config.steps_per_execution, steps_per_epoch)))
  return model


# ---- run directory --------------------------------------------------------------------------

def _versions():
  import keras
  import numpy as np
  import tensorflow as tf
  import tensorflow_probability as tfp
  import tfdecomp
  return {"python": platform.python_version(), "tensorflow": tf.__version__,
          "keras": keras.__version__, "tensorflow_probability": tfp.__version__,
          "numpy": np.__version__, "tfdecomp": tfdecomp.__version__}


def prepare_run_dir(out, config, steps_per_epoch):
  """Creates the run directory or checks that an existing one holds the same settings.

  Returns:
    The config.json dict.

  Raises:
    UsageError: if the directory holds a run with different settings.
  """
  from tfdecomp import callbacks
  path = os.path.join(out, "config.json")
  settings = {**config.to_dict(), "steps_per_epoch_resolved": steps_per_epoch}
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      previous = json.load(f)
    old = {k: v for k, v in previous.get("settings", {}).items() if k not in _RESUMABLE}
    new = {k: v for k, v in settings.items() if k not in _RESUMABLE}
    if old != new:
      diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
      raise UsageError(
          f"--out={out} holds a run with different settings ({', '.join(diff)}); choose a new "
          f"--out or rerun with the same flags to resume.")
  document = {"settings": settings, "seed": config.seed, "versions": _versions(),
              "command": sys.argv, "written": datetime.datetime.now().isoformat(timespec="seconds")}
  callbacks.atomic_write_text(path, json.dumps(document, indent=2) + "\n")
  for sub in ("checkpoints", "tensorboard", "plots"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
  return document


def make_plots(model, config, history, x_eval, labels, plots_dir):
  """Writes the training curves and the latent/reconstruction figures; returns their paths."""
  import numpy as np
  from tfdecomp import plots
  paths = []
  if history:
    cols = {k: [row.get(k, float("nan")) for row in history] for k in history[-1]}
    path = os.path.join(plots_dir, "training_curves.png")
    plots.training_curves(cols, path=path, title=config.experiment)
    paths.append(path)
  x = x_eval[:2000]
  loc, scale = (np.asarray(t) for t in model.encode(x, batch_size=500))
  if config.latent_dim == 2:
    rng = np.random.default_rng(config.seed)
    samples = loc + scale * rng.standard_normal(loc.shape)
    plots.aggregate_posterior(
        loc, lambda z: model.prior.log_prob(z).numpy(), samples=samples,
        labels=None if labels is None else labels[:len(x)],
        path=os.path.join(plots_dir, "aggregate_posterior.png"))
    paths.append(os.path.join(plots_dir, "aggregate_posterior.png"))
  if x.ndim == 2:
    recon = np.asarray(model.decode(loc))
    if x.shape[1] == 2:
      plots.scatter_reconstructions(x, recon, path=os.path.join(plots_dir, "reconstructions.png"))
      paths.append(os.path.join(plots_dir, "reconstructions.png"))
  else:
    recon = np.asarray(model.decode(loc[:10]))
    plots.reconstructions(x[:10], recon, path=os.path.join(plots_dir, "reconstructions.png"))
    samples = np.asarray(model.sample(10, seed=config.seed))
    plots.image_grid(samples[None], path=os.path.join(plots_dir, "samples.png"),
                     title="samples from the prior")
    values = np.linspace(-2.5, 2.5, 9)
    rows = np.stack([np.asarray(model.traverse(x[:1], d, values))[0]
                     for d in range(min(config.latent_dim, 10))])
    plots.traversals(rows, path=os.path.join(plots_dir, "traversals.png"), values=values)
    paths += [os.path.join(plots_dir, n) for n in
              ("reconstructions.png", "samples.png", "traversals.png")]
  return paths


# ---- main -----------------------------------------------------------------------------------

def train(config, out, stream=None):
  """Trains (or resumes) a run in `out`; returns a dict summary.

  Raises:
    UsageError: for settings that only fail against the data (e.g. shape mismatches).
    NonFiniteLoss: when training hit a NaN/inf loss.
  """
  import tfdecomp  # noqa: F401  (first: imports TensorFlow quietly)
  import keras
  import numpy as np
  from tfdecomp import callbacks as cb

  stream = stream or sys.stderr
  start = time.monotonic()
  keras.utils.set_random_seed(config.seed)

  in_memory = config.dataset in _IN_MEMORY
  if in_memory:
    x_train, _ = load_arrays(config, "train")
    num_train = len(x_train)
  else:
    x_train, _ = load_arrays(config, "train", num=config.pca_examples)
    num_train = _num_examples(config)
  x_eval, labels = load_arrays(config, config.eval_split, num=_EVAL_EXAMPLES)
  steps_per_epoch = config.steps_per_epoch or max(1, num_train // config.batch_size)
  if config.batch_size > num_train and config.steps_per_epoch is None:
    raise UsageError(f"--batch_size={config.batch_size} is larger than the {num_train} "
                     f"training examples of {config.dataset}.")
  prepare_run_dir(out, config, steps_per_epoch)

  pca_x = x_train[:config.pca_examples]
  try:
    model = build_model(config, pca_x)
  except ValueError as e:
    raise UsageError(str(e)) from None
  compile_model(model, config, steps_per_epoch)

  ckpt_dir = os.path.join(out, "checkpoints")
  epochs_done, state = cb.RunCheckpoint.restore(model, ckpt_dir)
  history = list(state["history"]) if state else []
  if epochs_done:
    stream.write(f"{PROG}: resuming {out} after epoch {epochs_done}/{config.epochs}\n")

  def on_saved(_, rows):
    cb.write_history_csv(os.path.join(out, "history.csv"), rows)

  nonfinite = cb.StopOnNonFinite()
  checkpoint = cb.RunCheckpoint(ckpt_dir, state={"config": config.to_dict()}, history=history,
                                on_saved=on_saved, nonfinite=nonfinite)
  if epochs_done < config.epochs:
    if in_memory:
      dataset = train_stream(x_train, config, epochs_done, steps_per_epoch)
    else:
      dataset = streamed_training_data(config, epochs_done)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      model.fit(dataset, epochs=config.epochs, initial_epoch=epochs_done,
                steps_per_epoch=steps_per_epoch, verbose=0,
                callbacks=[nonfinite, checkpoint,
                           cb.EpochSummaries(os.path.join(out, "tensorboard")),
                           cb.ProgressBar(config.epochs, steps_per_epoch, epochs_done,
                                          stream=stream)])
  if nonfinite.message:
    kept = checkpoint.last_saved_epoch or epochs_done
    raise NonFiniteLoss(f"{nonfinite.message}; kept the last good checkpoint "
                        f"(epoch {kept}) in {ckpt_dir}")
  history = checkpoint.history
  if history and not os.path.exists(os.path.join(out, "history.csv")):
    on_saved(None, history)

  # Test-set loss components.
  eval_n = (len(x_eval) // config.batch_size) * config.batch_size or len(x_eval)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    results = model.evaluate(x_eval[:eval_n], batch_size=min(config.batch_size, eval_n),
                             verbose=0, return_dict=True)
  metrics = {"split": config.eval_split, "examples": int(eval_n),
             "epochs": config.epochs, **{k: float(v) for k, v in results.items()}}
  cb.atomic_write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
  make_plots(model, config, history, x_eval, labels, os.path.join(out, "plots"))
  return {"metrics": metrics, "seconds": time.monotonic() - start, "epochs": config.epochs,
          "steps": int(model.optimizer.iterations.numpy())}


def _num_examples(config):
  """Training examples of a dataset, from its TFDS info (or the dSprites grid size)."""
  from tfdecomp import data
  if config.dataset == "dsprites":
    return 737280
  builder_name, builder_config = data.SHORT_NAMES[config.dataset]
  import tensorflow_datasets as tfds
  try:
    builder = tfds.builder(builder_name, config=builder_config, data_dir=data.default_data_dir())
    return builder.info.splits["train"].num_examples or 60000
  except Exception:  # pylint: disable=broad-except
    return 60000


class NonFiniteLoss(RuntimeError):
  """Training stopped on a NaN/inf loss."""


def default_out(config):
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return os.path.join("runs", f"{config.experiment}-{stamp}")


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments {' '.join(argv[1:])!r} (flags are written --name=value).")
  try:
    config = resolve_config(FLAGS)
    out = FLAGS.out or default_out(config)
    summary = train(config, out)
  except UsageError as e:
    _fail(str(e))
  except NonFiniteLoss as e:
    sys.stderr.write(f"{PROG}: {e}\n")
    sys.exit(1)
  m = summary["metrics"]
  terms = ", ".join(f"{k} {m[k]:.4g}" for k in ("reconstruction", "kl", "divergence", "elbo")
                    if k in m)
  print(f"{PROG}: {config.experiment} done in {summary['seconds']:.1f}s "
        f"({summary['epochs']} epochs, {summary['steps']} steps); {m['split']} loss "
        f"{m['loss']:.4g} ({terms}) -> {out}", flush=True)


def _fail(message):
  _cli.fail(PROG, message)


def run():
  """Console-script entry point (`tfdecomp-train`)."""
  _cli.run_app(main, define_flags)


if __name__ == "__main__":
  run()
