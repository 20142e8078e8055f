"""Run configurations: every setting of a training run, the paper's presets, and validation.

  clustering        pinwheel (4 arms x 100 points), MLP, Normal likelihood, 4-component mixture
                    prior (variance 0.03), inclusive KL, beta = 0, alpha = 1, latent 2, batch 400,
                    lr 1e-3, 500 epochs. beta = 0, alpha = 1 is the paper's run whose aggregate
                    posterior is pulled onto the mixture (its baseline is beta = 1, alpha = 0).
  independence      dSprites, conv64, Bernoulli likelihood, N(0, I) prior (or `anisotropic`, a
                    Gaussian whose variances follow the data's PCA spectrum, or `student_t` with
                    df = 9), no divergence, beta = 1, latent 10, batch 64, lr 5e-4, 20 epochs.
  sparsity          Fashion-MNIST 32x32, dcgan32, Laplace likelihood (scale 0.1), sparse prior
                    gamma = 0.8, MMD, beta = 1, alpha = 100, latent 50, batch 500, lr 5e-4,
                    80 epochs.
  sparsity_digits   the sparsity model on the offline digits stand-in (1,438 training images),
                    with the batch and epochs scaled to the set's size: batch 64, 40 epochs
                    (880 steps, about a minute on 2 CPU cores; test loss close to the training
                    loss, reconstructions recognisable).

All use Adam with amsgrad (betas 0.9, 0.999) as the authors' code. `get(name)` returns a fresh
preset; `make(name, **overrides)` applies settings and returns the resolved, validated config.
Settings left None (network, likelihood, prior variance scale) take the data set's and the
prior's declared defaults (`tfdecomp.datasets.REGISTRY`, `tfdecomp.priors.REGISTRY`) when
resolved. Errors are `ConfigError`s with one line naming the bad setting (as a flag, --name).
"""

import dataclasses
import math
from typing import Optional

__all__ = ["Config", "ConfigError", "PRESETS", "get", "make", "resolve", "validate",
           "parse_locs", "RESUMABLE"]

# Settings that may differ when a run directory is resumed.
RESUMABLE = ("epochs", "jit", "steps_per_execution")


class ConfigError(ValueError):
  """An invalid setting; the message is one line naming it (as a command-line flag)."""


@dataclasses.dataclass
class Config:
  """Every setting of a training run (written to the run's config.json).

  Attributes:
    experiment: preset name ("clustering", "independence", "sparsity", "sparsity_digits").
    dataset: a data set of `tfdecomp.datasets.REGISTRY` ("pinwheel", "dsprites", ...).
    prior: a prior of `tfdecomp.priors.REGISTRY`.
    beta: weight of KL(q(z|x) || p(z)), >= 0.
    alpha: weight of the divergence D(q(z), p(z)), >= 0.
    divergence: a divergence of `tfdecomp.divergences.REGISTRY`, or "none".
    latent_dim: D.
    batch_size: global batch size.
    epochs: passes over the training data (or of `steps_per_epoch` steps).
    learning_rate: Adam (amsgrad) learning rate.
    dataset_config: the data set's builder config (e.g. "small" for dSprites); None = default.
    network: a network of `tfdecomp.networks.REGISTRY`; None = the data set's.
    likelihood: a likelihood of `tfdecomp.likelihoods.REGISTRY`; None = the data set's.
    steps_per_epoch: optimizer steps per epoch; None = one pass over the training split.
    learn_prior: whether the prior's variances are trainable.
    df: Student-t degrees of freedom, > 0.
    gamma: sparse prior's spike weight, in [0, 1].
    prior_variance_scale: s in sigma^2_d = s * D * softmax(v); None = the prior's default (0.03
      for the mixture, 1 otherwise).
    mixture_locs: mixture component locations [K][D]; None = the pinwheel default.
    num_samples: posterior samples per example in the objective.
    seed: global seed (weights, data order, noise).
    jit: train with XLA (`compile(jit_compile=True)`). On for the MLP; off for the conv presets,
      whose convolutions run faster through TensorFlow's CPU kernels than through XLA
      (benchmarks/train_throughput.py; the MMD is XLA-compiled on its own either way).
    steps_per_execution: optimizer steps per compiled call (`compile(steps_per_execution=...)`).
    pca_examples: examples used to fit the anisotropic prior's PCA spectrum.
    likelihood_scale: Laplace scale (Fashion-MNIST); ignored by other likelihoods.
    beta_schedule, alpha_schedule: how the weight moves with the optimizer step t
      (`tfdecomp.schedules`): "constant" (the weight), "linear_warmup" (0 -> weight linearly
      over `*_schedule_steps` steps, then the weight: `LinearWarmup`) or "cyclical" (ramps
      0 -> weight over `*_ramp_fraction` of every period of `*_schedule_steps` steps, then held:
      `Cyclical`).
    beta_schedule_steps, alpha_schedule_steps: warm-up length or period, in optimizer steps;
      needed by "linear_warmup" and "cyclical", refused by "constant".
    beta_ramp_fraction, alpha_ramp_fraction: "cyclical"'s ramp share of a period, in (0, 1].
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
  dataset_config: Optional[str] = None
  network: Optional[str] = None
  likelihood: Optional[str] = None
  steps_per_epoch: Optional[int] = None
  learn_prior: bool = False
  df: float = 9.0
  gamma: float = 0.8
  prior_variance_scale: Optional[float] = None
  mixture_locs: Optional[list] = None
  num_samples: int = 1
  seed: int = 0
  jit: bool = True
  steps_per_execution: int = 1
  pca_examples: int = 10000
  likelihood_scale: float = 0.1
  beta_schedule: str = "constant"
  beta_schedule_steps: Optional[int] = None
  beta_ramp_fraction: float = 0.5
  alpha_schedule: str = "constant"
  alpha_schedule_steps: Optional[int] = None
  alpha_ramp_fraction: float = 0.5

  @property
  def dataset_spec(self):
    """The data set's `DatasetSpec`."""
    from tfdecomp import datasets  # pylint: disable=g-import-not-at-top  (imports TFDS)
    return datasets.get(self.dataset)

  @property
  def dataset_name(self) -> str:
    """The data set with its config, as `tfdecomp.data` takes it ("dsprites/small")."""
    return self.dataset + (f"/{self.dataset_config}" if self.dataset_config else "")

  @property
  def eval_split(self) -> str:
    """The split the run reports (test loss, figures): the data set's."""
    return self.dataset_spec.eval_split

  def to_dict(self) -> dict:
    """Every setting, plus the derived evaluation split."""
    return {**dataclasses.asdict(self), "eval_split": self.eval_split}

  @classmethod
  def from_dict(cls, settings: dict) -> "Config":
    """A Config from `to_dict` output (unknown keys, e.g. eval_split, are ignored)."""
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in settings.items() if k in names})

  def replace(self, **changes) -> "Config":
    return dataclasses.replace(self, **changes)


def clustering() -> Config:
  """The paper's pinwheel clustering run: mixture prior, beta = 0, alpha = 1, inclusive KL."""
  return Config(experiment="clustering", dataset="pinwheel", prior="mixture", beta=0.0,
                alpha=1.0, divergence="inclusive_kl", latent_dim=2, batch_size=400, epochs=500,
                learning_rate=1e-3, steps_per_execution=1)


def independence() -> Config:
  """The paper's dSprites runs: N(0, I) prior by default, beta = 1, no divergence."""
  return Config(experiment="independence", dataset="dsprites", prior="gaussian", beta=1.0,
                alpha=0.0, divergence="none", latent_dim=10, batch_size=64, epochs=20,
                learning_rate=5e-4, df=9.0, steps_per_execution=8, jit=False)


def sparsity() -> Config:
  """The paper's Fashion-MNIST runs: sparse prior gamma = 0.8, MMD with alpha = 100."""
  return Config(experiment="sparsity", dataset="fashion_mnist", prior="sparse", beta=1.0,
                alpha=100.0, divergence="mmd", latent_dim=50, batch_size=500, epochs=80,
                learning_rate=5e-4, gamma=0.8, steps_per_execution=4, jit=False)


def sparsity_digits() -> Config:
  """The sparsity model on the digits stand-in, batch and epochs scaled to its 1,438 images."""
  return sparsity().replace(experiment="sparsity_digits", dataset="digits", batch_size=64,
                            epochs=40, steps_per_execution=11)


PRESETS = {"clustering": clustering, "independence": independence, "sparsity": sparsity,
           "sparsity_digits": sparsity_digits}


def get(name: str) -> Config:
  """Returns a fresh `Config` of the named preset.

  Raises:
    ConfigError: if `name` is not a preset.
  """
  if name not in PRESETS:
    raise ConfigError(f"--experiment must be one of {', '.join(PRESETS)}; got {name!r}.")
  return PRESETS[name]()


def make(experiment: str = "clustering", **overrides) -> Config:
  """The preset `experiment` with `overrides` applied, resolved and validated.

  Args:
    experiment: a preset name.
    **overrides: settings (`Config` fields); None values are ignored, so a command line can pass
      every flag.

  Raises:
    ConfigError: for an unknown setting or an invalid value (one line naming it).
  """
  config = get(experiment)
  overrides = {k: v for k, v in overrides.items() if v is not None}
  names = {field.name for field in dataclasses.fields(Config)}
  unknown = sorted(set(overrides) - names)
  if unknown:
    raise ConfigError(f"unknown settings {', '.join(unknown)}; settings are "
                      f"{', '.join(sorted(names))}.")
  if isinstance(overrides.get("mixture_locs"), str):
    overrides["mixture_locs"] = parse_locs(overrides["mixture_locs"])
  return validate(resolve(config.replace(**overrides)))


#: The β/α schedule kinds of `Config.beta_schedule` / `alpha_schedule`.
SCHEDULES = ("constant", "linear_warmup", "cyclical")


def weight_schedule(config: Config, name: str):
  """The `tfdecomp.schedules` object of weight `name` ("beta" or "alpha") of a validated config.

  constant -> `Constant(w)`; linear_warmup -> `LinearWarmup(w, warmup_steps=S)`, i.e.
  w * min(t / S, 1); cyclical -> `Cyclical(w, period_steps=S, ramp_fraction=r)`, i.e.
  w * min((t mod S) / (r S), 1); t is the optimizer step.
  """
  from tfdecomp import schedules  # pylint: disable=g-import-not-at-top
  value = float(getattr(config, name))
  kind = getattr(config, f"{name}_schedule")
  steps = getattr(config, f"{name}_schedule_steps")
  if kind == "linear_warmup":
    return schedules.LinearWarmup(value, warmup_steps=steps)
  if kind == "cyclical":
    return schedules.Cyclical(value, period_steps=steps,
                              ramp_fraction=float(getattr(config, f"{name}_ramp_fraction")))
  return schedules.Constant(value)


def resolve(config: Config) -> Config:
  """Fills the settings left None with the data set's and the prior's declared defaults.

  network and likelihood come from the data set; prior_variance_scale from the prior; a run
  without a divergence ("none") has alpha = 0 (it would be ignored).

  Raises:
    ConfigError: for an unknown data set or prior.
  """
  from tfdecomp import datasets  # pylint: disable=g-import-not-at-top
  from tfdecomp import priors  # pylint: disable=g-import-not-at-top
  if config.dataset not in datasets.REGISTRY:
    raise ConfigError(
        f"--dataset must be one of {', '.join(datasets.NAMES)}; got {config.dataset!r}.")
  if config.prior not in priors.REGISTRY:
    raise ConfigError(f"--prior must be one of {', '.join(priors.NAMES)}; got {config.prior!r}.")
  spec = datasets.get(config.dataset)
  changes = {}
  if config.network is None:
    changes["network"] = spec.network
  if config.likelihood is None:
    changes["likelihood"] = spec.likelihood
  if config.prior_variance_scale is None:
    changes["prior_variance_scale"] = priors.REGISTRY.info(config.prior)[
        "default_variance_scale"]
  if config.divergence == "none":
    changes["alpha"] = 0.0
  return config.replace(**changes)


def parse_locs(text: str) -> list:
  """Parses "x,y;x,y;..." (one component per ';') into a list of lists of floats.

  Raises:
    ConfigError: if the text is not rows of numbers of one width.
  """
  try:
    rows = [[float(v) for v in row.split(",")] for row in text.split(";") if row.strip()]
  except ValueError:
    raise ConfigError(
        f"--mixture_locs must look like '0,-1;0,1;1,0;-1,0' (components separated by ';'), "
        f"got {text!r}.") from None
  if not rows or len({len(r) for r in rows}) != 1:
    raise ConfigError(f"--mixture_locs rows must all have the same width, got {text!r}.")
  return rows


def _finite(value):
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(config: Config) -> Config:
  """Checks a resolved config; raises ConfigError with a one-line message naming the bad setting.

  Args:
    config: a `Config` (after `resolve`).

  Returns:
    The config, unchanged.

  Raises:
    ConfigError: for an unknown data set, prior, divergence, network or likelihood, a network
      that does not take the data set's examples, beta or alpha < 0, gamma outside [0, 1],
      df <= 0, mixture locs whose width is not latent_dim, batch size < 2 with a divergence, and
      non-positive sizes or learning rate.
  """
  from tfdecomp import datasets  # pylint: disable=g-import-not-at-top
  from tfdecomp import divergences  # pylint: disable=g-import-not-at-top
  from tfdecomp import likelihoods  # pylint: disable=g-import-not-at-top
  from tfdecomp import networks  # pylint: disable=g-import-not-at-top
  from tfdecomp import priors  # pylint: disable=g-import-not-at-top
  c = config
  if c.experiment not in PRESETS:
    raise ConfigError(f"--experiment must be one of {', '.join(PRESETS)}; got {c.experiment!r}.")
  if c.dataset not in datasets.REGISTRY:
    raise ConfigError(f"--dataset must be one of {', '.join(datasets.NAMES)}; got {c.dataset!r}.")
  if c.prior not in priors.REGISTRY:
    raise ConfigError(f"--prior must be one of {', '.join(priors.NAMES)}; got {c.prior!r}.")
  if c.divergence not in divergences.NAMES:
    raise ConfigError(
        f"--divergence must be one of {', '.join(divergences.NAMES)}; got {c.divergence!r}.")
  if c.network not in networks.REGISTRY:
    raise ConfigError(f"--network must be one of {', '.join(networks.NAMES)}; got {c.network!r}.")
  if c.likelihood not in likelihoods.REGISTRY:
    raise ConfigError(
        f"--likelihood must be one of {', '.join(likelihoods.NAMES)}; got {c.likelihood!r}.")
  spec = datasets.get(c.dataset)
  info = networks.REGISTRY.info(c.network)
  if not info["accepts"](spec.example_shape):
    raise ConfigError(f"--network={c.network} takes {info['describe']}, but {c.dataset} examples "
                      f"have shape {list(spec.example_shape)}.")
  for name in ("beta", "alpha"):
    value = getattr(c, name)
    if not _finite(value) or value < 0:
      raise ConfigError(f"--{name} must be a finite number >= 0; got {value!r}.")
  if not _finite(c.gamma) or not 0.0 <= c.gamma <= 1.0:
    raise ConfigError(f"--gamma must be in [0, 1]; got {c.gamma!r}.")
  if not _finite(c.df) or c.df <= 0:
    raise ConfigError(f"--df must be > 0; got {c.df!r}.")
  for name in ("latent_dim", "batch_size", "epochs", "num_samples", "steps_per_execution",
               "pca_examples"):
    value = getattr(c, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ConfigError(f"--{name} must be a positive integer; got {value!r}.")
  if c.steps_per_epoch is not None and (isinstance(c.steps_per_epoch, bool) or not isinstance(
      c.steps_per_epoch, int) or c.steps_per_epoch < 1):
    raise ConfigError(f"--steps_per_epoch must be a positive integer; got {c.steps_per_epoch!r}.")
  if not _finite(c.learning_rate) or c.learning_rate <= 0:
    raise ConfigError(f"--learning_rate must be > 0; got {c.learning_rate!r}.")
  if not _finite(c.prior_variance_scale) or c.prior_variance_scale <= 0:
    raise ConfigError(f"--prior_variance_scale must be > 0; got {c.prior_variance_scale!r}.")
  if not _finite(c.likelihood_scale) or c.likelihood_scale <= 0:
    raise ConfigError(f"--likelihood_scale must be > 0; got {c.likelihood_scale!r}.")
  for name in ("beta", "alpha"):
    kind = getattr(c, f"{name}_schedule")
    steps = getattr(c, f"{name}_schedule_steps")
    ramp = getattr(c, f"{name}_ramp_fraction")
    if kind not in SCHEDULES:
      raise ConfigError(f"--{name}_schedule must be one of {', '.join(SCHEDULES)}; got {kind!r}.")
    if kind == "constant" and steps is not None:
      raise ConfigError(f"--{name}_schedule_steps only applies to --{name}_schedule="
                        f"linear_warmup or cyclical; got --{name}_schedule=constant.")
    if kind != "constant" and (isinstance(steps, bool) or not isinstance(steps, int) or
                               steps < 1):
      raise ConfigError(f"--{name}_schedule={kind} needs --{name}_schedule_steps, a positive "
                        f"integer (the {'warm-up length' if kind == 'linear_warmup' else 'period'}"
                        f" in optimizer steps); got {steps!r}.")
    if not _finite(ramp) or not 0.0 < ramp <= 1.0:
      raise ConfigError(f"--{name}_ramp_fraction must be in (0, 1]; got {ramp!r}.")
  if c.divergence != "none" and c.batch_size < 2:
    raise ConfigError(
        f"--batch_size must be >= 2 with --divergence={c.divergence} (it compares the batch's "
        f"aggregate posterior with the prior); got {c.batch_size}.")
  if c.prior == "mixture":
    if c.mixture_locs is not None:
      widths = {len(row) for row in c.mixture_locs}
      if widths != {c.latent_dim}:
        raise ConfigError(
            f"--mixture_locs rows must have latent_dim={c.latent_dim} entries; got widths "
            f"{sorted(widths)}.")
    elif c.latent_dim != 2:
      raise ConfigError(
          f"--prior=mixture uses the 2-D pinwheel locations unless --mixture_locs is given; "
          f"got --latent_dim={c.latent_dim}.")
  elif c.mixture_locs is not None:
    raise ConfigError(f"--mixture_locs only applies to --prior=mixture; got --prior={c.prior}.")
  return c
