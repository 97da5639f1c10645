/* The agent check's reply (load-balancer.conf(5), AGENT CHECK): one line
 * of words, as HAProxy's agent-check reads them, to a struct agent_reply,
 * and back to text for the status views.  Pure: no I/O, no allocation. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "common.h"

#define QUOTE_MAX 32          /* bytes of a word quoted in an error */
#define PCT_DIGITS 3          /* "100%" */
#define MAXCONN_LIMIT 1000000 /* as a server's maxconn in the config */
#define MAXCONN_DIGITS 7
#define MAXCONN_PREFIX "maxconn:"

/* Indexed by the enums; [0] is "none". */
static const char *const admin_words[] = {NULL, "ready", "drain", "maint"};
static const char *const health_words[] = {NULL, "up", "down", "stopped",
                                           "fail"};

static bool
is_sep(char c)
{
	return c == ' ' || c == '\t' || c == ',';
}

static bool
is_ctl(char c)
{
	unsigned char u = (unsigned char)c;

	return (u < 0x20 && u != '\t') || u == 0x7f;
}

static bool
is_print(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 0x20 && u < 0x7f;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* w (n bytes) begins with the lower-case word, ignoring ASCII case;
 * exact: nothing follows it. */
static bool
word_is(const char *w, size_t n, const char *word, bool exact)
{
	size_t i;

	for (i = 0; word[i] != '\0'; i++)
		if (i == n || lower(w[i]) != word[i])
			return false;
	return !exact || i == n;
}

/* The index of w in words[1..count-1], or 0. */
static int
lookup(const char *const *words, size_t count, const char *w, size_t n)
{
	for (size_t i = 1; i < count; i++)
		if (word_is(w, n, words[i], true))
			return (int)i;
	return 0;
}

/* The decimal number of n digits at s, limit + 1 when above limit; -1
 * when there is no digit or something else than digits. */
static long
number(const char *s, size_t n, long limit)
{
	long v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v <= limit)
			v = v * 10 + (s[i] - '0');
	}
	return v > limit ? limit + 1 : v;
}

/* err = what, followed by " 'w'" (the first QUOTE_MAX bytes of w, other
 * bytes than printable ASCII as '?') when w is given.  Returns -1. */
static int
fail(char *err, size_t errlen, const char *what, const char *w, size_t n)
{
	char q[QUOTE_MAX + 1];
	size_t k = n < QUOTE_MAX ? n : QUOTE_MAX;

	if (err == NULL || errlen == 0)
		return -1;
	if (w == NULL) {
		snprintf(err, errlen, "%s", what);
		return -1;
	}
	for (size_t i = 0; i < k; i++)
		q[i] = is_print(w[i]) ? w[i] : '?';
	q[k] = '\0';
	snprintf(err, errlen, "%s '%s'", what, q);
	return -1;
}

/* One word into r: 1 when it is known, 0 when not, -1 (err) when it is
 * a weight or a maxconn with a bad number. */
static int
word(struct agent_reply *r, const char *w, size_t n, char *err, size_t errlen)
{
	const size_t plen = sizeof(MAXCONN_PREFIX) - 1;
	long v;
	int k;

	if (w[n - 1] == '%') {
		v = number(w, n - 1, 100);
		if (v < 0)
			return fail(err, errlen, "bad weight:", w, n);
		if (v > 100)
			return fail(err, errlen, "weight above 100%", NULL, 0);
		if (n - 1 > PCT_DIGITS)
			return fail(err, errlen, "bad weight:", w, n);
		r->pct = (int)v;
		return 1;
	}
	if (word_is(w, n, MAXCONN_PREFIX, false)) {
		v = number(w + plen, n - plen, MAXCONN_LIMIT);
		if (v < 0)
			return fail(err, errlen, "bad maxconn:", w, n);
		if (v > MAXCONN_LIMIT)
			return fail(err, errlen, "maxconn above 1000000", NULL,
			            0);
		if (n - plen > MAXCONN_DIGITS)
			return fail(err, errlen, "bad maxconn:", w, n);
		r->maxconn = (int)v;
		return 1;
	}
	if ((k = lookup(admin_words, ARRAY_SIZE(admin_words), w, n)) != 0) {
		r->admin = (enum agent_admin)k;
		return 1;
	}
	if ((k = lookup(health_words, ARRAY_SIZE(health_words), w, n)) != 0) {
		r->health = (enum agent_health)k;
		return 1;
	}
	return 0;
}

/* The text after "#" (n bytes, no control character but tabs) into r:
 * trimmed, tabs as spaces, other bytes than printable ASCII as '?', cut
 * to fit. */
static void
reason(struct agent_reply *r, const char *s, size_t n)
{
	size_t k = 0;

	while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		n--;
	}
	for (size_t i = 0; i < n && k < AGENT_REASON_MAX - 1; i++)
		r->reason[k++] = s[i] == '\t'     ? ' '
		                 : is_print(s[i]) ? s[i]
		                                  : '?';
	while (k > 0 && r->reason[k - 1] == ' ')
		k--;
	r->reason[k] = '\0';
}

int
agent_parse(const char *line, size_t len, struct agent_reply *out, char *err,
            size_t errlen)
{
	struct agent_reply r;
	const char *unknown = NULL, *hash;
	size_t unknown_len = 0, end, i = 0;
	bool known = false;

	memset(&r, 0, sizeof(r));
	r.pct = -1;
	r.maxconn = -1;
	if (line == NULL)
		len = 0;
	if (len > 0 && line[len - 1] == '\n') {
		len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
	}
	if (len > AGENT_LINE_MAX)
		return fail(err, errlen, "reply too long", NULL, 0);
	for (size_t j = 0; j < len; j++)
		if (is_ctl(line[j]))
			return fail(err, errlen, "bad reply", NULL, 0);
	hash = len > 0 ? memchr(line, '#', len) : NULL;
	end = hash != NULL ? (size_t)(hash - line) : len;
	while (i < end) {
		size_t start;
		int rc;

		while (i < end && is_sep(line[i]))
			i++;
		if (i == end)
			break;
		start = i;
		while (i < end && !is_sep(line[i]))
			i++;
		rc = word(&r, line + start, i - start, err, errlen);
		if (rc < 0)
			return -1;
		if (rc > 0)
			known = true;
		else if (unknown == NULL) {
			unknown = line + start;
			unknown_len = i - start;
		}
	}
	if (!known) {
		if (unknown != NULL)
			return fail(err, errlen, "bad reply:", unknown,
			            unknown_len);
		return fail(err, errlen, "empty reply", NULL, 0);
	}
	if (hash != NULL)
		reason(&r, hash + 1, len - end - 1);
	*out = r;
	return 0;
}

/* s (n bytes) at the end of buf (len bytes, *used of them used),
 * cut to fit, NUL-terminated. */
static void
append(char *buf, size_t len, size_t *used, const char *s, size_t n)
{
	if (*used + 1 >= len)
		return;
	if (n > len - 1 - *used)
		n = len - 1 - *used;
	memcpy(buf + *used, s, n);
	*used += n;
	buf[*used] = '\0';
}

/* A word, after a space when it is not the first. */
static void
append_word(char *buf, size_t len, size_t *used, const char *w)
{
	if (*used > 0)
		append(buf, len, used, " ", 1);
	append(buf, len, used, w, strlen(w));
}

void
agent_format(const struct agent_reply *r, char *buf, size_t len)
{
	char num[32];
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (r->pct >= 0) {
		snprintf(num, sizeof(num), "%d%%", r->pct);
		append_word(buf, len, &used, num);
	}
	if (r->maxconn >= 0) {
		snprintf(num, sizeof(num), MAXCONN_PREFIX "%d", r->maxconn);
		append_word(buf, len, &used, num);
	}
	if (r->admin > AGENT_ADMIN_NONE && r->admin <= AGENT_MAINT)
		append_word(buf, len, &used, admin_words[r->admin]);
	if (r->health > AGENT_HEALTH_NONE && r->health <= AGENT_FAIL)
		append_word(buf, len, &used, health_words[r->health]);
	else if (r->reason[0] != '\0')
		append_word(buf, len, &used, ""); /* " #reason" alone */
	if (r->reason[0] != '\0') {
		append(buf, len, &used, "#", 1);
		append(buf, len, &used, r->reason,
		       strnlen(r->reason, sizeof(r->reason)));
	}
}
