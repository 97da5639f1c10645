/* Configuration generations (see gen.h). */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"
#include "log.h"
#include "sock.h"

struct gen *
gen_new(struct cfg *cfg)
{
	struct gen *g = calloc(1, sizeof(*g));

	if (g == NULL ||
	    (g->frontends = calloc(cfg->nfrontends ? cfg->nfrontends : 1,
	                           sizeof(*g->frontends))) == NULL ||
	    (g->pool = pool_set_new(cfg, g)) == NULL) {
		log_warnx("out of memory building the configuration's objects");
		if (g != NULL)
			free(g->frontends);
		free(g);
		cfg_free(cfg);
		return NULL;
	}
	g->cfg = cfg;
	atomic_init(&g->refs, 1);
	atomic_init(&g->retired, false);
	g->nfrontends = cfg->nfrontends;
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		const struct cfg_frontend *fc = &cfg->frontends[i];

		frontend_init(&g->frontends[i], fc,
		              pool_set_backend(g->pool, fc->backend),
		              cfg->global.log.sessions, g);
	}
	return g;
}

void
gen_ref(struct gen *g)
{
	atomic_fetch_add(&g->refs, 1);
}

void
gen_unref(struct gen *g)
{
	struct gen *next;

	if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	next = g->next;
	for (size_t i = 0; i < g->nfrontends; i++)
		frontend_free(&g->frontends[i]);
	free(g->frontends);
	pool_set_free(g->pool);
	cfg_free(g->cfg);
	free(g);
	gen_unref(next);
}

/* The counters an old frontend holds go to its successor.  Moved with an
 * exchange, so that a count that lands on the old one meanwhile (a thread
 * that has not seen the successor yet) is moved by the next call: gen_retire
 * and, once every thread has seen it (the reload's last step), gen_settle.
 * Unsigned: a session that leaves the old one after the move takes one off
 * there, and the move of that "minus one" fixes the successor. */
static void
move_counters(struct frontend *o, struct frontend *n)
{
	atomic_fetch_add(&n->cur_sess, atomic_exchange(&o->cur_sess, 0));
	atomic_fetch_add(&n->total_sess, atomic_exchange(&o->total_sess, 0));
	atomic_fetch_add(&n->refused, atomic_exchange(&o->refused, 0));
	atomic_fetch_add(&n->refused_maxconn,
	                 atomic_exchange(&o->refused_maxconn, 0));
	atomic_fetch_add(&n->refused_rate,
	                 atomic_exchange(&o->refused_rate, 0));
	atomic_fetch_add(&n->refused_deny,
	                 atomic_exchange(&o->refused_deny, 0));
	atomic_fetch_add(&n->bytes_in, atomic_exchange(&o->bytes_in, 0));
	atomic_fetch_add(&n->bytes_out, atomic_exchange(&o->bytes_out, 0));
}

/* The client-network table goes on across a reload when the new one
 * would have the same shape (size, prefixes, period): the networks keep
 * their counts.  n accepts nothing yet (the acceptor moves to it
 * afterwards, on the main thread). */
static void
keep_climit(struct frontend *o, struct frontend *n)
{
	const struct cfg_client_limits *cl = &n->conf->limits;

	if (o->climit == NULL || n->climit == NULL ||
	    !climit_same(o->climit, (size_t)cl->table_size,
	                 (unsigned)cl->prefix4, (unsigned)cl->prefix6,
	                 cl->period_ms))
		return;
	climit_ref(o->climit);
	climit_unref(n->climit);
	n->climit = o->climit;
}

void
gen_retire(struct gen *old, struct gen *next)
{
	for (size_t i = 0; i < old->nfrontends; i++) {
		struct frontend *o = &old->frontends[i];
		struct frontend *n = gen_find_frontend(next, o->conf->name);

		if (n == NULL)
			continue;
		/* Counters (/metrics, maxconn) go on across reloads: what
		 * counts from now on counts on the newest frontend of the
		 * name (frontend_newest). */
		atomic_store_explicit(&o->successor, n, memory_order_release);
		move_counters(o, n);
		keep_climit(o, n);
	}
	gen_ref(next);
	old->next = next;
	atomic_store(&old->retired, true);
}

void
gen_settle(struct gen *old)
{
	for (size_t i = 0; i < old->nfrontends; i++) {
		struct frontend *o = &old->frontends[i];
		struct frontend *n = frontend_successor(o);

		if (n != NULL)
			move_counters(o, n);
	}
}

struct frontend *
gen_find_frontend(struct gen *g, const char *name)
{
	for (size_t i = 0; i < g->nfrontends; i++)
		if (strcmp(g->frontends[i].conf->name, name) == 0)
			return &g->frontends[i];
	return NULL;
}

struct gen *
gen_of_backend(const struct backend *be)
{
	return backend_owner(be);
}

size_t
gen_nservers(const struct gen *g)
{
	size_t n = 0;

	for (size_t b = 0; b < g->cfg->nbackends; b++)
		n += g->cfg->backends[b].nservers;
	return n;
}

/* Can this process connect from the configured source?  For "clientip"
 * IP_TRANSPARENT must be allowed, for "ADDR" the address must bind. */
static int
probe_source(const struct cfg_backend *c)
{
	bool fam[2] = {false, false}; /* AF_INET, AF_INET6 seen */
	const char *what;
	int fd;

	if (c->source_mode == SRC_DEFAULT)
		return 0;
	for (size_t i = 0; i < c->nservers; i++)
		fam[c->servers[i].addr.ss.ss_family == AF_INET6] = true;
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;

		if (!fam[f])
			continue;
		if (c->source_mode == SRC_CLIENTIP)
			fd = sock_outgoing(family, NULL, 0, true, &what);
		else
			fd = sock_outgoing(
			    family, (const struct sockaddr *)&c->source_ss,
			    c->source_len, false, &what);
		if (fd >= 0) {
			close(fd);
			continue;
		}
		if (errno == EPERM && c->source_mode == SRC_CLIENTIP)
			log_warn("backend %s: source = \"clientip\" needs %s "
			         "(run as root or with CAP_NET_ADMIN)",
			         c->name, what);
		else
			log_warn("backend %s: source = \"%s\": %s", c->name,
			         c->source, what);
		return -1;
	}
	return 0;
}

int
gen_probe_sources(const struct gen *g)
{
	for (size_t i = 0; i < g->cfg->nbackends; i++)
		if (probe_source(&g->cfg->backends[i]) < 0)
			return -1;
	return 0;
}
