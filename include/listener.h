/* Frontends and their listening sockets: bind, accept, pause at maxconn
 * and on descriptor exhaustion, resume below. */
#ifndef LB_LISTENER_H
#define LB_LISTENER_H

#include <event2/listener.h>
#include <event2/event.h>

#include "common.h"
#include "cfg.h"

struct listener {
	struct frontend *fe;
	const struct cfg_addr *addr;
	evutil_socket_t fd;
	struct evconnlistener *evl;
	bool enabled;
	struct listener *from; /* reload: takes over this one's socket */
	bool taken;            /* reload: a new listener takes this socket */
};

struct frontend {
	const struct cfg_frontend *conf;
	struct rt *rt;
	struct backend *be;
	struct listener *listeners;
	size_t nlisteners;
	unsigned cur_sess;
	uint64_t total_sess;
	uint64_t refused;             /* unavailable_reply sent (or closed) */
	uint64_t bytes_in, bytes_out; /* of its finished sessions */
};

/* Create, bind and listen on every socket of the frontend (before
 * daemonizing).  Returns 0, or -1 after logging what failed and why. */
int frontend_bind(struct frontend *fe);
/* Reload: like frontend_bind, but an address that an old frontend
 * (olds, nold) listens on is taken over instead of bound again, so no
 * connection is refused.  On -1 (logged) frontend_free undoes it. */
int frontend_bind_reload(struct frontend *fe, struct frontend *olds,
                         size_t nold);
/* Attach the bound (or taken over) sockets to the event loop. */
int frontend_start(struct frontend *fe, struct event_base *base);
/* Close the listening sockets (graceful stop). */
void frontend_close(struct frontend *fe);
void frontend_free(struct frontend *fe);

/* Enable or disable accepting on every listener according to the global
 * and frontend maxconn and the descriptor pause. */
void listeners_update(struct rt *rt);
/* Would listeners_update change anything?  (Worker threads ask before
 * waking the main thread, which owns the listeners.) */
bool listeners_stale(const struct rt *rt);

#endif
