/* jansson_stdin.c - a stand-in for libc's stdin, linked into the Python extension (and
 * the binaries) that bench/gpu/prepare.sh and run.sh build against Debian's
 * libjansson.a.
 *
 * That archive is compiled for executables (PIE): json_loadf compares its argument
 * with stdin through a PC-relative reference, which a shared object cannot resolve
 * against libc ("relocation R_X86_64_PC32 against symbol `stdin' can not be used when
 * making a shared object"). The scripts rename the reference to hoist_jansson_stdin
 * (objcopy --redefine-sym) and add this file's object to the archive. The constructor
 * gives the stand-in stdin's value before anything can call json_loadf, which hoist
 * never does; only its error messages' "<stdin>" depends on it. */
#include <stdio.h>

FILE *hoist_jansson_stdin;

__attribute__((constructor)) static void hoist_jansson_stdin_init(void)
{
	hoist_jansson_stdin = stdin;
}
