/*
 * DEPTHWISE_CONV_2D, int8 with per-channel requantisation, as TFLite's
 * reference_integer_ops::DepthwiseConvPerChannel.
 *
 * A 3x3 filter at stride 1, dilation 1 and depth multiplier 1 (the shape of
 * every depthwise layer in the DS-CNN configs) goes a channel at a time. The
 * channel's input, framed by the padding as the input zero point, is copied
 * into the scratch as a plane of int16 pairs, and the accumulator starts at
 * offset_bias = bias + input_offset * sum(filter), as in conv.c. A row of
 * three taps then covers two neighbouring outputs with four multiplies over
 * two words (A, B) of the plane, filter words (w0, w1) and (w1, w2):
 *
 *   output x     = A.low * w0 + A.high * w1 + B.low * w2    SMLAD, SMLABT
 *   output x + 1 = A.high * w0 + B.low * w1 + B.high * w2   SMLATB, SMLAD
 *
 * Any other shape reads its taps in place and accumulates only those inside
 * the input, plus the bias and input_offset times their filter sum, as the
 * reference does (input + input_offset is 0 outside the input).
 */
#include <string.h>

#include "kernels.h"

#include "fixedpoint.h"
#include "requantize.h"
#include "simd.h"
#include "window.h"

/* ---------------------------------------------------------------- 3x3, stride 1 */

/* Words per plane row: the last output pair or single output of a row reads
   words x / 2 and x / 2 + 1. */
static int32_t plane_row_words(const keyspot_conv_params *p)
{
    return (p->output_width - 1) / 2 + 2;
}

/* Channel `c` of the input into the plane's rows of input; the padding rows
   and columns keep the zero point the caller wrote there. */
static void fill_plane(const keyspot_conv_params *p, const int8_t *input, int32_t c, int32_t *plane)
{
    const int32_t depth = p->input_depth, width = p->input_width, row_words = plane_row_words(p);
    const int8_t zero_point = (int8_t)-p->input_offset;
    /* Plane column j holds input column j - pad_width; pad_width is 0 or 1. */
    const int odd = p->pad_width & 1;
    const int8_t *x = input + c;
    int32_t *start = plane + p->pad_height * row_words + p->pad_width / 2;
    for (int32_t y = 0; y < p->input_height; ++y, start += row_words) {
        int32_t *word = start;
        int32_t left = width;
        if (odd) {
            *word++ = keyspot_pack16(zero_point, x[0]);
            x += depth;
            --left;
        }
        for (; left >= 2; left -= 2, x += 2 * depth) {
            *word++ = keyspot_pack16(x[0], x[depth]);
        }
        if (left == 1) {
            *word = keyspot_pack16(x[0], zero_point);
            x += depth;
        }
    }
}

/* The three rows of one channel's filter as (w0, w1) and (w1, w2) words, the
   channel's offset bias and short-form requantisation (kernels.h), and the
   output offset: what the assembly below reads, at byte offsets 0 (taps), 24
   (offset bias), 28 (multiplier, rounding), 36 (right shift, output offset). */
typedef struct {
    int32_t taps[6];
    keyspot_channel_scale scale;
    int32_t output_offset;
} channel_filter;

/* Two neighbouring outputs (*a at plane word `row`, *b one column right) of
   one channel: the offset bias plus three filter rows over three plane rows
   `row_bytes` apart. */
KEYSPOT_INLINE void two_outputs(const int32_t *row, int32_t row_bytes, const channel_filter *f, int32_t *a,
                                int32_t *b)
{
#ifdef KEYSPOT_SIMD_DSP
    /* Written out: the compiler keeps the six filter words on the stack and
       loads them one at a time; LDRD loads two. */
    int32_t out_a, out_b, A, B, w, v;
    const int32_t *next;
    __asm__(
        "ldr %[a], [%[f], #24]\n\t"
        "ldrd %[A], %[B], [%[row]]\n\t"
        "ldrd %[w], %[v], [%[f]]\n\t"
        "smlatb %[b], %[A], %[w], %[a]\n\t"
        "smlad %[a], %[A], %[w], %[a]\n\t"
        "smlabt %[a], %[B], %[v], %[a]\n\t"
        "smlad %[b], %[B], %[v], %[b]\n\t"
        "add %[next], %[row], %[step]\n\t"
        "ldrd %[A], %[B], [%[next]]\n\t"
        "ldrd %[w], %[v], [%[f], #8]\n\t"
        "smlatb %[b], %[A], %[w], %[b]\n\t"
        "smlad %[a], %[A], %[w], %[a]\n\t"
        "smlabt %[a], %[B], %[v], %[a]\n\t"
        "smlad %[b], %[B], %[v], %[b]\n\t"
        "add %[next], %[next], %[step]\n\t"
        "ldrd %[A], %[B], [%[next]]\n\t"
        "ldrd %[w], %[v], [%[f], #16]\n\t"
        "smlatb %[b], %[A], %[w], %[b]\n\t"
        "smlad %[a], %[A], %[w], %[a]\n\t"
        "smlabt %[a], %[B], %[v], %[a]\n\t"
        "smlad %[b], %[B], %[v], %[b]\n\t"
        : [a] "=&r"(out_a), [b] "=&r"(out_b), [A] "=&r"(A), [B] "=&r"(B), [w] "=&r"(w), [v] "=&r"(v),
          [next] "=&r"(next)
        : [row] "r"(row), [step] "r"(row_bytes), [f] "r"(f)
        : "memory");
    *a = out_a;
    *b = out_b;
#else
    int32_t out_a = f->scale.offset_bias, out_b = f->scale.offset_bias;
    for (int r = 0; r < 3; ++r, row = (const int32_t *)((const char *)row + row_bytes)) {
        const int32_t A = row[0], B = row[1], w = f->taps[2 * r], v = f->taps[2 * r + 1];
        out_b = keyspot_smlatb(A, w, out_b);
        out_a = keyspot_smlad(A, w, out_a);
        out_a = keyspot_smlabt(B, v, out_a);
        out_b = keyspot_smlad(B, v, out_b);
    }
    *a = out_a;
    *b = out_b;
#endif
}

/* two_outputs, then both in the short form and saturated to int8: for a
   layer whose activation clamps nothing SSAT does not. */
KEYSPOT_INLINE void two_outputs_short(const int32_t *row, int32_t row_bytes, const channel_filter *f,
                                      int32_t *a, int32_t *b)
{
#ifdef KEYSPOT_SIMD_DSP
    int32_t out_a, out_b, m, r, e, o;
    two_outputs(row, row_bytes, f, &out_a, &out_b);
    __asm__(
        "ldrd %[m], %[r], [%[f], #28]\n\t"
        "ldrd %[e], %[o], [%[f], #36]\n\t"
        "lsl %[a], %[a], #1\n\t"
        "lsl %[b], %[b], #1\n\t"
        "smmulr %[a], %[a], %[m]\n\t"
        "smmulr %[b], %[b], %[m]\n\t"
        "add %[m], %[a], %[r]\n\t"
        "sub %[a], %[m], %[a], lsr #31\n\t"
        "add %[m], %[b], %[r]\n\t"
        "sub %[b], %[m], %[b], lsr #31\n\t"
        "asr %[a], %[a], %[e]\n\t"
        "asr %[b], %[b], %[e]\n\t"
        "add %[a], %[a], %[o]\n\t"
        "add %[b], %[b], %[o]\n\t"
        "ssat %[a], #8, %[a]\n\t"
        "ssat %[b], #8, %[b]\n\t"
        : [a] "+r"(out_a), [b] "+r"(out_b), [m] "=&r"(m), [r] "=&r"(r), [e] "=&r"(e), [o] "=&r"(o)
        : [f] "r"(f)
        : "memory");
    *a = out_a;
    *b = out_b;
#else
    two_outputs(row, row_bytes, f, a, b);
    *a = keyspot_ssat8(keyspot_scale_short(*a, &f->scale) + f->output_offset);
    *b = keyspot_ssat8(keyspot_scale_short(*b, &f->scale) + f->output_offset);
#endif
}

/* One channel in the short form, the activation clamping nothing SSAT does
   not. */
static void channel_full_range(const keyspot_conv_params *p, const int32_t *plane, int32_t c,
                               const channel_filter *f, int8_t *output)
{
    const int32_t row_words = plane_row_words(p), depth = p->output_depth, width = p->output_width;
    const int32_t row_bytes = 4 * row_words;
    const int32_t pairs = width / 2, single = width & 1;
    int8_t *out = output + c;
    const int32_t *row = plane;
    for (int32_t oy = 0; oy < p->output_height; ++oy, row += row_words - pairs) {
        for (int32_t i = 0; i < pairs; ++i, ++row, out += 2 * depth) {
            int32_t a, b;
            two_outputs_short(row, row_bytes, f, &a, &b);
            out[0] = (int8_t)a;
            out[depth] = (int8_t)b;
        }
        if (single) {
            int32_t a, b;
            two_outputs_short(row, row_bytes, f, &a, &b);
            out[0] = (int8_t)a;
            out += depth;
        }
    }
}

/* One channel in either form, any activation. */
static void channel_any(const keyspot_conv_params *p, const int32_t *plane, int32_t c,
                        const channel_filter *f, int8_t *output)
{
    const int32_t row_words = plane_row_words(p), depth = p->output_depth, width = p->output_width;
    const keyspot_output_range r = keyspot_output_range_of(p);
    for (int32_t oy = 0; oy < p->output_height; ++oy) {
        const int32_t *row = plane + oy * row_words;
        int8_t *out = output + oy * width * depth + c;
        for (int32_t ox = 0; ox < width; ox += 2, ++row) {
            int32_t a, b;
            two_outputs(row, 4 * row_words, f, &a, &b);
            out[ox * depth] = keyspot_requantize(a, p, c, r);
            if (ox + 1 < width) {
                out[(ox + 1) * depth] = keyspot_requantize(b, p, c, r);
            }
        }
    }
}

static int is_3x3_stride_1(const keyspot_conv_params *p)
{
    return p->filter_height == 3 && p->filter_width == 3 && p->stride_height == 1 && p->stride_width == 1 &&
           p->dilation_height == 1 && p->dilation_width == 1 && p->depth_multiplier == 1 &&
           p->pad_height <= 1 && p->pad_width <= 1 && p->scratch != 0;
}

static void depthwise_3x3_planes(const keyspot_conv_params *p, const int8_t *input, int8_t *output)
{
    int32_t *plane = p->scratch;
    const int32_t words = (p->output_height + 2) * plane_row_words(p);
    const int32_t zero_point = -p->input_offset;
    const int32_t padding = keyspot_pack16(zero_point, zero_point);
    for (int32_t i = 0; i < words; ++i) {
        plane[i] = padding;
    }
    const int full_range = p->activation_min == -128 && p->activation_max == 127;
    for (int32_t c = 0; c < p->output_depth; ++c) {
        fill_plane(p, input, c, plane);
        const int8_t *w = p->filter + 9 * c;
        channel_filter f;
        for (int r = 0; r < 3; ++r) {
            f.taps[2 * r] = keyspot_pack16(w[3 * r], w[3 * r + 1]);
            f.taps[2 * r + 1] = keyspot_pack16(w[3 * r + 1], w[3 * r + 2]);
        }
        if (p->channel_scale != 0 && full_range) {
            f.scale = p->channel_scale[c];
            f.output_offset = p->output_offset;
            channel_full_range(p, plane, c, &f, output);
        } else {
            f.scale.offset_bias = p->channel_scale != 0 ? p->channel_scale[c].offset_bias : p->offset_bias[c];
            channel_any(p, plane, c, &f, output);
        }
    }
}

/* ---------------------------------------------------------------- any shape */

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
    const keyspot_output_range r = keyspot_output_range_of(p);
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
        const int32_t acc = products + filter_sum * input_offset + (bias != 0 ? bias[oc] : 0);
        output[oc] = keyspot_requantize(acc, p, oc, r);
    }
}

void keyspot_depthwise_conv2d_s8(const keyspot_conv_params *p, const int8_t *input, int8_t *output)
{
    if (is_3x3_stride_1(p)) {
        depthwise_3x3_planes(p, input, output);
        return;
    }
    const int32_t in_depth = p->input_depth;
    const int32_t row_stride = p->input_width * in_depth;
    const int32_t step_y = p->dilation_height * row_stride;
    const int32_t step_x = p->dilation_width * in_depth;
    for (int32_t oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_height;
        int32_t fy0, fy1;
        keyspot_valid_taps(in_y0, p->dilation_height, p->input_height, p->filter_height, &fy0, &fy1);
        for (int32_t ox = 0; ox < p->output_width; ++ox, output += p->output_depth) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_width;
            int32_t fx0, fx1;
            keyspot_valid_taps(in_x0, p->dilation_width, p->input_width, p->filter_width, &fx0, &fx1);
            /* The first valid tap of channel 0. */
            const int8_t *first = input + (in_y0 + fy0 * p->dilation_height) * row_stride +
                                  (in_x0 + fx0 * p->dilation_width) * in_depth;
            depthwise_clipped(p, first, fy0, fy1, fx0, fx1, step_y, step_x, output);
        }
    }
}
