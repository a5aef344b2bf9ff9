/*
 * Audio capture: the PDM microphone as 16 kHz, 16-bit mono PCM in a ring
 * buffer, filled from the PDM/PCM interrupt.
 */
#ifndef AUDIO_PROVIDER_H_
#define AUDIO_PROVIDER_H_

#include <stdint.h>

/* Start the PDM/PCM block at KEYSPOT_SAMPLE_RATE. Returns 0, or -1 on failure. */
int audio_provider_init(void);

/* Samples captured since start; sample i was taken at i * 1000 / rate ms. */
int64_t audio_provider_sample_count(void);

/* Copy n samples [start, start + n) into dst. Returns 0, or -1 if they are
   not all in the ring buffer any more (or not yet). */
int audio_provider_read(int64_t start, int16_t *dst, int n);

#endif /* AUDIO_PROVIDER_H_ */
