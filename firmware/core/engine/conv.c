/*
 * CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel requantisation, as
 * TFLite's reference_integer_ops::ConvPerChannel and DepthwiseConvPerChannel:
 * taps outside the input (padding) are skipped, which is the same as reading
 * the input zero point there, since input + input_offset is then 0.
 *
 * The reference accumulates filter * (input + input_offset) and adds the
 * bias. This is offset_bias + sum(filter * input) with offset_bias = bias +
 * input_offset * sum(filter) computed at export: the same integer, one
 * addition fewer per product, and the products become dot products (dot.h).
 * A convolution gathers each input window, padding filled with the zero
 * point, into `scratch` and takes one dot product per output channel (a 1x1
 * convolution reads the input pixel in place). A depthwise convolution reads
 * its taps in place and, at the borders, accumulates as the reference does.
 */
#include <string.h>

#include "kernels.h"

#include "dot.h"
#include "fixedpoint.h"

/* Filter taps k in [*first, *last) whose input row or column
   origin + k * dilation lies inside [0, size). */
static void valid_taps(int32_t origin, int32_t dilation, int32_t size, int32_t taps,
                       int32_t *first, int32_t *last)
{
    int32_t lo = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    int32_t hi = size > origin ? (size - origin + dilation - 1) / dilation : 0;
    *first = lo < taps ? lo : taps;
    *last = hi < taps ? hi : taps;
    if (*last < *first) {
        *last = *first;
    }
}

/* The requantisation constants, copied out of the parameters: the compiler
   must assume an int8_t store may change anything behind a pointer, locals
   it need not reload. */
typedef struct {
    const int32_t *multiplier, *shift;
    int32_t output_offset, activation_min, activation_max;
} requantizer;

KEYSPOT_INLINE requantizer requantizer_of(const keyspot_conv_params *p)
{
    requantizer r = {p->multiplier, p->shift, p->output_offset, p->activation_min, p->activation_max};
    return r;
}

KEYSPOT_INLINE int8_t requantize(int32_t acc, requantizer r, int32_t channel)
{
    acc = keyspot_multiply_by_quantized_multiplier(acc, r.multiplier[channel], (int)r.shift[channel]);
    acc += r.output_offset;
    return (int8_t)keyspot_clamp(acc, r.activation_min, r.activation_max);
}

/* The input window of an output pixel, filter_height x filter_width x
   input_depth, into p->scratch; taps outside the input read the zero point. */
static const int8_t *gather_window(const keyspot_conv_params *p, const int8_t *input, int32_t in_y0,
                                   int32_t in_x0)
{
    const int32_t depth = p->input_depth;
    const int8_t zero_point = (int8_t)-p->input_offset;
    int8_t *out = p->scratch;
    int32_t fx0, fx1;
    valid_taps(in_x0, p->dilation_width, p->input_width, p->filter_width, &fx0, &fx1);
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
    return p->scratch;
}

void keyspot_conv2d_s8(const keyspot_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t size = p->filter_height * p->filter_width * p->input_depth;
    const int in_place = p->filter_height == 1 && p->filter_width == 1;
    const requantizer r = requantizer_of(p);
    const int8_t *filter = p->filter;
    const int32_t *offset_bias = p->offset_bias;
    const int32_t depth = p->output_depth;
    for (int32_t oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_height;
        for (int32_t ox = 0; ox < p->output_width; ++ox) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_width;
            const int8_t *window = in_place
                ? input + (in_y0 * p->input_width + in_x0) * p->input_depth
                : gather_window(p, input, in_y0, in_x0);
            int32_t oc = 0;
            for (; oc + 2 <= depth; oc += 2) {
                int32_t acc0, acc1;
                keyspot_dot2_s8(window, filter + oc * size, filter + (oc + 1) * size, size, &acc0, &acc1);
                *output++ = requantize(offset_bias[oc] + acc0, r, oc);
                *output++ = requantize(offset_bias[oc + 1] + acc1, r, oc + 1);
            }
            if (oc < depth) {
                const int32_t acc = keyspot_dot_s8(window, filter + oc * size, size);
                *output++ = requantize(offset_bias[oc] + acc, r, oc);
            }
        }
    }
}

/* Every channel of one output pixel whose 3x3 window lies inside the input,
   the nine taps unrolled (the common case, worth its own loop). */
static void depthwise_3x3_inside(const keyspot_conv_params *p, const int8_t *window, int32_t step_y,
                                 int32_t step_x, int8_t *output)
{
    const int32_t y1 = step_y, y2 = 2 * step_y, x1 = step_x, x2 = 2 * step_x;
    const int32_t depth = p->output_depth, multiplier = p->depth_multiplier;
    const int32_t *offset_bias = p->offset_bias;
    const requantizer r = requantizer_of(p);
    const int8_t *f = p->filter;
    for (int32_t oc = 0; oc < depth; ++oc, f += 9) {
        const int8_t *x = window + oc / multiplier;
        int32_t acc = offset_bias[oc];
        acc += f[0] * x[0] + f[1] * x[x1] + f[2] * x[x2];
        acc += f[3] * x[y1] + f[4] * x[y1 + x1] + f[5] * x[y1 + x2];
        acc += f[6] * x[y2] + f[7] * x[y2 + x1] + f[8] * x[y2 + x2];
        output[oc] = requantize(acc, r, oc);
    }
}

/* Every channel of one output pixel, any filter, the window clipped to the
   input: [fy0, fy1) x [fx0, fx1) taps, accumulated as the reference does. */
static void depthwise_clipped(const keyspot_conv_params *p, const int8_t *first, int32_t fy0, int32_t fy1,
                              int32_t fx0, int32_t fx1, int32_t step_y, int32_t step_x, int8_t *output)
{
    const int32_t depth = p->output_depth, multiplier = p->depth_multiplier;
    const int32_t width = p->filter_width, taps = p->filter_height * width;
    const int32_t input_offset = p->input_offset;
    const int8_t *filter = p->filter;
    const int32_t *bias = p->bias;
    const requantizer r = requantizer_of(p);
    for (int32_t oc = 0; oc < depth; ++oc) {
        const int8_t *row = first + oc / multiplier;
        const int8_t *f = filter + oc * taps;
        int32_t products = 0;
        int32_t filter_sum = 0;
        for (int32_t fy = fy0; fy < fy1; ++fy, row += step_y) {
            const int8_t *x = row;
            const int8_t *w = f + fy * width;
            for (int32_t fx = fx0; fx < fx1; ++fx, x += step_x) {
                products += w[fx] * *x;
                filter_sum += w[fx];
            }
        }
        output[oc] = requantize(products + filter_sum * input_offset + (bias != 0 ? bias[oc] : 0), r, oc);
    }
}

void keyspot_depthwise_conv2d_s8(const keyspot_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_depth = p->input_depth;
    const int32_t row_stride = p->input_width * in_depth;
    const int32_t step_y = p->dilation_height * row_stride;
    const int32_t step_x = p->dilation_width * in_depth;
    const int unrolled = p->filter_height == 3 && p->filter_width == 3;
    for (int32_t oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_height;
        int32_t fy0, fy1;
        valid_taps(in_y0, p->dilation_height, p->input_height, p->filter_height, &fy0, &fy1);
        for (int32_t ox = 0; ox < p->output_width; ++ox, output += p->output_depth) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_width;
            int32_t fx0, fx1;
            valid_taps(in_x0, p->dilation_width, p->input_width, p->filter_width, &fx0, &fx1);
            /* The first valid tap of channel 0. */
            const int8_t *first = input + (in_y0 + fy0 * p->dilation_height) * row_stride +
                                  (in_x0 + fx0 * p->dilation_width) * in_depth;
            if (unrolled && fy1 - fy0 == 3 && fx1 - fx0 == 3) {
                depthwise_3x3_inside(p, first, step_y, step_x, output);
            } else {
                depthwise_clipped(p, first, fy0, fy1, fx0, fx1, step_y, step_x, output);
            }
        }
    }
}
