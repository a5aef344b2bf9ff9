/*
 * keyspot on PSoC 6: bring up the board and the UART, set up TFLite Micro on
 * the generated model, run one inference on a neutral input and print the
 * top label.
 *
 * A neutral input is a clip whose normalised features are all 0.0 (every
 * coefficient at its training mean), i.e. KEYSPOT_INPUT_ZERO_POINT once
 * quantised. A live application would instead fill the input from the
 * microphone through the feature frontend described by feature_config.h.
 */
#include <stdint.h>
#include <stdio.h>

#include "cy_retarget_io.h"
#include "cybsp.h"
#include "cyhal.h"

#include "feature_config.h"
#include "labels.h"
#include "model_data.h"
#include "model_runner.h"
#include "model_settings.h"

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
    printf("keyspot: %d labels, %d x %d %s features, %u-byte model\r\n",
           KEYSPOT_NUM_LABELS, KEYSPOT_INPUT_FRAMES, KEYSPOT_INPUT_COEFFICIENTS,
           KEYSPOT_FEATURE_KIND, g_model_data_len);

    if (model_runner_init() != 0) {
        halt("model setup failed");
    }
    printf("keyspot: tensor arena %u of %u bytes used\r\n",
           (unsigned)model_runner_arena_used(), (unsigned)KEYSPOT_TENSOR_ARENA_BYTES);

    int8_t *input = model_runner_input();
    for (int i = 0; i < KEYSPOT_INPUT_ELEMENTS; ++i) {
        input[i] = (int8_t)KEYSPOT_INPUT_ZERO_POINT;
    }
    if (model_runner_invoke() != 0) {
        halt("inference failed");
    }

    const int8_t *scores = model_runner_output();
    int best = 0;
    for (int i = 1; i < KEYSPOT_NUM_LABELS; ++i) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    /* Dequantise to a probability; print in percent to stay clear of
       newlib-nano's float printf. */
    float probability = KEYSPOT_OUTPUT_SCALE * (float)(scores[best] - KEYSPOT_OUTPUT_ZERO_POINT);
    printf("keyspot: top label \"%s\" (%d%%)\r\n", g_labels[best], (int)(probability * 100.0f + 0.5f));

    for (;;) {
        cyhal_syspm_sleep();
    }
}
