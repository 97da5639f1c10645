/* Unit tests for timeline.c: health events in, SVG out.
 *
 * The windows are TIMELINE_PLOT_W seconds long, so that one pixel
 * column is one second and band positions are exact. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "report.h"
#include "rfc3339.h"
#include "timeline.h"

/* 2026-11-23T18:00:00Z */
#define T0 1795456800000LL
#define SEC 1000LL
#define SPAN ((int64_t)TIMELINE_PLOT_W * SEC)
#define PLOT_X (TIMELINE_WIDTH - TIMELINE_PLOT_W - 20)

/* Feed "TIME REST" with TIME = T0 + sec seconds. */
static void feed(struct timeline *tl, double sec, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
feed(struct timeline *tl, double sec, const char *fmt, ...)
{
	char ts[64], rest[1024], line[1200];
	va_list ap;

	rfc3339_format(T0 + (int64_t)(sec * 1000), true, ts, sizeof(ts));
	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s %s\n", ts, rest);
	ck_assert_int_eq(timeline_add_line(tl, line), 0);
}

static char *
render(struct timeline *tl, bool standalone)
{
	size_t len = 0;
	char *svg = timeline_svg(tl, standalone, &len);

	ck_assert_ptr_nonnull(svg);
	ck_assert_uint_eq(len, strlen(svg));
	return svg;
}

/* The <g> of one lane (up to its </g>), copied; must exist. */
static char *
lane_of(const char *svg, const char *server)
{
	char key[256];
	const char *p, *e;
	char *out;

	snprintf(key, sizeof(key), "data-server=\"%s\"", server);
	p = strstr(svg, key);
	ck_assert_msg(p != NULL, "no lane for %s in:\n%s", server, svg);
	e = strstr(p, "</g>");
	ck_assert_ptr_nonnull(e);
	out = strndup(p, (size_t)(e - p));
	ck_assert_ptr_nonnull(out);
	return out;
}

/* A band at column col, width w, state st exists in the lane text. */
static void
expect_band(const char *lane, int col, int w, const char *st)
{
	char want[256];

	snprintf(want, sizeof(want),
	         "x=\"%d\" y=\"%%*d\" width=\"%d\" height=\"16\" "
	         "data-state=\"%s\"",
	         PLOT_X + col, w, st);
	/* y varies per lane: look for the parts around it. */
	{
		char a[64], b[128];
		const char *p = lane;
		bool found = false;

		snprintf(a, sizeof(a), "x=\"%d\" y=\"", PLOT_X + col);
		snprintf(b, sizeof(b),
		         "\" width=\"%d\" height=\"16\" data-state=\"%s\"", w,
		         st);
		while ((p = strstr(p, a)) != NULL) {
			const char *q = p + strlen(a);

			while (*q >= '0' && *q <= '9')
				q++;
			if (strncmp(q, b, strlen(b)) == 0) {
				found = true;
				break;
			}
			p++;
		}
		ck_assert_msg(found, "no band %s in lane:\n%s", want, lane);
	}
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

struct collect {
	char buf[512];
	size_t len;
};

static void
collect_put(void *arg, const char *p, size_t n)
{
	struct collect *c = arg;

	ck_assert_uint_lt(c->len + n, sizeof(c->buf));
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	c->buf[c->len] = '\0';
}

START_TEST(escape_text)
{
	struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "plain"},
	    {"a<b>&\"c'", "a&lt;b&gt;&amp;&quot;c&#39;"},
	    {"tab\there\x01", "tab here "},
	    {"caf\xc3\xa9", "caf\xc3\xa9"},
	    {"bad\xff!", "bad\xef\xbf\xbd!"},
	    {"cut\xc3", "cut\xef\xbf\xbd"},
	    {"surrogate\xed\xa0\x80", "surrogate\xef\xbf\xbd\xef\xbf\xbd"
	                              "\xef\xbf\xbd"},
	    {"nonchar\xef\xbf\xbe", "nonchar\xef\xbf\xbd\xef\xbf\xbd"
	                            "\xef\xbf\xbd"},
	    {"emoji\xf0\x9f\x93\xa7", "emoji\xf0\x9f\x93\xa7"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collect c = {{0}, 0};

		timeline_escape(cases[i].in, collect_put, &c);
		ck_assert_str_eq(c.buf, cases[i].out);
	}
	ck_assert_uint_eq(timeline_utf8_len("a"), 1);
	ck_assert_uint_eq(timeline_utf8_len("\xc3\xa9"), 2);
	ck_assert_uint_eq(timeline_utf8_len("\xe2\x82\xac"), 3);
	ck_assert_uint_eq(timeline_utf8_len("\xf0\x9f\x93\xa7"), 4);
	ck_assert_uint_eq(timeline_utf8_len("\xc0\x80"), 0);
	ck_assert_uint_eq(timeline_utf8_len(""), 0);
}
END_TEST

START_TEST(bands_and_reasons)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg, *s1, *s2;

	ck_assert_ptr_nonnull(tl);
	feed(tl, -100, "event=start version=0.1.0 pid=1 backends=1 servers=2");
	feed(tl, 100,
	     "event=down backend=be server=s1 addr=127.0.0.1:1 check=smtp "
	     "step=connect reason=\"connection refused\" duration_ms=0 "
	     "failures=3 active=1 backup=0");
	feed(tl, 200,
	     "event=up backend=be server=s1 addr=127.0.0.1:1 check=smtp "
	     "duration_ms=3 successes=2 downtime_s=100 active=2 backup=0");
	feed(tl, 300, "event=maint backend=be server=s2 addr=127.0.0.1:2");
	feed(tl, 400, "event=ready backend=be server=s2 addr=127.0.0.1:2");
	feed(tl, 500, "event=drain backend=be server=s1 addr=127.0.0.1:1");
	feed(tl, 600,
	     "event=down backend=be server=s2 addr=127.0.0.1:2 check=smtp "
	     "step=helo code=421 reply=\"4.7.0 try again later\" "
	     "duration_ms=12 failures=3 active=0 backup=0");
	svg = render(tl, false);
	s1 = lane_of(svg, "s1");
	s2 = lane_of(svg, "s2");

	expect_band(s1, 0, 100, "UP");
	expect_band(s1, 100, 100, "DOWN");
	expect_band(s1, 200, 300, "UP");
	expect_band(s1, 500, 240, "DRAIN");
	ck_assert_ptr_nonnull(
	    strstr(s1, "be/s1: DOWN from 2026-11-23 18:01:40 to 2026-11-23 "
	               "18:03:20 UTC (1m40s): connect: connection refused"));
	ck_assert_ptr_nonnull(strstr(s1, "data-state=\"DRAIN\">\n"));
	ck_assert_int_eq(count(s1, "<rect"), 4);

	expect_band(s2, 0, 300, "UP");
	expect_band(s2, 300, 100, "MAINT");
	expect_band(s2, 400, 200, "UP");
	expect_band(s2, 600, 140, "DOWN");
	ck_assert_ptr_nonnull(
	    strstr(s2, "be/s2: DOWN from 2026-11-23 18:10:00 to 2026-11-23 "
	               "18:12:20 UTC (2m20s, ongoing): helo: 421 4.7.0 try "
	               "again later"));
	/* The lane's current state. */
	ck_assert_ptr_nonnull(strstr(svg, "data-server=\"s2\" "
	                                  "data-state=\"DOWN\""));
	ck_assert_ptr_null(strstr(svg, "<?xml"));
	ck_assert_ptr_nonnull(strstr(svg, "<svg xmlns="));
	ck_assert_ptr_nonnull(strstr(svg, "</svg>\n"));
	free(s1);
	free(s2);
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(no_data_and_inference)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg, *a, *b, *c;

	ck_assert_ptr_nonnull(tl);
	/* No start line: before its first event a lane shows what the
	 * event implies, from the first event of the input on. */
	feed(tl, 50,
	     "event=fail backend=be server=a addr=x:1 check=smtp "
	     "step=greeting reason=timeout duration_ms=2000 failures=1 "
	     "active=1 backup=0");
	feed(tl, 150,
	     "event=up backend=be server=b addr=x:2 check=smtp duration_ms=1 "
	     "successes=2 downtime_s=120 active=2 backup=0");
	feed(tl, 250, "event=ready backend=be server=c addr=x:3");
	svg = render(tl, true);
	a = lane_of(svg, "a");
	b = lane_of(svg, "b");
	c = lane_of(svg, "c");
	expect_band(a, 0, 50, "NO DATA");
	expect_band(a, 50, 690, "UP");
	/* b: DOWN for its downtime (from 30 s), before that no data. */
	expect_band(b, 0, 30, "NO DATA");
	expect_band(b, 30, 120, "DOWN");
	expect_band(b, 150, 590, "UP");
	ck_assert_ptr_nonnull(strstr(b, "went down before the log begins"));
	/* c: ready says nothing about before. */
	expect_band(c, 0, 250, "NO DATA");
	expect_band(c, 250, 490, "UP");
	ck_assert_ptr_nonnull(strstr(svg, "<?xml version=\"1.0\" "
	                                  "encoding=\"UTF-8\"?>\n<svg"));
	free(a);
	free(b);
	free(c);
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(declared_lanes_and_start)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg, *m, *d, *z;

	ck_assert_ptr_nonnull(tl);
	ck_assert_int_eq(timeline_lane(tl, "be", "zz-first", TL_UP), 0);
	ck_assert_int_eq(timeline_lane(tl, "be", "maint", TL_MAINT), 0);
	ck_assert_int_eq(timeline_lane(tl, "be", "down", TL_DOWN), 0);
	/* A server of the log only (removed by a reload). */
	feed(tl, 5,
	     "event=up backend=aa server=gone addr=x:9 check=tcp "
	     "duration_ms=1 successes=2 downtime_s=1 active=1 backup=0");
	feed(tl, 10, "event=start version=0.1.0 pid=1 backends=1 servers=3");
	feed(tl, 100,
	     "event=down backend=be server=down addr=x:1 check=tcp "
	     "step=connect reason=\"connection refused\" duration_ms=0 "
	     "failures=1 active=1 backup=0");
	svg = render(tl, false);
	m = lane_of(svg, "maint");
	d = lane_of(svg, "down");
	z = lane_of(svg, "zz-first");
	/* disabled in the file: MAINT from the start, no event needed */
	expect_band(m, 0, 10, "NO DATA");
	expect_band(m, 10, 730, "MAINT");
	/* its own events win over the declared state */
	expect_band(d, 10, 90, "UP");
	expect_band(d, 100, 640, "DOWN");
	expect_band(z, 10, 730, "UP");
	/* declared lanes first, in their order; the others after */
	ck_assert(strstr(svg, "\"zz-first\"") < strstr(svg, "\"maint\""));
	ck_assert(strstr(svg, "\"maint\"") < strstr(svg, "\"down\""));
	ck_assert(strstr(svg, "\"down\"") < strstr(svg, "\"gone\""));
	free(m);
	free(d);
	free(z);
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(short_flaps_stay_visible)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg, *l;

	ck_assert_ptr_nonnull(tl);
	feed(tl, 0, "event=start");
	/* Two outages inside one one-second column, one of 50 ms. */
	feed(tl, 10.1,
	     "event=down backend=be server=f step=helo code=421 "
	     "reply=first");
	feed(tl, 10.15, "event=up backend=be server=f");
	feed(tl, 10.3,
	     "event=down backend=be server=f step=helo code=421 "
	     "reply=second");
	feed(tl, 10.4, "event=up backend=be server=f");
	/* One alone further on. */
	feed(tl, 20.5,
	     "event=down backend=be server=f step=connect "
	     "reason=timeout");
	feed(tl, 20.6, "event=up backend=be server=f");
	svg = render(tl, false);
	l = lane_of(svg, "f");
	expect_band(l, 10, 1, "DOWN");
	expect_band(l, 20, 1, "DOWN");
	ck_assert_ptr_nonnull(strstr(l, "DOWN 2 times between 2026-11-23 "
	                                "18:00:10 and 2026-11-23 18:00:10 UTC; "
	                                "last: helo: 421 second"));
	ck_assert_ptr_nonnull(strstr(l, "connect: timeout"));
	ck_assert_int_eq(count(l, "<rect"), 5);
	free(l);
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(window_edges)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg, *l;

	ck_assert_ptr_nonnull(tl);
	/* State set before the window carries into it; events after its
	 * end are ignored; out-of-order lines count as simultaneous. */
	feed(tl, -3600, "event=start");
	feed(tl, -1800,
	     "event=down backend=be server=x step=connect "
	     "reason=\"connection refused\"");
	feed(tl, 400, "event=up backend=be server=x");
	feed(tl, 300, "event=maint backend=be server=x");
	feed(tl, 900,
	     "event=down backend=be server=x step=connect "
	     "reason=later");
	svg = render(tl, false);
	l = lane_of(svg, "x");
	expect_band(l, 0, 400, "DOWN");
	expect_band(l, 400, 340, "MAINT");
	ck_assert_ptr_null(strstr(l, "later"));
	ck_assert_ptr_nonnull(strstr(l, "DOWN from 2026-11-23 17:30:00"));
	free(l);
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(names_and_texts_escaped)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg;

	ck_assert_ptr_nonnull(tl);
	ck_assert_int_eq(timeline_lane(tl, "b<&>", "s\"'1", TL_UP), 0);
	feed(tl, 1, "event=start");
	feed(tl, 2,
	     "event=down backend=b<&> server=s\"'1 step=helo code=550 "
	     "reply=\"<script>alert(1)</script> & \\\"q\\\"\"");
	svg = render(tl, false);
	ck_assert_ptr_null(strstr(svg, "<script>"));
	ck_assert_ptr_nonnull(strstr(svg, "data-backend=\"b&lt;&amp;&gt;\" "
	                                  "data-server=\"s&quot;&#39;1\""));
	ck_assert_ptr_nonnull(strstr(svg, "helo: 550 &lt;script&gt;alert(1)"
	                                  "&lt;/script&gt; &amp; "
	                                  "&quot;q&quot;"));
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(empty_and_malformed)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg;

	ck_assert_ptr_nonnull(tl);
	ck_assert_int_eq(timeline_add_line(tl, "garbage\n"), 0);
	ck_assert_int_eq(timeline_add_line(tl, "\n"), 0);
	ck_assert_int_eq(
	    timeline_add_line(tl, "2026-11-23T18:00:00Z event=\"unterminated"),
	    0);
	svg = render(tl, false);
	ck_assert_ptr_nonnull(strstr(svg, "No server events in this window."));
	ck_assert_ptr_nonnull(strstr(svg, "2 malformed log lines skipped"));
	ck_assert_ptr_null(strstr(svg, "tl-lane"));
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(lane_limit)
{
	struct timeline *tl = timeline_new(T0, T0 + SPAN);
	char *svg;

	ck_assert_ptr_nonnull(tl);
	feed(tl, 0, "event=start");
	for (int i = 0; i < TIMELINE_LANES_MAX + 3; i++)
		feed(tl, 1, "event=drain backend=be server=s%04d", i);
	svg = render(tl, false);
	ck_assert_int_eq(count(svg, "class=\"tl-lane\""), TIMELINE_LANES_MAX);
	ck_assert_ptr_nonnull(strstr(svg, "more than 500 servers: the events "
	                                  "of the others (3) are not drawn"));
	free(svg);
	timeline_free(tl);
}
END_TEST

START_TEST(axis_ticks)
{
	/* 24 h: a tick every 3 h, on the hour (UTC). */
	struct timeline *tl =
	    timeline_new(T0 - 24 * 3600 * SEC + 600 * SEC, T0 + 600 * SEC);
	char *svg;

	ck_assert_ptr_nonnull(tl);
	svg = render(tl, false);
	ck_assert_int_eq(count(svg, "class=\"tl-grid\""), 8);
	ck_assert_ptr_nonnull(strstr(svg, ">21:00</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">18:00</text>"));
	free(svg);
	timeline_free(tl);
}
END_TEST

static Suite *
timeline_suite(void)
{
	Suite *s = suite_create("timeline");
	TCase *tc = tcase_create("timeline");

	tcase_add_test(tc, escape_text);
	tcase_add_test(tc, bands_and_reasons);
	tcase_add_test(tc, no_data_and_inference);
	tcase_add_test(tc, declared_lanes_and_start);
	tcase_add_test(tc, short_flaps_stay_visible);
	tcase_add_test(tc, window_edges);
	tcase_add_test(tc, names_and_texts_escaped);
	tcase_add_test(tc, empty_and_malformed);
	tcase_add_test(tc, lane_limit);
	tcase_add_test(tc, axis_ticks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(timeline_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
