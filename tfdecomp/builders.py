"""A `DecompVAE` and its optimizer from a `Config`, through the registries.

  model = builders.build_model(config, example_data)   # networks, prior, likelihood by name
  builders.compile_model(model, config)                  # Adam (amsgrad), XLA, steps/execution

Every name in a config is looked up in its concept's registry (`networks.REGISTRY`,
`priors.REGISTRY`, `likelihoods.REGISTRY`, `divergences.REGISTRY`), so a registered prior or
network is available to configs, command lines and tests with no change here.
"""

from typing import Optional

import numpy as np

from tfdecomp import configs as configs_lib

__all__ = ["build_model", "build_optimizer", "compile_model", "prior_options"]


def prior_options(config) -> dict:
  """The prior options a config carries (each prior's factory takes the ones it uses)."""
  return {"variance_scale": config.prior_variance_scale, "learnable": config.learn_prior,
          "df": config.df, "gamma": config.gamma, "mixture_locs": config.mixture_locs}


def build_model(config, example_data, name: Optional[str] = None):
  """The DecompVAE of a resolved config (not compiled).

  Args:
    config: a resolved, validated `tfdecomp.configs.Config`.
    example_data: examples [N, *example_shape] of the training data: their shape builds the
      networks, and data-dependent priors ("anisotropic") are fitted to them.
    name: the model's name (default "<experiment>_vae").

  Returns:
    A `tfdecomp.DecompVAE`.

  Raises:
    ConfigError: if the config does not fit the data (shapes, sizes).
  """
  from tfdecomp import likelihoods  # pylint: disable=g-import-not-at-top
  from tfdecomp import model as model_lib  # pylint: disable=g-import-not-at-top
  from tfdecomp import networks  # pylint: disable=g-import-not-at-top
  from tfdecomp import priors  # pylint: disable=g-import-not-at-top
  example_data = np.asarray(example_data)
  try:
    likelihood = likelihoods.build(config.likelihood, scale=config.likelihood_scale)
    encoder, decoder = networks.build(config.network, example_data.shape[1:], config.latent_dim,
                                      params_per_channel=likelihood.params_per_channel)
    prior = priors.get(config.prior, config.latent_dim, data=example_data,
                       **prior_options(config))
    return model_lib.DecompVAE(
        encoder, decoder, prior, likelihood, beta=configs_lib.weight_schedule(config, "beta"),
        alpha=configs_lib.weight_schedule(config, "alpha"),
        divergence=config.divergence, num_samples=config.num_samples, seed=config.seed,
        name=name or f"{config.experiment}_vae")
  except configs_lib.ConfigError:
    raise
  except ValueError as e:
    raise configs_lib.ConfigError(str(e).strip().splitlines()[0]) from None


def build_optimizer(config):
  """Adam with amsgrad (betas 0.9, 0.999), as the authors' code, at the config's learning rate."""
  import keras  # pylint: disable=g-import-not-at-top
  return keras.optimizers.Adam(config.learning_rate, beta_1=0.9, beta_2=0.999, amsgrad=True)


def compile_model(model, config, steps_per_epoch: Optional[int] = None):
  """Compiles `model` with the config's optimizer, XLA setting and steps per execution.

  Args:
    model: the model (built inside the strategy's scope, if any).
    config: the config (its XLA setting applies to single-replica runs only, its steps per
      execution to single-replica and multi-worker runs).
    steps_per_epoch: steps_per_execution becomes the largest divisor of it that is <= the
      config's: a compiled call then never spans two epochs and every epoch takes exactly
      steps_per_epoch steps (with a call that does not divide the epoch, Keras can run past the
      epoch's last batch).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  steps = config.steps_per_execution
  if steps_per_epoch is not None:
    steps = max(d for d in range(1, min(steps, steps_per_epoch) + 1) if steps_per_epoch % d == 0)
  # XLA cannot compile a step over several replicas: a mirrored variable lives on every device
  # and the compiled cluster may touch only one ("Trying to access resource ... located in
  # device CPU:1 from device CPU:0", XLA's known issue). Replicated runs train without it.
  strategy = tf.distribute.get_strategy()
  jit = config.jit and strategy.num_replicas_in_sync == 1
  from tfdecomp import distribute  # pylint: disable=g-import-not-at-top
  if strategy.num_replicas_in_sync > 1 and not distribute.is_multiworker(strategy):
    # Keras 3.15's multi-step `fit` loop fails under MirroredStrategy ("You must feed a value
    # for placeholder tensor 'while/cond/Placeholder_1'"); the multi-worker loop
    # (tfdecomp.distributed_loop) runs several steps per call itself.
    steps = 1
  model.compile(optimizer=build_optimizer(config), jit_compile=jit, steps_per_execution=steps)
  return model
