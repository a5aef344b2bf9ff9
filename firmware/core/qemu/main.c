/*
 * On-target check under QEMU (mps2-an386, Cortex-M4F): computes the features
 * of the clips in test_clips.c (written by the tests) and prints them over
 * semihosting, for the tests to compare with the host build's output:
 *
 *   clip N int8 <hex bytes>
 *   clip N float <hex of each float32's bits, 8 digits, little-endian order of values>
 *   done
 *
 * Built against a folder c-export wrote with export.engine=c, it also runs
 * the whole chain, PCM -> frontend -> C engine -> label, and prints what
 * host/keyspot_chain prints (qemu/clip_report.h), plus how long each step took
 * on the FPGA counter of the board (a 32-bit count at 25 MHz, no SysTick):
 *
 *   counter 25000000 empty <ticks of two back-to-back reads>
 *   clip N scores <hex>
 *   clip N label <index> <name>
 *   clip N ticks frontend <ticks> engine <ticks>
 *
 * Under `qemu-system-arm -icount shift=S` QEMU's clock advances 2^S ns per
 * instruction, so ticks * 40 / 2^S counts instructions
 * (keyspot/export/engine_report.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clip_report.h"
#include "frontend.h"
#include "test_clips.h"

#ifdef KEYSPOT_ENGINE_C
#include "engine_model.h"
#endif

/* MPS2 FPGA system control: a free-running counter of the 25 MHz clock. */
#define FPGAIO_COUNTER (*(volatile uint32_t *)0x40028018u)
#define FPGAIO_COUNTER_HZ 25000000L

static float features[KEYSPOT_FEATURE_ELEMENTS];
static int8_t quantized[KEYSPOT_FEATURE_ELEMENTS];

int main(void)
{
#ifdef KEYSPOT_ENGINE_C
    uint32_t start = FPGAIO_COUNTER;
    uint32_t empty = FPGAIO_COUNTER - start;
    printf("counter %ld empty %lu\n", FPGAIO_COUNTER_HZ, (unsigned long)empty);
#endif
    for (int c = 0; c < KEYSPOT_TEST_CLIPS; ++c) {
        keyspot_frontend_clip(g_test_clips[c], features);
        uint32_t t0 = FPGAIO_COUNTER;
        keyspot_frontend_clip_int8(g_test_clips[c], quantized);
        uint32_t frontend_ticks = FPGAIO_COUNTER - t0;
        keyspot_print_bytes(c, "int8", quantized, KEYSPOT_FEATURE_ELEMENTS);
        printf("clip %d float ", c);
        for (int i = 0; i < KEYSPOT_FEATURE_ELEMENTS; ++i) {
            uint32_t bits;
            memcpy(&bits, &features[i], sizeof(bits));
            printf("%08lx", (unsigned long)bits);
        }
        printf("\n");
#ifdef KEYSPOT_ENGINE_C
        memcpy(keyspot_engine_input(), quantized, KEYSPOT_INPUT_ELEMENTS);
        uint32_t t1 = FPGAIO_COUNTER;
        keyspot_engine_invoke();
        uint32_t engine_ticks = FPGAIO_COUNTER - t1;
        keyspot_print_scores(c, keyspot_engine_output());
        printf("clip %d ticks frontend %lu engine %lu\n", c, (unsigned long)frontend_ticks,
               (unsigned long)engine_ticks);
#else
        (void)frontend_ticks;
#endif
    }
    printf("done\n");
    return 0;
}
