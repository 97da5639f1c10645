/* Shared macros and limits. */
#ifndef LB_COMMON_H
#define LB_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define LB_PROGRAM "load-balancer"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Longest host name or address text we accept in the configuration. */
#define LB_ADDR_MAX 256

/* "IPv6]:port" text of a socket address: "[" + 45 + "]:" + 5 + NUL. */
#define LB_SOCKADDR_STRLEN 64

/* Upper bounds of configuration values. */
#define LB_WEIGHT_MAX 256
#define LB_MAXCONN_MAX 1000000
#define LB_RETRIES_MAX 100

/* Descriptors kept aside for logging, checks and the control socket. */
#define LB_FD_RESERVE 32
#define LB_WORKER_FDS 4 /* per event-loop thread: epoll, mailbox, spares */

/* Splicing pipes (2 descriptors each): in use at most, and kept spare.
 * Their descriptors are reserved on top of the sessions' own. */
#define LB_RELAY_PIPES 192
#define LB_RELAY_PIPE_POOL 64
#define LB_PIPE_FDS (2 * (LB_RELAY_PIPES + LB_RELAY_PIPE_POOL))

#endif
