/*
 * CONV_2D, int8 with per-channel requantisation, as TFLite's
 * reference_integer_ops::ConvPerChannel.
 *
 * The reference accumulates filter * (input + input_offset) and adds the
 * bias. This is offset_bias + sum(filter * input) with offset_bias = bias +
 * input_offset * sum(filter) computed at export, when taps outside the input
 * read the input zero point: the same integer, and the products become plain
 * dot products.
 *
 * Output pixels go two at a time. Their input windows (the input pixel
 * itself for a 1x1 convolution) are widened to int16 into the scratch,
 * interleaved four values at a time:
 *
 *   [pixel 0: (x0, x2), (x1, x3)] [pixel 1: (x0, x2), (x1, x3)] [pixel 0: (x4, x6) ...
 *
 * and output channels go two at a time too, their filters interleaved the
 * same way at export (kernels.h). The inner loop then loads two words of
 * filter, widens them (SXTB16), and does eight SMLADs: 16 multiply-
 * accumulates for four output values, each input word loaded once per pair
 * of channels and each filter word once per pair of pixels.
 */
#include <string.h>

#include "kernels.h"

#include "fixedpoint.h"
#include "requantize.h"
#include "simd.h"
#include "window.h"

/* The input window of an output pixel, filter_height x filter_width x
   input_depth bytes, then zeros up to window_depth, into `out`; taps outside
   the input read the zero point. */
static void gather_window(const keyspot_conv_params *p, const int8_t *input, int32_t in_y0, int32_t in_x0,
                          int8_t *out)
{
    const int32_t depth = p->input_depth;
    const int8_t zero_point = (int8_t)-p->input_offset;
    int32_t fx0, fx1;
    keyspot_valid_taps(in_x0, p->dilation_width, p->input_width, p->filter_width, &fx0, &fx1);
    for (int32_t fy = 0; fy < p->filter_height; ++fy) {
        const int32_t in_y = in_y0 + fy * p->dilation_height;
        if (in_y < 0 || in_y >= p->input_height || fx0 == fx1) {
            memset(out, zero_point, (size_t)(p->filter_width * depth));
            out += p->filter_width * depth;
            continue;
        }
        memset(out, zero_point, (size_t)(fx0 * depth));
        out += fx0 * depth;
        const int8_t *row = input + in_y * p->input_width * depth;
        if (p->dilation_width == 1) {
            memcpy(out, row + (in_x0 + fx0) * depth, (size_t)((fx1 - fx0) * depth));
            out += (fx1 - fx0) * depth;
        } else {
            for (int32_t fx = fx0; fx < fx1; ++fx) {
                memcpy(out, row + (in_x0 + fx * p->dilation_width) * depth, (size_t)depth);
                out += depth;
            }
        }
        memset(out, zero_point, (size_t)((p->filter_width - fx1) * depth));
        out += (p->filter_width - fx1) * depth;
    }
    const int32_t size = p->filter_height * p->filter_width * depth;
    memset(out, 0, (size_t)(p->window_depth - size));
}

/* window_depth bytes as int16 pairs into slot 0 or 1 of the interleaved
   columns (see the top of this file). */
static void widen_window(const int8_t *window, int32_t groups, int32_t *columns)
{
    for (int32_t g = 0; g < groups; ++g, window += 4, columns += 4) {
        const uint32_t w = keyspot_load4(window);
        columns[0] = keyspot_sxtb16(w);
        columns[1] = keyspot_sxtb16_ror8(w);
    }
}

/* For `groups` groups of four window values: acc[0] and acc[1] gain pixel 0
   and pixel 1 times the pair's first channel, acc[2] and acc[3] times its
   second. */
KEYSPOT_INLINE void multiply_accumulate_2x2(const int32_t *columns, int32_t groups, const int8_t **filter_at,
                                            int32_t acc[4])
{
    const int8_t *filter = *filter_at;
#ifdef KEYSPOT_SIMD_DSP
    /* Written out: GCC spills the twelve live values of the C version. One
       group: LDM of both pixels' four words (r8-r11), then per channel one
       filter word widened twice and four SMLADs; two groups per turn. */
#define KEYSPOT_GROUP_2X2                               \
    "ldm %[c]!, {r8, r9, r10, r11}\n\t"                 \
    "ldr %[w], [%[f]], #4\n\t"                          \
    "sxtb16 %[v], %[w], ror #8\n\t"                     \
    "sxtb16 %[w], %[w]\n\t"                             \
    "smlad %[a00], r8, %[w], %[a00]\n\t"                \
    "smlad %[a00], r9, %[v], %[a00]\n\t"                \
    "smlad %[a01], r10, %[w], %[a01]\n\t"               \
    "smlad %[a01], r11, %[v], %[a01]\n\t"               \
    "ldr %[w], [%[f]], #4\n\t"                          \
    "sxtb16 %[v], %[w], ror #8\n\t"                     \
    "sxtb16 %[w], %[w]\n\t"                             \
    "smlad %[a10], r8, %[w], %[a10]\n\t"                \
    "smlad %[a10], r9, %[v], %[a10]\n\t"                \
    "smlad %[a11], r10, %[w], %[a11]\n\t"               \
    "smlad %[a11], r11, %[v], %[a11]\n\t"
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int32_t *end = columns + 4 * groups;
    int32_t w, v;
    if (groups & 1) {
        __asm__ volatile(KEYSPOT_GROUP_2X2
                         : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                           [c] "+r"(columns), [f] "+r"(filter), [w] "=&r"(w), [v] "=&r"(v)
                         :
                         : "r8", "r9", "r10", "r11", "memory");
    }
    if (columns != end) {
        __asm__ volatile("1:\n\t" KEYSPOT_GROUP_2X2 KEYSPOT_GROUP_2X2
                         "cmp %[c], %[end]\n\t"
                         "bne 1b\n\t"
                         : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                           [c] "+r"(columns), [f] "+r"(filter), [w] "=&r"(w), [v] "=&r"(v)
                         : [end] "r"(end)
                         : "r8", "r9", "r10", "r11", "cc", "memory");
    }
#undef KEYSPOT_GROUP_2X2
    *filter_at = filter;
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
#else
    for (int32_t g = 0; g < groups; ++g, columns += 4, filter += 8) {
        const uint32_t w0 = keyspot_load4(filter), w1 = keyspot_load4(filter + 4);
        const int32_t w0a = keyspot_sxtb16(w0), w0b = keyspot_sxtb16_ror8(w0);
        const int32_t w1a = keyspot_sxtb16(w1), w1b = keyspot_sxtb16_ror8(w1);
        acc[0] = keyspot_smlad(columns[1], w0b, keyspot_smlad(columns[0], w0a, acc[0]));
        acc[1] = keyspot_smlad(columns[3], w0b, keyspot_smlad(columns[2], w0a, acc[1]));
        acc[2] = keyspot_smlad(columns[1], w1b, keyspot_smlad(columns[0], w1a, acc[2]));
        acc[3] = keyspot_smlad(columns[3], w1b, keyspot_smlad(columns[2], w1a, acc[3]));
    }
    *filter_at = filter;
#endif
}

/* The four values of a pair of channels of two pixels, requantised in the
   short form: every constant loaded before the first store, since the
   compiler must assume an int8_t store may change anything behind a pointer.
   `full_range`: the activation clamps nothing SSAT does not. */
KEYSPOT_INLINE void short_form_pair(const keyspot_channel_scale *scale, const int32_t acc[4], int32_t offset,
                                    int32_t lo, int32_t hi, int full_range, int8_t *out0, int8_t *out1)
{
    const keyspot_channel_scale s0 = scale[0], s1 = scale[1];
    int32_t v00 = keyspot_ssat8(keyspot_scale_short(acc[0], &s0) + offset);
    int32_t v01 = keyspot_ssat8(keyspot_scale_short(acc[1], &s0) + offset);
    int32_t v10 = keyspot_ssat8(keyspot_scale_short(acc[2], &s1) + offset);
    int32_t v11 = keyspot_ssat8(keyspot_scale_short(acc[3], &s1) + offset);
    if (!full_range) {
        v00 = keyspot_clamp(v00, lo, hi);
        v01 = keyspot_clamp(v01, lo, hi);
        v10 = keyspot_clamp(v10, lo, hi);
        v11 = keyspot_clamp(v11, lo, hi);
    }
    out0[0] = (int8_t)v00;
    out0[1] = (int8_t)v10;
    out1[0] = (int8_t)v01;
    out1[1] = (int8_t)v11;
}

/* Channel pairs [0, pairs) of two output pixels in the short form. */
KEYSPOT_INLINE void short_form_pixels(const keyspot_conv_params *p, const int32_t *columns, int32_t pairs,
                                      int8_t *out0, int8_t *out1, int full_range)
{
    const int32_t groups = p->window_depth / 4;
    const int32_t offset = p->output_offset, lo = p->activation_min, hi = p->activation_max;
    const keyspot_channel_scale *scale = p->channel_scale;
    const int8_t *filter = p->filter;
    for (int8_t *end = out0 + 2 * pairs; out0 != end; scale += 2, out0 += 2, out1 += 2) {
        int32_t acc[4] = {scale[0].offset_bias, scale[0].offset_bias, scale[1].offset_bias,
                          scale[1].offset_bias};
        multiply_accumulate_2x2(columns, groups, &filter, acc);
        short_form_pair(scale, acc, offset, lo, hi, full_range, out0, out1);
    }
}

/* Every output channel of two output pixels; for one pixel, out1 == out0
   and columns slot 1 holds a copy of slot 0, so both write the same bytes. */
static void output_pixels(const keyspot_conv_params *p, const int32_t *columns, int8_t *out0, int8_t *out1)
{
    const int32_t depth = p->output_depth;
    int32_t oc = 0;
    if (p->channel_scale != 0) {
        oc = depth & ~1;
        if (p->activation_min == -128 && p->activation_max == 127) {
            short_form_pixels(p, columns, depth / 2, out0, out1, 1);
        } else {
            short_form_pixels(p, columns, depth / 2, out0, out1, 0);
        }
    }
    /* The exact form, and the last channel of an odd count. */
    const keyspot_output_range r = keyspot_output_range_of(p);
    for (; oc < depth; oc += 2) {
        /* Channel oc + 1 may be the zero channel that completes an odd count. */
        const int32_t b0 = p->channel_scale != 0 ? p->channel_scale[oc].offset_bias : p->offset_bias[oc];
        const int32_t b1 = p->channel_scale != 0 ? p->channel_scale[oc + 1].offset_bias : p->offset_bias[oc + 1];
        int32_t acc[4] = {b0, b0, b1, b1};
        const int8_t *filter = p->filter + oc * p->window_depth;
        multiply_accumulate_2x2(columns, p->window_depth / 4, &filter, acc);
        out0[oc] = keyspot_requantize(acc[0], p, oc, r);
        out1[oc] = keyspot_requantize(acc[1], p, oc, r);
        if (oc + 1 < depth) {
            out0[oc + 1] = keyspot_requantize(acc[2], p, oc + 1, r);
            out1[oc + 1] = keyspot_requantize(acc[3], p, oc + 1, r);
        }
    }
}

/* The window of output pixel `pixel`, widened into columns slot `slot`. */
static void load_window(const keyspot_conv_params *p, const int8_t *input, int32_t pixel, int32_t *columns,
                        int slot)
{
    const int32_t groups = p->window_depth / 4;
    const int32_t oy = pixel / p->output_width, ox = pixel % p->output_width;
    const int32_t in_y0 = oy * p->stride_height - p->pad_height;
    const int32_t in_x0 = ox * p->stride_width - p->pad_width;
    const int in_place = p->filter_height == 1 && p->filter_width == 1 && p->window_depth == p->input_depth;
    const int8_t *window;
    if (in_place) {
        window = input + (in_y0 * p->input_width + in_x0) * p->input_depth;
    } else {
        int8_t *bytes = (int8_t *)(columns + 4 * groups);  /* after both widened windows */
        gather_window(p, input, in_y0, in_x0, bytes);
        window = bytes;
    }
    widen_window(window, groups, columns + 2 * slot);
}

void keyspot_conv2d_s8(const keyspot_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t pixels = p->output_height * p->output_width;
    const int32_t groups = p->window_depth / 4;
    int32_t *columns = p->scratch;
    int32_t pixel = 0;
    for (; pixel + 2 <= pixels; pixel += 2) {
        load_window(p, input, pixel, columns, 0);
        load_window(p, input, pixel + 1, columns, 1);
        output_pixels(p, columns, output + pixel * p->output_depth, output + (pixel + 1) * p->output_depth);
    }
    if (pixel < pixels) {
        load_window(p, input, pixel, columns, 0);
        for (int32_t g = 0; g < groups; ++g) {
            columns[4 * g + 2] = columns[4 * g];
            columns[4 * g + 3] = columns[4 * g + 1];
        }
        output_pixels(p, columns, output + pixel * p->output_depth, output + pixel * p->output_depth);
    }
}
