"""Evaluation metrics: disentanglement, sparsity, clustering and likelihood.

Supervised disentanglement metrics share disentanglement_lib's signature
`metric(ground_truth, representation_fn, seed=0, **sampling_args) -> dict` and return keys.
"""

from tfdecomp.metrics.beta_vae import beta_vae_score
from tfdecomp.metrics.clustering import cluster_assignments
from tfdecomp.metrics.clustering import clustering_mmd
from tfdecomp.metrics.clustering import clustering_scores
from tfdecomp.metrics.clustering import matched_accuracy
from tfdecomp.metrics.dci_scores import dci
from tfdecomp.metrics.factor_vae import factor_vae_score
from tfdecomp.metrics.likelihood import likelihood_scores
from tfdecomp.metrics.mig_score import mig
from tfdecomp.metrics.modularity import modularity_explicitness
from tfdecomp.metrics.sap_score import sap
from tfdecomp.metrics.sparsity import hoyer_per_example
from tfdecomp.metrics.sparsity import hoyer_sparsity
from tfdecomp.metrics.sparsity import per_class_latent_magnitude
from tfdecomp.metrics.sparsity import sparsity_scores
from tfdecomp.metrics.student_t import student_t_to_normal

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
    "cluster_assignments",
    "clustering_mmd",
    "clustering_scores",
    "dci",
    "factor_vae_score",
    "hoyer_per_example",
    "hoyer_sparsity",
    "likelihood_scores",
    "matched_accuracy",
    "mig",
    "modularity_explicitness",
    "per_class_latent_magnitude",
    "sap",
    "sparsity_scores",
    "student_t_to_normal",
]
