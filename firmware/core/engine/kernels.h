/*
 * int8 kernels of keyspot's C engine, following TFLite's int8 quantisation
 * spec and giving the same bits as TFLite's reference kernels
 * (tf.lite.Interpreter with OpResolverType.BUILTIN_REF):
 *
 *   real = scale * (q - zero_point); weights symmetric (zero point 0),
 *   per output channel for convolutions; int32 accumulators and biases.
 *
 * Tensors are NHWC with batch 1, row-major, int8. Every parameter comes from
 * the generated engine_model.c (keyspot/export/c_engine.py), which computes
 * the multipliers, shifts, paddings and activation ranges as TFLite's
 * Prepare() does. The kernels keep no state and allocate nothing. Input and
 * output must not overlap, except that they may be the same buffer for
 * - a depthwise 3x3 at stride 1 with depth multiplier 1 and a scratch (each
 *   channel is copied into the scratch before any of it is written), and
 * - a 1x1 convolution at stride 1 whose input depth is a multiple of 4 and
 *   at least its output depth (two pixels are widened into the scratch
 *   before their outputs, no longer than their inputs, are written),
 * which the export plans in place (keyspot/export/c_engine.py).
 */
#ifndef KEYSPOT_ENGINE_KERNELS_H_
#define KEYSPOT_ENGINE_KERNELS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The generated int8 arrays the kernels read a word at a time: aligned, a
   word load never straddles two words (an unaligned LDR takes longer on the
   M4, and faults on the M0). */
#if defined(__GNUC__) || defined(__clang__)
#define KEYSPOT_ALIGNED(n) __attribute__((aligned(n)))
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define KEYSPOT_ALIGNED(n) _Alignas(n)
#else
#error "keyspot's C engine needs a way to align arrays: add it to KEYSPOT_ALIGNED in kernels.h"
#endif

/* What the short form of requantisation (requantize.h) reads of an output
   channel, where the export proved that form exact for every channel of the
   layer: one record, so that a kernel walks one pointer. */
typedef struct {
    int32_t offset_bias;               /* as the array offset_bias below */
    int32_t multiplier;                /* Q0.31, TFLite's */
    int32_t rounding;                  /* 2^(right_shift - 1) */
    int32_t right_shift;               /* -(TFLite's shift), >= 1 */
} keyspot_channel_scale;

/* CONV_2D and DEPTHWISE_CONV_2D. */
typedef struct {
    int32_t input_height, input_width, input_depth;
    int32_t output_height, output_width, output_depth;
    int32_t filter_height, filter_width;
    int32_t stride_height, stride_width;
    int32_t dilation_height, dilation_width;
    int32_t pad_height, pad_width;     /* top and left; bottom and right follow */
    int32_t depth_multiplier;          /* depthwise: output_depth / input_depth */
    int32_t input_offset;              /* -(input zero point) */
    int32_t output_offset;             /* output zero point */
    int32_t activation_min, activation_max;
    /* conv: a window's filter_height * filter_width * input_depth values
       (TFLite's order) padded with zeros to window_depth, a multiple of 4;
       output channels in pairs (a zero channel completes an odd count), each
       pair as 4 values of its first channel, 4 of its second, the next 4 of
       the first, ...: [output_depth / 2][window_depth / 4][2][4].
       depthwise: [output_depth][filter_height][filter_width] (TFLite's
       [1][filter_height][filter_width][output_depth] transposed at export, so
       that each channel's taps are consecutive) */
    const int8_t *filter;
    int32_t window_depth;              /* conv only */
    /* [output_depth]: read by the depthwise kernel of any shape only, the
       others start from offset_bias; NULL where not read or absent */
    const int32_t *bias;
    /* [output_depth, rounded up to even for conv]: bias + input_offset * (sum
       of the channel's filter), the accumulator's start for a window read with
       the input zero point as padding (conv, depthwise 3x3) */
    const int32_t *offset_bias;
    /* The requantisation: channel_scale, [output_depth rounded up to even],
       where the export chose the short form, else TFLite's multiplier (Q0.31)
       and shift (> 0 is a left shift) and the offset_bias array. */
    const keyspot_channel_scale *channel_scale;
    const int32_t *multiplier;
    const int32_t *shift;
    /* Word-aligned working memory, planned at export:
       conv: two windows widened to int16; depthwise 3x3: one channel's
       input plane. NULL where the kernel needs none. */
    int32_t *scratch;
} keyspot_conv_params;

void keyspot_conv2d_s8(const keyspot_conv_params *p, const int8_t *input, int8_t *output);
void keyspot_depthwise_conv2d_s8(const keyspot_conv_params *p, const int8_t *input, int8_t *output);

/* FULLY_CONNECTED. TFLite's reference kernel requantises in double precision
   (round(acc * input_scale * filter_scale / output_scale), ties away from
   zero), not with a fixed-point multiplier; so does this one. */
typedef struct {
    int32_t batches, accum_depth, output_depth;
    int32_t input_offset;              /* -(input zero point) */
    int32_t filter_offset;             /* -(filter zero point), 0 for per-channel */
    int32_t output_offset;
    int32_t activation_min, activation_max;
    const int8_t *filter;              /* [output_depth][accum_depth] */
    const int32_t *bias;               /* [output_depth], or NULL */
    const double *scale;               /* [output_depth] */
} keyspot_fully_connected_params;

void keyspot_fully_connected_s8(const keyspot_fully_connected_params *p, const int8_t *input,
                                int8_t *output);

/* AVERAGE_POOL_2D and MAX_POOL_2D; the window skips padding. */
typedef struct {
    int32_t input_height, input_width, depth;
    int32_t output_height, output_width;
    int32_t filter_height, filter_width;
    int32_t stride_height, stride_width;
    int32_t pad_height, pad_width;
    int32_t activation_min, activation_max;
} keyspot_pool_params;

void keyspot_average_pool_s8(const keyspot_pool_params *p, const int8_t *input, int8_t *output);
void keyspot_max_pool_s8(const keyspot_pool_params *p, const int8_t *input, int8_t *output);

/* SOFTMAX over the last dimension, int8 in and out (output scale 1/256,
   zero point -128): gemmlowp's fixed-point exp and reciprocal, as TFLite's
   reference_ops::Softmax. */
typedef struct {
    int32_t outer_size, depth;
    int32_t input_multiplier;          /* beta * input_scale * 2^26, Q0.31 ... */
    int32_t input_left_shift;          /* ... and its left shift */
    int32_t diff_min;                  /* differences from the row maximum below this give 0 */
} keyspot_softmax_params;

void keyspot_softmax_s8(const keyspot_softmax_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_ENGINE_KERNELS_H_ */
