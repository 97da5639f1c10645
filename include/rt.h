/* struct rt: the single runtime root.  Everything mutable hangs off it. */
#ifndef LB_RT_H
#define LB_RT_H

#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>
#include <event2/event.h>

#include "common.h"
#include "cfg.h"

TAILQ_HEAD(session_list, session);

struct rt {
	struct event_base *base;
	struct cfg *cfg;
	bool foreground;
	/* global.user/group, looked up before anything is opened and
	 * applied last (drop_privileges). */
	bool drop_uid, drop_gid;
	uid_t uid;
	gid_t gid;
	const char *pidfile; /* written by main when set */

	struct frontend *frontends;
	size_t nfrontends;
	struct backend *backends;
	size_t nbackends;

	struct healthlog *hlog; /* NULL: events go to syslog only */
	struct ctl *ctl;        /* NULL: no control socket */
	time_t started;

	struct session_list sessions;
	unsigned cur_sess;
	uint64_t total_sess;
	unsigned max_sess; /* effective global maxconn (fits RLIMIT_NOFILE) */

	bool stopping;      /* SIGTERM: listeners closed, draining */
	bool accept_paused; /* descriptor exhaustion pause */
	struct event *accept_timer;
	struct event *grace_timer;
	struct event *sig_term, *sig_int, *sig_hup, *sig_usr1;
};

/* Build the runtime objects from a validated configuration. */
struct rt *rt_new(struct cfg *cfg, bool foreground);
/* Bind every listener and the control socket, open the health log (before
 * daemonizing).  Returns 0 or -1 after logging what failed. */
int rt_bind(struct rt *rt);
/* Create the event base, attach listeners and signals.  Returns 0 or -1. */
int rt_start(struct rt *rt);
/* Run until stopped.  Returns the process exit status. */
int rt_run(struct rt *rt);
void rt_free(struct rt *rt);

/* A session ended or started: update counters and listener state. */
void rt_session_count(struct rt *rt, int delta);
/* accept() failed for lack of descriptors: pause accepting for a while. */
void rt_pause_accept(struct rt *rt);

#endif
