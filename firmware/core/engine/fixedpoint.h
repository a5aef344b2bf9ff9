/*
 * The integer arithmetic of TFLite's int8 quantisation spec (gemmlowp's fixed
 * point), shared by the kernels: a real multiplier M is stored as a Q0.31
 * significand and a power-of-two shift, M = multiplier * 2^(shift - 31).
 *
 * Written to give the same bits as TFLite's reference kernels, including
 * where the reference rounds twice (the doubling high multiply, then the
 * rounding right shift). Right shifts of negative values are arithmetic, as
 * GCC and Clang do on every target keyspot builds for.
 */
#ifndef KEYSPOT_ENGINE_FIXEDPOINT_H_
#define KEYSPOT_ENGINE_FIXEDPOINT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Inlined into the kernels' loops whatever the optimisation level decides;
   a call per output value costs more than the arithmetic. */
#if defined(__GNUC__)
#define KEYSPOT_INLINE static inline __attribute__((always_inline))
#else
#define KEYSPOT_INLINE static inline
#endif

/* round(a * b / 2^31), ties away from zero, saturated at INT32_MAX for
   INT32_MIN * INT32_MIN: gemmlowp's SaturatingRoundingDoublingHighMul. The
   division of the reference (truncating) is done with a shift. */
KEYSPOT_INLINE int32_t keyspot_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudged = ab + (ab >= 0 ? (int64_t)1 << 30 : 1 - ((int64_t)1 << 30));
    /* Truncating division by 2^31 of a value that may be negative. */
    return (int32_t)((nudged + (nudged < 0 ? ((int64_t)1 << 31) - 1 : 0)) >> 31);
}

/* x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31:
   gemmlowp's RoundingDivideByPOT. */
KEYSPOT_INLINE int32_t keyspot_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^(shift - 31), as TFLite's MultiplyByQuantizedMultiplier:
   a left shift first when shift > 0 (wrapping, as the reference's int32
   multiply does in practice), a rounding right shift last when shift < 0. */
KEYSPOT_INLINE int32_t keyspot_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return keyspot_rounding_divide_by_pot(keyspot_doubling_high_mul(shifted, multiplier), right);
}

KEYSPOT_INLINE int32_t keyspot_clamp(int32_t x, int32_t low, int32_t high)
{
    return x < low ? low : (x > high ? high : x);
}

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_ENGINE_FIXEDPOINT_H_ */
