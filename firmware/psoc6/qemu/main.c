/*
 * The board's model runner on a Cortex-M4F under QEMU (mps2-an386): for each
 * clip of test_clips.c, the frontend of firmware/core computes the int8
 * features, source/model_runner.cpp (TensorFlow Lite Micro, Infineon's
 * prebuilt library with CMSIS-NN) or source/model_runner_c.c (keyspot's C
 * engine, export.engine=c) runs the model, and the lines below go out over
 * semihosting for the tests (tests/test_psoc6_firmware.py) and the engine
 * report to read:
 *
 *   counter 25000000 empty <ticks of two back-to-back reads>
 *   runtime tflm|c
 *   arena used <bytes> of <bytes>
 *   clip N int8 <hex>
 *   clip N scores <hex>
 *   clip N label <index> <name>
 *   clip N ticks frontend <ticks> engine <ticks>
 *   done
 *
 * Under `qemu-system-arm -icount shift=S` the 25 MHz FPGA counter around
 * model_runner_invoke() counts instructions (keyspot.export.engine_report).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clip_report.h"
#include "frontend.h"
#include "model_runner.h"
#include "model_settings.h"
#include "test_clips.h"

/* MPS2 FPGA system control: a free-running counter of the 25 MHz clock. */
#define FPGAIO_COUNTER (*(volatile uint32_t *)0x40028018u)
#define FPGAIO_COUNTER_HZ 25000000L

#ifdef KEYSPOT_ENGINE_C
#define RUNTIME "c"
#define ARENA_BYTES KEYSPOT_ENGINE_RAM_BYTES
#else
#define RUNTIME "tflm"
#define ARENA_BYTES KEYSPOT_TENSOR_ARENA_BYTES
#endif

static int8_t features[KEYSPOT_INPUT_ELEMENTS];

int main(void)
{
    uint32_t start = FPGAIO_COUNTER;
    uint32_t empty = FPGAIO_COUNTER - start;
    printf("counter %ld empty %lu\n", FPGAIO_COUNTER_HZ, (unsigned long)empty);
    printf("runtime %s\n", RUNTIME);
    if (model_runner_init() != 0) {
        printf("model setup failed\n");
        return 1;
    }
    for (int c = 0; c < KEYSPOT_TEST_CLIPS; ++c) {
        uint32_t t0 = FPGAIO_COUNTER;
        keyspot_frontend_clip_int8(g_test_clips[c], features);
        uint32_t frontend_ticks = FPGAIO_COUNTER - t0;
        keyspot_print_bytes(c, "int8", features, KEYSPOT_INPUT_ELEMENTS);
        memcpy(model_runner_input(), features, sizeof(features));
        uint32_t t1 = FPGAIO_COUNTER;
        int rc = model_runner_invoke();
        uint32_t engine_ticks = FPGAIO_COUNTER - t1;
        if (rc != 0) {
            printf("clip %d inference failed\n", c);
            return 1;
        }
        keyspot_print_scores(c, model_runner_output());
        printf("clip %d ticks frontend %lu engine %lu\n", c, (unsigned long)frontend_ticks,
               (unsigned long)engine_ticks);
    }
    /* After the inferences: TFLite Micro's figure includes what they allocated. */
    printf("arena used %u of %u\n", (unsigned)model_runner_arena_used(), (unsigned)ARENA_BYTES);
    printf("done\n");
    return 0;
}
