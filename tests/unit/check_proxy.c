/* Unit tests for proxy.c: PROXY protocol v1/v2 headers against vectors
 * written from HAProxy's proxy-protocol.txt. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <check.h>

#include "proxy.h"

static struct sockaddr_storage
sa4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage
sa6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	return ss;
}

static int
build(enum proxy_proto v, const struct sockaddr_storage *src,
      const struct sockaddr_storage *dst, uint8_t *buf, size_t len,
      const char **err)
{
	*err = NULL;
	return proxy_header(v, (const struct sockaddr *)src,
	                    (const struct sockaddr *)dst, buf, len, err);
}

static void
expect_v1(const struct sockaddr_storage *src,
          const struct sockaddr_storage *dst, const char *want)
{
	uint8_t buf[PROXY_HDR_MAX];
	const char *err;
	int n = build(PP_V1, src, dst, buf, sizeof(buf), &err);

	ck_assert_msg(n > 0, "v1 failed: %s", err ? err : "?");
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_msg(memcmp(buf, want, (size_t)n) == 0, "got %.*s want %s", n,
	              (const char *)buf, want);
	ck_assert_int_le(n, 107); /* the v1 limit */
}

START_TEST(v1_tcp4)
{
	struct sockaddr_storage s = sa4("192.168.0.1", 56324);
	struct sockaddr_storage d = sa4("192.168.0.11", 443);

	/* The example of proxy-protocol.txt section 2.1. */
	expect_v1(&s, &d, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
}
END_TEST

START_TEST(v1_tcp4_longest)
{
	struct sockaddr_storage s = sa4("255.255.255.255", 65535);
	struct sockaddr_storage d = sa4("255.255.255.255", 65535);

	expect_v1(&s, &d,
	          "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
}
END_TEST

START_TEST(v1_tcp6)
{
	struct sockaddr_storage s = sa6("2001:db8::7", 40001);
	struct sockaddr_storage d = sa6("::1", 25);

	expect_v1(&s, &d, "PROXY TCP6 2001:db8::7 ::1 40001 25\r\n");
}
END_TEST

START_TEST(v1_tcp6_longest)
{
	const char *ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
	struct sockaddr_storage s = sa6(ip, 65535);
	struct sockaddr_storage d = sa6(ip, 65535);

	/* The worst case of the specification: 104 bytes. */
	expect_v1(&s, &d,
	          "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
}
END_TEST

START_TEST(v1_mapped_is_tcp4)
{
	struct sockaddr_storage s = sa6("::ffff:198.51.100.7", 1234);
	struct sockaddr_storage d = sa6("::ffff:198.51.100.1", 25);

	expect_v1(&s, &d, "PROXY TCP4 198.51.100.7 198.51.100.1 1234 25\r\n");
}
END_TEST

START_TEST(v2_tcp4)
{
	struct sockaddr_storage s = sa4("127.0.0.7", 40001);
	struct sockaddr_storage d = sa4("127.0.0.1", 58371);
	static const uint8_t want[] = {
	    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
	    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* signature */
	    0x21,                               /* version 2, command PROXY */
	    0x11,                               /* AF_INET, STREAM */
	    0x00, 0x0C,                         /* 12 bytes follow */
	    127,  0,    0,    7,                /* src */
	    127,  0,    0,    1,                /* dst */
	    0x9C, 0x41,                         /* 40001 */
	    0xE4, 0x03,                         /* 58371 */
	};
	uint8_t buf[PROXY_HDR_MAX];
	const char *err;
	int n = build(PP_V2, &s, &d, buf, sizeof(buf), &err);

	ck_assert_int_eq(n, 28); /* HAProxy 2.6 sends 28 bytes too */
	ck_assert(memcmp(buf, want, sizeof(want)) == 0);
	ck_assert(memcmp(buf, proxy_v2_sig, 12) == 0);
}
END_TEST

START_TEST(v2_tcp6)
{
	struct sockaddr_storage s = sa6("2001:db8::7", 0x1234);
	struct sockaddr_storage d = sa6("2001:db8::1", 25);
	uint8_t want[52] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
	                    0x55, 0x49, 0x54, 0x0A, 0x21, 0x21, 0x00, 0x24};
	uint8_t buf[PROXY_HDR_MAX];
	const char *err;
	int n;

	/* 2001:0db8:0000:...:0007 then ...:0001, ports big-endian. */
	want[16] = 0x20, want[17] = 0x01, want[18] = 0x0d, want[19] = 0xb8;
	want[31] = 0x07;
	want[32] = 0x20, want[33] = 0x01, want[34] = 0x0d, want[35] = 0xb8;
	want[47] = 0x01;
	want[48] = 0x12, want[49] = 0x34, want[50] = 0x00, want[51] = 25;
	n = build(PP_V2, &s, &d, buf, sizeof(buf), &err);
	ck_assert_int_eq(n, 52);
	ck_assert(memcmp(buf, want, sizeof(want)) == 0);
}
END_TEST

START_TEST(v2_mapped_is_tcp4)
{
	struct sockaddr_storage s = sa6("::ffff:10.0.0.2", 1);
	struct sockaddr_storage d = sa4("10.0.0.1", 2);
	uint8_t buf[PROXY_HDR_MAX];
	const char *err;

	ck_assert_int_eq(build(PP_V2, &s, &d, buf, sizeof(buf), &err), 28);
	ck_assert_int_eq(buf[13], 0x11);
	ck_assert_int_eq(buf[16], 10);
	ck_assert_int_eq(buf[19], 2);
	ck_assert_int_eq(buf[24], 0);
	ck_assert_int_eq(buf[25], 1);
}
END_TEST

START_TEST(rejects)
{
	struct sockaddr_storage s4 = sa4("10.0.0.1", 1), s6 = sa6("::1", 1);
	struct sockaddr_storage un;
	uint8_t buf[PROXY_HDR_MAX];
	const char *err;

	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	ck_assert_int_lt(build(PP_V1, &s4, &s6, buf, sizeof(buf), &err), 0);
	ck_assert_ptr_nonnull(err);
	ck_assert_int_lt(build(PP_V2, &un, &s4, buf, sizeof(buf), &err), 0);
	ck_assert_ptr_nonnull(err);
	ck_assert_int_lt(build(PP_NONE, &s4, &s4, buf, sizeof(buf), &err), 0);
	ck_assert_ptr_nonnull(err);
	/* No room: never a partial header. */
	ck_assert_int_lt(build(PP_V2, &s6, &s6, buf, 51, &err), 0);
	ck_assert_int_lt(build(PP_V1, &s4, &s4, buf, 20, &err), 0);
}
END_TEST

static Suite *
proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("v1");

	tcase_add_test(tc, v1_tcp4);
	tcase_add_test(tc, v1_tcp4_longest);
	tcase_add_test(tc, v1_tcp6);
	tcase_add_test(tc, v1_tcp6_longest);
	tcase_add_test(tc, v1_mapped_is_tcp4);
	suite_add_tcase(s, tc);
	tc = tcase_create("v2");
	tcase_add_test(tc, v2_tcp4);
	tcase_add_test(tc, v2_tcp6);
	tcase_add_test(tc, v2_mapped_is_tcp4);
	tcase_add_test(tc, rejects);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proxy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
