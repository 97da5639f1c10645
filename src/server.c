/* Server state and connection limits. */
#include "config.h"

#include "backend.h"
#include "server.h"

void
server_init(struct server *srv, const struct cfg_server *conf,
            struct backend *be)
{
	srv->conf = conf;
	srv->be = be;
	srv->admin = conf->disabled ? SRV_MAINT : SRV_READY;
	srv->up = true;
	srv->weight = conf->weight;
	srv->cur_sess = 0;
	srv->total_sess = 0;
	srv->connect_failures = 0;
}

bool
server_usable(const struct server *srv)
{
	return srv->up && srv->admin == SRV_READY && srv->weight > 0;
}

unsigned
server_limit(const struct server *srv)
{
	const struct cfg_server *c = srv->conf;
	unsigned fullconn, lim;

	if (c->maxconn == 0)
		return 0;
	if (c->minconn == 0)
		return (unsigned)c->maxconn;
	/* HAProxy's dynamic limit: ramps from minconn to maxconn as the
	 * backend approaches fullconn sessions. */
	fullconn = (unsigned)srv->be->conf->fullconn;
	if (srv->be->cur_sess >= fullconn)
		return (unsigned)c->maxconn;
	lim = (unsigned)((unsigned long long)c->maxconn * srv->be->cur_sess /
	                 fullconn);
	if (lim < (unsigned)c->minconn)
		lim = (unsigned)c->minconn;
	if (lim > (unsigned)c->maxconn)
		lim = (unsigned)c->maxconn;
	return lim;
}

bool
server_has_room(const struct server *srv)
{
	unsigned lim = server_limit(srv);

	return lim == 0 || srv->cur_sess < lim;
}

const char *
server_state_name(const struct server *srv)
{
	if (srv->admin == SRV_MAINT)
		return "MAINT";
	if (!srv->up)
		return "DOWN";
	if (srv->admin == SRV_DRAIN)
		return "DRAIN";
	return "UP";
}
