/*
 * Cortex-M4F start-up for QEMU's mps2-an386 with newlib semihosting (rdimon):
 * vector table, FPU on, .data and .bss set up, then main() and exit().
 * Linked with -nostartfiles: newlib's rdimon crt0 asks the debugger for the
 * stack and heap (SYS_HEAPINFO), which the linker script already fixes here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t _stack_top, _sidata, _sdata, _edata, _sbss, _ebss;

extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(void);

/* __libc_init_array calls these; crti.o would bring them, -nostartfiles does not. */
void _init(void) {}
void _fini(void) {}

/* C++ statics register their destructors against it (__cxa_atexit); crtbegin.o
   would define it, -nostartfiles leaves it out. The C images do not use it. */
void *__dso_handle = &__dso_handle;

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void)
{
    /* CP10 and CP11 (the FPU) full access, before any floating-point instruction. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

/* Any fault ends the run through semihosting with a non-zero status. */
static void Fault_Handler(void)
{
    _Exit(3);
}

typedef void (*vector)(void);

__attribute__((section(".isr_vector"), used))
const vector g_vectors[16] = {
    (vector)(uintptr_t)&_stack_top,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};
