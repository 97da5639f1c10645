/* struct rt: the single runtime root.  Everything mutable hangs off it. */
#ifndef LB_RT_H
#define LB_RT_H

#include <pthread.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>
#include <event2/event.h>

struct evbuffer;

#include "common.h"
#include "cfg.h"

TAILQ_HEAD(session_list, session);

/* The objects built from one configuration.  The current one is spread
 * over struct rt; a reload retires the previous one, kept while sessions
 * that could not move to the new objects (their server or frontend was
 * removed) still use it. */
struct rt_gen {
	struct cfg *cfg;
	struct frontend *frontends;
	size_t nfrontends;
	struct backend *backends;
	size_t nbackends;
	unsigned refs; /* sessions pinned to these objects */
	TAILQ_ENTRY(rt_gen) entry;
};
TAILQ_HEAD(rt_gen_list, rt_gen);

/* An event-loop thread that runs sessions (global.workers).  Worker 0 is
 * the main thread itself (base = rt->base), which also keeps the
 * listeners, checks, control socket, status page and signals; each other
 * worker runs its own event base in its own thread.  The main thread
 * hands every accepted connection to the worker with the fewest
 * sessions, itself included (no hand-over then).
 *
 * A session is touched by its worker's thread only, except for the
 * shared fields the big lock guards (its frontend, backend, server,
 * queue place); what another thread wants done to it (start, connect
 * to the slot it was given, refuse, close) goes through the worker's
 * mailbox and its wake event. */
struct worker {
	struct rt *rt;
	unsigned id;
	bool thread;   /* a thread of its own (false: the main thread) */
	bool running;  /* that thread runs (joined at the end) */
	pthread_t tid; /* set under rt->lock before the thread runs */
	struct event_base *base;
	struct relay_ctx *relay; /* its read buffer and pipes */
	struct event *wake;      /* mailbox not empty */
	struct session_list mail;
	unsigned nsess; /* sessions it owns (for the hand-out) */
	uint64_t total; /* sessions it was given */
};

struct rt {
	struct event_base *base;
	/* The big lock: every shared object (frontends, backends, servers,
	 * counters, queues, the session list, the configuration) is read
	 * and written under it.  Recursive, so that a callback holding it
	 * may call anything.  The relays' system calls run without it. */
	pthread_mutex_t lock;
	pthread_t main_tid;
	struct worker *workers;
	unsigned nworkers;
	unsigned next_worker;
	struct event *update_ev; /* listeners_update from a worker */
	unsigned coalesce_us;    /* busy loops: longest pause between passes */

	struct cfg *cfg;
	bool foreground;
	/* global.user/group, looked up before anything is opened and
	 * applied last (drop_privileges). */
	bool drop_uid, drop_gid;
	uid_t uid;
	gid_t gid;

	struct frontend *frontends;
	size_t nfrontends;
	struct backend *backends;
	size_t nbackends;
	struct rt_gen_list retired; /* older generations still in use */
	char *config_path;          /* absolute: reloads survive chdir */
	unsigned reloads;

	struct healthlog *hlog; /* NULL: events go to syslog only */
	struct ctl *ctl;        /* NULL: no control socket */
	struct stats *stats;    /* NULL: no status page (stats_listen) */
	time_t started;

	struct session_list sessions;
	unsigned cur_sess;
	uint64_t total_sess;
	unsigned max_sess; /* effective global maxconn (fits RLIMIT_NOFILE) */

	bool stopping;      /* SIGTERM: listeners closed, draining */
	bool accept_paused; /* descriptor exhaustion pause */
	bool accept_warned; /* said so; again only after an accept worked */
	bool fd_warned;     /* no descriptor for a server socket: said so */
	struct event *accept_timer;
	struct event *grace_timer;
	struct event *sig_term, *sig_int, *sig_hup, *sig_usr1;
};

/* Build the runtime objects from a validated configuration; rt owns cfg
 * from then on (rt_free frees it, a reload replaces it). */
struct rt *rt_new(struct cfg *cfg, bool foreground);
/* Bind every listener and the control socket, open the health log (before
 * daemonizing).  Returns 0 or -1 after logging what failed. */
int rt_bind(struct rt *rt);
/* Create the event base, attach listeners and signals.  Returns 0 or -1. */
int rt_start(struct rt *rt);
/* Run until stopped.  Returns the process exit status. */
int rt_run(struct rt *rt);
void rt_free(struct rt *rt);

/* SIGHUP / lbctl reload: read and validate config_path; when valid, apply
 * it (listeners kept by address, servers kept by backend and server name
 * with their state, sessions moved onto the new objects or left on the
 * old ones until they end).  Returns 0, or -1 with the old configuration
 * still running.  msg gets a one-line summary either way; detail (may be
 * NULL) each configuration message, a line each. */
int rt_reload(struct rt *rt, char *msg, size_t len, struct evbuffer *detail);
/* A session pinned to a retired generation ended. */
void rt_gen_unref(struct rt *rt, struct rt_gen *gen);
/* Lookups by name in the current configuration; NULL if absent. */
struct frontend *rt_find_frontend(struct rt *rt, const char *name);
struct backend *rt_find_backend(struct rt *rt, const char *name);

/* The big lock (see struct rt). */
void rt_lock(struct rt *rt);
void rt_unlock(struct rt *rt);
/* Can the daemon take mail now (lbctl check, /health): not stopping, and
 * every backend has a server that takes new sessions (UP, not drained or
 * in maintenance, weight > 0).  Each problem is one line in out, after
 * prefix; returns how many. */
int rt_ready(struct rt *rt, const char *prefix, struct evbuffer *out);
/* True when the calling thread is w's. */
bool rt_on_worker(const struct worker *w);
/* The worker for a new session (the one with the fewest). */
struct worker *rt_pick_worker(struct rt *rt);
/* How many workers global.workers means here (0: one per CPU this
 * process may run on). */
unsigned rt_worker_count(int configured);

/* A session ended or started: update counters and listener state. */
void rt_session_count(struct rt *rt, int delta);
/* accept() or a server socket failed for lack of descriptors: pause
 * accepting for a while (from any thread). */
void rt_pause_accept(struct rt *rt);

#endif
