/* Health checks of a generation (see monitor.h). */
#include "config.h"

#include <stdlib.h>

#include "agent.h"
#include "check.h"
#include "log.h"
#include "monitor.h"
#include "tls.h"

struct probe {
	struct monitor *mon;
	struct server *srv;
	struct check *chk;   /* its health check, or NULL */
	struct check *agent; /* its agent check, or NULL */
	bool run;            /* scheduled at start (not in maintenance) */
};

struct monitor {
	struct gen *gen;
	struct pool *pool;
	const struct work_env *env;
	struct event_base *base;
	SSL_CTX **tls;         /* per backend, NULL without STARTTLS */
	struct probe **probes; /* per backend, per server (NULL: none) */
	size_t nbackends;
};

/* Up to 1/20 of the interval later, so that checks of many servers
 * drift apart instead of firing together. */
static uint64_t
jittered(uint64_t ms)
{
	return ms + (ms >= 20 ? (uint64_t)random() % (ms / 20) : 0);
}

static void
probe_result(void *arg, const struct check_result *res)
{
	struct probe *pr = arg;
	struct pool_work w;

	pool_work_init(&w);
	pool_check_result(pr->mon->pool, pr->srv, res, &w);
	work_apply(pr->mon->env, &w);
	if (!w.check_next)
		return; /* in maintenance */
	check_schedule(pr->chk, jittered(w.next_ms));
}

static void
agent_result(void *arg, const struct check_result *res)
{
	struct probe *pr = arg;
	struct agent_reply r;
	struct pool_work w;
	char err[128];
	bool ok = false;

	if (res->pass)
		ok = agent_parse(res->reply, res->reply_len, &r, err,
		                 sizeof(err)) == 0;
	else
		snprintf(err, sizeof(err), "%s",
		         res->reason != NULL ? res->reason : "failed");
	pool_work_init(&w);
	pool_agent_result(pr->mon->pool, pr->srv, ok ? &r : NULL, err,
	                  res->duration_ms, &w);
	work_apply(pr->mon->env, &w);
	/* The agent's maint stops the health check, its ready runs it. */
	monitor_work(pr->mon, &w);
	if (!pool_agent_paused(pr->mon->pool, pr->srv))
		check_schedule(pr->agent,
		               jittered(backend_conf(server_backend(pr->srv))
		                            ->agent.interval_ms));
}

static const struct check_cbs agent_cbs = {
    .result = agent_result,
};

static void
probe_cert(void *arg, time_t not_after, const char *subject)
{
	struct probe *pr = arg;
	struct pool_work w;

	pool_work_init(&w);
	pool_cert_seen(pr->mon->pool, pr->srv, not_after, subject, &w);
	work_apply(pr->mon->env, &w);
}

static const struct check_cbs probe_cbs = {
    .result = probe_result,
    .cert = probe_cert,
};

struct monitor *
monitor_new(struct gen *g, struct event_base *base, struct pool *pool,
            const struct work_env *env)
{
	struct monitor *mon = calloc(1, sizeof(*mon));
	size_t nb = pool_set_nbackends(g->pool);
	char err[512];

	if (mon == NULL)
		goto oom;
	mon->gen = g;
	mon->pool = pool;
	mon->env = env;
	mon->base = base;
	mon->nbackends = nb;
	mon->tls = calloc(nb ? nb : 1, sizeof(*mon->tls));
	mon->probes = calloc(nb ? nb : 1, sizeof(*mon->probes));
	if (mon->tls == NULL || mon->probes == NULL)
		goto oom;
	for (size_t b = 0; b < nb; b++) {
		struct backend *be = pool_set_backend(g->pool, b);
		const struct cfg_backend *bc = backend_conf(be);
		size_t ns = backend_nservers(be);

		if (!bc->has_check && !bc->has_agent)
			continue;
		if (bc->check.starttls &&
		    (mon->tls[b] = tls_client_ctx(&bc->check, err,
		                                  sizeof(err))) == NULL) {
			log_warnx("backend %s: %s", bc->name, err);
			monitor_free(mon);
			return NULL;
		}
		if ((mon->probes[b] =
		         calloc(ns ? ns : 1, sizeof(*mon->probes[b]))) == NULL)
			goto oom;
		for (size_t i = 0; i < ns; i++) {
			struct probe *pr = &mon->probes[b][i];

			pr->mon = mon;
			pr->srv = backend_server(be, i);
			if (server_conf(pr->srv)->agent_addr.len > 0 &&
			    (pr->agent =
			         check_new_agent(bc, server_conf(pr->srv), base,
			                         &agent_cbs, pr)) == NULL)
				goto oom;
			if (!server_checked(pr->srv))
				continue;
			pr->chk = check_new(bc, server_conf(pr->srv), base,
			                    mon->tls[b], &probe_cbs, pr);
			if (pr->chk == NULL) {
				log_warn("server %s/%s: cannot set up its "
				         "check",
				         bc->name, server_conf(pr->srv)->name);
				monitor_free(mon);
				return NULL;
			}
		}
	}
	return mon;
oom:
	log_warn("health checks");
	monitor_free(mon);
	return NULL;
}

/* The agent checks of backend b, spread over their first interval. */
static void
start_agents(struct monitor *mon, size_t b)
{
	struct backend *be = pool_set_backend(mon->gen->pool, b);
	uint64_t interval = backend_conf(be)->agent.interval_ms, slot;
	size_t ns = backend_nservers(be), n = 0, k = 0;

	for (size_t i = 0; i < ns; i++)
		n += mon->probes[b][i].agent != NULL;
	if (n == 0)
		return;
	slot = interval / n;
	for (size_t i = 0; i < ns; i++) {
		struct probe *pr = &mon->probes[b][i];

		if (pr->agent == NULL || pool_agent_paused(mon->pool, pr->srv))
			continue;
		check_schedule(
		    pr->agent,
		    slot * k++ +
		        (slot > 1 ? (uint64_t)random() % (slot / 2 + 1) : 0));
	}
}

void
monitor_start(struct monitor *mon)
{
	for (size_t b = 0; b < mon->nbackends; b++) {
		if (mon->probes[b] != NULL)
			start_agents(mon, b);
	}
	for (size_t b = 0; b < mon->nbackends; b++) {
		struct backend *be = pool_set_backend(mon->gen->pool, b);
		const struct cfg_check *c = &backend_conf(be)->check;
		size_t ns = backend_nservers(be), n = 0, k = 0;
		uint64_t slot;

		if (mon->probes[b] == NULL)
			continue;
		/* Servers in maintenance are not checked (until enable). */
		for (size_t i = 0; i < ns; i++) {
			struct probe *pr = &mon->probes[b][i];

			pr->run = pr->chk != NULL &&
			          !pool_in_maint(mon->pool, pr->srv);
			n += pr->run;
		}
		if (n == 0)
			continue;
		/* The first checks spread over the first interval, a little
		 * jitter in each slot. */
		slot = c->interval_ms / n;
		for (size_t i = 0; i < ns; i++) {
			struct probe *pr = &mon->probes[b][i];

			if (!pr->run)
				continue;
			check_schedule(
			    pr->chk,
			    slot * k++ +
			        (slot > 1 ? (uint64_t)random() % (slot / 2 + 1)
			                  : 0));
		}
	}
}

void
monitor_free(struct monitor *mon)
{
	if (mon == NULL)
		return;
	for (size_t b = 0; mon->probes != NULL && b < mon->nbackends; b++) {
		if (mon->probes[b] == NULL)
			continue;
		for (size_t i = 0;
		     i < backend_nservers(pool_set_backend(mon->gen->pool, b));
		     i++) {
			check_free(mon->probes[b][i].chk);
			check_free(mon->probes[b][i].agent);
		}
		free(mon->probes[b]);
	}
	for (size_t b = 0; mon->tls != NULL && b < mon->nbackends; b++)
		if (mon->tls[b] != NULL)
			SSL_CTX_free(mon->tls[b]);
	free(mon->probes);
	free(mon->tls);
	free(mon);
}

void
monitor_work(struct monitor *mon, const struct pool_work *w)
{
	struct backend *be;
	struct probe *pr;

	if (w->check == NULL)
		return;
	be = server_backend(w->check);
	if (gen_of_backend(be) != mon->gen ||
	    mon->probes[backend_index(be)] == NULL)
		return;
	pr = &mon->probes[backend_index(be)][server_index(w->check)];
	if (pr->agent != NULL && w->agent_stop)
		check_stop(pr->agent);
	else if (pr->agent != NULL && w->agent_now)
		check_schedule(pr->agent, 0);
	if (pr->chk == NULL)
		return;
	if (w->check_stop)
		check_stop(pr->chk);
	else if (w->check_now)
		check_schedule(pr->chk, 0);
}
