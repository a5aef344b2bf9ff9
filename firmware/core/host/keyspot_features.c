/*
 * Host test program: features of raw int16 PCM clips, as the firmware computes them.
 *
 *   keyspot_features IN FLOAT_OUT INT8_OUT
 *
 * IN ("-" for stdin) holds whole clips of KEYSPOT_CLIP_SAMPLES little-endian
 * int16 samples back to back. For each clip, FLOAT_OUT receives
 * KEYSPOT_FEATURE_ELEMENTS float32 (normalised features, row-major) and
 * INT8_OUT as many int8 (the model input). Either may be "-" for stdout.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "frontend.h"

static FILE *open_file(const char *path, const char *mode)
{
    if (strcmp(path, "-") == 0) {
        return mode[0] == 'r' ? stdin : stdout;
    }
    FILE *f = fopen(path, mode);
    if (f == NULL) {
        fprintf(stderr, "keyspot_features: cannot open %s\n", path);
    }
    return f;
}

int main(int argc, char **argv)
{
    static int16_t pcm[KEYSPOT_CLIP_SAMPLES];
    static float features[KEYSPOT_FEATURE_ELEMENTS];
    static int8_t quantized[KEYSPOT_FEATURE_ELEMENTS];

    if (argc != 4) {
        fprintf(stderr, "usage: %s IN FLOAT_OUT INT8_OUT  (int16 clips of %d samples; '-' for stdio)\n",
                argv[0], KEYSPOT_CLIP_SAMPLES);
        return 2;
    }
    FILE *in = open_file(argv[1], "rb");
    FILE *out_float = open_file(argv[2], "wb");
    FILE *out_int8 = open_file(argv[3], "wb");
    if (in == NULL || out_float == NULL || out_int8 == NULL) {
        return 2;
    }
    long clips = 0;
    for (;;) {
        size_t got = fread(pcm, sizeof(pcm[0]), KEYSPOT_CLIP_SAMPLES, in);
        if (got == 0) {
            break;
        }
        if (got != KEYSPOT_CLIP_SAMPLES) {
            fprintf(stderr, "keyspot_features: %s: clip %ld has %zu samples, expected %d\n",
                    argv[1], clips, got, KEYSPOT_CLIP_SAMPLES);
            return 1;
        }
        keyspot_frontend_clip(pcm, features);
        keyspot_frontend_quantize(features, quantized, KEYSPOT_FEATURE_ELEMENTS);
        if (fwrite(features, sizeof(features), 1, out_float) != 1 ||
            fwrite(quantized, sizeof(quantized), 1, out_int8) != 1) {
            fprintf(stderr, "keyspot_features: write failed\n");
            return 1;
        }
        ++clips;
    }
    if (fflush(out_float) != 0 || fflush(out_int8) != 0) {
        fprintf(stderr, "keyspot_features: write failed\n");
        return 1;
    }
    return 0;
}
