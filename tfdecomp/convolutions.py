"""4x4 stride-2 "same" convolutions written as space-to-depth / sub-pixel matmuls.

Every convolution of the paper's conv64 and dcgan32 networks is 4x4 with stride 2 and "same"
padding (one pixel each side). With k = 2q + p (q, p in {0, 1}) the kernel splits into 2x2
blocks, and

  conv:       y[i]  = sum_k xp[2i + k] w[k]      (xp = x padded by 1)
                    = sum_q S[i + q, p] w[2q + p] (S = space_to_depth(xp, 2))
  transposed: out[2i + k - 1] += x[i] w[k]       (the adjoint of the conv above)
              -> Z = x @ W [B, H, W, (q1, q2), (p1, p2, F)], four shifted adds, depth_to_space.

`Conv2D` / `Conv2DTranspose` below are `keras.layers.Conv2D` / `Conv2DTranspose` with the same
variables (kernel [4, 4, C_in, F] / [4, 4, F, C_in], bias [F]), names and config; only the
computation of the convolution differs, and only where it measured faster on CPU
(benchmarks/conv_speed.py, AVX-512 Xeon, forward + backward, layers of the two networks):

  * tf.function / eager (oneDNN kernels): the 1-channel-input first conv through space-to-depth
    + a dense 2x2 conv (1.3-1.4x); every other layer stays on TensorFlow's kernel, which was
    faster than both rewrites.
  * XLA (`jit_compile=True`): XLA:CPU's own convolution emitter is slow; the 1-channel first conv
    as patches + one matmul (2-3x) and the transposed convs from 8x8 inputs up as one matmul +
    depth-to-space (1.1-2x, the 1-channel 64x64 output layer 1.4-1.8x).
Other shapes, strides, paddings or data formats fall back to the Keras computation.
"""

import keras
import tensorflow as tf

__all__ = ["conv_s2d", "conv_patches", "conv_transpose_subpixel", "Conv2D", "Conv2DTranspose"]

_PAD1 = [[0, 0], [1, 1], [1, 1], [0, 0]]


def _in_xla():
  """Whether the op being traced is inside an XLA-compiled (jit_compile) function."""
  try:
    from tensorflow.python.ops import control_flow_util  # pylint: disable=g-import-not-at-top
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
  except Exception:  # pylint: disable=broad-except
    return False


def _block_kernel(kernel):
  """[4, 4, C, F] -> [2, 2, 4C, F] indexed (q1, q2, (p1, p2, c), f), k = 2q + p."""
  c, f = kernel.shape[2], kernel.shape[3]
  k = tf.reshape(kernel, [2, 2, 2, 2, c, f])              # q1 p1 q2 p2 c f
  return tf.reshape(tf.transpose(k, [0, 2, 1, 3, 4, 5]), [2, 2, 4 * c, f])


def conv_s2d(x, kernel):
  """conv2d(x, kernel, strides 2, "SAME") for a 4x4 kernel and even H, W.

  Args:
    x: [B, H, W, C].
    kernel: [4, 4, C, F].

  Returns:
    [B, H/2, W/2, F]: a 2x2 valid conv of space_to_depth(pad(x, 1), 2).
  """
  xs = tf.nn.space_to_depth(tf.pad(x, _PAD1), 2)
  return tf.nn.conv2d(xs, _block_kernel(kernel), 1, "VALID")


def conv_patches(x, kernel):
  """The same convolution as `conv_s2d` as 2x2 patches of the space-to-depth input @ kernel.

  Args:
    x: [B, H, W, C] with static H, W, C.
    kernel: [4, 4, C, F].

  Returns:
    [B, H/2, W/2, F].
  """
  h2, w2, c = x.shape[1] // 2, x.shape[2] // 2, x.shape[3]
  xs = tf.nn.space_to_depth(tf.pad(x, _PAD1), 2)
  cols = tf.concat([xs[:, q1:q1 + h2, q2:q2 + w2, :] for q1 in (0, 1) for q2 in (0, 1)], -1)
  y = tf.matmul(tf.reshape(cols, [-1, 16 * c]), tf.reshape(_block_kernel(kernel), [16 * c, -1]))
  return tf.reshape(y, [-1, h2, w2, kernel.shape[3]])


def conv_transpose_subpixel(x, kernel):
  """conv2d_transpose(x, kernel, strides 2, "SAME") for a 4x4 kernel, as matmul + depth-to-space.

  Args:
    x: [B, H, W, C] with static H, W, C.
    kernel: [4, 4, F, C] (Keras's Conv2DTranspose layout: output channels before input ones).

  Returns:
    [B, 2H, 2W, F].
  """
  h, w, c = x.shape[1], x.shape[2], x.shape[3]
  f = kernel.shape[2]
  k = tf.reshape(kernel, [2, 2, 2, 2, f, c])              # q1 p1 q2 p2 f c
  k = tf.reshape(tf.transpose(k, [5, 0, 2, 1, 3, 4]), [c, 16 * f])
  z = tf.reshape(tf.matmul(tf.reshape(x, [-1, c]), k), [-1, h, w, 4, 4 * f])
  y = tf.add_n([tf.pad(z[:, :, :, 2 * q1 + q2], [[0, 0], [q1, 1 - q1], [q2, 1 - q2], [0, 0]])
                for q1 in (0, 1) for q2 in (0, 1)])      # [B, H + 1, W + 1, 4F]
  return tf.nn.depth_to_space(y, 2)[:, 1:-1, 1:-1, :]


def _is_4x4_s2_same(layer):
  return (tuple(layer.kernel_size) == (4, 4) and tuple(layer.strides) == (2, 2)
          and layer.padding == "same" and tuple(layer.dilation_rate) == (1, 1)
          and layer.data_format == "channels_last" and keras.backend.backend() == "tensorflow")


@keras.saving.register_keras_serializable(package="tfdecomp")
class Conv2D(keras.layers.Conv2D):
  """`keras.layers.Conv2D` (same weights and config) with a faster 4x4/2 "same" computation."""

  def convolution_op(self, inputs, kernel):
    if _is_4x4_s2_same(self) and self.groups == 1:
      shape = inputs.shape
      if shape[3] == 1 and shape[1] is not None and shape[1] % 2 == 0 and shape[2] % 2 == 0:
        return conv_patches(inputs, kernel) if _in_xla() else conv_s2d(inputs, kernel)
    return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="tfdecomp")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
  """`keras.layers.Conv2DTranspose` (same weights and config), sub-pixel matmul under XLA."""

  def call(self, inputs):
    shape = inputs.shape
    if (_is_4x4_s2_same(self) and self.output_padding is None and None not in shape[1:]
        and shape[1] >= 8 and _in_xla()):
      outputs = conv_transpose_subpixel(inputs, self.kernel)
      if self.use_bias:
        outputs = outputs + self.bias
      return self.activation(outputs) if self.activation is not None else outputs
    return super().call(inputs)
