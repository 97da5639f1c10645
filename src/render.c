/* Reply bodies (see render.h). */
#include "config.h"

#include <stdarg.h>

#include "render.h"
#include "timeline.h"

void
outf(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->b, fmt, ap) < 0)
		o->err = true;
	va_end(ap);
}

void
out_put(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	if (evbuffer_add(o->b, p, n) < 0)
		o->err = true;
}

void
out_esc(struct out *o, const char *s)
{
	timeline_escape(s, out_put, o);
}
