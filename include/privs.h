/* Privileges and limits (see privs.c). */
#ifndef LB_PRIVS_H
#define LB_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "cfg.h"

struct privs {
	bool drop_uid, drop_gid;
	uid_t uid;
	gid_t gid;
};

/* global.user and global.group, looked up before anything is opened, so
 * that a typo stops the start before it binds or writes anything.
 * Returns 0 or -1 (logged). */
int privs_lookup(struct privs *pv, const struct cfg_global *g);
/* chroot and user/group, last of the start-up: listeners, the control
 * socket, the health log, the pidfile and the checks' TLS files are all
 * open by now.  Returns 0 or -1 (logged). */
int privs_drop(const struct privs *pv, const struct cfg *cfg);
/* Each session needs two descriptors: raise the soft RLIMIT_NOFILE as far
 * as the hard limit allows and return the session count that fits (want,
 * or fewer with a warning).  nworkers: event-loop threads for sessions. */
unsigned privs_fit_maxconn(unsigned want, unsigned nworkers);

#endif
