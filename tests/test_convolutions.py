"""The fast 4x4/2 convolutions against TensorFlow's conv kernels and Keras's layers."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdecomp import convolutions

# (batch, size, in channels, out channels): the layer shapes conv64 and dcgan32 use, shrunk.
SHAPES = [(3, 8, 1, 5), (2, 8, 6, 3), (2, 16, 4, 1), (1, 4, 3, 2)]


def _grads(fn, x, kernel):
  with tf.GradientTape() as tape:
    tape.watch([x, kernel])
    y = fn(x, kernel)
    loss = tf.reduce_sum(y * tf.sin(y))            # A non-trivial upstream gradient.
  return [y, *tape.gradient(loss, [x, kernel])]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["conv_s2d", "conv_patches"])
def test_conv_matches_tf(shape, name):
  b, h, c, f = shape
  rng = np.random.default_rng(1)
  x = tf.constant(rng.normal(size=[b, h, h, c]), tf.float64)
  kernel = tf.constant(rng.normal(size=[4, 4, c, f]), tf.float64)
  got = _grads(getattr(convolutions, name), x, kernel)
  want = _grads(lambda x, k: tf.nn.conv2d(x, k, 2, "SAME"), x, kernel)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_conv_transpose_matches_tf(shape):
  b, h, c, f = shape
  rng = np.random.default_rng(2)
  x = tf.constant(rng.normal(size=[b, h, h, c]), tf.float64)
  kernel = tf.constant(rng.normal(size=[4, 4, f, c]), tf.float64)
  got = _grads(convolutions.conv_transpose_subpixel, x, kernel)
  want = _grads(lambda x, k: tf.nn.conv2d_transpose(x, k, [b, 2 * h, 2 * h, f], 2, "SAME"),
                x, kernel)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("transpose,c,f", [(False, 1, 4), (False, 3, 2), (True, 3, 1)])
def test_layers_match_keras(jit, transpose, c, f):
  """Same variables, outputs and gradients as Keras's layers, eager, tf.function and XLA."""
  ours_cls, keras_cls = ((convolutions.Conv2DTranspose, keras.layers.Conv2DTranspose) if transpose
                         else (convolutions.Conv2D, keras.layers.Conv2D))
  kwargs = dict(filters=f, kernel_size=4, strides=2, padding="same", activation="relu")
  ours, ref = ours_cls(**kwargs, name="a"), keras_cls(**kwargs, name="a")
  x = tf.constant(np.random.default_rng(3).normal(size=[2, 8, 8, c]).astype(np.float32))
  ours.build(x.shape)
  ref.build(x.shape)
  assert [(v.path, v.shape) for v in ours.weights] == [(v.path, v.shape) for v in ref.weights]
  ref.set_weights([w + 0.1 for w in ours.get_weights()])
  ours.set_weights(ref.get_weights())

  @tf.function(jit_compile=jit)
  def run(layer):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x)
      loss = tf.reduce_sum(tf.square(y))
    return [y, *tape.gradient(loss, [x, *layer.trainable_variables])]

  for g, w in zip(run(ours), run(ref)):
    np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-4)


def test_keras_round_trip(tmp_path):
  from tfdecomp import networks  # pylint: disable=g-import-not-at-top
  _, decoder = networks.conv64(latent_dim=3)
  encoder, _ = networks.dcgan32(latent_dim=2)
  for model, shape in ((decoder, (2, 3)), (encoder, (2, 32, 32, 1))):
    x = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    path = os.path.join(tmp_path, f"{model.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert any(isinstance(l, (convolutions.Conv2D, convolutions.Conv2DTranspose))
               for l in loaded.layers)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)


def test_xla_detection():
  seen = []

  def probe():
    seen.append(convolutions._in_xla())  # pylint: disable=protected-access
    return tf.constant(0.0)

  tf.function(probe, jit_compile=True)()
  tf.function(probe)()
  probe()
  assert seen == [True, False, False]
