/* The status HTTP server (global.stats_listen; load-balancer.conf(5),
 * GLOBAL), on libevent's evhttp, on the control thread:
 *   /          HTML status page (no external assets, refreshes itself)
 *   /metrics   Prometheus text exposition format
 *   /timeline  SVG health timeline (?since=DURATION, default 24h)
 *   /health    200 when every backend has a server that takes sessions,
 *              else 503
 * With global.stats_auth every request needs HTTP basic authentication.
 * Every request renders from a fresh snapshot (a reload replaces the
 * objects), so nothing is cached across requests. */
#ifndef LB_STATS_H
#define LB_STATS_H

#include <event2/event.h>

#include "cfg.h"
#include "healthlog.h"
#include "snapshot.h"
#include "sock.h"

/* Bounds of the HTTP server. */
#define STATS_TIMEOUT_S 10         /* idle / slow request */
#define STATS_MAX_HEADERS 8192     /* request line + headers */
#define STATS_MAX_BODY 1024        /* GET and HEAD only */
#define STATS_ACCEPT_PAUSE_MS 1000 /* after EMFILE and the like */
#define STATS_DEFAULT_WINDOW_MS (24LL * 3600 * 1000)

struct stats_env {
	struct snap_src src;
	struct healthlog *hlog;
};

struct stats;

/* Create, bind and listen on g->stats_listen (before daemonizing), or
 * take the socket inh holds for it (NULL: none).  Returns NULL after
 * logging one line saying what failed and why. */
struct stats *stats_bind(const struct cfg_global *g, struct sock_inherit *inh);
/* Its listening socket (what a takeover hands over), or -1. */
int stats_sock(const struct stats *st);
/* Serve on base with env.  Returns 0, or -1 after logging. */
int stats_start(struct stats *st, struct event_base *base,
                const struct stats_env *env);
void stats_free(struct stats *st);

#endif
