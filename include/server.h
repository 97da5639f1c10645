/* A server of a backend: its state and session counts. */
#ifndef LB_SERVER_H
#define LB_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "cfg.h"

enum srv_admin { SRV_READY, SRV_DRAIN, SRV_MAINT };

struct server {
	const struct cfg_server *conf;
	struct backend *be;
	enum srv_admin admin;
	bool up;    /* operational state (health checks arrive later) */
	int weight; /* current weight, starts at conf->weight */
	unsigned cur_sess;
	uint64_t total_sess;
	uint64_t connect_failures;
};

void server_init(struct server *srv, const struct cfg_server *conf,
                 struct backend *be);
/* May take new sessions at all: UP, READY, weight > 0. */
bool server_usable(const struct server *srv);
/* The server's current connection limit (maxconn, or the minconn ramp);
 * 0 = unlimited. */
unsigned server_limit(const struct server *srv);
bool server_has_room(const struct server *srv);
const char *server_state_name(const struct server *srv);

#endif
