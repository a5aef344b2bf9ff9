/*
 * FULLY_CONNECTED, int8, as TFLite's reference_integer_ops::FullyConnected
 * and FullyConnectedPerChannel in their float-scale form, the one the
 * reference interpreter runs: the int32 accumulator is requantised as
 * round((double)acc * scale) with scale = input_scale * filter_scale /
 * output_scale in double precision, ties away from zero. (TFLite Micro uses
 * a fixed-point multiplier instead and may round one step apart.) On a
 * Cortex-M4F the double multiply is libgcc's IEEE software float, so the
 * target gives the host's bits.
 */
#include <math.h>

#include "kernels.h"

#include "fixedpoint.h"

void keyspot_fully_connected_s8(const keyspot_fully_connected_params *p, const int8_t *input,
                                int8_t *output)
{
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * p->accum_depth;
        for (int32_t oc = 0; oc < p->output_depth; ++oc) {
            const int8_t *f = p->filter + oc * p->accum_depth;
            int32_t acc = 0;
            for (int32_t d = 0; d < p->accum_depth; ++d) {
                acc += ((int32_t)f[d] + p->filter_offset) * ((int32_t)in[d] + p->input_offset);
            }
            if (p->bias != 0) {
                acc += p->bias[oc];
            }
            const double scaled = round((double)acc * p->scale[oc]);
            /* Saturate before converting: a value outside int32 has no
               defined conversion (TFLite leaves it undefined too). */
            int32_t out;
            if (scaled >= 2147483647.0) {
                out = p->activation_max;
            } else if (scaled <= -2147483648.0) {
                out = p->activation_min;
            } else {
                out = keyspot_clamp((int32_t)scaled + p->output_offset, p->activation_min,
                                    p->activation_max);
            }
            *output++ = (int8_t)out;
        }
    }
}
