/*
 * Command responder: what the board does on a detection.
 */
#ifndef COMMAND_RESPONDER_H_
#define COMMAND_RESPONDER_H_

#include <stdint.h>

/* Set up the user LED. Returns 0, or -1 on failure. */
int command_responder_init(void);

/* Print the detected label on the UART and toggle the user LED. */
void command_responder_respond(int32_t time_ms, int label, int score);

#endif /* COMMAND_RESPONDER_H_ */
