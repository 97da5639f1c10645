/* The runtime: start (in the order of README "Command line": bind, daemon,
 * privileges), the threads, signals and stop.
 *
 * Threads: the main thread accepts, handles signals and is worker 0 (it
 * runs sessions); workers 1..n-1 run sessions; the control thread runs
 * the control socket, the status page, the health checks and reloads, so
 * that nothing slow runs on a thread that relays mail.  Each event base is
 * touched by its own thread only; the threads talk through mailboxes
 * (mailbox.h).  Shared state: the pool (its own lock), the counters
 * (atomics), the health log (its own lock). */
#ifndef LB_RT_H
#define LB_RT_H

#include <stdbool.h>

#include "cfg.h"

struct rt;

/* The runtime of a validated configuration, which it owns from now on
 * (NULL after logging why; cfg freed). */
struct rt *rt_new(struct cfg *cfg, bool foreground);
/* Bind every listener and the control socket, open the health log
 * (before daemonizing).  Returns 0 or -1 after logging what failed. */
int rt_bind(struct rt *rt);
/* Event loops, signals, checks, privileges dropped, threads started.
 * Returns 0 or -1 (logged). */
int rt_start(struct rt *rt);
/* Run until stopped.  Returns the process exit status. */
int rt_run(struct rt *rt);
void rt_free(struct rt *rt);

#endif
