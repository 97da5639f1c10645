/* The server pool (see pool.h): backend and server state, server choice,
 * slots and the queue, behind one lock that no caller ever holds. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "agent.h"
#include "lb.h"
#include "pool.h"

struct server {
	const struct cfg_server *conf;
	struct backend *be;
	_Atomic(struct server *) successor;
	struct server *prev; /* pool_install: the old one of the same name */
	/* The operator's (or the configuration's disabled) state; the
	 * state in force is admin_of(): this one, else the agent's. */
	enum srv_admin admin;
	bool op_admin;  /* admin set with lbctl (or the state file) */
	bool op_weight; /* weight set with lbctl (or the state file) */
	bool up;        /* operational state: health (always UP without checks)
	                 * and not DOWN by the agent */
	bool checked;   /* check = true in a backend with a health_check */
	int weight;     /* the configured weight, or the operator's */
	/* The agent check's last words (load-balancer.conf(5), AGENT CHECK). */
	enum srv_admin agent_admin;
	int agent_pct;     /* 0..100: the weight in force is weight x pct */
	int agent_maxconn; /* -1: conf->maxconn */
	bool agent_down;   /* down, stopped or fail: DOWN until "up" */
	uint64_t agent_checks, agent_failures;
	char agent_last[160];
	/* Slow start: when it came back UP (wall clock ms); 0 = no ramp. */
	uint64_t ramp_start_ms;
	unsigned cur_sess;
	unsigned max_sess; /* highest cur_sess seen */
	uint64_t total_sess;
	uint64_t connect_failures;
	uint64_t traffic_errors;        /* failed connects and greetings */
	_Atomic unsigned traffic_fails; /* in a row; written under the lock */
	uint64_t bytes_in, bytes_out;   /* of its finished sessions */
	time_t last_change; /* wall clock of the last state change */
	uint64_t checks;    /* health checks run */
	uint64_t check_failures[HEALTH_STEPS];
	uint64_t last_check_ms; /* the last check's duration */
	struct health health;
	uint64_t down_since_ms; /* wall clock, when it went DOWN */
	char last_check[256];   /* "passed (4 ms)", "failed at helo: ..." */
	time_t cert_not_after;  /* 0 = unknown */
	time_t cert_warned;     /* when cert_expiry was last logged */
};

/* Names -> positions: open addressing over lb_key hashes (reload matches
 * thousands of servers by name in the pool's short critical section). */
struct name_index {
	uint32_t *slot; /* position + 1; 0 = empty */
	size_t mask;
};

struct backend {
	const struct cfg_backend *conf;
	struct pool_set *set;
	_Atomic(struct backend *) successor;
	struct backend *prev; /* pool_install: the old one of the same name */
	struct server *servers;
	size_t nservers;
	struct name_index index;
	struct lb_entry *lbv; /* one per server, same order */
	struct lb_state lbst;
	unsigned cur_sess;          /* sessions with a server of this backend */
	uint64_t retries;           /* connect attempts after a failure */
	struct waiter_list queue;   /* waiting for a slot, oldest first */
	struct waiter_list granted; /* given a result, not claimed yet */
	unsigned queued;
	bool alive; /* some server UP or DRAIN (backend_down/backend_up) */
};

struct pool_set {
	const struct cfg *cfg;
	void *owner;
	struct pool *pool; /* set by pool_install (its clock) */
	struct backend *backends;
	size_t nbackends;
	struct name_index index;
};

struct pool {
	pthread_mutex_t lock;
	struct pool_set *cur;
	uint64_t (*wall_ms)(void);
	/* Slow start's ramps: steps of the wall clock must not stretch
	 * or cut them. */
	uint64_t (*mono_ms)(void);
};

/* --- lock ----------------------------------------------------------------- */

static void
lock(struct pool *p)
{
	int e = pthread_mutex_lock(&p->lock);

	if (e != 0) {
		/* EDEADLK (debug builds): re-entry, a bug. */
		fprintf(stderr, "pool: lock: %s\n", strerror(e));
		abort();
	}
}

static void
unlock(struct pool *p)
{
	int e = pthread_mutex_unlock(&p->lock);

	if (e != 0) {
		fprintf(stderr, "pool: unlock: %s\n", strerror(e));
		abort();
	}
}

static uint64_t
real_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
real_wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

struct pool *
pool_new(void)
{
	struct pool *p = calloc(1, sizeof(*p));
	pthread_mutexattr_t ma;

	if (p == NULL)
		return NULL;
	if (pthread_mutexattr_init(&ma) != 0) {
		free(p);
		return NULL;
	}
#ifndef NDEBUG
	/* Debug builds: a second lock by the same thread fails (EDEADLK)
	 * and aborts instead of hanging. */
	(void)pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
#endif
	if (pthread_mutex_init(&p->lock, &ma) != 0) {
		pthread_mutexattr_destroy(&ma);
		free(p);
		return NULL;
	}
	pthread_mutexattr_destroy(&ma);
	p->wall_ms = real_wall_ms;
	p->mono_ms = real_mono_ms;
	return p;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void
pool_set_clock(struct pool *p, uint64_t (*wall_ms)(void))
{
	p->wall_ms = wall_ms != NULL ? wall_ms : real_wall_ms;
	p->mono_ms = wall_ms != NULL ? wall_ms : real_mono_ms;
}

static time_t
wall_s(const struct pool *p)
{
	return (time_t)(p->wall_ms() / 1000);
}

/* --- small things ------------------------------------------------------- */

const char *
srv_state_name(enum srv_state st)
{
	switch (st) {
	case SRV_STATE_UP:
		return "UP";
	case SRV_STATE_DOWN:
		return "DOWN";
	case SRV_STATE_DRAIN:
		return "DRAIN";
	case SRV_STATE_MAINT:
		return "MAINT";
	}
	return "?";
}

void
pool_waiter_init(struct pool_waiter *wt, const struct sockaddr *client)
{
	memset(wt, 0, sizeof(*wt));
	wt->state = WAITER_IDLE;
	if (client != NULL && client->sa_family == AF_INET) {
		memcpy(wt->ip,
		       &((const struct sockaddr_in *)(const void *)client)
		            ->sin_addr,
		       4);
		wt->iplen = 4;
	} else if (client != NULL && client->sa_family == AF_INET6) {
		memcpy(wt->ip,
		       &((const struct sockaddr_in6 *)(const void *)client)
		            ->sin6_addr,
		       16);
		wt->iplen = 16;
	}
}

void
pool_work_init(struct pool_work *w)
{
	memset(w, 0, sizeof(*w));
	w->grants_tail = &w->grants;
}

static void
grant(struct pool_work *w, struct pool_waiter *wt, struct server *srv)
{
	wt->state = WAITER_GRANTED;
	wt->granted = srv;
	wt->next = NULL;
	*w->grants_tail = wt;
	w->grants_tail = &wt->next;
}

static struct pool_event *
new_event(struct pool_work *w, enum pool_event_kind kind,
          const struct backend *be, const struct server *srv)
{
	struct pool_event *ev;

	if (w->nevents == POOL_WORK_EVENTS)
		return NULL; /* cannot happen: no change makes more */
	ev = &w->events[w->nevents++];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->be = be->conf;
	ev->srv = srv != NULL ? srv->conf : NULL;
	return ev;
}

/* --- name index --------------------------------------------------------- */

static int
index_build(struct name_index *ix, size_t n,
            const char *(*name)(const void *base, size_t i), const void *base)
{
	size_t size = 8;

	while (size < 2 * n)
		size *= 2;
	if ((ix->slot = calloc(size, sizeof(*ix->slot))) == NULL)
		return -1;
	ix->mask = size - 1;
	for (size_t i = 0; i < n; i++) {
		size_t h = (size_t)lb_key(name(base, i)) & ix->mask;

		while (ix->slot[h] != 0)
			h = (h + 1) & ix->mask;
		ix->slot[h] = (uint32_t)(i + 1);
	}
	return 0;
}

/* Position of name, or -1. */
static long
index_find(const struct name_index *ix, const char *key,
           const char *(*name)(const void *base, size_t i), const void *base)
{
	size_t h;

	if (ix->slot == NULL)
		return -1;
	for (h = (size_t)lb_key(key) & ix->mask; ix->slot[h] != 0;
	     h = (h + 1) & ix->mask)
		if (strcmp(name(base, ix->slot[h] - 1), key) == 0)
			return (long)ix->slot[h] - 1;
	return -1;
}

static const char *
server_name_at(const void *base, size_t i)
{
	return ((const struct server *)base)[i].conf->name;
}

static const char *
backend_name_at(const void *base, size_t i)
{
	return ((const struct backend *)base)[i].conf->name;
}

/* --- server state --------------------------------------------------------- */

/* The admin state in force: the operator's (or the configuration's)
 * when it is not READY, else the agent's. */
static enum srv_admin
admin_of(const struct server *srv)
{
	return srv->admin != SRV_READY ? srv->admin : srv->agent_admin;
}

static enum srv_state
state_of(const struct server *srv)
{
	enum srv_admin a = admin_of(srv);

	if (a == SRV_MAINT)
		return SRV_STATE_MAINT;
	if (!srv->up)
		return SRV_STATE_DOWN;
	if (a == SRV_DRAIN)
		return SRV_STATE_DRAIN;
	return SRV_STATE_UP;
}

/* The percentage of its weight in force: the agent's, unless the
 * operator set the weight. */
static int
pct_of(const struct server *srv)
{
	return srv->op_weight ? 100 : srv->agent_pct;
}

/* The one predicate: takes new sessions. */
static bool
takes_sessions(const struct server *srv)
{
	return state_of(srv) == SRV_STATE_UP && srv->weight > 0 &&
	       pct_of(srv) > 0;
}

/* Slow start (load-balancer.conf(5), SLOW START): the ramp's factor in
 * thousandths, from 1000/16 right after DOWN -> UP to 1000 after
 * slowstart.  A ramp that ended is forgotten here. */
static unsigned
ramp_milli(struct server *srv, uint64_t now)
{
	uint64_t ss = srv->be->conf->slowstart_ms, el;

	if (srv->ramp_start_ms == 0)
		return 1000;
	el = now > srv->ramp_start_ms ? now - srv->ramp_start_ms : 0;
	if (ss == 0 || el >= ss) {
		srv->ramp_start_ms = 0;
		return 1000;
	}
	return (unsigned)((1000 + 15000 * el / ss) / 16);
}

/* The weight balancing uses: weight x percentage x ramp, in units of
 * 1/100000 of a weight, so that 1/16 of weight 1 is still above 0. */
#define WEIGHT_UNIT 100000
static int
lb_weight(struct server *srv, uint64_t now)
{
	return srv->weight * pct_of(srv) * (int)ramp_milli(srv, now);
}

/* A weight for people: rounded up, so a server that takes sessions
 * never shows 0. */
static int
shown_weight(int lbw)
{
	return (lbw + WEIGHT_UNIT - 1) / WEIGHT_UNIT;
}

/* The weight in force without the ramp (weight events). */
static int
set_weight_of(const struct server *srv)
{
	return (srv->weight * pct_of(srv) + 99) / 100;
}

static uint64_t
set_now(const struct pool_set *set)
{
	return set->pool != NULL ? set->pool->mono_ms() : 0;
}

/* UP or DRAIN: counted in the health log's active/backup and in
 * backend_down/backend_up. */
static bool
alive(const struct server *srv)
{
	enum srv_state st = state_of(srv);

	return st == SRV_STATE_UP || st == SRV_STATE_DRAIN;
}

/* "UP 1/3" and the like, from a server's state and health counter. */
static void
format_state(enum srv_state st, bool checked, bool up, const struct health *h,
             char *buf, size_t len)
{
	switch (st) {
	case SRV_STATE_MAINT:
		snprintf(buf, len, "MAINT");
		return;
	case SRV_STATE_DRAIN:
		snprintf(buf, len, "DRAIN");
		return;
	case SRV_STATE_UP:
		break;
	case SRV_STATE_DOWN:
		/* DOWN by the agent while its checks pass. */
		if (checked && health_is_up(h)) {
			snprintf(buf, len, "DOWN");
			return;
		}
		break;
	}
	if (checked)
		health_state_text(h, buf, len);
	else
		snprintf(buf, len, "%s", up ? "UP" : "DOWN");
}

static void
state_text(const struct server *srv, char *buf, size_t len)
{
	format_state(state_of(srv), srv->checked, srv->up, &srv->health, buf,
	             len);
}

static void
count_alive(const struct backend *be, unsigned *active, unsigned *backup)
{
	*active = *backup = 0;
	for (size_t i = 0; i < be->nservers; i++) {
		const struct server *s = &be->servers[i];

		if (!alive(s))
			continue;
		if (s->conf->backup)
			(*backup)++;
		else
			(*active)++;
	}
}

/* The server's connection limit now (maxconn, or HAProxy's minconn ramp
 * towards fullconn sessions of the backend); 0 = unlimited. */
static unsigned
limit_of(const struct server *srv)
{
	const struct cfg_server *c = srv->conf;
	unsigned fullconn, lim;
	/* The agent's maxconn:N replaces the configured one. */
	int maxconn = srv->agent_maxconn >= 0 ? srv->agent_maxconn : c->maxconn;

	if (maxconn == 0)
		return 0;
	if (c->minconn == 0)
		return (unsigned)maxconn;
	fullconn = (unsigned)srv->be->conf->fullconn;
	if (fullconn == 0 || srv->be->cur_sess >= fullconn)
		return (unsigned)maxconn;
	lim = (unsigned)((unsigned long long)maxconn * srv->be->cur_sess /
	                 fullconn);
	if (lim < (unsigned)c->minconn)
		lim = (unsigned)c->minconn;
	if (lim > (unsigned)maxconn)
		lim = (unsigned)maxconn;
	return lim;
}

static bool
has_room(const struct server *srv)
{
	unsigned lim = limit_of(srv);

	return lim == 0 || srv->cur_sess < lim;
}

/* Follow successors to the newest object (slots and counters moved
 * there at pool_install). */
static struct server *
newest(struct server *srv)
{
	struct server *n;

	while ((n = atomic_load_explicit(&srv->successor,
	                                 memory_order_acquire)) != NULL)
		srv = n;
	return srv;
}

/* --- sets ------------------------------------------------------------------
 */

static void
server_init(struct server *srv, const struct cfg_server *conf,
            struct backend *be, time_t now)
{
	memset(srv, 0, sizeof(*srv));
	srv->conf = conf;
	srv->be = be;
	srv->admin = conf->disabled ? SRV_MAINT : SRV_READY;
	srv->up = true;
	srv->weight = conf->weight;
	srv->agent_admin = SRV_READY;
	srv->agent_pct = 100;
	srv->agent_maxconn = -1;
	snprintf(srv->agent_last, sizeof(srv->agent_last), "not checked yet");
	srv->checked = conf->check && be->conf->has_check;
	health_init(&srv->health, be->conf->check.rise, be->conf->check.fall);
	srv->last_change = now;
	snprintf(srv->last_check, sizeof(srv->last_check), "%s",
	         srv->checked ? "not checked yet" : "no check");
}

static void
backend_fini(struct backend *be)
{
	free(be->servers);
	free(be->lbv);
	free(be->index.slot);
}

static int
backend_init(struct backend *be, const struct cfg_backend *conf,
             struct pool_set *set, time_t now)
{
	memset(be, 0, sizeof(*be));
	be->conf = conf;
	be->set = set;
	be->nservers = conf->nservers;
	TAILQ_INIT(&be->queue);
	TAILQ_INIT(&be->granted);
	be->servers =
	    calloc(conf->nservers ? conf->nservers : 1, sizeof(*be->servers));
	be->lbv = calloc(conf->nservers ? conf->nservers : 1, sizeof(*be->lbv));
	if (be->servers == NULL || be->lbv == NULL)
		return -1;
	for (size_t i = 0; i < be->nservers; i++) {
		server_init(&be->servers[i], &conf->servers[i], be, now);
		be->lbv[i].key = lb_key(conf->servers[i].name);
	}
	for (size_t i = 0; i < be->nservers && !be->alive; i++)
		be->alive = alive(&be->servers[i]);
	return index_build(&be->index, be->nservers, server_name_at,
	                   be->servers);
}

struct pool_set *
pool_set_new(const struct cfg *cfg, void *owner)
{
	struct pool_set *set = calloc(1, sizeof(*set));
	time_t now = (time_t)(real_wall_ms() / 1000);

	if (set == NULL)
		return NULL;
	set->cfg = cfg;
	set->owner = owner;
	set->nbackends = cfg->nbackends;
	set->backends =
	    calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*set->backends));
	if (set->backends == NULL)
		goto fail;
	for (size_t i = 0; i < set->nbackends; i++)
		if (backend_init(&set->backends[i], &cfg->backends[i], set,
		                 now) < 0)
			goto fail;
	if (index_build(&set->index, set->nbackends, backend_name_at,
	                set->backends) < 0)
		goto fail;
	return set;
fail:
	pool_set_free(set);
	return NULL;
}

void
pool_set_free(struct pool_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; set->backends != NULL && i < set->nbackends; i++)
		backend_fini(&set->backends[i]);
	free(set->backends);
	free(set->index.slot);
	free(set);
}

size_t
pool_set_nbackends(const struct pool_set *set)
{
	return set->nbackends;
}

struct backend *
pool_set_backend(struct pool_set *set, size_t i)
{
	return i < set->nbackends ? &set->backends[i] : NULL;
}

struct backend *
pool_set_find(struct pool_set *set, const char *name)
{
	long i = index_find(&set->index, name, backend_name_at, set->backends);

	return i < 0 ? NULL : &set->backends[i];
}

const struct cfg_backend *
backend_conf(const struct backend *be)
{
	return be->conf;
}

void *
backend_owner(const struct backend *be)
{
	return be->set->owner;
}

size_t
backend_nservers(const struct backend *be)
{
	return be->nservers;
}

struct server *
backend_server(struct backend *be, size_t i)
{
	return i < be->nservers ? &be->servers[i] : NULL;
}

struct server *
backend_find_server(struct backend *be, const char *name)
{
	long i = index_find(&be->index, name, server_name_at, be->servers);

	return i < 0 ? NULL : &be->servers[i];
}

size_t
backend_index(const struct backend *be)
{
	return (size_t)(be - be->set->backends);
}

const struct cfg_server *
server_conf(const struct server *srv)
{
	return srv->conf;
}

size_t
server_index(const struct server *srv)
{
	return (size_t)(srv - srv->be->servers);
}

struct backend *
server_backend(const struct server *srv)
{
	return srv->be;
}

bool
server_checked(const struct server *srv)
{
	return srv->checked;
}

struct backend *
backend_successor(const struct backend *be)
{
	return atomic_load_explicit(&((struct backend *)be)->successor,
	                            memory_order_acquire);
}

struct server *
server_successor(const struct server *srv)
{
	return atomic_load_explicit(&((struct server *)srv)->successor,
	                            memory_order_acquire);
}

struct server *
pool_find_server_by(struct pool *p, const char *backend, const char *server,
                    char *err, size_t errlen)
{
	struct server *srv = NULL;
	struct backend *be;

	lock(p);
	if (p->cur == NULL || (be = pool_set_find(p->cur, backend)) == NULL)
		snprintf(err, errlen, "no backend '%s'", backend);
	else if ((srv = backend_find_server(be, server)) == NULL)
		snprintf(err, errlen, "backend '%s' has no server '%s'",
		         be->conf->name, server);
	unlock(p);
	return srv;
}

struct server *
pool_find_server(struct pool *p, const char *spec, char *err, size_t errlen)
{
	const char *slash = strchr(spec, '/');
	char name[512];
	size_t blen;

	if (slash == NULL) {
		snprintf(err, errlen, "expected BACKEND/SERVER, got '%s'",
		         spec);
		return NULL;
	}
	blen = (size_t)(slash - spec);
	if (blen >= sizeof(name)) {
		snprintf(err, errlen, "no backend '%.*s'", (int)blen, spec);
		return NULL;
	}
	memcpy(name, spec, blen);
	name[blen] = '\0';
	return pool_find_server_by(p, name, slash + 1, err, errlen);
}

bool
server_inherited(const struct server *srv)
{
	return srv->prev != NULL;
}

static bool
same_addr(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Reload: srv (new) takes over old's state (same backend and server
 * name).  The operator's drain/maint and weight stay unless the file
 * changed them; health state stays when the address and the checking
 * stay. */
static void
inherit(struct server *srv, const struct server *old)
{
	const struct cfg_server *nc = srv->conf, *oc = old->conf;

	srv->total_sess = old->total_sess;
	srv->max_sess = old->max_sess;
	srv->connect_failures = old->connect_failures;
	srv->traffic_errors = old->traffic_errors;
	srv->bytes_in = old->bytes_in;
	srv->bytes_out = old->bytes_out;
	srv->last_change = old->last_change;
	srv->checks = old->checks;
	srv->last_check_ms = old->last_check_ms;
	memcpy(srv->check_failures, old->check_failures,
	       sizeof(srv->check_failures));
	/* The operator's state stays (load-balancer.conf(5), OPERATOR
	 * STATE); else the file's disabled and weight, when changed,
	 * win. */
	if (old->op_admin || nc->disabled == oc->disabled) {
		srv->admin = old->admin;
		srv->op_admin = old->op_admin;
	}
	if (old->op_weight || nc->weight == oc->weight) {
		srv->weight = old->weight;
		srv->op_weight = old->op_weight;
	}
	srv->agent_checks = old->agent_checks;
	srv->agent_failures = old->agent_failures;
	if (!same_addr(&nc->addr, &oc->addr))
		return; /* another machine: checked afresh */
	srv->ramp_start_ms = old->ramp_start_ms;
	/* Same machine, still asked: the agent's last words stay (without
	 * an agent any more, nothing could ever take them back). */
	if (nc->agent_addr.len == 0)
		goto health;
	srv->agent_admin = old->agent_admin;
	srv->agent_pct = old->agent_pct;
	srv->agent_maxconn = old->agent_maxconn;
	srv->agent_down = old->agent_down;
	memcpy(srv->agent_last, old->agent_last, sizeof(srv->agent_last));
	if (srv->agent_down)
		srv->up = false;
health:
	srv->cert_not_after = old->cert_not_after;
	srv->cert_warned = old->cert_warned;
	atomic_store(&srv->traffic_fails, atomic_load(&old->traffic_fails));
	if (!srv->checked || !old->checked)
		return; /* always UP, or checked from now on: as at start */
	srv->up = health_is_up(&old->health) && !srv->agent_down;
	srv->health.counter = health_is_up(&old->health)
	                          ? srv->health.rise + srv->health.fall - 1
	                          : 0;
	srv->down_since_ms = old->down_since_ms;
	snprintf(srv->last_check, sizeof(srv->last_check), "%s",
	         old->last_check);
}

static void run_queue(struct backend *be, struct pool_work *w, bool refuse);

void
pool_waiter_rebase(struct pool_waiter *wt, const struct backend *be)
{
	unsigned n = 0;

	for (unsigned i = 0; i < wt->navoid; i++) {
		struct server *srv = wt->avoid[i];

		while (srv != NULL && srv->be != be)
			srv = server_successor(srv);
		if (srv != NULL)
			wt->avoid[n++] = srv;
	}
	wt->navoid = n;
}

/* Reload: the avoided servers become their successors (the removed ones
 * are forgotten). */
static void
avoid_successors(struct pool_waiter *wt)
{
	unsigned n = 0;

	for (unsigned i = 0; i < wt->navoid; i++) {
		struct server *ns = server_successor(wt->avoid[i]);

		if (ns != NULL)
			wt->avoid[n++] = ns;
	}
	wt->navoid = n;
}

/* An old backend's clients move to its successor nb, or are turned
 * away when it has none. */
static void
move_waiters(struct backend *ob, struct backend *nb, struct pool_work *w)
{
	struct pool_waiter *wt;

	/* Given a result, not told yet (its mail is on the way, and its
	 * grant may still be in a caller's list): it stays given, never
	 * queued again.  Its server goes on at the same address: the slot
	 * moved with the server's.  Its server is gone: the slot is given
	 * back and the waiter told to ask again (pool_claim: CLAIM_AGAIN).
	 * A client turned away stays so. */
	while ((wt = TAILQ_FIRST(&ob->granted)) != NULL) {
		struct server *ns = NULL;

		TAILQ_REMOVE(&ob->granted, wt, link);
		if (wt->granted != NULL) {
			ns = server_successor(wt->granted);
			if (ns == NULL) {
				struct server *os = wt->granted;

				if (os->cur_sess > 0)
					os->cur_sess--;
				if (ob->cur_sess > 0)
					ob->cur_sess--;
				wt->again = true;
			}
			wt->granted = ns;
		}
		avoid_successors(wt);
		wt->be = nb;
		if (nb != NULL)
			TAILQ_INSERT_TAIL(&nb->granted, wt, link);
	}
	while ((wt = TAILQ_FIRST(&ob->queue)) != NULL) {
		TAILQ_REMOVE(&ob->queue, wt, link);
		ob->queued--;
		avoid_successors(wt);
		if (nb == NULL) {
			wt->be = NULL;
			grant(w, wt, NULL);
			continue;
		}
		wt->be = nb;
		TAILQ_INSERT_TAIL(&nb->queue, wt, link);
		nb->queued++;
	}
}

/* Which old backend and server each new one takes over, by name: done
 * before locking (names never change, and only the installing thread
 * replaces the current set), so that the critical section only moves
 * state. */
static void
match_names(struct pool_set *set, struct pool_set *old)
{
	for (size_t b = 0; b < set->nbackends; b++) {
		struct backend *nb = &set->backends[b];

		nb->prev =
		    old != NULL ? pool_set_find(old, nb->conf->name) : NULL;
		for (size_t i = 0; i < nb->nservers; i++)
			nb->servers[i].prev =
			    nb->prev != NULL
			        ? backend_find_server(nb->prev,
			                              nb->servers[i].conf->name)
			        : NULL;
	}
}

void
pool_install(struct pool *p, struct pool_set *set, struct pool_work *w)
{
	struct pool_set *old;

	lock(p);
	old = p->cur;
	unlock(p);
	match_names(set, old);
	lock(p);
	if (p->cur != old) {
		/* Another thread installed meanwhile (pool.h: one installer
		 * at a time; this only keeps it correct). */
		unlock(p);
		pool_install(p, set, w);
		return;
	}
	for (size_t b = 0; b < set->nbackends; b++) {
		struct backend *nb = &set->backends[b];
		struct backend *ob = nb->prev;

		if (ob == NULL)
			continue;
		nb->retries = ob->retries; /* a counter (/metrics) */
		for (size_t i = 0; i < nb->nservers; i++) {
			struct server *ns = &nb->servers[i];
			struct server *os = ns->prev;

			if (os == NULL)
				continue;
			inherit(ns, os);
			if (!same_addr(&ns->conf->addr, &os->conf->addr))
				continue;
			/* Its sessions' slots count here from now on. */
			ns->cur_sess = os->cur_sess;
			nb->cur_sess += os->cur_sess;
			if (ob->cur_sess >= os->cur_sess)
				ob->cur_sess -= os->cur_sess;
			os->cur_sess = 0;
			atomic_store_explicit(&os->successor, ns,
			                      memory_order_release);
		}
		atomic_store_explicit(&ob->successor, nb, memory_order_release);
	}
	for (size_t b = 0; old != NULL && b < old->nbackends; b++) {
		struct backend *ob = &old->backends[b];

		move_waiters(ob, backend_successor(ob), w);
	}
	p->cur = set;
	set->pool = p;
	for (size_t b = 0; b < set->nbackends; b++) {
		struct backend *nb = &set->backends[b];
		unsigned active, backup;

		/* Silently: a reload is not a health event. */
		count_alive(nb, &active, &backup);
		nb->alive = active + backup > 0;
		run_queue(nb, w, true);
	}
	unlock(p);
}

/* --- choice, slots, queue ------------------------------------------------- */

static bool
avoided(const struct pool_waiter *wt, const struct server *srv)
{
	for (unsigned i = 0; i < wt->navoid; i++)
		if (wt->avoid[i] == srv)
			return true;
	return false;
}

void
pool_waiter_avoid(struct pool_waiter *wt, struct server *srv)
{
	if (srv == NULL || avoided(wt, srv))
		return;
	if (wt->navoid == POOL_AVOID) {
		/* The oldest goes. */
		memmove(&wt->avoid[0], &wt->avoid[1],
		        (POOL_AVOID - 1) * sizeof(wt->avoid[0]));
		wt->navoid--;
	}
	wt->avoid[wt->navoid++] = srv;
}

/* One pass of lb_pick over one tier (active or backup servers); avoid:
 * leave out the servers in wt->avoid. */
static int
pick_tier(struct backend *be, bool backup, bool avoid,
          const struct pool_waiter *wt)
{
	/* The clock only while a ramp may run. */
	uint64_t now = be->conf->slowstart_ms > 0 ? set_now(be->set) : 0;

	for (size_t i = 0; i < be->nservers; i++) {
		struct server *srv = &be->servers[i];
		struct lb_entry *e = &be->lbv[i];

		e->weight = lb_weight(srv, now);
		e->conns = srv->cur_sess;
		e->usable = takes_sessions(srv) &&
		            srv->conf->backup == backup &&
		            !(avoid && avoided(wt, srv));
		e->room = has_room(srv);
	}
	return lb_pick(be->conf->balance, be->lbv, be->nservers, &be->lbst,
	               wt->ip, wt->iplen);
}

static enum pool_pick
pick(struct backend *be, const struct pool_waiter *wt, struct server **out)
{
	bool active = false, backup = false;
	int r;

	for (size_t i = 0; i < be->nservers; i++) {
		if (!takes_sessions(&be->servers[i]))
			continue;
		if (be->servers[i].conf->backup)
			backup = true;
		else
			active = true;
	}
	if (!active && !backup)
		return POOL_NONE;
	/* Backup servers only when no active server takes sessions. */
	r = pick_tier(be, !active, true, wt);
	if (r == LB_PICK_NONE && wt->navoid > 0)
		/* Only servers that failed are left: try them again.
		 * (When the others are only full, the client waits for
		 * them in the queue instead.) */
		r = pick_tier(be, !active, false, wt);
	if (r == LB_PICK_NONE)
		return POOL_NONE;
	if (r == LB_PICK_FULL)
		return POOL_FULL;
	*out = &be->servers[r];
	return POOL_OK;
}

static void
take(struct server *srv)
{
	srv->cur_sess++;
	if (srv->cur_sess > srv->max_sess)
		srv->max_sess = srv->cur_sess;
	srv->total_sess++;
	srv->be->cur_sess++;
}

/* Oldest first; a waiter that still cannot get a slot (its source-hash
 * server is full) keeps its place.  With refuse, waiters that no server
 * can take any more (none takes sessions) are turned away at once (a
 * server went DOWN, a reload); else they wait for their timeout_queue (an
 * operator's drain, disable or weight 0 may be undone). */
static void
run_queue(struct backend *be, struct pool_work *w, bool refuse)
{
	struct pool_waiter *wt, *next;

	for (wt = TAILQ_FIRST(&be->queue); wt != NULL; wt = next) {
		struct server *srv = NULL;
		enum pool_pick r;

		next = TAILQ_NEXT(wt, link);
		r = pick(be, wt, &srv);
		if (r == POOL_FULL || (r == POOL_NONE && !refuse))
			continue;
		TAILQ_REMOVE(&be->queue, wt, link);
		be->queued--;
		if (r == POOL_OK)
			take(srv);
		else
			srv = NULL;
		TAILQ_INSERT_TAIL(&be->granted, wt, link);
		grant(w, wt, srv);
	}
}

enum pool_pick
pool_assign(struct pool *p, struct backend *be, struct pool_waiter *wt,
            bool queue, struct server **out)
{
	enum pool_pick r;

	lock(p);
	if (be->set != p->cur) {
		unlock(p);
		return POOL_MOVED;
	}
	pool_waiter_rebase(wt, be); /* no-op unless its owner forgot */
	r = pick(be, wt, out);
	if (r == POOL_OK)
		take(*out);
	else if (r == POOL_FULL && queue) {
		wt->state = WAITER_QUEUED;
		wt->be = be;
		TAILQ_INSERT_TAIL(&be->queue, wt, link);
		be->queued++;
		r = POOL_QUEUED;
	}
	unlock(p);
	return r;
}

enum waiter_state
pool_leave_queue(struct pool *p, struct pool_waiter *wt)
{
	enum waiter_state st;

	lock(p);
	st = wt->state;
	if (st == WAITER_QUEUED) {
		TAILQ_REMOVE(&wt->be->queue, wt, link);
		wt->be->queued--;
		wt->state = WAITER_IDLE;
	}
	unlock(p);
	return st;
}

enum pool_claim
pool_claim(struct pool *p, struct pool_waiter *wt, struct server **srv)
{
	enum pool_claim r = CLAIM_NOTHING;

	lock(p);
	if (wt->state == WAITER_GRANTED) {
		*srv = wt->granted;
		r = wt->again      ? CLAIM_AGAIN
		    : *srv != NULL ? CLAIM_SERVER
		                   : CLAIM_NO_SERVER;
		/* Granted waiters are in their backend's granted list, but
		 * for those whose backend a reload removed (be NULL). */
		if (wt->be != NULL)
			TAILQ_REMOVE(&wt->be->granted, wt, link);
		wt->state = WAITER_IDLE;
		wt->granted = NULL;
		wt->again = false;
	}
	unlock(p);
	return r;
}

static void
drop_slot(struct server *srv)
{
	if (srv->cur_sess > 0)
		srv->cur_sess--;
	if (srv->be->cur_sess > 0)
		srv->be->cur_sess--;
}

void
pool_release(struct pool *p, struct server *srv, uint64_t bytes_in,
             uint64_t bytes_out, struct pool_work *w)
{
	lock(p);
	srv = newest(srv);
	srv->bytes_in += bytes_in;
	srv->bytes_out += bytes_out;
	drop_slot(srv);
	if (srv->be->set == p->cur)
		run_queue(srv->be, w, true);
	unlock(p);
}

void
pool_untake(struct pool *p, struct server *srv)
{
	lock(p);
	srv = newest(srv);
	drop_slot(srv);
	if (srv->total_sess > 0)
		srv->total_sess--;
	unlock(p);
}

/* --- operators and checks ------------------------------------------------- */

static void
event_counts(struct pool_event *ev, const struct backend *be)
{
	if (ev != NULL)
		count_alive(be, &ev->active, &ev->backup);
}

/* backend_down / backend_up when the last server left or the first came
 * back. */
static void
backend_state(struct backend *be, struct pool_work *w)
{
	unsigned active, backup;
	struct pool_event *ev;
	bool now;

	count_alive(be, &active, &backup);
	now = active + backup > 0;
	if (now == be->alive)
		return;
	be->alive = now;
	if ((ev = new_event(w, now ? PEV_BACKEND_UP : PEV_BACKEND_DOWN, be,
	                    NULL)) != NULL) {
		ev->active = active;
		ev->backup = backup;
	}
}

static const enum pool_event_kind admin_kinds[] = {
    [SRV_READY] = PEV_READY, [SRV_DRAIN] = PEV_DRAIN, [SRV_MAINT] = PEV_MAINT};

/* An admin event (by NULL: the operator's). */
static void
admin_event(struct server *srv, enum srv_admin a, const char *by,
            struct pool_work *w)
{
	struct pool_event *ev = new_event(w, admin_kinds[a], srv->be, srv);

	if (ev != NULL)
		ev->by = by;
	event_counts(ev, srv->be);
}

/* A weight event: the weight in force now (by NULL: the operator's). */
static struct pool_event *
weight_ev(struct server *srv, const char *by, struct pool_work *w)
{
	struct pool_event *ev = new_event(w, PEV_WEIGHT, srv->be, srv);

	if (ev != NULL) {
		ev->by = by;
		ev->weight = set_weight_of(srv);
	}
	event_counts(ev, srv->be);
	return ev;
}

/* The same, when the weight in force moved from old. */
static struct pool_event *
weight_event(struct server *srv, int old, const char *by, struct pool_work *w)
{
	return set_weight_of(srv) == old ? NULL : weight_ev(srv, by, w);
}

/* The admin state in force moved from old to admin_of(srv): the health
 * check stops (maintenance) or runs now (back from it), and the queue
 * runs.  Under the lock. */
static void
admin_moved(struct pool *p, struct server *srv, enum srv_admin old,
            struct pool_work *w)
{
	enum srv_admin now = admin_of(srv);

	if (now == old)
		return;
	srv->last_change = wall_s(p);
	if (srv->checked) {
		w->check = srv;
		if (now == SRV_MAINT)
			w->check_stop = true;
		else if (old == SRV_MAINT) {
			atomic_store(&srv->traffic_fails, 0);
			/* Back from maintenance: UP but unconfirmed,
			 * checked at once (a failure makes it DOWN
			 * immediately). */
			health_init(&srv->health, srv->be->conf->check.rise,
			            srv->be->conf->check.fall);
			srv->up = !srv->agent_down;
			w->check_now = true;
		}
	}
}

/* After a change of admin state or weight: backend_up/backend_down, and
 * the waiters (a server back, or a backup stepping in for a drained
 * one), oldest first. */
static void
after_change(struct pool *p, struct server *srv, struct pool_work *w)
{
	backend_state(srv->be, w);
	if (srv->be->set == p->cur)
		run_queue(srv->be, w, false);
}

/* What an operator's change compares with. */
struct before {
	enum srv_admin admin, eff; /* the operator's, the one in force */
	int weight;                /* set_weight_of */
};

static struct before
before_of(const struct server *srv)
{
	struct before b = {srv->admin, admin_of(srv), set_weight_of(srv)};

	return b;
}

void
pool_set_admin(struct pool *p, struct server *srv, enum srv_admin admin,
               char *state, size_t len, struct pool_work *w)
{
	struct before b;

	lock(p);
	b = before_of(srv);
	srv->admin = admin;
	/* enable of a server the file disables is the operator's state
	 * too (kept in the state file as admin=ready). */
	srv->op_admin = admin != SRV_READY || srv->conf->disabled;
	if (admin == SRV_READY) {
		/* enable ends every operator override (load-balancer.conf(5),
		 * OPERATOR STATE): the configured weight comes
		 * back, and the agent's last words apply again. */
		srv->op_weight = false;
		srv->weight = srv->conf->weight;
	}
	admin_moved(p, srv, b.eff, w);
	if (b.admin == SRV_MAINT && admin != SRV_MAINT) {
		w->check = srv;
		w->agent_now = true;
	} else if (admin == SRV_MAINT && b.admin != SRV_MAINT) {
		w->check = srv;
		w->agent_stop = true;
	}
	if (b.admin != admin)
		admin_event(srv, admin, NULL, w);
	if (admin == SRV_READY && b.admin != SRV_READY &&
	    admin_of(srv) != SRV_READY)
		/* The agent's drain or maint is in force now. */
		admin_event(srv, admin_of(srv), "agent", w);
	weight_event(srv, b.weight, NULL, w);
	after_change(p, srv, w);
	if (state != NULL)
		state_text(srv, state, len);
	unlock(p);
}

int
pool_set_weight(struct pool *p, struct server *srv, int weight,
                struct pool_work *w)
{
	int old, old_set;

	lock(p);
	old = srv->weight;
	old_set = set_weight_of(srv);
	srv->weight = weight;
	srv->op_weight = true;
	weight_event(srv, old_set, NULL, w);
	after_change(p, srv, w);
	unlock(p);
	return old;
}

void
pool_restore(struct pool *p, struct server *srv, int admin, int weight,
             struct pool_work *w)
{
	struct before b;

	lock(p);
	b = before_of(srv);
	if (admin >= 0) {
		if (b.admin != SRV_MAINT && admin == SRV_MAINT) {
			w->check = srv;
			w->agent_stop = true;
		} else if (b.admin == SRV_MAINT && admin != SRV_MAINT) {
			w->check = srv;
			w->agent_now = true;
		}
		srv->admin = (enum srv_admin)admin;
		srv->op_admin = admin != SRV_READY || srv->conf->disabled;
	}
	if (weight >= 0) {
		srv->weight = weight;
		srv->op_weight = true;
	}
	admin_moved(p, srv, b.eff, w);
	/* Logged like the operator's command it restores, after the
	 * health log's start line (lbctl health-report reads them). */
	if (srv->admin != b.admin)
		admin_event(srv, srv->admin, NULL, w);
	weight_event(srv, b.weight, NULL, w);
	after_change(p, srv, w);
	unlock(p);
}

static void
failure_fields(struct pool_event *ev, const struct check_result *res)
{
	if (ev == NULL)
		return;
	ev->step = res->step;
	ev->code = res->code;
	ev->reply = res->reply != NULL ? res->reply : "";
	ev->reason = res->reason != NULL ? res->reason : "";
	ev->duration_ms = res->duration_ms;
}

/* srv is DOWN now (its health counter says so): the event, and what
 * follows.  Under the lock. */
static void
went_down(struct pool *p, struct server *srv, const struct check_result *res,
          unsigned failures, const char *by, struct pool_work *w)
{
	struct backend *be = srv->be;
	uint64_t now = p->wall_ms();
	struct pool_event *ev;

	srv->up = false;
	srv->down_since_ms = now;
	srv->last_change = (time_t)(now / 1000);
	ev = new_event(w, PEV_DOWN, be, srv);
	failure_fields(ev, res);
	if (ev != NULL) {
		ev->failures = failures;
		ev->by = by;
	}
	event_counts(ev, be);
	if (be->conf->on_marked_down == MD_SHUTDOWN_SESSIONS)
		w->close = srv;
	backend_state(be, w);
	/* Queued clients may now have nowhere to go. */
	if (be->set == p->cur)
		run_queue(be, w, true);
}

/* srv is UP again (its checks rose, or the agent's "up"): the event, a
 * slow start, and the queue.  Under the lock. */
static void
went_up(struct pool *p, struct server *srv, uint64_t duration_ms,
        const char *by, struct pool_work *w)
{
	struct backend *be = srv->be;
	uint64_t now = p->wall_ms();
	struct pool_event *ev;

	srv->up = true;
	atomic_store(&srv->traffic_fails, 0);
	srv->last_change = (time_t)(now / 1000);
	/* Slow start: after DOWN -> UP only (not at start, reload or
	 * enable). */
	srv->ramp_start_ms =
	    be->conf->slowstart_ms > 0 ? (p->mono_ms() ? p->mono_ms() : 1) : 0;
	if ((ev = new_event(w, PEV_UP, be, srv)) != NULL) {
		ev->by = by;
		ev->duration_ms = duration_ms;
		ev->successes = srv->health.passes;
		ev->downtime_s =
		    srv->down_since_ms != 0 && now > srv->down_since_ms
		        ? (now - srv->down_since_ms) / 1000
		        : 0;
	}
	event_counts(ev, be);
	backend_state(be, w);
	if (be->set == p->cur)
		run_queue(be, w, true);
}

void
pool_agent_result(struct pool *p, struct server *srv,
                  const struct agent_reply *r, const char *failure,
                  uint64_t duration_ms, struct pool_work *w)
{
	enum srv_admin old_eff;
	struct check_result res;
	char words[128];
	int old_weight, old_maxconn;
	struct pool_event *ev;

	lock(p);
	if (srv->be->set != p->cur) {
		unlock(p); /* a retired set's late answer */
		return;
	}
	srv->agent_checks++;
	if (r == NULL) {
		/* Unreachable, silent or garbage: counted, nothing else. */
		srv->agent_failures++;
		snprintf(srv->agent_last, sizeof(srv->agent_last),
		         "failed: %s (%llu ms)", failure != NULL ? failure : "",
		         (unsigned long long)duration_ms);
		unlock(p);
		return;
	}
	agent_format(r, words, sizeof(words));
	snprintf(srv->agent_last, sizeof(srv->agent_last), "%s (%llu ms)",
	         words, (unsigned long long)duration_ms);
	old_weight = set_weight_of(srv);
	old_maxconn = srv->agent_maxconn;
	old_eff = admin_of(srv);
	if (r->pct >= 0)
		srv->agent_pct = r->pct;
	if (r->maxconn >= 0)
		srv->agent_maxconn = r->maxconn;
	if (r->admin != AGENT_ADMIN_NONE)
		srv->agent_admin = r->admin == AGENT_DRAIN   ? SRV_DRAIN
		                   : r->admin == AGENT_MAINT ? SRV_MAINT
		                                             : SRV_READY;
	/* The operator's drain, maint or weight win (until enable).  A new
	 * maxconn:N is logged on a weight event too: every change the
	 * agent makes is in the health log (load-balancer.conf(5), AGENT
	 * CHECK). */
	ev = !srv->op_weight ? weight_event(srv, old_weight, "agent", w) : NULL;
	if (srv->agent_maxconn != old_maxconn &&
	    (ev != NULL || (ev = weight_ev(srv, "agent", w)) != NULL)) {
		ev->has_maxconn = true;
		ev->maxconn = srv->agent_maxconn;
	}
	admin_moved(p, srv, old_eff, w);
	if (admin_of(srv) != old_eff)
		admin_event(srv, admin_of(srv), "agent", w);
	if (r->health == AGENT_DOWN || r->health == AGENT_STOPPED ||
	    r->health == AGENT_FAIL) {
		static const char *const words_of[] = {[AGENT_DOWN] = "down",
		                                       [AGENT_STOPPED] =
		                                           "stopped",
		                                       [AGENT_FAIL] = "fail"};
		bool was = srv->agent_down;

		srv->agent_down = true;
		if (!was && srv->up) {
			memset(&res, 0, sizeof(res));
			res.reason = r->reason[0] != '\0' ? r->reason
			                                  : words_of[r->health];
			res.duration_ms = duration_ms;
			went_down(p, srv, &res, 0, "agent", w);
		}
	} else if (r->health == AGENT_UP && srv->agent_down) {
		/* Back to its health checks: UP now when they pass. */
		srv->agent_down = false;
		if (!srv->up && admin_of(srv) != SRV_MAINT &&
		    (!srv->checked || health_is_up(&srv->health)))
			went_up(p, srv, duration_ms, "agent", w);
	}
	after_change(p, srv, w);
	unlock(p);
}

void
pool_session_failed(struct pool *p, struct server *srv,
                    const struct check_result *res, bool retry,
                    struct pool_work *w)
{
	struct backend *be = srv->be, *n;
	struct server *s;
	unsigned fails;
	int limit;

	lock(p);
	/* The newest object of the same name: a reload may have replaced
	 * the one the session used (and its backend, even when the server
	 * was removed). */
	s = newest(srv);
	while ((n = backend_successor(be)) != NULL)
		be = n;
	if (retry)
		be->retries++;
	if (res == NULL) {
		/* The balancer's own failure: not the server's count. */
		unlock(p);
		return;
	}
	if (res->step != NULL && strcmp(res->step, "connect") == 0)
		s->connect_failures++;
	s->traffic_errors++;
	fails = atomic_load(&s->traffic_fails) + 1;
	atomic_store(&s->traffic_fails, fails);
	limit = s->be->conf->error_limit;
	if (limit > 0 && fails >= (unsigned)limit && s->checked && s->up &&
	    admin_of(s) != SRV_MAINT && s->be->set == p->cur &&
	    health_force_down(&s->health))
		went_down(p, s, res, fails, "traffic", w);
	unlock(p);
}

void
pool_session_ok(struct pool *p, struct server *srv)
{
	/* Written under the lock only, on the newest object of the name
	 * (a session may hold an older one across a reload); a stale
	 * non-zero read just takes the lock once more. */
	if (atomic_load_explicit(&newest(srv)->traffic_fails,
	                         memory_order_relaxed) == 0)
		return;
	lock(p);
	atomic_store(&newest(srv)->traffic_fails, 0);
	atomic_store(&srv->traffic_fails, 0);
	unlock(p);
}

void
pool_check_result(struct pool *p, struct server *srv,
                  const struct check_result *res, struct pool_work *w)
{
	struct backend *be = srv->be;
	const struct cfg_check *cc = &be->conf->check;
	struct pool_event *ev;
	int step;

	lock(p);
	if (admin_of(srv) == SRV_MAINT) {
		/* Maintenance: no checks (its check is stopped; a result
		 * that crossed the stop changes nothing). */
		unlock(p);
		return;
	}
	if (res->pass)
		snprintf(srv->last_check, sizeof(srv->last_check),
		         "passed (%llu ms)",
		         (unsigned long long)res->duration_ms);
	else if (res->code != 0)
		snprintf(srv->last_check, sizeof(srv->last_check),
		         "failed at %s: %d %s (%llu ms)", res->step, res->code,
		         res->reply != NULL ? res->reply : "",
		         (unsigned long long)res->duration_ms);
	else
		snprintf(srv->last_check, sizeof(srv->last_check),
		         "failed at %s: %s (%llu ms)", res->step,
		         res->reason != NULL ? res->reason : "",
		         (unsigned long long)res->duration_ms);
	srv->checks++;
	srv->last_check_ms = res->duration_ms;
	if (!res->pass && (step = health_step_index(res->step)) >= 0)
		srv->check_failures[step]++;
	switch (health_result(&srv->health, res->pass)) {
	case HEALTH_WENT_DOWN:
		/* (Already DOWN when the agent holds it so.) */
		if (srv->up)
			went_down(p, srv, res, srv->health.fails, NULL, w);
		break;
	case HEALTH_WENT_UP:
		if (!srv->agent_down)
			went_up(p, srv, res->duration_ms, NULL, w);
		break;
	case HEALTH_SAME:
		if (!res->pass && srv->up) {
			/* A failed check while still UP (going down). */
			ev = new_event(w, PEV_FAIL, be, srv);
			failure_fields(ev, res);
			if (ev != NULL)
				ev->failures = srv->health.fails;
			event_counts(ev, be);
		}
		break;
	}
	if (admin_of(srv) != SRV_MAINT) {
		w->check = srv;
		w->check_next = true;
		w->next_ms =
		    health_next_interval(&srv->health, cc->interval_ms,
		                         cc->fastinter_ms, cc->downinter_ms);
	}
	unlock(p);
}

void
pool_cert_seen(struct pool *p, struct server *srv, time_t not_after,
               const char *subject, struct pool_work *w)
{
	time_t now = wall_s(p);
	uint64_t warn_s = srv->be->conf->check.cert_expiry_warn_ms / 1000;
	struct pool_event *ev;

	lock(p);
	srv->cert_not_after = not_after;
	/* Once a day per server, not at every check. */
	if (not_after - now <= (time_t)warn_s &&
	    (srv->cert_warned == 0 || now - srv->cert_warned >= 86400)) {
		srv->cert_warned = now;
		if ((ev = new_event(w, PEV_CERT_EXPIRY, srv->be, srv)) !=
		    NULL) {
			ev->not_after = not_after;
			ev->subject = subject;
		}
	}
	unlock(p);
}

/* --- views ---------------------------------------------------------------- */

bool
pool_in_maint(struct pool *p, struct server *srv)
{
	bool maint;

	lock(p);
	maint = admin_of(srv) == SRV_MAINT;
	unlock(p);
	return maint;
}

bool
pool_agent_paused(struct pool *p, struct server *srv)
{
	bool maint;

	lock(p);
	maint = srv->admin == SRV_MAINT;
	unlock(p);
	return maint;
}

void
pool_state_text(struct pool *p, struct server *srv, char *buf, size_t len)
{
	lock(p);
	state_text(srv, buf, len);
	unlock(p);
}

size_t
pool_ready(struct pool *p,
           void (*problem)(void *arg, const struct cfg_backend *be), void *arg)
{
	const struct cfg_backend *bad[64];
	struct pool_set *set = NULL;
	size_t n = 0, b = 0, nbad;

	/* In chunks: the names are reported after unlocking (the callback
	 * writes output), 64 at a time. */
	do {
		nbad = 0;
		lock(p);
		if (set == NULL)
			set = p->cur;
		else if (p->cur != set) {
			unlock(p); /* a reload meanwhile: what was said stays */
			break;
		}
		for (; set != NULL && b < set->nbackends && nbad < 64; b++) {
			const struct backend *be = &set->backends[b];
			bool any = false;

			for (size_t i = 0; i < be->nservers && !any; i++)
				any = takes_sessions(&be->servers[i]);
			if (!any)
				bad[nbad++] = be->conf;
		}
		unlock(p);
		for (size_t i = 0; i < nbad; i++)
			problem(arg, bad[i]);
		n += nbad;
	} while (set != NULL && b < set->nbackends);
	return n;
}

static void
snap_server(struct pool_snap_server *o, struct server *s, uint64_t now)
{
	o->conf = s->conf;
	o->state = state_of(s);
	o->up = s->up;
	o->health = s->health; /* state_text: formatted after unlocking */
	o->takes = takes_sessions(s);
	o->alive = alive(s);
	o->checked = s->checked;
	o->weight = shown_weight(lb_weight(s, now));
	o->base_weight = s->weight;
	o->admin = s->admin;
	o->op_admin = s->op_admin;
	o->op_weight = s->op_weight;
	o->ramping = s->ramp_start_ms != 0;
	o->has_agent = s->conf->agent_addr.len > 0;
	o->agent_checks = s->agent_checks;
	o->agent_failures = s->agent_failures;
	memcpy(o->agent_last, s->agent_last, sizeof(o->agent_last));
	o->cur = s->cur_sess;
	o->max = s->max_sess;
	o->limit = limit_of(s);
	o->total = s->total_sess;
	o->connect_failures = s->connect_failures;
	o->traffic_errors = s->traffic_errors;
	o->traffic_fails = atomic_load(&s->traffic_fails);
	o->bytes_in = s->bytes_in;
	o->bytes_out = s->bytes_out;
	o->checks = s->checks;
	memcpy(o->check_failures, s->check_failures, sizeof(o->check_failures));
	o->last_check_ms = s->last_check_ms;
	o->last_change = s->last_change;
	o->cert_not_after = s->cert_not_after;
	memcpy(o->last_check, s->last_check, sizeof(o->last_check));
}

int
pool_snapshot(struct pool *p, struct pool_snap *snap)
{
	struct pool_set *set;
	size_t nsrv = 0;
	struct pool_snap_server *all;
	uint64_t now;

	memset(snap, 0, sizeof(*snap));
	/* The shape of the current set, to allocate before locking: only
	 * pool_install changes the current set, and then it is done again. */
	for (;;) {
		lock(p);
		set = p->cur;
		unlock(p);
		if (set == NULL)
			return 0;
		nsrv = 0;
		for (size_t b = 0; b < set->nbackends; b++)
			nsrv += set->backends[b].nservers;
		snap->backends = calloc(set->nbackends ? set->nbackends : 1,
		                        sizeof(*snap->backends));
		all = calloc(nsrv ? nsrv : 1, sizeof(*all));
		if (snap->backends == NULL || all == NULL) {
			free(snap->backends);
			free(all);
			snap->backends = NULL;
			return -1;
		}
		/* Touch every page now, not under the lock (a large calloc
		 * maps zero pages that fault in on first write). */
		for (size_t off = 0; off < (nsrv ? nsrv : 1) * sizeof(*all);
		     off += 4096)
			((volatile char *)all)[off] = 0;
		lock(p);
		if (p->cur == set)
			break;
		unlock(p);
		free(snap->backends);
		free(all);
	}
	snap->nbackends = set->nbackends;
	snap->all = all;
	now = p->mono_ms();
	for (size_t b = 0, k = 0; b < set->nbackends; b++) {
		struct backend *be = &set->backends[b];
		struct pool_snap_backend *o = &snap->backends[b];

		o->conf = be->conf;
		o->servers = all + k;
		o->nservers = be->nservers;
		o->cur = be->cur_sess;
		o->queued = be->queued;
		o->retries = be->retries;
		count_alive(be, &o->active, &o->backup);
		for (size_t i = 0; i < be->nservers; i++, k++) {
			snap_server(&all[k], &be->servers[i], now);
			o->takes += all[k].takes;
		}
	}
	unlock(p);
	for (size_t k = 0; k < nsrv; k++)
		format_state(all[k].state, all[k].checked, all[k].up,
		             &all[k].health, all[k].state_text,
		             sizeof(all[k].state_text));
	return 0;
}

void
pool_snap_free(struct pool_snap *snap)
{
	free(snap->all);
	free(snap->backends);
	snap->all = NULL;
	snap->backends = NULL;
	snap->nbackends = 0;
}
