/* The control socket (lbctl(8), COMMANDS): a Unix stream socket, one text
 * command per line, a text reply ended by an empty line, errors begin
 * with "error: ".  On the control thread.  The commands are a table (one
 * entry per command: its words, its arguments, its help line, its
 * function); they read snapshots and call the pool, whose work they carry
 * out (work.c, monitor.c) after it returns. */
#ifndef LB_CTL_H
#define LB_CTL_H

#include <event2/buffer.h>
#include <event2/event.h>

#include "counters.h"
#include "daemon.h"
#include "gen.h"
#include "healthlog.h"
#include "monitor.h"
#include "opstate.h"
#include "pool.h"
#include "reload.h"
#include "work.h"
#include "worker.h"

#define CTL_LINE_MAX 1024 /* a longer command line is refused */
#define CTL_CLIENTS_MAX 16

/* What the commands use. */
struct ctl_env {
	struct pool *pool;
	struct healthlog *hlog;
	struct counters *cnt;
	struct gen *const *cur;      /* the running configuration */
	struct monitor *const *mon;  /* its checks (NULL: none) */
	const struct work_env *wenv; /* health log, workers */
	struct workers *workers;     /* NULL: no sessions (tests) */
	struct reloader *reload;     /* NULL: reload not available */
	struct opstate *state;       /* NULL: no state file (tests) */
	/* A takeover by a new daemon (takeover.h): the status page's
	 * socket (-1: none), and the pidfile to let go of once the new
	 * daemon serves (NULL: no takeover here; *pidfile NULL: none). */
	int stats_sock;
	_Atomic(struct pidfile *) *pidfile;
};

struct ctl;

/* Create the socket (mode 0600) before daemonizing.  A stale socket file
 * is replaced; a live one (another daemon answers) is an error, unless
 * replace is set (a takeover: the old daemon stops soon).  Returns NULL
 * after logging what failed. */
struct ctl *ctl_bind(const char *path, bool replace);
/* A takeover's socket is bound beside path (path.new) and renamed over
 * the running daemon's once this daemon is about to serve: 0, or -1
 * after logging.  Nothing to do otherwise. */
int ctl_commit(struct ctl *ctl);
/* Serve on base (the control thread's) with env. */
int ctl_start(struct ctl *ctl, struct event_base *base,
              const struct ctl_env *env);
/* Close, unlink the socket file (when it is still ours) and free. */
void ctl_free(struct ctl *ctl);

/* Run one command line and append the reply, with its final empty line
 * (reload is refused: it answers later, see the connection code). */
void ctl_execute(const struct ctl_env *env, const char *line,
                 struct evbuffer *out);

#endif
