/*
 * Requantising a convolution's int32 accumulator to its int8 output, per
 * output channel, in two forms that give TFLite's bits:
 *
 * - exact everywhere: keyspot_multiply_by_quantized_multiplier
 *   (fixedpoint.h), gemmlowp's arithmetic step by step;
 * - short: three instructions on the M4 (SMMULR, ADD, SUB + ASR), exact where
 *   the export proved two conditions for every channel of the layer (see
 *   keyspot/export/c_engine_plan.py):
 *     1. TFLite's shift is negative (a right shift of at least one bit and
 *        no left shift), and
 *     2. |accumulator| < 2^28 for every possible input: |bias| + 255 * sum
 *        |filter| below it.
 *
 * Why the short form is exact under them. gemmlowp's doubling high multiply,
 * nudging by +-2^30 and then truncating towards zero, equals floor((acc * M
 * + 2^30) / 2^31) for either sign of acc * M; that is SMMULR(2 * acc, M) =
 * floor((2 * acc * M + 2^31) / 2^32), with 2 * acc inside int32 by (2).
 * RoundingDivideByPOT(y, e), rounding half away from zero, equals
 * floor((y + 2^(e-1) - [y < 0]) / 2^e) for e >= 1, with no overflow since
 * |y| <= |acc| < 2^28 and 2^(e-1) <= 2^30.
 */
#ifndef KEYSPOT_ENGINE_REQUANTIZE_H_
#define KEYSPOT_ENGINE_REQUANTIZE_H_

#include <stdint.h>

#include "fixedpoint.h"
#include "kernels.h"
#include "simd.h"

#ifdef __cplusplus
extern "C" {
#endif

KEYSPOT_INLINE int32_t keyspot_scale_short(int32_t acc, const keyspot_channel_scale *s)
{
    const int32_t high = keyspot_smmulr((int32_t)((uint32_t)acc << 1), s->multiplier);
    return (high + s->rounding - (int32_t)((uint32_t)high >> 31)) >> s->right_shift;
}

/* The output range of a layer: the activation's, within int8. */
typedef struct {
    int32_t offset, min, max;
} keyspot_output_range;

KEYSPOT_INLINE keyspot_output_range keyspot_output_range_of(const keyspot_conv_params *p)
{
    keyspot_output_range r = {p->output_offset, p->activation_min, p->activation_max};
    return r;
}

/* The accumulator of channel `channel` as the layer's int8 output, in the
   form the export chose. */
KEYSPOT_INLINE int8_t keyspot_requantize(int32_t acc, const keyspot_conv_params *p, int32_t channel,
                                         keyspot_output_range r)
{
    int32_t scaled;
    if (p->channel_scale != 0) {
        scaled = keyspot_scale_short(acc, &p->channel_scale[channel]);
    } else {
        scaled = keyspot_multiply_by_quantized_multiplier(acc, p->multiplier[channel],
                                                          (int)p->shift[channel]);
    }
    return (int8_t)keyspot_clamp(scaled + r.offset, r.min, r.max);
}

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_ENGINE_REQUANTIZE_H_ */
