/* PROXY protocol headers (v1 text, v2 binary), the one place that builds
 * them: the relay sends one for the client, health checks one for their
 * own connection.  Only the PROXY command is built: never UNKNOWN or
 * LOCAL (load-balancer.conf(5), HEALTH CHECKS). */
#ifndef LB_PROXY_H
#define LB_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"

/* v1: "PROXY TCP6 " + 2 x 39 + 2 x 5 + 3 spaces + CRLF = 104 (limit 107);
 * v2: 16 + 36 = 52. */
#define PROXY_HDR_MAX 108

/* The v2 signature, 12 bytes. */
extern const uint8_t proxy_v2_sig[12];

/* Build the header of version v (PP_V1 or PP_V2) for a TCP connection
 * from src to dst: src is the client (or the check's own source), dst the
 * address it connected to.  IPv4-mapped IPv6 addresses are written as
 * IPv4.  Returns the header's length (> 0) in buf, or -1 with *err set
 * when the pair cannot be expressed (not IPv4/IPv6, families differ, no
 * room, PP_NONE). */
int proxy_header(enum proxy_proto v, const struct sockaddr *src,
                 const struct sockaddr *dst, uint8_t *buf, size_t len,
                 const char **err);

/* "none", "v1", "v2". */
const char *proxy_proto_name(enum proxy_proto v);

#endif
