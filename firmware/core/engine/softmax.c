/*
 * SOFTMAX, int8 in and int8 out, as TFLite's reference_ops::Softmax:
 * differences from the row maximum are scaled to Q5.26, exp() is gemmlowp's
 * fixed-point exp_on_negative_values, the sum is kept in Q12.19 and inverted
 * with gemmlowp's Newton-Raphson one_over_one_plus_x_for_x_in_0_1. Each
 * helper below is the gemmlowp function of the same name on raw int32 values;
 * FixedPoint additions wrap, as int32 additions do in practice.
 */
#include "kernels.h"

#include "fixedpoint.h"

static int32_t add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }
static int32_t mul(int32_t a, int32_t b) { return keyspot_doubling_high_mul(a, b); }

/* SaturatingRoundingMultiplyByPOT<exponent> for exponent >= 1. */
static int32_t saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

static int count_leading_zeros(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0 ? 32 : __builtin_clz(x);
#else
    int n = 0;
    while (n < 32 && (x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: a Taylor expansion around -1/8. */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;   /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = add(a, 1 << 28);          /* a + 1/8 */
    const int32_t x2 = mul(x, x);
    const int32_t x3 = mul(x2, x);
    const int32_t x4 = mul(x2, x2);
    const int32_t x4_over_4 = keyspot_rounding_divide_by_pot(x4, 2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 =
        keyspot_rounding_divide_by_pot(add(mul(add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return add(constant_term, mul(constant_term, add(x, x4_over_24_plus_x3_over_6_plus_x2_over_2)));
}

/* exp(a) for a <= 0 in Q5.26, as Q0.31: the fraction modulo 1/4 by the
   polynomial, each set bit of the rest by a constant exp(-2^k). */
static int32_t exp_on_negative_values(int32_t a)
{
    static const int32_t exp_of_minus_pot[7] = {
        1672461947,  /* exp(-1/4) */
        1302514674,  /* exp(-1/2) */
        790015084,   /* exp(-1) */
        290630308,   /* exp(-2) */
        39332535,    /* exp(-4) */
        720401,      /* exp(-8) */
        242,         /* exp(-16) */
    };
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_one_quarter = sub(a & (one_quarter - 1), one_quarter);
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_one_quarter, 5));
    const int32_t remainder = sub(a_mod_quarter_minus_one_quarter, a);
    for (int k = 0; k < 7; ++k) {
        if (remainder & (int32_t)(1u << (24 + k))) {
            result = mul(result, exp_of_minus_pot[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out, by Newton-Raphson in Q2.29. */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    const int32_t one_q2 = 1 << 29;
    int32_t x = add(constant_48_over_17, mul(half_denominator, constant_neg_32_over_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = mul(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = sub(one_q2, half_denominator_times_x);
        x = add(x, saturating_shift_left(mul(x, one_minus_half_denominator_times_x), 2));
    }
    /* ExactMulByPot<-1> (the same raw value read as Q1.30), then Rescale<0>. */
    return saturating_shift_left(x, 1);
}

/* TFLite's GetReciprocal: 1 / x for x in Q(x_integer_digits), as a Q0.31
   significand and the number of bits x has above 1.0. */
static int32_t get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit)
{
    const int headroom_plus_one = count_leading_zeros((uint32_t)x);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

static int32_t scaled_exp(const keyspot_softmax_params *p, int32_t input_diff)
{
    /* MultiplyByQuantizedMultiplierGreaterThanOne, then exp in Q5.26. */
    const int32_t rescaled = keyspot_doubling_high_mul(
        (int32_t)((uint32_t)input_diff << p->input_left_shift), p->input_multiplier);
    return exp_on_negative_values(rescaled);
}

void keyspot_softmax_s8(const keyspot_softmax_params *p, const int8_t *input, int8_t *output)
{
    enum { accumulation_integer_bits = 12 };
    for (int32_t i = 0; i < p->outer_size; ++i) {
        const int8_t *row = input + i * p->depth;
        int8_t *out = output + i * p->depth;
        int32_t max_in_row = INT8_MIN;
        for (int32_t c = 0; c < p->depth; ++c) {
            max_in_row = row[c] > max_in_row ? row[c] : max_in_row;
        }
        int32_t sum_of_exps = 0;  /* Q12.19 */
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t input_diff = (int32_t)row[c] - max_in_row;
            if (input_diff >= p->diff_min) {
                sum_of_exps = add(sum_of_exps, keyspot_rounding_divide_by_pot(
                                                   scaled_exp(p, input_diff), accumulation_integer_bits));
            }
        }
        int num_bits_over_unit;
        const int32_t shifted_scale =
            get_reciprocal(sum_of_exps, accumulation_integer_bits, &num_bits_over_unit);
        const int exponent = num_bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t input_diff = (int32_t)row[c] - max_in_row;
            if (input_diff >= p->diff_min) {
                const int32_t unsat = keyspot_rounding_divide_by_pot(
                    mul(shifted_scale, scaled_exp(p, input_diff)), exponent);
                out[c] = (int8_t)keyspot_clamp(unsat + INT8_MIN, INT8_MIN, INT8_MAX);
            } else {
                out[c] = INT8_MIN;
            }
        }
    }
}
