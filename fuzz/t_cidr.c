/* Client limits (src/climit.c).  The input is used twice.
 *
 * As a text (up to its first NUL), given to cidr_parse.  It must accept
 * and refuse what a reference parser built on the C library's inet_pton
 * (strict: no leading zeros, no octet over 255) accepts and refuses, with
 * the same result.  What is accepted has a family, a prefix length in
 * range and no bit set below it; it is
 * printed by cidr_format (also into a buffer one byte too short: cut and
 * NUL-terminated) and read back to the same prefix without host bits; its
 * network address and its last address match it (an IPv4 one also as
 * IPv4-mapped IPv6), the address just outside it does not.  What is
 * refused leaves the output untouched and says why.  (An IPv6 prefix of
 * less than 96 bits may cover IPv4-mapped addresses: those are IPv4
 * clients, and do not match it.)
 *
 * As a program (its first 256 bytes) for a table of 8 networks (prefix4
 * 24, prefix6 64, period 1000 ms; maxconn 2 and rate 3 on every admit),
 * one operation a byte:
 *   00nnnnnn  admit an IPv4 client: network n & 15 (16 of them, so that
 *             the table evicts), host from bits 4-5, as IPv4-mapped IPv6
 *             when bit 5 is set; 00111111 admits an AF_UNIX client
 *   01nnnnnn  admit an IPv6 client: network n & 15, host from bits 4-5
 *   10nnnnnn  release the session held at n modulo the number held
 *   11nnnnnn  the clock goes on by n x 50 ms (11111111: back by 5 s)
 * After each operation: at most 8 networks; the top rows are sorted, no
 * network holds more than maxconn sessions (an underflow would) or more
 * than rate in its window, and all of them together no more than the
 * sessions held.  After every 8th operation and at the end also: the
 * rows' networks read back with the table's prefix lengths, and the top n
 * rows are the first n of the top 8.  At the end, once every session is
 * released, no network holds one. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "climit.h"
#include "fuzz.h"

#define TABLE 8
#define MAXCONN 2
#define RATE 3
#define HELD_MAX 64
#define OPS_MAX 256 /* plenty for 8 entries; longer inputs fuzz the text */

/* sa: the address a (family fam: AF_INET, AF_INET6, or AF_INET given as
 * IPv4-mapped IPv6 when mapped). */
static const struct sockaddr *
make_sa(struct sockaddr_storage *ss, int fam, const uint8_t *a, bool mapped)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET && !mapped) {
		struct sockaddr_in *in = (void *)ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, a, 4);
	} else {
		struct sockaddr_in6 *in6 = (void *)ss;
		in6->sin6_family = AF_INET6;
		if (fam == AF_INET) {
			in6->sin6_addr.s6_addr[10] = 0xff;
			in6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(in6->sin6_addr.s6_addr + 12, a, 4);
		} else {
			memcpy(&in6->sin6_addr, a, 16);
		}
	}
	return (const struct sockaddr *)ss;
}

static bool
bit_set(const uint8_t *a, unsigned i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

/* a client at a matches c when want; an IPv4-mapped one is an IPv4
 * client and never matches an IPv6 prefix ("::/0", "::fffc:0:0/94"). */
static void
matches(const struct cidr *c, const uint8_t *a, bool want)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	struct sockaddr_storage ss;
	struct cidr_list l = {(struct cidr *)c, 1};
	const struct sockaddr *sa = make_sa(&ss, c->family, a, false);

	if (c->family == AF_INET6 && memcmp(a, mapped, 12) == 0)
		want = false;
	FUZZ_ASSERT(cidr_match(c, sa) == want);
	FUZZ_ASSERT(cidr_list_match(&l, sa) == want);
	if (c->family == AF_INET) {
		sa = make_sa(&ss, AF_INET, a, true);
		FUZZ_ASSERT(cidr_match(c, sa) == want);
	}
}

/* What cidr_parse should make of text (-1: refuse it), from inet_pton. */
static int
reference(const char *text, struct cidr *c)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	char buf[INET6_ADDRSTRLEN];
	unsigned bits, max;

	memset(c, 0, sizeof(*c));
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	c->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(c->family, buf, c->addr) != 1)
		return -1;
	max = c->family == AF_INET ? 32 : 128;
	bits = max;
	if (slash != NULL) {
		size_t n = strlen(slash + 1);
		if (n < 1 || n > 3 || strspn(slash + 1, "0123456789") != n)
			return -1;
		bits = (unsigned)atoi(slash + 1);
		if (bits > max)
			return -1;
	}
	if (c->family == AF_INET6 && bits >= 96 &&
	    memcmp(c->addr, mapped, 12) == 0) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		bits -= 96;
	}
	c->bits = (uint8_t)bits;
	for (unsigned i = bits; i < 128; i++)
		c->addr[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
	return 0;
}

static void
parse_text(const char *text)
{
	struct cidr c, c2, before;
	const char *err = NULL;
	bool hb = false, hb2 = true;
	char buf[CIDR_STRLEN], *small;
	uint8_t a[16];
	unsigned max, len;

	struct cidr ref;
	int want = reference(text, &ref);

	memset(&c, 0xa5, sizeof(c));
	before = c;
	if (cidr_parse(text, &c, &hb, &err) < 0) {
		FUZZ_ASSERT(err != NULL && *err != '\0');
		FUZZ_ASSERT(memcmp(&c, &before, sizeof(c)) == 0);
		if (want == 0)
			fprintf(stderr,
			        "'%s': refused (%s), inet_pton takes it\n",
			        text, err);
		FUZZ_ASSERT(want != 0);
		return;
	}
	if (want != 0)
		fprintf(stderr, "'%s': taken, inet_pton refuses it\n", text);
	FUZZ_ASSERT(want == 0);
	FUZZ_ASSERT(memcmp(&c, &ref, sizeof(c)) == 0);
	for (const char *p = text; *p != '\0'; p++)
		FUZZ_ASSERT(strchr("0123456789abcdefABCDEF.:/", *p) != NULL);
	FUZZ_ASSERT(c.family == AF_INET || c.family == AF_INET6);
	max = c.family == AF_INET ? 32 : 128;
	FUZZ_ASSERT(c.bits <= max);
	for (unsigned i = c.bits; i < 128; i++)
		FUZZ_ASSERT(!bit_set(c.addr, i));

	cidr_format(&c, buf, sizeof(buf));
	len = (unsigned)strlen(buf);
	FUZZ_ASSERT(len > 2 && len < CIDR_STRLEN);
	err = NULL;
	if (cidr_parse(buf, &c2, &hb2, &err) != 0) {
		fprintf(stderr, "'%s' parsed, '%s' does not: %s\n", text, buf,
		        err);
		FUZZ_ASSERT(!"a formatted CIDR parses again");
	}
	FUZZ_ASSERT(!hb2);
	FUZZ_ASSERT(memcmp(&c, &c2, sizeof(c)) == 0);
	/* a buffer one byte short: cut, NUL-terminated, nothing past it */
	small = malloc(len);
	FUZZ_ASSERT(small != NULL);
	cidr_format(&c, small, len);
	FUZZ_ASSERT(strlen(small) == len - 1 &&
	            memcmp(small, buf, len - 1) == 0);
	free(small);

	/* the network address, the last one, the one just outside */
	matches(&c, c.addr, true);
	memcpy(a, c.addr, 16);
	for (unsigned i = c.bits; i < max; i++)
		a[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	matches(&c, a, true);
	if (c.bits > 0) {
		unsigned i = c.bits - 1u;
		memcpy(a, c.addr, 16);
		a[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
		matches(&c, a, false);
	}
}

/* The rows of the table are what the invariants above say. */
static void
check_table(struct climit *t, size_t nheld, size_t n, bool full,
            bool all_released)
{
	struct climit_row rows[TABLE + 1], some[TABLE];
	size_t k = climit_top(t, rows, TABLE + 1, 0), k2;
	unsigned sum = 0;

	FUZZ_ASSERT(climit_size(t) <= TABLE);
	FUZZ_ASSERT(k == climit_size(t));
	for (size_t i = 0; i < k; i++) {
		FUZZ_ASSERT(rows[i].cur <= MAXCONN);
		FUZZ_ASSERT(rows[i].in_period <= RATE);
		FUZZ_ASSERT(!all_released || rows[i].cur == 0);
		sum += rows[i].cur;
		if (full) {
			struct cidr c;
			bool hb = true;

			FUZZ_ASSERT(
			    cidr_parse(rows[i].net, &c, &hb, NULL) == 0 && !hb);
			FUZZ_ASSERT(c.bits == (c.family == AF_INET ? 24 : 64));
		}
		if (i > 0) {
			const struct climit_row *p = &rows[i - 1],
			                        *r = &rows[i];
			FUZZ_ASSERT(p->cur >= r->cur);
			FUZZ_ASSERT(p->cur > r->cur ||
			            p->in_period >= r->in_period);
			FUZZ_ASSERT(p->cur > r->cur ||
			            p->in_period > r->in_period ||
			            p->refused >= r->refused);
		}
	}
	FUZZ_ASSERT(sum <= nheld);
	if (!full)
		return;
	k2 = climit_top(t, some, n, 0);
	FUZZ_ASSERT(k2 == (n < k ? n : k));
	for (size_t i = 0; i < k2; i++) {
		FUZZ_ASSERT(strcmp(some[i].net, rows[i].net) == 0);
		FUZZ_ASSERT(some[i].cur == rows[i].cur &&
		            some[i].in_period == rows[i].in_period &&
		            some[i].refused == rows[i].refused);
	}
}

static void
run_table(const uint8_t *data, size_t size)
{
	struct climit *t = climit_new(TABLE, 24, 64, 1000);
	struct climit_ticket held[HELD_MAX];
	size_t nheld = 0;
	uint64_t now = 1000000;

	FUZZ_ASSERT(t != NULL);
	for (size_t i = 0; i < size; i++) {
		unsigned op = data[i] >> 6, arg = data[i] & 63;
		struct sockaddr_storage ss;
		struct climit_ticket tk;
		enum climit_verdict v;
		uint8_t a[16] = {0};
		size_t j;

		switch (op) {
		case 0:
		case 1:
			if (nheld == HELD_MAX)
				break;
			if (op == 0 && arg == 63) {
				struct sockaddr_un *un = (void *)&ss;
				memset(&ss, 0, sizeof(ss));
				un->sun_family = AF_UNIX;
			} else if (op == 0) {
				a[0] = 198;
				a[1] = 51;
				a[2] = (uint8_t)(arg & 15);
				a[3] = (uint8_t)(1 + (arg >> 4));
				make_sa(&ss, AF_INET, a, (arg & 32) != 0);
			} else {
				a[0] = 0x20;
				a[1] = 0x01;
				a[2] = 0x0d;
				a[3] = 0xb8;
				a[7] = (uint8_t)(arg & 15);
				a[15] = (uint8_t)(1 + (arg >> 4));
				make_sa(&ss, AF_INET6, a, false);
			}
			v = climit_admit(t, (struct sockaddr *)&ss, MAXCONN,
			                 RATE, now, &tk);
			FUZZ_ASSERT(v == CLIMIT_ADMIT || v == CLIMIT_MAXCONN ||
			            v == CLIMIT_RATE);
			if (v == CLIMIT_ADMIT)
				held[nheld++] = tk;
			else
				FUZZ_ASSERT(tk.slot == UINT32_MAX);
			if (ss.ss_family == AF_UNIX)
				FUZZ_ASSERT(v == CLIMIT_ADMIT &&
				            tk.slot == UINT32_MAX);
			break;
		case 2:
			if (nheld == 0)
				break;
			j = arg % nheld;
			tk = held[j];
			held[j] = held[--nheld];
			climit_release(t, &tk, now);
			break;
		default:
			if (arg == 63)
				now -= 5000;
			else
				now += arg * 50u;
			break;
		}
		check_table(t, nheld, 1 + i / 8 % TABLE, i % 8 == 7, false);
	}
	while (nheld > 0)
		climit_release(t, &held[--nheld], now);
	check_table(t, 0, TABLE, true, true);
	climit_unref(t);
}

int
fuzz_cidr(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);

	parse_text(text);
	free(text);
	run_table(data, size < OPS_MAX ? size : OPS_MAX);
	return 0;
}
