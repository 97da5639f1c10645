/* The status HTTP server (global.stats_listen, SPEC section 3), on
 * libevent's evhttp:
 *   /          HTML status page (no external assets, refreshes itself)
 *   /metrics   Prometheus text exposition format
 *   /timeline  SVG health timeline (?since=DURATION, default 24h)
 *   /health    200 when every backend has a server UP, else 503
 * With global.stats_auth every request needs HTTP basic authentication.
 * Handlers read rt's current objects at request time (a reload replaces
 * them), so nothing is cached across requests. */
#ifndef LB_STATS_H
#define LB_STATS_H

#include <event2/event.h>

#include "common.h"

/* Bounds of the HTTP server. */
#define STATS_TIMEOUT_S 10         /* idle / slow request */
#define STATS_MAX_HEADERS 8192     /* request line + headers */
#define STATS_MAX_BODY 1024        /* GET and HEAD only */
#define STATS_REFRESH_S 10         /* the page's auto-refresh */
#define STATS_FILE_TAIL (1 << 20)  /* health-log bytes read per picture */
#define STATS_ACCEPT_PAUSE_MS 1000 /* after EMFILE and the like */
#define STATS_DEFAULT_WINDOW_MS (24LL * 3600 * 1000)

struct stats;

/* Create, bind and listen on global.stats_listen (before daemonizing).
 * Returns NULL after logging one line saying what failed and why. */
struct stats *stats_bind(struct rt *rt);
/* Serve on base.  Returns 0, or -1 after logging. */
int stats_start(struct stats *st, struct event_base *base);
void stats_free(struct stats *st);

#endif
