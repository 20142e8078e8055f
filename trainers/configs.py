"""Experiment presets: the paper's three experiments as plain Python dataclasses.

  clustering    pinwheel (4 arms x 100 points), MLP, Normal likelihood, 4-component mixture prior
                (variance 0.03), inclusive KL, beta = 0, alpha = 1, latent 2, batch 400, lr 1e-3,
                500 epochs. beta = 0, alpha = 1 is the paper's run whose aggregate posterior is
                pulled onto the mixture (its baseline is beta = 1, alpha = 0).
  independence  dSprites, conv64, Bernoulli likelihood, N(0, I) prior (or `anisotropic`, a
                Gaussian whose variances follow the data's PCA spectrum, or `student_t` with
                df = 9), no divergence, beta = 1, latent 10, batch 64, lr 5e-4, 20 epochs.
  sparsity      Fashion-MNIST 32x32, dcgan32, Laplace likelihood (scale 0.1), sparse prior
                gamma = 0.8, MMD, beta = 1, alpha = 100, latent 50, batch 500, lr 5e-4, 80 epochs.

All use Adam with amsgrad (betas 0.9, 0.999) as the authors' code. `get(name)` returns a fresh
preset; `dataclasses.replace` applies overrides; `validate` checks a config and raises a
ValueError with a one-line message naming the bad setting.
"""

import dataclasses
import math
from typing import Optional

__all__ = ["Config", "DatasetSpec", "DATASETS", "EXPERIMENTS", "PRIORS", "DIVERGENCES",
           "clustering", "independence", "sparsity", "get", "validate", "parse_locs"]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How a dataset is modelled: its network builder, likelihood and the test split to report."""
  network: str
  likelihood: str
  eval_split: str


# Short names of `tfdecomp.data.load`.
DATASETS = {
    "pinwheel": DatasetSpec(network="mlp", likelihood="normal", eval_split="test"),
    "dsprites": DatasetSpec(network="conv64", likelihood="bernoulli", eval_split="train"),
    "fashion_mnist": DatasetSpec(network="dcgan32", likelihood="laplace", eval_split="test"),
    "digits": DatasetSpec(network="dcgan32", likelihood="laplace", eval_split="test"),
}
PRIORS = ("gaussian", "anisotropic", "student_t", "sparse", "mixture")
DIVERGENCES = ("mmd", "inclusive_kl", "none")


@dataclasses.dataclass
class Config:
  """Every setting of a training run (written to the run's config.json).

  Attributes:
    experiment: preset name ("clustering", "independence", "sparsity").
    dataset: a `DATASETS` key.
    prior: a `PRIORS` name.
    beta: weight of KL(q(z|x) || p(z)), >= 0.
    alpha: weight of the divergence D(q(z), p(z)), >= 0.
    divergence: "mmd", "inclusive_kl" or "none".
    latent_dim: D.
    batch_size: global batch size.
    epochs: passes over the training data (or of `steps_per_epoch` steps).
    learning_rate: Adam (amsgrad) learning rate.
    steps_per_epoch: optimizer steps per epoch; None = one pass over the training split.
    learn_prior: whether the prior's variances (and mixture weights) are trainable.
    df: Student-t degrees of freedom, > 0.
    gamma: sparse prior's spike weight, in [0, 1].
    prior_variance_scale: s in sigma^2_d = s * D * softmax(v)_d (0.03 for the mixture).
    mixture_locs: mixture component locations [K][D]; None = the pinwheel default.
    num_samples: posterior samples per example in the objective.
    seed: global seed (weights, data order, noise).
    jit: train with XLA (`compile(jit_compile=True)`). On for the MLP; off for the conv presets,
      whose convolutions run faster through TensorFlow's CPU kernels than through XLA
      (benchmarks/train_throughput.py; the MMD is XLA-compiled on its own either way).
    steps_per_execution: optimizer steps per compiled call (`compile(steps_per_execution=...)`).
    pca_examples: examples used to fit the anisotropic prior's PCA spectrum.
    likelihood_scale: Laplace scale (Fashion-MNIST); ignored by other likelihoods.
  """
  experiment: str
  dataset: str
  prior: str
  beta: float
  alpha: float
  divergence: str
  latent_dim: int
  batch_size: int
  epochs: int
  learning_rate: float
  steps_per_epoch: Optional[int] = None
  learn_prior: bool = False
  df: float = 9.0
  gamma: float = 0.8
  prior_variance_scale: float = 1.0
  mixture_locs: Optional[list] = None
  num_samples: int = 1
  seed: int = 0
  jit: bool = True
  steps_per_execution: int = 1
  pca_examples: int = 10000
  likelihood_scale: float = 0.1

  @property
  def network(self):
    return DATASETS[self.dataset].network

  @property
  def likelihood(self):
    return DATASETS[self.dataset].likelihood

  @property
  def eval_split(self):
    return DATASETS[self.dataset].eval_split

  def to_dict(self):
    """Every setting, including the derived network/likelihood/eval split."""
    d = dataclasses.asdict(self)
    d.update(network=self.network, likelihood=self.likelihood, eval_split=self.eval_split)
    return d


def clustering():
  """The paper's pinwheel clustering run: mixture prior, beta = 0, alpha = 1, inclusive KL."""
  return Config(experiment="clustering", dataset="pinwheel", prior="mixture", beta=0.0,
                alpha=1.0, divergence="inclusive_kl", latent_dim=2, batch_size=400, epochs=500,
                learning_rate=1e-3, prior_variance_scale=0.03, steps_per_execution=1)


def independence():
  """The paper's dSprites runs: N(0, I) prior by default, beta = 1, no divergence."""
  return Config(experiment="independence", dataset="dsprites", prior="gaussian", beta=1.0,
                alpha=0.0, divergence="none", latent_dim=10, batch_size=64, epochs=20,
                learning_rate=5e-4, df=9.0, steps_per_execution=8, jit=False)


def sparsity():
  """The paper's Fashion-MNIST runs: sparse prior gamma = 0.8, MMD with alpha = 100."""
  return Config(experiment="sparsity", dataset="fashion_mnist", prior="sparse", beta=1.0,
                alpha=100.0, divergence="mmd", latent_dim=50, batch_size=500, epochs=80,
                learning_rate=5e-4, gamma=0.8, steps_per_execution=4, jit=False)


EXPERIMENTS = {"clustering": clustering, "independence": independence, "sparsity": sparsity}


def get(name):
  """Returns a fresh `Config` of the named preset.

  Raises:
    ValueError: if `name` is not a preset.
  """
  if name not in EXPERIMENTS:
    raise ValueError(f"--experiment must be one of {', '.join(EXPERIMENTS)}; got {name!r}.")
  return EXPERIMENTS[name]()


def parse_locs(text):
  """Parses "x,y;x,y;..." (one component per ';') into a list of lists of floats.

  Raises:
    ValueError: if the text is not rows of numbers of one width.
  """
  try:
    rows = [[float(v) for v in row.split(",")] for row in text.split(";") if row.strip()]
  except ValueError:
    raise ValueError(
        f"--mixture_locs must look like '0,-1;0,1;1,0;-1,0' (components separated by ';'), "
        f"got {text!r}.") from None
  if not rows or len({len(r) for r in rows}) != 1:
    raise ValueError(f"--mixture_locs rows must all have the same width, got {text!r}.")
  return rows


def _finite(value):
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(config):
  """Checks a config; raises ValueError with a one-line message naming the bad setting.

  Args:
    config: a `Config`.

  Returns:
    The config, unchanged.

  Raises:
    ValueError: for an unknown dataset/prior/divergence, beta or alpha < 0, gamma outside
      [0, 1], df <= 0, mixture locs whose width is not latent_dim, batch size < 2 with MMD or the
      inclusive KL, and non-positive sizes or learning rate.
  """
  c = config
  if c.dataset not in DATASETS:
    raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}; got {c.dataset!r}.")
  if c.prior not in PRIORS:
    raise ValueError(f"--prior must be one of {', '.join(PRIORS)}; got {c.prior!r}.")
  if c.divergence not in DIVERGENCES:
    raise ValueError(
        f"--divergence must be one of {', '.join(DIVERGENCES)}; got {c.divergence!r}.")
  for name in ("beta", "alpha"):
    value = getattr(c, name)
    if not _finite(value) or value < 0:
      raise ValueError(f"--{name} must be a finite number >= 0; got {value!r}.")
  if not _finite(c.gamma) or not 0.0 <= c.gamma <= 1.0:
    raise ValueError(f"--gamma must be in [0, 1]; got {c.gamma!r}.")
  if not _finite(c.df) or c.df <= 0:
    raise ValueError(f"--df must be > 0; got {c.df!r}.")
  for name in ("latent_dim", "batch_size", "epochs", "num_samples", "steps_per_execution",
               "pca_examples"):
    value = getattr(c, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"--{name} must be a positive integer; got {value!r}.")
  if c.steps_per_epoch is not None and (not isinstance(c.steps_per_epoch, int)
                                        or c.steps_per_epoch < 1):
    raise ValueError(f"--steps_per_epoch must be a positive integer; got {c.steps_per_epoch!r}.")
  if not _finite(c.learning_rate) or c.learning_rate <= 0:
    raise ValueError(f"--learning_rate must be > 0; got {c.learning_rate!r}.")
  if not _finite(c.prior_variance_scale) or c.prior_variance_scale <= 0:
    raise ValueError(f"--prior_variance_scale must be > 0; got {c.prior_variance_scale!r}.")
  if not _finite(c.likelihood_scale) or c.likelihood_scale <= 0:
    raise ValueError(f"--likelihood_scale must be > 0; got {c.likelihood_scale!r}.")
  if c.divergence in ("mmd", "inclusive_kl") and c.batch_size < 2:
    raise ValueError(
        f"--batch_size must be >= 2 with --divergence={c.divergence} (it compares the batch's "
        f"aggregate posterior with the prior); got {c.batch_size}.")
  if c.prior == "mixture":
    if c.mixture_locs is not None:
      widths = {len(row) for row in c.mixture_locs}
      if widths != {c.latent_dim}:
        raise ValueError(
            f"--mixture_locs rows must have latent_dim={c.latent_dim} entries; got widths "
            f"{sorted(widths)}.")
    elif c.latent_dim != 2:
      raise ValueError(
          f"--prior=mixture uses the 2-D pinwheel locations unless --mixture_locs is given; "
          f"got --latent_dim={c.latent_dim}.")
  elif c.mixture_locs is not None:
    raise ValueError(f"--mixture_locs only applies to --prior=mixture; got --prior={c.prior}.")
  return c
