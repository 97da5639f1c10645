/* Building a reply body for the status pages: an evbuffer that remembers
 * whether any append failed (out of memory), with HTML escaping. */
#ifndef LB_RENDER_H
#define LB_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

struct out {
	struct evbuffer *b;
	bool err;
};

void outf(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* n bytes as they are (arg: the struct out). */
void out_put(void *arg, const char *p, size_t n);
/* Text escaped for HTML. */
void out_esc(struct out *o, const char *s);

#endif
