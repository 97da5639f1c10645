/* SMTP reply parser (src/smtp_reply.c).  The first byte picks how the
 * rest is cut into reads (1..16 bytes, or all at once); the same input is
 * parsed whole as well and both runs must see the same replies: a parser
 * fed by the network must not depend on where reads end. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_reply.h"

#define MAX_SEEN 64

struct seen {
	enum smtp_parse p;
	size_t end; /* offset after the bytes used */
	int code;
	unsigned nlines;
	int starttls;
	char text[512];
};

static struct smtp_reply reply; /* 4 KiB: not on the stack */

static size_t
run(const uint8_t *d, size_t n, size_t chunk, struct seen *seen)
{
	size_t off = 0, nseen = 0, start = 0;

	smtp_reply_init(&reply);
	while (off < n && nseen < MAX_SEEN) {
		size_t len = chunk == 0 || chunk > n - off ? n - off : chunk;
		size_t used = (size_t)-1;
		enum smtp_parse p =
		    smtp_reply_feed(&reply, (const char *)d + off, len, &used);

		FUZZ_ASSERT(used <= len);
		if (p == SMTP_NEED_MORE) {
			FUZZ_ASSERT(used == len);
			off += len;
			continue;
		}
		FUZZ_ASSERT(used >= 1);
		off += used;
		seen[nseen].p = p;
		seen[nseen].end = off;
		seen[nseen].code = reply.code;
		seen[nseen].nlines = reply.nlines;
		seen[nseen].starttls = reply.starttls;
		memcpy(seen[nseen].text, reply.text, sizeof(reply.text));
		if (p == SMTP_DONE) {
			FUZZ_ASSERT(reply.code >= 100 && reply.code <= 599);
			FUZZ_ASSERT(reply.nlines >= 1);
			FUZZ_ASSERT(off - start <= SMTP_REPLY_MAX);
			FUZZ_ASSERT(off >= 2 && d[off - 1] == '\n' &&
			            d[off - 2] == '\r');
			FUZZ_ASSERT(memchr(reply.text, '\0',
			                   sizeof(reply.text)) != NULL);
			for (const char *t = reply.text; *t != '\0'; t++)
				FUZZ_ASSERT((unsigned char)*t >= 0x20 ||
				            *t == '\t');
			/* The last line starts with the code. */
			{
				size_t ls = off - 2;
				while (ls > start && d[ls - 1] != '\n')
					ls--;
				FUZZ_ASSERT(off - ls >= 5);
				FUZZ_ASSERT((d[ls] - '0') * 100 +
				                (d[ls + 1] - '0') * 10 +
				                (d[ls + 2] - '0') ==
				            reply.code);
				FUZZ_ASSERT(d[ls + 3] == ' ' ||
				            d[ls + 3] == '\r');
			}
		} else {
			FUZZ_ASSERT(p == SMTP_ERR_BAD || p == SMTP_ERR_LONG);
			FUZZ_ASSERT(reply.error != NULL &&
			            reply.error[0] != '\0');
		}
		nseen++;
		start = off;
		smtp_reply_init(&reply);
	}
	return nseen;
}

int
fuzz_smtp_reply(const uint8_t *data, size_t size)
{
	static struct seen a[MAX_SEEN], b[MAX_SEEN];
	size_t na, nb, chunk;

	if (size == 0)
		return 0;
	chunk = data[0] % 17;
	data++;
	size--;
	na = run(data, size, 0, a);
	nb = run(data, size, chunk, b);
	FUZZ_ASSERT(na == nb);
	for (size_t i = 0; i < na; i++) {
		FUZZ_ASSERT(a[i].p == b[i].p && a[i].end == b[i].end);
		if (a[i].p == SMTP_DONE) {
			FUZZ_ASSERT(a[i].code == b[i].code);
			FUZZ_ASSERT(a[i].nlines == b[i].nlines);
			FUZZ_ASSERT(a[i].starttls == b[i].starttls);
			FUZZ_ASSERT(strcmp(a[i].text, b[i].text) == 0);
		}
	}
	return 0;
}
