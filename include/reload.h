/* The running configuration and its reload (SIGHUP, lbctl reload;
 * load-balancer(8), SIGNALS).
 *
 * A reload does everything that can fail or take time first, on the
 * control thread and with no lock held: it reads and validates the file,
 * resolves names, builds the new generation's objects, binds its new
 * addresses (addresses already listening are taken over instead) and sets
 * up its health checks and TLS contexts.  Only then does it apply it:
 *   1. control thread: the pool takes the new backends and servers
 *      (states carried over by name, in one short critical section), the
 *      old checks stop and the new ones start;
 *   2. main thread (its mailbox): the listeners are taken over or closed,
 *      maxconn and the log settings applied;
 *   3. every worker (its mailbox): its sessions move to the new objects;
 *   4. control thread: the summary is logged and whoever asked is told;
 *      the old generation is freed once no session uses it.
 * One reload runs at a time; requests meanwhile wait their turn. */
#ifndef LB_RELOAD_H
#define LB_RELOAD_H

#include <stdbool.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "counters.h"
#include "gen.h"
#include "healthlog.h"
#include "listener.h"
#include "mailbox.h"
#include "monitor.h"
#include "opstate.h"
#include "pool.h"
#include "work.h"
#include "worker.h"

/* Told when a reload is over: rc 0 or -1, msg its one-line summary. */
typedef void (*reload_done_fn)(void *arg, int rc, const char *msg);

struct reload_req;
TAILQ_HEAD(reload_reqs, reload_req);
struct reload_job;

struct reloader {
	/* Set by rt before the first reload. */
	char *config_path; /* absolute: reloads survive chdir */
	bool foreground;
	struct pool *pool;
	struct counters *cnt;
	struct workers *workers;
	struct acceptor *acc;        /* the main thread's */
	struct mailbox *main_mb;     /* the main thread's */
	struct mail *main_mail;      /* its mail for sessions' requests */
	struct mailbox *ctl_mb;      /* the control thread's */
	struct event_base *ctl_base; /* the checks' */
	const struct work_env *wenv;
	struct opstate *state; /* the state file, restored after a reload */
	int notify_fd; /* NOTIFY_SOCKET (load-balancer(8), SYSTEMD), -1 */
	/* The running configuration (control thread). */
	struct gen *cur;
	struct monitor *mon;
	/* Reloads. */
	struct reload_job *job; /* the one being applied */
	struct reload_reqs pending;
};

/* Control thread: reload.  detail (may be NULL) gets each configuration
 * message and warning, a line each, before done is called.  done is
 * called once, later or before this returns (a file with errors). */
void reload_request(struct reloader *r, struct evbuffer *detail,
                    reload_done_fn done, void *arg);
/* Control thread: forget a requester that went away (its done is not
 * called any more). */
void reload_forget(struct reloader *r, void *arg);
/* Whether a reload is being applied or waits (the end: rt). */
bool reload_busy(const struct reloader *r);

#endif
