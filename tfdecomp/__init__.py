"""tfdecomp: decomposition VAEs in TensorFlow, Keras 3 and TensorFlow Probability.

Implements "Disentangling Disentanglement in Variational Autoencoders" (Mathieu, Rainforth,
Siddharth & Teh, ICML 2019): the objective
  L_ab(x) = E_q(z|x)[log p(x|z)] - beta * KL(q(z|x) || p(z)) - alpha * D(q(z), p(z))
with structured priors p(z) (anisotropic Gaussian, Student-t, spike-and-slab, mixture).
"""

from tfdecomp._quiet import import_tensorflow_quietly as _import_tensorflow_quietly

_import_tensorflow_quietly()

# pylint: disable=g-import-not-at-top,wrong-import-position
from tfdecomp import ground_truth

__version__ = "0.1.0"

__all__ = ["ground_truth"]
