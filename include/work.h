/* Carrying out what a pool state change leaves to its caller (struct
 * pool_work), after the pool's lock is released: the health events go to
 * the health log, the waiters given a slot or turned away are told through
 * their threads' mailboxes, and a server's sessions are closed
 * (on_marked_down) by every worker.  The check part (stop, run now, next)
 * is the monitor's (monitor.c). */
#ifndef LB_WORK_H
#define LB_WORK_H

#include "healthlog.h"
#include "pool.h"
#include "worker.h"

struct work_env {
	struct healthlog *hlog;
	struct workers *workers; /* NULL: no sessions (tests, fuzzing) */
};

void work_apply(const struct work_env *env, struct pool_work *w);

#endif
