/* Restarts that refuse no connection (load-balancer(8), RESTART): a new
 * daemon asks the running one, over its control socket, for its listening
 * sockets (SCM_RIGHTS, like HAProxy's -x), binds with them, and once it
 * serves tells the old one, which then releases the pidfile and stops as
 * on SIGTERM (sessions finish within global.grace).  The sockets stay open
 * in between, so their queues of connections not accepted yet go on.
 *
 * The exchange, on the control socket:
 *   new: "_getsocks\n"
 *   old: "fds N\n", then N one-byte messages, each with one descriptor
 *        (or "error: ...\n\n")
 *   new: "_takeover_done\n"          once it serves
 *   old: "ok: ...\n\n"                pidfile released, stopping
 * A new daemon that closes the connection without "_takeover_done" (it
 * failed to start) leaves the old one serving as before. */
#ifndef LB_TAKEOVER_H
#define LB_TAKEOVER_H

#include <stddef.h>
#include <sys/types.h>

#include "sock.h"

#define TAKEOVER_TIMEOUT_S 10

/* --- the new daemon ---------------------------------------------------- */

/* Connect to the daemon answering on path and receive its listening
 * sockets into inh.  Returns the connection (for takeover_finish), or -1
 * with a message in err. */
int takeover_fetch(const char *path, struct sock_inherit *inh, char *err,
                   size_t errlen);
/* This daemon serves: tell the old one and wait for its answer (it has
 * released the pidfile when it answers).  Closes conn.  Returns 0, or -1
 * with a message in err. */
int takeover_finish(int conn, char *err, size_t errlen);

/* --- the running daemon ------------------------------------------------ */

/* Send the n sockets on the connection sock (non-blocking, nothing
 * queued on it): "fds N\n" and one message per socket.  Returns 0, or
 * -1 with errno set. */
int takeover_send(int sock, const int *fds, size_t n);
/* The pid of the process at the other end of sock, or 0. */
pid_t takeover_peer_pid(int sock);

#endif
