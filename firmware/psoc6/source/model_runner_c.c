/*
 * keyspot's C engine (firmware/core/engine) behind the model_runner API, for
 * models c-export wrote with export.engine=c: model_settings.h then defines
 * KEYSPOT_ENGINE_C, and the generated engine_model.c holds the model as
 * constant arrays and a fixed sequence of kernel calls. No interpreter, no
 * arena; the activation buffers are static. Compiles to nothing for
 * export.engine=tflm, where model_runner.cpp runs TensorFlow Lite Micro.
 */
#include "model_settings.h"

#ifdef KEYSPOT_ENGINE_C

#include "engine_model.h"
#include "model_runner.h"

int model_runner_init(void)
{
    return 0;
}

/* The engine reuses its input buffer during an inference: main.c writes the
   features into it before every call. */
int8_t *model_runner_input(void)
{
    return keyspot_engine_input();
}

int model_runner_invoke(void)
{
    keyspot_engine_invoke();
    return 0;
}

const int8_t *model_runner_output(void)
{
    return keyspot_engine_output();
}

size_t model_runner_arena_used(void)
{
    return KEYSPOT_ENGINE_RAM_BYTES;
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int keyspot_model_runner_c_is_unused;
#endif /* KEYSPOT_ENGINE_C */
