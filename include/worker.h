/* Worker threads (global.workers): each runs an event loop with its own
 * sessions (struct sess_ctx), read buffer, pipe pool and mailbox.  Worker
 * 0 is the main thread itself, which also accepts: it hands each accepted
 * connection to the worker with the fewest sessions (itself included,
 * then without a hand-over).  The loops pause briefly between busy passes
 * (see worker_loop). */
#ifndef LB_WORKER_H
#define LB_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include <event2/event.h>

#include "listener.h"
#include "mailbox.h"
#include "session.h"

struct worker;

struct workers {
	struct worker *w;
	unsigned n;
	unsigned next; /* the hand-out's tie-break */
	unsigned coalesce_us;
	struct sess_env env;
	struct acceptor *acc; /* the main thread's, for acceptor_update */
};

/* An event base for sessions (epoll with a changelist). */
struct event_base *workers_new_base(void);
/* How many workers global.workers means here (0: one per CPU this
 * process may run on). */
unsigned workers_count(int configured);
/* The workers' bases, relay contexts and mailboxes; worker 0 runs on
 * main_base.  Their threads start with workers_start.  Returns 0 or -1
 * (logged). */
int workers_init(struct workers *ws, unsigned n, struct event_base *main_base,
                 const struct sess_env *env);
/* Start the threads of workers 1..n-1 (signals blocked in them).
 * Returns 0 or -1 (logged). */
int workers_start(struct workers *ws);
/* Run worker 0's loop on the calling (main) thread until it is told to
 * exit.  Returns 0, or -1 when the loop failed. */
int workers_run_main(struct workers *ws);
/* Stop the threads' loops and join them (their sessions stay: see
 * workers_free). */
void workers_stop(struct workers *ws);
/* After workers_stop: close what is left, free everything. */
void workers_free(struct workers *ws);

/* The acceptor's accept function (arg: the workers). */
void workers_accept(void *arg, struct frontend *fe, evutil_socket_t fd,
                    const struct sockaddr *sa, int salen);

/* Asked of every worker, through their mailboxes (any thread). */
void workers_close_all(struct workers *ws, enum session_end end);
/* Close the sessions holding a slot of srv.  Returns -1 when out of
 * memory (logged). */
int workers_close_server(struct workers *ws, const struct server *srv,
                         enum session_end end);
/* Reload: every worker moves its sessions to the new objects, then calls
 * done(arg, stay) on its own thread (stay: sessions left on retired
 * objects).  The caller waits for n calls. */
void workers_migrate(struct workers *ws, void (*done)(void *arg, unsigned stay),
                     void *arg);
/* Worker 0's loop ends (main thread: rt's stop). */
void workers_exit_main(struct workers *ws);

/* Worker i's mailbox (worker 0's is the main thread's). */
struct mailbox *workers_mailbox(const struct workers *ws, unsigned i);

/* Views (any thread). */
unsigned workers_sessions(const struct workers *ws, unsigned i);
unsigned long long workers_total(const struct workers *ws, unsigned i);

#endif
