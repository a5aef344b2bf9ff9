/*
 * Sums of int8 products, the inner loop of the convolutions. On a core with
 * the DSP extension (Cortex-M4/M7/M33: __ARM_FEATURE_DSP) four products at a
 * time with SXTB16 and SMLAD; elsewhere one at a time. Integer arithmetic
 * either way, so both give the same bits (the QEMU test checks it).
 */
#ifndef KEYSPOT_ENGINE_DOT_H_
#define KEYSPOT_ENGINE_DOT_H_

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define KEYSPOT_DOT_DSP 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* sum of a[i] * b[i] for i < n. */
static inline int32_t keyspot_dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#ifdef KEYSPOT_DOT_DSP
    for (; i + 4 <= n; i += 4) {
        uint32_t wa, wb;
        memcpy(&wa, a + i, 4);  /* an unaligned word load on the M4 */
        memcpy(&wb, b + i, 4);
        /* bytes 0 and 2, then (rotated by 8) bytes 1 and 3, as two int16 each */
        acc = __smlad(__sxtb16(wa), __sxtb16(wb), acc);
        acc = __smlad(__sxtb16((wa >> 8) | (wa << 24)), __sxtb16((wb >> 8) | (wb << 24)), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* sum of x[i] * w0[i] and of x[i] * w1[i] for i < n: two output channels
   of one input patch, each input word loaded and widened once. */
static inline void keyspot_dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                                   int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = 0, a1 = 0;
    int32_t i = 0;
#ifdef KEYSPOT_DOT_DSP
    for (; i + 4 <= n; i += 4) {
        uint32_t wx, wa, wb;
        memcpy(&wx, x + i, 4);
        memcpy(&wa, w0 + i, 4);
        memcpy(&wb, w1 + i, 4);
        const int32_t x02 = __sxtb16(wx);
        const int32_t x13 = __sxtb16((wx >> 8) | (wx << 24));
        a0 = __smlad(x02, __sxtb16(wa), a0);
        a0 = __smlad(x13, __sxtb16((wa >> 8) | (wa << 24)), a0);
        a1 = __smlad(x02, __sxtb16(wb), a1);
        a1 = __smlad(x13, __sxtb16((wb >> 8) | (wb << 24)), a1);
    }
#endif
    for (; i < n; ++i) {
        a0 += (int32_t)x[i] * (int32_t)w0[i];
        a1 += (int32_t)x[i] * (int32_t)w1[i];
    }
    *acc0 = a0;
    *acc1 = a1;
}

/* sum of a[i] for i < n. */
static inline int32_t keyspot_sum_s8(const int8_t *a, int32_t n)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < n; ++i) {
        acc += a[i];
    }
    return acc;
}

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_ENGINE_DOT_H_ */
