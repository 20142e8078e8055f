"""Tests for tfdecomp.schedules: values, XLA, serialization, argument checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdecomp import schedules


def test_constant_and_get():
  assert float(schedules.get(2.5)(7)) == 2.5
  s = schedules.Constant(1.0)
  assert schedules.get(s) is s
  assert schedules.get(schedules.serialize(s)) == s


def test_linear_warmup_values():
  s = schedules.LinearWarmup(1.0, warmup_steps=10, start=0.0, delay_steps=5)
  got = [float(s(t)) for t in (0, 5, 10, 15, 100)]
  np.testing.assert_allclose(got, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)


def test_cyclical_values():
  s = schedules.Cyclical(2.0, period_steps=10, ramp_fraction=0.5)
  got = [float(s(t)) for t in (0, 2, 5, 9, 10, 12)]
  np.testing.assert_allclose(got, [0.0, 0.8, 2.0, 2.0, 0.0, 0.8], atol=1e-6)


def test_schedule_under_xla_with_tensor_step():
  s = schedules.LinearWarmup(3.0, warmup_steps=4)
  f = tf.function(lambda step: s(step), jit_compile=True)
  assert float(f(tf.constant(2, tf.int64))) == pytest.approx(1.5)


def test_serialization_round_trip():
  for s in (schedules.LinearWarmup(1.0, 100, start=0.1, delay_steps=3),
            schedules.Cyclical(5.0, 40, 0.25)):
    again = keras.saving.deserialize_keras_object(schedules.serialize(s))
    assert again == s and float(again(17)) == pytest.approx(float(s(17)))


def test_bad_arguments():
  with pytest.raises(ValueError, match="beta must be >= 0"):
    schedules.get(-1.0, "beta")
  with pytest.raises(ValueError, match="warmup_steps"):
    schedules.LinearWarmup(1.0, 0)
  with pytest.raises(ValueError, match="alpha"):
    schedules.get("big", "alpha")
