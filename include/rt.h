/* The runtime: start (bind, daemon, privileges: load-balancer(8)), the
 * threads, signals and stop.
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
#include "daemon.h"
#include "sock.h"

struct rt;

/* The runtime of a validated configuration, which it owns from now on
 * (NULL after logging why; cfg freed). */
struct rt *rt_new(struct cfg *cfg, bool foreground);
/* Bind every listener and the control socket, open the health log
 * (before daemonizing).  inh (NULL: none) holds the sockets a running
 * daemon handed over (load-balancer(8), RESTART): an address found there
 * is taken, not bound; the rest of inh is closed.  takeover: the control
 * socket of a live daemon is replaced.  Returns 0 or -1 after logging
 * what failed. */
int rt_bind(struct rt *rt, struct sock_inherit *inh, bool takeover);
/* Event loops, signals, checks, privileges dropped, threads started.
 * Returns 0 or -1 (logged). */
int rt_start(struct rt *rt);
/* The pidfile, released when a new daemon takes over (main owns it). */
void rt_set_pidfile(struct rt *rt, struct pidfile *pf);
/* Serving: tell the service manager (READY=1; load-balancer(8), SYSTEMD). */
void rt_ready(struct rt *rt);
/* Run until stopped.  Returns the process exit status. */
int rt_run(struct rt *rt);
void rt_free(struct rt *rt);

#endif
