/* Unit tests for climit.c: CIDR prefixes and the table of client networks
 * (include/climit.h is the contract; load-balancer.conf(5), CLIENT LIMITS
 * gives the semantics).
 *
 * No event loop: the table is plain data behind a lock taken inside each
 * function, so the tests drive it directly with a fake clock (now_ms is
 * an argument) and look at climit_top and climit_size.  One test runs
 * threads against one table to check that counts are exact.  Every test
 * frees what it allocates (ASan/LSan and valgrind in CI). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <check.h>

#include "climit.h"

#define T0_MS 1700000000000ULL /* 2023-11-14T22:13:20Z */

/* --- helpers -------------------------------------------------------------- */

/* A socket address from "192.0.2.1" or "2001:db8::1" (port 25). */
static const struct sockaddr *
addr(struct sockaddr_storage *ss, const char *text)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *in6 = (void *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(25);
		ck_assert_int_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (void *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(25);
		ck_assert_int_eq(inet_pton(AF_INET, text, &in->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

/* cidr_parse must accept text and print it back as want (host bits: hb). */
static void
good(const char *text, const char *want, bool want_hb)
{
	struct cidr c;
	const char *err = NULL;
	bool hb = !want_hb;
	char buf[CIDR_STRLEN];

	ck_assert_msg(cidr_parse(text, &c, &hb, &err) == 0, "'%s': %s", text,
	              err);
	ck_assert_msg(hb == want_hb, "'%s': host bits %d", text, hb);
	cidr_format(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, want);
}

/* cidr_parse must refuse text with the message want. */
static void
bad(const char *text, const char *want)
{
	struct cidr c, before;
	const char *err = NULL;
	bool hb = false;

	memset(&c, 0x5a, sizeof(c));
	before = c;
	ck_assert_msg(cidr_parse(text, &c, &hb, &err) == -1, "'%s' parsed",
	              text);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strcmp(err, want) == 0, "'%s': '%s', not '%s'", text, err,
	              want);
	ck_assert_msg(memcmp(&c, &before, sizeof(c)) == 0,
	              "'%s': output touched", text);
}

static bool
match(const char *cidr, const char *client)
{
	struct cidr c;
	struct sockaddr_storage ss;
	const char *err = NULL;

	ck_assert_msg(cidr_parse(cidr, &c, NULL, &err) == 0, "%s: %s", cidr,
	              err);
	return cidr_match(&c, addr(&ss, client));
}

static enum climit_verdict
admit(struct climit *t, const char *client, unsigned maxconn, unsigned rate,
      uint64_t now, struct climit_ticket *tk)
{
	struct sockaddr_storage ss;
	struct climit_ticket dummy;

	return climit_admit(t, addr(&ss, client), maxconn, rate, now,
	                    tk != NULL ? tk : &dummy);
}

/* The row of net in t at now (NULL: not tracked). */
static const struct climit_row *
row_at(struct climit *t, const char *net, uint64_t now)
{
	static struct climit_row rows[256];
	size_t n = climit_top(t, rows, 256, now);

	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].net, net) == 0)
			return &rows[i];
	return NULL;
}

/* The same at the latest time the table has seen. */
static const struct climit_row *
row_of(struct climit *t, const char *net)
{
	return row_at(t, net, 0);
}

/* --- CIDR ----------------------------------------------------------------- */

START_TEST(cidr_parse_good)
{
	good("192.0.2.0/24", "192.0.2.0/24", false);
	good("10.0.0.0/8", "10.0.0.0/8", false);
	good("192.0.2.7", "192.0.2.7/32", false);
	good("192.0.2.7/32", "192.0.2.7/32", false);
	good("0.0.0.0/0", "0.0.0.0/0", false);
	good("255.255.255.255/1", "128.0.0.0/1", true);
	good("10.1.2.3/8", "10.0.0.0/8", true);
	good("192.0.2.0/024", "192.0.2.0/24", false); /* 3 digits */
	good("2001:db8::/32", "2001:db8::/32", false);
	good("2001:DB8::1", "2001:db8::1/128", false);
	good("2001:db8:1:2:3:4:5:6/64", "2001:db8:1:2::/64", true);
	good("::/0", "::/0", false);
	good("::1", "::1/128", false);
	good("::1/128", "::1/128", false);
	good("fe80::/10", "fe80::/10", false);
	/* IPv4-mapped: the IPv4 prefix it stands for */
	good("::ffff:192.0.2.1", "192.0.2.1/32", false);
	good("::ffff:192.0.2.0/120", "192.0.2.0/24", false);
	good("::ffff:0:0/96", "0.0.0.0/0", false);
	good("::ffff:0:0/95", "::fffe:0:0/95", true);
	good("::1.2.3.4", "::1.2.3.4/128", false);
	good("0.0.0.0", "0.0.0.0/32", false);
	good("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0/128", false);
	good("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8/128", false);
}
END_TEST

START_TEST(cidr_parse_bad)
{
	bad("", "empty CIDR");
	bad(NULL, "empty CIDR");
	bad("/", "no address before the '/'");
	bad("/24", "no address before the '/'");
	bad("10.0.0.0/", "no prefix length after the '/'");
	bad(" 10.0.0.0/8", "white space in CIDR");
	bad("10.0.0.0/8 ", "white space in CIDR");
	bad("10.0.0.0 /8", "white space in CIDR");
	bad("10.0.0.0/8\n", "white space in CIDR");
	bad("10.0.0.0/+8", "bad character in CIDR");
	bad("10.0.0.0/-8", "bad character in CIDR");
	bad("10.0.0.0/8x", "bad character in CIDR");
	bad("10.0.0.0/8/8", "prefix length is not a number");
	bad("10.0.0.0/33", "prefix length must be 0..32");
	bad("10.0.0.0/0008", "prefix length must be 0..32");
	bad("10.0.0.0/99999999999999999999", "prefix length must be 0..32");
	bad("2001:db8::/129", "prefix length must be 0..128");
	bad("2001:db8::/1000", "prefix length must be 0..128");
	bad("10.0.0/8", "bad IPv4 address");
	bad("10.0.0.256", "bad IPv4 address");
	bad("10.0.0.0.0/8", "bad IPv4 address");
	bad("1234", "bad IPv4 address");
	bad("a.b.c.d", "bad IPv4 address");
	/* what libevent's sscanf would take, and read otherwise */
	bad("010.0.0.0/8", "bad IPv4 address");
	bad("10.0.0.00/8", "bad IPv4 address");
	bad("1.2.3.0004", "bad IPv4 address");
	bad("4294967297.0.0.0/8", "bad IPv4 address");
	bad("::ffff:4294967297.0.0.1", "bad IPv6 address");
	bad("::ffff:1.2.3.04", "bad IPv6 address");
	bad("1.2.3.4::", "bad IPv6 address");
	bad("::1.2.3", "bad IPv6 address");
	bad("::ffff:", "bad IPv6 address"); /* libevent takes these */
	bad("1::2:", "bad IPv6 address");
	bad("1:2:3:4:5:6:7:8:", "bad IPv6 address");
	bad(":1::", "bad IPv6 address");
	bad("1:::2", "bad IPv6 address");
	bad("1::2::3", "bad IPv6 address");
	bad("::1:2:3:4:5:6:7:8", "bad IPv6 address");
	bad("1:2:3:4:5:6:7", "bad IPv6 address");
	bad("12345::", "bad IPv6 address");
	bad("::a.2.3.4", "bad IPv6 address");
	bad("2001:db8:::/32", "bad IPv6 address");
	bad("2001:db8::g/32", "bad character in CIDR");
	bad("fe80::1%eth0", "bad character in CIDR");
	bad("[::1]/128", "bad character in CIDR");
	bad("1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18/64",
	    "bad IPv6 address");
	bad("localhost", "bad character in CIDR");
}
END_TEST

START_TEST(cidr_host_bits_optional)
{
	struct cidr c;

	/* host_bits and err may be NULL */
	ck_assert_int_eq(cidr_parse("10.1.2.3/8", &c, NULL, NULL), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_int_eq(c.bits, 8);
	ck_assert_int_eq(c.addr[0], 10);
	ck_assert_int_eq(c.addr[1] | c.addr[2] | c.addr[3], 0);
	ck_assert_int_eq(cidr_parse("x", &c, NULL, NULL), -1);
}
END_TEST

START_TEST(cidr_format_short)
{
	struct cidr c;
	char buf[8];

	ck_assert_int_eq(cidr_parse("192.0.2.0/24", &c, NULL, NULL), 0);
	memset(buf, 'x', sizeof(buf));
	cidr_format(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "192.0.2");
	cidr_format(&c, buf, 0); /* nothing written */
	ck_assert_str_eq(buf, "192.0.2");
}
END_TEST

START_TEST(cidr_matching)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un;
	struct cidr v[2];
	struct cidr_list l = {v, 2}, empty = {NULL, 0};

	ck_assert(match("192.0.2.0/24", "192.0.2.0"));
	ck_assert(match("192.0.2.0/24", "192.0.2.255"));
	ck_assert(!match("192.0.2.0/24", "192.0.3.0"));
	ck_assert(!match("192.0.2.0/24", "192.0.1.255"));
	ck_assert(match("192.0.2.128/25", "192.0.2.200"));
	ck_assert(!match("192.0.2.128/25", "192.0.2.127"));
	ck_assert(match("0.0.0.0/0", "203.0.113.9"));
	ck_assert(!match("0.0.0.0/0", "2001:db8::1"));
	ck_assert(match("192.0.2.7", "192.0.2.7"));
	ck_assert(!match("192.0.2.7", "192.0.2.6"));
	ck_assert(match("2001:db8::/32", "2001:db8:ffff::1"));
	ck_assert(!match("2001:db8::/32", "2001:db9::1"));
	ck_assert(match("2001:db8::/33", "2001:db8:7fff::1"));
	ck_assert(!match("2001:db8::/33", "2001:db8:8000::1"));
	ck_assert(match("::/0", "::1"));
	ck_assert(!match("::/0", "127.0.0.1"));
	ck_assert(match("::1", "::1"));
	/* IPv4-mapped IPv6 clients are IPv4 clients */
	ck_assert(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	ck_assert(match("192.0.2.0/24", "::ffff:192.0.2.9"));
	ck_assert(!match("192.0.2.0/24", "::ffff:192.0.3.9"));
	ck_assert(!match("::/0", "::ffff:192.0.2.9"));
	ck_assert(!match("::ffff:0:0/95", "::ffff:192.0.2.9"));
	ck_assert(match("::ffff:192.0.2.0/120", "192.0.2.9"));
	ck_assert(match("::ffff:192.0.2.0/120", "::ffff:192.0.2.9"));

	/* lists; other families never match */
	ck_assert_int_eq(cidr_parse("10.0.0.0/8", &v[0], NULL, NULL), 0);
	ck_assert_int_eq(cidr_parse("2001:db8::/32", &v[1], NULL, NULL), 0);
	ck_assert(cidr_list_match(&l, addr(&ss, "10.9.9.9")));
	ck_assert(cidr_list_match(&l, addr(&ss, "::ffff:10.9.9.9")));
	ck_assert(cidr_list_match(&l, addr(&ss, "2001:db8::25")));
	ck_assert(!cidr_list_match(&l, addr(&ss, "11.0.0.1")));
	ck_assert(!cidr_list_match(&empty, addr(&ss, "10.9.9.9")));
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	ck_assert(!cidr_list_match(&l, (struct sockaddr *)&un));
	ck_assert(!cidr_match(&v[0], (struct sockaddr *)&un));
}
END_TEST

/* --- the table ------------------------------------------------------------ */

START_TEST(table_new_and_same)
{
	struct climit *t = climit_new(100, 24, 64, 10000);

	ck_assert_ptr_nonnull(t);
	ck_assert(climit_same(t, 100, 24, 64, 10000));
	ck_assert(!climit_same(t, 101, 24, 64, 10000));
	ck_assert(!climit_same(t, 100, 32, 64, 10000));
	ck_assert(!climit_same(t, 100, 24, 48, 10000));
	ck_assert(!climit_same(t, 100, 24, 64, 20000));
	ck_assert(!climit_same(NULL, 100, 24, 64, 10000));
	ck_assert_uint_eq(climit_size(t), 0);
	climit_ref(t);
	climit_unref(t); /* still one reference */
	ck_assert_uint_eq(climit_size(t), 0);
	climit_unref(t);
	climit_unref(NULL);

	errno = 0;
	ck_assert_ptr_null(climit_new(0, 32, 64, 1000));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(climit_new(CLIMIT_TABLE_MAX + 1, 32, 64, 1000));
	ck_assert_ptr_null(climit_new(10, 33, 64, 1000));
	errno = 0;
	ck_assert_ptr_null(climit_new(10, 32, 129, 1000));
	ck_assert_int_eq(errno, EINVAL);
	t = climit_new(1, 0, 0, 0);
	ck_assert_ptr_nonnull(t);
	climit_unref(t);
}
END_TEST

START_TEST(maxconn_exact)
{
	struct climit *t = climit_new(100, 32, 64, 10000);
	struct climit_ticket tk[4];
	const struct climit_row *r;
	uint64_t now = T0_MS;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(admit(t, "192.0.2.1", 3, 0, now, &tk[i]),
		                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.1", 3, 0, now, &tk[3]),
	                 CLIMIT_MAXCONN);
	ck_assert_uint_eq(tk[3].slot, UINT32_MAX);
	climit_release(t, &tk[3], now); /* a refused ticket: nothing */
	/* another network is not limited by this one */
	ck_assert_int_eq(admit(t, "192.0.2.2", 3, 0, now, NULL), CLIMIT_ADMIT);
	r = row_of(t, "192.0.2.1/32");
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->cur, 3);
	ck_assert_uint_eq(r->in_period, 3);
	ck_assert_uint_eq(r->refused, 1);

	climit_release(t, &tk[1], now);
	ck_assert_uint_eq(row_of(t, "192.0.2.1/32")->cur, 2);
	ck_assert_int_eq(admit(t, "192.0.2.1", 3, 0, now, &tk[1]),
	                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.1", 3, 0, now, NULL),
	                 CLIMIT_MAXCONN);
	/* maxconn 0: off */
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 0, now, &tk[3]),
	                 CLIMIT_ADMIT);
	climit_release(t, &tk[3], now);
	for (int i = 0; i < 3; i++)
		climit_release(t, &tk[i], now);
	r = row_of(t, "192.0.2.1/32");
	ck_assert_uint_eq(r->cur, 0);
	ck_assert_uint_eq(r->refused, 2);
	climit_unref(t);
}
END_TEST

START_TEST(maxconn_before_rate)
{
	struct climit *t = climit_new(10, 32, 64, 1000);
	struct climit_ticket tk;

	ck_assert_int_eq(admit(t, "192.0.2.1", 1, 1, T0_MS, &tk), CLIMIT_ADMIT);
	/* both limits are reached: maxconn is the one reported */
	ck_assert_int_eq(admit(t, "192.0.2.1", 1, 1, T0_MS, NULL),
	                 CLIMIT_MAXCONN);
	climit_release(t, &tk, T0_MS);
	ck_assert_int_eq(admit(t, "192.0.2.1", 1, 1, T0_MS, NULL), CLIMIT_RATE);
	climit_unref(t);
}
END_TEST

START_TEST(rate_sliding_window)
{
	struct climit *t = climit_new(100, 32, 64, 2000);
	struct climit_ticket tk;
	const struct climit_row *r;
	uint64_t now = T0_MS;

	/* 5 sessions 100 ms apart, each one ended at once: rate, not maxconn */
	for (int i = 0; i < 5; i++, now += 100) {
		ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now, &tk),
		                 CLIMIT_ADMIT);
		climit_release(t, &tk, now);
	}
	/* now = T0 + 500: the 6th within the period is refused, and so are
	 * the next ones until the first session leaves the window: the
	 * refusals do not count toward the rate */
	for (; now < T0_MS + 2000 - 125; now += 100)
		ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now, NULL),
		                 CLIMIT_RATE);
	r = row_of(t, "192.0.2.1/32");
	ck_assert_uint_eq(r->in_period, 5);
	ck_assert_uint_eq(r->refused, 14);
	ck_assert_uint_eq(r->cur, 0);
	/* a period after the first one (T0 + 2000): the first two sessions
	 * (T0 and T0 + 100, one bucket of 125 ms) have left the window */
	now = T0_MS + 2000;
	ck_assert_uint_eq(row_at(t, "192.0.2.1/32", now)->in_period, 3);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now, NULL), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now, NULL), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now, NULL), CLIMIT_RATE);
	/* the third (T0 + 200, bucket from T0 + 125) leaves at T0 + 2125 */
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, T0_MS + 2124, NULL),
	                 CLIMIT_RATE);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, T0_MS + 2125, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, T0_MS + 2125, NULL),
	                 CLIMIT_RATE);
	/* much later: the window is empty, 5 again */
	now = T0_MS + 60000;
	ck_assert_uint_eq(row_at(t, "192.0.2.1/32", now)->in_period, 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now, NULL),
		                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now, NULL), CLIMIT_RATE);
	/* the clock going back counts as no time passing */
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, T0_MS, NULL), CLIMIT_RATE);
	ck_assert_uint_eq(row_of(t, "192.0.2.1/32")->in_period, 5);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 5, now + 2000, NULL),
	                 CLIMIT_ADMIT);
	climit_unref(t);
}
END_TEST

/* A session is never counted for longer than the period, and forgotten
 * at most period / 16 early: with period 1600 ms (buckets of 100 ms), one
 * admitted at t0 + 50 is counted until the bucket that holds it (started
 * at t0) is a period old, at t0 + 1600: 50 ms early. */
START_TEST(rate_window_bounds)
{
	struct climit *t = climit_new(10, 32, 64, 1600);
	uint64_t t0 = 1000000; /* a multiple of 100 */

	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 1, t0 + 50, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 1, t0 + 1599, NULL),
	                 CLIMIT_RATE);
	/* forgotten at T0 + 1600: 50 ms early, under 1600 / 16 */
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 1, t0 + 1600, NULL),
	                 CLIMIT_ADMIT);
	climit_unref(t);

	/* a period that 16 does not divide: 1000 ms, buckets of 63 ms */
	for (uint64_t at = 5000; at < 5000 + 63 * 20; at += 7) {
		struct climit *u = climit_new(10, 32, 64, 1000);
		uint64_t gone = 0;

		ck_assert_int_eq(admit(u, "192.0.2.1", 0, 1, at, NULL),
		                 CLIMIT_ADMIT);
		for (uint64_t now = at; now <= at + 1000; now++)
			if (row_at(u, "192.0.2.1/32", now)->in_period == 0) {
				gone = now;
				break;
			}
		ck_assert_msg(gone > 0, "at %llu: counted past the period",
		              (unsigned long long)at);
		ck_assert_msg(gone + 1000 / 16 >= at + 1000,
		              "at %llu: forgotten at %llu, too early",
		              (unsigned long long)at, (unsigned long long)gone);
		climit_unref(u);
	}

	/* period 0: nothing stays in the window */
	t = climit_new(10, 32, 64, 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(admit(t, "192.0.2.1", 0, 1, 1000, NULL),
		                 CLIMIT_ADMIT);
	climit_unref(t);
}
END_TEST

START_TEST(prefix_shares_count)
{
	struct climit *t = climit_new(100, 24, 64, 10000);
	struct climit_ticket a, b;
	struct sockaddr_un un;

	ck_assert_int_eq(admit(t, "127.0.0.2", 2, 0, T0_MS, &a), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "127.0.0.3", 2, 0, T0_MS, &b), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "127.0.0.4", 2, 0, T0_MS, NULL),
	                 CLIMIT_MAXCONN);
	/* IPv4-mapped IPv6: the same network */
	ck_assert_int_eq(admit(t, "::ffff:127.0.0.9", 2, 0, T0_MS, NULL),
	                 CLIMIT_MAXCONN);
	ck_assert_int_eq(admit(t, "127.0.1.2", 2, 0, T0_MS, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_uint_eq(row_of(t, "127.0.0.0/24")->cur, 2);
	ck_assert_uint_eq(row_of(t, "127.0.0.0/24")->refused, 2);
	climit_release(t, &a, T0_MS);
	ck_assert_int_eq(admit(t, "::ffff:127.0.0.9", 2, 0, T0_MS, &a),
	                 CLIMIT_ADMIT);
	climit_release(t, &a, T0_MS);
	climit_release(t, &b, T0_MS);

	/* IPv6 /64 */
	ck_assert_int_eq(admit(t, "2001:db8:1:2::1", 2, 0, T0_MS, &a),
	                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "2001:db8:1:2:ffff::7", 2, 0, T0_MS, &b),
	                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "2001:db8:1:2:1:2:3:4", 2, 0, T0_MS, NULL),
	                 CLIMIT_MAXCONN);
	ck_assert_int_eq(admit(t, "2001:db8:1:3::1", 2, 0, T0_MS, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_uint_eq(row_of(t, "2001:db8:1:2::/64")->cur, 2);
	ck_assert_ptr_nonnull(row_of(t, "2001:db8:1:3::/64"));
	ck_assert_uint_eq(climit_size(t), 4);

	/* not IP: admitted, not tracked */
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(
		    climit_admit(t, (struct sockaddr *)&un, 1, 1, T0_MS, &a),
		    CLIMIT_ADMIT);
		ck_assert_uint_eq(a.slot, UINT32_MAX);
		climit_release(t, &a, T0_MS);
	}
	ck_assert_uint_eq(climit_size(t), 4);
	climit_unref(t);
}
END_TEST

START_TEST(prefix_full_and_zero)
{
	struct climit *t = climit_new(100, 32, 128, 10000);

	ck_assert_int_eq(admit(t, "2001:db8::1", 1, 0, T0_MS, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "2001:db8::2", 1, 0, T0_MS, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_ptr_nonnull(row_of(t, "2001:db8::2/128"));
	climit_unref(t);

	/* /0: every client of a family is one network */
	t = climit_new(100, 0, 0, 10000);
	ck_assert_int_eq(admit(t, "192.0.2.1", 1, 0, T0_MS, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "203.0.113.1", 1, 0, T0_MS, NULL),
	                 CLIMIT_MAXCONN);
	ck_assert_int_eq(admit(t, "2001:db8::1", 1, 0, T0_MS, NULL),
	                 CLIMIT_ADMIT);
	ck_assert_ptr_nonnull(row_of(t, "0.0.0.0/0"));
	ck_assert_ptr_nonnull(row_of(t, "::/0"));
	climit_unref(t);
}
END_TEST

/* A distinct network per i: 10.x.y.z. */
static void
net_name(char *buf, size_t len, unsigned i)
{
	snprintf(buf, len, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255,
	         i & 255);
}

START_TEST(eviction_bound)
{
	struct climit *t = climit_new(100, 32, 64, 10000);
	struct climit_ticket held, other;
	char name[32];
	uint64_t now = T0_MS;

	/* one network holds a session; it stays while idle ones exist */
	ck_assert_int_eq(admit(t, "192.0.2.1", 1, 0, now, &held), CLIMIT_ADMIT);
	/* and another one, after a first session that ended */
	ck_assert_int_eq(admit(t, "192.0.2.2", 0, 0, now, &other),
	                 CLIMIT_ADMIT);
	climit_release(t, &other, now);
	ck_assert_int_eq(admit(t, "192.0.2.2", 0, 0, now, &other),
	                 CLIMIT_ADMIT);
	for (unsigned i = 0; i < 10000; i++) {
		struct climit_ticket tk;

		net_name(name, sizeof(name), i);
		ck_assert_int_eq(admit(t, name, 1, 0, ++now, &tk),
		                 CLIMIT_ADMIT);
		climit_release(t, &tk, now);
		ck_assert_uint_le(climit_size(t), 100);
	}
	ck_assert_uint_eq(climit_size(t), 100);
	/* the busy one survived: still full */
	ck_assert_uint_eq(row_of(t, "192.0.2.1/32")->cur, 1);
	ck_assert_int_eq(admit(t, "192.0.2.1", 1, 0, now, NULL),
	                 CLIMIT_MAXCONN);
	ck_assert_uint_eq(row_of(t, "192.0.2.2/32")->cur, 1);
	/* the other 98 are the newest networks, the older ones are gone */
	net_name(name, sizeof(name), 9999);
	strcat(name, "/32");
	ck_assert_ptr_nonnull(row_of(t, name));
	net_name(name, sizeof(name), 9902);
	strcat(name, "/32");
	ck_assert_ptr_nonnull(row_of(t, name));
	net_name(name, sizeof(name), 9901);
	strcat(name, "/32");
	ck_assert_ptr_null(row_of(t, name));

	climit_release(t, &held, now);
	ck_assert_uint_eq(row_of(t, "192.0.2.1/32")->cur, 0);
	/* given back twice (a caller's bug): never below 0 */
	climit_release(t, &held, now);
	ck_assert_uint_eq(row_of(t, "192.0.2.1/32")->cur, 0);
	climit_release(t, &other, now);
	ck_assert_uint_eq(row_of(t, "192.0.2.2/32")->cur, 0);
	climit_unref(t);
}
END_TEST

START_TEST(eviction_stale_ticket)
{
	struct climit *t = climit_new(10, 32, 64, 10000);
	struct climit_ticket busy[10], old, again;
	char name[32];
	uint64_t now = T0_MS;

	/* the table full of networks with a session each: the idlest is
	 * evicted though it has one */
	for (unsigned i = 0; i < 10; i++) {
		net_name(name, sizeof(name), i);
		ck_assert_int_eq(admit(t, name, 1, 0, ++now, &busy[i]),
		                 CLIMIT_ADMIT);
	}
	ck_assert_int_eq(admit(t, "192.0.2.1", 1, 0, ++now, &old),
	                 CLIMIT_ADMIT);
	ck_assert_uint_eq(climit_size(t), 10);
	ck_assert_ptr_null(row_of(t, "10.0.0.0/32"));
	/* it comes back and starts from zero */
	ck_assert_int_eq(admit(t, "10.0.0.0", 1, 0, ++now, &again),
	                 CLIMIT_ADMIT);
	ck_assert_ptr_null(row_of(t, "10.0.0.1/32"));
	ck_assert_uint_eq(row_of(t, "10.0.0.0/32")->cur, 1);
	/* its old ticket is stale: nothing, not even the new session's count
	 * (the slot may be the same one) */
	climit_release(t, &busy[0], now);
	climit_release(t, &busy[1], now);
	ck_assert_uint_eq(row_of(t, "10.0.0.0/32")->cur, 1);
	ck_assert_uint_eq(row_of(t, "192.0.2.1/32")->cur, 1);
	climit_release(t, &again, now);
	ck_assert_uint_eq(row_of(t, "10.0.0.0/32")->cur, 0);
	climit_release(t, &again, now); /* never below 0 */
	ck_assert_uint_eq(row_of(t, "10.0.0.0/32")->cur, 0);
	for (unsigned i = 2; i < 10; i++)
		climit_release(t, &busy[i], now);
	climit_release(t, &old, now);
	{
		struct climit_row rows[10];
		size_t n = climit_top(t, rows, 10, now);
		ck_assert_uint_eq(n, 10);
		for (size_t i = 0; i < n; i++)
			ck_assert_uint_eq(rows[i].cur, 0);
	}
	climit_unref(t);
}
END_TEST

/* Idle networks go first, and the least recently used of them. */
START_TEST(eviction_lru_order)
{
	struct climit *t = climit_new(4, 32, 64, 10000);
	struct climit_ticket tk;
	uint64_t now = T0_MS;

	ck_assert_int_eq(admit(t, "10.0.0.1", 0, 0, ++now, &tk), CLIMIT_ADMIT);
	climit_release(t, &tk, now);
	ck_assert_int_eq(admit(t, "10.0.0.2", 0, 0, ++now, NULL), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "10.0.0.3", 0, 0, ++now, NULL), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "10.0.0.4", 0, 0, ++now, &tk), CLIMIT_ADMIT);
	climit_release(t, &tk, now);
	/* 10.0.0.1 is used again: 10.0.0.4 is now the idlest without
	 * sessions (10.0.0.2 and 3 hold one) */
	ck_assert_int_eq(admit(t, "10.0.0.1", 0, 0, ++now, &tk), CLIMIT_ADMIT);
	climit_release(t, &tk, now);
	ck_assert_int_eq(admit(t, "10.0.0.5", 0, 0, ++now, NULL), CLIMIT_ADMIT);
	ck_assert_ptr_null(row_of(t, "10.0.0.4/32"));
	ck_assert_ptr_nonnull(row_of(t, "10.0.0.1/32"));
	ck_assert_ptr_nonnull(row_of(t, "10.0.0.2/32"));
	ck_assert_ptr_nonnull(row_of(t, "10.0.0.3/32"));
	/* next: 10.0.0.1 (the only one left without a session) */
	ck_assert_int_eq(admit(t, "10.0.0.6", 0, 0, ++now, NULL), CLIMIT_ADMIT);
	ck_assert_ptr_null(row_of(t, "10.0.0.1/32"));
	/* all hold sessions: the idlest, 10.0.0.2 */
	ck_assert_int_eq(admit(t, "10.0.0.7", 0, 0, ++now, NULL), CLIMIT_ADMIT);
	ck_assert_ptr_null(row_of(t, "10.0.0.2/32"));
	ck_assert_ptr_nonnull(row_of(t, "10.0.0.3/32"));
	ck_assert_uint_eq(climit_size(t), 4);
	climit_unref(t);
}
END_TEST

START_TEST(top_order)
{
	struct climit *t = climit_new(100, 32, 64, 10000);
	struct climit_row rows[8];
	uint64_t now = T0_MS;
	size_t n;

	struct climit_ticket tk;

	/* current, in the period, refused:
	 * .5: 1, 0, 1 (admitted and refused 20 s ago, the period is 10 s)
	 * .1: 1, 1; .2: 3, 3; .3: 0, 4; .4: 1, 2;
	 * 2001:db8::1 (/64): 3, 4 */
	ck_assert_int_eq(admit(t, "192.0.2.5", 1, 0, now, NULL), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.5", 1, 0, now, NULL),
	                 CLIMIT_MAXCONN);
	now += 20000;
	ck_assert_int_eq(admit(t, "192.0.2.1", 0, 0, now, NULL), CLIMIT_ADMIT);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(admit(t, "192.0.2.2", 0, 0, now, NULL),
		                 CLIMIT_ADMIT);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(admit(t, "192.0.2.3", 0, 0, now, &tk),
		                 CLIMIT_ADMIT);
		climit_release(t, &tk, now);
	}
	ck_assert_int_eq(admit(t, "192.0.2.4", 0, 0, now, NULL), CLIMIT_ADMIT);
	ck_assert_int_eq(admit(t, "192.0.2.4", 0, 0, now, &tk), CLIMIT_ADMIT);
	climit_release(t, &tk, now);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(admit(t, "2001:db8::1", 0, 0, now, &tk),
		                 CLIMIT_ADMIT);
		if (i == 0)
			climit_release(t, &tk, now);
	}

	n = climit_top(t, rows, 8, now);
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(rows[0].net, "2001:db8::/64");
	ck_assert_uint_eq(rows[0].cur, 3);
	ck_assert_uint_eq(rows[0].in_period, 4);
	ck_assert_str_eq(rows[1].net, "192.0.2.2/32");
	ck_assert_uint_eq(rows[1].cur, 3);
	ck_assert_uint_eq(rows[1].in_period, 3);
	ck_assert_str_eq(rows[2].net, "192.0.2.4/32");
	ck_assert_str_eq(rows[3].net, "192.0.2.1/32");
	ck_assert_str_eq(rows[4].net, "192.0.2.5/32");
	ck_assert_uint_eq(rows[4].cur, 1);
	ck_assert_uint_eq(rows[4].in_period, 0);
	ck_assert_uint_eq(rows[4].refused, 1);
	ck_assert_str_eq(rows[5].net, "192.0.2.3/32");
	ck_assert_uint_eq(rows[5].cur, 0);
	ck_assert_uint_eq(rows[5].in_period, 4);

	/* the top 3 are the first 3 of the whole order */
	{
		struct climit_row all[8], some[3];
		size_t na = climit_top(t, all, 8, now);
		size_t ns = climit_top(t, some, 3, now);
		ck_assert_uint_eq(na, 6);
		ck_assert_uint_eq(ns, 3);
		for (size_t i = 0; i < ns; i++)
			ck_assert_str_eq(some[i].net, all[i].net);
		ck_assert_uint_eq(climit_top(t, some, 0, now), 0);
	}
	climit_unref(t);
}
END_TEST

/* Equal counts: the lower address first, IPv4 before IPv6. */
START_TEST(top_ties)
{
	struct climit *t = climit_new(100, 32, 64, 10000);
	struct climit_row rows[4];
	const char *order[] = {"192.0.2.3", "192.0.2.10", "2001:db8::1",
	                       "192.0.2.200"};

	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(admit(t, order[i], 0, 0, T0_MS, NULL),
		                 CLIMIT_ADMIT);
	ck_assert_uint_eq(climit_top(t, rows, 4, T0_MS), 4);
	ck_assert_str_eq(rows[0].net, "192.0.2.3/32");
	ck_assert_str_eq(rows[1].net, "192.0.2.10/32");
	ck_assert_str_eq(rows[2].net, "192.0.2.200/32");
	ck_assert_str_eq(rows[3].net, "2001:db8::/64");
	/* the top 2 of them: the same first two */
	ck_assert_uint_eq(climit_top(t, rows, 2, T0_MS), 2);
	ck_assert_str_eq(rows[0].net, "192.0.2.3/32");
	ck_assert_str_eq(rows[1].net, "192.0.2.10/32");
	climit_unref(t);
}
END_TEST

/* --- threads ----------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 20000
#define LIMIT 3

struct race {
	struct climit *t;
	atomic_int inside; /* sessions admitted and not yet released */
	atomic_int peak;
	atomic_long admitted, refused;
};

struct worker {
	struct race *r;
	int id;
};

static void *
race_worker(void *arg)
{
	struct worker *w = arg;
	struct race *r = w->r;
	struct sockaddr_storage ss;
	struct climit_ticket held[LIMIT + 1];
	int nheld = 0;
	char client[32];
	unsigned seed = (unsigned)w->id * 2654435761u + 1;

	/* all threads share one /24, from different hosts */
	snprintf(client, sizeof(client), "198.51.100.%d", 10 + w->id);
	addr(&ss, client);
	for (int i = 0; i < ROUNDS; i++) {
		seed = seed * 1103515245u + 12345u;
		if (nheld > 0 && (nheld > LIMIT || (seed >> 16) % 2 == 0)) {
			atomic_fetch_sub(&r->inside, 1);
			climit_release(r->t, &held[--nheld], 0);
			continue;
		}
		if (climit_admit(r->t, (struct sockaddr *)&ss, LIMIT, 0, 0,
		                 &held[nheld]) == CLIMIT_ADMIT) {
			int now = atomic_fetch_add(&r->inside, 1) + 1;
			int peak = atomic_load(&r->peak);
			while (now > peak && !atomic_compare_exchange_weak(
			                         &r->peak, &peak, now))
				;
			nheld++;
			atomic_fetch_add(&r->admitted, 1);
		} else {
			atomic_fetch_add(&r->refused, 1);
		}
	}
	while (nheld > 0) {
		atomic_fetch_sub(&r->inside, 1);
		climit_release(r->t, &held[--nheld], 0);
	}
	return NULL;
}

START_TEST(threads_exact)
{
	struct race r;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct climit_row rows[2];

	memset(&r, 0, sizeof(r));
	r.t = climit_new(16, 24, 64, 10000);
	ck_assert_ptr_nonnull(r.t);
	atomic_init(&r.inside, 0);
	atomic_init(&r.peak, 0);
	atomic_init(&r.admitted, 0);
	atomic_init(&r.refused, 0);
	for (int i = 0; i < THREADS; i++) {
		w[i].r = &r;
		w[i].id = i;
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, race_worker, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);

	ck_assert_int_le(atomic_load(&r.peak), LIMIT);
	ck_assert_int_eq(atomic_load(&r.inside), 0);
	ck_assert_int_gt(atomic_load(&r.admitted), 0);
	ck_assert_int_gt(atomic_load(&r.refused), 0);
	ck_assert_uint_eq(climit_top(r.t, rows, 2, 0), 1);
	ck_assert_str_eq(rows[0].net, "198.51.100.0/24");
	ck_assert_uint_eq(rows[0].cur, 0);
	ck_assert_uint_eq(rows[0].refused, (uint64_t)atomic_load(&r.refused));
	climit_unref(r.t);
}
END_TEST

static Suite *
climit_suite(void)
{
	Suite *s = suite_create("climit");
	TCase *tc;

	tc = tcase_create("cidr");
	tcase_add_test(tc, cidr_parse_good);
	tcase_add_test(tc, cidr_parse_bad);
	tcase_add_test(tc, cidr_host_bits_optional);
	tcase_add_test(tc, cidr_format_short);
	tcase_add_test(tc, cidr_matching);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, table_new_and_same);
	tcase_add_test(tc, maxconn_exact);
	tcase_add_test(tc, maxconn_before_rate);
	tcase_add_test(tc, rate_sliding_window);
	tcase_add_test(tc, rate_window_bounds);
	tcase_add_test(tc, prefix_shares_count);
	tcase_add_test(tc, prefix_full_and_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("eviction");
	tcase_add_test(tc, eviction_bound);
	tcase_add_test(tc, eviction_stale_ticket);
	tcase_add_test(tc, eviction_lru_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("top");
	tcase_add_test(tc, top_order);
	tcase_add_test(tc, top_ties);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_test(tc, threads_exact);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(climit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
