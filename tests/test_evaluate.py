"""The evaluation suite and its CLI: cached codes give the same answers, runs and exports evaluate."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfdecomp import data
from tfdecomp import evaluation
from tfdecomp import metrics
from tfdecomp import model as model_lib
from tfdecomp import networks
from tfdecomp import priors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_grid():
  """A 3 x 4 x 5 grid whose observation is a fixed nonlinear embedding of the factors."""
  sizes = (3, 4, 5)
  factors = np.stack(np.unravel_index(np.arange(60), sizes), axis=1)
  observations = np.concatenate([factors, np.sin(factors * 1.3)], axis=1).astype(np.float32)
  return data.GridGroundTruthData(("a", "b", "c"), sizes, observations)


def representation(obs):
  # Dimension j mostly follows factor j, plus two nuisance dimensions.
  return np.concatenate([obs[:, :3] + 0.3 * obs[:, 3:], np.cos(obs[:, :2])], axis=1)


@pytest.mark.parametrize("name, kwargs", [
    ("factor_vae", dict(batch_size=16, num_train=200, num_eval=100, num_variance_estimate=300)),
    ("mig", dict(num_train=500)),
    ("sap", dict(num_train=300, num_test=200)),
])
def test_encoded_grid_gives_the_same_scores(name, kwargs):
  ground_truth = small_grid()
  direct = metrics.DISENTANGLEMENT_METRICS[name](ground_truth, representation, seed=3, **kwargs)
  encoded = evaluation.EncodedGroundTruth(ground_truth, representation, batch_size=7)
  assert encoded.codes.shape == (60, 5)
  cached = metrics.DISENTANGLEMENT_METRICS[name](encoded, lambda c: c, seed=3, **kwargs)
  assert direct.keys() == cached.keys()
  for key in direct:
    np.testing.assert_allclose(cached[key], direct[key], rtol=1e-9, err_msg=key)


@pytest.fixture(scope="module")
def pinwheel_model():
  x = np.random.default_rng(0).normal(size=[200, 2]).astype(np.float32)
  labels = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
  encoder, decoder = networks.mlp(latent_dim=2, hidden_units=16)
  model = model_lib.DecompVAE(encoder, decoder, priors.Mixture(), "normal", beta=1.0, alpha=1.0,
                              divergence="inclusive_kl", seed=0)
  model.compile(optimizer=keras.optimizers.Adam(1e-2))
  model.fit(x, batch_size=100, epochs=5, verbose=0)
  return model, x, labels


def test_evaluate_picks_applicable_metrics(pinwheel_model):
  model, x, labels = pinwheel_model
  lines = []
  results = evaluation.evaluate(model, x, labels, iwae_samples=20, progress=lines.append)
  assert list(results) == ["sparsity", "clustering", "likelihood"]
  assert len(lines) == 3
  assert 0.0 <= results["clustering"]["cluster_accuracy"] <= 1.0
  lik = results["likelihood"]
  np.testing.assert_allclose(lik["elbo"], -(lik["reconstruction"] + lik["kl"]), rtol=1e-6)
  assert lik["iwae"] >= lik["elbo"] - 0.05
  # The codes scored are the encoder means.
  loc, _ = model.encode(x)
  np.testing.assert_allclose(results["sparsity"]["hoyer"], metrics.hoyer_sparsity(loc.numpy()),
                             rtol=1e-9)


def test_evaluate_rejects_what_cannot_be_computed(pinwheel_model):
  model, x, labels = pinwheel_model
  with pytest.raises(ValueError, match="unknown metrics"):
    evaluation.evaluate(model, x, labels, metrics=["accuracy"])
  with pytest.raises(ValueError, match="ground-truth factors"):
    evaluation.evaluate(model, x, labels, metrics=["mig"])


def test_student_t_codes_are_mapped():
  encoder, decoder = networks.mlp(latent_dim=2, hidden_units=4)
  model = model_lib.DecompVAE(encoder, decoder, priors.StudentT(2, df=3.0), "normal", seed=0)
  x = np.random.default_rng(1).normal(size=[10, 2]).astype(np.float32) * 5
  raw = evaluation.representation_function(model, student_t_mapping=False)(x)
  mapped = evaluation.representation_function(model)(x)
  np.testing.assert_allclose(mapped, metrics.student_t_to_normal(raw, 3.0, scale=1.0), rtol=1e-9)


def test_discover_ground_truth_from_label_features(tmp_path):
  data_dir = str(tmp_path)
  builder = tfds.builder("decomp_dsprites/small", data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False, manual_dir=str(tmp_path / "manual")))
  discovered = evaluation.discover_ground_truth("decomp_dsprites/small", "train",
                                                data_dir=data_dir)
  reference = data.ground_truth("dsprites", config="small", source="render")
  assert tuple(discovered.factor_names) == tuple(reference.factor_names)
  assert tuple(discovered.factor_sizes) == tuple(reference.factor_sizes)
  factors = reference.sample_factors(20, np.random.default_rng(0))
  np.testing.assert_array_equal(discovered.sample_observations_from_factors(factors),
                                reference.sample_observations_from_factors(factors, None))
  assert evaluation.discover_ground_truth("pinwheel") is None


@pytest.mark.parametrize("name,sizes", [
    ("tfds:dsprites", (1, 3, 6, 40, 32, 32)),  # label_shape, label_scale, ... (num_classes)
    ("tfds:shapes3d", (10, 10, 10, 8, 4, 15)),
])
def test_tfds_label_features_are_discovered_under_mock_data(tmp_path, name, sizes):
  """TFDS's own builders: factors from the label_* features; random mock examples cover only a
  few combinations, which is refused with the count."""
  with tfds.testing.mock_data(num_examples=64):
    with pytest.raises(evaluation.IncompleteGrid) as raised:
      evaluation.discover_ground_truth(name, "train", data_dir=str(tmp_path), download=True)
  total = int(np.prod(sizes))
  assert f"cover 64 of the {total} factor combinations" in str(raised.value)


def _cli(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        cwd=REPO, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_cli_evaluates_a_dsprites_run_and_its_export(tmp_path):
  run = str(tmp_path / "run")
  done = _cli("trainers.train", "--experiment=independence", "--prior=student_t", "--epochs=1",
              "--steps_per_epoch=2", "--batch_size=16", f"--out={run}")
  assert done.returncode == 0, done.stderr
  small = json.dumps({"factor_vae": {"num_train": 100, "num_eval": 50,
                                     "num_variance_estimate": 500},
                      "beta_vae": {"num_train": 100, "num_eval": 50}})
  args = ["--dataset_config=small", "--max_examples=256", "--likelihood_examples=8",
          "--iwae_samples=5", "--metrics=factor_vae,beta_vae,mig,sparsity,likelihood",
          f"--metric_args={small}"]
  done = _cli("trainers.evaluate", f"--run={run}", *args)
  assert done.returncode == 0, done.stderr
  assert "factor_vae.eval_accuracy" in done.stdout
  with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
    document = json.load(f)
  assert "loss" in document  # The trainer's test-set terms are kept.
  evaluated = document["evaluation"]
  assert evaluated["arguments"]["dataset"] == "dsprites"
  assert evaluated["arguments"]["metric_args"]["factor_vae"]["num_train"] == 100
  assert evaluated["model"]["prior"] == "student_t"
  assert 0.0 <= evaluated["results"]["factor_vae"]["eval_accuracy"] <= 1.0
  # The scalar results also sit in the run's TensorBoard, next to the curves.
  from tests.test_tensorboard import read_events  # pylint: disable=g-import-not-at-top
  (step, _, value), = read_events(os.path.join(run, "tensorboard"))["."][
      "evaluation/factor_vae/eval_accuracy"]
  assert step == 1
  assert value == pytest.approx(evaluated["results"]["factor_vae"]["eval_accuracy"])

  # NAME/CONFIG of the builder itself (this crashed with "dict() got multiple values for
  # keyword argument 'config'").
  done = _cli("trainers.evaluate", f"--run={run}", "--dataset=decomp_dsprites/small",
              "--metrics=mig", f"--out={tmp_path / 'by-builder'}")
  assert done.returncode == 0, done.stderr
  assert "mig.discrete_mig" in done.stdout
  # TFDS's own dsprites and shapes3d: nothing downloads unless asked ...
  empty = str(tmp_path / "empty-data")
  for name in ("tfds:dsprites", "tfds:shapes3d"):
    done = _cli("trainers.evaluate", f"--run={run}", f"--dataset={name}", "--metrics=mig",
                f"--data_dir={empty}", f"--out={tmp_path / 'tfds'}")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "--download" in lines[-1] and "is not prepared" in lines[-1], done.stderr
    assert not os.path.exists(os.path.join(empty, name[5:])), "nothing may be downloaded"
  # ... and with --download under tfds.testing.mock_data (offline), the label_* factors are
  # found and the random mock examples are refused as an incomplete grid, in one line.
  # (The run's model takes one channel, so shapes3d's colour images are refused by shape;
  # its factor discovery is tested in-process below.)
  for name, expected_line in (
      ("tfds:dsprites", "cover 64 of the 737280 factor combinations"),
      ("tfds:shapes3d", "takes examples of shape [64, 64, 1], but tfds:shapes3d examples have "
                        "shape [64, 64, 3]")):
    code = ("import sys; import tensorflow_datasets as tfds; from trainers import evaluate; "
            f"sys.argv = ['tfdecomp-evaluate', '--run={run}', '--dataset={name}', "
            f"'--metrics=mig', '--download', '--data_dir={empty}', '--out={tmp_path / 'm'}']\n"
            "with tfds.testing.mock_data(num_examples=64):\n  evaluate.run()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert expected_line in last, done.stderr

  export_dir = str(tmp_path / "export")
  done = _cli("savedmodels", f"--run={run}", f"--out={export_dir}")
  assert done.returncode == 0, done.stderr
  before = sorted(os.listdir(export_dir))
  done = _cli("trainers.evaluate", f"--savedmodel={export_dir}", *args)
  assert done.returncode == 0, done.stderr
  # An export is never modified: its evaluation goes beside it.
  assert sorted(os.listdir(export_dir)) == before
  with open(export_dir + ".metrics.json", encoding="utf-8") as f:
    from_export = json.load(f)["evaluation"]["results"]
  for name in ("factor_vae", "beta_vae", "mig", "sparsity"):  # Deterministic given the codes.
    for key, value in evaluated["results"][name].items():
      if key != "seconds":
        np.testing.assert_allclose(from_export[name][key], value, rtol=1e-5, err_msg=key)


def test_cli_bad_input_is_one_line(tmp_path):
  done = _cli("trainers.evaluate", f"--run={tmp_path}")
  assert done.returncode == 2
  assert done.stderr.strip().count("\n") == 0 and "config.json" in done.stderr
  done = _cli("trainers.evaluate", "--run=x", "--metrics=accuracy")
  assert done.returncode == 2 and "unknown --metrics" in done.stderr
