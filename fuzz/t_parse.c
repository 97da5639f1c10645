/* Duration and address parsers (src/parse.c).  The first byte sets the
 * host buffer size given to parse_address (1..LB_ADDR_MAX, allocated to
 * that exact size); the rest is the text, given to parse_duration,
 * parse_address and resolve_address (with the offline resolver of
 * fuzz/common.c).  What is accepted must be what load-balancer.conf(5),
 * SYNTAX says, and must survive a round trip: a duration printed back in
 * ms parses to the same value; a resolved address formatted with
 * format_sockaddr parses and resolves to the same socket address. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"
#include "fuzz.h"
#include "parse.h"

static void
duration(const char *text)
{
	const char *err = NULL;
	uint64_t ms = 12345, again = 0;
	char buf[32];

	if (parse_duration(text, &ms, &err) < 0) {
		FUZZ_ASSERT(err != NULL);
		FUZZ_ASSERT(ms == 12345); /* untouched on error */
		return;
	}
	FUZZ_ASSERT(ms <= LB_DURATION_MAX_MS);
	FUZZ_ASSERT(isdigit((unsigned char)text[0]));
	snprintf(buf, sizeof(buf), "%llums", (unsigned long long)ms);
	FUZZ_ASSERT(parse_duration(buf, &again, &err) == 0 && again == ms);
}

static void
address(const char *text, size_t hostlen)
{
	char *host = malloc(hostlen);
	const char *err = NULL;
	uint16_t port = 0;
	size_t n;

	FUZZ_ASSERT(host != NULL);
	if (parse_address(text, host, hostlen, &port, &err) < 0) {
		FUZZ_ASSERT(err != NULL);
		free(host);
		return;
	}
	n = strlen(host);
	FUZZ_ASSERT(n > 0 && n < hostlen);
	FUZZ_ASSERT(port >= 1);
	/* The host is the text before the port, inside [] for IPv6. */
	if (text[0] == '[') {
		FUZZ_ASSERT(strncmp(text + 1, host, n) == 0);
		FUZZ_ASSERT(text[n + 1] == ']' && text[n + 2] == ':');
	} else {
		FUZZ_ASSERT(strncmp(text, host, n) == 0 && text[n] == ':');
		FUZZ_ASSERT(strchr(host, ':') == NULL);
	}
	for (const char *p = host; *p != '\0'; p++)
		FUZZ_ASSERT(isalnum((unsigned char)*p) || strchr(".-_:%", *p));
	free(host);
}

static void
resolve(const char *text)
{
	struct sockaddr_storage ss, ss2;
	socklen_t len = 0, len2 = 0;
	const char *err = NULL;
	char buf[LB_SOCKADDR_STRLEN + 8];

	if (resolve_address(text, &ss, &len, &err) < 0) {
		FUZZ_ASSERT(err != NULL);
		return;
	}
	FUZZ_ASSERT(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	FUZZ_ASSERT(len == (ss.ss_family == AF_INET
	                        ? sizeof(struct sockaddr_in)
	                        : sizeof(struct sockaddr_in6)));
	format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf));
	FUZZ_ASSERT(strlen(buf) < LB_SOCKADDR_STRLEN);
	if (resolve_address(buf, &ss2, &len2, &err) != 0) {
		fprintf(stderr, "'%s' resolved, formatted '%s' does not: %s\n",
		        text, buf, err);
		FUZZ_ASSERT(!"a formatted address resolves again");
	}
	FUZZ_ASSERT(len2 == len);
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&ss;
		const struct sockaddr_in *b = (const void *)&ss2;
		FUZZ_ASSERT(a->sin_port == b->sin_port &&
		            a->sin_addr.s_addr == b->sin_addr.s_addr);
	} else {
		const struct sockaddr_in6 *a = (const void *)&ss;
		const struct sockaddr_in6 *b = (const void *)&ss2;
		FUZZ_ASSERT(a->sin6_port == b->sin6_port &&
		            memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0);
	}
}

int
fuzz_parse(const uint8_t *data, size_t size)
{
	size_t hostlen;
	char *text;

	if (size == 0)
		return 0;
	hostlen = 1 + data[0] % LB_ADDR_MAX;
	text = fuzz_cstr(data + 1, size - 1);
	duration(text);
	address(text, hostlen);
	address(text, LB_ADDR_MAX);
	resolve(text);
	free(text);
	return 0;
}
