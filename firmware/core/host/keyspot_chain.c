/*
 * Host twin of the QEMU image's whole chain: int16 PCM clips in, for each the
 * int8 features, the C engine's scores and the label out, in the lines of
 * qemu/clip_report.h. Built against a folder c-export wrote with
 * export.engine=c; tests compare its output with the Cortex-M4F's.
 *
 *   keyspot_chain IN     (clips of KEYSPOT_CLIP_SAMPLES int16; "-" for stdin)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clip_report.h"
#include "engine_model.h"
#include "frontend.h"

int main(int argc, char **argv)
{
    static int16_t pcm[KEYSPOT_CLIP_SAMPLES];
    static int8_t features[KEYSPOT_FEATURE_ELEMENTS];
    if (argc != 2) {
        fprintf(stderr, "usage: %s IN  (int16 clips of %d samples; '-' for stdin)\n", argv[0],
                KEYSPOT_CLIP_SAMPLES);
        return 2;
    }
    FILE *in = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "rb");
    if (in == NULL) {
        fprintf(stderr, "keyspot_chain: cannot open %s\n", argv[1]);
        return 2;
    }
    for (int clip = 0;; ++clip) {
        size_t got = fread(pcm, sizeof(pcm[0]), KEYSPOT_CLIP_SAMPLES, in);
        if (got == 0) {
            break;
        }
        if (got != KEYSPOT_CLIP_SAMPLES) {
            fprintf(stderr, "keyspot_chain: %s: clip %d has %zu samples, expected %d\n", argv[1], clip, got,
                    KEYSPOT_CLIP_SAMPLES);
            return 1;
        }
        keyspot_frontend_clip_int8(pcm, features);
        keyspot_print_bytes(clip, "int8", features, KEYSPOT_FEATURE_ELEMENTS);
        memcpy(keyspot_engine_input(), features, KEYSPOT_INPUT_ELEMENTS);
        keyspot_engine_invoke();
        keyspot_print_scores(clip, keyspot_engine_output());
    }
    printf("done\n");
    return 0;
}
