"""The feature frontend's tables as C, for firmware/core/frontend.c.

The firmware must compute the features the model was trained on, so every
number the frontend needs is taken from the Python reference
(keyspot.features) rather than derived again in C: the periodic Hann window,
the FFT twiddle factors, the Slaney mel filters (stored sparsely: per filter
its first FFT bin and its non-zero run of weights) and the DCT-II matrix.
The feature sizes, mean/std and input quantisation live in feature_config.h
and model_settings.h, which frontend_tables.h includes.
"""

from __future__ import annotations

import numpy as np

from keyspot import features
from keyspot.export.c_text import c_float, rows
from keyspot.features import FeatureSpec

FLOATS_PER_LINE = 6
INTS_PER_LINE = 12


class FrontendTableError(ValueError):
    """The feature spec describes a frontend the C code cannot compute."""


def _array(ctype: str, name: str, size: str, items: list[str], per_line: int) -> str:
    return f"const {ctype} {name}[{size}] = {{\n{rows(items, per_line)}\n}};\n"


def check(spec: FeatureSpec, spec_name: str = "spec") -> None:
    n = spec.fft_size
    if n < 4 or n & (n - 1):
        raise FrontendTableError(f"{spec_name}: fft_size={n} must be a power of two >= 4 for the "
                                 "firmware's radix-2 FFT; change features.fft_size")
    if not 0 < spec.window_samples <= n:
        raise FrontendTableError(f"{spec_name}: window_samples={spec.window_samples} must be in "
                                 f"1..fft_size ({n}); change features.window_ms or features.fft_size")
    if spec.kind not in ("mfcc", "log_mel"):
        raise FrontendTableError(f"{spec_name}: kind={spec.kind!r} is neither 'mfcc' nor 'log_mel'")
    if not spec.log_floor > 0:
        raise FrontendTableError(f"{spec_name}: log_floor={spec.log_floor!r} must be positive")


def sparse_mel(spec: FeatureSpec) -> tuple[list[int], list[int], np.ndarray]:
    """Per filter the first bin and the offset of its weights; the weights, float32.

    A filter's run goes from its first to its last non-zero weight; a filter
    with no non-zero weight (possible with many mel bins and a short FFT) has
    an empty run and so always yields log_floor, as in the reference."""
    dense = features.mel_weights(spec).astype(np.float32)
    starts, offsets, runs = [], [0], []
    for row in dense:
        nonzero = np.flatnonzero(row)
        first, last = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
        starts.append(first)
        runs.append(row[first:last])
        offsets.append(offsets[-1] + last - first)
    return starts, offsets, np.concatenate(runs) if runs else np.zeros(0, np.float32)


def twiddles(spec: FeatureSpec) -> np.ndarray:
    """(cos, sin) of -2*pi*k/fft_size for k < fft_size/2, interleaved, float32."""
    angle = -2.0 * np.pi * np.arange(spec.fft_size // 2) / spec.fft_size
    return np.stack([np.cos(angle), np.sin(angle)], axis=1).reshape(-1).astype(np.float32)


def frontend_tables_h(comment: str, spec: FeatureSpec, weight_count: int) -> str:
    guard = "KEYSPOT_FRONTEND_TABLES_H_"
    dct = ("#if KEYSPOT_FEATURE_KIND_MFCC\n"
           "/* Orthonormal DCT-II, KEYSPOT_NUM_MFCC rows of KEYSPOT_MEL_BINS, row-major. */\n"
           "extern const float g_frontend_dct[KEYSPOT_NUM_MFCC * KEYSPOT_MEL_BINS];\n"
           "#endif\n")
    return (f"{comment}#ifndef {guard}\n#define {guard}\n\n"
            "#include <stdint.h>\n\n"
            '#include "feature_config.h"\n#include "model_settings.h"\n\n'
            '#ifdef __cplusplus\nextern "C" {\n#endif\n\n'
            "/* Tables of the feature frontend (firmware/core/frontend.c), computed by\n"
            "   keyspot.features from the feature spec. */\n\n"
            "#define KEYSPOT_FFT_BINS (KEYSPOT_FFT_SIZE / 2 + 1)\n"
            f"#define KEYSPOT_MEL_WEIGHT_COUNT {max(weight_count, 1)}\n\n"
            "/* Periodic Hann window of KEYSPOT_WINDOW_SAMPLES. */\n"
            "extern const float g_frontend_window[KEYSPOT_WINDOW_SAMPLES];\n\n"
            "/* exp(-2*pi*i*k/KEYSPOT_FFT_SIZE) for k < KEYSPOT_FFT_SIZE/2 as (cos, sin) pairs. */\n"
            "extern const float g_frontend_twiddle[KEYSPOT_FFT_SIZE];\n\n"
            "/* Slaney mel filters, sparse: filter m weighs the power of FFT bins\n"
            "   g_frontend_mel_start[m] + j by g_frontend_mel_weights[g_frontend_mel_offset[m] + j]\n"
            "   for j < g_frontend_mel_offset[m + 1] - g_frontend_mel_offset[m]. */\n"
            "extern const uint16_t g_frontend_mel_start[KEYSPOT_MEL_BINS];\n"
            "extern const uint16_t g_frontend_mel_offset[KEYSPOT_MEL_BINS + 1];\n"
            "extern const float g_frontend_mel_weights[KEYSPOT_MEL_WEIGHT_COUNT];\n\n"
            f"{dct}"
            '\n#ifdef __cplusplus\n}  /* extern "C" */\n#endif\n'
            f"\n#endif  /* {guard} */\n")


def frontend_tables_c(comment: str, spec: FeatureSpec) -> str:
    left = (spec.fft_size - spec.window_samples) // 2
    win = features.window(spec)[left:left + spec.window_samples]
    starts, offsets, weights = sparse_mel(spec)
    if not len(weights):
        weights = np.zeros(1, np.float32)  # C forbids empty arrays; never read
    out = [f'{comment}#include "frontend_tables.h"\n\n',
           _array("float", "g_frontend_window", "KEYSPOT_WINDOW_SAMPLES",
                  [c_float(v, digits=9) for v in win], FLOATS_PER_LINE), "\n",
           _array("float", "g_frontend_twiddle", "KEYSPOT_FFT_SIZE",
                  [c_float(v, digits=9) for v in twiddles(spec)], FLOATS_PER_LINE), "\n",
           _array("uint16_t", "g_frontend_mel_start", "KEYSPOT_MEL_BINS",
                  [str(v) for v in starts], INTS_PER_LINE), "\n",
           _array("uint16_t", "g_frontend_mel_offset", "KEYSPOT_MEL_BINS + 1",
                  [str(v) for v in offsets], INTS_PER_LINE), "\n",
           _array("float", "g_frontend_mel_weights", "KEYSPOT_MEL_WEIGHT_COUNT",
                  [c_float(v, digits=9) for v in weights], FLOATS_PER_LINE)]
    if spec.kind == "mfcc":
        dct = features.dct_matrix(spec).reshape(-1)
        out += ["\n#if KEYSPOT_FEATURE_KIND_MFCC\n",
                _array("float", "g_frontend_dct", "KEYSPOT_NUM_MFCC * KEYSPOT_MEL_BINS",
                       [c_float(v, digits=9) for v in dct], FLOATS_PER_LINE), "#endif\n"]
    return "".join(out)


def generate(spec: FeatureSpec, comment: str, spec_name: str = "spec") -> dict[str, str]:
    """frontend_tables.h and frontend_tables.c for `spec`."""
    check(spec, spec_name)
    _, offsets, _ = sparse_mel(spec)
    if offsets[-1] > 0xFFFF or spec.fft_size // 2 + 1 > 0xFFFF:
        raise FrontendTableError(f"{spec_name}: fft_size={spec.fft_size} is too large for the "
                                 "frontend's 16-bit mel tables")
    return {"frontend_tables.h": frontend_tables_h(comment, spec, offsets[-1]),
            "frontend_tables.c": frontend_tables_c(comment, spec)}
