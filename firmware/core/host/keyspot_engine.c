/*
 * Host test program for the C engine: int8 model inputs in, int8 outputs out.
 *
 *   keyspot_engine IN OUT [TRACE]
 *
 * IN ("-" for stdin) holds inputs of KEYSPOT_INPUT_ELEMENTS int8 back to back;
 * OUT ("-" for stdout) receives KEYSPOT_NUM_LABELS int8 per input. TRACE, if
 * given, receives every layer's output of every input as records of three
 * little-endian int32 (TFLite operator index, tensor index, bytes) followed by
 * the bytes, for tests that compare each tensor with the interpreter's.
 * Built with -DKEYSPOT_ENGINE_TRACE against a folder c-export wrote with
 * export.engine=c. `make qemu-engine` builds the same program for the
 * Cortex-M4F under QEMU, the files then read and written through semihosting
 * (KEYSPOT_SEMIHOSTED: the arguments come from QEMU's -semihosting-config).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine_model.h"
#include "model_settings.h"

static FILE *trace_file;
static int trace_failed;

static void put_int32(int32_t value)
{
    const uint32_t v = (uint32_t)value;
    const unsigned char bytes[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                    (unsigned char)(v >> 24)};
    if (fwrite(bytes, 1, 4, trace_file) != 4) {
        trace_failed = 1;
    }
}

void keyspot_engine_trace(int op, int tensor, const int8_t *data, int32_t bytes)
{
    if (trace_file == NULL) {
        return;
    }
    put_int32(op);
    put_int32(tensor);
    put_int32(bytes);
    if (fwrite(data, 1, (size_t)bytes, trace_file) != (size_t)bytes) {
        trace_failed = 1;
    }
}

static FILE *open_file(const char *path, const char *mode)
{
    if (strcmp(path, "-") == 0) {
        return mode[0] == 'r' ? stdin : stdout;
    }
    FILE *f = fopen(path, mode);
    if (f == NULL) {
        fprintf(stderr, "keyspot_engine: cannot open %s\n", path);
    }
    return f;
}

static int run(int argc, char **argv)
{
    static int8_t input[KEYSPOT_INPUT_ELEMENTS];
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s IN OUT [TRACE]  (int8 inputs of %d values; '-' for stdio)\n", argv[0],
                KEYSPOT_INPUT_ELEMENTS);
        return 2;
    }
    FILE *in = open_file(argv[1], "rb");
    FILE *out = open_file(argv[2], "wb");
    if (argc == 4) {
        trace_file = open_file(argv[3], "wb");
    }
    if (in == NULL || out == NULL || (argc == 4 && trace_file == NULL)) {
        return 2;
    }
    long count = 0;
    for (;;) {
        size_t got = fread(input, 1, sizeof(input), in);
        if (got == 0) {
            break;
        }
        if (got != sizeof(input)) {
            fprintf(stderr, "keyspot_engine: %s: input %ld has %zu values, expected %d\n", argv[1], count,
                    got, KEYSPOT_INPUT_ELEMENTS);
            return 1;
        }
        memcpy(keyspot_engine_input(), input, sizeof(input));
        keyspot_engine_invoke();
        if (fwrite(keyspot_engine_output(), 1, KEYSPOT_NUM_LABELS, out) != KEYSPOT_NUM_LABELS) {
            fprintf(stderr, "keyspot_engine: write failed\n");
            return 1;
        }
        ++count;
    }
    if (fflush(out) != 0 || (trace_file != NULL && fflush(trace_file) != 0) || trace_failed) {
        fprintf(stderr, "keyspot_engine: write failed\n");
        return 1;
    }
    return 0;
}

#ifdef KEYSPOT_SEMIHOSTED
#include "semihosting_args.h"

int main(void)
{
    char *argv[4];
    return run(keyspot_semihosting_args(argv, 4), argv);
}
#else
int main(int argc, char **argv)
{
    return run(argc, argv);
}
#endif
