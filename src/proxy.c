/* PROXY protocol v1 and v2 headers (HAProxy's proxy-protocol.txt). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"

const uint8_t proxy_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* An address reduced to what the header carries. */
struct pp_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t ip[16];
	uint16_t port; /* host order */
};

static int
pp_addr_of(const struct sockaddr *sa, struct pp_addr *a)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in =
		    (const struct sockaddr_in *)(const void *)sa;
		a->family = AF_INET;
		memcpy(a->ip, &in->sin_addr, 4);
		a->port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)(const void *)sa;
		a->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			a->family = AF_INET;
			memcpy(a->ip, &in6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = AF_INET6;
			memcpy(a->ip, &in6->sin6_addr, 16);
		}
		return 0;
	}
	return -1;
}

static int
build_v1(const struct pp_addr *s, const struct pp_addr *d, uint8_t *buf,
         size_t len, const char **err)
{
	char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN];
	int n;

	if (inet_ntop(s->family, s->ip, sip, sizeof(sip)) == NULL ||
	    inet_ntop(d->family, d->ip, dip, sizeof(dip)) == NULL) {
		*err = "cannot format the addresses";
		return -1;
	}
	n = snprintf((char *)buf, len, "PROXY %s %s %s %u %u\r\n",
	             s->family == AF_INET ? "TCP4" : "TCP6", sip, dip,
	             (unsigned)s->port, (unsigned)d->port);
	if (n < 0 || (size_t)n >= len || n > 107) {
		*err = "header too long";
		return -1;
	}
	return n;
}

static int
build_v2(const struct pp_addr *s, const struct pp_addr *d, uint8_t *buf,
         size_t len, const char **err)
{
	size_t alen = s->family == AF_INET ? 4 : 16;
	size_t body = 2 * alen + 4;
	uint8_t *p = buf;

	if (len < 16 + body) {
		*err = "header too long";
		return -1;
	}
	memcpy(p, proxy_v2_sig, sizeof(proxy_v2_sig));
	p += sizeof(proxy_v2_sig);
	*p++ = 0x21;                               /* version 2, PROXY */
	*p++ = s->family == AF_INET ? 0x11 : 0x21; /* TCP over v4 / v6 */
	*p++ = (uint8_t)(body >> 8);
	*p++ = (uint8_t)(body & 0xff);
	memcpy(p, s->ip, alen);
	p += alen;
	memcpy(p, d->ip, alen);
	p += alen;
	*p++ = (uint8_t)(s->port >> 8);
	*p++ = (uint8_t)(s->port & 0xff);
	*p++ = (uint8_t)(d->port >> 8);
	*p++ = (uint8_t)(d->port & 0xff);
	return (int)(p - buf);
}

int
proxy_header(enum proxy_proto v, const struct sockaddr *src,
             const struct sockaddr *dst, uint8_t *buf, size_t len,
             const char **err)
{
	struct pp_addr s, d;

	if (pp_addr_of(src, &s) < 0 || pp_addr_of(dst, &d) < 0) {
		*err = "not an IPv4 or IPv6 connection";
		return -1;
	}
	if (s.family != d.family) {
		*err = "source and destination families differ";
		return -1;
	}
	switch (v) {
	case PP_V1:
		return build_v1(&s, &d, buf, len, err);
	case PP_V2:
		return build_v2(&s, &d, buf, len, err);
	case PP_NONE:
		break;
	}
	*err = "no PROXY protocol version";
	return -1;
}

const char *
proxy_proto_name(enum proxy_proto v)
{
	switch (v) {
	case PP_V1:
		return "v1";
	case PP_V2:
		return "v2";
	case PP_NONE:
		break;
	}
	return "none";
}
