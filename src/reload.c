/* The running configuration and its reload (see reload.h). */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "listener.h"
#include "log.h"
#include "opstate.h"
#include "privs.h"
#include "reload.h"

struct reload_req {
	TAILQ_ENTRY(reload_req) link;
	struct evbuffer *detail;
	reload_done_fn done; /* NULL: nobody waits any more */
	void *arg;
};

struct reload_job {
	struct reloader *r;
	struct reload_req *req;
	struct gen *old, *next;
	struct mail main_mail; /* step 2, on the main thread */
	struct mail ctl_mail;  /* step 4, back on the control thread */
	atomic_uint acks;      /* workers done with step 3 */
	atomic_uint stay;      /* sessions left on retired objects */
};

static void run_next(struct reloader *r);

static void
finish_req(struct reload_req *req, int rc, const char *msg)
{
	if (req->done != NULL)
		req->done(req->arg, rc, msg);
	free(req);
}

static void
tap_detail(const char *line, void *arg)
{
	evbuffer_add_printf(arg, "%s\n", line);
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
	if (strcmp(o->state_file, n->state_file) != 0)
		log_warnx(fmt, "global.state_file");
	if (o->workers != n->workers)
		log_warnx(fmt, "global.workers");
}

/* Everything that can fail, before anything changes: new addresses
 * bound (the running ones are taken over later), sources probed, checks
 * and TLS contexts set up.  Returns the new checks, or NULL after
 * logging why. */
static struct monitor *
prepare(struct reloader *r, struct gen *g)
{
	for (size_t i = 0; i < g->nfrontends; i++)
		if (frontend_bind_reload(&g->frontends[i], r->cur->frontends,
		                         r->cur->nfrontends) < 0)
			return NULL;
	if (gen_probe_sources(g) < 0)
		return NULL;
	return monitor_new(g, r->ctl_base, r->pool, r->wenv);
}

/* The service manager hears of each reload (load-balancer(8), SYSTEMD):
 * RELOADING=1 with the time it began, READY=1 when it ends, whether the
 * new file was taken or not (the daemon serves either way). */
static void
notify_reloading(const struct reloader *r)
{
	struct timespec ts;
	char msg[128];

	if (r->notify_fd < 0 || clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return;
	snprintf(msg, sizeof(msg),
	         "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	             (unsigned long long)ts.tv_nsec / 1000ULL);
	daemon_notify(r->notify_fd, msg);
}

static void
notify_ready(const struct reloader *r, const char *status)
{
	char msg[600];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	daemon_notify(r->notify_fd, msg);
}

/* --- step 4: control thread --------------------------------------------- */

/* Does a listener of g have the address sa? */
static bool
listens_on(const struct gen *g, const struct sockaddr *sa)
{
	for (size_t i = 0; i < g->nfrontends; i++)
		for (size_t j = 0; j < g->frontends[i].nlisteners; j++) {
			const struct cfg_addr *a =
			    g->frontends[i].listeners[j].addr;

			if (sock_same_addr((const struct sockaddr *)&a->ss, sa))
				return true;
		}
	return false;
}

/* systemd's store follows the listeners (load-balancer(8), SYSTEMD): the
 * new ones go in (those already there are ignored), the ones of addresses
 * the new configuration dropped come out, so that they close. */
static void
update_fd_store(const struct reloader *r, const struct gen *old,
                const struct gen *g)
{
	if (r->notify_fd < 0)
		return;
	for (size_t i = 0; i < g->nfrontends; i++)
		for (size_t j = 0; j < g->frontends[i].nlisteners; j++)
			daemon_store_fd(r->notify_fd,
			                g->frontends[i].listeners[j].sock);
	for (size_t i = 0; i < old->nfrontends; i++)
		for (size_t j = 0; j < old->frontends[i].nlisteners; j++) {
			const struct sockaddr *sa =
			    (const struct sockaddr *)&old->frontends[i]
			        .listeners[j]
			        .addr->ss;

			if (!listens_on(g, sa))
				daemon_unstore_addr(r->notify_fd, sa);
		}
}

static void
finish_mail(struct mail *m, unsigned ops, int arg)
{
	struct reload_job *job =
	    (struct reload_job *)(void *)((char *)m -
	                                  offsetof(struct reload_job,
	                                           ctl_mail));
	struct reloader *r = job->r;
	const struct gen *g = job->next;
	char msg[512];

	(void)ops;
	(void)arg;
	snprintf(msg, sizeof(msg),
	         "reloaded %s: %zu frontends, %zu backends, %zu servers; %u "
	         "sessions stay on removed servers or frontends until they "
	         "end",
	         r->config_path, g->nfrontends, g->cfg->nbackends,
	         gen_nservers(g), atomic_load(&job->stay));
	log_info("%s", msg);
	update_fd_store(r, job->old, g);
	gen_settle(job->old);
	/* The counts are exact again: the main thread looks at its
	 * listeners once more (one held off by a count off by one meanwhile
	 * would wait for the next session to end). */
	mailbox_post(r->main_mb, r->main_mail, MAIN_LISTENERS, 0);
	gen_unref(job->old); /* its "current" reference */
	if (!atomic_load(&r->cnt->stopping))
		notify_ready(r, msg);
	finish_req(job->req, 0, msg);
	free(job);
	r->job = NULL;
	run_next(r);
}

/* --- step 3: each worker ------------------------------------------------- */

static void
migrated(void *arg, unsigned stay)
{
	struct reload_job *job = arg;
	struct reloader *r = job->r;

	atomic_fetch_add(&job->stay, stay);
	if (atomic_fetch_add(&job->acks, 1) + 1 == r->workers->n)
		mailbox_post(r->ctl_mb, &job->ctl_mail, 1, 0);
}

/* --- step 2: main thread ------------------------------------------------- */

static void
main_mail(struct mail *m, unsigned ops, int arg)
{
	struct reload_job *job =
	    (struct reload_job *)(void *)((char *)m -
	                                  offsetof(struct reload_job,
	                                           main_mail));
	struct reloader *r = job->r;
	struct gen *old = job->old, *g = job->next;
	const struct cfg_log *a = &old->cfg->global.log,
	                     *b = &g->cfg->global.log;

	(void)ops;
	(void)arg;
	/* The acceptor never points at frontends of a generation that may
	 * be freed (the old one goes once the sessions have moved). */
	acceptor_set(r->acc, g->frontends, g->nfrontends);
	if (atomic_load(&r->cnt->stopping)) {
		/* SIGTERM meanwhile: the listeners are closed already; the
		 * new addresses are not opened. */
		for (size_t i = 0; i < g->nfrontends; i++)
			frontend_close(&g->frontends[i]);
	} else {
		for (size_t i = 0; i < g->nfrontends; i++)
			if (frontend_start(&g->frontends[i], r->acc) < 0)
				log_warnx("reload: frontend %s does not listen "
				          "on every address",
				          g->frontends[i].conf->name);
		for (size_t i = 0; i < old->nfrontends; i++)
			frontend_close(&old->frontends[i]);
	}
	atomic_store(
	    &r->cnt->max_sess,
	    privs_fit_maxconn((unsigned)g->cfg->global.maxconn, r->workers->n));
	/* Reopening syslog is avoided when nothing changed: inside a chroot
	 * /dev/log may be out of reach. */
	if (a->syslog != b->syslog || a->facility != b->facility ||
	    a->level != b->level || strcmp(a->ident, b->ident) != 0)
		log_configure(b->syslog, b->facility, b->ident, b->level,
		              r->foreground);
	atomic_store(&r->cnt->grace_ms, g->cfg->global.grace_ms);
	atomic_fetch_add(&r->cnt->reloads, 1);
	if (!atomic_load(&r->cnt->stopping))
		acceptor_update(r->acc);
	workers_migrate(r->workers, migrated, job);
}

/* --- step 1: control thread --------------------------------------------- */

/* Returns 0 when the job runs (the request is answered at its end), or
 * -1 with msg when the reload failed here. */
static int
start(struct reloader *r, struct reload_req *req, char *msg, size_t len)
{
	struct cfg_diag diag;
	struct reload_job *job;
	struct monitor *mon;
	struct pool_work w;
	struct cfg *ncfg;
	struct gen *g;

	if (atomic_load(&r->cnt->stopping)) {
		snprintf(msg, len, "reload refused: the daemon is stopping");
		log_warnx("%s", msg);
		return -1;
	}
	log_info("reloading %s", r->config_path);
	notify_reloading(r);
	cfg_diag_init(&diag);
	ncfg = cfg_load_file(r->config_path, &diag);
	for (size_t i = 0; i < diag.n; i++) {
		log_warnx("%s", diag.msgs[i]);
		if (req->detail != NULL)
			evbuffer_add_printf(req->detail, "%s\n", diag.msgs[i]);
	}
	if (ncfg == NULL) {
		snprintf(msg, len,
		         "reload failed: %s has %zu error%s; still running the "
		         "previous configuration",
		         r->config_path, diag.nerrors,
		         diag.nerrors == 1 ? "" : "s");
		log_warnx("%s", msg);
		cfg_diag_free(&diag);
		return -1;
	}
	cfg_diag_free(&diag);
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (g = gen_new(ncfg)) == NULL) {
		if (job == NULL)
			cfg_free(ncfg);
		free(job);
		snprintf(msg, len,
		         "reload failed: out of memory; still running the "
		         "previous configuration");
		log_warnx("%s", msg);
		return -1;
	}
	if (req->detail != NULL)
		log_set_tap(tap_detail, req->detail);
	mon = prepare(r, g);
	log_set_tap(NULL, NULL);
	if (mon == NULL) {
		gen_unref(g);
		free(job);
		snprintf(msg, len,
		         "reload failed: the new configuration cannot be "
		         "applied; still running the previous configuration");
		log_warnx("%s", msg);
		return -1;
	}
	warn_restart_only(&r->cur->cfg->global, &g->cfg->global);
	if (atomic_load(&r->cnt->stopping)) {
		/* SIGTERM while this was prepared. */
		monitor_free(mon);
		gen_unref(g);
		free(job);
		snprintf(msg, len, "reload refused: the daemon is stopping");
		log_warnx("%s", msg);
		return -1;
	}

	/* From here on nothing fails: apply. */
	job->r = r;
	job->req = req;
	job->old = r->cur;
	job->next = g;
	mail_init(&job->main_mail, main_mail);
	mail_init(&job->ctl_mail, finish_mail);
	pool_work_init(&w);
	pool_install(r->pool, g->pool, &w);
	gen_retire(job->old, g);
	r->cur = g; /* its first reference is "current" */
	monitor_free(r->mon);
	r->mon = mon;
	/* The operator's state before the first checks and sessions
	 * (load-balancer.conf(5), OPERATOR STATE). */
	if (r->state != NULL)
		opstate_restore(r->state, r->pool, r->wenv);
	monitor_start(mon);
	r->job = job;
	work_apply(r->wenv, &w);
	mailbox_post(r->main_mb, &job->main_mail, 1, 0);
	return 0;
}

static void
run_next(struct reloader *r)
{
	struct reload_req *req;
	char msg[512];

	while (r->job == NULL && (req = TAILQ_FIRST(&r->pending)) != NULL) {
		TAILQ_REMOVE(&r->pending, req, link);
		if (start(r, req, msg, sizeof(msg)) < 0) {
			/* Refused while stopping: no RELOADING=1 was sent. */
			if (!atomic_load(&r->cnt->stopping))
				notify_ready(r, msg);
			finish_req(req, -1, msg);
		}
	}
}

void
reload_request(struct reloader *r, struct evbuffer *detail, reload_done_fn done,
               void *arg)
{
	struct reload_req *req = calloc(1, sizeof(*req));

	if (req == NULL) {
		log_warn("reload");
		if (done != NULL)
			done(arg, -1, "reload failed: out of memory");
		return;
	}
	req->detail = detail;
	req->done = done;
	req->arg = arg;
	TAILQ_INSERT_TAIL(&r->pending, req, link);
	run_next(r);
}

void
reload_forget(struct reloader *r, void *arg)
{
	struct reload_req *req, *next;

	for (req = TAILQ_FIRST(&r->pending); req != NULL; req = next) {
		next = TAILQ_NEXT(req, link);
		if (req->arg == arg) {
			TAILQ_REMOVE(&r->pending, req, link);
			free(req);
		}
	}
	if (r->job != NULL && r->job->req->arg == arg) {
		r->job->req->done = NULL;
		r->job->req->detail = NULL;
	}
}

bool
reload_busy(const struct reloader *r)
{
	return r->job != NULL || !TAILQ_EMPTY(&r->pending);
}
