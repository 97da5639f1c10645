/* The server pool: every backend's servers and their state (admin state,
 * weight, health counter, session counts, counters), server choice through
 * lb.c with backup servers and minconn/fullconn limits, session slots, and
 * the queue of clients waiting for a slot.
 *
 * A leaf: it depends only on the configuration types, the balancing
 * algorithms (lb.h) and the health counter (health.h).  It never calls
 * session, check, log or I/O code.  Its one lock is taken inside each
 * function below and held only for that function's own short section, so
 * no caller ever holds it and nothing can re-enter it.  A function that
 * changes state and has consequences elsewhere returns them in a struct
 * pool_work, which its caller carries out after the call (work.c): the
 * health events to log, the waiting clients given a slot or turned away,
 * the sessions to close, the check to stop or to run now.
 *
 * Objects: a pool_set is the backends of one configuration; the pool
 * holds the current one.  pool_install makes a new set current (start,
 * reload): states and counters are carried over by backend and server
 * name, and each old backend and server gets a successor (the new object
 * of the same name; for a server also at the same address), to which its
 * session slots, its queue and everything done later to the old object
 * through this interface (release, retry counts) move.  A retired set is
 * freed by its owner once nothing refers to it any more.
 *
 * Facts that never change (configuration, names, positions, successors
 * once set) are read without the lock by the accessors marked "any time";
 * everything else only through the functions below. */
#ifndef LB_POOL_H
#define LB_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "cfg.h"
#include "health.h"

struct pool;
struct pool_set;
struct backend;
struct server;

/* The operator's state of a server (lbctl enable / drain / disable). */
enum srv_admin { SRV_READY, SRV_DRAIN, SRV_MAINT };

/* The state a server is in, as the status page, the metrics and the
 * timeline show it. */
enum srv_state {
	SRV_STATE_UP,
	SRV_STATE_DOWN,
	SRV_STATE_DRAIN,
	SRV_STATE_MAINT
};
const char *srv_state_name(enum srv_state st); /* "UP" "DOWN" ... */

/* --- a client waiting for a slot ------------------------------------------
 *
 * Embedded in its session.  The pool puts it in its backend's queue (oldest
 * first) and, when a slot frees up, gives it a server (or turns it away
 * when no server is left) and returns it in pool_work.grants; its owner is
 * then told (its worker's mailbox) and takes the result with pool_claim.
 * Fields are the pool's, under its lock; set the client with
 * pool_waiter_init before the first pool_assign. */
enum waiter_state { WAITER_IDLE, WAITER_QUEUED, WAITER_GRANTED };
#define POOL_AVOID 8
struct pool_waiter {
	TAILQ_ENTRY(pool_waiter) link; /* its backend's queue or granted */
	struct pool_waiter *next;      /* in a pool_work's grants */
	enum waiter_state state;
	struct backend *be;
	/* The servers whose connect or greeting failed for this client,
	 * the last POOL_AVOID of them (pool_waiter_avoid): not chosen
	 * again while another candidate is left. */
	struct server *avoid[POOL_AVOID];
	unsigned navoid;
	struct server *granted; /* WAITER_GRANTED: the server, or NULL */
	bool again;             /* its server went with a reload: ask again */
	uint8_t ip[16];         /* the client's address (source hashing) */
	uint8_t iplen;
};
TAILQ_HEAD(waiter_list, pool_waiter);

void pool_waiter_init(struct pool_waiter *wt, const struct sockaddr *client);
/* srv failed this client: avoid it (the owner's call, while the waiter is
 * idle, i.e. not in pool_assign's queue). */
void pool_waiter_avoid(struct pool_waiter *wt, struct server *srv);
/* The idle waiter's session moves to be, a backend that succeeded its
 * own (reload): the avoided servers become be's servers of the same
 * names, the removed ones are forgotten.  Call it while the old objects
 * are still held (before the session lets its generation go): it reads
 * them. */
void pool_waiter_rebase(struct pool_waiter *wt, const struct backend *be);

/* --- the work a state change leaves to its caller ----------------------- */

enum pool_event_kind {
	PEV_UP,
	PEV_DOWN,
	PEV_FAIL, /* a failed check while still UP (going down) */
	PEV_READY,
	PEV_DRAIN,
	PEV_MAINT,
	PEV_BACKEND_UP,
	PEV_BACKEND_DOWN,
	PEV_CERT_EXPIRY,
	PEV_WEIGHT, /* the weight in force changed (operator or agent) */
};

/* A health event to log (events.c writes it).  Strings point into the
 * configuration and into the caller's check result: valid until the
 * caller returns. */
struct pool_event {
	enum pool_event_kind kind;
	const struct cfg_backend *be;
	const struct cfg_server *srv; /* NULL for backend events */
	/* down, fail: the check that failed; up: the one that passed */
	const char *step;
	int code;
	const char *reply;
	const char *reason;
	uint64_t duration_ms;
	unsigned failures, successes;
	uint64_t downtime_s;
	/* "traffic": caused by live sessions, not by a check (down);
	 * "agent": by the agent check (load-balancer.conf(5), AGENT CHECK);
	 * NULL: a check, or an operator's command */
	const char *by;
	/* weight: the weight in force now (without a slow start's ramp),
	 * and the agent's new maxconn:N when it changed (0 = unlimited) */
	int weight;
	bool has_maxconn;
	int maxconn;
	/* alive servers (UP or DRAIN) after the change, by tier */
	unsigned active, backup;
	/* cert_expiry */
	time_t not_after;
	const char *subject;
};

#define POOL_WORK_EVENTS 6

struct pool_work {
	/* Waiters given a server or turned away (granted NULL), in queue
	 * order: tell each one's owner (it calls pool_claim). */
	struct pool_waiter *grants;
	struct pool_waiter **grants_tail;
	struct pool_event events[POOL_WORK_EVENTS];
	size_t nevents;
	/* on_marked_down = shutdown-sessions: close this server's sessions. */
	struct server *close;
	/* The server's health check: stop it (maintenance), run it now
	 * (back from maintenance), or schedule the next one after next_ms. */
	struct server *check;
	bool check_stop, check_now, check_next;
	uint64_t next_ms;
	/* The same server's agent check: stop it (the operator's
	 * maintenance), or run it now (back from it). */
	bool agent_stop, agent_now;
};

void pool_work_init(struct pool_work *w);

/* --- the pool and its sets --------------------------------------------- */

struct pool *pool_new(void);
void pool_free(struct pool *p);
/* The wall clock in milliseconds (tests set their own); default: real. */
void pool_set_clock(struct pool *p, uint64_t (*wall_ms)(void));

/* The backends and servers of cfg (not yet current).  owner is the
 * caller's (the configuration generation), returned by backend_owner. */
struct pool_set *pool_set_new(const struct cfg *cfg, void *owner);
/* A set that is not current and that nothing refers to any more. */
void pool_set_free(struct pool_set *set);

/* Make set current; the previous one (if any) is retired.  Grants: the
 * queues, run again; clients queued on a backend that is gone are turned
 * away.  One thread at a time installs (the names are matched before the
 * lock is taken). */
void pool_install(struct pool *p, struct pool_set *set, struct pool_work *w);

/* Any time. */
size_t pool_set_nbackends(const struct pool_set *set);
struct backend *pool_set_backend(struct pool_set *set, size_t i);
struct backend *pool_set_find(struct pool_set *set, const char *name);
const struct cfg_backend *backend_conf(const struct backend *be);
void *backend_owner(const struct backend *be);
size_t backend_nservers(const struct backend *be);
struct server *backend_server(struct backend *be, size_t i);
struct server *backend_find_server(struct backend *be, const char *name);
size_t backend_index(const struct backend *be); /* in its set */
const struct cfg_server *server_conf(const struct server *srv);
size_t server_index(const struct server *srv); /* in its backend */
struct backend *server_backend(const struct server *srv);
/* check = true in a backend with a health_check group. */
bool server_checked(const struct server *srv);
/* Set when a newer set took over (NULL: none, or removed). */
struct backend *backend_successor(const struct backend *be);
struct server *server_successor(const struct server *srv);

/* The current set's server "BACKEND/SERVER"; NULL with a reason in err
 * ("no backend 'x'", "backend 'x' has no server 'y'", "expected
 * BACKEND/SERVER, got 'z'"). */
struct server *pool_find_server(struct pool *p, const char *spec, char *err,
                                size_t errlen);
/* The same with the two names apart (a backend name may hold a "/"). */
struct server *pool_find_server_by(struct pool *p, const char *backend,
                                   const char *server, char *err,
                                   size_t errlen);
/* The current set's srv took over the state of a server of the same
 * name at its install (a reload); false at start and for a server the
 * reload added.  Read on the installing thread. */
bool server_inherited(const struct server *srv);

/* --- sessions: choice, slots, queue ------------------------------------- */

enum pool_pick {
	POOL_OK,     /* a slot of *out is the caller's */
	POOL_QUEUED, /* every usable server is full: wt is in the queue */
	POOL_FULL,   /* the same, but queue was false: nothing done */
	POOL_NONE,   /* no server takes sessions */
	POOL_MOVED,  /* be is no longer current: use backend_successor */
};

/* Choose a server for wt's client among be's servers that take sessions
 * (backup ones only when no other one does; the ones in wt->avoid only
 * when no other candidate is left) and take a slot of it; or queue. */
enum pool_pick pool_assign(struct pool *p, struct backend *be,
                           struct pool_waiter *wt, bool queue,
                           struct server **out);
/* Leave the queue.  Returns WAITER_QUEUED when it left, WAITER_GRANTED
 * when it was given a result that its owner will be told about (it must
 * then claim it), WAITER_IDLE when it was not waiting. */
enum waiter_state pool_leave_queue(struct pool *p, struct pool_waiter *wt);
/* Take the result a grant announced.  A waiter stays given (never queued
 * again) until it claims. */
enum pool_claim {
	CLAIM_NOTHING,   /* there was no result (0: false) */
	CLAIM_SERVER,    /* *srv: a slot of it is the caller's */
	CLAIM_NO_SERVER, /* turned away: no server takes sessions */
	CLAIM_AGAIN,     /* the server it was given went with a reload
	                  * before it was told: choose again (pool_assign) */
};
enum pool_claim pool_claim(struct pool *p, struct pool_waiter *wt,
                           struct server **srv);
/* A slot ends: the session's bytes are counted to the server, and freed
 * capacity goes to the waiters (grants). */
void pool_release(struct pool *p, struct server *srv, uint64_t bytes_in,
                  uint64_t bytes_out, struct pool_work *w);
/* Give back a slot that was never used (the balancer's own descriptor
 * shortage): counters as if it had not been taken, queue not run. */
void pool_untake(struct pool *p, struct server *srv);
/* A live session's connect to srv, or its greeting, failed (res: step
 * "connect" or "greeting", code or reason, duration; NULL: the balancer's
 * own failure, not counted against srv); retry: the session
 * tries again (per backend counter of retries).  Passive health
 * (load-balancer.conf(5), GREETING GATE): the failure is counted, and the
 * backend's error_limit consecutive ones mark a checked server DOWN at
 * once (an event by=traffic, shutdown-sessions, the queue run again). */
void pool_session_failed(struct pool *p, struct server *srv,
                         const struct check_result *res, bool retry,
                         struct pool_work *w);
/* A session committed to srv: its consecutive failures start again from
 * 0 (cheap when there were none: no lock). */
void pool_session_ok(struct pool *p, struct server *srv);

/* --- operators and checks ---------------------------------------------- */

/* lbctl drain / disable / enable.  state (may be NULL) gets the state
 * text afterwards. */
void pool_set_admin(struct pool *p, struct server *srv, enum srv_admin admin,
                    char *state, size_t len, struct pool_work *w);
/* lbctl set weight (0..LB_WEIGHT_MAX).  Returns the previous weight.
 * The operator's drain, maint and weight win over the agent until
 * enable, which also gives back the configured weight. */
int pool_set_weight(struct pool *p, struct server *srv, int weight,
                    struct pool_work *w);
/* The state file's operator state of srv, at start or after a reload:
 * admin (an enum srv_admin, -1 = none) and weight (-1 = none) as if set
 * with lbctl (the same events, when they change something). */
void pool_restore(struct pool *p, struct server *srv, int admin, int weight,
                  struct pool_work *w);
/* An agent check's answer (r), or its failure (r NULL, failure says
 * why: counted and shown, nothing else changes). */
struct agent_reply;
void pool_agent_result(struct pool *p, struct server *srv,
                       const struct agent_reply *r, const char *failure,
                       uint64_t duration_ms, struct pool_work *w);
/* A health check finished: the health counter, counters, events, and
 * what follows (shutdown-sessions, queue, next check). */
void pool_check_result(struct pool *p, struct server *srv,
                       const struct check_result *res, struct pool_work *w);
/* A STARTTLS check saw the server's certificate: a cert_expiry event when
 * it expires within cert_expiry_warn (once a day per server). */
void pool_cert_seen(struct pool *p, struct server *srv, time_t not_after,
                    const char *subject, struct pool_work *w);

/* --- views ---------------------------------------------------------------
 *
 * The one predicate for "takes new sessions": UP, READY (not drained, not
 * in maintenance) and weight above 0.  Server choice, lbctl check, /health,
 * the status page and load_balancer_backend_up all use it. */

/* In maintenance (lbctl disable, disabled = true, the agent's maint):
 * not checked. */
bool pool_in_maint(struct pool *p, struct server *srv);
/* In the operator's or the configuration's maintenance: no agent check
 * either. */
bool pool_agent_paused(struct pool *p, struct server *srv);
/* "UP", "UP 1/3" (going down), "DOWN", "DOWN 1/2" (going up), "DRAIN",
 * "MAINT". */
void pool_state_text(struct pool *p, struct server *srv, char *buf, size_t len);
/* Backends of the current set with no server that takes sessions: each
 * is passed to problem; returns how many. */
size_t pool_ready(struct pool *p,
                  void (*problem)(void *arg, const struct cfg_backend *be),
                  void *arg);

struct pool_snap_server {
	const struct cfg_server *conf;
	enum srv_state state;
	char state_text[16];
	bool takes; /* takes new sessions */
	bool alive; /* UP or DRAIN (the health log's active/backup count) */
	bool checked;
	bool up;                  /* operational state */
	struct health health;     /* its health counter */
	int weight;               /* in force (agent, slow start), rounded up */
	int base_weight;          /* configured, or set by the operator */
	enum srv_admin admin;     /* the operator's (or configuration's) */
	bool op_admin, op_weight; /* set with lbctl or the state file */
	bool ramping;             /* in a slow start */
	bool has_agent;
	uint64_t agent_checks, agent_failures;
	char agent_last[160];
	unsigned cur, max, limit; /* limit 0 = none */
	uint64_t total, connect_failures, bytes_in, bytes_out;
	uint64_t traffic_errors; /* failed connects and greetings, in all */
	unsigned traffic_fails;  /* of them in a row, now */
	uint64_t checks, check_failures[HEALTH_STEPS], last_check_ms;
	time_t last_change, cert_not_after;
	char last_check[256];
};

struct pool_snap_backend {
	const struct cfg_backend *conf;
	struct pool_snap_server *servers;
	size_t nservers;
	unsigned cur, queued;
	uint64_t retries;
	unsigned active, backup; /* alive (UP or DRAIN), by tier */
	unsigned takes;          /* servers that take new sessions */
};

struct pool_snap {
	struct pool_snap_backend *backends;
	size_t nbackends;
	struct pool_snap_server *all; /* every server, the backends' arrays */
};

/* A copy of the current set's state, taken under the lock in one go.
 * Returns 0, or -1 when out of memory. */
int pool_snapshot(struct pool *p, struct pool_snap *snap);
void pool_snap_free(struct pool_snap *snap);

#endif
