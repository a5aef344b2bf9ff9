"""Keras' TensorFlow ops, computed so that every x86-64 CPU gives the same bits.

keyspot.cpu pins the kernels that TensorFlow, numpy and OpenBLAS pick by
instruction set. Five ops of a DS-CNN's training and inference depend on
the CPU in other ways, and together they made the same features train
another model on an AMD EPYC than on the machine that wrote dvc.lock. Each
was found by running it here and under QEMU's emulated x86-64 CPU (other
cache sizes, other approximate instructions, the same binaries):

- Conv2DBackpropFilter and DepthwiseConv2dNativeBackpropFilter sum over
  batch x height x width in blocks sized by the CPU's caches, and the first
  also by the number of threads: a kernel's gradient rounds otherwise on
  another CPU.
- AvgPoolGrad divides by the window's size on one CPU and multiplies by
  its reciprocal on another.
- Rsqrt (batch normalisation) and Softmax start from the CPU's approximate
  reciprocal instructions (rsqrtps, rcpps), whose last bits Intel and AMD
  define differently.

`install()` replaces them in Keras' TensorFlow backend for 2-D,
channels-last, undilated convolutions (every architecture keyspot has):
a kernel's gradient is a sum of per-example matrix products over at most
`ROWS` output positions each (short enough that neither CPU measured cut
it into cache blocks) and a plain reduction over the batch; batch normalisation divides by a
square root, which is correctly rounded; softmax divides by its sum; a
pool's gradient divides by the window's size (non-overlapping windows). The
forward convolutions, the input gradients and the dense layers' matrix
products are left as they are: their sums are short (a dense kernel's
gradient sums over one batch) and measured the same on both CPUs. Other
convolutions and pools keep TensorFlow's kernels.

The layers stay Keras' own, so model files are unchanged in form. A
SavedModel exported for conversion keeps TensorFlow's Softmax
(`install(softmax=False)`), the one op TFLite and TFLite Micro run for it.
The patched functions are those of the pinned Keras (requirements.lock).
"""

from __future__ import annotations

import math

ROWS = 128   # output positions per partial product of a kernel's gradient

_originals: dict[str, object] = {}


def install(softmax: bool = True) -> None:
    """Patch Keras' TensorFlow backend in this process; idempotent."""
    from keras.src.backend.tensorflow import nn

    for name, replacement in (("conv", conv), ("depthwise_conv", depthwise_conv), ("average_pool", average_pool),
                              ("batch_normalization", batch_normalization), ("softmax", exact_softmax)):
        _originals.setdefault(name, getattr(nn, name))
        setattr(nn, name, replacement if softmax or name != "softmax" else _originals[name])


def _plain_2d(inputs, data_format, dilation_rate) -> bool:
    from keras.src import backend

    dilations = (dilation_rate,) * 2 if isinstance(dilation_rate, int) else tuple(dilation_rate or (1, 1))
    return (len(inputs.shape) == 4 and backend.standardize_data_format(data_format) == "channels_last"
            and dilations == (1, 1) and None not in inputs.shape[1:])


def _pair(value) -> tuple[int, int]:
    """Keras' int-or-pair arguments (strides, pool size) as a pair."""
    return (value, value) if isinstance(value, int) else tuple(value)


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    import tensorflow as tf

    inputs, kernel = tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel)
    if not _plain_2d(inputs, data_format, dilation_rate) or inputs.shape[-1] != kernel.shape[-2]:
        return _originals["conv"](inputs, kernel, strides, padding, data_format, dilation_rate)
    kh, kw, _, _ = kernel.shape
    step = [1, *_pair(strides), 1]
    pad = padding.upper()

    @tf.custom_gradient
    def convolve(x, w):
        def gradient(dy):
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                                strides=step, padding=pad)
            patches = x if (kh, kw, *step) == (1, 1, 1, 1, 1, 1) else tf.image.extract_patches(
                x, [1, kh, kw, 1], step, [1, 1, 1, 1], pad)
            return dx, tf.reshape(sum_of_products(patches, dy), w.shape)
        return tf.nn.conv2d(x, w, step, pad), gradient

    return convolve(inputs, kernel)


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    import tensorflow as tf

    inputs, kernel = tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel)
    if not _plain_2d(inputs, data_format, dilation_rate) or kernel.shape[-1] != 1:
        return _originals["depthwise_conv"](inputs, kernel, strides, padding, data_format, dilation_rate)
    kh, kw, _, _ = kernel.shape
    sh, sw = _pair(strides)
    step = [1, sh, sw, 1]
    pad = padding.upper()
    (top, bottom), (left, right) = (_same_padding(inputs.shape[1], kh, sh), _same_padding(inputs.shape[2], kw, sw)) \
        if pad == "SAME" else ((0, 0), (0, 0))

    if sh != sw:
        return _unequal_strides_depthwise(inputs, kernel, sh, sw, (top, bottom, left, right))

    @tf.custom_gradient
    def convolve(x, w):
        def gradient(dy):
            dx = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                                               strides=step, padding=pad)
            padded = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
            return dx, _depthwise_kernel_gradient(padded, dy, w.shape, sh, sw)
        return tf.nn.depthwise_conv2d(x, w, step, pad), gradient

    return convolve(inputs, kernel)


def _depthwise_kernel_gradient(padded, dy, shape, sh: int, sw: int):
    """Each tap's gradient: its shifted, strided input times dy, summed per
    example and then over the batch (plain reductions)."""
    import tensorflow as tf

    rows, cols = dy.shape[1], dy.shape[2]
    taps = [tf.reduce_sum(tf.reduce_sum(
                padded[:, i:i + (rows - 1) * sh + 1:sh, j:j + (cols - 1) * sw + 1:sw, :] * dy, axis=[1, 2]), axis=0)
            for i in range(shape[0]) for j in range(shape[1])]
    return tf.reshape(tf.stack(taps), shape)


def _unequal_strides_depthwise(inputs, kernel, sh: int, sw: int, pads: tuple[int, int, int, int]):
    """A depthwise convolution stepping `sh` rows and `sw` columns: the
    stride-1 convolution of the padded input at every sh-th row and sw-th
    column. TensorFlow's own kernel for unequal strides is among its oneDNN
    ops, which it turns on only for some CPUs (AVX-512 VNNI, BF16 or AMX);
    Eigen's, on the others, refuses them."""
    import tensorflow as tf

    top, bottom, left, right = pads
    one = [1, 1, 1, 1]

    @tf.custom_gradient
    def convolve(x, w):
        padded = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
        full = tf.nn.depthwise_conv2d(padded, w, one, "VALID")
        y = full[:, ::sh, ::sw, :]

        def gradient(dy):
            # dy back on the stride-1 grid, zeros between (adding a zero is exact).
            _, rows, cols, ch = dy.shape
            spread = tf.reshape(tf.pad(dy[:, :, None, :, None, :], [[0, 0], [0, 0], [0, sh - 1], [0, 0],
                                                                    [0, sw - 1], [0, 0]]),
                                [-1, rows * sh, cols * sw, ch])[:, :full.shape[1], :full.shape[2], :]
            dx = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(input_sizes=tf.shape(padded), filter=w,
                                                               out_backprop=spread, strides=one, padding="VALID")
            return dx[:, top:top + x.shape[1], left:left + x.shape[2], :], \
                _depthwise_kernel_gradient(padded, dy, w.shape, sh, sw)
        return y, gradient

    return convolve(inputs, kernel)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    import tensorflow as tf

    inputs = tf.convert_to_tensor(inputs)
    size = _pair(pool_size)
    if (not _plain_2d(inputs, data_format, 1) or padding.lower() != "valid" or _pair(strides or pool_size) != size
            or inputs.shape[1] % size[0] or inputs.shape[2] % size[1]):
        return _originals["average_pool"](inputs, pool_size, strides, padding, data_format)
    count = float(size[0] * size[1])

    @tf.custom_gradient
    def pool(x):
        def gradient(dy):
            # Each input's share of its window's gradient, divided (not
            # multiplied by a reciprocal, as some CPUs' kernels do).
            share = dy / count
            return tf.repeat(tf.repeat(share, size[0], axis=1), size[1], axis=2)
        return tf.nn.avg_pool2d(x, size, size, "VALID"), gradient

    return pool(inputs)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding before and after one dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def sum_of_products(a, b):
    """sum over batch and positions of a[..., :, None] * b[..., None, :], for
    (batch, height, width, p) and (batch, height, width, q): matrix products
    of at most ROWS positions, then a sum over them."""
    import tensorflow as tf

    positions = a.shape[1] * a.shape[2]
    chunks = -(-positions // ROWS)
    extra = chunks * ROWS - positions if chunks > 1 else 0
    rows = positions + extra

    def pieces(t):
        t = tf.reshape(t, [-1, positions, t.shape[-1]])
        if extra:
            t = tf.pad(t, [[0, 0], [0, extra], [0, 0]])
        return tf.reshape(t, [-1, rows // chunks, t.shape[-1]])

    return tf.reduce_sum(tf.linalg.matmul(pieces(a), pieces(b), transpose_a=True), axis=0)


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    """tf.nn.batch_normalization's formula with 1 / sqrt for its rsqrt."""
    import tensorflow as tf

    if axis != -1:
        shape = [1] * len(x.shape)
        shape[axis] = mean.shape[0]
        mean, variance = tf.reshape(mean, shape), tf.reshape(variance, shape)
        offset = None if offset is None else tf.reshape(offset, shape)
        scale = None if scale is None else tf.reshape(scale, shape)
    # DivNoNan, not a division: Grappler rewrites x / sqrt(y) in a graph as
    # x * rsqrt(y), the approximate op this avoids.
    inv = tf.math.divide_no_nan(tf.ones_like(variance), tf.sqrt(variance + epsilon))
    if scale is not None:
        inv = inv * scale
    shift = -mean * inv if offset is None else offset - mean * inv
    return x * tf.cast(inv, x.dtype) + tf.cast(shift, x.dtype)


def exact_softmax(x, axis=-1):
    """exp(x - max) / its sum; the loss still reads the logits, as Keras'
    softmax leaves them."""
    import tensorflow as tf

    if axis is None:
        return _originals["softmax"](x, axis)
    e = tf.exp(x - tf.reduce_max(x, axis=axis, keepdims=True))
    output = e / tf.reduce_sum(e, axis=axis, keepdims=True)
    output._keras_logits = x
    return output
