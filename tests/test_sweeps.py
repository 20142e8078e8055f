"""Tests of tfdecomp.sweeps and its CLI trainers/sweep.py: grids, naming, listing, running one
index, resume and skip, collecting (tables against NumPy, HParams read back, figures)."""

import glob
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

from tfdecomp import configs
from tfdecomp import runs
from tfdecomp import sweeps
from tfdecomp import training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Pinwheel runs of one optimizer step per epoch, without XLA, figures or costly metrics.
QUICK = {"jit": False}
QUICK_EVAL = sweeps.Evaluation(metrics=("clustering",), max_examples=400)


def _cli(*args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "trainers.sweep", *args], capture_output=True,
                        text=True, timeout=timeout, env=env, cwd=REPO)


# ---- grids ------------------------------------------------------------------------------------


def test_grid_values_are_typed_by_the_config_fields():
  axes = sweeps.parse_grid(" beta=0, 0.5,1e-3 ; latent_dim=2,3;learn_prior=true,no;"
                           "prior=gaussian,student_t;steps_per_epoch=none,5;dataset_config=small")
  assert [a.name for a in axes] == ["beta", "latent_dim", "learn_prior", "prior",
                                    "steps_per_epoch", "dataset_config"]
  assert axes[0].values == (0.0, 0.5, 0.001) and all(isinstance(v, float) for v in axes[0].values)
  assert axes[1].values == (2, 3) and all(type(v) is int for v in axes[1].values)
  assert axes[2].values == (True, False)
  assert axes[3].values == ("gaussian", "student_t")
  assert axes[4].values == (None, 5)
  assert axes[5].values == ("small",)
  text = sweeps.format_grid(axes)
  assert text == ("beta=0,0.5,0.001;latent_dim=2,3;learn_prior=true,false;"
                  "prior=gaussian,student_t;steps_per_epoch=none,5;dataset_config=small")
  assert sweeps.parse_grid(text) == axes
  assert sweeps.parse_grid("") == () and sweeps.parse_grid(" ; ") == ()
  assert sweeps.parse_grid({"alpha": [0, 10]}) == (sweeps.Axis("alpha", (0, 10)),)


@pytest.mark.parametrize("grid,needle", [
    ("bogus=1,2", "grid axis bogus: unknown setting"),
    ("seed=0,1", "grid axis seed: cannot be an axis (seeds are the sweep's own"),
    ("experiment=clustering", "grid axis experiment: cannot be an axis"),
    ("mixture_locs=0,1", "grid axis mixture_locs: cannot be an axis"),
    ("beta=", "grid axis beta has no values"),
    ("beta=0,,1", "grid axis beta has an empty value"),
    ("beta 0,1", "grid axis 'beta 0,1' must look like name=value,value"),
    ("beta=0;beta=1", "grid axis beta is given twice"),
    ("beta=1,1.0", "grid axis beta: value 1 is given twice"),
    ("latent_dim=2.5", "grid axis latent_dim: '2.5' is not an integer"),
    ("beta=abc", "grid axis beta: 'abc' is not a number"),
    ("learn_prior=maybe", "grid axis learn_prior: 'maybe' is not true or false"),
])
def test_bad_grids_name_the_axis(grid, needle):
  with pytest.raises(sweeps.SweepError) as info:
    sweeps.parse_grid(grid)
  assert needle in str(info.value) and "\n" not in str(info.value)


def test_define_validates_every_grid_point_before_anything_is_written(tmp_path):
  out = tmp_path / "sweep"
  cases = [
      ("beta=0,-1", {}, "grid axis beta=-1: --beta must be a finite number >= 0"),
      ("prior=gaussian,bogus", {}, "grid axis prior=bogus: --prior must be one of"),
      # latent_dim=3 is only invalid with the mixture prior: the error names the point.
      ("prior=mixture,gaussian;latent_dim=2,3", {},
       "grid axis prior=mixture (at grid point prior=mixture,latent_dim=3): --prior=mixture"),
      ("latent_dim=2,3", {}, "grid axis latent_dim=3: --prior=mixture uses the 2-D"),
      ("alpha=0,1", {"divergence": "none"},
       "grid points alpha=0 and alpha=1 resolve to the same settings"),
      ("beta=0,1", {"beta": 1.0}, "--beta is both a grid axis and a fixed setting"),
  ]
  for grid, overrides, needle in cases:
    with pytest.raises(sweeps.SweepError) as info:
      sweeps.define("clustering", grid, overrides=overrides, out=out)
    assert needle in str(info.value), (grid, str(info.value))
  with pytest.raises(configs.ConfigError, match="--gamma must be in"):  # A fixed setting.
    sweeps.define("clustering", "beta=0,1", overrides={"gamma": 2.0}, out=out)
  with pytest.raises(configs.ConfigError, match="--experiment must be one of"):
    sweeps.define("bogus", "beta=0,1", out=out)
  for seeds, needle in [((), "--seeds must be at least 1"), ((0, 0), "distinct"),
                        ((-1,), ">= 0")]:
    with pytest.raises(sweeps.SweepError, match=needle):
      sweeps.define("clustering", "", seeds=seeds, out=out)
  with pytest.raises(sweeps.SweepError, match="--metrics: unknown bogus"):
    sweeps.define("clustering", "", evaluation=sweeps.Evaluation(metrics=("bogus",)), out=out)
  with pytest.raises(sweeps.SweepError, match="--iwae_samples must be an integer >= 0"):
    sweeps.define("clustering", "", evaluation=sweeps.Evaluation(iwae_samples=-1), out=out)
  # A fixed setting that is only valid with the grid's values is accepted.
  sweep = sweeps.define("clustering", "prior=gaussian,student_t", overrides={"latent_dim": 3},
                        out=out)
  assert {s.config.latent_dim for s in sweep.runs} == {3}
  assert not out.exists()


def test_runs_are_named_by_their_settings_in_grid_order(tmp_path):
  sweep = sweeps.define("clustering", "beta=0,0.5;alpha=1e-3,100;learn_prior=true",
                        seeds=(4, 5), overrides={"epochs": 7}, out=tmp_path / "s")
  names = [r.name for r in sweep.runs]
  assert names == [f"beta={b},alpha={a},learn_prior=true,seed={s}" for b in ("0", "0.5")
                   for a in ("0.001", "100") for s in (4, 5)]
  assert [r.index for r in sweep.runs] == list(range(8))
  run = sweep.runs[5]  # beta=0.5, alpha=0.001, seed 5.
  assert (run.config.beta, run.config.alpha, run.config.seed, run.config.epochs) == (
      0.5, 0.001, 5, 7)
  assert run.config.learn_prior is True and run.config.prior == "mixture"
  assert run.path == os.path.join(str(tmp_path / "s"), "runs", run.name)
  assert sweep.points == [{"beta": b, "alpha": a, "learn_prior": True}
                          for b in (0.0, 0.5) for a in (0.001, 100.0)]
  assert sweeps.run_name({}, 3) == "seed=3"
  assert sweeps.run_name({"dataset": "tfds:a/b c"}, 0) == "dataset=tfds-a-b-c,seed=0"
  assert [sweeps.format_value(v) for v in (0.0, 5e-4, 1e-6, 100.0, 2, True, None, "x")] == [
      "0", "0.0005", "1e-06", "100", "2", "true", "none", "x"]


def test_index_commands_hold_the_whole_definition(tmp_path):
  evaluation = sweeps.Evaluation(metrics=("clustering", "likelihood"), iwae_samples=10,
                                 metric_args={"clustering": {"num_mmd_samples": 100}},
                                 student_t_mapping=False)
  sweep = sweeps.define("clustering", "beta=0,1;alpha=0,10", seeds=(2, 3, 4),
                        overrides={"epochs": 3, "learn_prior": True}, evaluation=evaluation,
                        out=tmp_path / "s")
  command = sweeps.index_command(sweep, 7, ("python", "-m", "trainers.sweep"),
                                 ["--data_dir=/d"])
  args = shlex.split(command)
  assert args[:3] == ["python", "-m", "trainers.sweep"] and args[-1] == "--index=7"
  assert {"--experiment=clustering", "--grid=beta=0,1;alpha=0,10", "--seeds=3", "--seed=2",
          f"--out={tmp_path / 's'}", "--epochs=3", "--learn_prior=true",
          "--metrics=clustering,likelihood", "--iwae_samples=10", "--nostudent_t_mapping",
          '--metric_args={"clustering":{"num_mmd_samples":100}}', "--data_dir=/d"} <= set(args)
  gappy = sweeps.define("clustering", "", seeds=(0, 2), out=tmp_path / "g")
  with pytest.raises(sweeps.SweepError, match="not consecutive"):
    sweeps.index_command(gappy, 0)


def test_cli_lists_one_command_per_run_and_they_define_the_same_sweep(tmp_path):
  out = str(tmp_path / "s")
  result = _cli("--grid=beta=0,1;alpha=0,1", "--seeds=2", "--seed=3", "--epochs=2",
                "--iwae_samples=7", f"--out={out}", "--list")
  assert result.returncode == 0, result.stderr
  commands = result.stdout.strip().splitlines()
  assert len(commands) == 8 and "8 runs" in result.stderr and "--collect" in result.stderr
  assert not os.path.exists(out)  # Listing writes nothing.
  expected = sweeps.define("clustering", "beta=0,1;alpha=0,1", seeds=(3, 4),
                           overrides={"epochs": 2},
                           evaluation=sweeps.Evaluation(iwae_samples=7), out=out)
  for index, command in enumerate(commands):
    assert command == sweeps.index_command(expected, index, ("python", "-m", "trainers.sweep"))


@pytest.mark.parametrize("args,needle", [  # The other bad grids are tested on the library.
    (["--grid=bogus=1"], "grid axis bogus: unknown setting"),
    (["--grid=beta=0,-1", "--index=0"], "grid axis beta=-1: --beta must be"),
])
def test_cli_bad_grids_fail_with_one_line_before_training(tmp_path, args, needle):
  out = tmp_path / "s"
  result = _cli(*args, f"--out={out}", "--seeds=1")
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and needle in lines[0], result.stderr
  assert not (out / "runs").exists() or not os.listdir(out / "runs")


# ---- running ----------------------------------------------------------------------------------


def _history(path):
  return runs.read_history_csv(os.path.join(path, "history.csv"))


def test_run_index_resumes_skips_and_reevaluates(tmp_path, capsys):
  out = tmp_path / "s"
  sweep = sweeps.define("clustering", "beta=0,1", overrides={**QUICK, "epochs": 2},
                        evaluation=QUICK_EVAL, out=out)
  spec = sweep.runs[1]
  assert sweeps.status(spec, sweep.evaluation) == "new"
  # An interrupted run: 1 of its 2 epochs done.
  training.train(spec.config.replace(epochs=1), spec.path, progress=False, figures=False)
  assert sweeps.status(spec, sweep.evaluation) == "partial"
  outcome = sweeps.run(sweep, 1, progress=False, figures=False)
  assert (outcome.before, outcome.action) == ("partial", "trained")
  assert sweeps.status(spec, sweep.evaluation) == "done"
  assert [r["epoch"] for r in _history(spec.path)] == [1, 2]
  # Resumed training equals an uninterrupted one (the trainer's resume).
  other = training.train(spec.config, str(tmp_path / "straight"), progress=False, figures=False)
  assert [r["loss"] for r in other.history] == [r["loss"] for r in _history(spec.path)]
  metrics = json.load(open(os.path.join(spec.path, "metrics.json")))
  assert set(metrics["evaluation"]["results"]) == {"clustering"}
  assert metrics["evaluation"]["arguments"]["metrics"] == ["clustering"]
  assert metrics["evaluation"]["model"]["epochs_done"] == 2
  assert metrics["sweep"]["name"] == spec.name and metrics["sweep"]["train_seconds"] > 0
  assert json.load(open(out / "sweep.json"))["runs"][1]["name"] == spec.name
  # Done: skipped, nothing rewritten.
  stamp = os.path.getmtime(os.path.join(spec.path, "metrics.json"))
  assert sweeps.run(sweep, 1, progress=False).action == "skipped"
  assert os.path.getmtime(os.path.join(spec.path, "metrics.json")) == stamp
  # Other evaluation settings: evaluated again, not retrained.
  history = open(os.path.join(spec.path, "history.csv")).read()
  again = sweeps.define("clustering", "beta=0,1", overrides={**QUICK, "epochs": 2},
                        evaluation=sweeps.Evaluation(metrics=("clustering", "sparsity"),
                                                     max_examples=400), out=out)
  assert sweeps.status(again.runs[1], again.evaluation) == "trained"
  outcome = sweeps.run(again, 1, progress=False)
  assert outcome.action == "evaluated" and outcome.train_seconds == 0
  assert open(os.path.join(spec.path, "history.csv")).read() == history
  metrics = json.load(open(os.path.join(spec.path, "metrics.json")))
  assert set(metrics["evaluation"]["results"]) == {"clustering", "sparsity"}
  # More epochs continue the run.
  longer = sweeps.define("clustering", "beta=0,1", overrides={**QUICK, "epochs": 3},
                         evaluation=QUICK_EVAL, out=out)
  assert sweeps.status(longer.runs[1], longer.evaluation) == "partial"
  assert sweeps.run(longer, 1, progress=False, figures=False).action == "trained"
  assert [r["epoch"] for r in _history(spec.path)] == [1, 2, 3]
  # Another definition in the same directory is refused.
  other_grid = sweeps.define("clustering", "beta=0,2", overrides={**QUICK, "epochs": 2},
                             out=out)
  with pytest.raises(sweeps.SweepError, match="holds another sweep .its grid differ"):
    sweeps.run(other_grid, 0)
  with pytest.raises(sweeps.SweepError, match="--index must be in 0..1"):
    sweeps.run(sweep, 2)


def test_a_nonfinite_run_is_recorded_and_skipped(tmp_path, monkeypatch):
  sweep = sweeps.define("clustering", "beta=0,1", overrides=QUICK, evaluation=QUICK_EVAL,
                        out=tmp_path / "s")
  spec = sweep.runs[0]

  def explode(config, out, **kwargs):
    runs.RunDirectory(out).create(config)
    raise training.NonFiniteLoss("loss is nan at step 3; kept the last good checkpoint")

  monkeypatch.setattr(training, "train", explode)
  outcome = sweeps.run(sweep, 0, progress=False)
  assert outcome.action == "failed" and "nan at step 3" in outcome.message
  assert sweeps.status(spec, sweep.evaluation) == "failed"
  again = sweeps.run(sweep, 0, progress=False)
  assert again.action == "skipped" and "delete" in again.message
  rows = sweeps.collect(tmp_path / "s", figures=False, hparams=False).rows
  assert [r["status"] for r in rows] == ["failed", "new"]


# ---- collecting -------------------------------------------------------------------------------


def _fake_done_run(spec, evaluation, results, test_terms):
  """A run directory as a finished, evaluated run leaves it (no training)."""
  run_dir = runs.RunDirectory(spec.path)
  run_dir.create(spec.config, versions={"python": "x"})
  epochs = spec.config.epochs
  stem = os.path.join(run_dir.checkpoints_dir, f"ckpt-{epochs:05d}")
  open(stem + ".weights.h5", "wb").close()
  with open(stem + ".json", "w") as f:
    json.dump({"epochs_done": epochs}, f)
  run_dir.write_history([{"epoch": e + 1, "loss": 10.0 - e} for e in range(epochs)])
  document = {"results": results, "arguments": sweeps._expected_arguments(evaluation),
              "model": {"epochs_done": epochs}}
  run_dir.write_metrics({"split": "test", "examples": 100, "epochs": epochs, **test_terms,
                         "evaluation": document, "sweep": {"train_seconds": 2.0,
                                                           "evaluate_seconds": 1.0}},
                        keep_evaluation=False)


def _read_events(root):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import plugin_data_pb2  # pylint: disable=g-import-not-at-top
  found = {}
  for path in glob.glob(os.path.join(root, "**", "events.out.tfevents.*"), recursive=True):
    run = os.path.relpath(os.path.dirname(path), root)
    entry = found.setdefault(run, {"hparams": [], "scalars": {}})
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "hparams":
          entry["hparams"].append(plugin_data_pb2.HParamsPluginData.FromString(
              value.metadata.plugin_data.content))
        elif value.HasField("tensor"):
          entry["scalars"][value.tag] = (event.step, float(tf.make_ndarray(value.tensor)))
  return found


def test_collect_tables_match_numpy_and_hparams_read_back(tmp_path):
  evaluation = sweeps.Evaluation(metrics=("sparsity", "likelihood"))
  sweep = sweeps.define("sparsity_digits", "gamma=0,0.8;alpha=0,100", seeds=(0, 1, 2),
                        overrides={"epochs": 4}, evaluation=evaluation, out=tmp_path / "s")
  sweeps.write_definition(sweep)
  rng = np.random.default_rng(0)
  values = {}
  for spec in sweep.runs:
    if spec.point == {"gamma": 0.0, "alpha": 0.0} and spec.seed == 2:
      continue  # Not run yet.
    hoyer, iwae = float(rng.uniform(0.1, 0.6)), float(rng.normal(1200.0, 30.0))
    values[spec.name] = (hoyer, iwae)
    _fake_done_run(spec, evaluation, {
        "sparsity": {"hoyer": hoyer, "per_class_magnitude": [[1.0, 2.0]], "seconds": 0.1},
        "likelihood": {"iwae": iwae, "elbo": iwae - 50.0, "num_examples": 359}},
        {"loss": 1.0, "reconstruction": -1300.0 + hoyer, "kl": 100.0, "divergence": 0.5,
         "elbo": 1200.0})
  collected = sweeps.collect(tmp_path / "s")

  rows = sweeps.read_results(collected.paths["results_csv"])
  assert len(rows) == 12 and [r["index"] for r in rows] == list(range(12))
  assert [r["status"] for r in rows].count("new") == 1
  for row in rows:
    assert row["name"] == sweep.runs[row["index"]].name
    if row["name"] in values:
      assert row["sparsity.hoyer"] == values[row["name"]][0]  # Full precision.
      assert row["likelihood.iwae"] == values[row["name"]][1]
      assert row["train.loss"] == 7.0 and row["epochs_done"] == 4
      assert row["train_seconds"] == 2.0
  assert "sparsity.per_class_magnitude" not in rows[0] and "sparsity.seconds" not in rows[0]

  for entry in collected.summary:
    names = [s.name for s in sweep.runs if s.point == entry["point"] and s.name in values]
    hoyers = np.array([values[n][0] for n in names])
    assert entry["count"]["sparsity.hoyer"] == len(hoyers) == entry["done"]
    np.testing.assert_allclose(entry["mean"]["sparsity.hoyer"], np.mean(hoyers), rtol=1e-12)
    np.testing.assert_allclose(entry["std"]["sparsity.hoyer"], np.std(hoyers, ddof=1),
                               rtol=1e-12)
    iwaes = np.array([values[n][1] for n in names])
    cell = sweeps.format_mean_std(np.mean(iwaes), np.std(iwaes, ddof=1))
    line = next(l for l in collected.table.splitlines()
                if l.startswith(f"| {sweeps.format_value(entry['point']['gamma'])} | "
                                f"{sweeps.format_value(entry['point']['alpha'])} |"))
    assert cell in line and f"| {len(names)}/3 |" in line
  # A run that is not done (here: retraining for more epochs) does not enter the statistics.
  partial = [{"gamma": 0.0, "status": "done", "x.y": 1.0}, {"gamma": 0.0, "status": "done",
                                                           "x.y": 3.0},
             {"gamma": 0.0, "status": "partial", "x.y": 100.0}]
  (entry,) = sweeps.aggregate(partial, ["gamma"], ["x.y"])
  assert (entry["runs"], entry["done"], entry["mean"]["x.y"], entry["count"]["x.y"]) == (
      3, 2, 2.0, 2)
  np.testing.assert_allclose(entry["std"]["x.y"], np.std([1.0, 3.0], ddof=1))
  assert sweeps.format_mean_std(0.45123, 0.01349) == "0.4512 ± 0.013"
  assert sweeps.format_mean_std(0.45123, float("nan")) == "0.4512"
  assert sweeps.format_mean_std(float("nan"), float("nan")) == "—"
  assert collected.columns == ["test.reconstruction", "sparsity.hoyer", "likelihood.iwae",
                               "likelihood.elbo"]  # Constant and count columns left out.
  summary = open(collected.paths["summary_csv"]).read().splitlines()
  assert summary[0].startswith("gamma,alpha,runs,done,") and len(summary) == 5
  assert open(collected.paths["results_md"]).read().endswith(collected.table)

  events = _read_events(collected.paths["tensorboard"])
  experiment = [d for d in events["."]["hparams"] if d.WhichOneof("data") == "experiment"]
  assert len(experiment) == 1
  assert {h.name for h in experiment[0].experiment.hparam_infos} == {"gamma", "alpha", "seed"}
  metric_tags = {m.name.tag for m in experiment[0].experiment.metric_infos}
  assert {"sparsity.hoyer", "likelihood.iwae", "test.reconstruction"} <= metric_tags
  sessions = {run: entry for run, entry in events.items() if run != "."}
  assert set(sessions) == set(values)
  for name, entry in sessions.items():
    spec = next(s for s in sweep.runs if s.name == name)
    start = next(d for d in entry["hparams"] if d.WhichOneof("data") == "session_start_info")
    params = start.session_start_info.hparams
    assert params["gamma"].number_value == spec.point["gamma"]
    assert params["alpha"].number_value == spec.point["alpha"]
    assert params["seed"].number_value == spec.seed
    assert entry["scalars"]["sparsity.hoyer"][0] == 4
    np.testing.assert_allclose(entry["scalars"]["sparsity.hoyer"][1], values[name][0],
                               rtol=1e-6)
  assert [os.path.basename(p) for p in collected.figures] == ["sparsity_vs_alpha.png"]
  # Collecting again rebuilds everything: one event file per session, not two.
  again = sweeps.collect(tmp_path / "s")
  assert len(glob.glob(os.path.join(again.paths["tensorboard"], "*", "events.*"))) == len(values)


def test_collect_draws_factor_vae_against_beta_per_prior(tmp_path):
  evaluation = sweeps.Evaluation(metrics=("factor_vae",))
  sweep = sweeps.define("independence", "prior=gaussian,student_t;beta=1,4", seeds=(0, 1),
                        overrides={"dataset_config": "small", "epochs": 1},
                        evaluation=evaluation, out=tmp_path / "s")
  sweeps.write_definition(sweep)
  for i, spec in enumerate(sweep.runs):
    _fake_done_run(spec, evaluation,
                   {"factor_vae": {"train_accuracy": 0.5 + 0.05 * i, "eval_accuracy": 0.4,
                                   "num_active_dims": 10}},
                   {"loss": 1.0, "reconstruction": 100.0 + i, "kl": 5.0, "elbo": -105.0})
  collected = sweeps.collect(tmp_path / "s")
  assert [os.path.basename(p) for p in collected.figures] == ["factor_vae_vs_beta.png"]
  assert "factor_vae.train_accuracy" in collected.columns
  assert "factor_vae.num_active_dims" not in collected.columns  # A count.
  assert "factor_vae.eval_accuracy" not in collected.columns  # Constant.


def test_collect_refuses_a_directory_without_a_sweep(tmp_path):
  with pytest.raises(sweeps.SweepError, match="is not a sweep directory"):
    sweeps.collect(tmp_path)
  result = _cli(f"--collect={tmp_path}")
  assert result.returncode == 2 and "is not a sweep directory" in result.stderr
