/*
 * On-target check of the frontend under QEMU (mps2-an386, Cortex-M4F):
 * computes the features of the clips in test_clips.c (written by
 * tests/test_firmware_core.py) and prints them over semihosting, for the test
 * to compare with the host build's output:
 *
 *   clip N int8 <hex bytes>
 *   clip N float <hex of each float32's bits, 8 digits, little-endian order of values>
 *   done
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "frontend.h"
#include "test_clips.h"

static float features[KEYSPOT_FEATURE_ELEMENTS];
static int8_t quantized[KEYSPOT_FEATURE_ELEMENTS];

int main(void)
{
    for (int c = 0; c < KEYSPOT_TEST_CLIPS; ++c) {
        keyspot_frontend_clip(g_test_clips[c], features);
        keyspot_frontend_clip_int8(g_test_clips[c], quantized);
        printf("clip %d int8 ", c);
        for (int i = 0; i < KEYSPOT_FEATURE_ELEMENTS; ++i) {
            printf("%02x", (unsigned)(uint8_t)quantized[i]);
        }
        printf("\nclip %d float ", c);
        for (int i = 0; i < KEYSPOT_FEATURE_ELEMENTS; ++i) {
            uint32_t bits;
            memcpy(&bits, &features[i], sizeof(bits));
            printf("%08lx", (unsigned long)bits);
        }
        printf("\n");
    }
    printf("done\n");
    return 0;
}
