/* Unit tests for healthlog.c: logfmt fields, RFC 3339 timestamps, the health
 * log file (append, tail, logrotate reopen) (load-balancer.conf(5), LOGS). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "healthlog.h"
#include "rfc3339.h"
#include "log.h"

/* ---- helpers ---------------------------------------------------------- */

static void
lf_consistent(const struct lf *l, const char *ctx)
{
	ck_assert_msg(memchr(l->buf, '\0', sizeof(l->buf)) != NULL,
	              "%s: buffer not NUL-terminated", ctx);
	ck_assert_msg(strlen(l->buf) == l->len, "%s: len %zu, strlen %zu", ctx,
	              l->len, strlen(l->buf));
	ck_assert_msg(l->len <= HEALTHLOG_LINE_MAX - 1, "%s: len %zu", ctx,
	              l->len);
}

/* The encoding the contract asks for: " key=value", the value quoted when
 * empty or holding a space, '=', '"', '\\' (or a control character, which
 * becomes a space); '"' and '\\' escaped inside quotes. */
static size_t
ref_field(char *out, size_t outlen, const char *key, const char *value)
{
	bool quote = value[0] == '\0';
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if (*p == ' ' || *p == '=' || *p == '"' || *p == '\\' ||
		    *p < 0x20 || *p == 0x7f)
			quote = true;
	n += (size_t)snprintf(out + n, outlen - n, " %s=", key);
	if (quote)
		out[n++] = '"';
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		ck_assert(n + 4 < outlen);
		if (*p == '"' || *p == '\\') {
			out[n++] = '\\';
			out[n++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			out[n++] = ' ';
		} else {
			out[n++] = (char)*p;
		}
	}
	if (quote)
		out[n++] = '"';
	out[n] = '\0';
	return n;
}

/* A parsed field. */
struct field {
	char key[64];
	char value[HEALTHLOG_LINE_MAX];
};

/* Parse a logfmt field list (" k=v k="v v"...) strictly: returns the number
 * of fields, or -1 (with *why set) when the text is malformed. */
static int
parse_fields(const char *s, struct field *f, int max, const char **why)
{
	int n = 0;

	while (*s) {
		size_t k = 0, v = 0;

		if (*s != ' ') {
			*why = "field does not start with a space";
			return -1;
		}
		s++;
		if (n == max) {
			*why = "too many fields";
			return -1;
		}
		while (*s && *s != '=' && *s != ' ' && *s != '"') {
			if (k + 1 >= sizeof(f[n].key)) {
				*why = "key too long";
				return -1;
			}
			f[n].key[k++] = *s++;
		}
		f[n].key[k] = '\0';
		if (k == 0 || *s != '=') {
			*why = "key without '='";
			return -1;
		}
		s++;
		if (*s == '"') {
			s++;
			while (*s != '"') {
				if (*s == '\0') {
					*why = "unclosed quote";
					return -1;
				}
				if (*s == '\\') {
					s++;
					if (*s != '"' && *s != '\\') {
						*why = "bad escape";
						return -1;
					}
				} else if ((unsigned char)*s < 0x20 ||
				           *s == 0x7f) {
					*why = "control character";
					return -1;
				}
				f[n].value[v++] = *s++;
			}
			s++;
			if (*s != '\0' && *s != ' ') {
				*why = "text after a closing quote";
				return -1;
			}
		} else {
			if (*s == ' ' || *s == '\0') {
				*why = "empty value not quoted";
				return -1;
			}
			while (*s && *s != ' ') {
				if (*s == '=' || *s == '"' || *s == '\\' ||
				    (unsigned char)*s < 0x20 || *s == 0x7f) {
					*why = "special character in a bare "
					       "value";
					return -1;
				}
				f[n].value[v++] = *s++;
			}
		}
		f[n].value[v] = '\0';
		n++;
	}
	return n;
}

/* value with control characters turned into spaces */
static void
decoded(char *out, const char *value)
{
	for (; *value; value++)
		*out++ = ((unsigned char)*value < 0x20 || *value == 0x7f)
		             ? ' '
		             : *value;
	*out = '\0';
}

static void
add_is(const char *key, const char *value, const char *want)
{
	struct lf l;

	lf_init(&l);
	lf_add(&l, key, value);
	lf_consistent(&l, key);
	ck_assert_msg(strcmp(l.buf, want) == 0,
	              "lf_add(\"%s\", \"%s\"): '%s', want '%s'", key, value,
	              l.buf, want);
}

/* ---- lf ---------------------------------------------------------------- */

START_TEST(lf_init_empty)
{
	struct lf l;

	memset(&l, 'Z', sizeof(l));
	lf_init(&l);
	ck_assert_uint_eq(l.len, 0);
	ck_assert_str_eq(l.buf, "");
}
END_TEST

START_TEST(lf_plain_values)
{
	add_is("event", "down", " event=down");
	add_is("addr", "10.10.10.2:25", " addr=10.10.10.2:25");
	add_is("addr", "[2001:db8::1]:25", " addr=[2001:db8::1]:25");
	add_is("backend", "TO-FILTER-CLUSTER", " backend=TO-FILTER-CLUSTER");
	add_is("code", "421", " code=421");
	add_is("x", "a,b;c/d:e", " x=a,b;c/d:e");
}
END_TEST

START_TEST(lf_quoted_values)
{
	add_is("reply", "4.7.0 try again later",
	       " reply=\"4.7.0 try again later\"");
	add_is("reason", "connection refused",
	       " reason=\"connection refused\"");
	add_is("v", "", " v=\"\"");
	add_is("v", " ", " v=\" \"");
	add_is("v", "a=b", " v=\"a=b\"");
	add_is("v", "=", " v=\"=\"");
	add_is("v", "say \"hi\"", " v=\"say \\\"hi\\\"\"");
	add_is("v", "\"", " v=\"\\\"\"");
	add_is("v", "C:\\dir", " v=\"C:\\\\dir\"");
	add_is("v", "\\", " v=\"\\\\\"");
	add_is("v", "\\\"", " v=\"\\\\\\\"\"");
	add_is("v", "trailing ", " v=\"trailing \"");
}
END_TEST

/* Control characters become spaces, and the value is then quoted: a bare
 * value with a space in it would not parse back. */
START_TEST(lf_control_characters)
{
	add_is("v", "a\tb", " v=\"a b\"");
	add_is("v", "line1\r\nline2", " v=\"line1  line2\"");
	add_is("v", "x\n", " v=\"x \"");
	add_is("v", "\x1b[31mred", " v=\" [31mred\"");
	add_is("v", "del\x7f", " v=\"del \"");
	add_is("v", "\x01", " v=\" \"");
}
END_TEST

/* Bytes >= 0x80 (UTF-8) are not control characters. */
START_TEST(lf_eight_bit_kept)
{
	add_is("v", "caf\xc3\xa9", " v=caf\xc3\xa9");
	add_is("v", "\xff\x80\xa0", " v=\xff\x80\xa0");
	add_is("v", "r\xc3\xa9ponse lente", " v=\"r\xc3\xa9ponse lente\"");
}
END_TEST

/* The example of load-balancer.conf(5), LOGS, field by field. */
START_TEST(lf_spec_example)
{
	struct lf l;

	lf_init(&l);
	lf_add(&l, "event", "down");
	lf_add(&l, "backend", "TO-FILTER-CLUSTER");
	lf_add(&l, "server", "filter2");
	lf_addf(&l, "addr", "%s:%d", "10.10.10.2", 25);
	lf_add(&l, "check", "smtp");
	lf_add(&l, "step", "helo");
	lf_addf(&l, "code", "%d", 421);
	lf_add(&l, "reply", "4.7.0 try again later");
	lf_addf(&l, "duration_ms", "%llu", 12ULL);
	lf_addf(&l, "failures", "%u", 3u);
	lf_addf(&l, "active", "%d", 2);
	lf_addf(&l, "backup", "%d", 0);
	lf_consistent(&l, "LOGS example");
	ck_assert_str_eq(l.buf,
	                 " event=down backend=TO-FILTER-CLUSTER server=filter2 "
	                 "addr=10.10.10.2:25 check=smtp step=helo code=421 "
	                 "reply=\"4.7.0 try again later\" duration_ms=12 "
	                 "failures=3 active=2 backup=0");
}
END_TEST

START_TEST(lf_addf_quotes_and_escapes)
{
	struct lf l;

	lf_init(&l);
	lf_addf(&l, "reply", "%d %s", 421, "try later");
	ck_assert_str_eq(l.buf, " reply=\"421 try later\"");
	lf_init(&l);
	lf_addf(&l, "v", "%s", "");
	ck_assert_str_eq(l.buf, " v=\"\"");
	lf_init(&l);
	lf_addf(&l, "v", "%s\\%s", "a\"b", "c");
	ck_assert_str_eq(l.buf, " v=\"a\\\"b\\\\c\"");
	lf_init(&l);
	lf_addf(&l, "v", "%s", "a\nb");
	ck_assert_str_eq(l.buf, " v=\"a b\"");
	lf_init(&l);
	lf_addf(&l, "pct", "100%%");
	ck_assert_str_eq(l.buf, " pct=100%");
	lf_consistent(&l, "addf");
}
END_TEST

/* A field is added whole when it fits in HEALTHLOG_LINE_MAX - 1 bytes, and
 * dropped whole otherwise, at every fill level near the end. */
START_TEST(lf_boundary_all_or_nothing)
{
	static const char *const values[] = {
	    "v",      "abcdef",     "a b",  "",     "\"",       "\\",
	    "\"\"\"", "x\\y\\z\\w", "a\tb", "q=\"", "\\\\\\\\",
	};
	static char filler[HEALTHLOG_LINE_MAX];
	static char prefix[HEALTHLOG_LINE_MAX];
	char want[2 * HEALTHLOG_LINE_MAX + 64], field[64];

	for (size_t vi = 0; vi < sizeof(values) / sizeof(values[0]); vi++) {
		size_t flen = ref_field(field, sizeof(field), "k", values[vi]);

		for (size_t p = HEALTHLOG_LINE_MAX - 40;
		     p <= HEALTHLOG_LINE_MAX - 1; p++) {
			struct lf l;
			char ctx[96];

			/* " f=" + filler + " g=" + filler = p bytes (two
			 * fields, so that no single field is huge) */
			memset(filler, 'x', (p - 6) / 2);
			filler[(p - 6) / 2] = '\0';
			lf_init(&l);
			lf_add(&l, "f", filler);
			memset(filler, 'x', p - 6 - (p - 6) / 2);
			filler[p - 6 - (p - 6) / 2] = '\0';
			lf_add(&l, "g", filler);
			ck_assert_msg(l.len == p,
			              "filler of %zu bytes: len %zu (a field "
			              "that fits must be kept)",
			              p, l.len);
			memcpy(prefix, l.buf, p + 1);
			snprintf(ctx, sizeof(ctx), "fill %zu + '%s'", p, field);
			lf_add(&l, "k", values[vi]);
			lf_consistent(&l, ctx);
			snprintf(want, sizeof(want), "%s%s", prefix,
			         p + flen <= HEALTHLOG_LINE_MAX - 1 ? field
			                                            : "");
			ck_assert_msg(
			    strcmp(l.buf, want) == 0,
			    "%s: got ...'%s' (len %zu), want ...'%s'", ctx,
			    l.buf + (l.len > 50 ? l.len - 50 : 0), l.len,
			    want + (strlen(want) > 50 ? strlen(want) - 50 : 0));
		}
	}
}
END_TEST

/* One field filling the whole line (HEALTHLOG_LINE_MAX - 1 bytes) fits,
 * and is kept; one byte more does not. */
START_TEST(lf_single_field_fills_line)
{
	static char value[HEALTHLOG_LINE_MAX];

	for (size_t flen = HEALTHLOG_LINE_MAX - 8; flen <= HEALTHLOG_LINE_MAX;
	     flen++) {
		struct lf l;

		/* " v=" + value */
		memset(value, 'x', flen - 3);
		value[flen - 3] = '\0';
		lf_init(&l);
		lf_add(&l, "v", value);
		lf_consistent(&l, "single field");
		if (flen <= HEALTHLOG_LINE_MAX - 1)
			ck_assert_msg(
			    l.len == flen,
			    "a %zu-byte field alone: len %zu, want %zu "
			    "(it fits)",
			    flen, l.len, flen);
		else
			ck_assert_msg(l.len == 0,
			              "a %zu-byte field alone: len %zu, want 0",
			              flen, l.len);
	}
}
END_TEST

/* A line full of fields stays a well-formed logfmt line: each field is
 * added whole when it fits and dropped whole when it does not, and the
 * line parses back to the fields kept, in order. */
START_TEST(lf_many_fields_stay_parseable)
{
	static const char *const values[] = {
	    "plain",       "with space", "quote\"d",
	    "back\\slash", "",           "a=b",
	    "\\\"\\\"",    "tab\there",  "long value with several words",
	};
	static struct field parsed[400];
	static char added_val[400][64];
	char kept_key[400][16];
	char key[16], field[160];
	struct lf l;
	const char *why = "";
	int n, nkept = 0, ndropped = 0;

	lf_init(&l);
	for (int i = 0; i < 400; i++) {
		size_t before = l.len, flen;

		snprintf(key, sizeof(key), "k%d", i);
		snprintf(added_val[nkept], sizeof(added_val[nkept]), "%s%d",
		         values[i % (sizeof(values) / sizeof(values[0]))], i);
		flen = ref_field(field, sizeof(field), key, added_val[nkept]);
		lf_add(&l, key, added_val[nkept]);
		lf_consistent(&l, "many fields");
		if (before + flen <= HEALTHLOG_LINE_MAX - 1) {
			ck_assert_msg(
			    l.len == before + flen &&
			        strcmp(l.buf + before, field) == 0,
			    "field '%s' fits at %zu but the line ends "
			    "'%s'",
			    field, before,
			    l.buf + (before > 20 ? before - 20 : 0));
			snprintf(kept_key[nkept], sizeof(kept_key[nkept]), "%s",
			         key);
			nkept++;
		} else {
			ck_assert_msg(l.len == before,
			              "field '%s' does not fit at %zu but the "
			              "line changed to ...'%s'",
			              field, before,
			              l.buf + (before > 20 ? before - 20 : 0));
			ndropped++;
		}
	}
	ck_assert_int_gt(ndropped, 0);
	ck_assert_uint_gt(l.len, HEALTHLOG_LINE_MAX - 80);

	n = parse_fields(l.buf, parsed, 400, &why);
	ck_assert_msg(n == nkept, "line parses to %d fields (%s), want %d", n,
	              n < 0 ? why : "", nkept);
	for (int i = 0; i < n; i++) {
		char dec[128];

		ck_assert_str_eq(parsed[i].key, kept_key[i]);
		decoded(dec, added_val[i]);
		ck_assert_msg(strcmp(dec, parsed[i].value) == 0,
		              "field %s: value '%s', want '%s'", parsed[i].key,
		              parsed[i].value, dec);
	}
}
END_TEST

/* One value larger than the line: dropped whole, the line intact. */
START_TEST(lf_huge_value_dropped)
{
	static char huge[3 * HEALTHLOG_LINE_MAX];
	struct lf l;
	static struct field parsed[8];
	const char *why = "";
	int n;

	memset(huge, 'a', sizeof(huge) - 1);
	huge[100] = ' ';
	huge[200] = '"';
	lf_init(&l);
	lf_add(&l, "event", "fail");
	lf_add(&l, "reply", huge);
	lf_consistent(&l, "huge value");
	ck_assert_str_eq(l.buf, " event=fail");
	lf_addf(&l, "reply", "%s", huge);
	lf_consistent(&l, "huge addf");
	ck_assert_str_eq(l.buf, " event=fail");
	lf_add(&l, "code", "421");
	lf_consistent(&l, "after huge");
	n = parse_fields(l.buf, parsed, 8, &why);
	ck_assert_msg(n >= 1, "'%s' does not parse: %s", l.buf, why);
	ck_assert_str_eq(parsed[0].key, "event");
}
END_TEST

/* lf_addf output longer than any internal buffer of 1 KiB or so. */
START_TEST(lf_addf_long_output)
{
	struct lf l;
	static char big[1500];

	memset(big, 'b', sizeof(big) - 1);
	lf_init(&l);
	lf_addf(&l, "a", "%s", big);
	lf_consistent(&l, "addf 1499");
	ck_assert_uint_eq(l.len, 3 + sizeof(big) - 1);
	ck_assert(memcmp(l.buf, " a=", 3) == 0);
	ck_assert(memcmp(l.buf + 3, big, sizeof(big) - 1) == 0);
}
END_TEST

/* ---- timestamps -------------------------------------------------------- */

static void
ts_is(long long sec, long usec, const char *want)
{
	struct timeval tv;
	char buf[64];

	tv.tv_sec = (time_t)sec;
	tv.tv_usec = (suseconds_t)usec;
	memset(buf, 'Z', sizeof(buf));
	rfc3339_format((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, true, buf,
	               sizeof(buf));
	ck_assert_msg(strcmp(buf, want) == 0, "%lld.%06ld: '%s', want '%s'",
	              sec, usec, buf, want);
}

START_TEST(rfc3339_values)
{
	ts_is(1795459201, 123456, "2026-11-23T18:40:01.123Z");
	ts_is(1795459201, 0, "2026-11-23T18:40:01.000Z");
	ts_is(1795459201, 999999, "2026-11-23T18:40:01.999Z");
	ts_is(1795459201, 999, "2026-11-23T18:40:01.000Z");
	ts_is(1795459201, 1000, "2026-11-23T18:40:01.001Z");
	ts_is(1795459201, 1999, "2026-11-23T18:40:01.001Z");
	ts_is(0, 0, "1970-01-01T00:00:00.000Z");
	ts_is(946684800, 500000, "2000-01-01T00:00:00.500Z");
	ts_is(1709251199, 4000, "2024-02-29T23:59:59.004Z");
	ts_is(1709251200, 0, "2024-03-01T00:00:00.000Z");
	ts_is(1767225599, 987654, "2025-12-31T23:59:59.987Z");
}
END_TEST

/* Not the local time zone. */
START_TEST(rfc3339_is_utc)
{
	setenv("TZ", "America/New_York", 1);
	tzset();
	ts_is(1795459201, 123456, "2026-11-23T18:40:01.123Z");
	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	ts_is(1795459201, 123456, "2026-11-23T18:40:01.123Z");
}
END_TEST

START_TEST(rfc3339_buffer_sizes)
{
	struct timeval tv = {1795459201, 123456};
	char buf[40];

	/* exactly 24 characters + NUL */
	memset(buf, 'Z', sizeof(buf));
	rfc3339_format((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, true, buf,
	               25);
	ck_assert_str_eq(buf, "2026-11-23T18:40:01.123Z");
	ck_assert_int_eq(buf[25], 'Z');
	/* smaller: never past len, always terminated */
	for (size_t len = 1; len < 25; len++) {
		memset(buf, 'Z', sizeof(buf));
		rfc3339_format((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000,
		               true, buf, len);
		ck_assert_msg(memchr(buf, '\0', len) != NULL,
		              "len %zu: not NUL-terminated", len);
		for (size_t k = len; k < sizeof(buf); k++)
			ck_assert_msg(buf[k] == 'Z', "len %zu: wrote byte %zu",
			              len, k);
	}
}
END_TEST

/* ---- the log file ------------------------------------------------------ */

static char tmpdir[256];

static void
make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/check_healthlog.XXXXXX",
	         base && *base ? base : "/tmp");
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void
remove_tmpdir(void)
{
	static const char *const names[] = {"health.log", "health.log.1",
	                                    "health.log.2"};
	char p[512];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	rmdir(tmpdir);
}

static void
tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* The lines of a file (malloc'd, NULL-terminated array of malloc'd lines,
 * each with its '\n'); *count set.  A final line without '\n' is kept as
 * it is, so that the caller sees it. */
static char **
read_lines(const char *path, size_t *count)
{
	FILE *f = fopen(path, "r");
	char **lines = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t linecap = 0;
	ssize_t r;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while ((r = getline(&line, &linecap, f)) != -1) {
		if (n + 2 > cap) {
			cap = cap ? cap * 2 : 16;
			lines = realloc(lines, cap * sizeof(*lines));
			ck_assert_ptr_nonnull(lines);
		}
		lines[n++] = strdup(line);
	}
	free(line);
	fclose(f);
	if (lines == NULL)
		lines = calloc(1, sizeof(*lines));
	lines[n] = NULL;
	*count = n;
	return lines;
}

static void
free_lines(char **lines)
{
	for (size_t i = 0; lines[i]; i++)
		free(lines[i]);
	free(lines);
}

/* "2026-11-23T18:40:01.123Z": returns the time in ms, or -1. */
static long long
parse_ts(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	struct tm tm;
	int ms;

	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return -1;
	}
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
	           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

static long long
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* line = 24-char timestamp within [lo, hi] ms + fields + "\n" */
static void
line_is(const char *line, const char *fields, long long lo, long long hi)
{
	long long ts = parse_ts(line);

	ck_assert_msg(ts >= 0, "bad timestamp in '%s'", line);
	ck_assert_msg(ts >= lo - 1 && ts <= hi + 1,
	              "timestamp %lld not in [%lld, %lld]: '%s'", ts, lo, hi,
	              line);
	ck_assert_msg(strncmp(line + 24, fields, strlen(fields)) == 0 &&
	                  strcmp(line + 24 + strlen(fields), "\n") == 0,
	              "line '%s', want timestamp + '%s' + newline", line,
	              fields);
}

static void
write_event(struct healthlog *hl, const char *event, int i)
{
	struct lf l;

	lf_init(&l);
	lf_add(&l, "event", event);
	lf_addf(&l, "n", "%d", i);
	healthlog_write(hl, &l);
}

/* Lines emitted by healthlog_tail. */
struct collect {
	char *lines[HEALTHLOG_KEEP + 10];
	size_t n;
	bool overflow;
};

static void
collect_line(const char *line, void *arg)
{
	struct collect *c = arg;

	if (c->n == sizeof(c->lines) / sizeof(c->lines[0])) {
		c->overflow = true;
		return;
	}
	c->lines[c->n++] = strdup(line);
}

static void
collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->lines[i]);
	c->n = 0;
}

static struct collect *
tail(struct healthlog *hl, size_t n, size_t want)
{
	static struct collect c;
	size_t r;

	collect_free(&c);
	c.overflow = false;
	r = healthlog_tail(hl, n, collect_line, &c);
	ck_assert(!c.overflow);
	ck_assert_msg(r == c.n, "tail(%zu) returned %zu, emitted %zu", n, r,
	              c.n);
	ck_assert_msg(c.n == want, "tail(%zu): %zu lines, want %zu", n, c.n,
	              want);
	return &c;
}

START_TEST(file_write_format)
{
	char path[512], err[256] = "";
	struct healthlog *hl;
	struct lf l;
	char **lines;
	size_t n;
	long long lo, hi;

	make_tmpdir();
	tmp_path(path, sizeof(path), "health.log");
	hl = healthlog_open(path, err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(%s): %s", path, err);

	lf_init(&l);
	lf_add(&l, "event", "down");
	lf_add(&l, "server", "filter2");
	lf_add(&l, "reply", "4.7.0 try again later");
	lo = now_ms();
	healthlog_write(hl, &l);
	hi = now_ms();

	/* on disk at once, before close */
	lines = read_lines(path, &n);
	ck_assert_msg(n == 1, "%zu lines in the file before close, want 1", n);
	ck_assert_uint_eq(strlen(lines[0]), 24 + l.len + 1);
	line_is(lines[0], l.buf, lo, hi);
	ck_assert(strncmp(lines[0] + 24, " event=down", 11) == 0);
	free_lines(lines);

	healthlog_close(hl);
	lines = read_lines(path, &n);
	ck_assert_uint_eq(n, 1);
	free_lines(lines);
	remove_tmpdir();
}
END_TEST

START_TEST(file_appends)
{
	char path[512], err[256] = "";
	struct healthlog *hl;
	char **lines;
	size_t n;
	FILE *f;

	make_tmpdir();
	tmp_path(path, sizeof(path), "health.log");
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("2026-01-01T00:00:00.000Z event=up n=0\n", f);
	fclose(f);

	hl = healthlog_open(path, err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(%s): %s", path, err);
	write_event(hl, "fail", 1);
	write_event(hl, "down", 2);
	healthlog_close(hl);

	hl = healthlog_open(path, err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(%s): %s", path, err);
	write_event(hl, "up", 3);
	healthlog_close(hl);

	lines = read_lines(path, &n);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(lines[0], "2026-01-01T00:00:00.000Z event=up n=0\n");
	line_is(lines[1], " event=fail n=1", 0, now_ms());
	line_is(lines[2], " event=down n=2", 0, now_ms());
	line_is(lines[3], " event=up n=3", 0, now_ms());
	free_lines(lines);
	remove_tmpdir();
}
END_TEST

/* A line filled to HEALTHLOG_LINE_MAX - 1 is written whole. */
START_TEST(file_full_line)
{
	char path[512], err[256] = "";
	static char filler[HEALTHLOG_LINE_MAX];
	struct healthlog *hl;
	struct lf l;
	char **lines;
	size_t n;
	struct collect *c;

	make_tmpdir();
	tmp_path(path, sizeof(path), "health.log");
	hl = healthlog_open(path, err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(%s): %s", path, err);
	lf_init(&l);
	lf_add(&l, "event", "fail");
	memset(filler, 'y', HEALTHLOG_LINE_MAX - 1 - l.len - 7);
	lf_add(&l, "reply", filler);
	ck_assert_uint_eq(l.len, HEALTHLOG_LINE_MAX - 1);
	healthlog_write(hl, &l);
	write_event(hl, "up", 1);

	lines = read_lines(path, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_msg(strlen(lines[0]) == 24 + HEALTHLOG_LINE_MAX - 1 + 1,
	              "full line written as %zu bytes, want %d",
	              strlen(lines[0]), 24 + HEALTHLOG_LINE_MAX);
	line_is(lines[0], l.buf, 0, now_ms());
	c = tail(hl, 2, 2);
	ck_assert_str_eq(c->lines[0], lines[0]);
	ck_assert_str_eq(c->lines[1], lines[1]);
	collect_free(c);
	free_lines(lines);
	healthlog_close(hl);
	remove_tmpdir();
}
END_TEST

START_TEST(tail_last_lines)
{
	char path[512], err[256] = "";
	struct healthlog *hl;
	struct collect *c;
	char **lines;
	size_t n;

	make_tmpdir();
	tmp_path(path, sizeof(path), "health.log");
	hl = healthlog_open(path, err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(%s): %s", path, err);
	tail(hl, 0, 0);
	tail(hl, 5, 0);
	for (int i = 1; i <= 5; i++)
		write_event(hl, "fail", i);
	lines = read_lines(path, &n);
	ck_assert_uint_eq(n, 5);

	c = tail(hl, 3, 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_str_eq(c->lines[i], lines[2 + i]);
	c = tail(hl, 1, 1);
	ck_assert_str_eq(c->lines[0], lines[4]);
	line_is(c->lines[0], " event=fail n=5", 0, now_ms());
	c = tail(hl, 0, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_str_eq(c->lines[i], lines[i]);
	c = tail(hl, 5, 5);
	c = tail(hl, 100, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_str_eq(c->lines[i], lines[i]);
	collect_free(c);
	free_lines(lines);
	healthlog_close(hl);
	remove_tmpdir();
}
END_TEST

START_TEST(tail_keeps_last_thousand)
{
	char path[512], err[256] = "";
	struct healthlog *hl;
	struct collect *c;
	char want[64];
	size_t n;
	char **lines;

	make_tmpdir();
	tmp_path(path, sizeof(path), "health.log");
	hl = healthlog_open(path, err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(%s): %s", path, err);
	for (int i = 1; i <= HEALTHLOG_KEEP + 5; i++)
		write_event(hl, "fail", i);
	c = tail(hl, 0, HEALTHLOG_KEEP);
	snprintf(want, sizeof(want), " event=fail n=%d\n", 6);
	ck_assert_str_eq(c->lines[0] + 24, want);
	snprintf(want, sizeof(want), " event=fail n=%d\n", HEALTHLOG_KEEP + 5);
	ck_assert_str_eq(c->lines[HEALTHLOG_KEEP - 1] + 24, want);
	for (size_t i = 0; i < HEALTHLOG_KEEP; i++) {
		snprintf(want, sizeof(want), " event=fail n=%zu\n", i + 6);
		ck_assert_str_eq(c->lines[i] + 24, want);
	}
	c = tail(hl, 2, 2);
	snprintf(want, sizeof(want), " event=fail n=%d\n", HEALTHLOG_KEEP + 4);
	ck_assert_str_eq(c->lines[0] + 24, want);
	c = tail(hl, HEALTHLOG_KEEP + 5, HEALTHLOG_KEEP);
	collect_free(c);
	lines = read_lines(path, &n);
	ck_assert_uint_eq(n, HEALTHLOG_KEEP + 5);
	free_lines(lines);
	healthlog_close(hl);
	remove_tmpdir();
}
END_TEST

/* logrotate: rename the file, SIGUSR1 -> reopen; later lines go to a new
 * file at the original path. */
START_TEST(reopen_after_rename)
{
	char path[512], rotated[512], err[256] = "";
	struct healthlog *hl;
	struct collect *c;
	char **lines;
	size_t n;

	make_tmpdir();
	tmp_path(path, sizeof(path), "health.log");
	tmp_path(rotated, sizeof(rotated), "health.log.1");
	hl = healthlog_open(path, err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(%s): %s", path, err);
	write_event(hl, "down", 1);
	ck_assert_int_eq(rename(path, rotated), 0);
	write_event(hl, "up", 2); /* still the old file */
	ck_assert_int_eq(healthlog_reopen(hl), 0);
	write_event(hl, "fail", 3);

	lines = read_lines(rotated, &n);
	ck_assert_uint_eq(n, 2);
	line_is(lines[0], " event=down n=1", 0, now_ms());
	line_is(lines[1], " event=up n=2", 0, now_ms());
	free_lines(lines);
	lines = read_lines(path, &n);
	ck_assert_msg(n == 1, "%zu lines in the new file, want 1", n);
	line_is(lines[0], " event=fail n=3", 0, now_ms());
	free_lines(lines);

	/* the lines kept in memory span the rotation */
	c = tail(hl, 0, 3);
	ck_assert_str_eq(c->lines[2] + 24, " event=fail n=3\n");
	collect_free(c);

	/* reopen without a rename keeps appending to the same file */
	ck_assert_int_eq(healthlog_reopen(hl), 0);
	write_event(hl, "up", 4);
	lines = read_lines(path, &n);
	ck_assert_uint_eq(n, 2);
	line_is(lines[1], " event=up n=4", 0, now_ms());
	free_lines(lines);

	healthlog_close(hl);
	remove_tmpdir();
}
END_TEST

/* Two missing directory levels, or a parent that is a regular file: the
 * file cannot be created.  The error names the path. */
START_TEST(open_unwritable_path)
{
	static const char *const names[] = {"no-such-dir/sub/health.log",
	                                    "health.log.2/health.log"};
	char path[512], err[256], small[16];
	struct healthlog *hl;
	FILE *f;

	make_tmpdir();
	tmp_path(path, sizeof(path), "health.log.2");
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tmp_path(path, sizeof(path), names[i]);
		memset(err, 0, sizeof(err));
		hl = healthlog_open(path, err, sizeof(err));
		ck_assert_msg(hl == NULL, "healthlog_open(%s) succeeded", path);
		ck_assert_msg(strstr(err, path) != NULL,
		              "error '%s' does not name the path %s", err,
		              path);
		/* a small error buffer is not overrun */
		memset(small, 'Z', sizeof(small));
		hl = healthlog_open(path, small, 8);
		ck_assert_ptr_null(hl);
		ck_assert_msg(memchr(small, '\0', 8) != NULL,
		              "short error not NUL-terminated");
		for (size_t k = 8; k < sizeof(small); k++)
			ck_assert_int_eq(small[k], 'Z');
	}
	remove_tmpdir();
}
END_TEST

/* path "": syslog only, the lines are still kept for `show health`. */
START_TEST(syslog_only)
{
	char err[256] = "";
	struct healthlog *hl;
	struct collect *c;
	long long lo = now_ms();

	hl = healthlog_open("", err, sizeof(err));
	ck_assert_msg(hl != NULL, "healthlog_open(\"\"): %s", err);
	write_event(hl, "down", 1);
	write_event(hl, "up", 2);
	write_event(hl, "drain", 3);
	c = tail(hl, 2, 2);
	line_is(c->lines[0], " event=up n=2", lo, now_ms());
	line_is(c->lines[1], " event=drain n=3", lo, now_ms());
	ck_assert_int_eq(healthlog_reopen(hl), 0);
	write_event(hl, "ready", 4);
	c = tail(hl, 0, 4);
	line_is(c->lines[3], " event=ready n=4", lo, now_ms());
	collect_free(c);
	healthlog_close(hl);
}
END_TEST

static Suite *
healthlog_suite(void)
{
	Suite *s = suite_create("healthlog");
	TCase *tc;

	tc = tcase_create("logfmt");
	tcase_add_test(tc, lf_init_empty);
	tcase_add_test(tc, lf_plain_values);
	tcase_add_test(tc, lf_quoted_values);
	tcase_add_test(tc, lf_control_characters);
	tcase_add_test(tc, lf_eight_bit_kept);
	tcase_add_test(tc, lf_spec_example);
	tcase_add_test(tc, lf_addf_quotes_and_escapes);
	tcase_add_test(tc, lf_boundary_all_or_nothing);
	tcase_add_test(tc, lf_single_field_fills_line);
	tcase_add_test(tc, lf_many_fields_stay_parseable);
	tcase_add_test(tc, lf_huge_value_dropped);
	tcase_add_test(tc, lf_addf_long_output);
	suite_add_tcase(s, tc);

	tc = tcase_create("timestamp");
	tcase_add_test(tc, rfc3339_values);
	tcase_add_test(tc, rfc3339_is_utc);
	tcase_add_test(tc, rfc3339_buffer_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, file_write_format);
	tcase_add_test(tc, file_appends);
	tcase_add_test(tc, file_full_line);
	tcase_add_test(tc, tail_last_lines);
	tcase_add_test(tc, tail_keeps_last_thousand);
	tcase_add_test(tc, reopen_after_rename);
	tcase_add_test(tc, open_unwritable_path);
	tcase_add_test(tc, syslog_only);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(healthlog_suite());
	int failed;

	/* The health events also go to the log (syslog, or stderr before
	 * the configuration is read): keep the test output readable. */
	log_configure(false, LOG_DAEMON, "check_healthlog", LOG_ERR, true);

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
