/* The runtime root: builds frontends and backends from the configuration,
 * owns the event loop, signals and global session accounting. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "backend.h"
#include "check.h"
#include "ctl.h"
#include "healthlog.h"
#include "listener.h"
#include "relay.h"
#include "log.h"
#include "rt.h"
#include "server.h"
#include "session.h"
#include "stats.h"
#include "tls.h"
#include "xmalloc.h"

#define ACCEPT_PAUSE_MS 100
/* Busy event loops wait at most this long between passes
 * (LB_COALESCE_US; relay_pause_us). */
#define COALESCE_US_DEFAULT 400

/* Each session needs two descriptors.  Raise the soft limit as far as the
 * hard limit allows and cap the session count to what fits. */
static unsigned
fit_maxconn(unsigned want, unsigned nworkers)
{
	struct rlimit rl;
	/* Each worker thread holds an epoll descriptor and its wake-up
	 * pair besides the sessions. */
	rlim_t reserve = LB_FD_RESERVE + LB_PIPE_FDS +
	                 (rlim_t)LB_WORKER_FDS * (nworkers > 1 ? nworkers : 0);
	rlim_t need = (rlim_t)want * 2 + reserve;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return want;
	}
	if (rl.rlim_cur < need) {
		rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
			         (unsigned long long)rl.rlim_cur);
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return want;
	}
	if (rl.rlim_cur >= need)
		return want;
	fit = rl.rlim_cur > reserve + 2
	          ? (unsigned)((rl.rlim_cur - reserve) / 2)
	          : 1;
	log_warnx("maxconn %u needs %llu descriptors but the limit is %llu: "
	          "serving at most %u sessions at once",
	          want, (unsigned long long)need,
	          (unsigned long long)rl.rlim_cur, fit);
	return fit;
}

/* The runtime objects of one configuration. */
static void
build_objects(struct rt *rt, struct cfg *cfg, struct rt_gen *g)
{
	g->cfg = cfg;
	g->nbackends = cfg->nbackends;
	g->backends = xcalloc(cfg->nbackends, sizeof(*g->backends));
	for (size_t i = 0; i < cfg->nbackends; i++)
		backend_init(&g->backends[i], &cfg->backends[i], rt);

	g->nfrontends = cfg->nfrontends;
	g->frontends = xcalloc(cfg->nfrontends, sizeof(*g->frontends));
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		struct frontend *fe = &g->frontends[i];
		const struct cfg_frontend *fc = &cfg->frontends[i];

		fe->conf = fc;
		fe->rt = rt;
		fe->be = &g->backends[fc->backend];
		fe->nlisteners = fc->nbinds;
		fe->listeners = xcalloc(fc->nbinds, sizeof(*fe->listeners));
		for (size_t j = 0; j < fc->nbinds; j++) {
			fe->listeners[j].fe = fe;
			fe->listeners[j].addr = &fc->binds[j];
			fe->listeners[j].fd = -1;
		}
	}
}

/* Free what build_objects made (listeners closed, checks stopped). */
static void
free_objects(struct rt_gen *g)
{
	for (size_t i = 0; i < g->nfrontends; i++)
		frontend_free(&g->frontends[i]);
	free(g->frontends);
	for (size_t i = 0; i < g->nbackends; i++)
		backend_free(&g->backends[i]);
	free(g->backends);
	g->frontends = NULL;
	g->backends = NULL;
	g->nfrontends = g->nbackends = 0;
}

static char *
absolute_path(const char *path)
{
	char *p = realpath(path, NULL);

	return p != NULL ? p : xstrdup(path);
}

struct rt *
rt_new(struct cfg *cfg, bool foreground)
{
	struct rt *rt = xcalloc(1, sizeof(*rt));
	struct rt_gen g;

	rt->cfg = cfg;
	rt->foreground = foreground;
	{
		pthread_mutexattr_t ma;

		if (pthread_mutexattr_init(&ma) != 0 ||
		    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE) !=
		        0 ||
		    pthread_mutex_init(&rt->lock, &ma) != 0)
			fatalx("cannot create the runtime lock");
		pthread_mutexattr_destroy(&ma);
	}
	rt->main_tid = pthread_self();
	TAILQ_INIT(&rt->sessions);
	TAILQ_INIT(&rt->retired);
	rt->nworkers = rt_worker_count(cfg->global.workers);
	rt->max_sess = fit_maxconn((unsigned)cfg->global.maxconn, rt->nworkers);
	/* The daemon changes directory: reloads need the full path. */
	rt->config_path = absolute_path(cfg->file);
	build_objects(rt, cfg, &g);
	rt->frontends = g.frontends;
	rt->nfrontends = g.nfrontends;
	rt->backends = g.backends;
	rt->nbackends = g.nbackends;
	return rt;
}

/* global.user and global.group into rt, before anything is opened, so
 * that a typo stops the start before it binds or writes anything. */
static int
lookup_privileges(struct rt *rt)
{
	const struct cfg_global *g = &rt->cfg->global;
	struct passwd *pw;
	struct group *gr;

	if (g->user[0] != '\0') {
		errno = 0;
		if ((pw = getpwnam(g->user)) == NULL) {
			if (errno != 0)
				log_warn("user %s", g->user);
			else
				log_warnx("user %s: no such user", g->user);
			return -1;
		}
		rt->drop_uid = rt->drop_gid = true;
		rt->uid = pw->pw_uid;
		rt->gid = pw->pw_gid;
	}
	if (g->group[0] != '\0') {
		errno = 0;
		if ((gr = getgrnam(g->group)) == NULL) {
			if (errno != 0)
				log_warn("group %s", g->group);
			else
				log_warnx("group %s: no such group", g->group);
			return -1;
		}
		rt->drop_gid = true;
		rt->gid = gr->gr_gid;
	}
	return 0;
}

/* Transparent proxying needs CAP_NET_ADMIN or CAP_NET_RAW at every
 * server connection (source = "clientip") and at every bind of a
 * transparent listener (reload). */
static bool
needs_transparent(const struct rt *rt)
{
	for (size_t i = 0; i < rt->nbackends; i++)
		if (rt->backends[i].conf->source_mode == SRC_CLIENTIP)
			return true;
	for (size_t i = 0; i < rt->nfrontends; i++)
		if (rt->frontends[i].conf->transparent)
			return true;
	return false;
}

/* After setuid: keep only CAP_NET_ADMIN and CAP_NET_RAW (for
 * IP_TRANSPARENT), permitted and effective.  Returns 0 or -1 (logged). */
static int
keep_net_caps(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].permitted = d[0].effective =
	    (1u << CAP_NET_ADMIN) | (1u << CAP_NET_RAW);
	if (syscall(SYS_capset, &h, d) < 0) {
		log_warn("cannot keep CAP_NET_ADMIN for transparent proxying");
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		log_warn("prctl(PR_SET_KEEPCAPS, 0)");
	return 0;
}

/* chroot and user/group, last of the start-up: listeners, the control
 * socket, the health log, the pidfile and the checks' TLS files are all
 * open by now. */
static int
drop_privileges(struct rt *rt)
{
	const struct cfg_global *g = &rt->cfg->global;

	/* Supplementary groups need the user database: before chroot. */
	if (rt->drop_uid && rt->uid != geteuid() &&
	    initgroups(g->user, rt->gid) < 0) {
		log_warn("cannot set the groups of user %s", g->user);
		return -1;
	}
	if (!rt->drop_uid && rt->drop_gid && rt->gid != getegid() &&
	    setgroups(1, &rt->gid) < 0) {
		log_warn("cannot set the groups to %s", g->group);
		return -1;
	}
	if (g->chroot[0] != '\0' && (chroot(g->chroot) < 0 || chdir("/") < 0)) {
		log_warn("chroot %s", g->chroot);
		return -1;
	}
	if (rt->drop_gid && rt->gid != getegid() && setgid(rt->gid) < 0) {
		log_warn("cannot switch to group %lu", (unsigned long)rt->gid);
		return -1;
	}
	if (rt->drop_uid && rt->uid != geteuid()) {
		/* IP_TRANSPARENT must keep working as that user. */
		bool keep = needs_transparent(rt) && rt->uid != 0;

		if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
			log_warn("prctl(PR_SET_KEEPCAPS)");
			return -1;
		}
		if (setuid(rt->uid) < 0) {
			log_warn("cannot switch to user %s", g->user);
			return -1;
		}
		if (keep && keep_net_caps() < 0)
			return -1;
	}
	if (rt->drop_uid || rt->drop_gid || g->chroot[0] != '\0')
		log_info("running as uid %lu gid %lu%s%s",
		         (unsigned long)geteuid(), (unsigned long)getegid(),
		         g->chroot[0] != '\0' ? " in " : "", g->chroot);
	return 0;
}

int
rt_bind(struct rt *rt)
{
	const struct cfg_global *g = &rt->cfg->global;
	char err[512];

	if (lookup_privileges(rt) < 0)
		return -1;
	for (size_t i = 0; i < rt->nfrontends; i++)
		if (frontend_bind(&rt->frontends[i]) < 0)
			return -1;
	for (size_t i = 0; i < rt->nbackends; i++)
		if (backend_probe_source(&rt->backends[i]) < 0)
			return -1;
	/* The defaults (/run, /var/log) may be out of reach of a user
	 * trying things out: then say so and go on.  Paths written in the
	 * file must work. */
	if (g->control_socket[0] != '\0') {
		rt->ctl = ctl_bind(rt, g->control_socket);
		if (rt->ctl == NULL && g->control_socket_set)
			return -1;
		if (rt->ctl == NULL)
			log_warnx("running without a control socket (set "
			          "global.control_socket)");
	}
	if (g->stats_listen[0] != '\0') {
		rt->stats = stats_bind(rt);
		if (rt->stats == NULL && g->stats_listen_set)
			return -1;
		if (rt->stats == NULL)
			log_warnx("running without the status page (set "
			          "global.stats_listen)");
	}
	if (g->health_log[0] != '\0') {
		rt->hlog = healthlog_open(g->health_log, err, sizeof(err));
		if (rt->hlog == NULL && g->health_log_set) {
			log_warnx("%s", err);
			return -1;
		}
		if (rt->hlog == NULL)
			log_warnx("%s: health events go to syslog only (set "
			          "global.health_log)",
			          err);
	}
	if (rt->hlog == NULL &&
	    (rt->hlog = healthlog_open("", err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

/* The STARTTLS checks' client contexts (CA files are read here, before
 * any chroot).  Returns 0, or -1 after logging why. */
static int
prepare_tls(struct backend *bes, size_t n)
{
	char err[512];

	for (size_t b = 0; b < n; b++) {
		struct backend *be = &bes[b];
		const struct cfg_check *c = &be->conf->check;

		if (!be->conf->has_check || !c->starttls)
			continue;
		if ((be->tls_ctx = tls_client_ctx(c, err, sizeof(err))) ==
		    NULL) {
			log_warnx("backend %s: %s", be->conf->name, err);
			return -1;
		}
	}
	return 0;
}

/* One check per checked server, first checks spread over the first
 * interval. */
static int
start_checks(struct backend *bes, size_t nb)
{
	for (size_t b = 0; b < nb; b++) {
		struct backend *be = &bes[b];
		const struct cfg_check *c = &be->conf->check;
		size_t n = 0, k = 0;

		if (!be->conf->has_check)
			continue;
		for (size_t i = 0; i < be->nservers; i++)
			n += be->servers[i].checked;
		for (size_t i = 0; i < be->nservers; i++) {
			struct server *srv = &be->servers[i];
			uint64_t slot;

			if (!srv->checked)
				continue;
			if ((srv->check = check_new(srv, be->tls_ctx)) ==
			    NULL) {
				log_warn("server %s/%s: cannot set up its "
				         "check",
				         be->conf->name, srv->conf->name);
				return -1;
			}
			slot = c->interval_ms / n;
			check_schedule(
			    srv->check,
			    slot * k++ +
			        (slot > 1 ? (uint64_t)random() % (slot / 2 + 1)
			                  : 0));
		}
	}
	return 0;
}

static void
stop_checks(struct backend *bes, size_t nb)
{
	for (size_t b = 0; b < nb; b++)
		for (size_t i = 0; i < bes[b].nservers; i++) {
			check_free(bes[b].servers[i].check);
			bes[b].servers[i].check = NULL;
		}
}

/* Close every session; the loop ends when the last one is gone (at
 * once with one worker; sessions of worker threads close in their own
 * thread and the count reaching 0 ends it). */
static void
stop_now(struct rt *rt)
{
	session_close_all(rt, END_SHUTDOWN);
	if (rt->cur_sess == 0)
		event_base_loopexit(rt->base, NULL);
}

static void
grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt *rt = arg;

	(void)fd;
	(void)what;
	rt_lock(rt);
	log_info("grace period over: closing %u remaining sessions",
	         rt->cur_sess);
	stop_now(rt);
	rt_unlock(rt);
}

static void sig_handle(struct rt *rt, int sig);

static void
sig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct rt *rt = arg;

	(void)what;
	rt_lock(rt);
	sig_handle(rt, (int)sig);
	rt_unlock(rt);
}

static void
sig_handle(struct rt *rt, int sig)
{
	switch (sig) {
	case SIGTERM:
		if (rt->stopping)
			return;
		rt->stopping = true;
		log_info("SIGTERM: stopping; %u sessions may finish within "
		         "%llums",
		         rt->cur_sess,
		         (unsigned long long)rt->cfg->global.grace_ms);
		for (size_t i = 0; i < rt->nfrontends; i++)
			frontend_close(&rt->frontends[i]);
		if (rt->cur_sess == 0) {
			event_base_loopexit(rt->base, NULL);
			return;
		}
		{
			uint64_t ms = rt->cfg->global.grace_ms;
			struct timeval tv = {(time_t)(ms / 1000),
			                     (suseconds_t)(ms % 1000) * 1000};
			evtimer_add(rt->grace_timer, &tv);
		}
		break;
	case SIGINT:
		log_info("SIGINT: stopping now, closing %u sessions",
		         rt->cur_sess);
		rt->stopping = true;
		for (size_t i = 0; i < rt->nfrontends; i++)
			frontend_close(&rt->frontends[i]);
		stop_now(rt);
		break;
	case SIGHUP: {
		char msg[512];
		(void)rt_reload(rt, msg, sizeof(msg), NULL);
		break;
	}
	case SIGUSR1:
		if (healthlog_reopen(rt->hlog) == 0)
			log_info("SIGUSR1: health log reopened");
		break;
	}
}

static void
accept_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt *rt = arg;

	(void)fd;
	(void)what;
	rt_lock(rt);
	rt->accept_paused = false;
	listeners_update(rt);
	rt_unlock(rt);
}

/* A worker changed the session count: the listeners are the main
 * thread's. */
static void
update_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt *rt = arg;

	(void)fd;
	(void)what;
	rt_lock(rt);
	listeners_update(rt);
	rt_unlock(rt);
}

void
rt_lock(struct rt *rt)
{
	int e = pthread_mutex_lock(&rt->lock);

	if (e != 0) {
		errno = e;
		fatal("runtime lock");
	}
}

void
rt_unlock(struct rt *rt)
{
	int e = pthread_mutex_unlock(&rt->lock);

	if (e != 0) {
		errno = e;
		fatal("runtime unlock");
	}
}

int
rt_ready(struct rt *rt, const char *prefix, struct evbuffer *out)
{
	int problems = 0;

	if (rt->stopping) {
		evbuffer_add_printf(out, "%sthe daemon is stopping\n", prefix);
		problems++;
	}
	for (size_t b = 0; b < rt->nbackends; b++) {
		const struct backend *be = &rt->backends[b];
		bool any = false;

		/* A drained, disabled or weight-0 server takes no new
		 * session: clients would get unavailable_reply. */
		for (size_t i = 0; i < be->nservers && !any; i++)
			any = server_usable(&be->servers[i]);
		if (!any) {
			evbuffer_add_printf(out,
			                    "%sbackend %s has no server UP\n",
			                    prefix, be->conf->name);
			problems++;
		}
	}
	return problems;
}

bool
rt_on_worker(const struct worker *w)
{
	return pthread_equal(pthread_self(), w->tid) != 0;
}

struct worker *
rt_pick_worker(struct rt *rt)
{
	struct worker *best = NULL;

	/* Fewest sessions; ties go round, so that a quiet daemon spreads
	 * its first clients too. */
	for (unsigned k = 0; k < rt->nworkers; k++) {
		struct worker *w =
		    &rt->workers[(rt->next_worker + k) % rt->nworkers];
		if (best == NULL || w->nsess < best->nsess)
			best = w;
	}
	rt->next_worker = (rt->next_worker + 1) % rt->nworkers;
	return best;
}

unsigned
rt_worker_count(int configured)
{
	cpu_set_t set;
	long n;

	if (configured > 0)
		return (unsigned)configured;
	/* One per CPU this process may run on (taskset, cgroups' cpusets),
	 * as HAProxy's nbthread default. */
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

void
rt_pause_accept(struct rt *rt)
{
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};

	rt->accept_paused = true;
	rt->accept_warned = true; /* one warning per shortage */
	evtimer_add(rt->accept_timer, &tv);
	if (pthread_equal(pthread_self(), rt->main_tid))
		listeners_update(rt);
	else
		event_active(rt->update_ev, EV_TIMEOUT, 0);
}

void
rt_session_count(struct rt *rt, int delta)
{
	if (delta > 0) {
		rt->cur_sess += (unsigned)delta;
		rt->total_sess += (unsigned)delta;
	} else if (rt->cur_sess >= (unsigned)-delta)
		rt->cur_sess -= (unsigned)-delta;
	if (rt->stopping && rt->cur_sess == 0 && rt->base != NULL)
		event_base_loopexit(rt->base, NULL);
	if (pthread_equal(pthread_self(), rt->main_tid))
		listeners_update(rt);
	else if (listeners_stale(rt))
		event_active(rt->update_ev, EV_TIMEOUT, 0);
}

static struct event_base *
new_base(void)
{
	/* The changelist folds the several changes a session makes to one
	 * descriptor within a loop turn into one epoll_ctl. */
	struct event_config *ec = event_config_new();
	struct event_base *base = NULL;

	if (ec != NULL && event_config_set_flag(
	                      ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
		base = event_base_new_with_config(ec);
	if (ec != NULL)
		event_config_free(ec);
	return base;
}

/* The workers' bases, relay contexts and mailboxes (threads start after
 * the privilege drop: a new thread inherits the creator's capabilities,
 * which capset changes per thread). */
static int
make_workers(struct rt *rt)
{
	const char *sp = getenv("LB_SPLICE");
	/* Splice for bulk transfers unless LB_SPLICE=0 (to measure both). */
	bool splice = sp == NULL || strcmp(sp, "0") != 0;

	const char *co = getenv("LB_COALESCE_US");

	/* LB_COALESCE_US=0 turns coalescing off (to measure both). */
	rt->coalesce_us = COALESCE_US_DEFAULT;
	if (co != NULL) {
		char *end;
		unsigned long v = strtoul(co, &end, 10);

		if (end != co && *end == '\0' && v <= 100000)
			rt->coalesce_us = (unsigned)v;
		else
			log_warnx("LB_COALESCE_US=%s: not a number of "
			          "microseconds up to 100000; using %u",
			          co, rt->coalesce_us);
	}
	rt->workers = xcalloc(rt->nworkers, sizeof(*rt->workers));
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		w->rt = rt;
		w->id = i;
		/* Worker 0 is the main thread: the sessions it is given
		 * need no hand-over. */
		w->thread = i > 0;
		w->tid = rt->main_tid;
		TAILQ_INIT(&w->mail);
		w->base = w->thread ? new_base() : rt->base;
		if (w->base == NULL) {
			log_warnx("cannot create the event loop of worker %u",
			          i);
			return -1;
		}
		w->relay = relay_ctx_new(splice, rt->nworkers);
		w->wake = event_new(w->base, -1, 0, session_mail_cb, w);
		if (w->relay == NULL || w->wake == NULL) {
			log_warnx("cannot set up worker %u", i);
			return -1;
		}
	}
	return 0;
}

/* A worker's event loop.  Under load, waking up for every single event
 * costs more than the event: the loop sleeps, the next segment wakes it
 * (an inter-processor interrupt from the sender's CPU), it relays a few
 * bytes and sleeps again.  So, as interrupt moderation in a network card,
 * after a pass that relayed something the loop pauses before it polls
 * again (epoll_wait without blocking), and handles what arrived meanwhile
 * in one pass; only a pass that relayed nothing goes back to a blocking
 * wait.  The pause follows the load (relay_pause_us): 50 us after a pass
 * of one or two reads, 25 us more per read up to coalesce_us, 50 us while
 * a transfer streams.  Measured (bench/): a fixed 50 us pause took the
 * smtp benchmark from 1.5 to 0.3 context switches per message; growing
 * it with the load up to 400 us took connrate from 0.65 to 0.20 per
 * session, smtp to 0.10 per message.  The price is at most coalesce_us
 * of added latency per pass while busy; an idle loop blocks and answers
 * the first event at once. */
static int
worker_loop(struct worker *w)
{
	struct event_base *base = w->base;

	if (w->rt->coalesce_us == 0)
		return event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	for (;;) {
		unsigned long reads = relay_ctx_reads(w->relay);
		unsigned long bulk = relay_ctx_bulk(w->relay);
		unsigned us;

		if (event_base_loop(base,
		                    EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY) < 0)
			return -1;
		while (!event_base_got_exit(base) &&
		       (us = relay_pause_us(relay_ctx_reads(w->relay) - reads,
		                            relay_ctx_bulk(w->relay) - bulk,
		                            w->rt->coalesce_us)) > 0) {
			struct timespec pause = {0, (long)us * 1000};

			reads = relay_ctx_reads(w->relay);
			bulk = relay_ctx_bulk(w->relay);
			(void)nanosleep(&pause, NULL);
			if (event_base_loop(base, EVLOOP_NONBLOCK) < 0)
				return -1;
		}
		if (event_base_got_exit(base))
			return 0;
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	char name[16];

	/* The creator set w->tid under the lock. */
	rt_lock(w->rt);
	rt_unlock(w->rt);
	/* For top -H, ps -L and /proc/PID/task/N/comm. */
	snprintf(name, sizeof(name), "lb-worker-%u", w->id);
	(void)pthread_setname_np(pthread_self(), name);
	if (worker_loop(w) < 0)
		fatalx("worker %u: event loop failed", w->id); /* its sessions
		                                                * would hang */
	return NULL;
}

static int
start_workers(struct rt *rt)
{
	sigset_t all, old;
	int e = 0;

	if (rt->nworkers <= 1)
		return 0;
	/* Signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rt_lock(rt);
	for (unsigned i = 0; i < rt->nworkers && e == 0; i++) {
		struct worker *w = &rt->workers[i];

		if (w->thread &&
		    (e = pthread_create(&w->tid, NULL, worker_main, w)) == 0)
			w->running = true;
		else
			w->tid = rt->main_tid;
	}
	rt_unlock(rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		errno = e;
		log_warn("cannot start the worker threads");
		return -1;
	}
	log_info("%u workers", rt->nworkers);
	return 0;
}

/* After the main loop: every worker loop ends, its thread is joined. */
static void
stop_workers(struct rt *rt)
{
	for (unsigned i = 0; rt->workers != NULL && i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		if (!w->running)
			continue;
		event_base_loopexit(w->base, NULL);
		pthread_join(w->tid, NULL);
		rt_lock(rt);
		w->running = false;
		w->tid = rt->main_tid; /* its sessions: ours now */
		rt_unlock(rt);
	}
}

static void
free_workers(struct rt *rt)
{
	for (unsigned i = 0; rt->workers != NULL && i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		if (w->wake != NULL)
			event_free(w->wake);
		relay_ctx_free(w->relay);
		if (w->base != NULL && w->base != rt->base)
			event_base_free(w->base);
	}
	free(rt->workers);
	rt->workers = NULL;
}

int
rt_start(struct rt *rt)
{
	struct event **sigs[] = {&rt->sig_term, &rt->sig_int, &rt->sig_hup,
	                         &rt->sig_usr1};
	int signums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};

	rt->main_tid = pthread_self(); /* after a daemon's fork */
	/* rt->nworkers: counted in rt_new (the descriptor budget). */
	/* libevent's locking only when threads share the loops' events. */
	if (rt->nworkers > 1 && evthread_use_pthreads() < 0) {
		log_warnx("cannot set up libevent for threads");
		return -1;
	}
	if ((rt->base = new_base()) == NULL) {
		log_warnx("cannot create the event loop");
		return -1;
	}
	if ((rt->update_ev = event_new(rt->base, -1, 0, update_cb, rt)) ==
	        NULL ||
	    make_workers(rt) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(signums); i++) {
		*sigs[i] = evsignal_new(rt->base, signums[i], sig_cb, rt);
		if (*sigs[i] == NULL || evsignal_add(*sigs[i], NULL) < 0) {
			log_warnx("cannot watch signal %d", signums[i]);
			return -1;
		}
	}
	rt->grace_timer = evtimer_new(rt->base, grace_cb, rt);
	rt->accept_timer = evtimer_new(rt->base, accept_timer_cb, rt);
	if (rt->grace_timer == NULL || rt->accept_timer == NULL) {
		log_warnx("cannot create timers");
		return -1;
	}
	for (size_t i = 0; i < rt->nfrontends; i++)
		if (frontend_start(&rt->frontends[i], rt->base) < 0)
			return -1;
	if (rt->ctl != NULL && ctl_start(rt->ctl, rt->base) < 0)
		return -1;
	if (rt->stats != NULL && stats_start(rt->stats, rt->base) < 0)
		return -1;
	if (prepare_tls(rt->backends, rt->nbackends) < 0 ||
	    start_checks(rt->backends, rt->nbackends) < 0)
		return -1;
	rt->started = time(NULL);
	{
		/* Marks a (re)start in the health log: every server starts
		 * UP again from here (lbctl health-report relies on it). */
		struct lf l;
		size_t nsrv = 0;

		for (size_t b = 0; b < rt->nbackends; b++)
			nsrv += rt->backends[b].nservers;
		lf_init(&l);
		lf_add(&l, "event", "start");
		lf_add(&l, "version", PACKAGE_VERSION);
		lf_addf(&l, "pid", "%ld", (long)getpid());
		lf_addf(&l, "backends", "%zu", rt->nbackends);
		lf_addf(&l, "servers", "%zu", nsrv);
		healthlog_write(rt->hlog, &l);
	}
	listeners_update(rt);
	if (drop_privileges(rt) < 0)
		return -1;
	return start_workers(rt);
}

int
rt_run(struct rt *rt)
{
	int rc = 0;

	if (worker_loop(&rt->workers[0]) < 0) {
		log_warnx("event loop failed");
		rc = 1;
	}
	stop_workers(rt);
	return rc;
}

void
rt_free(struct rt *rt)
{
	if (rt == NULL)
		return;
	struct event *evs[] = {rt->sig_term, rt->sig_int,     rt->sig_hup,
	                       rt->sig_usr1, rt->grace_timer, rt->accept_timer};

	/* Worker threads are joined (rt_run, or never started): what is
	 * left is closed here, in this thread. */
	stop_workers(rt);
	if (rt->base != NULL)
		session_close_all(rt, END_SHUTDOWN);
	ctl_free(rt->ctl);
	stats_free(rt->stats);
	{
		struct rt_gen cur = {.frontends = rt->frontends,
		                     .nfrontends = rt->nfrontends,
		                     .backends = rt->backends,
		                     .nbackends = rt->nbackends};
		struct rt_gen *g;

		free_objects(&cur);
		while ((g = TAILQ_FIRST(&rt->retired)) != NULL) {
			TAILQ_REMOVE(&rt->retired, g, entry);
			free_objects(g);
			cfg_free(g->cfg);
			free(g);
		}
	}
	free(rt->config_path);
	free_workers(rt);
	cfg_free(rt->cfg);
	for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	if (rt->update_ev != NULL)
		event_free(rt->update_ev);
	if (rt->base != NULL)
		event_base_free(rt->base);
	healthlog_close(rt->hlog);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

/* --- reload ------------------------------------------------------------ */

struct frontend *
rt_find_frontend(struct rt *rt, const char *name)
{
	for (size_t i = 0; i < rt->nfrontends; i++)
		if (strcmp(rt->frontends[i].conf->name, name) == 0)
			return &rt->frontends[i];
	return NULL;
}

struct backend *
rt_find_backend(struct rt *rt, const char *name)
{
	for (size_t i = 0; i < rt->nbackends; i++)
		if (strcmp(rt->backends[i].conf->name, name) == 0)
			return &rt->backends[i];
	return NULL;
}

void
rt_gen_unref(struct rt *rt, struct rt_gen *g)
{
	if (g->refs > 0 && --g->refs > 0)
		return;
	TAILQ_REMOVE(&rt->retired, g, entry);
	free_objects(g);
	cfg_free(g->cfg);
	free(g);
}

/* Settings a running process cannot take: say so, keep the old ones. */
static void
warn_restart_only(const struct cfg_global *o, const struct cfg_global *n)
{
	static const char fmt[] = "reload: %s changed; it takes effect at "
	                          "the next restart";

	if (strcmp(o->user, n->user) != 0)
		log_warnx(fmt, "global.user");
	if (strcmp(o->group, n->group) != 0)
		log_warnx(fmt, "global.group");
	if (strcmp(o->chroot, n->chroot) != 0)
		log_warnx(fmt, "global.chroot");
	if (strcmp(o->pidfile, n->pidfile) != 0)
		log_warnx(fmt, "global.pidfile");
	if (o->daemon != n->daemon)
		log_warnx(fmt, "global.daemon");
	if (strcmp(o->control_socket, n->control_socket) != 0)
		log_warnx(fmt, "global.control_socket");
	if (strcmp(o->health_log, n->health_log) != 0)
		log_warnx(fmt, "global.health_log");
	if (strcmp(o->stats_listen, n->stats_listen) != 0)
		log_warnx(fmt, "global.stats_listen");
	if (o->workers != n->workers)
		log_warnx(fmt, "global.workers");
}

/* Everything that can fail, before anything changes.  Returns 0, or -1
 * after logging why. */
static int
reload_prepare(struct rt *rt, struct rt_gen *g)
{
	for (size_t i = 0; i < g->nfrontends; i++)
		if (frontend_bind_reload(&g->frontends[i], rt->frontends,
		                         rt->nfrontends) < 0)
			return -1;
	for (size_t i = 0; i < g->nbackends; i++)
		if (backend_probe_source(&g->backends[i]) < 0)
			return -1;
	return prepare_tls(g->backends, g->nbackends);
}

/* Carry server states and counters over to the new objects by name. */
static void
reload_inherit(struct rt *rt, struct rt_gen *g)
{
	for (size_t b = 0; b < g->nbackends; b++) {
		struct backend *nb = &g->backends[b];
		struct backend *ob = rt_find_backend(rt, nb->conf->name);

		if (ob != NULL)
			nb->retries = ob->retries; /* a counter (/metrics) */
		for (size_t i = 0; ob != NULL && i < nb->nservers; i++) {
			struct server *os =
			    backend_find_server(ob, nb->servers[i].conf->name);
			if (os != NULL)
				server_inherit(&nb->servers[i], os);
		}
		backend_refresh_alive(nb);
	}
	for (size_t f = 0; f < g->nfrontends; f++) {
		struct frontend *of =
		    rt_find_frontend(rt, g->frontends[f].conf->name);
		if (of == NULL)
			continue;
		/* Counters (/metrics) go on across reloads. */
		g->frontends[f].total_sess = of->total_sess;
		g->frontends[f].refused = of->refused;
		g->frontends[f].bytes_in = of->bytes_in;
		g->frontends[f].bytes_out = of->bytes_out;
	}
}

static void
tap_detail(const char *line, void *arg)
{
	evbuffer_add_printf(arg, "%s\n", line);
}

int
rt_reload(struct rt *rt, char *msg, size_t len, struct evbuffer *detail)
{
	struct cfg_diag diag;
	struct rt_gen *old, g;
	struct cfg *ncfg;
	size_t nsrv = 0;
	unsigned pinned;
	int prepared;

	if (rt->stopping) {
		snprintf(msg, len, "reload refused: the daemon is stopping");
		log_warnx("%s", msg);
		return -1;
	}
	log_info("reloading %s", rt->config_path);
	cfg_diag_init(&diag);
	ncfg = cfg_load_file(rt->config_path, &diag);
	for (size_t i = 0; i < diag.n; i++) {
		log_warnx("%s", diag.msgs[i]);
		if (detail != NULL)
			evbuffer_add_printf(detail, "%s\n", diag.msgs[i]);
	}
	if (ncfg == NULL) {
		snprintf(msg, len,
		         "reload failed: %s has %zu error%s; still running the "
		         "previous configuration",
		         rt->config_path, diag.nerrors,
		         diag.nerrors == 1 ? "" : "s");
		log_warnx("%s", msg);
		cfg_diag_free(&diag);
		return -1;
	}
	cfg_diag_free(&diag);
	build_objects(rt, ncfg, &g);
	if (detail != NULL)
		log_set_tap(tap_detail, detail);
	prepared = reload_prepare(rt, &g);
	log_set_tap(NULL, NULL);
	if (prepared < 0) {
		free_objects(&g);
		cfg_free(ncfg);
		snprintf(msg, len,
		         "reload failed: the new configuration cannot be "
		         "applied; still running the previous configuration");
		log_warnx("%s", msg);
		return -1;
	}
	warn_restart_only(&rt->cfg->global, &ncfg->global);

	/* From here on nothing fails: swap. */
	reload_inherit(rt, &g);
	stop_checks(rt->backends, rt->nbackends);
	old = xcalloc(1, sizeof(*old));
	old->cfg = rt->cfg;
	old->frontends = rt->frontends;
	old->nfrontends = rt->nfrontends;
	old->backends = rt->backends;
	old->nbackends = rt->nbackends;
	rt->cfg = ncfg;
	rt->frontends = g.frontends;
	rt->nfrontends = g.nfrontends;
	rt->backends = g.backends;
	rt->nbackends = g.nbackends;
	for (size_t i = 0; i < rt->nfrontends; i++)
		if (frontend_start(&rt->frontends[i], rt->base) < 0)
			log_warnx("reload: frontend %s does not listen on "
			          "every address",
			          rt->frontends[i].conf->name);
	for (size_t i = 0; i < old->nfrontends; i++)
		frontend_close(&old->frontends[i]);
	if (start_checks(rt->backends, rt->nbackends) < 0)
		log_warnx("reload: some health checks could not start");
	TAILQ_INSERT_TAIL(&rt->retired, old, entry);
	old->refs = 1; /* held while sessions move */
	pinned = session_migrate_all(rt, old);

	rt->max_sess =
	    fit_maxconn((unsigned)ncfg->global.maxconn, rt->nworkers);
	{
		/* Reopening syslog is avoided when nothing changed: inside a
		 * chroot /dev/log may be out of reach. */
		const struct cfg_log *a = &old->cfg->global.log,
		                     *b = &ncfg->global.log;
		if (a->syslog != b->syslog || a->facility != b->facility ||
		    a->level != b->level || strcmp(a->ident, b->ident) != 0)
			log_configure(b->syslog, b->facility, b->ident,
			              b->level, rt->foreground);
	}
	rt->reloads++;
	for (size_t b = 0; b < rt->nbackends; b++)
		nsrv += rt->backends[b].nservers;
	snprintf(msg, len,
	         "reloaded %s: %zu frontends, %zu backends, %zu servers; %u "
	         "sessions stay on removed servers or frontends until they "
	         "end",
	         rt->config_path, rt->nfrontends, rt->nbackends, nsrv, pinned);
	log_info("%s", msg);
	rt_gen_unref(rt, old);
	for (size_t b = 0; b < rt->nbackends; b++)
		backend_process_queue(&rt->backends[b]);
	listeners_update(rt);
	return 0;
}
