/*
 * Host test program for the recognizer: scores in, detections out.
 *
 *   keyspot_recognize [--every] NUM_LABELS [window_ms threshold suppression_ms minimum_count ignore_mask]
 *
 * Reads lines "TIME_MS S0 S1 ... S(NUM_LABELS-1)" of int8 scores from stdin
 * and prints "TIME_MS LABEL SCORE" for each new detection; with --every,
 * "TIME_MS LABEL SCORE FOUND" for every result, detection or not. Parameters left
 * out come from the generated folder's recognizer_config.h when the program
 * is built against one (make GENERATED=...), else micro_speech's defaults
 * with no label ignored.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recognizer.h"
#ifdef KEYSPOT_HAVE_RECOGNIZER_CONFIG
#include "recognizer_config.h"
#endif

int main(int argc, char **argv)
{
    const char *program = argv[0];
    int every = argc > 1 && strcmp(argv[1], "--every") == 0;
    if (every) {
        --argc;
        ++argv;
    }
    if (argc != 2 && argc != 7) {
        fprintf(stderr, "usage: %s [--every] NUM_LABELS [window_ms threshold suppression_ms "
                        "minimum_count ignore_mask]\n", program);
        return 2;
    }
    int num_labels = atoi(argv[1]);
#ifdef KEYSPOT_HAVE_RECOGNIZER_CONFIG
    keyspot_recognizer_params params = keyspot_recognizer_config();
#else
    keyspot_recognizer_params params = keyspot_recognizer_default_params();
#endif
    if (argc == 7) {
        params.average_window_ms = (int32_t)atol(argv[2]);
        params.detection_threshold = (int32_t)atol(argv[3]);
        params.suppression_ms = (int32_t)atol(argv[4]);
        params.minimum_count = (int32_t)atol(argv[5]);
        params.ignore_mask = (uint64_t)strtoull(argv[6], NULL, 0);
    }
    static keyspot_recognizer recognizer;
    if (keyspot_recognizer_init(&recognizer, &params, num_labels) != KEYSPOT_RECOGNIZER_OK) {
        fprintf(stderr, "keyspot_recognize: bad parameters\n");
        return 2;
    }
    long line = 0;
    long time_ms;
    while (scanf("%ld", &time_ms) == 1) {
        int8_t scores[KEYSPOT_RECOGNIZER_MAX_LABELS];
        ++line;
        for (int i = 0; i < num_labels; ++i) {
            int s;
            if (scanf("%d", &s) != 1 || s < -128 || s > 127) {
                fprintf(stderr, "keyspot_recognize: line %ld: expected %d int8 scores\n", line,
                        num_labels);
                return 1;
            }
            scores[i] = (int8_t)s;
        }
        keyspot_recognition result;
        int rc = keyspot_recognizer_process_int8(&recognizer, scores, (int32_t)time_ms, &result);
        if (rc != KEYSPOT_RECOGNIZER_OK) {
            fprintf(stderr, "keyspot_recognize: line %ld: error %d (time going backwards?)\n", line, rc);
            return 1;
        }
        if (every) {
            printf("%ld %d %d %d\n", time_ms, result.label, result.score, result.found);
        } else if (result.found) {
            printf("%ld %d %d\n", time_ms, result.label, result.score);
        }
    }
    return 0;
}
