/* Privileges and limits: global.user/group looked up before anything is
 * opened, the descriptor limit raised to fit maxconn, and at the end of
 * the start-up chroot, the groups and the user, keeping only the
 * capabilities transparent mode needs. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "privs.h"

/* Each session needs two descriptors.  Raise the soft limit as far as the
 * hard limit allows and cap the session count to what fits. */
unsigned
privs_fit_maxconn(unsigned want, unsigned nworkers)
{
	struct rlimit rl;
	/* Each event-loop thread (the workers and the control thread)
	 * holds an epoll descriptor and its mailbox's eventfd besides the
	 * sessions. */
	rlim_t reserve = LB_FD_RESERVE + LB_PIPE_FDS +
	                 (rlim_t)LB_WORKER_FDS * (nworkers + 1);
	rlim_t need = (rlim_t)want * 2 + reserve;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return want;
	}
	if (rl.rlim_cur < need) {
		rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
			         (unsigned long long)rl.rlim_cur);
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return want;
	}
	if (rl.rlim_cur >= need)
		return want;
	fit = rl.rlim_cur > reserve + 2
	          ? (unsigned)((rl.rlim_cur - reserve) / 2)
	          : 1;
	log_warnx("maxconn %u needs %llu descriptors but the limit is %llu: "
	          "serving at most %u sessions at once",
	          want, (unsigned long long)need,
	          (unsigned long long)rl.rlim_cur, fit);
	return fit;
}

int
privs_lookup(struct privs *pv, const struct cfg_global *g)
{
	struct passwd *pw;
	struct group *gr;

	if (g->user[0] != '\0') {
		errno = 0;
		if ((pw = getpwnam(g->user)) == NULL) {
			if (errno != 0)
				log_warn("user %s", g->user);
			else
				log_warnx("user %s: no such user", g->user);
			return -1;
		}
		pv->drop_uid = pv->drop_gid = true;
		pv->uid = pw->pw_uid;
		pv->gid = pw->pw_gid;
	}
	if (g->group[0] != '\0') {
		errno = 0;
		if ((gr = getgrnam(g->group)) == NULL) {
			if (errno != 0)
				log_warn("group %s", g->group);
			else
				log_warnx("group %s: no such group", g->group);
			return -1;
		}
		pv->drop_gid = true;
		pv->gid = gr->gr_gid;
	}
	return 0;
}

/* Transparent proxying needs CAP_NET_ADMIN or CAP_NET_RAW at every
 * server connection (source = "clientip") and at every bind of a
 * transparent listener (reload). */
static bool
needs_transparent(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (cfg->backends[i].source_mode == SRC_CLIENTIP)
			return true;
	for (size_t i = 0; i < cfg->nfrontends; i++)
		if (cfg->frontends[i].transparent)
			return true;
	return false;
}

/* After setuid: keep only CAP_NET_ADMIN and CAP_NET_RAW (for
 * IP_TRANSPARENT), permitted and effective.  Returns 0 or -1 (logged). */
static int
keep_net_caps(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].permitted = d[0].effective =
	    (1u << CAP_NET_ADMIN) | (1u << CAP_NET_RAW);
	if (syscall(SYS_capset, &h, d) < 0) {
		log_warn("cannot keep CAP_NET_ADMIN for transparent proxying");
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		log_warn("prctl(PR_SET_KEEPCAPS, 0)");
	return 0;
}

/* chroot and user/group, last of the start-up: listeners, the control
 * socket, the health log, the pidfile and the checks' TLS files are all
 * open by now. */
int
privs_drop(const struct privs *pv, const struct cfg *cfg)
{
	const struct cfg_global *g = &cfg->global;

	/* Supplementary groups need the user database: before chroot. */
	if (pv->drop_uid && pv->uid != geteuid() &&
	    initgroups(g->user, pv->gid) < 0) {
		log_warn("cannot set the groups of user %s", g->user);
		return -1;
	}
	if (!pv->drop_uid && pv->drop_gid && pv->gid != getegid() &&
	    setgroups(1, &pv->gid) < 0) {
		log_warn("cannot set the groups to %s", g->group);
		return -1;
	}
	if (g->chroot[0] != '\0' && (chroot(g->chroot) < 0 || chdir("/") < 0)) {
		log_warn("chroot %s", g->chroot);
		return -1;
	}
	if (pv->drop_gid && pv->gid != getegid() && setgid(pv->gid) < 0) {
		log_warn("cannot switch to group %lu", (unsigned long)pv->gid);
		return -1;
	}
	if (pv->drop_uid && pv->uid != geteuid()) {
		/* IP_TRANSPARENT must keep working as that user. */
		bool keep = needs_transparent(cfg) && pv->uid != 0;

		if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
			log_warn("prctl(PR_SET_KEEPCAPS)");
			return -1;
		}
		if (setuid(pv->uid) < 0) {
			log_warn("cannot switch to user %s", g->user);
			return -1;
		}
		if (keep && keep_net_caps() < 0)
			return -1;
	}
	if (pv->drop_uid || pv->drop_gid || g->chroot[0] != '\0')
		log_info("running as uid %lu gid %lu%s%s",
		         (unsigned long)geteuid(), (unsigned long)getegid(),
		         g->chroot[0] != '\0' ? " in " : "", g->chroot);
	return 0;
}
