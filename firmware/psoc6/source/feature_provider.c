/*
 * Feature provider; frame j covers samples [j * hop, j * hop + window), as
 * the frames of a training clip do, so the model input is the features of
 * the last ~1 s of audio.
 */
#include "feature_provider.h"

#include <string.h>

#include "audio_provider.h"
#include "frontend.h"

static int64_t next_frame;   /* index of the next frame to compute */

int feature_provider_update(int8_t *features, int32_t *end_ms)
{
    static int16_t window[KEYSPOT_WINDOW_SAMPLES];
    int64_t available = audio_provider_sample_count();
    int64_t last = (available - KEYSPOT_WINDOW_SAMPLES) / KEYSPOT_HOP_SAMPLES;  /* newest complete frame */
    if (available < KEYSPOT_WINDOW_SAMPLES || last < next_frame) {
        return 0;
    }
    /* Fell behind by more than a clip: only the last clip's frames matter. */
    if (last - next_frame >= KEYSPOT_NUM_FRAMES) {
        next_frame = last - KEYSPOT_NUM_FRAMES + 1;
    }
    int fresh = 0;
    for (; next_frame <= last; ++next_frame) {
        int8_t *newest = features + (KEYSPOT_NUM_FRAMES - 1) * KEYSPOT_NUM_COEFFICIENTS;
        memmove(features, features + KEYSPOT_NUM_COEFFICIENTS,
                (KEYSPOT_NUM_FRAMES - 1) * KEYSPOT_NUM_COEFFICIENTS);
        if (audio_provider_read(next_frame * KEYSPOT_HOP_SAMPLES, window, KEYSPOT_WINDOW_SAMPLES) == 0) {
            keyspot_frontend_frame_int8(window, newest);
        } else {
            /* Overwritten already (the loop stalled): a neutral frame. */
            memset(newest, KEYSPOT_INPUT_ZERO_POINT, KEYSPOT_NUM_COEFFICIENTS);
        }
        ++fresh;
    }
    *end_ms = (int32_t)(((last * KEYSPOT_HOP_SAMPLES + KEYSPOT_WINDOW_SAMPLES) * 1000) / KEYSPOT_SAMPLE_RATE);
    return fresh;
}
