/*
 * Recognizer; see recognizer.h.
 */
#include "recognizer.h"

#include <string.h>

keyspot_recognizer_params keyspot_recognizer_default_params(void)
{
    keyspot_recognizer_params p;
    p.average_window_ms = 1000;
    p.detection_threshold = 200;
    p.suppression_ms = 1500;
    p.minimum_count = 3;
    p.ignore_mask = 0;
    return p;
}

int keyspot_recognizer_init(keyspot_recognizer *r, const keyspot_recognizer_params *params,
                            int num_labels)
{
    if (r == NULL || params == NULL || num_labels < 1 ||
        num_labels > KEYSPOT_RECOGNIZER_MAX_LABELS || params->average_window_ms < 0 ||
        params->suppression_ms < 0 || params->minimum_count < 1 ||
        params->minimum_count > KEYSPOT_RECOGNIZER_MAX_RESULTS) {
        return KEYSPOT_RECOGNIZER_BAD_ARGUMENT;
    }
    memset(r, 0, sizeof(*r));
    r->params = *params;
    r->num_labels = num_labels;
    return KEYSPOT_RECOGNIZER_OK;
}

int keyspot_recognizer_process(keyspot_recognizer *r, const uint8_t *scores, int32_t time_ms,
                               keyspot_recognition *out)
{
    out->found = 0;
    out->label = -1;
    out->score = 0;
    if (r->count > 0 && time_ms < r->last_time_ms) {
        return KEYSPOT_RECOGNIZER_TIME_BACKWARDS;
    }
    r->last_time_ms = time_ms;

    /* Append; when full, the oldest result gives way. */
    if (r->count == KEYSPOT_RECOGNIZER_MAX_RESULTS) {
        r->head = (r->head + 1) % KEYSPOT_RECOGNIZER_MAX_RESULTS;
        r->count -= 1;
    }
    int tail = (r->head + r->count) % KEYSPOT_RECOGNIZER_MAX_RESULTS;
    r->times[tail] = time_ms;
    memcpy(r->scores[tail], scores, (size_t)r->num_labels);
    r->count += 1;
    /* Drop what fell out of the averaging window. */
    while (r->count > 0 && time_ms - r->times[r->head] > r->params.average_window_ms) {
        r->head = (r->head + 1) % KEYSPOT_RECOGNIZER_MAX_RESULTS;
        r->count -= 1;
    }
    if (r->count < r->params.minimum_count) {
        return KEYSPOT_RECOGNIZER_OK;
    }

    int best = 0;
    int32_t best_sum = -1;
    for (int label = 0; label < r->num_labels; ++label) {
        int32_t sum = 0;
        for (int i = 0; i < r->count; ++i) {
            sum += r->scores[(r->head + i) % KEYSPOT_RECOGNIZER_MAX_RESULTS][label];
        }
        if (sum > best_sum) {
            best_sum = sum;
            best = label;
        }
    }
    out->label = best;
    out->score = (int)(best_sum / r->count);

    int ignored = (int)((r->params.ignore_mask >> best) & 1u);
    int suppressed = r->has_detection && time_ms - r->last_detection_ms <= r->params.suppression_ms;
    if (!ignored && !suppressed && out->score > r->params.detection_threshold) {
        out->found = 1;
        r->has_detection = 1;
        r->last_detection_ms = time_ms;
    }
    return KEYSPOT_RECOGNIZER_OK;
}

int keyspot_recognizer_process_int8(keyspot_recognizer *r, const int8_t *scores, int32_t time_ms,
                                    keyspot_recognition *out)
{
    uint8_t shifted[KEYSPOT_RECOGNIZER_MAX_LABELS];
    for (int i = 0; i < r->num_labels; ++i) {
        shifted[i] = (uint8_t)(scores[i] + 128);
    }
    return keyspot_recognizer_process(r, shifted, time_ms, out);
}
