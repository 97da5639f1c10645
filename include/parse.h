/* Pure parsers for configuration values: durations and addresses. */
#ifndef LB_PARSE_H
#define LB_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Largest duration accepted: 365 days. */
#define LB_DURATION_MAX_MS (365ULL * 24 * 3600 * 1000)

/* "250ms" "5s" "1m" "1h" "14d" or a bare number of milliseconds.
 * Returns 0 and sets *ms, or -1 with *err set to a static message. */
int parse_duration(const char *text, uint64_t *ms, const char **err);

/* Split "IPv4:PORT", "[IPv6]:PORT" or "hostname:PORT" into host and port.
 * The port must be 1..65535.  Returns 0, or -1 with *err set. */
int parse_address(const char *text, char *host, size_t hostlen, uint16_t *port,
                  const char **err);

/* parse_address, then resolve: literals directly, host names through
 * getaddrinfo (first result).  Returns 0, or -1 with *err set (for a
 * resolver failure *err is gai_strerror's text). */
int resolve_address(const char *text, struct sockaddr_storage *ss,
                    socklen_t *sslen, const char **err);

/* "1.2.3.4:25" or "[::1]:25"; returns buf. */
char *format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
/* Just the address part: "1.2.3.4" or "::1"; returns buf. */
char *format_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t len);

#endif
