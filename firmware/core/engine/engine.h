/*
 * keyspot's C engine: the int8 model as plain C. `c-export` with
 * export.engine=c writes engine_model.c/.h into the generated folder: the
 * weights, biases and requantisation constants as const arrays, and
 * keyspot_engine_invoke() as a fixed sequence of calls to the kernels of
 * kernels.h over two static activation buffers sized at export time. No
 * interpreter, no allocation; the output equals TFLite's reference kernels
 * byte for byte (tests/test_c_engine.py).
 *
 *   int8_t *in = keyspot_engine_input();       // write KEYSPOT_INPUT_ELEMENTS features
 *   keyspot_engine_invoke();
 *   const int8_t *scores = keyspot_engine_output();   // KEYSPOT_NUM_LABELS
 *
 * Not reentrant; an inference overwrites its input, so write the input
 * before every call.
 */
#ifndef KEYSPOT_ENGINE_ENGINE_H_
#define KEYSPOT_ENGINE_ENGINE_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int8_t *keyspot_engine_input(void);
void keyspot_engine_invoke(void);
const int8_t *keyspot_engine_output(void);

#ifdef KEYSPOT_ENGINE_TRACE
/* Compiling engine_model.c with -DKEYSPOT_ENGINE_TRACE makes it call this
   after every layer with the layer's output (the TFLite operator index and
   output tensor index name it), for tests that compare every intermediate
   tensor with the interpreter's. Firmware builds leave it out. */
void keyspot_engine_trace(int op, int tensor, const int8_t *data, int32_t bytes);
#endif

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_ENGINE_ENGINE_H_ */
