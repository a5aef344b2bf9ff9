"""The int8 model as the board stores it: one zero point per weight tensor.

TFLite's converter gives every per-channel quantised tensor (each
convolution's int8 weights and int32 biases) a float scale and an int64 zero
point per output channel. In TFLite's int8 scheme those zero points are
always 0, yet they take 8 bytes each: a fifth of a small DS-CNN's flash.
TFLite Micro's allocator reads a one-element zero-point vector as that value
for every channel ("as a space-saving optimization, zero point arrays for
weights can be reduced to a single value", micro_allocator.cc) and allocates
the same per-channel array in the arena either way, so the board's copy keeps
one zero point and needs no more RAM.

TFLite's own interpreter wants as many zero points as scales and refuses such
a file. So the compact form exists only inside the firmware's model_data.c;
models/model_int8.tflite stays as TFLite writes it, for everything that runs
the model with TFLite (evaluate, keyspot listen and serve, SageMaker).
`expand_zero_points` gives TFLite's form back, to check a firmware array
against TFLite's reference kernels.
"""

from __future__ import annotations

import numpy as np

from keyspot.tflite_strip import pack, unpack


def _per_channel_constants(tree):
    """Quantisation parameters of every constant tensor with more than one scale."""
    for subgraph in tree.subgraphs or []:
        for tensor in subgraph.tensors or []:
            q = tensor.quantization
            buffer = tree.buffers[tensor.buffer] if tree.buffers and tensor.buffer < len(tree.buffers) else None
            has_data = buffer is not None and buffer.data is not None and len(buffer.data) > 0
            if q is not None and q.scale is not None and len(q.scale) > 1 and has_data:
                yield q


def _rewrite_zero_points(model: bytes, replace) -> bytes:
    """`model` with each constant per-channel tensor's zero points replaced by
    `replace(zero_points, channels)`, where that gives an array; unchanged
    bytes when nothing is replaced, so that a rewrite is idempotent."""
    tree = unpack(model)
    changed = False
    for q in _per_channel_constants(tree):
        zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], dtype=np.int64)
        new = replace(zero, len(q.scale))
        if new is not None:
            q.zeroPoint = new
            changed = True
    return pack(tree, len(model)) if changed else model


def compact_zero_points(model: bytes) -> bytes:
    """`model` with each constant per-channel tensor's all-zero zero points
    stored once. Raises ValueError for bytes that are not a TFLite model."""
    # Only what TFLite Micro reads back the same: one zero point per scale, all 0.
    return _rewrite_zero_points(model, lambda zero, channels: np.zeros(1, dtype=np.int64)
                                if len(zero) == channels and not zero.any() else None)


def expand_zero_points(model: bytes) -> bytes:
    """The inverse of compact_zero_points: one zero point per scale again, as
    TFLite's interpreter requires."""
    return _rewrite_zero_points(model, lambda zero, channels: np.full(channels, zero[0], dtype=np.int64)
                                if len(zero) == 1 else None)
