"""Schedules for the objective's weights beta and alpha.

A schedule is a pure function of the optimizer step (as disentanglement_lib's `anneal`): the model
calls `schedule(optimizer.iterations)` inside its training step, so no counter is mutated by a
loss or a callback and a run restored from a checkpoint (which restores `iterations`) resumes
with the same weights. Schedules are Keras-serializable; `get` turns a number into `Constant`.

  Constant(value):                          w(t) = value
  LinearWarmup(value, warmup_steps, start=0., delay_steps=0):
      w(t) = start                                                  for t < delay_steps
           = start + (value - start) * (t - delay_steps) / warmup_steps   while warming up
           = value                                                  afterwards
  Cyclical(value, period_steps, ramp_fraction=0.5, start=0.):
      cyclical annealing (Fu et al., NAACL 2019): within each period of `period_steps`, a linear
      ramp from start to value over the first ramp_fraction of the period, then flat at value.
"""

import numbers

import keras
from keras import ops

from tfdecomp._config_object import ConfigObject

__all__ = ["Schedule", "Constant", "LinearWarmup", "Cyclical", "get", "serialize",
           "deserialize"]


class Schedule(ConfigObject):
  """Base class: a float32 weight as a function of the optimizer step.

  Subclasses implement `__call__(step)` with backend ops (so it runs inside `tf.function` and XLA)
  and `get_config()`.
  """

  def __call__(self, step):
    """Returns the weight at `step` (an integer scalar tensor or int), float32 scalar tensor."""
    raise NotImplementedError

  def get_config(self):
    raise NotImplementedError


def _check_non_negative(name, value):
  if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
    raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
  return float(value)


def _step(step):
  return ops.cast(step, "float32")


@keras.saving.register_keras_serializable(package="tfdecomp")
class Constant(Schedule):
  """w(t) = value.

  Args:
    value: the weight, >= 0.

  Raises:
    ValueError: if value is negative or not a number.
  """

  def __init__(self, value):
    self.value = _check_non_negative("value", value)

  def __call__(self, step=None):
    del step
    return ops.convert_to_tensor(self.value, "float32")

  def get_config(self):
    return {"value": self.value}


@keras.saving.register_keras_serializable(package="tfdecomp")
class LinearWarmup(Schedule):
  """Linear warm-up from `start` to `value` after `delay_steps`, over `warmup_steps` steps.

  Args:
    value: the final weight, >= 0.
    warmup_steps: length of the linear ramp in optimizer steps, >= 1.
    start: the initial weight, >= 0.
    delay_steps: steps held at `start` before the ramp, >= 0.

  Raises:
    ValueError: for negative weights or step counts out of range.
  """

  def __init__(self, value, warmup_steps, start=0.0, delay_steps=0):
    self.value = _check_non_negative("value", value)
    self.start = _check_non_negative("start", start)
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 1:
      raise ValueError(f"warmup_steps must be a positive integer, got {warmup_steps!r}.")
    if isinstance(delay_steps, bool) or not isinstance(delay_steps, int) or delay_steps < 0:
      raise ValueError(f"delay_steps must be a non-negative integer, got {delay_steps!r}.")
    self.warmup_steps = warmup_steps
    self.delay_steps = delay_steps

  def __call__(self, step):
    fraction = ops.clip((_step(step) - self.delay_steps) / self.warmup_steps, 0.0, 1.0)
    return ops.cast(self.start + (self.value - self.start) * fraction, "float32")

  def get_config(self):
    return {"value": self.value, "warmup_steps": self.warmup_steps, "start": self.start,
            "delay_steps": self.delay_steps}


@keras.saving.register_keras_serializable(package="tfdecomp")
class Cyclical(Schedule):
  """Cyclical annealing: repeated linear ramps from `start` to `value`.

  Args:
    value: the weight at the top of each ramp, >= 0.
    period_steps: length of a cycle in optimizer steps, >= 1.
    ramp_fraction: fraction of a cycle spent ramping, in (0, 1].
    start: the weight at the start of each cycle, >= 0.

  Raises:
    ValueError: for negative weights or arguments out of range.
  """

  def __init__(self, value, period_steps, ramp_fraction=0.5, start=0.0):
    self.value = _check_non_negative("value", value)
    self.start = _check_non_negative("start", start)
    if isinstance(period_steps, bool) or not isinstance(period_steps, int) or period_steps < 1:
      raise ValueError(f"period_steps must be a positive integer, got {period_steps!r}.")
    if not 0.0 < ramp_fraction <= 1.0:
      raise ValueError(f"ramp_fraction must be in (0, 1], got {ramp_fraction!r}.")
    self.period_steps = period_steps
    self.ramp_fraction = float(ramp_fraction)

  def __call__(self, step):
    phase = ops.mod(_step(step), float(self.period_steps)) / self.period_steps
    fraction = ops.minimum(phase / self.ramp_fraction, 1.0)
    return ops.cast(self.start + (self.value - self.start) * fraction, "float32")

  def get_config(self):
    return {"value": self.value, "period_steps": self.period_steps,
            "ramp_fraction": self.ramp_fraction, "start": self.start}


def serialize(schedule):
  """Returns a JSON-able dict for `schedule` (a `Schedule`)."""
  return keras.saving.serialize_keras_object(schedule)


def deserialize(config):
  """Inverse of `serialize`."""
  return keras.saving.deserialize_keras_object(config)


def get(identifier, name="weight"):
  """Turns a number, a `Schedule` or a serialized schedule into a `Schedule`.

  Args:
    identifier: a non-negative number (-> `Constant`), a `Schedule`, or a dict from `serialize`.
    name: what the weight is called in error messages (e.g. "beta").

  Returns:
    A `Schedule`.

  Raises:
    ValueError: if `identifier` is none of these, or a negative number.
  """
  if isinstance(identifier, Schedule):
    return identifier
  if isinstance(identifier, dict):
    schedule = deserialize(identifier)
    if not isinstance(schedule, Schedule):
      raise ValueError(f"{name} config does not describe a schedule: {identifier!r}.")
    return schedule
  if isinstance(identifier, numbers.Real) and not isinstance(identifier, bool):
    if not identifier >= 0:
      raise ValueError(f"{name} must be >= 0, got {identifier!r}.")
    return Constant(identifier)
  raise ValueError(
      f"{name} must be a non-negative number or a tfdecomp.schedules.Schedule, "
      f"got {identifier!r}.")
