/*
 * Recognizer: turns a stream of per-inference scores into keyword detections,
 * as micro_speech's RecognizeCommands does.
 *
 * Scores of the last average_window_ms are averaged per label; once at least
 * minimum_count results are in the window, the top averaged label is detected
 * when its score exceeds detection_threshold, it is not ignored, and no
 * detection happened in the last suppression_ms. Which labels are ignored
 * (_silence_ and _unknown_) is found by name: c-export writes the mask and the
 * other parameters into the generated recognizer_config.h
 * (keyspot_recognizer_config()); nothing here assumes a label's position. Unlike micro_speech, suppression holds for every
 * label, not only a repeat of the same one: one spoken word, one detection.
 *
 * Scores are 0..255 (uint8), or int8 model outputs shifted by +128, which for
 * a softmax output (scale 1/256, zero point -128) is probability * 256.
 */
#ifndef KEYSPOT_RECOGNIZER_H_
#define KEYSPOT_RECOGNIZER_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef KEYSPOT_RECOGNIZER_MAX_LABELS
#define KEYSPOT_RECOGNIZER_MAX_LABELS 64   /* ignore_mask has one bit per label */
#endif
#ifndef KEYSPOT_RECOGNIZER_MAX_RESULTS
#define KEYSPOT_RECOGNIZER_MAX_RESULTS 64  /* results kept inside one window */
#endif

typedef struct {
    int32_t average_window_ms;    /* default 1000 */
    int32_t detection_threshold;  /* of 255; default 200 */
    int32_t suppression_ms;       /* default 1500 */
    int32_t minimum_count;        /* results needed in the window; default 3 */
    uint64_t ignore_mask;         /* bit i set: label i is never detected; default none */
} keyspot_recognizer_params;

typedef struct {
    int found;        /* 1 if this result is a new detection */
    int label;        /* top label of the averaged scores, -1 before minimum_count results */
    int score;        /* its averaged score, 0..255 */
} keyspot_recognition;

typedef struct {
    keyspot_recognizer_params params;
    int num_labels;
    int head, count;                     /* ring buffer of results */
    int32_t times[KEYSPOT_RECOGNIZER_MAX_RESULTS];
    uint8_t scores[KEYSPOT_RECOGNIZER_MAX_RESULTS][KEYSPOT_RECOGNIZER_MAX_LABELS];
    int has_detection;
    int32_t last_detection_ms;
    int32_t last_time_ms;
} keyspot_recognizer;

/* Return codes. */
#define KEYSPOT_RECOGNIZER_OK 0
#define KEYSPOT_RECOGNIZER_BAD_ARGUMENT (-1)
#define KEYSPOT_RECOGNIZER_TIME_BACKWARDS (-2)

/* micro_speech's averaging, threshold, suppression and count; no label ignored. */
keyspot_recognizer_params keyspot_recognizer_default_params(void);

/* Set up for num_labels (1..KEYSPOT_RECOGNIZER_MAX_LABELS) labels. */
int keyspot_recognizer_init(keyspot_recognizer *r, const keyspot_recognizer_params *params,
                            int num_labels);

/* Add the scores of one inference made at time_ms (not earlier than the last). */
int keyspot_recognizer_process(keyspot_recognizer *r, const uint8_t *scores, int32_t time_ms,
                               keyspot_recognition *out);
int keyspot_recognizer_process_int8(keyspot_recognizer *r, const int8_t *scores, int32_t time_ms,
                                    keyspot_recognition *out);

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_RECOGNIZER_H_ */
