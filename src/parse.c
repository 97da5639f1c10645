/* Durations and addresses, as written in the configuration. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/util.h>

#include "common.h"
#include "parse.h"

int
parse_duration(const char *text, uint64_t *ms, const char **err)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
	    {"", 1},          {"ms", 1},          {"s", 1000},
	    {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
	};
	const char *p = text;
	uint64_t v = 0;

	if (text == NULL || *text == '\0') {
		*err = "empty duration";
		return -1;
	}
	if (!isdigit((unsigned char)*p)) {
		*err = "a duration is a number with an optional unit "
		       "(ms, s, m, h, d)";
		return -1;
	}
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10) {
			*err = "duration too large";
			return -1;
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > LB_DURATION_MAX_MS / units[i].mult) {
			*err = "duration too large (at most 365d)";
			return -1;
		}
		*ms = v * units[i].mult;
		return 0;
	}
	*err = "unknown duration unit (use ms, s, m, h or d)";
	return -1;
}

int
parse_address(const char *text, char *host, size_t hostlen, uint16_t *port,
              const char **err)
{
	const char *colon, *hstart, *hend, *pstart;
	char *end;
	unsigned long pv;
	size_t n;

	if (text == NULL || *text == '\0') {
		*err = "empty address";
		return -1;
	}
	if (text[0] == '[') {
		hstart = text + 1;
		hend = strchr(hstart, ']');
		if (hend == NULL) {
			*err = "missing ']' after IPv6 address";
			return -1;
		}
		if (hend[1] != ':') {
			*err = "missing :PORT after ']'";
			return -1;
		}
		pstart = hend + 2;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			*err = "missing :PORT";
			return -1;
		}
		if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
			*err = "an IPv6 address must be written [ADDR]:PORT";
			return -1;
		}
		hstart = text;
		hend = colon;
		pstart = colon + 1;
	}
	n = (size_t)(hend - hstart);
	if (n == 0) {
		*err = "empty host";
		return -1;
	}
	if (n >= hostlen) {
		*err = "host name too long";
		return -1;
	}
	if (!isdigit((unsigned char)*pstart)) {
		*err = "the port must be a number 1-65535";
		return -1;
	}
	errno = 0;
	pv = strtoul(pstart, &end, 10);
	if (errno != 0 || *end != '\0' || pv == 0 || pv > 65535) {
		*err = "the port must be a number 1-65535";
		return -1;
	}
	memcpy(host, hstart, n);
	host[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];
		if (!(isalnum(c) || c == '.' || c == '-' || c == '_' ||
		      c == ':' || c == '%')) {
			*err = "invalid character in host";
			return -1;
		}
	}
	if (text[0] == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			*err = "invalid IPv6 address";
			return -1;
		}
	}
	*port = (uint16_t)pv;
	return 0;
}

int
resolve_address(const char *text, struct sockaddr_storage *ss, socklen_t *sslen,
                const char **err)
{
	char host[LB_ADDR_MAX];
	char portstr[8];
	uint16_t port;
	struct evutil_addrinfo hints, *res = NULL;
	int r;

	if (parse_address(text, host, sizeof(host), &port, err) < 0)
		return -1;
	memset(ss, 0, sizeof(*ss));
	/* Literals first: no resolver involved. */
	{
		int len = (int)sizeof(*ss);
		if (evutil_parse_sockaddr_port(text, (struct sockaddr *)ss,
		                               &len) == 0) {
			*sslen = (socklen_t)len;
			return 0;
		}
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	snprintf(portstr, sizeof(portstr), "%u", port);
	r = evutil_getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		*err = evutil_gai_strerror(r);
		return -1;
	}
	if (res == NULL || res->ai_addrlen > sizeof(*ss)) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		*err = "no usable address";
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = (socklen_t)res->ai_addrlen;
	evutil_freeaddrinfo(res);
	return 0;
}

char *
format_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else {
		snprintf(buf, len, "unknown");
		return buf;
	}
	if (evutil_inet_ntop(sa->sa_family, a, buf, len) == NULL)
		snprintf(buf, len, "unknown");
	return buf;
}

char *
format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	format_sockaddr_ip(sa, ip, sizeof(ip));
	if (sa->sa_family == AF_INET)
		snprintf(buf, len, "%s:%u", ip,
		         ntohs(((const struct sockaddr_in *)(const void *)sa)
		                   ->sin_port));
	else if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip,
		         ntohs(((const struct sockaddr_in6 *)(const void *)sa)
		                   ->sin6_port));
	else
		snprintf(buf, len, "unknown");
	return buf;
}
