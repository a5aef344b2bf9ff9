/*
 * TFLite Micro glue: one MicroInterpreter over the generated model, with the
 * generated op resolver and a statically allocated tensor arena.
 *
 * The runner for export.engine=tflm (the default). When c-export wrote the
 * model for keyspot's C engine instead, model_settings.h defines
 * KEYSPOT_ENGINE_C, this file compiles to nothing and model_runner_c.c
 * provides the same API.
 */
#include "model_settings.h"

#ifndef KEYSPOT_ENGINE_C

#include "model_runner.h"

#include <stdio.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_data.h"
#include "op_resolver.h"

namespace {

/* Size measured by the quantize stage with TFLite Micro itself. */
alignas(16) uint8_t tensor_arena[KEYSPOT_TENSOR_ARENA_BYTES];

KeyspotOpResolver op_resolver;
tflite::MicroInterpreter *interpreter = nullptr;

int fail(int code, const char *why) {
    printf("model_runner: %s\r\n", why);
    return code;
}

}  // namespace

extern "C" int model_runner_init(void) {
    const tflite::Model *model = tflite::GetModel(g_model_data);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        return fail(-1, "model schema version differs from this TFLite Micro");
    }
    if (keyspot_register_ops(op_resolver) != kTfLiteOk) {
        return fail(-2, "could not register the model's operators");
    }
    static tflite::MicroInterpreter static_interpreter(
        model, op_resolver, tensor_arena, KEYSPOT_TENSOR_ARENA_BYTES);
    interpreter = &static_interpreter;
    if (interpreter->AllocateTensors() != kTfLiteOk) {
        return fail(-3, "tensor arena too small (KEYSPOT_TENSOR_ARENA_BYTES)");
    }
    const TfLiteTensor *input = interpreter->input(0);
    if (input->type != kTfLiteInt8 || input->bytes != KEYSPOT_INPUT_ELEMENTS) {
        return fail(-4, "input tensor is not int8[KEYSPOT_INPUT_ELEMENTS]");
    }
    const TfLiteTensor *output = interpreter->output(0);
    if (output->type != kTfLiteInt8 || output->bytes != KEYSPOT_NUM_LABELS) {
        return fail(-5, "output tensor is not int8[KEYSPOT_NUM_LABELS]");
    }
    return 0;
}

extern "C" int8_t *model_runner_input(void) {
    return interpreter->input(0)->data.int8;
}

extern "C" int model_runner_invoke(void) {
    return interpreter->Invoke() == kTfLiteOk ? 0 : -1;
}

extern "C" const int8_t *model_runner_output(void) {
    return interpreter->output(0)->data.int8;
}

extern "C" size_t model_runner_arena_used(void) {
    return interpreter->arena_used_bytes();
}

#endif  /* KEYSPOT_ENGINE_C */
