/*
 * The lines the QEMU image and the host program keyspot_chain both print for
 * a clip, so that a test can compare the Cortex-M4F with the host byte for
 * byte:
 *
 *   clip N int8 <hex of the int8 features>
 *   clip N scores <hex of the int8 model outputs>       (builds that run a model:
 *   clip N label <index> <name>                          KEYSPOT_ENGINE_C or KEYSPOT_PRINT_SCORES)
 */
#ifndef KEYSPOT_CLIP_REPORT_H_
#define KEYSPOT_CLIP_REPORT_H_

#include <stdint.h>

#include "model_settings.h"

/* "clip N KIND " and n bytes as two hex digits each, then a newline. */
void keyspot_print_bytes(int clip, const char *kind, const int8_t *data, int n);

#if defined(KEYSPOT_ENGINE_C) || defined(KEYSPOT_PRINT_SCORES)
/* Print the engine's KEYSPOT_NUM_LABELS scores and the label with the
   highest score (the first of equal ones). */
void keyspot_print_scores(int clip, const int8_t *scores);
#endif

#endif /* KEYSPOT_CLIP_REPORT_H_ */
