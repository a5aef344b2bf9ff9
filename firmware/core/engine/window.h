/*
 * Which taps of a filter window lie inside the input, shared by the
 * convolution kernels.
 */
#ifndef KEYSPOT_ENGINE_WINDOW_H_
#define KEYSPOT_ENGINE_WINDOW_H_

#include <stdint.h>

#include "fixedpoint.h"

/* Filter taps k in [*first, *last) whose input row or column
   origin + k * dilation lies inside [0, size). */
KEYSPOT_INLINE void keyspot_valid_taps(int32_t origin, int32_t dilation, int32_t size, int32_t taps,
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

#endif /* KEYSPOT_ENGINE_WINDOW_H_ */
