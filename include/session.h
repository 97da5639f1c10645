/* A relayed client session: client <-> server bufferevents, back-pressure,
 * half-close, idle timeouts, connect retries, the queue, the 421, and the
 * one close path that writes the session log line (SPEC 5.2). */
#ifndef LB_SESSION_H
#define LB_SESSION_H

#include <sys/queue.h>
#include <event2/util.h>

#include "common.h"

enum session_end {
	END_CLIENT_CLOSE,
	END_SERVER_CLOSE,
	END_CLIENT_TIMEOUT,
	END_SERVER_TIMEOUT,
	END_SERVER_DOWN,
	END_NO_SERVER,
	END_QUEUE_TIMEOUT,
	END_CONNECT_FAILED,
	END_SHUTDOWN,
};

const char *session_end_name(enum session_end end);

/* Take an accepted client connection. */
void session_accept(struct frontend *fe, evutil_socket_t fd,
                    const struct sockaddr *sa, int salen);
/* The backend queue offers a slot to a waiting session: returns true when
 * the session took a server and left the queue. */
bool session_try_dequeue(struct session *s);
/* Close the sessions of one server (shutdown-sessions, lbctl); returns
 * how many. */
unsigned session_close_server(struct server *srv, enum session_end end);
/* Reload, after the new objects were swapped in: each session's frontend
 * moves to the frontend of the same name, and its backend (with its
 * server) to the backend and server of the same names, independently;
 * what has no successor stays on the retired objects, pinning old (its
 * refs).  Queued sessions whose backend is gone get unavailable_reply.
 * Returns how many sessions still use a retired object. */
unsigned session_migrate_all(struct rt *rt, struct rt_gen *old);
/* Close every session now (end of grace, SIGINT); the sessions of other
 * threads are asked to (their worker's mailbox). */
void session_close_all(struct rt *rt, enum session_end end);
/* Ask s's worker thread for something (OP_* in session.c), under the
 * lock; end is the end for a refusal or close. */
void session_post(struct session *s, unsigned op, enum session_end end);
/* A worker's mailbox has mail (struct worker's wake event). */
void session_mail_cb(evutil_socket_t fd, short what, void *arg);

#endif
