/* The health-log reader of `lbctl health-report` (src/report.c): the
 * input is a health log.  Each line goes through report_parse_line (an
 * event's fields are bounded and NUL-terminated, a malformed line gives a
 * reason); the whole log through report_read, report_finish and both
 * printers.  The JSON printed must be valid JSON (checked here), whatever
 * bytes the log held; the first byte of the input picks the window. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "report.h"
#include "rfc3339.h"

/* 2026-11-25T00:00:00Z, after the seed logs' events. */
#define NOW_MS 1795564800000LL

/* --- a strict JSON checker (RFC 8259) ----------------------------------- */

struct js {
	const char *p, *end;
	int depth;
};

static void
ws(struct js *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	                         *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int value(struct js *j);

static int
utf8(struct js *j)
{
	const unsigned char *s = (const unsigned char *)j->p;
	size_t left = (size_t)(j->end - j->p), n;
	unsigned c = s[0];
	unsigned long cp;

	if (c < 0x80)
		n = 1, cp = c;
	else if ((c & 0xe0) == 0xc0)
		n = 2, cp = c & 0x1f;
	else if ((c & 0xf0) == 0xe0)
		n = 3, cp = c & 0x0f;
	else if ((c & 0xf8) == 0xf0)
		n = 4, cp = c & 0x07;
	else
		return -1;
	if (left < n)
		return -1;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	j->p += n;
	return 0;
}

static int
string(struct js *j)
{
	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p;
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			j->p++;
			if (j->p >= j->end)
				return -1;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (j->p + i >= j->end ||
					    strchr("0123456789abcdefABCDEF",
					           j->p[i]) == NULL ||
					    j->p[i] == '\0')
						return -1;
				j->p += 5;
			} else if (strchr("\"\\/bfnrt", *j->p) != NULL &&
			           *j->p != '\0')
				j->p++;
			else
				return -1;
			continue;
		}
		if (utf8(j) < 0)
			return -1;
	}
	if (j->p >= j->end)
		return -1;
	j->p++;
	return 0;
}

static int
number(struct js *j)
{
	const char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return -1;
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return -1;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return -1;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > s ? 0 : -1;
}

static int
word(struct js *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

static int
container(struct js *j, char close)
{
	j->p++;
	if (++j->depth > 64)
		return -1;
	ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		ws(j);
		if (close == '}') {
			if (string(j) < 0)
				return -1;
			ws(j);
			if (j->p >= j->end || *j->p != ':')
				return -1;
			j->p++;
		}
		if (value(j) < 0)
			return -1;
		ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p != close)
			return -1;
		j->p++;
		j->depth--;
		return 0;
	}
}

static int
value(struct js *j)
{
	ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{':
		return container(j, '}');
	case '[':
		return container(j, ']');
	case '"':
		return string(j);
	case 't':
		return word(j, "true");
	case 'f':
		return word(j, "false");
	case 'n':
		return word(j, "null");
	default:
		return number(j);
	}
}

static int
valid_json(const char *s, size_t n)
{
	struct js j = {s, s + n, 0};

	if (value(&j) < 0)
		return 0;
	ws(&j);
	return j.p == j.end;
}

/* --- the target --------------------------------------------------------- */

static void
one_line(const char *line)
{
	static struct report_event ev;
	const char *err = NULL;

	if (report_parse_line(line, &ev, &err) < 0) {
		FUZZ_ASSERT(err != NULL);
		return;
	}
	FUZZ_ASSERT(memchr(ev.name, '\0', sizeof(ev.name)) != NULL);
	FUZZ_ASSERT(memchr(ev.backend, '\0', sizeof(ev.backend)) != NULL);
	FUZZ_ASSERT(memchr(ev.server, '\0', sizeof(ev.server)) != NULL);
	FUZZ_ASSERT(memchr(ev.addr, '\0', sizeof(ev.addr)) != NULL);
	FUZZ_ASSERT(memchr(ev.step, '\0', sizeof(ev.step)) != NULL);
	FUZZ_ASSERT(memchr(ev.reply, '\0', sizeof(ev.reply)) != NULL);
	FUZZ_ASSERT(memchr(ev.reason, '\0', sizeof(ev.reason)) != NULL);
	FUZZ_ASSERT(memchr(ev.not_after, '\0', sizeof(ev.not_after)) != NULL);
	FUZZ_ASSERT(ev.code == -1 || (ev.code >= 100 && ev.code <= 599));
	/* The timestamp prints and reads back to the same instant. */
	{
		char t[64];
		int64_t again = 0;
		rfc3339_format(ev.t_ms, true, t, sizeof(t));
		FUZZ_ASSERT(rfc3339_parse(t, &again) == 0);
		FUZZ_ASSERT(again == ev.t_ms);
	}
}

int
fuzz_report(const uint8_t *data, size_t size)
{
	struct report r;
	FILE *in, *out;
	char *buf = NULL, *text;
	size_t len = 0;
	int64_t from;
	int64_t dur;
	const char *err;
	bool declare;

	if (size == 0)
		return 0;
	/* Bit 2: servers declared from a configuration first. */
	declare = (data[0] & 4) != 0;
	switch (data[0] % 4) {
	case 0:
		from = REPORT_FROM_FIRST;
		break;
	case 1:
		from = NOW_MS - 24LL * 3600 * 1000;
		break;
	case 2:
		from = NOW_MS - 3600 * 1000;
		break;
	default:
		from = NOW_MS;
		break;
	}
	data++;
	size--;

	/* Line by line (at most the 64 first). */
	text = fuzz_cstr(data, size);
	{
		char *line = text, *nl;
		for (int i = 0; line != NULL && i < 64; i++, line = nl) {
			nl = strchr(line, '\n');
			if (nl != NULL)
				*nl++ = '\0';
			one_line(line);
			if (report_parse_duration(line, &dur, &err) == 0)
				FUZZ_ASSERT(dur >= 0 &&
				            dur <= REPORT_DURATION_MAX_MS);
		}
	}
	free(text);

	/* The whole log. */
	report_init(&r, from, NOW_MS);
	if (declare) {
		FUZZ_ASSERT(report_declare_server(&r, "B", "S", "10.0.0.1:25",
		                                  RADMIN_READY) == 0);
		FUZZ_ASSERT(report_declare_server(&r, "B", "T", NULL,
		                                  RADMIN_MAINT) == 0);
		r.config = "fuzz.conf";
	}
	in = fmemopen((void *)(uintptr_t)data, size > 0 ? size : 1, "r");
	FUZZ_ASSERT(in != NULL);
	if (size > 0)
		FUZZ_ASSERT(report_read(&r, in) == 0);
	fclose(in);
	report_finish(&r);
	for (size_t i = 0; i < r.n_servers; i++) {
		const struct report_server *s = &r.servers[i];
		double a = report_availability(&r, s);
		FUZZ_ASSERT(a >= 0.0 && a <= 100.0);
		FUZZ_ASSERT(s->n_outages <= s->outages_total);
		FUZZ_ASSERT(s->downtime_ms >= 0 && s->longest_ms >= 0);
		FUZZ_ASSERT(s->longest_ms <= s->downtime_ms);
		for (size_t k = 0; k < s->n_outages; k++)
			FUZZ_ASSERT(report_outage(s, k) != NULL);
	}
	out = fopen("/dev/null", "w");
	FUZZ_ASSERT(out != NULL && report_print_text(&r, "fuzz.log", out) == 0);
	fclose(out);
	out = open_memstream(&buf, &len);
	FUZZ_ASSERT(out != NULL && report_print_json(&r, out) == 0);
	fclose(out);
	if (!valid_json(buf, len)) {
		fprintf(stderr, "--- invalid JSON\n%s\n", buf);
		FUZZ_ASSERT(!"report_print_json prints valid JSON");
	}
	free(buf);
	report_free(&r);
	return 0;
}
