/*
 * Feature frontend; see frontend.h. Mirrors keyspot.features.unnormalised,
 * normalise and keyspot.quantize.quantize_input step by step.
 */
#include "frontend.h"

#include <math.h>

#include "fft.h"

/* Checked when the generated folder is compiled in, not at run time. */
#define KEYSPOT_STATIC_CHECK(cond, name) typedef char keyspot_check_##name[(cond) ? 1 : -1]
KEYSPOT_STATIC_CHECK(KEYSPOT_FFT_SIZE >= 4 && (KEYSPOT_FFT_SIZE & (KEYSPOT_FFT_SIZE - 1)) == 0,
                     fft_size_is_a_power_of_two);
KEYSPOT_STATIC_CHECK(KEYSPOT_WINDOW_SAMPLES <= KEYSPOT_FFT_SIZE, window_fits_fft);
KEYSPOT_STATIC_CHECK(KEYSPOT_NUM_FRAMES == 1 + (KEYSPOT_CLIP_SAMPLES - KEYSPOT_WINDOW_SAMPLES) /
                                               KEYSPOT_HOP_SAMPLES, frame_count);
KEYSPOT_STATIC_CHECK(KEYSPOT_INPUT_FRAMES == KEYSPOT_NUM_FRAMES &&
                     KEYSPOT_INPUT_COEFFICIENTS == KEYSPOT_NUM_COEFFICIENTS, model_input_shape);

static float s_frame[KEYSPOT_FFT_SIZE];
static float s_power[KEYSPOT_FFT_BINS];
static float s_log_mel[KEYSPOT_MEL_BINS];

float keyspot_decibels(float x)
{
    /* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s),
       s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^9 (error < 2e-9). */
    static const float ln2_hi = 6.93145751953125e-01f;   /* 16 bits: e * ln2_hi is exact */
    static const float ln2_lo = 1.42860682030941723212e-06f;
    static const float db_per_ln = 4.34294481903251827651f;  /* 10 / ln 10 */
    if (!(x > 0.0f)) {
        return -HUGE_VALF;
    }
    int e;
    float m = frexpf(x, &e);
    if (m < 0.70710678118654752f) {
        m *= 2.0f;
        e -= 1;
    }
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float series = s2 * (1.0f / 3.0f + s2 * (1.0f / 5.0f + s2 * (1.0f / 7.0f + s2 * (1.0f / 9.0f))));
    float ln_m = 2.0f * s + 2.0f * s * series;
    float fe = (float)e;
    float ln_x = fe * ln2_hi + (ln_m + fe * ln2_lo);
    return ln_x * db_per_ln;
}

void keyspot_frontend_frame(const int16_t *samples, float *features)
{
    /* Window at the start of the FFT frame, zeros after: the power spectrum is
       the same as with the window centred, as in the Python reference. */
    for (int i = 0; i < KEYSPOT_WINDOW_SAMPLES; ++i) {
        s_frame[i] = ((float)samples[i] / 32768.0f) * g_frontend_window[i];
    }
    for (int i = KEYSPOT_WINDOW_SAMPLES; i < KEYSPOT_FFT_SIZE; ++i) {
        s_frame[i] = 0.0f;
    }
    (void)keyspot_rfft_power(s_frame, KEYSPOT_FFT_SIZE, g_frontend_twiddle, s_power);

    for (int m = 0; m < KEYSPOT_MEL_BINS; ++m) {
        const float *w = &g_frontend_mel_weights[g_frontend_mel_offset[m]];
        const float *p = &s_power[g_frontend_mel_start[m]];
        int n = g_frontend_mel_offset[m + 1] - g_frontend_mel_offset[m];
        float mel = 0.0f;
        for (int j = 0; j < n; ++j) {
            mel += p[j] * w[j];
        }
        s_log_mel[m] = keyspot_decibels(mel > KEYSPOT_LOG_FLOOR ? mel : KEYSPOT_LOG_FLOOR);
    }

#if KEYSPOT_FEATURE_KIND_MFCC
    for (int k = 0; k < KEYSPOT_NUM_MFCC; ++k) {
        const float *row = &g_frontend_dct[k * KEYSPOT_MEL_BINS];
        float sum = 0.0f;
        for (int m = 0; m < KEYSPOT_MEL_BINS; ++m) {
            sum += s_log_mel[m] * row[m];
        }
        features[k] = (sum - g_feature_mean[k]) / g_feature_std[k];
    }
#else
    for (int m = 0; m < KEYSPOT_MEL_BINS; ++m) {
        features[m] = (s_log_mel[m] - g_feature_mean[m]) / g_feature_std[m];
    }
#endif
}

void keyspot_frontend_quantize(const float *features, int8_t *quantized, int n)
{
    for (int i = 0; i < n; ++i) {
        /* nearbyintf in the default rounding mode rounds half to even, as np.round. */
        float q = nearbyintf(features[i] / KEYSPOT_INPUT_SCALE) + (float)KEYSPOT_INPUT_ZERO_POINT;
        quantized[i] = (int8_t)(q < -128.0f ? -128 : q > 127.0f ? 127 : (int)q);
    }
}

void keyspot_frontend_frame_int8(const int16_t *samples, int8_t *features)
{
    float frame[KEYSPOT_NUM_COEFFICIENTS];
    keyspot_frontend_frame(samples, frame);
    keyspot_frontend_quantize(frame, features, KEYSPOT_NUM_COEFFICIENTS);
}

void keyspot_frontend_clip(const int16_t *pcm, float *features)
{
    for (int f = 0; f < KEYSPOT_NUM_FRAMES; ++f) {
        keyspot_frontend_frame(&pcm[f * KEYSPOT_HOP_SAMPLES], &features[f * KEYSPOT_NUM_COEFFICIENTS]);
    }
}

void keyspot_frontend_clip_int8(const int16_t *pcm, int8_t *features)
{
    for (int f = 0; f < KEYSPOT_NUM_FRAMES; ++f) {
        keyspot_frontend_frame_int8(&pcm[f * KEYSPOT_HOP_SAMPLES],
                                    &features[f * KEYSPOT_NUM_COEFFICIENTS]);
    }
}
