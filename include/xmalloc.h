/* Allocators that exit on failure: start-up and configuration only.  The
 * data path uses calloc() and closes just the affected session. */
#ifndef LB_XMALLOC_H
#define LB_XMALLOC_H

#include <stddef.h>

void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
