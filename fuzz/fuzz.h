/* Fuzz targets (fuzz/README.md).  Each one takes one input, runs a parser
 * or builder of the daemon on it and checks what must hold whatever the
 * input; a broken invariant aborts (FUZZ_ASSERT), so that libFuzzer, and
 * the replay of fuzz/corpus and fuzz/regressions under make check
 * (tests/unit/check_fuzz.c), report it like a sanitizer would.
 *
 * The targets do not depend on libFuzzer: fuzz/entry.c turns one of them
 * into LLVMFuzzerTestOneInput for the fuzz/fuzz_NAME programs
 * (./configure --enable-fuzzing, CC=clang), and the unit test calls them
 * directly in the normal and sanitizer builds. */
#ifndef LB_FUZZ_H
#define LB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_ASSERT(cond)                                                      \
	do {                                                                   \
		if (!(cond))                                                   \
			fuzz_fail(#cond, __FILE__, __LINE__);                  \
	} while (0)

void fuzz_fail(const char *what, const char *file, int line)
    __attribute__((noreturn));
/* Logging off (the targets call it once; it is cheap). */
void fuzz_quiet(void);
/* A NUL-terminated copy of the input (malloc'ed; the input may hold NULs,
 * the copy then ends at the first one). */
char *fuzz_cstr(const uint8_t *data, size_t size);

int fuzz_smtp_reply(const uint8_t *data, size_t size);
int fuzz_proxy(const uint8_t *data, size_t size);
int fuzz_cfg(const uint8_t *data, size_t size);
int fuzz_ctl(const uint8_t *data, size_t size);
int fuzz_haproxy_import(const uint8_t *data, size_t size);
int fuzz_parse(const uint8_t *data, size_t size);
int fuzz_report(const uint8_t *data, size_t size);
int fuzz_cidr(const uint8_t *data, size_t size);
int fuzz_agent(const uint8_t *data, size_t size);
int fuzz_statefile(const uint8_t *data, size_t size);

struct fuzz_target {
	const char *name; /* fuzz/corpus/NAME, fuzz/regressions/NAME */
	int (*run)(const uint8_t *data, size_t size);
};
extern const struct fuzz_target fuzz_targets[]; /* ends with {NULL, NULL} */

#endif
