/* Frontends and their listening sockets: bind (before daemonizing, or by a
 * reload before it applies), accept on the main thread, and hold accepting
 * off at the global and frontend maxconn and during a descriptor shortage.
 * What to do with an accepted connection is the acceptor's owner's
 * business (its accept function). */
#ifndef LB_LISTENER_H
#define LB_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "cfg.h"
#include "climit.h"
#include "counters.h"
#include "pool.h"
#include "sock.h"

struct acceptor;

struct listener {
	struct frontend *fe;
	const struct cfg_addr *addr;
	evutil_socket_t fd; /* bound, until frontend_start */
	/* Its socket, set before the listener is published and never
	 * changed: what a takeover hands over (load-balancer(8), RESTART);
	 * read by the control thread. */
	evutil_socket_t sock;
	struct evconnlistener *evl;
	bool enabled;
	struct listener *from; /* reload: takes over this one's socket */
	struct acceptor *acc;
};

struct frontend {
	const struct cfg_frontend *conf;
	void *owner;        /* its configuration generation */
	struct backend *be; /* its backend, same generation */
	bool log_sessions;  /* global.log.sessions of its configuration */
	_Atomic(struct frontend *) successor; /* reload: same name */
	struct listener *listeners;
	size_t nlisteners;
	/* Counters, written by every worker thread. */
	atomic_uint cur_sess;
	atomic_ullong total_sess;
	atomic_ullong refused; /* unavailable_reply sent (or closed) */
	/* Refused at accept (load-balancer.conf(5), CLIENT LIMITS), by
	 * reason. */
	atomic_ullong refused_maxconn, refused_rate, refused_deny;
	/* client_limits with a limit on: its client-network table (a
	 * reload keeps the old one when its shape is the same); NULL:
	 * no limit. */
	struct climit *climit;
	atomic_ullong bytes_in, bytes_out; /* of its finished sessions */
};

/* Set up fe's listeners (not bound). */
void frontend_init(struct frontend *fe, const struct cfg_frontend *conf,
                   struct backend *be, bool log_sessions, void *owner);
/* Create, bind and listen on every socket of the frontend (before
 * daemonizing), or take the one inh holds for an address (NULL: none).
 * Returns 0, or -1 after logging what failed and why. */
int frontend_bind(struct frontend *fe, struct sock_inherit *inh);
/* Reload: like frontend_bind, but an address that one of the running
 * frontends (olds, nold) listens on is taken over at frontend_start
 * instead of bound again, so that no connection is refused.  Reads only
 * the configuration of olds.  On -1 (logged) frontend_free undoes it. */
int frontend_bind_reload(struct frontend *fe, struct frontend *olds,
                         size_t nold);
/* Main thread: attach the bound (or taken over) sockets to acc's loop,
 * disabled until acceptor_update.  Returns 0, or -1 when some address
 * does not listen (logged). */
int frontend_start(struct frontend *fe, struct acceptor *acc);
/* Main thread: close the listening sockets (graceful stop, reload). */
void frontend_close(struct frontend *fe);
/* Close and free the listeners (after frontend_close on the main thread
 * when they were started). */
void frontend_free(struct frontend *fe);
/* The frontend of the same name in the generation that replaced fe's. */
struct frontend *frontend_successor(const struct frontend *fe);
/* Following successors: the one whose counters count now. */
struct frontend *frontend_newest(const struct frontend *fe);

/* An accepted connection: fd is the callee's. */
typedef void (*accept_fn)(void *arg, struct frontend *fe, evutil_socket_t fd,
                          const struct sockaddr *sa, int salen);

/* The main thread's accepting: the frontends that accept now, the limits
 * (counters), the descriptor pause. */
struct acceptor *acceptor_new(struct event_base *base, struct counters *cnt,
                              accept_fn fn, void *arg);
void acceptor_free(struct acceptor *acc);
/* The frontends that accept from now on (start, reload). */
void acceptor_set(struct acceptor *acc, struct frontend *fes, size_t n);
/* Enable or disable accepting on every listener according to the global
 * and frontend maxconn, stopping and the descriptor pause. */
void acceptor_update(struct acceptor *acc);
/* accept() or a server socket failed for lack of descriptors: pause
 * accepting for a while (one warning per shortage).  Main thread. */
void acceptor_pause(struct acceptor *acc);
/* Close every listening socket (graceful stop, the end). */
void acceptor_close(struct acceptor *acc);
/* Warned about the shortage already (an accept worked since: no). */
bool acceptor_warned(const struct acceptor *acc);

#endif
