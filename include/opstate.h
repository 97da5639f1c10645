/* The operator's state across restarts (load-balancer.conf(5), OPERATOR
 * STATE; global.state_file): the drains, maintenances and weights
 * set with lbctl, saved to the state file at every change and given
 * back to the servers at start and after a reload.  On the control
 * thread, never under the pool's lock: the pool is read through a
 * snapshot and changed through pool_restore. */
#ifndef LB_OPSTATE_H
#define LB_OPSTATE_H

#include <stdbool.h>

#include "cfg.h"
#include "pool.h"
#include "statefile.h"
#include "work.h"

struct opstate {
	struct statefile sf;
	bool on; /* a state file is in use (its directory is open) */
};

/* Open global.state_file's directory (before any chroot).  Never fails:
 * a missing directory is a warning, and the state is then not kept. */
void opstate_open(struct opstate *o, const struct cfg_global *g);
void opstate_close(struct opstate *o);
/* Give the file's state to the current set's servers (start, reload);
 * the events go through env.  Problems are warnings. */
void opstate_restore(struct opstate *o, struct pool *p,
                     const struct work_env *env);
/* Write the state of every server now (after an lbctl drain, disable,
 * enable, set weight).  A failure is a warning. */
void opstate_save(struct opstate *o, struct pool *p);

#endif
