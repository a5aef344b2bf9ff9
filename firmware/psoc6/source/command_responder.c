/*
 * Command responder on the CY8CKIT-062S2-43012: UART line and user LED.
 */
#include "command_responder.h"

#include <stdio.h>

#include "cybsp.h"
#include "cyhal.h"

#include "labels.h"

int command_responder_init(void)
{
    return cyhal_gpio_init(CYBSP_USER_LED, CYHAL_GPIO_DIR_OUTPUT, CYHAL_GPIO_DRIVE_STRONG,
                           CYBSP_LED_STATE_OFF) == CY_RSLT_SUCCESS ? 0 : -1;
}

void command_responder_respond(int32_t time_ms, int label, int score)
{
    printf("keyspot: heard \"%s\" (score %d/255) at %ld ms\r\n", g_labels[label], score, (long)time_ms);
    cyhal_gpio_toggle(CYBSP_USER_LED);
}
