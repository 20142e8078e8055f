"""Tests of tfdecomp.reproduce and trainers/reproduce.py: the budgets, the claim checks, and each
claim's reproduction end to end at the smoke budget (train, evaluate, tables, figures, report)."""

import json
import math
import os
import subprocess
import sys

import pytest

from tfdecomp import reproduce
from tfdecomp import sweeps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=900):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "trainers.reproduce", *args], capture_output=True,
                        text=True, timeout=timeout, env=env, cwd=REPO)


@pytest.mark.parametrize("experiment", reproduce.EXPERIMENTS)
@pytest.mark.parametrize("budget", reproduce.BUDGETS)
def test_every_study_is_a_valid_sweep_with_its_budget_stated(tmp_path, experiment, budget):
  study = reproduce.study(experiment, budget, fashion_mnist=False)
  defined = reproduce.define_sweeps(study, str(tmp_path))
  assert defined and study.budget_text and study.evaluation_text
  runs = sum(len(s.runs) for s in defined)
  if budget != "smoke":
    assert all(len(s.seeds) >= 3 for s in defined)  # >= 3 seeds per setting.
  assert runs <= (8 if budget == "smoke" else 200)
  if experiment == "sparsity" and budget != "smoke":
    assert defined[0].runs[0].config.dataset == "digits"
    assert any("digits" in note and "Fashion-MNIST" in note for note in study.notes)
  if experiment == "independence" and budget == "small":
    assert {s.config.dataset_config for s in defined[0].runs} == {"small"}
  # The settings the claim compares are in the main sweep.
  main = defined[0]
  wanted = {"clustering": [{"beta": 0.0, "alpha": 1.0}, {"beta": 1.0, "alpha": 0.0}],
            "independence": [{"prior": p, "beta": 1.0} for p in ("gaussian", "student_t")],
            "sparsity": [{"gamma": g, "beta": 1.0, "alpha": a} for g in (0.0, 0.8)
                         for a in (0.0, 100.0)]}[experiment]
  for settings in wanted:
    assert any(all(getattr(s.config, k) == v for k, v in settings.items()) for s in main.runs), (
        settings)


def test_fashion_mnist_present_selects_it():
  assert reproduce.study("sparsity", "paper", fashion_mnist=True).plans[0].experiment == (
      "sparsity")
  assert reproduce.study("sparsity", "small", fashion_mnist=True).plans[0].experiment == (
      "sparsity")
  assert not reproduce.study("sparsity", "small", fashion_mnist=True).notes
  with pytest.raises(ValueError, match="--budget must be one of"):
    reproduce.study("clustering", "huge")
  with pytest.raises(ValueError, match="--experiment must be one of"):
    reproduce.study("bogus")


@pytest.mark.parametrize("a,b,expected,passed,clear", [
    ((0.6, 0.01), (0.4, 0.02), "higher", True, True),
    ((0.45, 0.1), (0.4, 0.1), "higher", True, False),   # Ordered, within the spread.
    ((0.3, 0.01), (0.4, 0.01), "higher", False, False),
    ((0.1, 0.01), (0.4, 0.01), "lower", True, True),
    ((104.0, 1.0), (100.0, 1.0), "similar", True, True),   # 4% <= 5%.
    ((106.0, 1.0), (100.0, 1.0), "similar", False, False),
    ((980.0, 5.0), (1000.0, 5.0), "little cost", True, True),   # -2% of |b| allowed.
    ((970.0, 5.0), (1000.0, 5.0), "little cost", False, False),
    ((-1010.0, 5.0), (-1000.0, 5.0), "little cost", True, True),
    ((math.nan, math.nan), (1.0, 0.1), "higher", None, None),
])
def test_comparisons_follow_the_stated_criteria(a, b, expected, passed, clear):
  c = reproduce.Comparison("q", "A", "B", expected, a[0], a[1], b[0], b[1]).evaluate()
  assert (c.passed, c.clear) == (passed, clear)


def test_verdicts():
  def claim(*results):
    comparisons = []
    for passed, clear in results:
      c = reproduce.Comparison("q", "A", "B", "higher")
      c.passed, c.clear = passed, clear
      comparisons.append(c)
    return reproduce.Claim("x", "s", comparisons).decide().verdict
  assert claim((True, True), (True, True)) == "holds"
  assert claim((True, True), (True, False)) == "holds on average, within the spread over seeds"
  assert claim((True, True), (False, False)) == "does not hold"
  assert claim((True, True), (None, None)) == "not measured"


def test_cli_lists_the_runs_of_a_study(tmp_path):
  out = str(tmp_path / "r")
  result = _cli("--experiment=clustering", "--budget=small", f"--out={out}", "--list")
  assert result.returncode == 0, result.stderr
  commands = result.stdout.strip().splitlines()
  study = reproduce.study("clustering", "small")
  sweep = reproduce.define_sweeps(study, out)[0]
  assert commands == [sweeps.index_command(sweep, i, ["tfdecomp-sweep"])
                      for i in range(len(sweep.runs))]
  assert "--report_only" in result.stderr and not os.path.exists(out)
  bad = _cli("--budget=small")
  assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


FIGURES = {
    "clustering": ["grid/plots/aggregate_posterior_grid.png",
                   "plots/grid-aggregate_posterior_grid.png"],
    "independence": ["grid/plots/factor_vae_vs_beta.png", "plots/grid-factor_vae_vs_beta.png"],
    "sparsity": ["grid/plots/sparsity_vs_alpha.png", "plots/grid-sparsity_vs_alpha.png",
                 "plots/sparsity_vs_alpha_with_paper.png", "plots/per_class_magnitude.png"],
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", reproduce.EXPERIMENTS)
def test_reproduction_runs_end_to_end_at_the_smoke_budget(tmp_path, experiment):
  out = tmp_path / experiment
  result = _cli(f"--experiment={experiment}", "--budget=smoke", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert str(out / "report.md") in result.stdout
  study = reproduce.study(experiment, "smoke")
  sweep = reproduce.define_sweeps(study, str(out))[0]
  rows = sweeps.read_results(out / "grid" / "results.csv")
  assert len(rows) == len(sweep.runs) and {r["status"] for r in rows} == {"done"}
  metric = {"clustering": "clustering.mmd", "independence": "factor_vae.train_accuracy",
            "sparsity": "sparsity.hoyer"}[experiment]
  assert all(math.isfinite(r[metric]) for r in rows)
  table = (out / "grid" / "results.md").read_text()
  assert metric in table and "±" in table
  for figure in FIGURES[experiment]:
    assert (out / figure).stat().st_size > 10_000, figure
  report = (out / "report.md").read_text()
  claims = json.loads((out / "claims.json").read_text())
  assert claims["verdict"] in report and claims["budget"] == "smoke"
  assert claims["verdict"] in ("holds", "holds on average, within the spread over seeds",
                               "does not hold", "not measured")
  for needle in ("Command: `python -m trainers.reproduce", "Budget (smoke)", "Machine:",
                 "Wall time:", "### The claim's comparisons", "results.csv"):
    assert needle in report, needle
  for figure in FIGURES[experiment]:
    if figure.startswith("plots/"):
      assert f"]({figure})" in report, figure
  assert os.listdir(out / "grid" / "tensorboard")
  if experiment == "sparsity":
    assert "paper gamma=0.8 beta=1" in report and "0.36" in report
  if experiment == "clustering":
    # A second pass finds every run done and only rebuilds the outputs.
    again = _cli(f"--experiment={experiment}", "--budget=smoke", f"--out={out}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("skipped (done)") == len(sweep.runs)
