/*
 * Feature provider: keeps the model input (the int8 features of the last
 * KEYSPOT_NUM_FRAMES frames) up to date from the captured audio, one frame
 * per KEYSPOT_HOP_SAMPLES, with the frontend of firmware/core.
 */
#ifndef FEATURE_PROVIDER_H_
#define FEATURE_PROVIDER_H_

#include <stdint.h>

/* Compute every frame whose samples have arrived and shift them into
   features (KEYSPOT_NUM_FRAMES x KEYSPOT_NUM_COEFFICIENTS int8). Returns the
   number of new frames; *end_ms is the time of the newest sample used. */
int feature_provider_update(int8_t *features, int32_t *end_ms);

#endif /* FEATURE_PROVIDER_H_ */
