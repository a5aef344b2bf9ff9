#include "semihosting_args.h"

#include <stdint.h>

#define SYS_GET_CMDLINE 0x15

int keyspot_semihosting_args(char **argv, int max)
{
    static char line[1024];
    /* The call's block: the buffer, then its size, which the debugger
       replaces by the length it wrote. */
    uint32_t block[2] = {(uint32_t)(uintptr_t)line, sizeof(line)};
    register uint32_t op __asm__("r0") = SYS_GET_CMDLINE;
    register uint32_t arg __asm__("r1") = (uint32_t)(uintptr_t)block;
    __asm__ volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
    if (op != 0) {
        return 0;
    }
    int argc = 0;
    char *p = line;
    while (*p != '\0' && argc < max) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        argv[argc++] = p;
        while (*p != '\0' && *p != ' ') {
            ++p;
        }
    }
    return argc;
}
