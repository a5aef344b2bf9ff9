/*
 * PDM/PCM capture with the ModusToolbox HAL (cyhal_pdm_pcm): asynchronous
 * reads of one block each, chained from the completion interrupt into a
 * ring buffer.
 */
#include "audio_provider.h"

#include "cybsp.h"
#include "cyhal.h"

#include "feature_config.h"

/* The kit's PDM microphone: data on P10_5, clock on P10_4 (kit guide). BSPs
   before v4 have no names for them. */
#ifndef CYBSP_PDM_DATA
#define CYBSP_PDM_DATA P10_5
#define CYBSP_PDM_CLK P10_4
#endif

#define AUDIO_CLOCK_HZ 24576000u          /* a multiple of 16 kHz * decimation */
#define DECIMATION_RATE 64u
#define BLOCK_SAMPLES 320u                /* 20 ms */
#define RING_SAMPLES (2u * KEYSPOT_SAMPLE_RATE)  /* 2 s: a clip plus slack */

static cyhal_pdm_pcm_t pdm;
static cyhal_clock_t pll_clock, audio_clock;
static int16_t blocks[2][BLOCK_SAMPLES];
static int current;
static int16_t ring[RING_SAMPLES];
static volatile int64_t captured;

static void on_block(void *arg, cyhal_pdm_pcm_event_t event)
{
    (void)arg;
    if ((event & CYHAL_PDM_PCM_ASYNC_COMPLETE) == 0u) {
        return;
    }
    const int16_t *block = blocks[current];
    current ^= 1;
    cyhal_pdm_pcm_read_async(&pdm, blocks[current], BLOCK_SAMPLES);
    int64_t n = captured;
    for (uint32_t i = 0; i < BLOCK_SAMPLES; ++i) {
        ring[(uint32_t)((n + i) % RING_SAMPLES)] = block[i];
    }
    captured = n + BLOCK_SAMPLES;
}

int audio_provider_init(void)
{
    const cyhal_pdm_pcm_cfg_t cfg = {
        .sample_rate = KEYSPOT_SAMPLE_RATE,
        .decimation_rate = DECIMATION_RATE,
        .mode = CYHAL_PDM_PCM_MODE_LEFT,
        .word_length = 16,
        .left_gain = 0,
        .right_gain = 0,
    };
    if (cyhal_clock_reserve(&pll_clock, &CYHAL_CLOCK_PLL[0]) != CY_RSLT_SUCCESS ||
        cyhal_clock_set_frequency(&pll_clock, AUDIO_CLOCK_HZ, NULL) != CY_RSLT_SUCCESS ||
        cyhal_clock_set_enabled(&pll_clock, true, true) != CY_RSLT_SUCCESS ||
        cyhal_clock_reserve(&audio_clock, &CYHAL_CLOCK_HF[1]) != CY_RSLT_SUCCESS ||
        cyhal_clock_set_source(&audio_clock, &pll_clock) != CY_RSLT_SUCCESS ||
        cyhal_clock_set_enabled(&audio_clock, true, true) != CY_RSLT_SUCCESS) {
        return -1;
    }
    if (cyhal_pdm_pcm_init(&pdm, CYBSP_PDM_DATA, CYBSP_PDM_CLK, &audio_clock, &cfg) != CY_RSLT_SUCCESS) {
        return -1;
    }
    cyhal_pdm_pcm_register_callback(&pdm, on_block, NULL);
    cyhal_pdm_pcm_enable_event(&pdm, CYHAL_PDM_PCM_ASYNC_COMPLETE, CYHAL_ISR_PRIORITY_DEFAULT, true);
    if (cyhal_pdm_pcm_start(&pdm) != CY_RSLT_SUCCESS ||
        cyhal_pdm_pcm_read_async(&pdm, blocks[current], BLOCK_SAMPLES) != CY_RSLT_SUCCESS) {
        return -1;
    }
    return 0;
}

int64_t audio_provider_sample_count(void)
{
    uint32_t state = cyhal_system_critical_section_enter();
    int64_t n = captured;
    cyhal_system_critical_section_exit(state);
    return n;
}

int audio_provider_read(int64_t start, int16_t *dst, int n)
{
    int64_t end = audio_provider_sample_count();
    /* Keep one block of margin: the interrupt may be overwriting the oldest. */
    if (start < 0 || start + n > end || start < end - (int64_t)(RING_SAMPLES - BLOCK_SAMPLES)) {
        return -1;
    }
    for (int i = 0; i < n; ++i) {
        dst[i] = ring[(uint32_t)((start + i) % RING_SAMPLES)];
    }
    return 0;
}
