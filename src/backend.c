/* Backend pools: server choice through lb.c, session slots and the queue
 * of clients waiting for a slot. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "check.h"
#include "log.h"
#include "rt.h"
#include "server.h"
#include "session.h"
#include "sock.h"
#include "xmalloc.h"

void
backend_init(struct backend *be, const struct cfg_backend *conf, struct rt *rt)
{
	memset(be, 0, sizeof(*be));
	be->conf = conf;
	be->rt = rt;
	be->nservers = conf->nservers;
	be->servers = xcalloc(conf->nservers, sizeof(*be->servers));
	be->lbv = xcalloc(conf->nservers, sizeof(*be->lbv));
	for (size_t i = 0; i < be->nservers; i++) {
		server_init(&be->servers[i], &conf->servers[i], be);
		be->lbv[i].key = lb_key(conf->servers[i].name);
	}
	TAILQ_INIT(&be->queue);
	for (size_t i = 0; i < be->nservers && !be->alive; i++)
		be->alive = be->servers[i].admin != SRV_MAINT;
}

void
backend_free(struct backend *be)
{
	for (size_t i = 0; i < be->nservers; i++) {
		check_free(be->servers[i].check);
		be->servers[i].check = NULL;
	}
	if (be->tls_ctx != NULL)
		SSL_CTX_free(be->tls_ctx);
	be->tls_ctx = NULL;
	free(be->servers);
	free(be->lbv);
	be->servers = NULL;
	be->lbv = NULL;
}

struct server *
backend_find_server(struct backend *be, const char *name)
{
	for (size_t i = 0; i < be->nservers; i++)
		if (strcmp(be->servers[i].conf->name, name) == 0)
			return &be->servers[i];
	return NULL;
}

void
backend_refresh_alive(struct backend *be)
{
	unsigned active, backup;

	server_count_alive(be, &active, &backup);
	be->alive = active + backup > 0;
}

void
backend_count_up(const struct backend *be, unsigned *active, unsigned *backup)
{
	*active = *backup = 0;
	for (size_t i = 0; i < be->nservers; i++) {
		if (!server_usable(&be->servers[i]))
			continue;
		if (be->servers[i].conf->backup)
			(*backup)++;
		else
			(*active)++;
	}
}

static void
client_ip(const struct sockaddr *sa, const void **ip, size_t *len)
{
	if (sa != NULL && sa->sa_family == AF_INET) {
		*ip = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		*len = 4;
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		*ip =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		*len = 16;
	} else {
		*ip = "";
		*len = 0;
	}
}

/* One pass of lb_pick over one tier (active or backup servers). */
static int
pick_tier(struct backend *be, bool backup, const struct server *avoid,
          const void *ip, size_t iplen)
{
	for (size_t i = 0; i < be->nservers; i++) {
		struct server *srv = &be->servers[i];
		struct lb_entry *e = &be->lbv[i];

		e->weight = srv->weight;
		e->conns = srv->cur_sess;
		e->usable = server_usable(srv) && srv->conf->backup == backup &&
		            srv != avoid;
		e->room = server_has_room(srv);
	}
	return lb_pick(be->conf->balance, be->lbv, be->nservers, &be->lbst, ip,
	               iplen);
}

enum pick_result
backend_pick(struct backend *be, const struct sockaddr *client,
             const struct server *avoid, struct server **out)
{
	unsigned active, backup;
	const void *ip;
	size_t iplen;
	int r;

	backend_count_up(be, &active, &backup);
	client_ip(client, &ip, &iplen);
	/* Backup servers only when no active server is usable. */
	bool tier = active == 0;
	if (active == 0 && backup == 0)
		return PICK_NONE;
	r = pick_tier(be, tier, avoid, ip, iplen);
	if (r == LB_PICK_NONE && avoid != NULL)
		/* The server that failed is the only candidate: try it
		 * again.  (When the others are only full, the client
		 * waits for them in the queue instead.) */
		r = pick_tier(be, tier, NULL, ip, iplen);
	if (r == LB_PICK_NONE)
		return PICK_NONE;
	if (r == LB_PICK_FULL)
		return PICK_FULL;
	*out = &be->servers[r];
	return PICK_OK;
}

void
backend_take(struct backend *be, struct server *srv)
{
	srv->cur_sess++;
	if (srv->cur_sess > srv->max_sess)
		srv->max_sess = srv->cur_sess;
	srv->total_sess++;
	be->cur_sess++;
}

void
backend_untake(struct backend *be, struct server *srv)
{
	if (srv->cur_sess > 0)
		srv->cur_sess--;
	if (srv->total_sess > 0)
		srv->total_sess--;
	if (be->cur_sess > 0)
		be->cur_sess--;
}

void
backend_release(struct backend *be, struct server *srv)
{
	if (srv->cur_sess > 0)
		srv->cur_sess--;
	if (be->cur_sess > 0)
		be->cur_sess--;
	backend_process_queue(be);
}

void
backend_enqueue(struct backend *be, struct queue_entry *qe)
{
	TAILQ_INSERT_TAIL(&be->queue, qe, link);
	be->queued++;
}

void
backend_dequeue(struct backend *be, struct queue_entry *qe)
{
	TAILQ_REMOVE(&be->queue, qe, link);
	be->queued--;
}

void
backend_process_queue(struct backend *be)
{
	struct queue_entry *qe, *next;

	if (be->in_queue_run) {
		/* A session closed while we hand out slots: run again. */
		be->queue_again = true;
		return;
	}
	be->in_queue_run = true;
	do {
		be->queue_again = false;
		/* Oldest first; a session that still cannot get a slot (its
		 * source-hash server is full) keeps its place. */
		for (qe = TAILQ_FIRST(&be->queue); qe != NULL; qe = next) {
			next = TAILQ_NEXT(qe, link);
			if (session_try_dequeue(qe->s) && be->queue_again)
				break; /* the list may have changed */
		}
	} while (be->queue_again);
	be->in_queue_run = false;
}

int
backend_probe_source(const struct backend *be)
{
	const struct cfg_backend *c = be->conf;
	bool fam[2] = {false, false}; /* AF_INET, AF_INET6 seen */
	const char *what;
	int fd;

	if (c->source_mode == SRC_DEFAULT)
		return 0;
	for (size_t i = 0; i < c->nservers; i++)
		fam[c->servers[i].addr.ss.ss_family == AF_INET6] = true;
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;

		if (!fam[f])
			continue;
		if (c->source_mode == SRC_CLIENTIP)
			fd = sock_outgoing(family, NULL, 0, true, &what);
		else
			fd = sock_outgoing(
			    family, (const struct sockaddr *)&c->source_ss,
			    c->source_len, false, &what);
		if (fd >= 0) {
			close(fd);
			continue;
		}
		if (errno == EPERM && c->source_mode == SRC_CLIENTIP)
			log_warn("backend %s: source = \"clientip\" needs %s "
			         "(run as root or with CAP_NET_ADMIN)",
			         c->name, what);
		else
			log_warn("backend %s: source = \"%s\": %s", c->name,
			         c->source, what);
		return -1;
	}
	return 0;
}
