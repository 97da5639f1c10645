/* Unit tests for parse.c: durations, addresses, resolution, formatting. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <check.h>

#include "common.h"
#include "parse.h"

/* parse_duration must succeed on text and yield want milliseconds. */
static void
duration_ok(const char *text, uint64_t want)
{
	uint64_t ms = 12345;
	const char *err = NULL;
	int rc;

	rc = parse_duration(text, &ms, &err);
	ck_assert_msg(rc == 0, "parse_duration(\"%s\") failed: %s", text,
	              err ? err : "(no message)");
	ck_assert_msg(ms == want,
	              "parse_duration(\"%s\") = %llu ms, want %llu ms", text,
	              (unsigned long long)ms, (unsigned long long)want);
}

/* parse_duration must reject text with a message. */
static void
duration_bad(const char *text)
{
	uint64_t ms = 0;
	const char *err = NULL;
	int rc;

	rc = parse_duration(text, &ms, &err);
	ck_assert_msg(rc == -1,
	              "parse_duration(\"%s\") accepted (= %llu ms), want -1",
	              text, (unsigned long long)ms);
	ck_assert_msg(err != NULL && *err != '\0',
	              "parse_duration(\"%s\") failed without a message", text);
}

START_TEST(duration_units)
{
	duration_ok("250ms", 250);
	duration_ok("5s", 5000);
	duration_ok("1m", 60000);
	duration_ok("1h", 3600000);
	duration_ok("14d", 14ULL * 24 * 3600 * 1000);
	duration_ok("10m", 600000);
	duration_ok("90s", 90000);
	duration_ok("1ms", 1);
}
END_TEST

START_TEST(duration_bare_number_is_ms)
{
	duration_ok("1500", 1500);
	duration_ok("1", 1);
	duration_ok("6000", 6000);
}
END_TEST

START_TEST(duration_max)
{
	duration_ok("365d", LB_DURATION_MAX_MS);
	duration_ok("8760h", LB_DURATION_MAX_MS);
	duration_bad("366d");
	duration_bad("8761h");
	duration_bad("31536000001");
}
END_TEST

START_TEST(duration_rejects_empty)
{
	duration_bad("");
}
END_TEST

START_TEST(duration_rejects_negative)
{
	duration_bad("-1");
	duration_bad("-5s");
	duration_bad("-250ms");
}
END_TEST

START_TEST(duration_rejects_unknown_unit)
{
	duration_bad("5x");
	duration_bad("5sec");
	duration_bad("5us");
	duration_bad("5w");
	duration_bad("s");
	duration_bad("ms");
	duration_bad("5s5");
}
END_TEST

START_TEST(duration_rejects_overflow)
{
	duration_bad("18446744073709551616");
	duration_bad("99999999999999999999999");
	duration_bad("99999999999999999999999ms");
	duration_bad("18446744073709551615d");
	duration_bad("213503982334601d");
	duration_bad("5124095576030431h");
}
END_TEST

START_TEST(duration_rejects_spaces)
{
	duration_bad(" 5s");
	duration_bad("5s ");
	duration_bad("5 s");
	duration_bad(" ");
	duration_bad("1 500");
}
END_TEST

/* parse_address must succeed and split text into host and port. */
static void
address_ok(const char *text, const char *want_host, uint16_t want_port)
{
	char host[LB_ADDR_MAX];
	uint16_t port = 0;
	const char *err = NULL;
	int rc;

	memset(host, 'X', sizeof(host));
	rc = parse_address(text, host, sizeof(host), &port, &err);
	ck_assert_msg(rc == 0, "parse_address(\"%s\") failed: %s", text,
	              err ? err : "(no message)");
	ck_assert_msg(memchr(host, '\0', sizeof(host)) != NULL,
	              "parse_address(\"%s\"): host not terminated", text);
	ck_assert_msg(strcmp(host, want_host) == 0,
	              "parse_address(\"%s\"): host \"%s\", want \"%s\"", text,
	              host, want_host);
	ck_assert_msg(port == want_port,
	              "parse_address(\"%s\"): port %u, want %u", text,
	              (unsigned)port, (unsigned)want_port);
}

/* parse_address must reject text with a message. */
static void
address_bad(const char *text)
{
	char host[LB_ADDR_MAX];
	uint16_t port = 0;
	const char *err = NULL;
	int rc;

	host[0] = '\0';
	rc = parse_address(text, host, sizeof(host), &port, &err);
	ck_assert_msg(rc == -1,
	              "parse_address(\"%s\") accepted (host \"%s\" port %u)",
	              text, host, (unsigned)port);
	ck_assert_msg(err != NULL && *err != '\0',
	              "parse_address(\"%s\") failed without a message", text);
}

START_TEST(address_ipv4)
{
	address_ok("1.2.3.4:25", "1.2.3.4", 25);
	address_ok("0.0.0.0:25", "0.0.0.0", 25);
	address_ok("127.0.0.1:2525", "127.0.0.1", 2525);
	address_ok("10.10.10.1:1", "10.10.10.1", 1);
	address_ok("10.10.10.1:65535", "10.10.10.1", 65535);
}
END_TEST

START_TEST(address_ipv6)
{
	address_ok("[::1]:25", "::1", 25);
	address_ok("[::]:2525", "::", 2525);
	address_ok("[2001:db8::1]:587", "2001:db8::1", 587);
	address_ok("[fe80::1:2:3:4]:65535", "fe80::1:2:3:4", 65535);
}
END_TEST

START_TEST(address_hostname)
{
	address_ok("host.example:25", "host.example", 25);
	address_ok("localhost:25", "localhost", 25);
	address_ok("mx-1.filter.example.net:10025", "mx-1.filter.example.net",
	           10025);
}
END_TEST

START_TEST(address_rejects_missing_port)
{
	address_bad("1.2.3.4");
	address_bad("1.2.3.4:");
	address_bad("host.example");
	address_bad("host.example:");
	address_bad("[::1]");
	address_bad("[::1]:");
	address_bad("");
}
END_TEST

START_TEST(address_rejects_bad_port)
{
	address_bad("1.2.3.4:0");
	address_bad("1.2.3.4:65536");
	address_bad("1.2.3.4:99999");
	address_bad("1.2.3.4:4294967321"); /* 2^32 + 25 */
	address_bad("1.2.3.4:-25");
	address_bad("[::1]:0");
	address_bad("[::1]:65536");
	address_bad("host.example:0");
	address_bad("1.2.3.4:smtp");
}
END_TEST

START_TEST(address_rejects_empty_host)
{
	address_bad(":25");
	address_bad("[]:25");
}
END_TEST

START_TEST(address_rejects_unterminated_bracket)
{
	address_bad("[::1");
	address_bad("[::1:25");
	address_bad("[2001:db8::1");
}
END_TEST

START_TEST(address_rejects_unbracketed_ipv6)
{
	address_bad("::1:25");
	address_bad("2001:db8::1:25");
	address_bad("fe80::1:2525");
}
END_TEST

START_TEST(address_rejects_trailing_junk)
{
	address_bad("1.2.3.4:25x");
	address_bad("1.2.3.4:25 ");
	address_bad("1.2.3.4:25:26");
	address_bad("[::1]:25x");
	address_bad("[::1]x:25");
	address_bad("[::1]25");
	address_bad("host.example:25/tcp");
}
END_TEST

START_TEST(resolve_ipv4_literal)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *err = NULL;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	ck_assert_int_eq(resolve_address("127.0.0.1:2525", &ss, &len, &err), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_uint_eq(ntohs(sin->sin_port), 2525);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);

	ck_assert_int_eq(resolve_address("10.10.10.1:25", &ss, &len, &err), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 25);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x0a0a0a01);
}
END_TEST

START_TEST(resolve_ipv6_literal)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *err = NULL;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	struct in6_addr want;

	memset(&ss, 0, sizeof(ss));
	ck_assert_int_eq(resolve_address("[::1]:25", &ss, &len, &err), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 25);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));

	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::7", &want), 1);
	ck_assert_int_eq(
	    resolve_address("[2001:db8::7]:10025", &ss, &len, &err), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 10025);
	ck_assert_mem_eq(&sin6->sin6_addr, &want, sizeof(want));
}
END_TEST

START_TEST(resolve_localhost)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *err = NULL;
	int rc;

	memset(&ss, 0, sizeof(ss));
	rc = resolve_address("localhost:25", &ss, &len, &err);
	ck_assert_msg(rc == 0, "resolve_address(localhost:25) failed: %s",
	              err ? err : "(no message)");
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		ck_assert_uint_eq(len, sizeof(*sin));
		ck_assert_uint_eq(ntohs(sin->sin_port), 25);
		ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr) >> 24, 127);
	} else {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)&ss;

		ck_assert_int_eq(ss.ss_family, AF_INET6);
		ck_assert_uint_eq(len, sizeof(*sin6));
		ck_assert_uint_eq(ntohs(sin6->sin6_port), 25);
		ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	}
}
END_TEST

START_TEST(resolve_rejects_bad_address)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *err = NULL;

	ck_assert_int_eq(resolve_address("127.0.0.1", &ss, &len, &err), -1);
	ck_assert_ptr_nonnull(err);
	err = NULL;
	ck_assert_int_eq(resolve_address("127.0.0.1:0", &ss, &len, &err), -1);
	ck_assert_ptr_nonnull(err);
	err = NULL;
	ck_assert_int_eq(resolve_address("::1:25", &ss, &len, &err), -1);
	ck_assert_ptr_nonnull(err);
}
END_TEST

START_TEST(resolve_rejects_unknown_host)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *err = NULL;

	/* RFC 6761: .invalid never resolves. */
	ck_assert_int_eq(
	    resolve_address("no-such-host.invalid:25", &ss, &len, &err), -1);
	ck_assert_msg(err != NULL && *err != '\0',
	              "resolver failure without a message");
}
END_TEST

START_TEST(format_ipv4)
{
	struct sockaddr_in sin;
	char buf[LB_SOCKADDR_STRLEN];
	char *ret;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(25);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	ret = format_sockaddr((const struct sockaddr *)&sin, buf, sizeof(buf));
	ck_assert_ptr_eq(ret, buf);
	ck_assert_str_eq(buf, "127.0.0.1:25");

	sin.sin_port = htons(65535);
	sin.sin_addr.s_addr = htonl(0x0a0a0a01);
	format_sockaddr((const struct sockaddr *)&sin, buf, sizeof(buf));
	ck_assert_str_eq(buf, "10.10.10.1:65535");

	ret =
	    format_sockaddr_ip((const struct sockaddr *)&sin, buf, sizeof(buf));
	ck_assert_ptr_eq(ret, buf);
	ck_assert_str_eq(buf, "10.10.10.1");
}
END_TEST

START_TEST(format_ipv6)
{
	struct sockaddr_in6 sin6;
	char buf[LB_SOCKADDR_STRLEN];
	char *ret;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(25);
	sin6.sin6_addr = in6addr_loopback;
	ret = format_sockaddr((const struct sockaddr *)&sin6, buf, sizeof(buf));
	ck_assert_ptr_eq(ret, buf);
	ck_assert_str_eq(buf, "[::1]:25");

	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::25", &sin6.sin6_addr),
	                 1);
	sin6.sin6_port = htons(2525);
	format_sockaddr((const struct sockaddr *)&sin6, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[2001:db8::25]:2525");

	ret = format_sockaddr_ip((const struct sockaddr *)&sin6, buf,
	                         sizeof(buf));
	ck_assert_ptr_eq(ret, buf);
	ck_assert_str_eq(buf, "2001:db8::25");
}
END_TEST

START_TEST(format_longest_ipv6_fits)
{
	struct sockaddr_in6 sin6;
	char buf[LB_SOCKADDR_STRLEN];

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(65535);
	ck_assert_int_eq(
	    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
	              &sin6.sin6_addr),
	    1);
	format_sockaddr((const struct sockaddr *)&sin6, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "]:65535"));
	ck_assert_int_eq(buf[0], '[');
}
END_TEST

START_TEST(format_resolve_roundtrip)
{
	static const char *const texts[] = {"127.0.0.1:25", "[::1]:25",
	                                    "192.0.2.200:10025",
	                                    "[2001:db8::1:2]:587"};
	struct sockaddr_storage ss;
	socklen_t len;
	const char *err;
	char buf[LB_SOCKADDR_STRLEN];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(texts); i++) {
		err = NULL;
		ck_assert_msg(resolve_address(texts[i], &ss, &len, &err) == 0,
		              "resolve_address(\"%s\"): %s", texts[i],
		              err ? err : "(no message)");
		format_sockaddr((const struct sockaddr *)&ss, buf, sizeof(buf));
		ck_assert_str_eq(buf, texts[i]);
	}
}
END_TEST

static Suite *
parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc;

	tc = tcase_create("duration");
	tcase_add_test(tc, duration_units);
	tcase_add_test(tc, duration_bare_number_is_ms);
	tcase_add_test(tc, duration_max);
	tcase_add_test(tc, duration_rejects_empty);
	tcase_add_test(tc, duration_rejects_negative);
	tcase_add_test(tc, duration_rejects_unknown_unit);
	tcase_add_test(tc, duration_rejects_overflow);
	tcase_add_test(tc, duration_rejects_spaces);
	suite_add_tcase(s, tc);

	tc = tcase_create("address");
	tcase_add_test(tc, address_ipv4);
	tcase_add_test(tc, address_ipv6);
	tcase_add_test(tc, address_hostname);
	tcase_add_test(tc, address_rejects_missing_port);
	tcase_add_test(tc, address_rejects_bad_port);
	tcase_add_test(tc, address_rejects_empty_host);
	tcase_add_test(tc, address_rejects_unterminated_bracket);
	tcase_add_test(tc, address_rejects_unbracketed_ipv6);
	tcase_add_test(tc, address_rejects_trailing_junk);
	suite_add_tcase(s, tc);

	tc = tcase_create("resolve");
	/* A resolver query for .invalid may wait on an unreachable DNS. */
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, resolve_ipv4_literal);
	tcase_add_test(tc, resolve_ipv6_literal);
	tcase_add_test(tc, resolve_localhost);
	tcase_add_test(tc, resolve_rejects_bad_address);
	tcase_add_test(tc, resolve_rejects_unknown_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, format_ipv4);
	tcase_add_test(tc, format_ipv6);
	tcase_add_test(tc, format_longest_ipv6_fits);
	tcase_add_test(tc, format_resolve_roundtrip);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(parse_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
