/* A backend pool: servers, server choice, and the queue of clients
 * waiting for a server slot (server maxconn). */
#ifndef LB_BACKEND_H
#define LB_BACKEND_H

#include <sys/queue.h>
#include <sys/socket.h>

#include "common.h"
#include "cfg.h"
#include "lb.h"

#include <openssl/ssl.h>

/* A place in the backend queue, embedded in a waiting session. */
struct queue_entry {
	TAILQ_ENTRY(queue_entry) link;
	struct session *s;
};
TAILQ_HEAD(session_queue, queue_entry);

struct backend {
	const struct cfg_backend *conf;
	struct rt *rt;
	struct server *servers;
	size_t nservers;
	struct lb_entry *lbv; /* one per server, same order */
	struct lb_state lbst;
	unsigned cur_sess; /* sessions with a server of this backend */
	uint64_t retries;  /* connect attempts after a failure */
	struct session_queue queue;
	unsigned queued;
	bool alive;        /* some server UP (for backend_down/backend_up) */
	SSL_CTX *tls_ctx;  /* STARTTLS checks */
	bool in_queue_run; /* re-entrancy guard for backend_process_queue */
	bool queue_again;
};

enum pick_result { PICK_OK, PICK_FULL, PICK_NONE };

void backend_init(struct backend *be, const struct cfg_backend *conf,
                  struct rt *rt);
void backend_free(struct backend *be);

/* Choose a server for a client.  avoid (may be NULL) is a server that just
 * failed: it is chosen only when no other server can take the client. */
enum pick_result backend_pick(struct backend *be, const struct sockaddr *client,
                              const struct server *avoid, struct server **out);

/* Session bookkeeping: a session holds a slot from take to release. */
void backend_take(struct backend *be, struct server *srv);
void backend_release(struct backend *be, struct server *srv);
/* Undo backend_take for a session that never got to connect (the
 * balancer's own descriptor shortage): the counters as if it had not
 * been given the slot, and the queue not run (it would hit the same
 * shortage). */
void backend_untake(struct backend *be, struct server *srv);

void backend_enqueue(struct backend *be, struct queue_entry *qe);
void backend_dequeue(struct backend *be, struct queue_entry *qe);
/* Give freed slots to waiting sessions, oldest first. */
void backend_process_queue(struct backend *be);

/* Number of servers that are usable, split by tier. */
/* The server of that name; NULL if none. */
struct server *backend_find_server(struct backend *be, const char *name);
/* Recompute be->alive silently (after a reload carried states over). */
void backend_refresh_alive(struct backend *be);

/* Can this process connect from the configured source?  For "clientip"
 * IP_TRANSPARENT must be allowed, for "ADDR" the address must bind.
 * Returns 0, or -1 after logging one line saying what and why. */
int backend_probe_source(const struct backend *be);

void backend_count_up(const struct backend *be, unsigned *active,
                      unsigned *backup);

#endif
