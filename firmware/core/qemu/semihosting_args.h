/*
 * The command line QEMU passes to a semihosted image
 * (`-semihosting-config enable=on,arg=PROGRAM,arg=...`), as argc and argv:
 * the startup code here calls main() without arguments.
 */
#ifndef KEYSPOT_QEMU_SEMIHOSTING_ARGS_H_
#define KEYSPOT_QEMU_SEMIHOSTING_ARGS_H_

/* Splits the command line at spaces into at most `max` arguments held in a
   static buffer; returns their number, 0 if the debugger gives none. */
int keyspot_semihosting_args(char **argv, int max);

#endif /* KEYSPOT_QEMU_SEMIHOSTING_ARGS_H_ */
