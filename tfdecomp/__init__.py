"""tfdecomp: decomposition VAEs in TensorFlow, Keras 3 and TensorFlow Probability.

Implements "Disentangling Disentanglement in Variational Autoencoders" (Mathieu, Rainforth,
Siddharth & Teh, ICML 2019): the objective
  L_ab(x) = E_q(z|x)[log p(x|z)] - beta * KL(q(z|x) || p(z)) - alpha * D(q(z), p(z))
with structured priors p(z) (anisotropic Gaussian, Student-t, spike-and-slab, mixture).

Importing tfdecomp changes nothing in the process (no environment variables, no file
descriptors, no warning filters); TensorFlow starts as it always does. The command-line entry
points (`trainers/`) quiet TensorFlow's start-up themselves.

Modules: `configs` (settings and presets), `builders` (config -> model), `training` (the
procedure), `runs` (the run directory), `data` / `datasets` (pipelines and the data-set
registry), `priors`, `posteriors`, `likelihoods`, `divergences`, `objectives`, `networks`,
`model`, `schedules`, `seeds`, `callbacks`, `evaluation`, `metrics`, `plots`, `sweeps` (grids of
runs, results tables), `sweep_plots`, `reproduce` (the paper's claims).
"""

from tfdecomp import divergences
from tfdecomp import ground_truth
from tfdecomp import likelihoods
from tfdecomp import objectives
from tfdecomp import posteriors
from tfdecomp import priors
from tfdecomp import registry
from tfdecomp import seeds
from tfdecomp.divergences import inclusive_kl
from tfdecomp.divergences import mmd
from tfdecomp.objectives import combine_terms
from tfdecomp.objectives import decomposition_loss
from tfdecomp.objectives import decomposition_terms
from tfdecomp.objectives import iwae_bound

__version__ = "0.1.0"

# Submodules that pull in heavier dependencies (TFDS, scikit-learn, matplotlib) load on first use:
# `tfdecomp.data.load(...)` works after a plain `import tfdecomp`.
_LAZY_SUBMODULES = ("builders", "callbacks", "configs", "data", "datasets", "evaluation", "metrics",
                    "model", "networks", "plots", "reproduce", "runs", "schedules", "sweep_plots",
                    "sweeps", "tensorboard", "training")


def __getattr__(name):
  if name in _LAZY_SUBMODULES:
    import importlib  # pylint: disable=g-import-not-at-top
    return importlib.import_module(f"tfdecomp.{name}")
  if name == "DecompVAE":
    from tfdecomp.model import DecompVAE  # pylint: disable=g-import-not-at-top
    return DecompVAE
  raise AttributeError(f"module 'tfdecomp' has no attribute {name!r}")

__all__ = [
    "DecompVAE",
    "builders",
    "callbacks",
    "configs",
    "combine_terms",
    "data",
    "datasets",
    "decomposition_loss",
    "decomposition_terms",
    "divergences",
    "evaluation",
    "ground_truth",
    "inclusive_kl",
    "iwae_bound",
    "likelihoods",
    "metrics",
    "mmd",
    "model",
    "networks",
    "objectives",
    "plots",
    "posteriors",
    "priors",
    "registry",
    "reproduce",
    "runs",
    "schedules",
    "seeds",
    "sweep_plots",
    "sweeps",
    "tensorboard",
    "training",
]
