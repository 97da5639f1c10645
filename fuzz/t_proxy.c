/* PROXY protocol header builder (src/proxy.c).  The input gives the two
 * socket addresses byte for byte (family included, so non-IP families and
 * IPv4-mapped IPv6 come up), the version and the size of the output
 * buffer (allocated to that exact size, so that AddressSanitizer sees any
 * write past it).  Every header built is decoded again here, by a reader
 * written from HAProxy's proxy-protocol.txt, and must carry the given
 * addresses and ports.  (The daemon itself reads no PROXY headers: this
 * reader is the only parser of PROXY input in the tree.) */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fuzz.h"
#include "proxy.h"

struct ip {
	int family;
	uint8_t a[16];
	uint16_t port;
};

/* What the header should say for sa (IPv4-mapped IPv6 as IPv4); 0 for a
 * family the protocol cannot carry. */
static int
expected(const struct sockaddr_storage *ss, struct ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		ip->family = AF_INET;
		memcpy(ip->a, &in->sin_addr, 4);
		ip->port = ntohs(in->sin_port);
		return 1;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		ip->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			ip->family = AF_INET;
			memcpy(ip->a, &in6->sin6_addr.s6_addr[12], 4);
		} else {
			ip->family = AF_INET6;
			memcpy(ip->a, &in6->sin6_addr, 16);
		}
		return 1;
	}
	return 0;
}

/* One v1 field up to the next space (or CR for the last). */
static const char *
field(const char *p, const char *end, char stop, char *out, size_t outlen)
{
	size_t n = 0;

	while (p < end && *p != stop) {
		FUZZ_ASSERT(*p != ' ' && *p != '\r' && *p != '\n');
		FUZZ_ASSERT(n + 1 < outlen);
		out[n++] = *p++;
	}
	FUZZ_ASSERT(p < end && n > 0);
	out[n] = '\0';
	return p + 1;
}

static uint16_t
port_of(const char *s)
{
	char *e;
	unsigned long v;

	/* Decimal, no leading zero (proxy-protocol.txt 2.1). */
	FUZZ_ASSERT(s[0] != '0' || s[1] == '\0');
	v = strtoul(s, &e, 10);
	FUZZ_ASSERT(*e == '\0' && v <= 65535);
	return (uint16_t)v;
}

static void
check_v1(const uint8_t *h, size_t n, const struct ip *s, const struct ip *d)
{
	const char *p = (const char *)h, *end = p + n;
	char proto[8], a[64], b[64], sp[8], dp[8];
	struct ip gs, gd;

	FUZZ_ASSERT(n <= 107);
	FUZZ_ASSERT(n >= 2 && h[n - 2] == '\r' && h[n - 1] == '\n');
	FUZZ_ASSERT(memcmp(p, "PROXY ", 6) == 0);
	p += 6;
	p = field(p, end, ' ', proto, sizeof(proto));
	p = field(p, end, ' ', a, sizeof(a));
	p = field(p, end, ' ', b, sizeof(b));
	p = field(p, end, ' ', sp, sizeof(sp));
	p = field(p, end, '\r', dp, sizeof(dp));
	FUZZ_ASSERT(p == end - 1 && *p == '\n');
	memset(&gs, 0, sizeof(gs));
	memset(&gd, 0, sizeof(gd));
	if (strcmp(proto, "TCP4") == 0)
		gs.family = gd.family = AF_INET;
	else {
		FUZZ_ASSERT(strcmp(proto, "TCP6") == 0);
		gs.family = gd.family = AF_INET6;
	}
	FUZZ_ASSERT(inet_pton(gs.family, a, gs.a) == 1);
	FUZZ_ASSERT(inet_pton(gd.family, b, gd.a) == 1);
	gs.port = port_of(sp);
	gd.port = port_of(dp);
	FUZZ_ASSERT(memcmp(&gs, s, sizeof(gs)) == 0);
	FUZZ_ASSERT(memcmp(&gd, d, sizeof(gd)) == 0);
}

static void
check_v2(const uint8_t *h, size_t n, const struct ip *s, const struct ip *d)
{
	size_t alen = s->family == AF_INET ? 4 : 16;
	size_t body;

	FUZZ_ASSERT(n >= 16);
	FUZZ_ASSERT(memcmp(h, proxy_v2_sig, 12) == 0);
	FUZZ_ASSERT(h[12] == 0x21); /* version 2, PROXY (never LOCAL) */
	FUZZ_ASSERT(h[13] == (s->family == AF_INET ? 0x11 : 0x21));
	body = (size_t)h[14] << 8 | h[15];
	FUZZ_ASSERT(n == 16 + body);
	FUZZ_ASSERT(body == 2 * alen + 4);
	FUZZ_ASSERT(memcmp(h + 16, s->a, alen) == 0);
	FUZZ_ASSERT(memcmp(h + 16 + alen, d->a, alen) == 0);
	FUZZ_ASSERT((h[16 + 2 * alen] << 8 | h[17 + 2 * alen]) == s->port);
	FUZZ_ASSERT((h[18 + 2 * alen] << 8 | h[19 + 2 * alen]) == d->port);
}

/* A family for one address: mostly IPv4/IPv6, sometimes others. */
static sa_family_t
family_of(uint8_t b)
{
	switch (b % 8) {
	case 0:
	case 1:
	case 2:
		return AF_INET;
	case 3:
	case 4:
	case 5:
		return AF_INET6;
	case 6:
		return AF_UNIX;
	default:
		return (sa_family_t)b;
	}
}

int
fuzz_proxy(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst;
	struct ip es, ed;
	enum proxy_proto v;
	const char *err = NULL;
	uint8_t *buf;
	size_t len, take;
	int n;

	if (size < 4)
		return 0;
	/* data[0] version (3: not one), data[1] buffer size, data[2] and
	 * data[3] the families; then the two sockaddr_storage, bytes after
	 * the family (a v4-mapped prefix helps the fuzzer reach that case). */
	v = (enum proxy_proto)(data[0] % 4);
	len = data[1] % (PROXY_HDR_MAX + 16);
	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	src.ss_family = family_of(data[2]);
	dst.ss_family = family_of(data[3]);
	data += 4;
	size -= 4;
	take = size < sizeof(src) - 2 ? size : sizeof(src) - 2;
	memcpy((uint8_t *)&src + 2, data, take);
	data += take;
	size -= take;
	take = size < sizeof(dst) - 2 ? size : sizeof(dst) - 2;
	memcpy((uint8_t *)&dst + 2, data, take);

	buf = malloc(len > 0 ? len : 1);
	if (buf == NULL)
		abort();
	n = proxy_header(v, (const struct sockaddr *)&src,
	                 (const struct sockaddr *)&dst, buf, len, &err);
	if (n < 0) {
		FUZZ_ASSERT(n == -1 && err != NULL);
		free(buf);
		return 0;
	}
	FUZZ_ASSERT(n > 0 && (size_t)n <= len && n <= PROXY_HDR_MAX);
	FUZZ_ASSERT(v == PP_V1 || v == PP_V2);
	FUZZ_ASSERT(expected(&src, &es) && expected(&dst, &ed));
	FUZZ_ASSERT(es.family == ed.family);
	if (v == PP_V1)
		check_v1(buf, (size_t)n, &es, &ed);
	else
		check_v2(buf, (size_t)n, &es, &ed);
	free(buf);
	return 0;
}
