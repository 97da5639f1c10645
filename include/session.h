/* A relayed client session (load-balancer.conf(5), RELAY): server choice, the
 * queue, connect and retries, the relay, the idle timeouts, the
 * unavailable_reply, and the one close path that writes the session log
 * line.
 *
 * A session belongs to one event-loop thread (its sess_ctx, a worker) and
 * only that thread touches it.  What other threads want of it arrives in
 * that thread's mailbox: its start (the main thread accepts), the slot it
 * waited for (whoever freed it), closing a server's sessions or all of
 * them, a reload's move to the new objects. */
#ifndef LB_SESSION_H
#define LB_SESSION_H

#include <stdatomic.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "counters.h"
#include "listener.h"
#include "mailbox.h"
#include "pool.h"
#include "relay.h"

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
	END_CLIENT_LIMIT,    /* client_limits refused it at accept */
	END_DENIED,          /* deny / allow refused it at accept */
	END_GREETING_FAILED, /* every attempt failed at the greeting */
};

const char *session_end_name(enum session_end end);

/* What a session asks of the main thread (its mail's ops). */
enum {
	MAIN_LISTENERS = 1, /* a session ended: accept again? */
	MAIN_PAUSE = 2,     /* no descriptor for a server socket */
	MAIN_EXIT = 4,      /* stopping, and the last session ended */
};

/* Shared by every thread, set once at start. */
struct sess_env {
	struct pool *pool;
	struct counters *cnt;
	struct mailbox *main_mb;
	struct mail *main_mail; /* its ops: MAIN_* */
	/* Carries out what a session's pool call left to do (passive
	 * health marking a server DOWN: the event, shutdown-sessions, the
	 * grants), on the session's thread.  NULL: the grants only. */
	void (*apply)(void *arg, struct pool_work *w);
	void *apply_arg;
};

TAILQ_HEAD(session_list, session);

/* One event-loop thread's sessions. */
struct sess_ctx {
	const struct sess_env *env;
	unsigned id;
	struct event_base *base;
	struct relay_ctx *relay;
	struct mailbox *mb;
	struct session_list sessions; /* its own thread's only */
	atomic_uint nsess;            /* sessions it owns (the hand-out) */
	atomic_ullong total;          /* sessions it was given */
};

/* An accepted connection for ctx's thread; called on the accepting
 * thread, which is ctx's own when own is true (the session starts at
 * once) and another one's otherwise (through ctx's mailbox).  The counts
 * (global, frontend, ctx) are taken here. */
void session_accept(struct sess_ctx *ctx, bool own, struct frontend *fe,
                    evutil_socket_t fd, const struct sockaddr *sa, int salen);

/* ctx's thread: close the sessions holding a slot of srv (or of an older
 * object that srv succeeded); returns how many. */
unsigned session_close_server(struct sess_ctx *ctx, const struct server *srv,
                              enum session_end end);
/* ctx's thread: close every session (end of grace, SIGINT). */
void session_close_all(struct sess_ctx *ctx, enum session_end end);
/* ctx's thread, after a reload: each session's frontend moves to the one
 * of the same name, its backend and server to those of the same names
 * (and address), independently; what has no successor stays on the
 * retired objects.  Returns how many sessions stay on a retired object. */
unsigned session_migrate(struct sess_ctx *ctx);

/* Any thread: tell the waiters of w (their sessions) what they were given
 * (through their threads' mailboxes). */
void session_deliver_grants(struct pool_work *w);

#endif
