"""The arithmetic TFLite's kernels do in Prepare(), done once at export time.

The C engine must give the interpreter's bits, so every number a kernel
needs is computed here exactly as TFLite computes it, with the same mix of
float32 and double steps: per-channel multipliers and shifts
(QuantizeMultiplier on double scales), activation ranges (float32 division,
rounding half away from zero), paddings and output sizes, softmax's input
scaling. Python floats are IEEE doubles and numpy float32 is IEEE single, so
each step rounds as the C++ does.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127

# Fused activations TFLite can apply inside an int8 kernel.
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")


def round_half_away(x: float) -> int:
    """std::round (TfLiteRound) of a double: ties away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = multiplier * 2^(shift - 31), the
    multiplier a Q0.31 significand in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    significand, shift = math.frexp(real)
    fixed = round_half_away(significand * (1 << 31))  # exact: a power-of-two scaling
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def f32(value) -> float:
    """A float32 value, as a double (what static_cast<double>(float) gives)."""
    return float(np.float32(value))


def conv_output_scales(input_scale: float, filter_scales, output_scale: float) -> list[float]:
    """Per-channel input_scale * filter_scale / output_scale in double, as
    PopulateConvolutionQuantizationParams (and the float-scale reference
    FullyConnected) compute it."""
    return [f32(input_scale) * f32(s) / f32(output_scale) for s in filter_scales]


def per_channel_multipliers(scales: list[float]) -> tuple[list[int], list[int]]:
    pairs = [quantize_multiplier(s) for s in scales]
    return [m for m, _ in pairs], [s for _, s in pairs]


def _quantize(scale: float, zero_point: int, value: float) -> int:
    """zero_point + round(value / scale), the division in float32 (TFLite's
    Quantize() in kernel_util.cc)."""
    quotient = np.float32(value) / np.float32(scale)
    return zero_point + round_half_away(float(quotient))


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output."""
    if activation == "RELU":
        return max(INT8_MIN, _quantize(scale, zero_point, 0.0)), INT8_MAX
    if activation == "RELU6":
        return (max(INT8_MIN, _quantize(scale, zero_point, 0.0)),
                min(INT8_MAX, _quantize(scale, zero_point, 6.0)))
    if activation == "RELU_N1_TO_1":
        return (max(INT8_MIN, _quantize(scale, zero_point, -1.0)),
                min(INT8_MAX, _quantize(scale, zero_point, 1.0)))
    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    raise ValueError(f"fused activation {activation} has no int8 range")


def output_size(padding: str, size: int, filter_size: int, stride: int, dilation: int = 1) -> int:
    """ComputeOutSize."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size + stride - effective) // stride


def padding_before(size: int, filter_size: int, stride: int, dilation: int, out_size: int) -> int:
    """ComputePaddingWithOffset: the top or left padding (the odd extra pixel,
    if any, goes after)."""
    effective = (filter_size - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - size, 0)
    return total // 2


def softmax_scaling(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling and CalculateInputRadius for Q5.26 differences:
    (input multiplier, its left shift, diff_min)."""
    integer_bits = 5
    real = min(f32(beta) * f32(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError(f"beta * input scale = {f32(beta) * f32(input_scale):g} is too small "
                         "for TFLite's int8 softmax (it needs beta * scale * 2^26 > 1)")
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    return multiplier, left_shift, -radius
