"""Evaluation metrics: disentanglement, sparsity, clustering and likelihood.

Supervised disentanglement metrics share disentanglement_lib's signature
`metric(ground_truth, representation_fn, seed=0, **sampling_args) -> dict` and return keys.
"""

from tfdecomp.metrics.beta_vae import beta_vae_score
from tfdecomp.metrics.dci import dci
from tfdecomp.metrics.factor_vae import factor_vae_score
from tfdecomp.metrics.mig import mig
from tfdecomp.metrics.modularity import modularity_explicitness
from tfdecomp.metrics.sap import sap

#: The supervised disentanglement metrics by name.
DISENTANGLEMENT_METRICS = {
    "factor_vae": factor_vae_score,
    "beta_vae": beta_vae_score,
    "mig": mig,
    "dci": dci,
    "sap": sap,
    "modularity_explicitness": modularity_explicitness,
}

__all__ = [
    "DISENTANGLEMENT_METRICS",
    "beta_vae_score",
    "dci",
    "factor_vae_score",
    "mig",
    "modularity_explicitness",
    "sap",
]
