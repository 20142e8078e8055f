"""Test set-up: quiet TensorFlow, and two logical CPU devices for tf.distribute tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfdecomp  # noqa: E402,F401  (imports TensorFlow quietly)
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
if _cpus:
  try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
  except RuntimeError:  # Devices were already initialised by an earlier import.
    pass


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def two_replica_strategy():
  """One MirroredStrategy over the two logical CPUs, shared by all tests.

  Two strategy objects in one process allocate the same collective instance keys, and TF's shared
  collective executor then aborts all_gather ("Collective instance ... expected type ..."); so every
  distributed test uses this one.
  """
  if len(tf.config.list_logical_devices("CPU")) < 2:
    pytest.skip("needs 2 logical CPU devices")
  return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
