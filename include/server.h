/* A server of a backend: its state and session counts. */
#ifndef LB_SERVER_H
#define LB_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/queue.h>
#include <time.h>

#include "common.h"
#include "cfg.h"
#include "health.h"

TAILQ_HEAD(server_sessions, session);

/* What one health check found (check.c -> server.c). */
struct check_result {
	bool pass;
	const char *step;  /* where it failed */
	int code;          /* SMTP reply code, 0 = none */
	const char *reply; /* reply text, with code */
	const char
	    *reason; /* without code: "timeout", "connection refused"... */
	uint64_t duration_ms;
};

enum srv_admin { SRV_READY, SRV_DRAIN, SRV_MAINT };

/* The steps a check can fail at, for counting: "connect", "greeting",
 * "helo", "starttls", "tls", "ehlo", "quit". */
#define SERVER_CHECK_STEPS 7
extern const char *const server_check_steps[SERVER_CHECK_STEPS];

struct server {
	const struct cfg_server *conf;
	struct backend *be;
	enum srv_admin admin;
	bool up;    /* operational state (health checks arrive later) */
	int weight; /* current weight, starts at conf->weight */
	unsigned cur_sess;
	unsigned max_sess; /* highest cur_sess seen */
	uint64_t total_sess;
	uint64_t connect_failures;
	uint64_t bytes_in, bytes_out; /* of its finished sessions */
	time_t last_change;           /* wall clock of the last state change */
	uint64_t checks;              /* health checks run */
	uint64_t check_failures[SERVER_CHECK_STEPS]; /* by step, see below */
	uint64_t last_check_ms;                      /* its duration */
	struct server_sessions sessions; /* sessions holding a slot here */

	/* Health (servers with check = true). */
	bool checked;
	struct health health;
	struct check *check;
	uint64_t down_since_ms; /* wall clock, when it went DOWN */
	char last_check[256];   /* "passed (4 ms)", "failed at helo: ..." */
	time_t cert_not_after;  /* 0 = unknown */
	time_t cert_warned;     /* when cert_expiry was last logged */
};

void server_init(struct server *srv, const struct cfg_server *conf,
                 struct backend *be);
/* Reload: srv (new) replaces old (same backend and server name).  The
 * operator's drain/maint and weight stay unless the file changed them;
 * health state stays when the address and the checking stay. */
void server_inherit(struct server *srv, const struct server *old);
/* May take new sessions at all: UP, READY, weight > 0. */
bool server_usable(const struct server *srv);
/* The server's current connection limit (maxconn, or the minconn ramp);
 * 0 = unlimited. */
unsigned server_limit(const struct server *srv);
bool server_has_room(const struct server *srv);
/* "UP", "UP 1/3", "DOWN", "DOWN 1/2", "DRAIN", "MAINT". */
void server_state_text(const struct server *srv, char *buf, size_t len);

/* A health check finished: update the counter, log events, act on a
 * state change (shutdown-sessions, queue, backend_down/up). */
void server_check_result(struct server *srv, const struct check_result *res);
/* Operator: READY / DRAIN / MAINT (lbctl enable / drain / disable). */
void server_set_admin(struct server *srv, enum srv_admin admin);
/* Operator: weight 0..256. */
void server_set_weight(struct server *srv, int weight);
/* A check saw a certificate expiring within cert_expiry_warn. */
void server_cert_seen(struct server *srv, time_t not_after,
                      const char *subject);
/* Servers that are UP and not in maintenance, by tier. */
void server_count_alive(const struct backend *be, unsigned *active,
                        unsigned *backup);

#endif
