/* Worker threads and their event loops (see worker.h). */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "relay.h"
#include "worker.h"

/* Busy event loops wait at most this long between passes (see
 * worker_loop). */
#define COALESCE_US_DEFAULT 400

/* What a worker is asked (its mail's ops). */
enum {
	W_CLOSE_ALL = 1, /* arg: end + 1 */
	W_EXIT = 2,
	W_MIGRATE = 4,
};

struct worker {
	struct workers *ws;
	unsigned id;
	bool thread;  /* a thread of its own (false: the main thread) */
	bool running; /* that thread runs (joined at the end) */
	pthread_t tid;
	struct sess_ctx ctx;
	struct mail mail; /* W_* */
	/* W_MIGRATE: whom to tell (set before posting; one reload at a
	 * time). */
	void (*migrate_done)(void *arg, unsigned stay);
	void *migrate_arg;
};

/* lbctl shutdown sessions, on_marked_down: one mail per worker. */
struct close_req {
	struct mail mail;
	struct worker *w;
	const struct server *srv;
	enum session_end end;
};

/* --- test switches --------------------------------------------------------
 *
 * Read from the environment for measurements only (bench/), not
 * configuration (README "Test switches"):
 *   LB_SPLICE=0        no splice(2) for bulk transfers
 *   LB_COALESCE_US=N   the longest pause of a busy loop (0: never pause) */

static bool
switch_splice(void)
{
	const char *sp = getenv("LB_SPLICE");

	return sp == NULL || strcmp(sp, "0") != 0;
}

static unsigned
switch_coalesce_us(void)
{
	const char *co = getenv("LB_COALESCE_US");
	unsigned long v;
	char *end;

	if (co == NULL)
		return COALESCE_US_DEFAULT;
	v = strtoul(co, &end, 10);
	if (end != co && *end == '\0' && v <= 100000)
		return (unsigned)v;
	log_warnx("LB_COALESCE_US=%s: not a number of microseconds up to "
	          "100000; using %u",
	          co, COALESCE_US_DEFAULT);
	return COALESCE_US_DEFAULT;
}

/* --- setup --------------------------------------------------------------- */

unsigned
workers_count(int configured)
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

struct event_base *
workers_new_base(void)
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

static void
worker_mail(struct mail *m, unsigned ops, int arg)
{
	struct worker *w =
	    (struct worker *)(void *)((char *)m -
	                              offsetof(struct worker, mail));

	if (ops & W_MIGRATE)
		w->migrate_done(w->migrate_arg, session_migrate(&w->ctx));
	if (ops & W_CLOSE_ALL)
		session_close_all(&w->ctx, (enum session_end)(arg - 1));
	if (ops & W_EXIT)
		event_base_loopexit(w->ctx.base, NULL);
}

int
workers_init(struct workers *ws, unsigned n, struct event_base *main_base,
             const struct sess_env *env)
{
	bool splice = switch_splice();
	char name[32];

	memset(ws, 0, sizeof(*ws));
	ws->env = *env;
	ws->coalesce_us = switch_coalesce_us();
	ws->n = n > 0 ? n : 1;
	if ((ws->w = calloc(ws->n, sizeof(*ws->w))) == NULL) {
		log_warn("workers");
		return -1;
	}
	for (unsigned i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		struct sess_ctx *c = &w->ctx;

		w->ws = ws;
		w->id = i;
		/* Worker 0 is the main thread: the sessions it is given
		 * need no hand-over. */
		w->thread = i > 0;
		mail_init(&w->mail, worker_mail);
		c->env = &ws->env;
		c->id = i;
		TAILQ_INIT(&c->sessions);
		c->base = w->thread ? workers_new_base() : main_base;
		if (c->base == NULL) {
			log_warnx("cannot create the event loop of worker %u",
			          i);
			return -1;
		}
		snprintf(name, sizeof(name), "worker %u", i);
		c->relay = relay_ctx_new(splice, ws->n);
		c->mb = mailbox_new(c->base, i == 0 ? "worker 0" : "worker");
		if (c->relay == NULL || c->mb == NULL) {
			log_warnx("cannot set up %s", name);
			return -1;
		}
	}
	return 0;
}

/* --- the loop ------------------------------------------------------------- */

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
	struct event_base *base = w->ctx.base;
	struct relay_ctx *rc = w->ctx.relay;
	unsigned max_us = w->ws->coalesce_us;

	if (max_us == 0)
		return event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	for (;;) {
		unsigned long reads = relay_ctx_reads(rc);
		unsigned long bulk = relay_ctx_bulk(rc);
		unsigned us;

		if (event_base_loop(base,
		                    EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY) < 0)
			return -1;
		while (!event_base_got_exit(base) &&
		       (us = relay_pause_us(relay_ctx_reads(rc) - reads,
		                            relay_ctx_bulk(rc) - bulk,
		                            max_us)) > 0) {
			struct timespec pause = {0, (long)us * 1000};

			reads = relay_ctx_reads(rc);
			bulk = relay_ctx_bulk(rc);
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

	/* For top -H, ps -L and /proc/PID/task/N/comm. */
	snprintf(name, sizeof(name), "lb-worker-%u", w->id);
	(void)pthread_setname_np(pthread_self(), name);
	if (worker_loop(w) < 0)
		fatalx("worker %u: event loop failed", w->id); /* its sessions
		                                                * would hang */
	return NULL;
}

int
workers_start(struct workers *ws)
{
	sigset_t all, old;
	int e = 0;

	if (ws->n <= 1)
		return 0;
	/* Signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 1; i < ws->n && e == 0; i++) {
		struct worker *w = &ws->w[i];

		if ((e = pthread_create(&w->tid, NULL, worker_main, w)) == 0)
			w->running = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		errno = e;
		log_warn("cannot start the worker threads");
		return -1;
	}
	log_info("%u workers", ws->n);
	return 0;
}

int
workers_run_main(struct workers *ws)
{
	return worker_loop(&ws->w[0]);
}

void
workers_exit_main(struct workers *ws)
{
	event_base_loopexit(ws->w[0].ctx.base, NULL);
}

void
workers_stop(struct workers *ws)
{
	for (unsigned i = 1; ws->w != NULL && i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		if (!w->running)
			continue;
		mailbox_post(w->ctx.mb, &w->mail, W_EXIT, 0);
		pthread_join(w->tid, NULL);
		w->running = false;
	}
}

void
workers_free(struct workers *ws)
{
	bool left = true;

	if (ws->w == NULL)
		return;
	/* The threads are joined: what is left is closed here, in this
	 * thread.  A close may hand a slot to a session of another worker
	 * through its mailbox, and a session waiting for its grant ends
	 * when the grant is delivered: until nothing is left. */
	for (unsigned round = 0; left && round < 16; round++) {
		left = false;
		for (unsigned i = 0; i < ws->n; i++) {
			struct sess_ctx *c = &ws->w[i].ctx;

			if (c->mb == NULL)
				continue;
			session_close_all(c, END_SHUTDOWN);
			mailbox_drain_all(c->mb);
			left = left || !TAILQ_EMPTY(&c->sessions);
		}
	}
	for (unsigned i = 0; i < ws->n; i++) {
		struct sess_ctx *c = &ws->w[i].ctx;

		mailbox_free(c->mb);
		relay_ctx_free(c->relay);
		if (ws->w[i].thread && c->base != NULL)
			event_base_free(c->base);
	}
	free(ws->w);
	ws->w = NULL;
}

/* --- hand-out ------------------------------------------------------------ */

void
workers_accept(void *arg, struct frontend *fe, evutil_socket_t fd,
               const struct sockaddr *sa, int salen)
{
	struct workers *ws = arg;
	struct worker *best = NULL;
	unsigned best_n = 0;

	/* Fewest sessions; ties go round, so that a quiet daemon spreads
	 * its first clients too. */
	for (unsigned k = 0; k < ws->n; k++) {
		struct worker *w = &ws->w[(ws->next + k) % ws->n];
		unsigned n =
		    atomic_load_explicit(&w->ctx.nsess, memory_order_relaxed);

		if (best == NULL || n < best_n) {
			best = w;
			best_n = n;
		}
	}
	ws->next = (ws->next + 1) % ws->n;
	session_accept(&best->ctx, best->id == 0, fe, fd, sa, salen);
	acceptor_update(ws->acc);
}

/* --- requests to every worker --------------------------------------------- */

void
workers_close_all(struct workers *ws, enum session_end end)
{
	for (unsigned i = 0; i < ws->n; i++)
		mailbox_post(ws->w[i].ctx.mb, &ws->w[i].mail, W_CLOSE_ALL,
		             (int)end + 1);
}

static void
close_req_mail(struct mail *m, unsigned ops, int arg)
{
	struct close_req *r = (struct close_req *)(void *)m;

	(void)ops;
	(void)arg;
	(void)session_close_server(&r->w->ctx, r->srv, r->end);
	free(r);
}

int
workers_close_server(struct workers *ws, const struct server *srv,
                     enum session_end end)
{
	int rc = 0;

	for (unsigned i = 0; i < ws->n; i++) {
		struct close_req *r = calloc(1, sizeof(*r));

		if (r == NULL) {
			log_warn("closing the sessions of %s/%s",
			         backend_conf(server_backend(srv))->name,
			         server_conf(srv)->name);
			rc = -1;
			continue;
		}
		mail_init(&r->mail, close_req_mail);
		r->w = &ws->w[i];
		r->srv = srv;
		r->end = end;
		mailbox_post(ws->w[i].ctx.mb, &r->mail, 1, 0);
	}
	return rc;
}

void
workers_migrate(struct workers *ws, void (*done)(void *arg, unsigned stay),
                void *arg)
{
	for (unsigned i = 0; i < ws->n; i++) {
		ws->w[i].migrate_done = done;
		ws->w[i].migrate_arg = arg;
		mailbox_post(ws->w[i].ctx.mb, &ws->w[i].mail, W_MIGRATE, 0);
	}
}

struct mailbox *
workers_mailbox(const struct workers *ws, unsigned i)
{
	return ws->w[i].ctx.mb;
}

unsigned
workers_sessions(const struct workers *ws, unsigned i)
{
	return atomic_load(&ws->w[i].ctx.nsess);
}

unsigned long long
workers_total(const struct workers *ws, unsigned i)
{
	return atomic_load(&ws->w[i].ctx.total);
}
