/*
 * The generated keyspot model behind a small C API, whichever runtime
 * c-export wrote it for (export.engine): TensorFlow Lite Micro
 * (model_runner.cpp: g_model_data, the tensor arena size and the operators
 * to register) or keyspot's C engine (model_runner_c.c: engine_model.c).
 * Everything model-specific comes from source/generated/.
 */
#ifndef MODEL_RUNNER_H_
#define MODEL_RUNNER_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Set up the interpreter on the generated model and allocate its tensors.
   Call once. Returns 0, or a negative code after printing why. */
int model_runner_init(void);

/* The int8 input tensor: KEYSPOT_INPUT_FRAMES x KEYSPOT_INPUT_COEFFICIENTS
   quantised features, row-major. */
int8_t *model_runner_input(void);

/* Run the model on the current input. Returns 0 on success. */
int model_runner_invoke(void);

/* The int8 output tensor: KEYSPOT_NUM_LABELS quantised scores, in the
   order of g_labels. */
const int8_t *model_runner_output(void);

/* Bytes of the tensor arena the interpreter actually uses; for the C
   engine, its activation buffers and scratch. */
size_t model_runner_arena_used(void);

#ifdef __cplusplus
}
#endif

#endif /* MODEL_RUNNER_H_ */
