/* See clip_report.h. */
#include "clip_report.h"

#include <stdio.h>

#include "model_settings.h"

#if defined(KEYSPOT_ENGINE_C) || defined(KEYSPOT_PRINT_SCORES)
#include "labels.h"
#endif

void keyspot_print_bytes(int clip, const char *kind, const int8_t *data, int n)
{
    printf("clip %d %s ", clip, kind);
    for (int i = 0; i < n; ++i) {
        printf("%02x", (unsigned)(uint8_t)data[i]);
    }
    printf("\n");
}

#if defined(KEYSPOT_ENGINE_C) || defined(KEYSPOT_PRINT_SCORES)
void keyspot_print_scores(int clip, const int8_t *scores)
{
    int best = 0;
    for (int i = 1; i < KEYSPOT_NUM_LABELS; ++i) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    keyspot_print_bytes(clip, "scores", scores, KEYSPOT_NUM_LABELS);
    printf("clip %d label %d %s\n", clip, best, g_labels[best]);
}
#endif
