/* What the fuzz targets share: failure, quiet logging, input copies, the
 * target table, and a resolver that never leaves the machine. */
#include "config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include "fuzz.h"
#include "log.h"

const struct fuzz_target fuzz_targets[] = {
    {"smtp_reply", fuzz_smtp_reply},
    {"proxy", fuzz_proxy},
    {"cfg", fuzz_cfg},
    {"ctl", fuzz_ctl},
    {"haproxy_import", fuzz_haproxy_import},
    {"parse", fuzz_parse},
    {"report", fuzz_report},
    {"cidr", fuzz_cidr},
    {"agent", fuzz_agent},
    {"statefile", fuzz_statefile},
    {NULL, NULL},
};

void
fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
	abort();
}

void
fuzz_quiet(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	log_configure(false, LOG_DAEMON, "fuzz", LOG_EMERG, false);
}

char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Host names in a configuration are resolved with getaddrinfo: here,
 * without any DNS query (a fuzzer must not wait for a resolver, nor send
 * anything), numeric addresses and "localhost" resolve, every other name
 * is unknown.  These definitions replace the C library's in the programs
 * linked with this file (the fuzz targets and their unit test). */
int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
            struct addrinfo **res)
{
	struct {
		struct addrinfo ai;
		struct sockaddr_storage ss;
	} * r;
	struct in_addr a4;
	struct in6_addr a6;
	unsigned long port = 0;
	int family = hints != NULL ? hints->ai_family : AF_UNSPEC;

	*res = NULL;
	if (service != NULL) {
		char *end;
		port = strtoul(service, &end, 10);
		if (*end != '\0' || port > 65535)
			return EAI_SERVICE;
	}
	if (node == NULL || strcmp(node, "localhost") == 0)
		node = "127.0.0.1";
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return EAI_MEMORY;
	if (family != AF_INET6 && inet_pton(AF_INET, node, &a4) == 1) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)&r->ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		in->sin_addr = a4;
		r->ai.ai_family = AF_INET;
		r->ai.ai_addrlen = sizeof(*in);
	} else if (family != AF_INET && inet_pton(AF_INET6, node, &a6) == 1) {
		struct sockaddr_in6 *in6 =
		    (struct sockaddr_in6 *)(void *)&r->ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		in6->sin6_addr = a6;
		r->ai.ai_family = AF_INET6;
		r->ai.ai_addrlen = sizeof(*in6);
	} else {
		free(r);
		return EAI_NONAME;
	}
	r->ai.ai_socktype = hints != NULL ? hints->ai_socktype : SOCK_STREAM;
	r->ai.ai_protocol = hints != NULL ? hints->ai_protocol : 0;
	r->ai.ai_addr = (struct sockaddr *)&r->ss;
	*res = &r->ai;
	return 0;
}

void
freeaddrinfo(struct addrinfo *ai)
{
	/* One allocation per result (never chained above). */
	free(ai);
}
