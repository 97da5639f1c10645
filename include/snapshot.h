/* A copy of what the status page, /metrics, /health and lbctl show, taken
 * in one go: the pool's state under its lock (pool_snapshot), the
 * frontends', the workers' and the global counters (atomics).  Rendering
 * then works on the copy, with no lock held. */
#ifndef LB_SNAPSHOT_H
#define LB_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "counters.h"
#include "gen.h"
#include "pool.h"
#include "worker.h"

/* Where a snapshot is taken from (the control thread's view). */
struct snap_src {
	struct pool *pool;
	struct counters *cnt;
	struct gen *const *cur; /* the running generation */
	struct workers *workers;
};

struct snap_frontend {
	const struct cfg_frontend *conf;
	unsigned cur;
	uint64_t total, refused, bytes_in, bytes_out;
	/* Refused at accept, by reason (load-balancer.conf(5), CLIENT
	 * LIMITS). */
	uint64_t refused_maxconn, refused_rate, refused_deny;
};

struct snapshot {
	const struct cfg *cfg;
	struct pool_snap pool;
	struct snap_frontend *frontends;
	size_t nfrontends;
	unsigned cur_sess, max_sess, reloads;
	uint64_t total_sess;
	bool stopping;
	time_t started, now;
	unsigned nworkers;
	unsigned *worker_cur;
	uint64_t *worker_total;
	/* Servers: all, and alive (UP or DRAIN). */
	unsigned servers, servers_alive;
};

/* Returns 0, or -1 when out of memory. */
int snapshot_take(const struct snap_src *src, struct snapshot *s);
void snapshot_free(struct snapshot *s);

#endif
