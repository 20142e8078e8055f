"""The paper's three claims, reproduced by sweeps and checked with numbers.

  import tfdecomp
  report = tfdecomp.reproduce.reproduce("clustering", "small", out="results/clustering-small")
  print(report.claim.verdict, report.path)

Claims (Mathieu et al., 2019):
  clustering    pinwheel with the 4-component mixture prior: (beta = 0, alpha = 1) pulls q(z)
                onto the prior (MMD(q(z), p(z)) lower, cluster accuracy and NMI higher) where
                (beta = 1, alpha = 0) does not; plus the alpha x beta grid of aggregate posteriors.
  independence  dSprites: at beta = 1 an anisotropic Gaussian or a Student-t prior gives a higher
                FactorVAE score than N(0, I) at a similar reconstruction; plus the score against
                beta per prior.
  sparsity      Fashion-MNIST (the digits stand-in when its files are absent, said so): with the
                sparse prior (gamma = 0.8) the normalised Hoyer sparsity rises with alpha at
                little cost in IWAE log-likelihood, against gamma = 0; plus the per-class figure.

Budgets (`study` states each in full; docs/results.md quotes them):
  small   fits 2 CPU cores in at most 60 minutes per claim, 3 seeds per setting: fewer epochs or
          dSprites' `small` factor grid (2,304 images), bounded metric sample sizes.
  paper   the authors' settings (epochs, full data sets, IWAE K = 1000, FactorVAE on the whole
          factor grid): for GPUs or a cluster (`--list`).
  smoke   a minute or two: proves the pipeline end to end (train, evaluate, tables, figures);
          its numbers mean nothing.

A claim is checked by comparisons of means over seeds. A directional comparison ("higher",
"lower") passes when the means are ordered as claimed; it is *clear* when the gap also exceeds
the sum of the two standard deviations over seeds. "similar" passes when the two means differ by
at most `SIMILAR` (relative); "little cost" when the claimed-better setting loses at most
`LITTLE_COST` (relative). Verdicts: "holds" (every comparison passes, directional ones clearly),
"holds on average, within the spread over seeds" (every comparison passes), "does not hold", or
"not measured" (a setting is missing).
"""

import dataclasses
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfdecomp import _io
from tfdecomp import sweeps

__all__ = ["EXPERIMENTS", "BUDGETS", "Plan", "Study", "Comparison", "Claim", "Report", "study",
           "reproduce", "check", "fashion_mnist_available", "machine", "PAPER_SPARSITY",
           "SIMILAR", "LITTLE_COST"]

EXPERIMENTS = ("clustering", "independence", "sparsity")
BUDGETS = ("small", "paper", "smoke")

#: Largest relative difference of "similar" reconstructions (independence claim).
SIMILAR = 0.05
#: Largest relative loss of IWAE log-likelihood that is "little cost" (sparsity claim).
LITTLE_COST = 0.02

#: Normalised Hoyer sparsity read off the paper's Fashion-MNIST figure (approximate):
#: {(gamma, beta): {alpha: value}}; gamma = 0 is given as ranges over beta.
PAPER_SPARSITY = {
    (0.8, 1.0): {0: 0.36, 10: 0.45, 100: 0.55, 500: 0.56, 1000: 0.52},
    (0.8, 0.1): {0: 0.25, 10: 0.40, 100: 0.51, 500: 0.54, 1000: 0.52},
    (0.8, 5.0): {0: 0.31, 10: 0.33, 100: 0.41, 500: 0.42, 1000: 0.42},
}
PAPER_SPARSITY_GAMMA0 = {0: (0.23, 0.24), 1000: (0.185, 0.22)}

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


@dataclasses.dataclass(frozen=True)
class Plan:
  """One sweep of a study: its sub-directory, preset, grid, seeds, fixed settings, evaluation."""
  name: str
  experiment: str
  grid: str
  seeds: int
  overrides: Dict[str, object]
  evaluation: sweeps.Evaluation
  figures: bool = True  # The runs' own figures.


@dataclasses.dataclass(frozen=True)
class Study:
  """The sweeps that test one claim at one budget, and the budget stated in words."""
  experiment: str
  budget: str
  plans: Tuple[Plan, ...]
  budget_text: str
  evaluation_text: str
  notes: Tuple[str, ...] = ()


def fashion_mnist_available(data_dir: Optional[str] = None,
                            manual_dir: Optional[str] = None) -> bool:
  """Whether Fashion-MNIST can be loaded offline (its IDX files, or the prepared data set)."""
  from tfdecomp import data  # pylint: disable=g-import-not-at-top
  from tfdecomp import datasets  # pylint: disable=g-import-not-at-top
  spec = datasets.get("fashion_mnist")
  try:
    spec.check_files(manual_dir or data.default_manual_dir(data_dir))
    return True
  except FileNotFoundError:
    pass
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.builder(spec.builder, data_dir=data_dir or data.default_data_dir()).is_prepared()


def _clustering(budget: str) -> Study:
  evaluation = sweeps.Evaluation(metrics=("clustering", "likelihood"), iwae_samples=1000,
                                 likelihood_examples=400, max_examples=400)
  text_eval = ("clustering metrics (cluster accuracy and NMI of the mixture-component "
               "assignments, MMD between 1 sample of q(z|x) per point and as many prior samples) "
               "and the ELBO and IWAE (K = 1,000) on all 400 test points")
  if budget == "smoke":
    plan = Plan("grid", "clustering", "beta=0,1;alpha=0,1", 2, {"epochs": 2, "jit": False},
                dataclasses.replace(evaluation, iwae_samples=10), figures=False)
    return Study("clustering", budget, (plan,), "2 epochs, 2 seeds, beta x alpha in {0, 1}^2: "
                 "proves the pipeline; the numbers mean nothing.",
                 "clustering metrics, and the ELBO and IWAE with K = 10 on the 400 test points")
  seeds = 3 if budget == "small" else 5
  plan = Plan("grid", "clustering", "beta=0,0.5,1;alpha=0,1,10", seeds, {}, evaluation)
  return Study(
      "clustering", budget, (plan,),
      f"the authors' training settings in full (pinwheel 4 x 100 points, MLP, batch 400, lr "
      f"1e-3, 500 epochs = 500 steps, mixture prior of variance 0.03, inclusive KL) on the grid "
      f"beta in {{0, 0.5, 1}} x alpha in {{0, 1, 10}} (our grid: it holds the paper's two runs, "
      f"(beta=1, alpha=0) and (beta=0, alpha=1)), {seeds} seeds per point: pinwheel is small "
      f"enough that the CPU budget is the paper's" + (
          "" if budget == "small" else "; the paper budget only adds seeds"), text_eval)


def _independence(budget: str) -> Study:
  factor_vae = {"factor_vae": {"variant": "paper"}}
  evaluation = sweeps.Evaluation(metrics=("factor_vae", "mig"), metric_args=factor_vae)
  text_eval = ("FactorVAE score as the paper computes it (the whole factor grid encoded once, "
               "each dimension divided by its std, 20,000 majority votes of 1,000 codes; training "
               "accuracy reported) and MIG (disentanglement_lib's defaults: 10,000 codes, 20 "
               "bins); Student-t codes mapped to Normal ones first; reconstruction = the trained "
               "model's mean -log p(x|z) over the evaluation split (test.reconstruction)")
  if budget == "smoke":
    plan = Plan("grid", "independence", "prior=gaussian,student_t;beta=1,4", 2,
                {"dataset_config": "small", "epochs": 1, "steps_per_epoch": 2},
                sweeps.Evaluation(metrics=("factor_vae",), metric_args={
                    "factor_vae": {"variant": "paper", "num_train": 200, "batch_size": 50}}),
                figures=False)
    return Study("independence", budget, (plan,), "dSprites small, 2 steps, 2 seeds, 2 priors x "
                 "beta in {1, 4}: proves the pipeline; the numbers mean nothing.",
                 "FactorVAE (paper variant) with 200 votes of 50 codes")
  if budget == "small":
    # 12 steps per compiled call divide the 36 batches of an epoch (the preset's 8 do not, and
    # Keras then runs whole calls past the epoch's end).
    plan = Plan("grid", "independence", "prior=gaussian,anisotropic,student_t;beta=1,4", 3,
                {"dataset_config": "small", "epochs": 30, "steps_per_execution": 12}, evaluation)
    return Study(
        "independence", budget, (plan,),
        "dSprites' `small` factor grid (2,304 images: 3 shapes x 3 scales x 4 orientations x "
        "8 x 8 positions, against the full 737,280) for 30 epochs = 1,080 steps of batch 64 (the "
        "authors: 20 epochs of the full set, 230,400 steps), the authors' model otherwise "
        "(conv64, Bernoulli, latent 10, lr 5e-4); priors N(0, I), anisotropic (PCA of the "
        "data, fixed) and Student-t (df 9) x beta in {1, 4}; 3 seeds per setting. The metrics "
        "are computed on the same small grid.", text_eval)
  plans = (
      Plan("grid", "independence", "prior=gaussian,anisotropic,student_t;beta=1,2,4,8", 3, {},
           evaluation),
      Plan("learned", "independence", "beta=1,2,4,8", 3,
           {"prior": "anisotropic", "learn_prior": True}, evaluation))
  return Study(
      "independence", budget, plans,
      "the authors' settings: all 737,280 dSprites images, 20 epochs of batch 64, conv64, "
      "Bernoulli, latent 10, lr 5e-4; priors N(0, I), anisotropic (PCA, fixed; and learned, "
      "second sweep) and Student-t (df 9) x beta in {1, 2, 4, 8} (our beta values), 3 seeds.",
      text_eval)


def _sparsity(budget: str, fashion: bool) -> Study:
  data_note = () if fashion or budget == "smoke" else (
      "Fashion-MNIST's IDX files are not in the manual directory, so the sparsity claim runs on "
      "the offline stand-in, scikit-learn's digits at 32 x 32 (1,438 training and 359 test "
      "images; preset `sparsity_digits`): the trend is the claim, the paper's absolute values "
      "are for Fashion-MNIST and are not comparable.",)
  preset = "sparsity" if fashion and budget != "smoke" else "sparsity_digits"
  if budget == "smoke":
    plan = Plan("grid", preset, "gamma=0,0.8;alpha=0,100", 2,
                {"epochs": 1, "steps_per_epoch": 2},
                sweeps.Evaluation(metrics=("sparsity", "likelihood"), iwae_samples=5,
                                  likelihood_examples=20), figures=False)
    return Study("sparsity", budget, (plan,), "digits, 2 steps, 2 seeds, gamma x alpha in "
                 "{0, 0.8} x {0, 100}: proves the pipeline; the numbers mean nothing.",
                 "Hoyer sparsity on the test set, IWAE with K = 5 on 20 images")
  text_eval = ("normalised Hoyer sparsity of the test-set encoder means (each dimension divided "
               "by its std), per-class average |z_d|, and the ELBO and IWAE log-likelihood")
  if budget == "small" and not fashion:
    plan = Plan("grid", preset, "gamma=0,0.8;alpha=0,10,100,500,1000", 3, {},
                sweeps.Evaluation(metrics=("sparsity", "likelihood"), iwae_samples=100,
                                  likelihood_examples=359))
    return Study(
        "sparsity", budget, (plan,),
        "the digits stand-in with the preset `sparsity_digits` (the authors' Fashion-MNIST model "
        "- dcgan32, Laplace scale 0.1, latent 50, sparse prior, MMD, lr 5e-4 - with batch 64 and "
        "40 epochs = 880 steps for the set's 1,438 images); gamma in {0, 0.8} x the authors' "
        "alpha in {0, 10, 100, 500, 1000} at beta = 1 (the paper also shows beta = 0.1 and 5); "
        "3 seeds per setting.", text_eval + " with K = 100 (the paper: 1,000) on all 359 test "
        "images", data_note)
  if budget == "small":
    plan = Plan("grid", preset, "gamma=0,0.8;alpha=0,100", 3, {"epochs": 1},
                sweeps.Evaluation(metrics=("sparsity", "likelihood"), iwae_samples=100,
                                  likelihood_examples=1000))
    return Study(
        "sparsity", budget, (plan,),
        "Fashion-MNIST at the authors' model and batch (500) for 1 epoch = 120 steps (the "
        "authors: 80 epochs); gamma in {0, 0.8} x alpha in {0, 100} at beta = 1; 3 seeds. "
        "Estimated from the training throughput (about 300 examples/s on 2 cores), not "
        "measured here: the files were absent.", text_eval + " with K = 100 on 1,000 test "
        "images")
  plan = Plan("grid", preset, "gamma=0,0.8;beta=0.1,1,5;alpha=0,10,100,500,1000", 3, {},
              sweeps.Evaluation(metrics=("sparsity", "likelihood"), iwae_samples=1000,
                                likelihood_examples=1000))
  return Study(
      "sparsity", budget, (plan,),
      ("the authors' settings: Fashion-MNIST, 80 epochs of batch 500" if fashion else
       "the digits stand-in at its preset (40 epochs of batch 64)") +
      ", dcgan32, Laplace 0.1, latent 50, MMD; gamma in {0, 0.8} x beta in {0.1, 1, 5} x "
      "alpha in {0, 10, 100, 500, 1000}; 3 seeds.",
      text_eval + " with K = 1,000 on 1,000 test images", data_note)


def study(experiment: str, budget: str = "small", *, fashion_mnist: Optional[bool] = None,
          data_dir: Optional[str] = None, manual_dir: Optional[str] = None) -> Study:
  """The sweeps that test one claim at one budget.

  Args:
    experiment: "clustering", "independence" or "sparsity".
    budget: "small", "paper" or "smoke".
    fashion_mnist: whether Fashion-MNIST is available (default: `fashion_mnist_available`).
    data_dir, manual_dir: where to look for it.

  Raises:
    ValueError: for an unknown experiment or budget.
  """
  if experiment not in EXPERIMENTS:
    raise ValueError(f"--experiment must be one of {', '.join(EXPERIMENTS)}; got {experiment!r}.")
  if budget not in BUDGETS:
    raise ValueError(f"--budget must be one of {', '.join(BUDGETS)}; got {budget!r}.")
  if experiment == "clustering":
    return _clustering(budget)
  if experiment == "independence":
    return _independence(budget)
  if fashion_mnist is None:
    fashion_mnist = budget != "smoke" and fashion_mnist_available(data_dir, manual_dir)
  return _sparsity(budget, fashion_mnist)


def define_sweeps(plan_study: Study, out: str) -> List[sweeps.Sweep]:
  """The validated sweeps of a study, in `<out>/<plan name>/`."""
  return [sweeps.define(p.experiment, p.grid, seeds=range(p.seeds), overrides=p.overrides,
                        evaluation=p.evaluation, out=os.path.join(out, p.name))
          for p in plan_study.plans]


# ---------------------------------------------------------------------------------------------
# Claims.


@dataclasses.dataclass
class Comparison:
  """One comparison of a claim: `quantity` at setting `a` against setting `b`."""
  quantity: str
  a: str
  b: str
  expected: str  # "higher", "lower", "similar", "little cost"
  a_mean: float = float("nan")
  a_std: float = float("nan")
  b_mean: float = float("nan")
  b_std: float = float("nan")
  passed: Optional[bool] = None  # None: not measured.
  clear: Optional[bool] = None

  def evaluate(self) -> "Comparison":
    if not (math.isfinite(self.a_mean) and math.isfinite(self.b_mean)):
      self.passed, self.clear = None, None
      return self
    gap = self.a_mean - self.b_mean
    spread = (self.a_std if math.isfinite(self.a_std) else 0.0) + (
        self.b_std if math.isfinite(self.b_std) else 0.0)
    if self.expected in ("higher", "lower"):
      self.passed = gap > 0 if self.expected == "higher" else gap < 0
      self.clear = self.passed and abs(gap) > spread
    elif self.expected == "similar":
      self.passed = abs(gap) <= SIMILAR * abs(self.b_mean)
      self.clear = self.passed
    else:  # little cost: a (claimed better) loses at most LITTLE_COST of |b|.
      self.passed = gap >= -LITTLE_COST * abs(self.b_mean)
      self.clear = self.passed
    return self

  @property
  def result(self) -> str:
    if self.passed is None:
      return "not measured"
    if not self.passed:
      return "no"
    return "yes" if self.clear else "yes, within the spread over seeds"


@dataclasses.dataclass
class Claim:
  """A claim's statement, its comparisons and the verdict."""
  experiment: str
  statement: str
  comparisons: List[Comparison]
  verdict: str = ""
  extra_tables: List[str] = dataclasses.field(default_factory=list)

  def decide(self) -> "Claim":
    results = [c.passed for c in self.comparisons]
    if not results or any(r is None for r in results):
      self.verdict = "not measured"
    elif not all(results):
      self.verdict = "does not hold"
    elif all(c.clear for c in self.comparisons):
      self.verdict = "holds"
    else:
      self.verdict = "holds on average, within the spread over seeds"
    return self


def _entry(collected: sweeps.Collected, **settings) -> Optional[dict]:
  """The summary entry whose runs have these settings (axes or fixed config values)."""
  for entry, spec in _entries_with_spec(collected):
    if all(_equal(getattr(spec.config, k), v) for k, v in settings.items()):
      return entry
  return None


def _entries_with_spec(collected):
  axes = [a.name for a in collected.sweep.axes]
  for entry in collected.summary:
    spec = next(s for s in collected.sweep.runs
                if all(_equal(s.point[a], entry["point"][a]) for a in axes))
    yield entry, spec


def _equal(a, b) -> bool:
  if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
  return a == b


def _setting_text(settings: dict) -> str:
  return ", ".join(f"{k}={sweeps.format_value(v)}" for k, v in settings.items())


def _compare(collected, quantity, a: dict, b: dict, expected) -> Comparison:
  comparison = Comparison(quantity, _setting_text(a), _setting_text(b), expected)
  ea, eb = _entry(collected, **a), _entry(collected, **b)
  if ea is not None:
    comparison.a_mean = ea["mean"].get(quantity, float("nan"))
    comparison.a_std = ea["std"].get(quantity, float("nan"))
  if eb is not None:
    comparison.b_mean = eb["mean"].get(quantity, float("nan"))
    comparison.b_std = eb["std"].get(quantity, float("nan"))
  return comparison.evaluate()


def check(experiment: str, collected: Sequence[sweeps.Collected]) -> Claim:
  """Checks a claim on the collected sweeps of its study (the first sweep holds the claim)."""
  main = collected[0]
  if experiment == "clustering":
    good, base = {"beta": 0.0, "alpha": 1.0}, {"beta": 1.0, "alpha": 0.0}
    comparisons = [_compare(main, "clustering.mmd", good, base, "lower"),
                   _compare(main, "clustering.cluster_accuracy", good, base, "higher"),
                   _compare(main, "clustering.nmi", good, base, "higher")]
    statement = ("(beta=0, alpha=1) makes q(z) match the 4-component mixture prior - MMD to the "
                 "prior lower, cluster accuracy and NMI higher - where (beta=1, alpha=0) does "
                 "not.")
    return Claim(experiment, statement, comparisons).decide()
  if experiment == "independence":
    base = {"prior": "gaussian", "beta": 1.0}
    comparisons = []
    for prior in ("anisotropic", "student_t"):
      other = {"prior": prior, "beta": 1.0}
      comparisons.append(_compare(main, "factor_vae.train_accuracy", other, base, "higher"))
      comparisons.append(_compare(main, "test.reconstruction", other, base, "similar"))
    statement = ("at beta = 1 an anisotropic Gaussian or a Student-t prior gives a higher "
                 "FactorVAE score than N(0, I) at a similar reconstruction (within "
                 f"{SIMILAR:.0%}).")
    return Claim(experiment, statement, comparisons).decide()
  if experiment == "sparsity":
    alphas = sorted({float(e["point"]["alpha"]) for e in main.summary if "alpha" in e["point"]})
    high = 100.0 if 100.0 in alphas else (max(alphas) if alphas else 100.0)
    sparse0 = {"gamma": 0.8, "beta": 1.0, "alpha": 0.0}
    sparse = {"gamma": 0.8, "beta": 1.0, "alpha": high}
    dense = {"gamma": 0.0, "beta": 1.0, "alpha": high}
    comparisons = [_compare(main, "sparsity.hoyer", sparse, sparse0, "higher"),
                   _compare(main, "sparsity.hoyer", sparse, dense, "higher"),
                   _compare(main, "likelihood.iwae", sparse, sparse0, "little cost")]
    statement = (f"with the sparse prior (gamma = 0.8, beta = 1) the normalised Hoyer sparsity "
                 f"rises from alpha = 0 to alpha = {sweeps.format_value(high)} and exceeds "
                 f"gamma = 0's, at little cost in IWAE log-likelihood (a loss of at most "
                 f"{LITTLE_COST:.0%}).")
    claim = Claim(experiment, statement, comparisons).decide()
    claim.extra_tables.append(_sparsity_side_by_side(main, alphas))
    return claim
  raise ValueError(f"unknown experiment {experiment!r}")


def _sparsity_side_by_side(collected, alphas) -> str:
  betas = sorted({float(spec.config.beta) for spec in collected.sweep.runs})
  header = ["alpha"]
  for beta in betas:
    header += [f"ours gamma=0.8 beta={sweeps.format_value(beta)}",
               f"paper gamma=0.8 beta={sweeps.format_value(beta)}"]
  header += ["ours gamma=0 beta=1", "paper gamma=0 (any beta)"]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
  for alpha in alphas:
    cells = [sweeps.format_value(alpha)]
    for beta in betas:
      entry = _entry(collected, gamma=0.8, beta=beta, alpha=alpha)
      cells.append(sweeps.format_mean_std(entry["mean"]["sparsity.hoyer"],
                                          entry["std"]["sparsity.hoyer"])
                   if entry is not None and "sparsity.hoyer" in entry["mean"] else "—")
      paper = PAPER_SPARSITY.get((0.8, beta), {}).get(int(alpha)) if alpha.is_integer() else None
      cells.append(f"{paper:.2f}" if paper is not None else "—")
    entry = _entry(collected, gamma=0.0, beta=1.0, alpha=alpha)
    cells.append(sweeps.format_mean_std(entry["mean"]["sparsity.hoyer"],
                                        entry["std"]["sparsity.hoyer"])
                 if entry is not None and "sparsity.hoyer" in entry["mean"] else "—")
    paper0 = PAPER_SPARSITY_GAMMA0.get(int(alpha)) if alpha.is_integer() else None
    cells.append(f"{paper0[0]:.3g}–{paper0[1]:.3g}" if paper0 else "—")
    lines.append("| " + " | ".join(cells) + " |")
  return ("Normalised Hoyer sparsity, ours (mean ± std over seeds) beside the paper's "
          "(Fashion-MNIST, read off its figure):\n\n" + "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Running and reporting.


def machine() -> dict:
  """The machine a reproduction ran on: CPU model, cores usable, Python and TensorFlow."""
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  from tfdecomp import data as data_lib  # pylint: disable=g-import-not-at-top
  cores = data_lib.usable_cpus()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {"cpu": model, "cores": cores, "python": platform.python_version(),
          "tensorflow": tf.__version__, "gpus": len(tf.config.list_physical_devices("GPU"))}


@dataclasses.dataclass
class Report:
  """What `reproduce` produced."""
  study: Study
  claim: Claim
  collected: List[sweeps.Collected]
  path: str
  figures: List[str]
  wall_seconds: float
  run_seconds: float
  failed: List[str]


def _claim_figures(study_: Study, collected, plots_dir) -> List[str]:
  from tfdecomp import sweep_plots  # pylint: disable=g-import-not-at-top
  written = []
  main = collected[0]
  if study_.experiment == "sparsity":
    alphas = sorted({float(e["point"]["alpha"]) for e in main.summary})
    if len(alphas) > 1 and any(math.isfinite(e["mean"].get("sparsity.hoyer", math.nan))
                               for e in main.summary):
      references = {"sparsity.hoyer": [
          ("paper γ=0.8, β=1 (F-MNIST)", list(PAPER_SPARSITY[(0.8, 1.0)]),
           list(PAPER_SPARSITY[(0.8, 1.0)].values()))]}
      group = [a.name for a in main.sweep.axes if a.name != "alpha" and len(a.values) > 1]
      columns = ["sparsity.hoyer"] + (["likelihood.iwae"] if any(
          math.isfinite(e["mean"].get("likelihood.iwae", math.nan)) for e in main.summary) else [])
      path = os.path.join(plots_dir, "sparsity_vs_alpha_with_paper.png")
      sweep_plots.metric_lines(main.summary, "alpha", columns, group, path=path,
                               references=references,
                               title="sparsity claim: ours (mean ± std over seeds) and the paper's")
      written.append(path)
    panels = []
    high = 100.0 if 100.0 in alphas else (max(alphas) if alphas else None)
    for label, settings in (("gamma=0.8, alpha=0", {"gamma": 0.8, "beta": 1.0, "alpha": 0.0}),
                            (f"gamma=0.8, alpha={sweeps.format_value(high)}",
                             {"gamma": 0.8, "beta": 1.0, "alpha": high}),
                            (f"gamma=0, alpha={sweeps.format_value(high)}",
                             {"gamma": 0.0, "beta": 1.0, "alpha": high})):
      magnitudes = _first_seed_result(main, settings, "sparsity", "per_class_magnitude")
      if magnitudes is not None:
        panels.append((label, np.asarray(magnitudes, np.float64)))
    if panels:
      spec = main.sweep.runs[0]
      names = FASHION_MNIST_CLASSES if spec.config.dataset == "fashion_mnist" else [
          str(k) for k in range(panels[0][1].shape[0])]
      path = os.path.join(plots_dir, "per_class_magnitude.png")
      sweep_plots.per_class_heatmaps(panels, names, path=path,
                                     title="average |z_d| per class (first seed, beta = 1)")
      written.append(path)
  return written


def _first_seed_result(collected, settings, metric, key):
  from tfdecomp import runs as runs_lib  # pylint: disable=g-import-not-at-top
  for spec in collected.sweep.runs:
    if spec.seed == collected.sweep.seeds[0] and all(
        _equal(getattr(spec.config, k), v) for k, v in settings.items()):
      metrics = runs_lib.RunDirectory(spec.path).read_metrics()
      result = metrics.get("evaluation", {}).get("results", {}).get(metric, {})
      return result.get(key)
  return None


def _comparison_table(claim: Claim) -> str:
  lines = ["| quantity | setting A | A (mean ± std) | setting B | B (mean ± std) | claimed: A is "
           "| result |", "|---|---|---|---|---|---|---|"]
  for c in claim.comparisons:
    lines.append(f"| {c.quantity} | {c.a} | {sweeps.format_mean_std(c.a_mean, c.a_std)} | {c.b} "
                 f"| {sweeps.format_mean_std(c.b_mean, c.b_std)} | {c.expected} than B"
                 f" | {c.result} |".replace("similar than B", "similar to B")
                 .replace("little cost than B", "at little cost against B"))
  return "\n".join(lines) + "\n"


def write_report(study_: Study, claim: Claim, collected, out: str, *, command: str,
                 wall_seconds: float, figures: Sequence[str], failed: Sequence[str]) -> str:
  """Writes `<out>/report.md` (the section of docs/results.md for this claim) and claims.json."""
  info = machine()
  run_seconds = sum(r.get("train_seconds", 0.0) + r.get("evaluate_seconds", 0.0)
                    for c in collected for r in c.rows)
  runs = sum(len(c.rows) for c in collected)
  done = sum(r["status"] == "done" for c in collected for r in c.rows)
  rel = lambda p: os.path.relpath(p, out)  # noqa: E731
  parts = [
      f"## {study_.experiment}: {claim.statement}\n",
      f"**Verdict: {claim.verdict}.**\n",
      f"- Command: `{command}`",
      f"- Budget ({study_.budget}): {study_.budget_text}",
      f"- Evaluation: {study_.evaluation_text}.",
      *[f"- Note: {n}" for n in study_.notes],
      f"- Machine: {info['cpu']}, {info['cores']} cores usable, {info['gpus']} GPUs; Python "
      f"{info['python']}, TensorFlow {info['tensorflow']}.",
      f"- Wall time: {wall_seconds / 60:.1f} min for this invocation; {run_seconds / 60:.1f} min "
      f"summed over the runs' training and evaluation ({done}/{runs} runs done"
      + (f"; failed: {', '.join(failed)}" if failed else "") + ").",
      f"- Written {datetime.datetime.now().isoformat(timespec='minutes')}.\n",
      "### The claim's comparisons\n",
      _comparison_table(claim),
      "A directional result is *yes* when the means are ordered as claimed and the gap exceeds "
      "the sum of the two standard deviations over seeds, *yes, within the spread* when only "
      "the means are ordered.\n",
      *[t + "\n" for t in claim.extra_tables],
  ]
  for plan, c in zip(study_.plans, collected):
    parts += [f"### Sweep `{plan.name}`: {plan.experiment}, grid `{c.sweep.grid}`, "
              f"{len(c.sweep.seeds)} seeds\n",
              "Mean ± sample std (ddof = 1) over seeds (`test.*`: the trained model's loss terms "
              f"on its evaluation split; the others: the evaluation's metrics). All runs: "
              f"`{rel(c.paths['results_csv'])}`.\n", c.table]
    parts += [f"![{os.path.basename(p)}]({rel(p)})\n" for p in figures
              if os.path.basename(p).startswith(f"{plan.name}-")]
  parts += [f"![{os.path.basename(p)}]({rel(p)})\n" for p in figures
            if not any(os.path.basename(p).startswith(f"{plan.name}-") for plan in study_.plans)]
  path = os.path.join(out, "report.md")
  _io.atomic_write_text(path, "\n".join(parts))
  document = {"experiment": study_.experiment, "budget": study_.budget, "verdict": claim.verdict,
              "statement": claim.statement, "command": command, "machine": info,
              "wall_seconds": wall_seconds, "run_seconds": run_seconds, "failed": list(failed),
              "comparisons": [dataclasses.asdict(c) for c in claim.comparisons],
              "notes": list(study_.notes), "budget_text": study_.budget_text}
  _io.atomic_write_text(os.path.join(out, "claims.json"),
                        json.dumps(document, indent=2, default=str) + "\n")
  return path


def reproduce(experiment: str, budget: str = "small", out: Optional[str] = None, *,
              data_dir: Optional[str] = None, manual_dir: Optional[str] = None,
              command: Optional[str] = None, train: bool = True, progress: bool = True,
              report: Optional[Callable[[str], None]] = None, warn=None) -> Report:
  """Runs (or resumes) a claim's sweeps, collects them, checks the claim, writes the report.

  Args:
    experiment: "clustering", "independence" or "sparsity".
    budget: "small", "paper" or "smoke" (module docstring).
    out: the output directory (default results/<experiment>-<budget>); each sweep goes to
      <out>/<plan name>/, the report to <out>/report.md and claims.json, and every figure
      (the sweeps' own, copied as <plan name>-<figure>.png, and the claim's) to <out>/plots/.
    data_dir, manual_dir: see `tfdecomp.data`.
    command: the command line, recorded in the report.
    train: run the sweeps (False: only collect what exists and report, e.g. after a cluster
      ran the `--list` commands).
    progress: draw the runs' progress lines.
    report: receives one line per run.
    warn: receives one line per warning about a run directory.

  Returns:
    A `Report`.
  """
  start = time.monotonic()
  out = out or os.path.join("results", f"{experiment}-{budget}")
  study_ = study(experiment, budget, data_dir=data_dir, manual_dir=manual_dir)
  defined = define_sweeps(study_, out)
  command = command or shlex.join(["python", "-m", "trainers.reproduce",
                                   f"--experiment={experiment}", f"--budget={budget}"])
  failed = []
  if train:
    for plan, sweep in zip(study_.plans, defined):
      outcomes = sweeps.run_all(sweep, report=report, data_dir=data_dir, manual_dir=manual_dir,
                                command=command, progress=progress, warn=warn,
                                figures=plan.figures)
      failed += [o.spec.name for o in outcomes if o.action == "failed"]
  collected = [sweeps.collect(sweep.out, data_dir=data_dir, manual_dir=manual_dir)
               for sweep in defined]
  claim = check(experiment, collected)
  plots_dir = os.path.join(out, "plots")
  os.makedirs(plots_dir, exist_ok=True)
  figures = []
  for plan, c in zip(study_.plans, collected):  # Every figure of the claim in one folder.
    for path in c.figures:
      copy = os.path.join(plots_dir, f"{plan.name}-{os.path.basename(path)}")
      with _io.atomic_path(copy, suffix=".png") as tmp:
        shutil.copyfile(path, tmp)
      figures.append(copy)
  figures += _claim_figures(study_, collected, plots_dir)
  wall = time.monotonic() - start
  path = write_report(study_, claim, collected, out, command=command, wall_seconds=wall,
                      figures=figures, failed=failed)
  run_seconds = sum(r.get("train_seconds", 0.0) + r.get("evaluate_seconds", 0.0)
                    for c in collected for r in c.rows)
  return Report(study=study_, claim=claim, collected=collected, path=path, figures=figures,
                wall_seconds=wall, run_seconds=run_seconds, failed=failed)
