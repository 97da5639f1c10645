/* The operator state file's text (src/statefile.c).  The input is a
 * state file, given whole (NULs included) to statefile_parse.
 *
 * Every warning is one line of printable text, "LINE: ...", with a line
 * number of the input, at most one a line.  Every entry taken has a
 * backend and a server name (NUL-terminated, not empty), an admin state
 * within its enum and a weight of -1..256, not both unset; no two entries
 * are for the same backend and server (a later line replaces an earlier
 * one).  statefile_format prints the list to a text that reads back, with
 * no warning, to the same list, and prints again to the same text. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "statefile.h"

#define DUP_CHECK_MAX 2000 /* entries checked pairwise for duplicates */

struct seen {
	unsigned long lines;    /* of the input */
	unsigned long warnings; /* counted */
	unsigned long last;     /* line of the last warning */
};

static void
check_warning(void *arg, const char *msg)
{
	struct seen *s = arg;
	unsigned long line = 0;
	const char *p = msg;

	FUZZ_ASSERT(*p >= '1' && *p <= '9');
	while (*p >= '0' && *p <= '9')
		line = line * 10 + (unsigned long)(*p++ - '0');
	FUZZ_ASSERT(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
	FUZZ_ASSERT(line >= 1 && line <= s->lines);
	FUZZ_ASSERT(line > s->last); /* in order, one a line */
	s->last = line;
	for (; *p != '\0'; p++)
		FUZZ_ASSERT(*p >= 0x20 && *p < 0x7f);
	s->warnings++;
}

/* A warning when none may come. */
static void
no_warning(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
	FUZZ_ASSERT(!"a formatted state file reads back without warnings");
}

static void
check_entry(const struct statefile_entry *e)
{
	FUZZ_ASSERT(memchr(e->backend, '\0', sizeof(e->backend)) != NULL);
	FUZZ_ASSERT(memchr(e->server, '\0', sizeof(e->server)) != NULL);
	FUZZ_ASSERT(e->backend[0] != '\0' && e->server[0] != '\0');
	FUZZ_ASSERT(e->admin >= STATEFILE_ADMIN_NONE &&
	            e->admin <= STATEFILE_MAINT);
	FUZZ_ASSERT(e->weight >= -1 && e->weight <= 256);
	FUZZ_ASSERT(e->admin != STATEFILE_ADMIN_NONE || e->weight >= 0);
}

/* l's text (malloc'ed), grown until it fits. */
static char *
format(const struct statefile_list *l, long *n)
{
	size_t len = 256;
	char *buf = NULL;

	for (;;) {
		char *nb = realloc(buf, len);

		FUZZ_ASSERT(nb != NULL);
		buf = nb;
		if ((*n = statefile_format(l, buf, len)) >= 0)
			break;
		FUZZ_ASSERT(len < (64u << 20));
		len *= 2;
	}
	FUZZ_ASSERT((size_t)*n < len && strlen(buf) == (size_t)*n);
	return buf;
}

int
fuzz_statefile(const uint8_t *data, size_t size)
{
	struct statefile_list l, back;
	struct seen s = {0, 0, 0};
	char *text, *again;
	long n, tn, an;

	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' || i + 1 == size)
			s.lines++;
	statefile_list_init(&l);
	n = statefile_parse((const char *)data, size, &l, check_warning, &s);
	FUZZ_ASSERT(n >= 0 && (size_t)n == l.n);
	FUZZ_ASSERT(s.warnings <= s.lines);
	for (size_t i = 0; i < l.n; i++) {
		check_entry(&l.v[i]);
		for (size_t j = i + 1; j < l.n && l.n <= DUP_CHECK_MAX; j++)
			FUZZ_ASSERT(strcmp(l.v[i].backend, l.v[j].backend) !=
			                0 ||
			            strcmp(l.v[i].server, l.v[j].server) != 0);
	}

	text = format(&l, &tn);
	statefile_list_init(&back);
	FUZZ_ASSERT(
	    statefile_parse(text, (size_t)tn, &back, no_warning, NULL) == n);
	for (size_t i = 0; i < l.n; i++) {
		FUZZ_ASSERT(strcmp(l.v[i].backend, back.v[i].backend) == 0);
		FUZZ_ASSERT(strcmp(l.v[i].server, back.v[i].server) == 0);
		FUZZ_ASSERT(l.v[i].admin == back.v[i].admin);
		FUZZ_ASSERT(l.v[i].weight == back.v[i].weight);
	}
	again = format(&back, &an);
	FUZZ_ASSERT(an == tn && memcmp(text, again, (size_t)tn) == 0);

	free(again);
	free(text);
	statefile_list_free(&back);
	statefile_list_free(&l);
	return 0;
}
