/*
 * What the C engine adds to a Cortex-M4F image, for `make engine-size`: this
 * program is linked twice, with one inference and without the engine
 * (-DKEYSPOT_WITHOUT_ENGINE), from the same start-up code and libraries; the
 * difference in flash and RAM is the engine's: kernels, weights, libgcc's
 * double-precision helpers the fully connected requantisation calls, and the
 * activation buffers.
 */
#include "model_settings.h"

#ifndef KEYSPOT_WITHOUT_ENGINE
#include "engine_model.h"
#endif

int main(void)
{
#ifndef KEYSPOT_WITHOUT_ENGINE
    keyspot_engine_input()[0] = 0;
    keyspot_engine_invoke();
    return keyspot_engine_output()[0];
#else
    return 0;
#endif
}
