/* Snapshots for the views (see snapshot.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

int
snapshot_take(const struct snap_src *src, struct snapshot *s)
{
	const struct gen *g = *src->cur;
	const struct counters *c = src->cnt;

	memset(s, 0, sizeof(*s));
	s->cfg = g->cfg;
	s->now = time(NULL);
	s->started = c->started;
	s->cur_sess = atomic_load(&c->cur_sess);
	s->max_sess = atomic_load(&c->max_sess);
	s->total_sess = atomic_load(&c->total_sess);
	s->reloads = atomic_load(&c->reloads);
	s->stopping = atomic_load(&c->stopping);
	s->nfrontends = g->nfrontends;
	s->nworkers = src->workers != NULL ? src->workers->n : 0;
	s->frontends =
	    calloc(g->nfrontends ? g->nfrontends : 1, sizeof(*s->frontends));
	s->worker_cur =
	    calloc(s->nworkers ? s->nworkers : 1, sizeof(*s->worker_cur));
	s->worker_total =
	    calloc(s->nworkers ? s->nworkers : 1, sizeof(*s->worker_total));
	if (s->frontends == NULL || s->worker_cur == NULL ||
	    s->worker_total == NULL || pool_snapshot(src->pool, &s->pool) < 0) {
		snapshot_free(s);
		return -1;
	}
	for (size_t i = 0; i < g->nfrontends; i++) {
		const struct frontend *fe = &g->frontends[i];
		struct snap_frontend *o = &s->frontends[i];

		o->conf = fe->conf;
		o->cur = atomic_load(&fe->cur_sess);
		o->total = atomic_load(&fe->total_sess);
		o->refused = atomic_load(&fe->refused);
		o->refused_maxconn = atomic_load(&fe->refused_maxconn);
		o->refused_rate = atomic_load(&fe->refused_rate);
		o->refused_deny = atomic_load(&fe->refused_deny);
		o->bytes_in = atomic_load(&fe->bytes_in);
		o->bytes_out = atomic_load(&fe->bytes_out);
	}
	for (unsigned w = 0; w < s->nworkers; w++) {
		s->worker_cur[w] = workers_sessions(src->workers, w);
		s->worker_total[w] = workers_total(src->workers, w);
	}
	for (size_t b = 0; b < s->pool.nbackends; b++) {
		const struct pool_snap_backend *be = &s->pool.backends[b];

		s->servers += (unsigned)be->nservers;
		s->servers_alive += be->active + be->backup;
	}
	return 0;
}

void
snapshot_free(struct snapshot *s)
{
	pool_snap_free(&s->pool);
	free(s->frontends);
	free(s->worker_cur);
	free(s->worker_total);
	memset(s, 0, sizeof(*s));
}
