"""Which kernel form each convolution of the C engine runs, chosen at export,
and the constants in the layout that form reads (firmware/core/engine).

- CONV_2D: output pixels and output channels in pairs over int16-widened
  windows (conv.c). The filter is stored as the kernel reads it: each pair of
  channels interleaved four values at a time, the window padded with zeros to
  a multiple of four values, an odd channel count completed by a zero channel.
- DEPTHWISE_CONV_2D: a 3x3 filter at stride 1, dilation 1 and depth
  multiplier 1 goes a channel at a time over an int16 plane of the input
  (depthwise.c); any other shape reads its taps in place.
- Requantisation: the short form (requantize.h: SMMULR, add, shift) where it
  is exact for every channel of the layer, else gemmlowp's arithmetic step by
  step. The short form needs TFLite's shift to be negative (no left shift,
  at least one bit of right shift) and every possible accumulator below
  2^28 in magnitude: |bias| + 255 * sum |filter| for each channel, since an
  int8 input minus its zero point lies within [-255, 255].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keyspot.export.c_engine_graph import Conv

SHORT_FORM_LIMIT = 2**28


@dataclasses.dataclass(frozen=True)
class ConvForm:
    """The kernel form of one convolution and why."""
    short_form: bool           # requantisation
    accumulator_bound: int     # the largest |accumulator| any input can give
    window_depth: int          # CONV_2D: values per window, padded to a multiple of 4
    planes: bool               # DEPTHWISE_CONV_2D: the 3x3 stride-1 kernel
    scratch_words: int         # int32 words of scratch the kernel uses

    def describe(self, layer: Conv) -> str:
        """The comment c-export writes above the layer."""
        if layer.op == "CONV_2D":
            size = int(np.prod(layer.filter.shape[1:]))
            padded = "" if size == self.window_depth else f", padded to {self.window_depth}"
            how = (f"kernel: two pixels x two channels per step over int16 windows of {size} values"
                   f"{padded}")
        elif self.planes:
            how = "kernel: 3x3 stride 1, one channel at a time over an int16 plane of the input"
        else:
            how = "kernel: any shape, taps read in place"
        if self.short_form:
            rq = (f"requantisation: short form (every shift negative, |accumulator| <= "
                  f"{self.accumulator_bound:,} < 2^28)")
        else:
            rq = f"requantisation: exact form ({self._why_not_short(layer)})"
        return f"{how}; {rq}"

    def _why_not_short(self, layer: Conv) -> str:
        if max(layer.shift) >= 0:
            return f"a shift of {max(layer.shift)} is not negative"
        return f"|accumulator| may reach {self.accumulator_bound:,} >= 2^28"


def accumulator_bound(layer: Conv) -> int:
    """max over channels of |bias| + 255 * sum |filter|."""
    w = np.abs(layer.filter.astype(np.int64))
    out_c = layer.output.hwc[2]
    sums = w[0].reshape(-1, out_c).sum(0) if layer.op == "DEPTHWISE_CONV_2D" else w.reshape(out_c, -1).sum(1)
    bias = 0 if layer.bias is None else np.abs(layer.bias.astype(np.int64))
    return int((bias + 255 * sums).max())


def _is_3x3_stride_1(layer: Conv) -> bool:
    return (layer.filter_hw == (3, 3) and layer.stride == (1, 1) and layer.dilation == (1, 1)
            and layer.depth_multiplier == 1 and max(layer.padding) <= 1)


def conv_form(layer: Conv) -> ConvForm:
    bound = accumulator_bound(layer)
    short = max(layer.shift) < 0 and bound < SHORT_FORM_LIMIT
    out_h, out_w, _ = layer.output.hwc
    if layer.op == "CONV_2D":
        size = int(np.prod(layer.filter.shape[1:]))
        depth = -(-size // 4) * 4
        groups = depth // 4
        in_place = layer.filter_hw == (1, 1) and depth == layer.input.hwc[2]
        # Two widened windows; a gathered window's bytes after them.
        words = 4 * groups + (0 if in_place else groups)
        return ConvForm(short, bound, depth, False, words)
    if _is_3x3_stride_1(layer):
        return ConvForm(short, bound, 0, True, (out_h + 2) * ((out_w - 1) // 2 + 2))
    return ConvForm(short, bound, 0, False, 0)


def conv_filter(layer: Conv, form: ConvForm) -> np.ndarray:
    """CONV_2D's filter as conv.c reads it: [channel pairs][window_depth / 4][2][4]."""
    out_c = layer.filter.shape[0]
    flat = layer.filter.reshape(out_c, -1)
    padded = np.zeros((out_c + out_c % 2, form.window_depth), np.int8)
    padded[:out_c, :flat.shape[1]] = flat
    groups = form.window_depth // 4
    return padded.reshape(-1, 2, groups, 4).transpose(0, 2, 1, 3).reshape(-1)


def even(values) -> list[int]:
    """Per-channel values, completed by a zero for an odd channel count."""
    values = [int(v) for v in values]
    return values + [0] * (len(values) % 2)


def channel_scales(layer: Conv) -> list[tuple[int, int, int, int]]:
    """(offset_bias, multiplier, rounding, right_shift) of each channel, for
    the short form; for CONV_2D an odd count completed by a zero channel."""
    rows = [(int(b), int(m), 1 << (-int(s) - 1), -int(s))
            for b, m, s in zip(layer.offset_bias, layer.multiplier, layer.shift, strict=True)]
    if layer.op == "CONV_2D" and len(rows) % 2:
        rows.append((0, 0, 0, 0))
    return rows
