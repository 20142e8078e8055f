"""Tests for training (tfdecomp.training and its CLI trainers/train.py): artefacts, resume, bad
flags, NaN stop."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from tfdecomp import configs
from tfdecomp import data
from tfdecomp import training
from trainers import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
  env.pop("TF_CONFIG", None)
  return subprocess.run([sys.executable, "-m", "trainers.train", *args], capture_output=True,
                        text=True, timeout=timeout, env=env, cwd=REPO)


def _flags(**kwargs):
  values = {name: None for name, _, _ in train.SETTINGS}
  values.update(experiment="clustering", seed=0, mixture_locs=None)
  values.update(kwargs)
  return types.SimpleNamespace(**values)


@pytest.mark.parametrize("args,needle", [
    (["--experiment=bogus"], "--experiment must be one of"),
    (["--prior=laplace"], "--prior must be one of"),
    (["--dataset=mnist"], "--dataset must be one of"),
    (["--beta=-1"], "--beta must be"),
    (["--gamma=1.5"], "--gamma must be in [0, 1]"),
    (["--df=0"], "--df must be > 0"),
    (["--mixture_locs=0,1,2;1,2,3"], "--mixture_locs rows must have latent_dim=2"),
    (["--batch_size=1", "--divergence=mmd"], "--batch_size must be >= 2"),
    (["--strategy=multiworker"], "--strategy=multiworker needs TF_CONFIG"),
    (["--strategy=mirrored", "--cpu_devices=2", "--batch_size=399"],
     "--batch_size=399 does not split over 2 replicas"),
    (["--beta_schedule=warmup"], "--beta_schedule must be one of constant, linear_warmup"),
    (["--alpha_schedule=cyclical"], "--alpha_schedule=cyclical needs --alpha_schedule_steps"),
    (["--beta_schedule_steps=10"], "--beta_schedule_steps only applies to"),
    (["--beta_schedule=cyclical", "--beta_schedule_steps=4", "--beta_ramp_fraction=0"],
     "--beta_ramp_fraction must be in (0, 1]"),
    (["--epoch=3"], "unknown flag --epoch; did you mean --epochs?"),
    (["--bogus_flag=1"], "unknown flag --bogus_flag; see --help"),
    (["--epochs=abc"], "flag --epochs=abc"),
    (["--strategy=nope"], "flag --strategy=nope: value should be one of"),
])
def test_invalid_flags_fail_with_one_line(args, needle):
  result = _cli(*args, "--out=/nonexistent/should-not-be-created")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and needle in lines[0], result.stderr
  assert not os.path.exists("/nonexistent/should-not-be-created")


def test_resolve_config_overrides():
  config = train.config_from_flags(_flags(experiment="independence", prior="student_t"))
  assert (config.dataset, config.prior, config.df, config.batch_size) == (
      "dsprites", "student_t", 9.0, 64)
  config = train.config_from_flags(_flags(divergence="none"))
  assert config.alpha == 0.0
  config = train.config_from_flags(_flags(prior="gaussian"))
  assert config.prior_variance_scale == 1.0
  assert configs.sparsity().gamma == 0.8 and configs.sparsity().alpha == 100.0


@pytest.mark.slow
def test_cli_writes_every_artefact_and_resumes(tmp_path):
  out = str(tmp_path / "run")
  result = _cli("--epochs=3", f"--out={out}", "--seed=1")
  assert result.returncode == 0, result.stderr
  assert "clustering done" in result.stdout and out in result.stdout
  for name in ("config.json", "history.csv", "metrics.json", "checkpoints", "tensorboard",
               "plots/training_curves.png", "plots/aggregate_posterior.png",
               "plots/reconstructions.png"):
    assert os.path.exists(os.path.join(out, name)), name
  config = json.load(open(os.path.join(out, "config.json")))
  assert config["seed"] == 1 and config["settings"]["prior"] == "mixture"
  assert "tensorflow" in config["versions"]
  metrics = json.load(open(os.path.join(out, "metrics.json")))
  assert {"loss", "reconstruction", "kl", "divergence", "elbo"} <= set(metrics)
  assert os.listdir(os.path.join(out, "tensorboard", "train"))
  first = open(os.path.join(out, "history.csv")).read().splitlines()
  assert len(first) == 1 + 3

  # Rerunning the same command with more epochs continues after epoch 3.
  result = _cli("--epochs=5", f"--out={out}", "--seed=1")
  assert result.returncode == 0, result.stderr
  assert "resuming" in result.stderr and "after epoch 3/5" in result.stderr
  history = open(os.path.join(out, "history.csv")).read().splitlines()
  assert len(history) == 1 + 5 and history[:4] == first
  assert [int(r.split(",")[0]) for r in history[1:]] == [1, 2, 3, 4, 5]

  # A different setting on the same directory is refused.
  result = _cli("--epochs=5", f"--out={out}", "--seed=2")
  assert result.returncode == 2 and "different settings (seed" in result.stderr


def _small(**kwargs):
  return configs.make("clustering", **kwargs)


@pytest.mark.slow
def test_same_seed_same_history_and_resume_equals_uninterrupted(tmp_path, capsys):
  config = _small(epochs=4, steps_per_execution=1)
  training.train(config, str(tmp_path / "a"))
  training.train(config, str(tmp_path / "b"))
  training.train(_small(epochs=2, steps_per_execution=1), str(tmp_path / "c"))
  training.train(config, str(tmp_path / "c"))  # resumes at epoch 2
  histories = [open(tmp_path / d / "history.csv").read() for d in "abc"]
  assert histories[0] == histories[1] == histories[2]


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
  out = str(tmp_path / "nan")
  training.train(_small(epochs=2), out)
  real = data.training_data

  def poisoned(*args, **kwargs):
    stream = real(*args, **kwargs)
    make = stream._make
    return stream.__class__(
        dataset=stream.dataset.map(lambda x: x * np.nan), num_examples=stream.num_examples,
        steps_per_epoch=stream.steps_per_epoch, start_step=stream.start_step,
        source=stream.source, _make=lambda step: make(step).map(lambda x: x * np.nan))

  monkeypatch.setattr(data, "training_data", poisoned)
  with pytest.raises(training.NonFiniteLoss,
                     match=r"non-finite loss .* step 3 \(epoch 3\).*epoch 2"):
    training.train(_small(epochs=4), out)
  ckpts = sorted(os.listdir(os.path.join(out, "checkpoints")))
  assert ckpts[-1] == "ckpt-00002.weights.h5"


@pytest.mark.parametrize("module,flag,suggestion", [
    ("trainers.evaluate", "--rnu=x", "--run"),
    ("trainers.serve", "--rest_api_prot=1", "--rest_api_port"),
    ("trainers.export", "--bsae=x", "--base"),
    ("trainers.sweep", "--seeds_=1", "--seeds"),
    ("trainers.reproduce", "--experimnt=x", "--experiment"),
    ("trainers.plot", "--rum=x", "--run"),
])
def test_every_console_script_names_the_closest_flag(module, flag, suggestion):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
  result = subprocess.run([sys.executable, "-m", module, flag], capture_output=True, text=True,
                          timeout=120, env=env, cwd=REPO)
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and f"did you mean {suggestion}?" in lines[0], result.stderr


def test_closest_flag_and_error_line():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from trainers import _cli  # pylint: disable=g-import-not-at-top
  names = {"epochs", "batch_size", "beta", "alpha", "jit"}
  assert _cli.closest_flag("epoch", names) == "epochs"
  assert _cli.closest_flag("zzzz", names) is None
  line = _cli.flag_error_line(flags.UnrecognizedFlagError("batchsize", "8"), names)
  assert line == "unknown flag --batchsize; did you mean --batch_size?"
  assert "not a boolean flag" in _cli.flag_error_line(flags.UnrecognizedFlagError("nobeta"),
                                                       names)


def test_schedule_flags_reach_the_step_and_config_json(tmp_path):
  """--beta_schedule / --alpha_schedule: the history's beta and alpha (the weights the step used
  at optimizer step t = epoch, one step per epoch) follow the closed forms, and config.json
  records the schedules."""
  flag_values = _flags(epochs=6, steps_per_epoch=1, beta=2.0, beta_schedule="linear_warmup",
                       beta_schedule_steps=4, alpha=1.0, alpha_schedule="cyclical",
                       alpha_schedule_steps=3, alpha_ramp_fraction=0.5, jit=False)
  config = train.config_from_flags(flag_values)
  result = training.train(config, str(tmp_path / "run"), progress=False, figures=False)
  t = np.arange(6)
  np.testing.assert_allclose([row["beta"] for row in result.history],
                             2.0 * np.minimum(t / 4, 1.0), rtol=1e-6)
  np.testing.assert_allclose([row["alpha"] for row in result.history],
                             np.minimum((t % 3) / 1.5, 1.0), rtol=1e-6)
  with open(tmp_path / "run" / "config.json", encoding="utf-8") as f:
    saved = json.load(f)["settings"]
  assert (saved["beta_schedule"], saved["beta_schedule_steps"]) == ("linear_warmup", 4)
  assert (saved["alpha_schedule"], saved["alpha_schedule_steps"],
          saved["alpha_ramp_fraction"]) == ("cyclical", 3, 0.5)
