/*
 * Feature frontend: int16 PCM to the model's features, as keyspot.features
 * computes them in Python (data/features/spec.json).
 *
 * Per frame of KEYSPOT_WINDOW_SAMPLES (frame k starts at k * KEYSPOT_HOP_SAMPLES,
 * no padding): periodic Hann window, power spectrum of a KEYSPOT_FFT_SIZE real
 * FFT, Slaney mel filters, 10*log10(max(mel, KEYSPOT_LOG_FLOOR)), for MFCC an
 * orthonormal DCT-II, then (x - mean) / std per coefficient. The int8 form is
 * the model input: clamp(round_half_even(x / scale) + zero_point, -128, 127).
 *
 * Every table comes from the generated folder (frontend_tables.h,
 * feature_config.h, model_settings.h), written by `dvc repro c-export`.
 * All arithmetic is float32 with the basic operations only (the logarithm is
 * computed here too), so a host build and a Cortex-M4F build give the same
 * bits. The functions share static scratch memory: not reentrant.
 */
#ifndef KEYSPOT_FRONTEND_H_
#define KEYSPOT_FRONTEND_H_

#include <stdint.h>

#include "frontend_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Features of one clip: KEYSPOT_NUM_FRAMES x KEYSPOT_NUM_COEFFICIENTS, row-major. */
#define KEYSPOT_FEATURE_ELEMENTS (KEYSPOT_NUM_FRAMES * KEYSPOT_NUM_COEFFICIENTS)

/* Normalised features of one frame from KEYSPOT_WINDOW_SAMPLES samples. */
void keyspot_frontend_frame(const int16_t *samples, float *features);

/* Quantise n normalised features to the model's int8 input. */
void keyspot_frontend_quantize(const float *features, int8_t *quantized, int n);

/* Normalised features of one frame, quantised to the model's int8 input. */
void keyspot_frontend_frame_int8(const int16_t *samples, int8_t *features);

/* Features of one clip of KEYSPOT_CLIP_SAMPLES samples, KEYSPOT_FEATURE_ELEMENTS
   values: float (normalised) or int8 (the model input). */
void keyspot_frontend_clip(const int16_t *pcm, float *features);
void keyspot_frontend_clip_int8(const int16_t *pcm, int8_t *features);

/* 10 * log10(x) for x > 0 in float32 from + - * / and frexpf only; exported
   for the tests. Returns -HUGE_VALF for x <= 0. */
float keyspot_decibels(float x);

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_FRONTEND_H_ */
