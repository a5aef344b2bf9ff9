/*
 * AVERAGE_POOL_2D and MAX_POOL_2D, int8, as TFLite's
 * reference_integer_ops::AveragePool and MaxPool: the window is clipped to
 * the input (padding is not counted), the average rounds half away from zero,
 * and input and output share one scale and zero point.
 */
#include "kernels.h"

#include "fixedpoint.h"

static int32_t max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

void keyspot_average_pool_s8(const keyspot_pool_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->depth;
    for (int32_t oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_height;
        const int32_t fy0 = max32(0, -in_y0);
        const int32_t fy1 = min32(p->filter_height, p->input_height - in_y0);
        for (int32_t ox = 0; ox < p->output_width; ++ox) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_width;
            const int32_t fx0 = max32(0, -in_x0);
            const int32_t fx1 = min32(p->filter_width, p->input_width - in_x0);
            const int32_t count = (fy1 - fy0) * (fx1 - fx0);
            for (int32_t c = 0; c < depth; ++c) {
                int32_t acc = 0;
                for (int32_t fy = fy0; fy < fy1; ++fy) {
                    const int32_t row = (in_y0 + fy) * p->input_width + in_x0;
                    for (int32_t fx = fx0; fx < fx1; ++fx) {
                        acc += input[(row + fx) * depth + c];
                    }
                }
                if (count > 0) {
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                *output++ = (int8_t)keyspot_clamp(acc, p->activation_min, p->activation_max);
            }
        }
    }
}

void keyspot_max_pool_s8(const keyspot_pool_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->depth;
    for (int32_t oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_height;
        const int32_t fy0 = max32(0, -in_y0);
        const int32_t fy1 = min32(p->filter_height, p->input_height - in_y0);
        for (int32_t ox = 0; ox < p->output_width; ++ox) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_width;
            const int32_t fx0 = max32(0, -in_x0);
            const int32_t fx1 = min32(p->filter_width, p->input_width - in_x0);
            for (int32_t c = 0; c < depth; ++c) {
                int32_t max = INT8_MIN;
                for (int32_t fy = fy0; fy < fy1; ++fy) {
                    const int32_t row = (in_y0 + fy) * p->input_width + in_x0;
                    for (int32_t fx = fx0; fx < fx1; ++fx) {
                        max = max32(max, input[(row + fx) * depth + c]);
                    }
                }
                *output++ = (int8_t)keyspot_clamp(max, p->activation_min, p->activation_max);
            }
        }
    }
}
