/*
 * The few SIMD instructions of the Armv7E-M DSP extension the kernels are
 * built on, and their meaning in portable C for cores without it
 * (Cortex-M0+/M3, the host). __ARM_FEATURE_DSP (Cortex-M4/M7/M33) selects the
 * instructions at compile time; everything else compiles the C below, which
 * gives the same bits: the host tests run it, the QEMU tests run the
 * instructions.
 *
 * A word holds two int16 halves, (low, high). SXTB16 widens bytes 0 and 2 of
 * a word into such a pair; with the word rotated by 8 it widens bytes 1 and
 * 3. Both the weights and the inputs of a dot product are widened that way,
 * so the pairs line up without reordering: (b0, b2) with (w0, w2), (b1, b3)
 * with (w1, w3).
 */
#ifndef KEYSPOT_ENGINE_SIMD_H_
#define KEYSPOT_ENGINE_SIMD_H_

#include <stdint.h>
#include <string.h>

#include "fixedpoint.h"

/* The kernels write some instructions as GNU inline assembly (GCC, Clang,
   armclang); other compilers get the portable C. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
#include <arm_acle.h>
#define KEYSPOT_SIMD_DSP 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Four bytes from any address (an unaligned LDR on the M4). */
KEYSPOT_INLINE uint32_t keyspot_load4(const int8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

#ifdef KEYSPOT_SIMD_DSP

/* (low, high) as one word; GCC does not find PKHBT by itself. */
KEYSPOT_INLINE int32_t keyspot_pack16(int32_t low, int32_t high)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(low), "r"(high));
    return r;
}

KEYSPOT_INLINE int32_t keyspot_sxtb16(uint32_t w)
{
    return (int32_t)__sxtb16(w);
}

/* GCC's __sxtb16(__ror(w, 8)) costs a separate ROR; the instruction has the
   rotation built in. */
KEYSPOT_INLINE int32_t keyspot_sxtb16_ror8(uint32_t w)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

/* acc + low(a) * low(b) + high(a) * high(b) */
KEYSPOT_INLINE int32_t keyspot_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

/* acc + low(a) * high(b) */
KEYSPOT_INLINE int32_t keyspot_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return __smlabt(a, b, acc);
}

/* acc + high(a) * low(b) */
KEYSPOT_INLINE int32_t keyspot_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return __smlatb(a, b, acc);
}

/* round(a * b / 2^32), ties up: the high word of a * b + 2^31 (SMMULR). */
KEYSPOT_INLINE int32_t keyspot_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* x saturated to [-128, 127] */
KEYSPOT_INLINE int32_t keyspot_ssat8(int32_t x)
{
    return __ssat(x, 8);
}

#else

KEYSPOT_INLINE int32_t keyspot_pack16(int32_t low, int32_t high)
{
    return (int32_t)(((uint32_t)low & 0xffffu) | ((uint32_t)high << 16));
}

KEYSPOT_INLINE int32_t keyspot_low16(int32_t w)
{
    return (int16_t)(uint16_t)((uint32_t)w & 0xffffu);
}

KEYSPOT_INLINE int32_t keyspot_high16(int32_t w)
{
    return (int16_t)(uint16_t)((uint32_t)w >> 16);
}

KEYSPOT_INLINE int32_t keyspot_sxtb16(uint32_t w)
{
    return keyspot_pack16((int8_t)(uint8_t)w, (int8_t)(uint8_t)(w >> 16));
}

KEYSPOT_INLINE int32_t keyspot_sxtb16_ror8(uint32_t w)
{
    return keyspot_pack16((int8_t)(uint8_t)(w >> 8), (int8_t)(uint8_t)(w >> 24));
}

/* The sums wrap modulo 2^32 as the instructions do; the kernels only use
   them where the export proved that no sum leaves int32. */
KEYSPOT_INLINE int32_t keyspot_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(keyspot_low16(a) * keyspot_low16(b)) +
                     (uint32_t)(keyspot_high16(a) * keyspot_high16(b)));
}

KEYSPOT_INLINE int32_t keyspot_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(keyspot_low16(a) * keyspot_high16(b)));
}

KEYSPOT_INLINE int32_t keyspot_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(keyspot_high16(a) * keyspot_low16(b)));
}

KEYSPOT_INLINE int32_t keyspot_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
}

KEYSPOT_INLINE int32_t keyspot_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}

#endif

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_ENGINE_SIMD_H_ */
