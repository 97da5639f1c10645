/* The agent check's reply (src/agent.c).  The input is one reply line,
 * given whole (NULs included) to agent_parse.
 *
 * A refused line leaves the reply untouched and says why, on one line of
 * printable text.  A reply taken has a weight of -1..100, a maxconn of
 * -1..1000000, states within their enums and a reason that is
 * NUL-terminated printable text, trimmed; the line had no control
 * character but a final line ending, and was at most AGENT_LINE_MAX bytes
 * without it.  agent_format prints it to a line that reads back to the
 * same reply, and into a buffer too short (its size from the first byte)
 * to the same text cut and NUL-terminated. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "fuzz.h"

#define TEXT_MAX 512 /* more than agent_format can print */

static void
printable(const char *s, size_t size)
{
	const char *nul = memchr(s, '\0', size);

	FUZZ_ASSERT(nul != NULL);
	for (; s < nul; s++)
		FUZZ_ASSERT(*s >= 0x20 && *s < 0x7f);
}

static void
same_reply(const struct agent_reply *a, const struct agent_reply *b)
{
	FUZZ_ASSERT(a->pct == b->pct);
	FUZZ_ASSERT(a->maxconn == b->maxconn);
	FUZZ_ASSERT(a->admin == b->admin);
	FUZZ_ASSERT(a->health == b->health);
	FUZZ_ASSERT(strcmp(a->reason, b->reason) == 0);
}

/* What the line must have been for agent_parse to take it. */
static void
line_ok(const uint8_t *data, size_t size)
{
	size_t len = size;

	if (len > 0 && data[len - 1] == '\n') {
		len--;
		if (len > 0 && data[len - 1] == '\r')
			len--;
	}
	FUZZ_ASSERT(len <= AGENT_LINE_MAX);
	for (size_t i = 0; i < len; i++)
		FUZZ_ASSERT(data[i] == '\t' ||
		            (data[i] >= 0x20 && data[i] != 0x7f));
}

int
fuzz_agent(const uint8_t *data, size_t size)
{
	struct agent_reply r, before, back;
	char err[128], text[TEXT_MAX], cut[TEXT_MAX];
	size_t n, short_len;
	size_t rlen;

	memset(&r, 0xa5, sizeof(r));
	before = r;
	memset(err, 'x', sizeof(err));
	if (agent_parse((const char *)data, size, &r, err, sizeof(err)) != 0) {
		FUZZ_ASSERT(memcmp(&r, &before, sizeof(r)) == 0);
		printable(err, sizeof(err));
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	line_ok(data, size);
	FUZZ_ASSERT(r.pct >= -1 && r.pct <= 100);
	FUZZ_ASSERT(r.maxconn >= -1 && r.maxconn <= 1000000);
	FUZZ_ASSERT(r.admin >= AGENT_ADMIN_NONE && r.admin <= AGENT_MAINT);
	FUZZ_ASSERT(r.health >= AGENT_HEALTH_NONE && r.health <= AGENT_FAIL);
	printable(r.reason, sizeof(r.reason));
	rlen = strlen(r.reason);
	FUZZ_ASSERT(rlen == 0 ||
	            (r.reason[0] != ' ' && r.reason[rlen - 1] != ' '));
	/* a reason comes from a '#' */
	FUZZ_ASSERT(rlen == 0 || memchr(data, '#', size) != NULL);

	agent_format(&r, text, sizeof(text));
	n = strlen(text);
	printable(text, sizeof(text));
	FUZZ_ASSERT(n > 0 && n <= AGENT_LINE_MAX);
	memset(&back, 0x5a, sizeof(back));
	FUZZ_ASSERT(agent_parse(text, n, &back, err, sizeof(err)) == 0);
	same_reply(&r, &back);

	/* a short buffer: the same text, cut */
	short_len = size > 0 ? data[0] % (n + 1) : 0;
	memset(cut, 'Z', sizeof(cut));
	agent_format(&r, cut, short_len);
	if (short_len == 0) {
		FUZZ_ASSERT(cut[0] == 'Z');
	} else {
		FUZZ_ASSERT(strlen(cut) == short_len - 1);
		FUZZ_ASSERT(memcmp(cut, text, short_len - 1) == 0);
		FUZZ_ASSERT(cut[short_len] == 'Z');
	}
	return 0;
}
