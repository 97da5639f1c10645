/* The runtime: start, the threads, signals and stop (see rt.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "counters.h"
#include "ctl.h"
#include "daemon.h"
#include "gen.h"
#include "healthlog.h"
#include "listener.h"
#include "log.h"
#include "mailbox.h"
#include "monitor.h"
#include "opstate.h"
#include "pool.h"
#include "privs.h"
#include "reload.h"
#include "rt.h"
#include "session.h"
#include "stats.h"
#include "work.h"
#include "worker.h"
#include "xmalloc.h"

/* What the main thread asks of the control thread (its mail's ops). */
enum {
	CTL_RELOAD = 1, /* SIGHUP */
	CTL_REOPEN = 2, /* SIGUSR1 */
	CTL_EXIT = 4,
};

struct rt {
	bool foreground;
	struct privs privs;
	struct counters cnt;
	struct pool *pool;
	struct healthlog *hlog; /* "" path: syslog only */
	struct work_env wenv;
	/* Main thread: worker 0, accepting, signals. */
	struct event_base *base;
	struct workers workers;
	struct acceptor *acc;
	struct mail main_mail; /* MAIN_* (session.h) */
	struct event *grace_timer;
	struct event *sig_term, *sig_int, *sig_hup, *sig_usr1;
	/* Control thread: control socket, status page, checks, reloads. */
	struct event_base *ctl_base;
	struct mailbox *ctl_mb;
	struct mail ctl_mail; /* CTL_* */
	pthread_t ctl_tid;
	bool ctl_running;
	struct reloader reload; /* the running generation and its checks */
	struct ctl *ctl;        /* NULL: no control socket */
	struct ctl_env ctl_env;
	struct stats *stats; /* NULL: no status page (stats_listen) */
	struct stats_env stats_env;
	struct opstate state; /* global.state_file */
	int notify_fd;        /* NOTIFY_SOCKET, -1: none */
	char ready_msg[160];  /* READY=1 and what we serve (rt_start) */
	/* main's pidfile: released by the control thread at a takeover. */
	_Atomic(struct pidfile *) pidfile;
};

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
	unsigned nworkers = workers_count(cfg->global.workers);

	rt->foreground = foreground;
	rt->notify_fd = -1;
	rt->reload.notify_fd = -1;
	atomic_init(&rt->pidfile, NULL);
	TAILQ_INIT(&rt->reload.pending);
	/* The daemon changes directory: reloads need the full path. */
	rt->reload.config_path = absolute_path(cfg->file);
	rt->reload.foreground = foreground;
	atomic_init(&rt->cnt.max_sess,
	            privs_fit_maxconn((unsigned)cfg->global.maxconn, nworkers));
	atomic_init(&rt->cnt.grace_ms, cfg->global.grace_ms);
	if ((rt->pool = pool_new()) == NULL ||
	    (rt->reload.cur = gen_new(cfg)) == NULL) {
		log_warnx("out of memory");
		if (rt->pool == NULL)
			cfg_free(cfg);
		pool_free(rt->pool);
		free(rt->reload.config_path);
		free(rt);
		return NULL;
	}
	rt->workers.n = nworkers; /* until workers_init */
	return rt;
}

int
rt_bind(struct rt *rt, struct sock_inherit *inh, bool takeover)
{
	struct gen *g = rt->reload.cur;
	const struct cfg_global *gl = &g->cfg->global;
	char err[512];

	/* Before any chroot: the service manager's socket, and the
	 * listening sockets it kept for us (load-balancer(8), SYSTEMD). */
	rt->notify_fd = daemon_notify_open();
	rt->reload.notify_fd = rt->notify_fd;
	if (inh != NULL && daemon_listen_fds(inh) > 0)
		log_info("%zu listening sockets from the service manager",
		         inh->n);
	if (privs_lookup(&rt->privs, gl) < 0)
		return -1;
	for (size_t i = 0; i < g->nfrontends; i++)
		if (frontend_bind(&g->frontends[i], inh) < 0)
			return -1;
	if (gen_probe_sources(g) < 0)
		return -1;
	/* The defaults (/run, /var/log) may be out of reach of a user
	 * trying things out: then say so and go on.  Paths written in the
	 * file must work. */
	if (gl->control_socket[0] != '\0') {
		rt->ctl = ctl_bind(gl->control_socket, takeover);
		if (rt->ctl == NULL && gl->control_socket_set)
			return -1;
		if (rt->ctl == NULL)
			log_warnx("running without a control socket (set "
			          "global.control_socket)");
	}
	if (gl->stats_listen[0] != '\0') {
		rt->stats = stats_bind(gl, inh);
		if (rt->stats == NULL && gl->stats_listen_set)
			return -1;
		if (rt->stats == NULL)
			log_warnx("running without the status page (set "
			          "global.stats_listen)");
	}
	if (gl->health_log[0] != '\0') {
		rt->hlog = healthlog_open(gl->health_log, err, sizeof(err));
		if (rt->hlog == NULL && gl->health_log_set) {
			log_warnx("%s", err);
			return -1;
		}
		if (rt->hlog == NULL)
			log_warnx("%s: health events go to syslog only (set "
			          "global.health_log)",
			          err);
	}
	/* Without a file: syslog only, and the last lines in memory for
	 * `show health`. */
	if (rt->hlog == NULL &&
	    (rt->hlog = healthlog_open("", err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	/* Its directory now: before the chroot and the privilege drop. */
	opstate_open(&rt->state, gl);
	if (inh != NULL && inh->n > 0) {
		/* Addresses this configuration no longer has: out of the
		 * service manager's store too, so that they close. */
		for (size_t i = 0; i < inh->n; i++)
			daemon_unstore_addr(
			    rt->notify_fd,
			    (const struct sockaddr *)&inh->addr[i]);
		log_info("%zu inherited listening sockets are not in this "
		         "configuration: closed",
		         sock_inherit_close(inh));
	}
	return 0;
}

void
rt_set_pidfile(struct rt *rt, struct pidfile *pf)
{
	atomic_store(&rt->pidfile, pf);
}

void
rt_ready(struct rt *rt)
{
	daemon_notify(rt->notify_fd, rt->ready_msg);
}

/* --- stopping ------------------------------------------------------------ */

/* Close every session; the main loop ends when the count reaches 0 (the
 * last session to end says so through the main thread's mailbox). */
static void
stop_now(struct rt *rt)
{
	/* A session accepted before this and started after its worker's
	 * close-all (its start was queued behind other mail) closes at
	 * once too. */
	atomic_store(&rt->cnt.closing_all, true);
	workers_close_all(&rt->workers, END_SHUTDOWN);
	if (atomic_load(&rt->cnt.cur_sess) == 0)
		workers_exit_main(&rt->workers);
}

static void
grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt *rt = arg;

	(void)fd;
	(void)what;
	log_info("grace period over: closing %u remaining sessions",
	         atomic_load(&rt->cnt.cur_sess));
	stop_now(rt);
}

static void
sig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct rt *rt = arg;

	(void)what;
	switch ((int)sig) {
	case SIGTERM: {
		/* global.grace of the running configuration (the control
		 * thread's, kept in an atomic for this thread). */
		uint64_t ms = atomic_load(&rt->cnt.grace_ms);
		struct timeval tv = {(time_t)(ms / 1000),
		                     (suseconds_t)(ms % 1000) * 1000};

		if (atomic_exchange(&rt->cnt.stopping, true))
			return;
		daemon_notify(rt->notify_fd, "STOPPING=1\nSTATUS=stopping: "
		                             "sessions finish within grace");
		log_info("SIGTERM: stopping; %u sessions may finish within "
		         "%llums",
		         atomic_load(&rt->cnt.cur_sess),
		         (unsigned long long)ms);
		acceptor_close(rt->acc);
		if (atomic_load(&rt->cnt.cur_sess) == 0) {
			workers_exit_main(&rt->workers);
			return;
		}
		evtimer_add(rt->grace_timer, &tv);
		break;
	}
	case SIGINT:
		daemon_notify(rt->notify_fd, "STOPPING=1\nSTATUS=stopping now");
		log_info("SIGINT: stopping now, closing %u sessions",
		         atomic_load(&rt->cnt.cur_sess));
		atomic_store(&rt->cnt.stopping, true);
		acceptor_close(rt->acc);
		stop_now(rt);
		break;
	case SIGHUP:
		mailbox_post(rt->ctl_mb, &rt->ctl_mail, CTL_RELOAD, 0);
		break;
	case SIGUSR1:
		mailbox_post(rt->ctl_mb, &rt->ctl_mail, CTL_REOPEN, 0);
		break;
	}
}

/* What the sessions ask of the main thread. */
static void
main_mail(struct mail *m, unsigned ops, int arg)
{
	struct rt *rt =
	    (struct rt *)(void *)((char *)m - offsetof(struct rt, main_mail));

	(void)arg;
	if (ops & MAIN_PAUSE)
		acceptor_pause(rt->acc);
	else if (ops & MAIN_LISTENERS)
		acceptor_update(rt->acc);
	if ((ops & MAIN_EXIT) && atomic_load(&rt->cnt.stopping) &&
	    atomic_load(&rt->cnt.cur_sess) == 0)
		workers_exit_main(&rt->workers);
}

/* --- the control thread ------------------------------------------------- */

static void
ctl_mail(struct mail *m, unsigned ops, int arg)
{
	struct rt *rt =
	    (struct rt *)(void *)((char *)m - offsetof(struct rt, ctl_mail));

	(void)arg;
	if (ops & CTL_RELOAD)
		reload_request(&rt->reload, NULL, NULL, NULL);
	if ((ops & CTL_REOPEN) && healthlog_reopen(rt->hlog) == 0)
		log_info("SIGUSR1: health log reopened");
	if (ops & CTL_EXIT)
		event_base_loopexit(rt->ctl_base, NULL);
}

/* The control thread runs at a lower priority (nice +CTL_NICE): what it
 * does (rendering a page, parsing a reload, a TLS handshake of a check)
 * can wait a little when the CPUs are busy, relaying mail cannot.  Under
 * full load it still gets about a tenth of a CPU, plenty for checks. */
#define CTL_NICE 10

static void *
ctl_main(void *arg)
{
	struct rt *rt = arg;

	(void)pthread_setname_np(pthread_self(), "lb-control");
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CTL_NICE) < 0)
		log_warn("control thread: setpriority");
	if (event_base_loop(rt->ctl_base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
		fatalx("control thread: event loop failed");
	return NULL;
}

static int
start_ctl_thread(struct rt *rt)
{
	sigset_t all, old;
	int e;

	/* Signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&rt->ctl_tid, NULL, ctl_main, rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		errno = e;
		log_warn("cannot start the control thread");
		return -1;
	}
	rt->ctl_running = true;
	return 0;
}

/* --- start --------------------------------------------------------------- */

static int
watch_signals(struct rt *rt)
{
	struct event **sigs[] = {&rt->sig_term, &rt->sig_int, &rt->sig_hup,
	                         &rt->sig_usr1};
	int signums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};

	for (size_t i = 0; i < sizeof(signums) / sizeof(signums[0]); i++) {
		*sigs[i] = evsignal_new(rt->base, signums[i], sig_cb, rt);
		if (*sigs[i] == NULL || evsignal_add(*sigs[i], NULL) < 0) {
			log_warnx("cannot watch signal %d", signums[i]);
			return -1;
		}
	}
	if ((rt->grace_timer = evtimer_new(rt->base, grace_cb, rt)) == NULL) {
		log_warnx("cannot create timers");
		return -1;
	}
	return 0;
}

/* The start marks a (re)start in the health log: every server starts UP
 * again from here (lbctl health-report relies on it). */
static void
log_start(struct rt *rt)
{
	const struct gen *g = rt->reload.cur;
	struct lf l;

	lf_init(&l);
	lf_add(&l, "event", "start");
	lf_add(&l, "version", PACKAGE_VERSION);
	lf_addf(&l, "pid", "%ld", (long)getpid());
	lf_addf(&l, "backends", "%zu", g->cfg->nbackends);
	lf_addf(&l, "servers", "%zu", gen_nservers(g));
	healthlog_write(rt->hlog, &l);
}

/* A session's pool work (passive health), on its own thread. */
static void
apply_work(void *arg, struct pool_work *w)
{
	work_apply(arg, w);
}

int
rt_start(struct rt *rt)
{
	struct gen *g = rt->reload.cur;
	struct sess_env env;
	struct pool_work w;

	if ((rt->base = workers_new_base()) == NULL ||
	    (rt->ctl_base = event_base_new()) == NULL) {
		log_warnx("cannot create the event loops");
		return -1;
	}
	pool_work_init(&w);
	pool_install(rt->pool, g->pool, &w); /* nothing waits yet */
	mail_init(&rt->main_mail, main_mail);
	mail_init(&rt->ctl_mail, ctl_mail);
	env.pool = rt->pool;
	env.cnt = &rt->cnt;
	env.main_mb = NULL; /* worker 0's, once made */
	env.main_mail = &rt->main_mail;
	env.apply = apply_work;
	env.apply_arg = &rt->wenv;
	if (workers_init(&rt->workers, workers_count(g->cfg->global.workers),
	                 rt->base, &env) < 0 ||
	    (rt->ctl_mb = mailbox_new(rt->ctl_base, "control")) == NULL)
		return -1;
	rt->workers.env.main_mb = workers_mailbox(&rt->workers, 0);
	rt->acc =
	    acceptor_new(rt->base, &rt->cnt, workers_accept, &rt->workers);
	if (rt->acc == NULL || watch_signals(rt) < 0)
		return -1;
	rt->workers.acc = rt->acc;
	acceptor_set(rt->acc, g->frontends, g->nfrontends);
	for (size_t i = 0; i < g->nfrontends; i++)
		if (frontend_start(&g->frontends[i], rt->acc) < 0)
			return -1;

	rt->wenv.hlog = rt->hlog;
	rt->wenv.workers = &rt->workers;
	rt->reload.pool = rt->pool;
	rt->reload.cnt = &rt->cnt;
	rt->reload.workers = &rt->workers;
	rt->reload.acc = rt->acc;
	rt->reload.main_mb = workers_mailbox(&rt->workers, 0);
	rt->reload.main_mail = &rt->main_mail;
	rt->reload.ctl_mb = rt->ctl_mb;
	rt->reload.ctl_base = rt->ctl_base;
	rt->reload.wenv = &rt->wenv;
	rt->ctl_env = (struct ctl_env){.pool = rt->pool,
	                               .hlog = rt->hlog,
	                               .cnt = &rt->cnt,
	                               .cur = &rt->reload.cur,
	                               .mon = &rt->reload.mon,
	                               .wenv = &rt->wenv,
	                               .workers = &rt->workers,
	                               .reload = &rt->reload,
	                               .state = &rt->state,
	                               .stats_sock = stats_sock(rt->stats),
	                               .pidfile = &rt->pidfile};
	rt->reload.state = &rt->state;
	rt->stats_env.src = (struct snap_src){.pool = rt->pool,
	                                      .cnt = &rt->cnt,
	                                      .cur = &rt->reload.cur,
	                                      .workers = &rt->workers};
	rt->stats_env.hlog = rt->hlog;
	if (rt->ctl != NULL &&
	    ctl_start(rt->ctl, rt->ctl_base, &rt->ctl_env) < 0)
		return -1;
	if (rt->stats != NULL &&
	    stats_start(rt->stats, rt->ctl_base, &rt->stats_env) < 0)
		return -1;
	/* The checks' TLS contexts read their CA files: before the chroot. */
	if ((rt->reload.mon =
	         monitor_new(g, rt->ctl_base, rt->pool, &rt->wenv)) == NULL)
		return -1;
	rt->cnt.started = time(NULL);
	log_start(rt);
	/* The operator's drains and weights from before the restart, after
	 * the start line of the health log and before the first check and
	 * the first session (load-balancer.conf(5), OPERATOR STATE). */
	opstate_restore(&rt->state, rt->pool, &rt->wenv);
	monitor_start(rt->reload.mon);
	acceptor_update(rt->acc);
	/* A takeover's control socket replaces the old one's file now,
	 * while the path is in reach: after this only the privilege drop
	 * and the threads can fail. */
	if (ctl_commit(rt->ctl) < 0 || privs_drop(&rt->privs, g->cfg) < 0)
		return -1;
	/* The listening sockets into systemd's store, before READY=1 and
	 * while no other thread runs (kept across a restart when the unit
	 * allows it; one already there is not stored twice). */
	for (size_t i = 0; i < g->nfrontends && rt->notify_fd >= 0; i++)
		for (size_t j = 0; j < g->frontends[i].nlisteners; j++)
			daemon_store_fd(rt->notify_fd,
			                g->frontends[i].listeners[j].sock);
	daemon_store_fd(rt->notify_fd, stats_sock(rt->stats));
	snprintf(rt->ready_msg, sizeof(rt->ready_msg),
	         "READY=1\nSTATUS=serving: %zu frontends, %zu backends\n"
	         "MAINPID=%ld",
	         g->nfrontends, g->cfg->nbackends, (long)getpid());
	/* Threads last: a new thread inherits the capabilities that capset
	 * set per thread. */
	if (workers_start(&rt->workers) < 0 || start_ctl_thread(rt) < 0)
		return -1;
	log_info("started: %zu frontends, %zu backends, maxconn %u",
	         g->nfrontends, g->cfg->nbackends,
	         atomic_load(&rt->cnt.max_sess));
	return 0;
}

int
rt_run(struct rt *rt)
{
	int rc = 0;

	if (workers_run_main(&rt->workers) < 0) {
		log_warnx("event loop failed");
		rc = 1;
	}
	return rc;
}

void
rt_free(struct rt *rt)
{
	struct event *evs[6];

	if (rt == NULL)
		return;
	evs[0] = rt->sig_term;
	evs[1] = rt->sig_int;
	evs[2] = rt->sig_hup;
	evs[3] = rt->sig_usr1;
	evs[4] = rt->grace_timer;
	evs[5] = NULL;
	/* No reload starts any more, no session either. */
	atomic_store(&rt->cnt.stopping, true);
	atomic_store(&rt->cnt.closing_all, true);
	if (rt->ctl_running) {
		mailbox_post(rt->ctl_mb, &rt->ctl_mail, CTL_EXIT, 0);
		pthread_join(rt->ctl_tid, NULL);
		rt->ctl_running = false;
	}
	workers_stop(&rt->workers);
	/* Every thread is joined: what is left runs here.  The sessions
	 * close (and what a reload in flight still had to do is done by
	 * the mails it left), then the control thread's last mail. */
	workers_free(&rt->workers);
	/* The control clients go before the control thread's last mails
	 * (a reload's end would otherwise run a client's next command). */
	ctl_free(rt->ctl);
	stats_free(rt->stats);
	if (rt->ctl_mb != NULL)
		mailbox_drain_all(rt->ctl_mb);
	monitor_free(rt->reload.mon);
	if (rt->acc != NULL)
		acceptor_close(rt->acc);
	acceptor_free(rt->acc);
	{
		/* Pending requests are refused (stopping). */
		struct reload_req *req;
		(void)req;
	}
	gen_unref(rt->reload.cur);
	pool_free(rt->pool);
	mailbox_free(rt->ctl_mb);
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	if (rt->ctl_base != NULL)
		event_base_free(rt->ctl_base);
	if (rt->base != NULL)
		event_base_free(rt->base);
	healthlog_close(rt->hlog);
	opstate_close(&rt->state);
	if (rt->notify_fd >= 0)
		close(rt->notify_fd);
	free(rt->reload.config_path);
	free(rt);
}
