/* The operator's state across restarts (see opstate.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "opstate.h"

void
opstate_open(struct opstate *o, const struct cfg_global *g)
{
	char err[512];

	memset(o, 0, sizeof(*o));
	o->sf.dirfd = -1;
	if (g->state_file[0] == '\0')
		return;
	if (statefile_open(&o->sf, g->state_file, err, sizeof(err)) < 0) {
		log_warnx("state_file %s: %s: drains, maintenances and "
		          "weights set with lbctl will not survive a restart",
		          g->state_file, err);
		statefile_close(&o->sf);
		return;
	}
	o->on = true;
}

void
opstate_close(struct opstate *o)
{
	if (o->on)
		statefile_close(&o->sf);
	o->on = false;
}

/* At most this many bad lines are named a load (a file of junk must
 * not flood the log at every start and reload). */
#define WARN_LINES 10

struct load_ctx {
	const struct opstate *o;
	unsigned bad;
};

static void
warn_line(void *arg, const char *msg)
{
	struct load_ctx *c = arg;

	if (c->bad++ < WARN_LINES)
		log_warnx("state_file %s:%s", c->o->sf.path, msg);
}

static int
admin_of_entry(enum statefile_admin a)
{
	switch (a) {
	case STATEFILE_DRAIN:
		return SRV_DRAIN;
	case STATEFILE_MAINT:
		return SRV_MAINT;
	case STATEFILE_READY:
		return SRV_READY; /* enabled where the file disables it */
	case STATEFILE_ADMIN_NONE:
		break;
	}
	return -1;
}

void
opstate_restore(struct opstate *o, struct pool *p, const struct work_env *env)
{
	struct load_ctx ctx = {o, 0};
	struct statefile_list l;
	struct stat st;
	char err[512];
	long n;

	if (!o->on)
		return;
	if (fstatat(o->sf.dirfd, o->sf.base, &st, 0) < 0) {
		log_warnx("state_file %s: %s: no operator state to restore",
		          o->sf.path, strerror(errno));
		return;
	}
	statefile_list_init(&l);
	n = statefile_load(&o->sf, &l, warn_line, &ctx, err, sizeof(err));
	if (ctx.bad > WARN_LINES)
		log_warnx("state_file %s: %u more bad lines skipped",
		          o->sf.path, ctx.bad - WARN_LINES);
	if (n < 0) {
		log_warnx("state_file %s: %s: no operator state restored",
		          o->sf.path, err);
		statefile_list_free(&l);
		return;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct statefile_entry *e = &l.v[i];
		char spec[2 * STATEFILE_NAME_MAX + 2], why[600];
		struct pool_work w;
		struct server *srv;

		snprintf(spec, sizeof(spec), "%s/%s", e->backend, e->server);
		if ((srv = pool_find_server_by(p, e->backend, e->server, why,
		                               sizeof(why))) == NULL) {
			log_info("state_file %s: %s: not restored: %s",
			         o->sf.path, spec, why);
			continue;
		}
		/* A server a reload kept has its state already (the file
		 * may be older: a save that failed). */
		if (server_inherited(srv))
			continue;
		pool_work_init(&w);
		pool_restore(p, srv, admin_of_entry(e->admin), e->weight, &w);
		work_apply(env, &w);
		if (e->weight >= 0)
			snprintf(why, sizeof(why), " weight %d", e->weight);
		else
			why[0] = '\0';
		log_info("state_file: restored %s:%s%s", spec,
		         e->admin == STATEFILE_DRAIN   ? " drain"
		         : e->admin == STATEFILE_MAINT ? " maint"
		         : e->admin == STATEFILE_READY ? " ready"
		                                       : "",
		         why);
	}
	statefile_list_free(&l);
}

void
opstate_save(struct opstate *o, struct pool *p)
{
	struct statefile_list l;
	struct pool_snap snap;
	char err[512];

	if (!o->on)
		return;
	if (pool_snapshot(p, &snap) < 0) {
		log_warnx("state_file %s: not written: out of memory",
		          o->sf.path);
		return;
	}
	statefile_list_init(&l);
	for (size_t b = 0; b < snap.nbackends; b++) {
		const struct pool_snap_backend *be = &snap.backends[b];

		for (size_t i = 0; i < be->nservers; i++) {
			const struct pool_snap_server *s = &be->servers[i];
			struct statefile_entry e;

			if (!s->op_admin && !s->op_weight)
				continue;
			if (strlen(be->conf->name) >= STATEFILE_NAME_MAX ||
			    strlen(s->conf->name) >= STATEFILE_NAME_MAX) {
				log_warnx(
				    "state_file %s: %s/%s: a name longer "
				    "than %d bytes: its state is not kept",
				    o->sf.path, be->conf->name, s->conf->name,
				    STATEFILE_NAME_MAX - 1);
				continue;
			}
			memset(&e, 0, sizeof(e));
			snprintf(e.backend, sizeof(e.backend), "%s",
			         be->conf->name);
			snprintf(e.server, sizeof(e.server), "%s",
			         s->conf->name);
			e.admin = !s->op_admin            ? STATEFILE_ADMIN_NONE
			          : s->admin == SRV_MAINT ? STATEFILE_MAINT
			          : s->admin == SRV_DRAIN ? STATEFILE_DRAIN
			                                  : STATEFILE_READY;
			e.weight = s->op_weight ? s->base_weight : -1;
			if (statefile_list_add(&l, &e) < 0) {
				log_warnx("state_file %s: not written: out of "
				          "memory",
				          o->sf.path);
				goto out;
			}
		}
	}
	if (statefile_save(&o->sf, &l, err, sizeof(err)) < 0)
		log_warnx("state_file %s: not written: %s", o->sf.path, err);
out:
	statefile_list_free(&l);
	pool_snap_free(&snap);
}
