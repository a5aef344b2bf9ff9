"""keyspot.portable_ops computes what TensorFlow's ops compute, up to
rounding: outputs and gradients of convolutions, depthwise convolutions and
average pools, batch normalisation and softmax. (That their bits are the
same on another CPU is tests/test_train.py's.)"""

from __future__ import annotations

import numpy as np
import pytest

from keyspot import portable_ops

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def backend():
    """Keras' TensorFlow backend with the portable ops, and its originals."""
    from keras.src.backend.tensorflow import nn

    portable_ops.install()
    return nn, portable_ops._originals


def _outputs_and_gradients(f, *args):
    args = [tf.constant(a) for a in args]
    with tf.GradientTape() as tape:
        tape.watch(args)
        y = f(*args)
        loss = tf.reduce_sum(y * tf.cos(y))   # a gradient that is not all ones
    return [y.numpy(), *[g.numpy() for g in tape.gradient(loss, args)]]


def _onednn_ops() -> bool:
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def _close(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


CONVOLUTIONS = [  # name, input shape, kernel shape, strides, padding
    ("conv", (3, 49, 10, 1), (10, 4, 1, 8), (2, 2), "same"),     # DS-CNN's first layer
    ("conv", (3, 25, 5, 8), (1, 1, 8, 8), (1, 1), "same"),       # pointwise
    ("conv", (2, 20, 20, 4), (3, 3, 4, 6), (1, 1), "valid"),     # over ROWS positions: in pieces
    ("conv", (2, 21, 9, 3), (5, 3, 3, 4), (2, 3), "same"),
    ("depthwise_conv", (3, 25, 5, 8), (3, 3, 8, 1), (1, 1), "same"),
    ("depthwise_conv", (3, 24, 9, 8), (3, 3, 8, 1), (2, 2), "same"),
    ("depthwise_conv", (3, 24, 9, 8), (5, 3, 8, 1), (2, 1), "valid"),
]


@pytest.mark.parametrize("name,x_shape,k_shape,strides,padding", CONVOLUTIONS)
def test_convolutions_and_their_gradients_are_tensorflows(backend, name, x_shape, k_shape, strides, padding):
    nn, originals = backend
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(k_shape).astype(np.float32)
    ours = _outputs_and_gradients(lambda x, k: getattr(nn, name)(x, k, strides, padding), x, k)
    if name == "depthwise_conv" and strides[0] != strides[1] and not _onednn_ops():
        # TensorFlow has a depthwise convolution with unequal strides only
        # among its oneDNN ops, which it turns on for CPUs with AVX-512 VNNI,
        # BF16 or AMX; Eigen's, on this CPU, refuses them.
        theirs = _outputs_and_gradients(lambda x, k: _depthwise_from_slices(x, k, strides, padding),
                                        x.astype(np.float64), k.astype(np.float64))
    else:
        theirs = _outputs_and_gradients(lambda x, k: originals[name](x, k, strides, padding), x, k)
    _close(ours, theirs)


def _depthwise_from_slices(x, k, strides, padding):
    """A depthwise convolution as the sum of its taps' shifted, strided
    slices times their weights: TensorFlow differentiates it."""
    (kh, kw), (sh, sw) = k.shape[:2], strides
    rows, cols = -(-(x.shape[1] - (kh if padding == "valid" else 1) + 1) // sh), \
        -(-(x.shape[2] - (kw if padding == "valid" else 1) + 1) // sw)
    if padding == "same":
        pad_h, pad_w = max((rows - 1) * sh + kh - x.shape[1], 0), max((cols - 1) * sw + kw - x.shape[2], 0)
        x = tf.pad(x, [[0, 0], [pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
    return tf.add_n([x[:, i:i + (rows - 1) * sh + 1:sh, j:j + (cols - 1) * sw + 1:sw, :] * k[i, j, :, 0]
                     for i in range(kh) for j in range(kw)])


@pytest.mark.parametrize("pool", [(25, 5), (2, 2)])
def test_average_pools_and_their_gradients_are_tensorflows(backend, pool):
    nn, originals = backend
    x = np.random.default_rng(2).standard_normal((3, 24 if pool == (2, 2) else 25, 4 if pool == (2, 2) else 5, 6))
    x = x.astype(np.float32)
    _close(_outputs_and_gradients(lambda x: nn.average_pool(x, pool, None, "valid"), x),
           _outputs_and_gradients(lambda x: originals["average_pool"](x, pool, None, "valid"), x))


def test_other_convolutions_keep_tensorflows_kernels(backend):
    """A dilated convolution or an overlapping pool is not rewritten: the
    same bits as the original, not merely close."""
    nn, originals = backend
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((2, 12, 12, 3)).astype(np.float32), rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(nn.conv(x, k, 1, "same", None, 2).numpy(),
                                  originals["conv"](x, k, 1, "same", None, 2).numpy())
    np.testing.assert_array_equal(nn.average_pool(x, (3, 3), (1, 1), "valid").numpy(),
                                  originals["average_pool"](x, (3, 3), (1, 1), "valid").numpy())


def test_batch_normalisation_and_softmax_are_tensorflows(backend):
    nn, originals = backend
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    mean, variance = rng.standard_normal(6).astype(np.float32), rng.uniform(0.1, 2, 6).astype(np.float32)
    gamma, beta = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    _close(_outputs_and_gradients(lambda x: nn.batch_normalization(x, mean, variance, -1, beta, gamma), x),
           _outputs_and_gradients(lambda x: originals["batch_normalization"](x, mean, variance, -1, beta, gamma), x))
    logits = rng.standard_normal((7, 12)).astype(np.float32) * 4
    probabilities = nn.softmax(tf.constant(logits))
    np.testing.assert_allclose(probabilities.numpy(), originals["softmax"](tf.constant(logits)).numpy(), rtol=1e-5)
    assert probabilities._keras_logits is not None, "Keras' losses read the logits behind a softmax"
