/*
 * keyspot on PSoC 6: listen on the PDM microphone, compute the features of
 * the last second with the frontend of firmware/core (the same numbers as
 * training's, see tests/test_firmware_core.py), run the int8 model on them,
 * and report keywords through the recognizer (averaging, threshold,
 * suppression) on the UART and the user LED.
 *
 *   audio_provider -> feature_provider -> model_runner -> recognizer -> command_responder
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cy_retarget_io.h"
#include "cybsp.h"
#include "cyhal.h"

#include "audio_provider.h"
#include "command_responder.h"
#include "feature_config.h"
#include "feature_provider.h"
#include "labels.h"
#include "model_runner.h"
#include "model_settings.h"
#include "recognizer.h"
#include "recognizer_config.h"

#ifndef KEYSPOT_ENGINE_C
#include "model_data.h"
#endif

/* Run the model after this many new frames (20 ms each by default). */
#define FRAMES_PER_INFERENCE 5

static void halt(const char *why)
{
    printf("keyspot: %s\r\n", why);
    for (;;) {
    }
}

int main(void)
{
    cy_rslt_t result = cybsp_init();
    if (result != CY_RSLT_SUCCESS) {
        CY_ASSERT(0);
    }
    __enable_irq();

    result = cy_retarget_io_init(CYBSP_DEBUG_UART_TX, CYBSP_DEBUG_UART_RX,
                                 CY_RETARGET_IO_BAUDRATE);
    if (result != CY_RSLT_SUCCESS) {
        CY_ASSERT(0);
    }

    printf("\x1b[2J\x1b[;H");
#ifdef KEYSPOT_ENGINE_C
    printf("keyspot: %d labels, %d x %d %s features, C engine\r\n",
           KEYSPOT_NUM_LABELS, KEYSPOT_INPUT_FRAMES, KEYSPOT_INPUT_COEFFICIENTS,
           KEYSPOT_FEATURE_KIND);
#else
    printf("keyspot: %d labels, %d x %d %s features, %u-byte model\r\n",
           KEYSPOT_NUM_LABELS, KEYSPOT_INPUT_FRAMES, KEYSPOT_INPUT_COEFFICIENTS,
           KEYSPOT_FEATURE_KIND, g_model_data_len);
#endif

    if (model_runner_init() != 0) {
        halt("model setup failed");
    }
#ifdef KEYSPOT_ENGINE_C
    printf("keyspot: %u bytes of activation RAM\r\n", (unsigned)model_runner_arena_used());
#else
    printf("keyspot: tensor arena %u of %u bytes used\r\n",
           (unsigned)model_runner_arena_used(), (unsigned)KEYSPOT_TENSOR_ARENA_BYTES);
#endif

    static keyspot_recognizer recognizer;
    /* export.recognizer, and _silence_/_unknown_ ignored by name (generated). */
    keyspot_recognizer_params params = keyspot_recognizer_config();
    if (keyspot_recognizer_init(&recognizer, &params, KEYSPOT_NUM_LABELS) != KEYSPOT_RECOGNIZER_OK) {
        halt("recognizer setup failed");
    }
    if (command_responder_init() != 0) {
        halt("LED setup failed");
    }
    if (audio_provider_init() != 0) {
        halt("microphone (PDM/PCM) setup failed");
    }
    printf("keyspot: listening\r\n");

    /* Neutral until a clip's worth of frames has been computed. */
    static int8_t features[KEYSPOT_INPUT_ELEMENTS];
    memset(features, KEYSPOT_INPUT_ZERO_POINT, sizeof(features));
    int pending = 0;
    for (;;) {
        int32_t now_ms = 0;
        pending += feature_provider_update(features, &now_ms);
        if (pending < FRAMES_PER_INFERENCE) {
            cyhal_syspm_sleep();  /* until the next PDM block */
            continue;
        }
        pending = 0;
        memcpy(model_runner_input(), features, sizeof(features));
        if (model_runner_invoke() != 0) {
            halt("inference failed");
        }
        keyspot_recognition heard;
        if (keyspot_recognizer_process_int8(&recognizer, model_runner_output(), now_ms, &heard) ==
                KEYSPOT_RECOGNIZER_OK && heard.found) {
            command_responder_respond(now_ms, heard.label, heard.score);
        }
    }
}
