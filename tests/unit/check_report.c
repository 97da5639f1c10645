/* Unit tests for report.c: the health-log parser, the availability
 * arithmetic and the text/JSON output of `lbctl health-report`. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "report.h"
#include "rfc3339.h"

#define FIXTURE TEST_SRCDIR "/tests/unit/data/report/health_log.txt"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

/* An RFC 3339 time that must parse. */
static int64_t
T(const char *text)
{
	int64_t ms = 0;

	ck_assert_msg(rfc3339_parse(text, &ms) == 0,
	              "rfc3339_parse(\"%s\") failed", text);
	return ms;
}

/* A report over [from, to] fed with the lines, finished. */
static void
build(struct report *r, const char *from, const char *to,
      const char *const *lines)
{
	report_init(r, from != NULL ? T(from) : REPORT_FROM_FIRST, T(to));
	for (size_t i = 0; lines[i] != NULL; i++)
		ck_assert_int_eq(report_add_line(r, lines[i]), 0);
	report_finish(r);
}

static const struct report_server *
server(const struct report *r, const char *backend, const char *name)
{
	const struct report_server *s = report_find_server(r, backend, name);

	ck_assert_msg(s != NULL, "no server %s/%s", backend, name);
	return s;
}

/* Print through fn into a string (caller frees). */
static char *
capture_text(const struct report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(report_print_text(r, "test.log", fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	return buf;
}

static char *
capture_json(const struct report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(report_print_json(r, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	return buf;
}

static char *
json_string(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(fp);
	report_json_string(fp, s);
	ck_assert_int_eq(fclose(fp), 0);
	return buf;
}

static void
assert_contains(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) != NULL, "expected \"%s\" in:\n%s",
	              needle, hay);
}

/* ---- RFC 3339 ---- */

START_TEST(time_parse_utc_ms)
{
	ck_assert_int_eq(T("2026-11-23T18:40:01.123Z"), 1795459201123LL);
	ck_assert_int_eq(T("2026-11-24T06:00:00Z"), 1795500000000LL);
	ck_assert_int_eq(T("1970-01-01T00:00:00.000Z"), 0);
	ck_assert_int_eq(T("2028-02-29T12:00:00Z"), 1835438400000LL);
	ck_assert_int_eq(T("1969-12-31T23:59:59.500Z"), -500);
}
END_TEST

START_TEST(time_parse_variants)
{
	int64_t base = T("2026-11-23T18:40:01.123Z");

	ck_assert_int_eq(T("2026-11-23t18:40:01.123z"), base);
	ck_assert_int_eq(T("2026-11-23T20:40:01.123+02:00"), base);
	ck_assert_int_eq(T("2026-11-23T13:10:01.123-05:30"), base);
	ck_assert_int_eq(T("2026-11-23T18:40:01.123456Z"), base);
	ck_assert_int_eq(T("2026-11-23T18:40:01.1Z"), base - 23);
	ck_assert_int_eq(T("2026-11-23T18:40:01Z"), base - 123);
	/* a leap second counts as the minute's last second */
	ck_assert_int_eq(T("2016-12-31T23:59:60Z"), T("2016-12-31T23:59:59Z"));
}
END_TEST

START_TEST(time_parse_rejects)
{
	static const char *const bad[] = {
	    "",
	    "2026-11-23",
	    "2026-11-23T18:40:01",      /* no zone */
	    "2026-11-23T18:40:01.Z",    /* empty fraction */
	    "2026-11-23 18:40:01Z",     /* space */
	    "2026-13-01T00:00:00Z",     /* month */
	    "2026-02-29T00:00:00Z",     /* not a leap year */
	    "2026-04-31T00:00:00Z",     /* day */
	    "2026-11-23T24:00:00Z",     /* hour */
	    "2026-11-23T18:60:00Z",     /* minute */
	    "2026-11-23T18:40:01ZZ",    /* trailing */
	    "2026-11-23T18:40:01+0200", /* offset without colon */
	    "26-11-23T18:40:01Z",
	    "2026-1-23T18:40:01Z",
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(rfc3339_parse(bad[i], &ms) < 0, "\"%s\" accepted",
		              bad[i]);
}
END_TEST

START_TEST(time_format)
{
	char buf[REPORT_TIME_MAX];

	rfc3339_format(1795459201123LL, true, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23T18:40:01.123Z");
	rfc3339_format(1795459201123LL, false, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23T18:40:01Z");
	rfc3339_format(-500, true, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1969-12-31T23:59:59.500Z");
	rfc3339_format(T("2028-02-29T23:59:59.999Z"), true, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2028-02-29T23:59:59.999Z");
	rfc3339_format_text(1795459201123LL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23 18:40:01");
}
END_TEST

/* ---- durations ---- */

START_TEST(duration_parse)
{
	static const struct {
		const char *text;
		int64_t ms;
	} ok[] = {
	    {"30m", 30 * MIN},
	    {"24h", 24 * HOUR},
	    {"7d", 7 * 24 * HOUR},
	    {"1500ms", 1500},
	    {"1500", 1500},
	    {"5s", 5 * SEC},
	    {"365d", 365 * 24 * HOUR},
	};
	static const char *const bad[] = {
	    "",     "x",    "-5m", "5y",
	    "1.5h", "366d", "5 m", "99999999999999999999"};
	const char *err;
	int64_t ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(report_parse_duration(ok[i].text, &ms, &err) == 0,
		              "\"%s\" rejected", ok[i].text);
		ck_assert_int_eq(ms, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		ck_assert_msg(report_parse_duration(bad[i], &ms, &err) < 0,
		              "\"%s\" accepted", bad[i]);
		ck_assert_ptr_nonnull(err);
	}
}
END_TEST

START_TEST(duration_format)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
	    {0, "0s"},
	    {-5, "0s"},
	    {850, "850ms"},
	    {45 * SEC, "45s"},
	    {66004, "1m06s"},
	    {2 * HOUR + 3 * MIN + 59 * SEC, "2h03m"},
	    {3 * 24 * HOUR + 4 * HOUR + 5 * MIN, "3d04h"},
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		report_format_duration(cases[i].ms, buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].text);
	}
}
END_TEST

/* ---- line parser ---- */

START_TEST(line_down_with_code)
{
	struct report_event ev;
	const char *err = NULL;

	ck_assert_int_eq(
	    report_parse_line(
	        "2026-11-23T18:40:01.123Z event=down "
	        "backend=TO-FILTER-CLUSTER server=filter2 "
	        "addr=10.10.10.2:25 check=smtp step=helo code=421 "
	        "reply=\"4.7.0 try again later\" duration_ms=12 failures=3 "
	        "active=2 backup=0\n",
	        &ev, &err),
	    0);
	ck_assert_int_eq(ev.t_ms, 1795459201123LL);
	ck_assert_int_eq(ev.type, REV_DOWN);
	ck_assert_str_eq(ev.backend, "TO-FILTER-CLUSTER");
	ck_assert_str_eq(ev.server, "filter2");
	ck_assert_str_eq(ev.addr, "10.10.10.2:25");
	ck_assert_str_eq(ev.step, "helo");
	ck_assert_int_eq(ev.code, 421);
	ck_assert_str_eq(ev.reply, "4.7.0 try again later");
	ck_assert_str_eq(ev.reason, "");
}
END_TEST

START_TEST(line_reason_and_up)
{
	struct report_event ev;
	const char *err = NULL;

	ck_assert_int_eq(
	    report_parse_line("2026-11-23T18:40:01.123Z event=down backend=B "
	                      "server=S addr=127.0.0.1:2601 check=tcp "
	                      "step=connect reason=\"connection refused\" "
	                      "duration_ms=0 failures=1 active=2 backup=0",
	                      &ev, &err),
	    0);
	ck_assert_int_eq(ev.code, -1);
	ck_assert_str_eq(ev.reason, "connection refused");

	ck_assert_int_eq(
	    report_parse_line("2026-11-23T18:41:07.004Z event=up backend=B "
	                      "server=S addr=A check=smtp duration_ms=4 "
	                      "successes=2 downtime_s=66 active=3 backup=0\r\n",
	                      &ev, &err),
	    0);
	ck_assert_int_eq(ev.type, REV_UP);
	ck_assert_int_eq(ev.downtime_s, 66);
	ck_assert_str_eq(ev.addr, "A");
}
END_TEST

START_TEST(line_quoted_escapes)
{
	struct report_event ev;
	const char *err = NULL;

	ck_assert_int_eq(
	    report_parse_line("2026-11-23T18:39:55.000Z event=fail backend=B "
	                      "server=S step=greeting code=554 "
	                      "reply=\"say \\\"hi\\\" a=b \\\\ c\\x\" "
	                      "reason=\"\" duration_ms=3",
	                      &ev, &err),
	    0);
	ck_assert_int_eq(ev.type, REV_FAIL);
	/* \" and \\ are unescaped; any other backslash stays */
	ck_assert_str_eq(ev.reply, "say \"hi\" a=b \\ c\\x");
	ck_assert_str_eq(ev.reason, "");
	ck_assert_int_eq(ev.code, 554);
}
END_TEST

START_TEST(line_unknown_tolerated)
{
	struct report_event ev;
	const char *err = NULL;

	ck_assert_int_eq(report_parse_line("2026-11-23T18:39:55.000Z "
	                                   "event=something_new x=1 "
	                                   "y=\"two words\" flag",
	                                   &ev, &err),
	                 0);
	ck_assert_int_eq(ev.type, REV_OTHER);
	ck_assert_str_eq(ev.name, "something_new");

	/* unknown keys on a known event; a non-numeric code is ignored */
	ck_assert_int_eq(report_parse_line("2026-11-23T18:39:55.000Z "
	                                   "event=fail backend=B server=S "
	                                   "future_key=\"a b\" code=4x1",
	                                   &ev, &err),
	                 0);
	ck_assert_int_eq(ev.type, REV_FAIL);
	ck_assert_int_eq(ev.code, -1);
}
END_TEST

START_TEST(line_cert_expiry)
{
	struct report_event ev;
	const char *err = NULL;

	ck_assert_int_eq(
	    report_parse_line("2026-11-23T18:44:00.000Z event=cert_expiry "
	                      "backend=B server=S addr=A "
	                      "not_after=2026-12-01T00:00:00Z days_left=7 "
	                      "subject=\"CN=mx.example.test\"",
	                      &ev, &err),
	    0);
	ck_assert_int_eq(ev.type, REV_CERT_EXPIRY);
	ck_assert_str_eq(ev.not_after, "2026-12-01T00:00:00Z");
	ck_assert_int_eq(ev.not_after_ms, T("2026-12-01T00:00:00Z"));
	ck_assert(ev.has_days_left);
	ck_assert_int_eq(ev.days_left, 7);
}
END_TEST

START_TEST(line_long_reply_cut)
{
	char line[REPORT_LINE_MAX];
	struct report_event ev;
	const char *err = NULL;
	int n;

	n = snprintf(line, sizeof(line),
	             "2026-11-23T18:44:00.000Z event=fail backend=B server=S "
	             "step=helo code=500 reply=\"");
	memset(line + n, 'r', 1500);
	strcpy(line + n + 1500, "\" duration_ms=1");
	ck_assert_int_eq(report_parse_line(line, &ev, &err), 0);
	ck_assert_uint_eq(strlen(ev.reply), REPORT_TEXT_MAX - 1);
	ck_assert_str_eq(ev.reply + REPORT_TEXT_MAX - 4, "...");
}
END_TEST

START_TEST(line_malformed)
{
	static const char *const bad[] = {
	    "",
	    "\n",
	    "hello world",
	    "2026-11-23 event=down backend=B server=S",
	    "2026-11-23T18:40:01.123 event=down backend=B server=S",
	    "2026-11-23T18:40:01.123Z",
	    "2026-11-23T18:40:01.123Z backend=B server=S",
	    "2026-11-23T18:40:01.123Z event= backend=B server=S",
	    "2026-11-23T18:40:01.123Z event=down backend=B server=S "
	    "reply=\"unterminated",
	    "2026-11-23T18:40:01.123Z event=down backend=B server=S "
	    "reply=\"ends with backslash\\\"",
	    "2026-11-23T18:40:01.123Z event=down backend=B server=S "
	    "reply=\"a\"b",
	    "2026-11-23T18:40:01.123Z event=down backend=B server=S =x",
	    "2026-11-23T18:40:01.123Z event=down backend=B",
	    "2026-11-23T18:40:01.123Z event=up server=S",
	    "2026-11-23T18:40:01.123Z event=backend_down active=0",
	};
	char longname[REPORT_NAME_MAX + 100];
	struct report_event ev;
	const char *err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		ck_assert_msg(report_parse_line(bad[i], &ev, &err) < 0,
		              "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(err);
	}
	/* a name longer than the field is an error, not a silent cut */
	snprintf(longname, sizeof(longname),
	         "2026-11-23T18:40:01.123Z event=down backend=B server=%0*d",
	         REPORT_NAME_MAX, 7);
	ck_assert_int_lt(report_parse_line(longname, &ev, &err), 0);
}
END_TEST

/* ---- availability arithmetic ---- */

START_TEST(avail_no_events_is_up)
{
	static const char *const lines[] = {
	    "2026-11-23T10:00:00Z event=fail backend=B server=S step=helo "
	    "code=451 reply=x",
	    NULL};
	struct report r;
	const struct report_server *s;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->downtime_ms, 0);
	ck_assert_double_eq(report_availability(&r, s), 100.0);
	ck_assert(s->has_failure);
	ck_assert_int_eq(s->last_failure.code, 451);
	ck_assert_uint_eq(s->n_outages, 0);
	report_free(&r);
}
END_TEST

START_TEST(avail_down_inside_window)
{
	static const char *const lines[] = {
	    "2026-11-23T12:00:00Z event=down backend=B server=S step=helo "
	    "code=421 reply=\"4.7.0 later\"",
	    "2026-11-23T12:06:00Z event=up backend=B server=S downtime_s=360",
	    NULL};
	struct report r;
	const struct report_server *s;
	const struct report_outage *o;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->downtime_ms, 6 * MIN);
	ck_assert_int_eq(s->longest_ms, 6 * MIN);
	ck_assert_uint_eq(s->down_events, 1);
	ck_assert_uint_eq(s->flaps, 0);
	ck_assert(!s->down);
	/* 1 - 360/86400 */
	ck_assert_double_eq_tol(report_availability(&r, s), 99.583333, 1e-4);
	ck_assert_uint_eq(s->n_outages, 1);
	o = report_outage(s, 0);
	ck_assert_int_eq(o->start_ms, T("2026-11-23T12:00:00Z"));
	ck_assert_int_eq(o->end_ms, T("2026-11-23T12:06:00Z"));
	ck_assert_int_eq(o->window_ms, 6 * MIN);
	ck_assert_int_eq(o->why.code, 421);
	report_free(&r);
}
END_TEST

START_TEST(avail_down_before_window_ongoing)
{
	static const char *const lines[] = {
	    "2026-11-20T00:00:00Z event=down backend=B server=S "
	    "step=connect reason=timeout",
	    NULL};
	struct report r;
	const struct report_server *s;
	const struct report_outage *o;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->downtime_ms, 24 * HOUR);
	ck_assert_int_eq(s->longest_ms, 24 * HOUR);
	ck_assert_uint_eq(s->down_events, 0); /* the event is before */
	ck_assert(!s->has_failure);
	ck_assert_double_eq(report_availability(&r, s), 0.0);
	ck_assert_uint_eq(s->n_outages, 1);
	o = report_outage(s, 0);
	ck_assert_int_eq(o->start_ms, T("2026-11-20T00:00:00Z"));
	ck_assert_int_eq(o->end_ms, -1);
	ck_assert_str_eq(o->why.reason, "timeout");
	report_free(&r);
}
END_TEST

START_TEST(avail_down_no_up_until_now)
{
	static const char *const lines[] = {
	    "2026-11-24T05:00:00Z event=down backend=B server=S "
	    "step=connect reason=\"connection refused\"",
	    NULL};
	struct report r;
	const struct report_server *s;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert(s->down);
	ck_assert_int_eq(s->downtime_ms, HOUR);
	ck_assert_int_eq(s->longest_ms, HOUR);
	ck_assert_int_eq(report_outage(s, 0)->end_ms, -1);
	ck_assert_int_eq(report_outage(s, 0)->window_ms, HOUR);
	report_free(&r);
}
END_TEST

START_TEST(avail_several_outages_flaps)
{
	static const char *const lines[] = {
	    /* 10m, then 2m back after 5m (a flap), then 30s after 15m (not
	     * a flap: the gap is 10m or more), then 1m after 9m59s */
	    "2026-11-23T10:00:00Z event=down backend=B server=S step=helo "
	    "code=421",
	    "2026-11-23T10:10:00Z event=up backend=B server=S",
	    "2026-11-23T10:15:00Z event=down backend=B server=S step=helo "
	    "code=421",
	    "2026-11-23T10:17:00Z event=up backend=B server=S",
	    "2026-11-23T10:27:00Z event=down backend=B server=S step=helo "
	    "code=421",
	    "2026-11-23T10:27:30Z event=up backend=B server=S",
	    "2026-11-23T10:37:29Z event=down backend=B server=S step=quit "
	    "reason=timeout",
	    "2026-11-23T10:38:29Z event=up backend=B server=S",
	    NULL};
	struct report r;
	const struct report_server *s;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_uint_eq(s->down_events, 4);
	ck_assert_uint_eq(s->n_outages, 4);
	ck_assert_int_eq(s->downtime_ms, 10 * MIN + 2 * MIN + 30 * SEC + MIN);
	ck_assert_int_eq(s->longest_ms, 10 * MIN);
	ck_assert_uint_eq(s->flaps, 2);
	ck_assert_str_eq(s->last_failure.step, "quit");
	report_free(&r);
}
END_TEST

START_TEST(avail_since_clipping)
{
	static const char *const lines[] = {
	    "2026-11-23T04:00:00Z event=down backend=B server=S step=helo "
	    "code=421",
	    "2026-11-23T07:30:00Z event=up backend=B server=S",
	    /* an outage entirely before the window is not listed */
	    "2026-11-23T01:00:00Z event=down backend=B server=T step=helo "
	    "code=421",
	    "2026-11-23T02:00:00Z event=up backend=B server=T", NULL};
	struct report r;
	const struct report_server *s;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->downtime_ms, 90 * MIN);
	ck_assert_int_eq(s->longest_ms, 90 * MIN);
	ck_assert_uint_eq(s->down_events, 0);
	ck_assert_int_eq(report_outage(s, 0)->start_ms,
	                 T("2026-11-23T04:00:00Z"));
	ck_assert_int_eq(report_outage(s, 0)->window_ms, 90 * MIN);
	s = server(&r, "B", "T");
	ck_assert_int_eq(s->downtime_ms, 0);
	ck_assert_uint_eq(s->n_outages, 0);
	ck_assert_uint_eq(s->outages_total, 0);
	ck_assert_double_eq(report_availability(&r, s), 100.0);
	report_free(&r);

	/* Without --since the window starts at the first event. */
	build(&r, NULL, "2026-11-24T06:00:00Z", lines);
	ck_assert_int_eq(r.from_ms, T("2026-11-23T04:00:00Z"));
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->downtime_ms, 210 * MIN);
	ck_assert_uint_eq(s->down_events, 1);
	s = server(&r, "B", "T");
	/* out of order: T's lines come later in the file but are earlier
	 * than the window start; they are clipped to it */
	ck_assert_int_eq(s->downtime_ms, 0);
	report_free(&r);
}
END_TEST

START_TEST(avail_maint_not_downtime)
{
	static const char *const lines[] = {
	    "2026-11-23T12:00:00Z event=drain backend=B server=S",
	    "2026-11-23T12:05:00Z event=down backend=B server=S "
	    "step=connect reason=\"connection refused\"",
	    "2026-11-23T12:30:00Z event=ready backend=B server=S",
	    "2026-11-23T12:31:00Z event=up backend=B server=S",
	    /* maintenance starting during an outage ends it */
	    "2026-11-23T14:00:00Z event=down backend=B server=S "
	    "step=connect reason=timeout",
	    "2026-11-23T14:10:00Z event=maint backend=B server=S",
	    "2026-11-23T15:00:00Z event=up backend=B server=S",
	    "2026-11-23T15:05:00Z event=ready backend=B server=S", NULL};
	struct report r;
	const struct report_server *s;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->maint_ms, 30 * MIN + 55 * MIN);
	ck_assert_int_eq(s->downtime_ms, MIN + 10 * MIN);
	ck_assert_int_eq(s->longest_ms, 10 * MIN);
	ck_assert_uint_eq(s->down_events, 2);
	ck_assert_uint_eq(s->n_outages, 2);
	ck_assert(report_outage(s, 0)->after_maint);
	ck_assert_int_eq(report_outage(s, 0)->start_ms,
	                 T("2026-11-23T12:30:00Z"));
	ck_assert_str_eq(report_outage(s, 0)->why.reason, "connection refused");
	ck_assert(!report_outage(s, 1)->after_maint);
	ck_assert_int_eq(report_outage(s, 1)->end_ms,
	                 T("2026-11-23T14:10:00Z"));
	ck_assert_uint_eq(s->flaps, 0);
	ck_assert_int_eq(s->admin, RADMIN_READY);
	ck_assert(!s->down);
	report_free(&r);
}
END_TEST

START_TEST(avail_maint_ongoing)
{
	static const char *const lines[] = {
	    "2026-11-24T04:00:00Z event=maint backend=B server=S", NULL};
	struct report r;
	const struct report_server *s;
	char *text;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->maint_ms, 2 * HOUR);
	ck_assert_double_eq(report_availability(&r, s), 100.0);
	text = capture_text(&r);
	assert_contains(text, "MAINT");
	free(text);
	report_free(&r);
}
END_TEST

START_TEST(avail_backend_no_server)
{
	static const char *const lines[] = {
	    "2026-11-23T05:50:00Z event=backend_down backend=B active=0",
	    "2026-11-23T06:20:00Z event=backend_up backend=B active=1",
	    "2026-11-23T08:00:00Z event=backend_down backend=B active=0",
	    "2026-11-23T08:05:00Z event=backend_up backend=B active=1",
	    "2026-11-24T05:55:00Z event=backend_down backend=B active=0",
	    NULL};
	struct report r;
	const struct report_backend *b;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	b = report_find_backend(&r, "B");
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->down_events, 2);
	ck_assert_int_eq(b->no_server_ms, 20 * MIN + 5 * MIN + 5 * MIN);
	ck_assert_int_eq(b->longest_ms, 20 * MIN);
	ck_assert(b->down);
	report_free(&r);
}
END_TEST

START_TEST(avail_rotated_log_up_first)
{
	/* The `down` is in the previous (rotated) file: downtime_s of the
	 * `up` rebuilds the outage. */
	static const char *const lines[] = {
	    "2026-11-23T06:10:00Z event=up backend=B server=S "
	    "downtime_s=1200",
	    NULL};
	struct report r;
	const struct report_server *s;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->downtime_ms, 10 * MIN);
	ck_assert_uint_eq(s->n_outages, 1);
	ck_assert_int_eq(report_outage(s, 0)->start_ms,
	                 T("2026-11-23T05:50:00Z"));
	ck_assert_uint_eq(s->down_events, 0);
	report_free(&r);
}
END_TEST

START_TEST(avail_future_and_restart)
{
	static const char *const lines[] = {
	    "2026-11-23T10:00:00Z event=down backend=B server=S "
	    "step=connect reason=timeout",
	    "2026-11-23T10:30:00Z event=start version=0.2",
	    "2026-11-25T00:00:00Z event=down backend=B server=T "
	    "step=connect reason=timeout",
	    NULL};
	struct report r;
	const struct report_server *s;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	s = server(&r, "B", "S");
	ck_assert_int_eq(s->downtime_ms, 30 * MIN);
	ck_assert(!s->down);
	ck_assert_ptr_null(report_find_server(&r, "B", "T"));
	ck_assert_uint_eq(r.future, 1);
	report_free(&r);
}
END_TEST

START_TEST(avail_outage_ring)
{
	struct report r;
	struct report_event ev;
	const struct report_server *s;
	int64_t t0 = T("2026-11-01T00:00:00Z");

	report_init(&r, t0, t0 + 24 * HOUR);
	memset(&ev, 0, sizeof(ev));
	strcpy(ev.backend, "B");
	strcpy(ev.server, "S");
	ev.code = -1;
	ev.downtime_s = -1;
	for (int i = 0; i < 250; i++) {
		ev.type = REV_DOWN;
		ev.t_ms = t0 + i * 5 * MIN;
		ck_assert_int_eq(report_add(&r, &ev), 0);
		ev.type = REV_UP;
		ev.t_ms = t0 + i * 5 * MIN + (i == 7 ? 3 * MIN : MIN);
		ck_assert_int_eq(report_add(&r, &ev), 0);
	}
	report_finish(&r);
	s = server(&r, "B", "S");
	ck_assert_uint_eq(s->outages_total, 250);
	ck_assert_uint_eq(s->n_outages, REPORT_OUTAGES_KEEP);
	ck_assert_int_eq(report_outage(s, 0)->start_ms, t0 + 50 * 5 * MIN);
	ck_assert_int_eq(report_outage(s, REPORT_OUTAGES_KEEP - 1)->start_ms,
	                 t0 + 249 * 5 * MIN);
	ck_assert_int_eq(s->longest_ms, 3 * MIN); /* from a dropped one */
	ck_assert_int_eq(s->downtime_ms, 249 * MIN + 3 * MIN);
	ck_assert_uint_eq(s->flaps, 249);
	report_free(&r);
}
END_TEST

START_TEST(cert_days)
{
	static const char *const lines[] = {
	    "2026-11-20T00:00:00Z event=cert_expiry backend=B server=S "
	    "not_after=2026-12-01T00:00:00Z days_left=11",
	    "2026-11-20T00:00:00Z event=cert_expiry backend=B server=T "
	    "not_after=2026-11-01T00:00:00Z days_left=-19",
	    "2026-11-20T00:00:00Z event=cert_expiry backend=B server=U "
	    "not_after=garbage days_left=3",
	    "2026-11-20T00:00:00Z event=up backend=B server=V", NULL};
	struct report r;
	long days;
	char *text;

	build(&r, NULL, "2026-11-24T06:00:00Z", lines);
	ck_assert(report_cert_days(&r, server(&r, "B", "S"), &days));
	ck_assert_int_eq(days, 6);
	ck_assert(report_cert_days(&r, server(&r, "B", "T"), &days));
	ck_assert_int_eq(days, -24);
	ck_assert(report_cert_days(&r, server(&r, "B", "U"), &days));
	ck_assert_int_eq(days, 3);
	ck_assert(!report_cert_days(&r, server(&r, "B", "V"), &days));
	text = capture_text(&r);
	assert_contains(text, "2026-12-01 (6d)");
	assert_contains(text, "2026-11-01 EXPIRED");
	free(text);
	report_free(&r);
}
END_TEST

/* ---- output ---- */

START_TEST(json_escaping)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "\"plain\""},
	    {"", "\"\""},
	    {"a\"b\\c", "\"a\\\"b\\\\c\""},
	    {"t\tn\nr\r", "\"t\\tn\\nr\\r\""},
	    {"\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\""},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7",
	     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\""},
	    {"bad\xff\xc3(", "\"bad\\ufffd\\ufffd(\""},
	    {"\xc0\xaf", "\"\\ufffd\\ufffd\""},            /* overlong '/' */
	    {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""}, /* surrogate */
	    {"cut\xe2\x82", "\"cut\\ufffd\\ufffd\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = json_string(cases[i].in);

		ck_assert_str_eq(got, cases[i].out);
		free(got);
	}
}
END_TEST

START_TEST(json_report)
{
	static const char *const lines[] = {
	    "2026-11-23T12:00:00.250Z event=down backend=B server=S "
	    "addr=10.0.0.1:25 step=helo code=421 reply=\"4.7.0 \\\"x\\\"\"",
	    "2026-11-23T12:01:00.000Z event=up backend=B server=S",
	    "2026-11-24T05:00:00Z event=down backend=B server=T "
	    "step=connect reason=timeout",
	    NULL};
	struct report r;
	char *json;

	build(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	json = capture_json(&r);
	assert_contains(json, "\"window\": {\"from\": "
	                      "\"2026-11-23T06:00:00.000Z\", \"to\": "
	                      "\"2026-11-24T06:00:00.000Z\", \"seconds\": "
	                      "86400}");
	assert_contains(json, "\"availability_pct\": 99.9308");
	assert_contains(json, "\"downtime_s\": 59.75");
	assert_contains(json, "\"last_failure\": {\"time\": "
	                      "\"2026-11-23T12:00:00.250Z\", \"step\": "
	                      "\"helo\", \"code\": 421, \"reply\": \"4.7.0 "
	                      "\\\"x\\\"\", \"reason\": null}");
	assert_contains(json, "\"end\": null, \"seconds\": 3600");
	assert_contains(json, "\"reason\": \"connect: timeout\"");
	assert_contains(json, "\"cert_not_after\": null, "
	                      "\"cert_days_left\": null");
	assert_contains(json, "{\"backend\": \"B\", \"down_events\": 0, "
	                      "\"no_server_s\": 0");
	free(json);
	report_free(&r);
}
END_TEST

START_TEST(text_report_empty)
{
	static const char *const lines[] = {NULL};
	struct report r;
	char *text, *json;

	build(&r, NULL, "2026-11-24T06:00:00Z", lines);
	ck_assert_int_eq(r.from_ms, r.to_ms);
	text = capture_text(&r);
	assert_contains(text, "every server was UP");
	json = capture_json(&r);
	assert_contains(json, "\"servers\": [],");
	assert_contains(json, "\"backends\": []");
	free(text);
	free(json);
	report_free(&r);
}
END_TEST

START_TEST(read_overlong_lines)
{
	char *buf = NULL, *data;
	size_t len = 0, n = 3 * REPORT_LINE_MAX;
	struct report r;
	FILE *out = open_memstream(&buf, &len), *in;

	ck_assert_ptr_nonnull(out);
	fputs("2026-11-23T10:00:00Z event=down backend=B server=S "
	      "step=connect reason=timeout\n",
	      out);
	fputs("2026-11-23T10:01:00Z event=up backend=B server=S reply=\"", out);
	for (size_t i = 0; i < n; i++)
		fputc('x', out);
	fputs("\"\n", out);
	fputs("2026-11-23T10:02:00Z event=up backend=B server=S", out);
	ck_assert_int_eq(fclose(out), 0);
	data = buf;

	in = fmemopen(data, len, "r");
	ck_assert_ptr_nonnull(in);
	report_init(&r, REPORT_FROM_FIRST, T("2026-11-23T11:00:00Z"));
	ck_assert_int_eq(report_read(&r, in), 0);
	fclose(in);
	report_finish(&r);
	ck_assert_uint_eq(r.lines, 3);
	ck_assert_uint_eq(r.too_long, 1);
	ck_assert_uint_eq(r.events, 2);
	/* the last line had no newline: still read */
	ck_assert_int_eq(server(&r, "B", "S")->downtime_ms, 2 * MIN);
	report_free(&r);
	free(data);
}
END_TEST

/* ---- the fixture log ---- */

static void
read_fixture(struct report *r, const char *since)
{
	int64_t now = T("2026-11-24T06:00:00Z"), ms = 0;
	const char *err;
	FILE *fp = fopen(FIXTURE, "r");

	ck_assert_msg(fp != NULL, "cannot open %s", FIXTURE);
	if (since != NULL)
		ck_assert_int_eq(report_parse_duration(since, &ms, &err), 0);
	report_init(r, since != NULL ? now - ms : REPORT_FROM_FIRST, now);
	ck_assert_int_eq(report_read(r, fp), 0);
	fclose(fp);
	report_finish(r);
}

START_TEST(fixture_24h)
{
	struct report r;
	const struct report_server *s;
	const struct report_backend *b;
	char *text, *json;

	read_fixture(&r, "24h");
	ck_assert_uint_eq(r.lines, 25);
	ck_assert_uint_eq(r.malformed, 2);
	ck_assert_uint_eq(r.too_long, 1);
	ck_assert_uint_eq(r.events, 22);
	ck_assert_uint_eq(r.n_servers, 5);
	ck_assert_uint_eq(r.n_backends, 2);
	/* sorted by backend then server */
	ck_assert_str_eq(r.servers[0].backend, "OUTBOUND");
	ck_assert_str_eq(r.servers[0].server, "relay1");
	ck_assert_str_eq(r.servers[4].server, "filter3");

	s = server(&r, "TO-FILTER-CLUSTER", "filter1");
	ck_assert_int_eq(s->downtime_ms, MIN);
	ck_assert_int_eq(s->maint_ms, 30 * MIN);
	ck_assert_uint_eq(s->down_events, 1);

	s = server(&r, "TO-FILTER-CLUSTER", "filter2");
	ck_assert_uint_eq(s->down_events, 2);
	ck_assert_int_eq(s->downtime_ms, 65881 + 2 * MIN);
	ck_assert_int_eq(s->longest_ms, 2 * MIN);
	ck_assert_uint_eq(s->flaps, 1);
	ck_assert_str_eq(s->last_failure.reason, "connection refused");
	ck_assert_str_eq(s->addr, "10.10.10.2:25");

	s = server(&r, "TO-FILTER-CLUSTER", "filter3");
	ck_assert_int_eq(s->downtime_ms, 90 * MIN);
	ck_assert_uint_eq(s->down_events, 0);
	ck_assert(!s->has_failure);
	ck_assert(s->has_cert);

	s = server(&r, "OUTBOUND", "relay1");
	ck_assert(s->down);
	ck_assert_int_eq(s->downtime_ms, HOUR);
	ck_assert_str_eq(s->addr, "[2001:db8::1]:25");

	b = report_find_backend(&r, "OUTBOUND");
	ck_assert_uint_eq(b->down_events, 1);
	ck_assert_int_eq(b->no_server_ms, 10 * MIN);
	b = report_find_backend(&r, "TO-FILTER-CLUSTER");
	ck_assert_uint_eq(b->down_events, 0);

	text = capture_text(&r);
	assert_contains(text, "from 2026-11-23 06:00:00 to 2026-11-24 "
	                      "06:00:00 UTC (24h)");
	assert_contains(text, "99.784%");
	assert_contains(text, "ongoing");
	assert_contains(text, "helo: 421 4.7.0 try again later");
	assert_contains(text, "2026-11-23 04:00:00*");
	assert_contains(text, "less than 10m after");
	json = capture_json(&r);
	assert_contains(json, "\"downtime_s\": 185.881");
	assert_contains(json, "\"reply\": \"5.3.2 \\\"busy\\\" \\\\ retry\"");
	free(text);
	free(json);
	report_free(&r);
}
END_TEST

START_TEST(fixture_whole_log)
{
	struct report r;
	const struct report_server *s;

	read_fixture(&r, NULL);
	ck_assert_int_eq(r.from_ms, T("2026-11-22T10:00:00Z"));
	s = server(&r, "TO-FILTER-CLUSTER", "filter3");
	ck_assert_int_eq(s->downtime_ms, 210 * MIN);
	ck_assert_uint_eq(s->down_events, 1);
	ck_assert(s->has_failure);
	ck_assert_str_eq(s->last_failure.step, "starttls");
	report_free(&r);
}
END_TEST

/* ---- servers declared from the configuration ---- */

/* A report over [from, to] with the servers declared, fed with the
 * lines, finished. */
static void
build_declared(struct report *r, const char *from, const char *to,
               const char *const *decl, const char *const *lines)
{
	report_init(r, from != NULL ? T(from) : REPORT_FROM_FIRST, T(to));
	/* decl: backend, server, address, "MAINT" or "READY", ... NULL */
	for (size_t i = 0; decl[i] != NULL; i += 4)
		ck_assert_int_eq(
		    report_declare_server(r, decl[i], decl[i + 1], decl[i + 2],
		                          strcmp(decl[i + 3], "MAINT") == 0
		                              ? RADMIN_MAINT
		                              : RADMIN_READY),
		    0);
	r->config = "test.conf";
	for (size_t i = 0; lines[i] != NULL; i++)
		ck_assert_int_eq(report_add_line(r, lines[i]), 0);
	report_finish(r);
}

static const char *const three_sinks[] = {
    "sinks", "sink1", "127.0.0.1:10025", "READY",
    "sinks", "sink2", "127.0.0.1:10026", "READY",
    "sinks", "sink3", "127.0.0.1:10027", "READY",
    NULL};

START_TEST(declared_fresh_start)
{
	/* Right after a start: no server event at all. */
	static const char *const lines[] = {
	    "2026-11-23T10:00:00Z event=start version=0.2 pid=7 backends=1 "
	    "servers=3",
	    NULL};
	struct report r;
	char *text, *json;

	build_declared(&r, NULL, "2026-11-23T10:05:00Z", three_sinks, lines);
	ck_assert_uint_eq(r.n_servers, 3);
	ck_assert_uint_eq(r.n_configured, 3);
	ck_assert_uint_eq(r.n_backends, 1);
	for (size_t i = 0; i < 3; i++) {
		const struct report_server *s = &r.servers[i];

		ck_assert(s->configured);
		ck_assert(!s->down);
		ck_assert_int_eq(s->admin, RADMIN_READY);
		ck_assert_int_eq(s->downtime_ms, 0);
		ck_assert_int_eq(s->maint_ms, 0);
		ck_assert_uint_eq(s->down_events, 0);
		ck_assert_double_eq(report_availability(&r, s), 100.0);
	}
	ck_assert_str_eq(server(&r, "sinks", "sink2")->addr, "127.0.0.1:10026");
	text = capture_text(&r);
	assert_contains(text, "Configuration test.conf: 3 servers\n");
	assert_contains(text, "Now: 3 UP, 0 DOWN, 0 drained or disabled.\n");
	assert_contains(text, "sinks    sink1   127.0.0.1:10025  UP   "
	                      "100.000%      0        0s       0s      0     "
	                      "0s  -\n");
	assert_contains(text, "sink3");
	assert_contains(text, "sinks                   0                   "
	                      "0s        0s  ok\n");
	ck_assert_ptr_null(strstr(text, "No server events"));
	json = capture_json(&r);
	assert_contains(json, "\"configuration\": {\"file\": \"test.conf\", "
	                      "\"servers\": 3},");
	assert_contains(json, "{\"backend\": \"sinks\", \"server\": \"sink3\", "
	                      "\"addr\": \"127.0.0.1:10027\", \"state\": "
	                      "\"UP\", \"configured\": true,\n"
	                      "     \"availability_pct\": 100.0000, "
	                      "\"down_events\": 0, \"downtime_s\": 0");
	assert_contains(json, "{\"backend\": \"sinks\", \"down_events\": 0, "
	                      "\"no_server_s\": 0");
	free(text);
	free(json);
	report_free(&r);
}
END_TEST

START_TEST(declared_empty_log)
{
	/* Not even a start line (a log just rotated): still listed. */
	static const char *const lines[] = {NULL};
	struct report r;
	char *text;

	build_declared(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z",
	               three_sinks, lines);
	ck_assert_uint_eq(r.n_servers, 3);
	text = capture_text(&r);
	assert_contains(text, "Now: 3 UP, 0 DOWN");
	free(text);
	report_free(&r);
}
END_TEST

START_TEST(declared_with_events)
{
	/* A declared server's events count as an undeclared one's; a server
	 * named only in the log is listed, not configured. */
	static const char *const lines[] = {
	    "2026-11-23T10:00:00Z event=start version=0.2",
	    "2026-11-23T11:00:00Z event=down backend=sinks server=sink2 "
	    "step=connect reason=\"connection refused\"",
	    "2026-11-23T11:20:00Z event=up backend=sinks server=sink2 "
	    "downtime_s=1200",
	    "2026-11-23T12:00:00Z event=down backend=sinks server=sink3 "
	    "step=greeting code=421 reply=busy",
	    "2026-11-23T12:00:00Z event=down backend=old server=gone "
	    "step=connect reason=timeout",
	    NULL};
	struct report r, plain;
	const struct report_server *s, *p;
	char *text, *json;

	build_declared(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z",
	               three_sinks, lines);
	build(&plain, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", lines);
	ck_assert_uint_eq(r.n_servers, 4);
	ck_assert_uint_eq(plain.n_servers, 3);
	for (size_t i = 0; i < plain.n_servers; i++) {
		p = &plain.servers[i];
		s = server(&r, p->backend, p->server);
		ck_assert_int_eq(s->downtime_ms, p->downtime_ms);
		ck_assert_int_eq(s->longest_ms, p->longest_ms);
		ck_assert_uint_eq(s->down_events, p->down_events);
		ck_assert_uint_eq(s->n_outages, p->n_outages);
		ck_assert_int_eq(s->down, p->down);
	}
	ck_assert_int_eq(server(&r, "sinks", "sink2")->downtime_ms, 20 * MIN);
	ck_assert(server(&r, "sinks", "sink3")->down);
	ck_assert(!server(&r, "old", "gone")->configured);
	ck_assert(server(&r, "sinks", "sink1")->configured);
	text = capture_text(&r);
	assert_contains(text, "Now: 2 UP, 2 DOWN (old/gone, sinks/sink3), 0 "
	                      "drained or disabled.\n");
	json = capture_json(&r);
	assert_contains(json, "\"server\": \"gone\", \"addr\": null, "
	                      "\"state\": \"DOWN\", \"configured\": false,");
	free(text);
	free(json);
	report_free(&plain);
	report_free(&r);
}
END_TEST

START_TEST(declared_rotated_up_first)
{
	/* The first line of a declared server is an `up` whose `down` is in
	 * the rotated log: the outage is rebuilt, as for an undeclared one. */
	static const char *const lines[] = {
	    "2026-11-23T06:10:00Z event=up backend=sinks server=sink1 "
	    "downtime_s=1200",
	    NULL};
	struct report r;
	const struct report_server *s;

	build_declared(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z",
	               three_sinks, lines);
	s = server(&r, "sinks", "sink1");
	ck_assert_int_eq(s->downtime_ms, 10 * MIN);
	ck_assert_uint_eq(s->n_outages, 1);
	ck_assert_int_eq(server(&r, "sinks", "sink2")->downtime_ms, 0);
	report_free(&r);
}
END_TEST

START_TEST(declared_disabled_is_maint)
{
	/* Disabled in the file: MAINT from the window start and after each
	 * start, READY after an lbctl enable in between. */
	static const char *const decl[] = {"B", "on",  "10.0.0.1:25", "READY",
	                                   "B", "off", "10.0.0.2:25", "MAINT",
	                                   NULL};
	static const char *const lines[] = {
	    "2026-11-23T08:00:00Z event=start version=0.2",
	    "2026-11-23T09:00:00Z event=ready backend=B server=off",
	    "2026-11-23T12:00:00Z event=start version=0.2", NULL};
	static const char *const nolines[] = {NULL};
	struct report r;
	const struct report_server *s;
	char *text, *json;

	build_declared(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", decl,
	               lines);
	s = server(&r, "B", "off");
	ck_assert_int_eq(s->admin, RADMIN_MAINT);
	ck_assert_int_eq(s->maint_ms, 3 * HOUR + 18 * HOUR);
	ck_assert_int_eq(s->downtime_ms, 0);
	ck_assert_double_eq(report_availability(&r, s), 100.0);
	ck_assert_int_eq(server(&r, "B", "on")->maint_ms, 0);
	text = capture_text(&r);
	assert_contains(text, "Now: 1 UP, 0 DOWN, 1 drained or disabled.\n");
	assert_contains(text, "B        off     10.0.0.2:25  MAINT  "
	                      "100.000%      0        0s       0s      0  "
	                      "21h00m  -\n");
	json = capture_json(&r);
	assert_contains(json, "\"state\": \"MAINT\", \"configured\": true,");
	assert_contains(json, "\"maint_s\": 75600");
	free(text);
	free(json);
	report_free(&r);

	/* No event at all: MAINT over the whole window. */
	build_declared(&r, "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", decl,
	               nolines);
	ck_assert_int_eq(server(&r, "B", "off")->maint_ms, 24 * HOUR);
	ck_assert_int_eq(server(&r, "B", "off")->admin, RADMIN_MAINT);
	report_free(&r);
}
END_TEST

START_TEST(declare_limits)
{
	char longname[REPORT_NAME_MAX + 1];
	struct report r;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	report_init(&r, REPORT_FROM_FIRST, T("2026-11-24T06:00:00Z"));
	ck_assert_int_eq(
	    report_declare_server(&r, "B", "S", "10.0.0.1:25", RADMIN_READY),
	    0);
	/* Declared twice: the first declaration stays. */
	ck_assert_int_eq(
	    report_declare_server(&r, "B", "S", NULL, RADMIN_MAINT), 0);
	ck_assert_uint_eq(r.n_servers, 1);
	ck_assert_uint_eq(r.n_configured, 1);
	ck_assert_int_eq(r.servers[0].admin, RADMIN_READY);
	ck_assert_int_eq(
	    report_declare_server(&r, "B", longname, NULL, RADMIN_READY), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(
	    report_declare_server(&r, longname, "S", NULL, RADMIN_READY), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_uint_eq(r.n_servers, 1);
	ck_assert_uint_eq(r.n_backends, 1);
	report_finish(&r);
	report_free(&r);
}
END_TEST

static Suite *
report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc;

	tc = tcase_create("time");
	tcase_add_test(tc, time_parse_utc_ms);
	tcase_add_test(tc, time_parse_variants);
	tcase_add_test(tc, time_parse_rejects);
	tcase_add_test(tc, time_format);
	tcase_add_test(tc, duration_parse);
	tcase_add_test(tc, duration_format);
	suite_add_tcase(s, tc);

	tc = tcase_create("line");
	tcase_add_test(tc, line_down_with_code);
	tcase_add_test(tc, line_reason_and_up);
	tcase_add_test(tc, line_quoted_escapes);
	tcase_add_test(tc, line_unknown_tolerated);
	tcase_add_test(tc, line_cert_expiry);
	tcase_add_test(tc, line_long_reply_cut);
	tcase_add_test(tc, line_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("availability");
	tcase_add_test(tc, avail_no_events_is_up);
	tcase_add_test(tc, avail_down_inside_window);
	tcase_add_test(tc, avail_down_before_window_ongoing);
	tcase_add_test(tc, avail_down_no_up_until_now);
	tcase_add_test(tc, avail_several_outages_flaps);
	tcase_add_test(tc, avail_since_clipping);
	tcase_add_test(tc, avail_maint_not_downtime);
	tcase_add_test(tc, avail_maint_ongoing);
	tcase_add_test(tc, avail_backend_no_server);
	tcase_add_test(tc, avail_rotated_log_up_first);
	tcase_add_test(tc, avail_future_and_restart);
	tcase_add_test(tc, avail_outage_ring);
	tcase_add_test(tc, cert_days);
	suite_add_tcase(s, tc);

	tc = tcase_create("output");
	tcase_add_test(tc, json_escaping);
	tcase_add_test(tc, json_report);
	tcase_add_test(tc, text_report_empty);
	tcase_add_test(tc, read_overlong_lines);
	tcase_add_test(tc, fixture_24h);
	tcase_add_test(tc, fixture_whole_log);
	suite_add_tcase(s, tc);

	tc = tcase_create("configured");
	tcase_add_test(tc, declared_fresh_start);
	tcase_add_test(tc, declared_empty_log);
	tcase_add_test(tc, declared_with_events);
	tcase_add_test(tc, declared_rotated_up_first);
	tcase_add_test(tc, declared_disabled_is_maint);
	tcase_add_test(tc, declare_limits);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(report_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
