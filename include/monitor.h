/* The health and agent checks of a configuration generation
 * (load-balancer.conf(5), HEALTH CHECKS, AGENT CHECK), on the control thread:
 * one check per checked server, one agent check per server with an agent port,
 * the backends' STARTTLS contexts, the first checks spread over the first
 * interval, each result given to the pool and what follows carried out
 * (work.c), the next check scheduled from the server's health state with
 * a little jitter. */
#ifndef LB_MONITOR_H
#define LB_MONITOR_H

#include <event2/event.h>

#include "gen.h"
#include "pool.h"
#include "work.h"

struct monitor;

/* The checks of g (built, not running) on base.  The TLS client contexts
 * read their CA files here (before any chroot).  NULL after logging why
 * (TLS set-up, or out of memory). */
struct monitor *monitor_new(struct gen *g, struct event_base *base,
                            struct pool *pool, const struct work_env *env);
/* Start the checks, spread over their first interval. */
void monitor_start(struct monitor *mon);
/* Stop every check and free (a reload's old generation, the end). */
void monitor_free(struct monitor *mon);
/* The check part of a pool_work (lbctl disable/enable): stop srv's check,
 * or run it now. */
void monitor_work(struct monitor *mon, const struct pool_work *w);

#endif
