"""Test-set likelihood: ELBO, its reconstruction and KL terms, and the IWAE estimate of log p(x).

Mathieu et al. (2019) report log-likelihoods as the importance-weighted bound (Burda et al. 2016)
with K = 1000 samples. The model is passed as callables (an encoder giving q(z|x), a likelihood
function z -> p(x|z), a prior), so any Keras model, SavedModel or plain function can be scored.
"""

from typing import Callable, Dict, Iterable, Union

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdecomp import objectives
from tfdecomp import posteriors
from tfdecomp import seeds

tfd = tfp.distributions

EncodeFn = Callable[[tf.Tensor], Union[tfd.Distribution, tuple]]


def _posterior(encode_fn: EncodeFn, x) -> tfd.Distribution:
  out = encode_fn(x)
  if isinstance(out, tfd.Distribution):
    return out
  if isinstance(out, (tuple, list)) and len(out) == 2:
    return posteriors.diagonal_gaussian(*out)
  raise ValueError("encode_fn must return a tfd.Distribution or a (loc, scale) pair, got "
                   f"{type(out).__name__}.")


def _batches(data):
  if isinstance(data, (np.ndarray, tf.Tensor)):
    yield data
    return
  for batch in data:
    if isinstance(batch, dict):
      batch = batch.get("image", batch.get("x"))
    elif isinstance(batch, (tuple, list)):
      batch = batch[0]
    yield batch


def _num_examples(data):
  """Examples in `data` when known without iterating it (arrays, lists of arrays), else None."""
  if isinstance(data, (np.ndarray, tf.Tensor)):
    return int(data.shape[0])
  if isinstance(data, (list, tuple)) and all(hasattr(b, "shape") for b in data):
    return sum(int(b.shape[0]) for b in data)
  return None


def likelihood_scores(data: Union[np.ndarray, Iterable], encode_fn: EncodeFn,
                      likelihood_fn: Callable[[tf.Tensor], tfd.Distribution], prior,
                      num_importance_samples: int = 1000, chunk_size: int = 100,
                      seed: int = 0, compiled: bool = True,
                      quiet: bool = False) -> Dict[str, float]:
  """Per-example averages of the ELBO terms and of the IWAE bound over a data set.

  Each batch's terms are computed in one `tf.function` (`compiled`; no XLA: for the conv64
  decoder oneDNN's transposed convolutions were about 2x faster than XLA's here), with the same
  stateless seeds, hence the same values, as eagerly. A progress bar with an ETA is shown on
  stderr when the estimate takes more than a few seconds and the number of examples is known.

  Args:
    data: an array [N, ...] or an iterable of batches (arrays, (x, y) tuples, or dicts with an
      "image" or "x" entry), e.g. a batched tf.data.Dataset.
    encode_fn: x [B, ...] -> q(z|x), a distribution with batch [B] and event [D], or a
      (loc [B, D], scale [B, D]) pair for a diagonal Gaussian (e.g. a Keras encoder).
    likelihood_fn: z [N, D] -> p(x|z) with batch [N] (see `tfdecomp.objectives`).
    prior: a `tfdecomp.priors.Prior` or a TFP distribution with event [D].
    num_importance_samples: K for the IWAE bound (1000, as the paper); 0 skips it.
    chunk_size: importance samples decoded at a time (memory: chunk_size x B latents).
    seed: int seed; each batch uses a fresh stateless seed derived from it.
    compiled: run each batch in a `tf.function` (False: eagerly, e.g. for debugging).
    quiet: show no progress bar.

  Returns:
    {"elbo", "reconstruction", "kl", "iwae" (when K > 0), "num_examples"}: means over examples in
    nats; reconstruction = -E_q log p(x|z), kl = KL(q(z|x) || p(z)), elbo = -(reconstruction + kl),
    iwae = the K-sample bound on log p(x).
  """
  from tfdecomp import progress as progress_lib  # pylint: disable=g-import-not-at-top
  if int(num_importance_samples) != num_importance_samples or num_importance_samples < 0:
    raise ValueError("num_importance_samples must be a non-negative integer, got "
                     f"{num_importance_samples!r}.")
  num_importance_samples = int(num_importance_samples)

  def batch_sums(x, elbo_seed, iwae_seed):
    """Sums over the batch of the reconstruction, KL and IWAE terms."""
    posterior = _posterior(encode_fn, x)
    terms = objectives.decomposition_terms(x, posterior, likelihood_fn, prior, divergence=None,
                                           num_samples=1, seed=elbo_seed)
    sums = [tf.reduce_sum(terms["reconstruction"]), tf.reduce_sum(terms["kl"])]
    if num_importance_samples:
      sums.append(tf.reduce_sum(objectives.iwae_bound(
          x, posterior, likelihood_fn, prior, num_samples=num_importance_samples,
          chunk_size=chunk_size, seed=iwae_seed)))
    return sums

  step_fn = tf.function(batch_sums) if compiled else batch_sums
  totals = {"reconstruction": 0.0, "kl": 0.0, "iwae": 0.0}
  count = 0
  total = _num_examples(data)
  label = (f"IWAE (K = {num_importance_samples}) over {total} examples" if num_importance_samples
           else f"ELBO over {total} examples")
  with progress_lib.Progress(label, total or 1, quiet=quiet or total is None) as bar:
    for step, x in enumerate(_batches(data)):
      x = tf.convert_to_tensor(x, tf.float32)
      sums = step_fn(x, seeds.likelihood_batch(seed, step), seeds.iwae_batch(seed, step))
      totals["reconstruction"] += float(sums[0])
      totals["kl"] += float(sums[1])
      if num_importance_samples:
        totals["iwae"] += float(sums[2])
      count += int(x.shape[0])
      bar.update(count)
  if count == 0:
    raise ValueError("data is empty.")
  scores = {"reconstruction": totals["reconstruction"] / count, "kl": totals["kl"] / count}
  scores["elbo"] = -(scores["reconstruction"] + scores["kl"])
  if num_importance_samples:
    scores["iwae"] = totals["iwae"] / count
  scores["num_examples"] = count
  return scores
