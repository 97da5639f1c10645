/* Relayed sessions (load-balancer.conf(5), RELAY).
 *
 * A session belongs to its worker thread (struct sess_ctx) from start to
 * close.  Before a server is connected the client is not read: its early
 * bytes wait in the kernel (a queued client's hang-up is watched with one
 * event), and a bufferevent on the client socket exists only to send the
 * unavailable_reply.  Once connected, relay.c owns both sockets and moves
 * the bytes (direct writes, back-pressure at RELAY_BUF per direction,
 * half-closes, splice for bulk), reporting what moved and how it ended.
 *
 * Server choice, slots and the queue are the pool's (pool.c): a session
 * asks it for a server, and gets a slot or a place in the queue.  A slot
 * freed by another session reaches a waiting one as mail (OP_GRANTED),
 * also on the same thread, so that nothing re-enters: whoever frees a
 * slot only delivers the pool's grants (session_deliver_grants).
 *
 * Idle time is one timer per session.  Whose turn it is decides which
 * limit applies: after the server's data ended a line (banner, reply) the
 * balancer waits for the client (timeout_client); before the first server
 * byte, after a complete client line, or during a partial server reply it
 * waits for the server (timeout_server).  A long DATA upload or a filter
 * that scans for minutes after the final dot are judged by the right
 * limit.
 *
 * Every end goes through session_close(), which writes the session log
 * line (load-balancer.conf(5), LOGS) once. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common.h"
#include "gen.h"
#include "log.h"
#include "parse.h"
#include "proxy.h"
#include "session.h"
#include "sock.h"

#define FDWAIT_STEP_MS 50
/* The greeting gate looks at most this much of a server's first reply
 * before it decides (a longer first line is judged by its code). */
#define GREET_MAX 1024
/* s->greet_last: a reply code, or one of these. */
#define GREET_NONE 0
#define GREET_EOF (-1)
#define GREET_TIMEOUT (-2)

enum sess_state {
	S_NEW,        /* accepted by another thread: OP_START follows */
	S_QUEUED,     /* waiting in the backend queue for a server slot */
	S_DEQUEUED,   /* given a result while its timer fired: mail follows */
	S_FDWAIT,     /* no descriptor for a server socket: try again soon */
	S_CONNECTING, /* connecting to a server */
	S_GREETING,   /* connected, reading the server's first line */
	S_RELAY,      /* relaying bytes */
	S_REFUSING,   /* writing unavailable_reply, then closing */
	S_LINGER,     /* reply flushed, write side shut, waiting for EOF */
};

/* Its mail's ops. */
enum {
	OP_START = 1,   /* accepted by another thread */
	OP_GRANTED = 2, /* the pool gave its waiter a result: claim it */
};

struct session {
	TAILQ_ENTRY(session) entry; /* ctx->sessions, once started */
	struct mail mail;
	struct sess_ctx *ctx;
	struct pool_waiter wt;
	struct frontend *fe;
	struct backend *be;
	struct gen *pin_fe, *pin_be; /* the generations of fe and be */
	struct server *srv;          /* holds a slot of this server */
	struct server *failed;       /* last server whose connect failed */
	/* The client side is not read before a server is connected (its
	 * early bytes wait in the kernel); while queued, qev notices a
	 * hang-up; cbev exists only to send the unavailable_reply.  Once
	 * connected the relay owns both sockets. */
	struct bufferevent *cbev;
	struct event *qev;
	int cfd, sfd;
	/* The server connect in progress; then (S_GREETING) the watch
	 * for its first line. */
	struct event *cev;
	int greet_last;         /* the last failed greeting (GREET_*) */
	unsigned greet_fails;   /* attempts that failed at the greeting */
	unsigned connect_fails; /* attempts that failed to connect */
	struct relay *relay;
	struct event *timer;
	struct sockaddr_storage client;
	socklen_t clientlen;
	enum sess_state state;
	enum session_end end;
	bool end_set;
	bool started;        /* in ctx->sessions */
	bool close_pending;  /* to close when its grant is delivered */
	bool queue_again;    /* queued again after CLAIM_AGAIN: same wait */
	bool client_eof;     /* EOF from the client before the relay */
	bool queue_early;    /* queued, and the client already sent bytes */
	bool waiting_client; /* whose turn: see above */
	bool turn_unknown;   /* spliced bytes: either side's limit */
	int retries;
	struct climit *climit; /* a count of its network is the session's */
	struct climit_ticket ticket;
	uint64_t t_accept, t_queue, t_connect, last_activity;
	uint64_t t_fdwait; /* first descriptor shortage, 0 = none */
	long long queue_ms, connect_ms;
	uint64_t bytes_in, bytes_out;
};

static void session_close(struct session *s, enum session_end end);
static void session_connect_now(struct session *s);
static void session_assign(struct session *s);
static void session_refuse(struct session *s, enum session_end end);
static void unwatch_queued(struct session *s);
static void watch_queued(struct session *s);

static const char *const end_names[] = {
    [END_CLIENT_CLOSE] = "client_close",
    [END_SERVER_CLOSE] = "server_close",
    [END_CLIENT_TIMEOUT] = "client_timeout",
    [END_SERVER_TIMEOUT] = "server_timeout",
    [END_SERVER_DOWN] = "server_down",
    [END_NO_SERVER] = "no_server",
    [END_QUEUE_TIMEOUT] = "queue_timeout",
    [END_CONNECT_FAILED] = "connect_failed",
    [END_SHUTDOWN] = "shutdown",
    [END_CLIENT_LIMIT] = "client_limit",
    [END_DENIED] = "denied",
    [END_GREETING_FAILED] = "greeting_failed",
};

const char *
session_end_name(enum session_end end)
{
	if ((size_t)end < sizeof(end_names) / sizeof(end_names[0]))
		return end_names[end];
	return "unknown";
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct pool *
pool_of(const struct session *s)
{
	return s->ctx->env->pool;
}

static void
arm_timer(struct session *s, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
	                     (suseconds_t)((ms % 1000) * 1000)};

	evtimer_add(s->timer, &tv);
}

static uint64_t
idle_limit(const struct session *s)
{
	uint64_t c = s->fe->conf->timeout_client_ms;
	uint64_t v = backend_conf(s->be)->timeout_server_ms;

	/* Spliced bytes are not seen: whose turn it is is not known, and
	 * the longer limit must not cut a filter scanning a message. */
	if (s->turn_unknown)
		return c > v ? c : v;
	return s->waiting_client ? c : v;
}

/* How long the relay timer may sleep: never past the shorter of the two
 * limits, so that a turn change (which resets the idle clock) never needs
 * the timer re-armed: it wakes at most that late and measures again. */
static uint64_t
idle_step(const struct session *s, uint64_t left)
{
	uint64_t c = s->fe->conf->timeout_client_ms;
	uint64_t v = backend_conf(s->be)->timeout_server_ms;
	uint64_t m = c < v ? c : v;

	return left < m ? left : m;
}

/* Data moved: refresh the idle clock and note whose turn it is (the
 * timer reads both when it wakes). */
static void
activity(struct session *s, bool waiting_client, bool unknown)
{
	s->last_activity = now_ms();
	s->waiting_client = waiting_client;
	s->turn_unknown = unknown;
}

static void
set_end(struct session *s, enum session_end end)
{
	if (!s->end_set) {
		s->end = end;
		s->end_set = true;
	}
}

static void
free_bev(struct bufferevent **bevp)
{
	if (*bevp != NULL) {
		bufferevent_setcb(*bevp, NULL, NULL, NULL, NULL);
		bufferevent_disable(*bevp, EV_READ | EV_WRITE);
		bufferevent_free(*bevp);
		*bevp = NULL;
	}
}

/* The server socket of a connect that failed or was abandoned. */
static void
drop_server_socket(struct session *s)
{
	if (s->cev != NULL) {
		event_free(s->cev);
		s->cev = NULL;
	}
	if (s->sfd >= 0) {
		close(s->sfd);
		s->sfd = -1;
	}
}

/* What one session line says (load-balancer.conf(5), LOGS). */
struct session_line {
	const struct sockaddr *client;
	const char *frontend, *backend, *server;
	long long queue_ms, connect_ms;
	uint64_t duration_ms, bytes_in, bytes_out;
	int retries;
	enum session_end end;
	int greet_last; /* GREET_* or a code */
};

/* The one writer of session lines: finished sessions and connections
 * refused at accept. */
static void
write_session_line(const struct session_line *l)
{
	char client[LB_SOCKADDR_STRLEN];
	char greet[24] = "";

	format_sockaddr(l->client, client, sizeof(client));
	/* The last failed greeting of a session that retried past one. */
	if (l->greet_last > 0)
		snprintf(greet, sizeof(greet), " greeting=%d", l->greet_last);
	else if (l->greet_last == GREET_EOF)
		snprintf(greet, sizeof(greet), " greeting=eof");
	else if (l->greet_last == GREET_TIMEOUT)
		snprintf(greet, sizeof(greet), " greeting=timeout");
	log_session("client=%s frontend=%s backend=%s server=%s queue_ms=%lld "
	            "connect_ms=%lld duration_ms=%llu bytes_in=%llu "
	            "bytes_out=%llu retries=%d end=%s%s",
	            client, l->frontend, l->backend, l->server, l->queue_ms,
	            l->connect_ms, (unsigned long long)l->duration_ms,
	            (unsigned long long)l->bytes_in,
	            (unsigned long long)l->bytes_out, l->retries,
	            session_end_name(l->end), greet);
}

static void
log_session_line(struct session *s)
{
	if (!s->fe->log_sessions)
		return;
	write_session_line(&(struct session_line){
	    .client = (const struct sockaddr *)&s->client,
	    .frontend = s->fe->conf->name,
	    .backend = backend_conf(s->be)->name,
	    .server = s->srv != NULL      ? server_conf(s->srv)->name
	              : s->failed != NULL ? server_conf(s->failed)->name
	                                  : "-",
	    .queue_ms = s->queue_ms,
	    .connect_ms = s->connect_ms,
	    .duration_ms = now_ms() - s->t_accept,
	    .bytes_in = s->bytes_in,
	    .bytes_out = s->bytes_out,
	    .retries = s->retries,
	    .end = s->end,
	    .greet_last = s->greet_last,
	});
}

/* A slot given back: its consequences (clients waiting for one) go to
 * their threads' mailboxes. */
static void
release_slot(struct session *s, struct server *srv, uint64_t in, uint64_t out)
{
	struct pool_work w;

	pool_work_init(&w);
	pool_release(pool_of(s), srv, in, out, &w);
	session_deliver_grants(&w);
}

/* The counts of a session that is gone (its frontend's are done while it
 * still holds it); the main thread is told when it may accept again or
 * stop. */
static void
count_gone(struct sess_ctx *ctx)
{
	const struct sess_env *env = ctx->env;
	unsigned ops = 0;

	atomic_fetch_sub(&ctx->nsess, 1);
	if (atomic_fetch_sub(&env->cnt->cur_sess, 1) == 1 &&
	    atomic_load(&env->cnt->stopping))
		ops |= MAIN_EXIT;
	if (atomic_load(&env->cnt->listeners_off) > 0)
		ops |= MAIN_LISTENERS;
	if (ops != 0)
		mailbox_post(env->main_mb, env->main_mail, ops, 0);
}

/* The waiter's result will come by mail: the close waits for it (the
 * slot it may hold must be given back, and the mail must not find the
 * session freed). */
static bool
must_wait_for_grant(struct session *s, enum session_end end)
{
	if (s->state == S_QUEUED &&
	    pool_leave_queue(pool_of(s), &s->wt) == WAITER_GRANTED)
		s->state = S_DEQUEUED;
	if (s->state != S_DEQUEUED)
		return false;
	s->close_pending = true;
	set_end(s, end);
	if (s->timer != NULL)
		evtimer_del(s->timer);
	unwatch_queued(s);
	return true;
}

/* The one close path. */
static void
session_close(struct session *s, enum session_end end)
{
	struct sess_ctx *ctx = s->ctx;
	struct frontend *fe = s->fe;
	struct server *srv = s->srv;
	struct frontend *newest;

	if (must_wait_for_grant(s, end))
		return;
	/* The cause that ends it wins (a timeout after a half-close, a
	 * shutdown); a natural end passes s->end back in. */
	s->end = end;
	s->end_set = true;
	log_session_line(s);
	newest = frontend_newest(fe);
	atomic_fetch_add(&newest->bytes_in, s->bytes_in);
	atomic_fetch_add(&newest->bytes_out, s->bytes_out);
	atomic_fetch_sub(&newest->cur_sess, 1);
	free_bev(&s->cbev);
	if (s->qev != NULL)
		event_free(s->qev);
	if (s->relay != NULL)
		relay_free(s->relay); /* closes both sockets */
	if (s->cfd >= 0)
		close(s->cfd);
	drop_server_socket(s);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->started)
		TAILQ_REMOVE(&ctx->sessions, s, entry);
	(void)mailbox_cancel(ctx->mb, &s->mail);
	if (srv != NULL)
		release_slot(s, srv, s->bytes_in, s->bytes_out);
	if (s->climit != NULL) {
		climit_release(s->climit, &s->ticket, now_ms());
		climit_unref(s->climit);
	}
	gen_unref(s->pin_fe);
	gen_unref(s->pin_be);
	free(s);
	count_gone(ctx);
}

/* --- refusing: unavailable_reply, then close ----------------------------- */

static void
linger_done(struct session *s)
{
	session_close(s, s->end);
}

static void
refuse_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	/* Flushed: shut our side, then wait briefly for the client's EOF so
	 * that closing with unread input does not reset the reply away. */
	(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
	s->state = S_LINGER;
	bufferevent_enable(bev, EV_READ);
	arm_timer(s, s->fe->conf->timeout_client_ms < 5000
	                 ? s->fe->conf->timeout_client_ms
	                 : 5000);
}

static void
linger_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev),
	               evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		linger_done(arg);
}

static void
session_refuse(struct session *s, enum session_end end)
{
	const char *reply = s->fe->conf->unavailable_reply;

	set_end(s, end);
	atomic_fetch_add(&frontend_newest(s->fe)->refused, 1);
	if (s->srv != NULL) {
		struct server *srv = s->srv;

		s->srv = NULL;
		drop_server_socket(s);
		release_slot(s, srv, 0, 0);
	}
	if (reply[0] == '\0' || s->client_eof) {
		session_close(s, end);
		return;
	}
	s->state = S_REFUSING;
	evtimer_del(s->timer);
	unwatch_queued(s);
	if ((s->cbev = bufferevent_socket_new(s->ctx->base, s->cfd, 0)) ==
	    NULL) {
		session_close(s, end);
		return;
	}
	bufferevent_setcb(s->cbev, linger_read_cb, refuse_write_cb,
	                  linger_event_cb, s);
	if (evbuffer_add_printf(bufferevent_get_output(s->cbev), "%s\r\n",
	                        reply) < 0 ||
	    bufferevent_enable(s->cbev, EV_WRITE) < 0) {
		session_close(s, end);
		return;
	}
	/* bytes_out counts every byte sent to the client, ours included. */
	s->bytes_out += strlen(reply) + 2;
	/* Bound the time spent writing to a client that does not read. */
	arm_timer(s, s->fe->conf->timeout_client_ms);
}

/* --- generations -------------------------------------------------------- */

/* Hold the generation of what the session uses now (*pin: the one held
 * so far). */
static void
repin(struct gen **pin, struct gen *g)
{
	if (*pin == g)
		return;
	gen_ref(g);
	gen_unref(*pin);
	*pin = g;
}

/* The backend (with the server it holds, if any) moves to the objects of
 * the same names that a reload made current.  False when there are none
 * (removed): the session stays on the retired ones. */
static bool
move_backend(struct session *s)
{
	struct backend *nb = backend_successor(s->be);
	struct server *ns = s->srv != NULL ? server_successor(s->srv) : NULL;

	if (nb == NULL || (s->srv != NULL && ns == NULL))
		return false;
	/* The slot itself moved at pool_install; an idle waiter's avoided
	 * servers move here, while the old objects are still pinned. */
	if (s->wt.state == WAITER_IDLE)
		pool_waiter_rebase(&s->wt, nb);
	s->be = nb;
	s->srv = ns;
	if (s->failed != NULL)
		s->failed = server_successor(s->failed);
	repin(&s->pin_be, gen_of_backend(nb));
	return true;
}

static bool
move_frontend(struct session *s)
{
	struct frontend *nf = frontend_successor(s->fe);

	if (nf == NULL)
		return false;
	/* Its counts are the newest frontend's already (gen_retire). */
	s->fe = nf;
	repin(&s->pin_fe, nf->owner);
	return true;
}

static bool
retired(const struct gen *g)
{
	return atomic_load(&g->retired);
}

unsigned
session_migrate(struct sess_ctx *ctx)
{
	struct session *s;
	unsigned stay = 0;

	TAILQ_FOREACH(s, &ctx->sessions, entry)
	{
		bool ok = true;

		if (s->close_pending)
			continue;
		if (retired(s->pin_fe))
			ok = move_frontend(s) && ok;
		if (retired(s->pin_be))
			ok = move_backend(s) && ok;
		stay += !ok;
	}
	return stay;
}

/* --- server choice, queue and connect ---------------------------------- */

/* What a pool call left to do, done on this thread. */
static void
apply_work(struct session *s, struct pool_work *w)
{
	const struct sess_env *env = s->ctx->env;

	if (env->apply != NULL)
		env->apply(env->apply_arg, w);
	else
		session_deliver_grants(w);
}

/* No server is left for the session: how its attempts failed, if it made
 * any (load-balancer.conf(5), LOGS). */
static enum session_end
failed_end(const struct session *s)
{
	if (s->greet_fails + s->connect_fails == 0)
		return END_NO_SERVER;
	return s->connect_fails == 0 ? END_GREETING_FAILED : END_CONNECT_FAILED;
}

/* An attempt on s->srv failed (res: at connect or at the greeting);
 * blame: the server's doing (passive health counts it), not the
 * balancer's own.  Another server, within retries, or the
 * unavailable_reply. */
static void
attempt_failed(struct session *s, const struct check_result *res, bool blame)
{
	struct server *srv = s->srv;
	bool retry = s->retries < backend_conf(s->be)->retries;
	bool greeting = strcmp(res->step, "greeting") == 0;
	struct pool_work w;

	drop_server_socket(s);
	if (s->qev != NULL) {
		/* The greeting's client watch: the next attempt (or the
		 * queue) watches the client its own way. */
		event_free(s->qev);
		s->qev = NULL;
	}
	pool_work_init(&w);
	pool_session_failed(pool_of(s), srv, blame ? res : NULL, retry, &w);
	if (greeting)
		s->greet_fails++;
	else
		s->connect_fails++;
	s->srv = NULL;
	s->failed = srv;
	pool_waiter_avoid(&s->wt, srv);
	pool_release(pool_of(s), srv, 0, 0, &w);
	apply_work(s, &w);
	if (!retry) {
		session_refuse(s, failed_end(s));
		return;
	}
	s->retries++;
	session_assign(s);
}

static void
connect_failed(struct session *s, int err, bool blame)
{
	const struct cfg_server *sc = server_conf(s->srv);
	char addr[LB_SOCKADDR_STRLEN], why[128];
	struct check_result res = {
	    .step = "connect",
	    .reason = why,
	    .duration_ms = now_ms() - s->t_connect,
	};

	/* As a check says it (load-balancer.conf(5), LOGS): "connection
	 * refused", "timeout", the errno text in lower case. */
	snprintf(why, sizeof(why), "%s",
	         err == ETIMEDOUT || err == 0 ? "timeout" : strerror(err));
	why[0] = (char)tolower((unsigned char)why[0]);

	format_sockaddr((const struct sockaddr *)&sc->addr.ss, addr,
	                sizeof(addr));
	log_debug("connect to %s/%s (%s) failed: %s", backend_conf(s->be)->name,
	          sc->name, addr, res.reason);
	attempt_failed(s, &res, blame);
}

/* The socket for a server connection when the backend has a source:
 * bound to the client's address (transparent) or to the configured one.
 * Returns the socket, -2 when the kernel's default source is fine (no
 * socket made), or -1 with errno set after logging why. */
static int
source_socket(struct session *s, const struct server *srv)
{
	const struct cfg_backend *bc = backend_conf(s->be);
	const struct cfg_server *sc = server_conf(srv);
	const struct sockaddr *dst = (const struct sockaddr *)&sc->addr.ss;
	struct sockaddr_storage src;
	socklen_t len;
	const char *what;
	char addr[LB_SOCKADDR_STRLEN];
	int fd;

	switch (bc->source_mode) {
	case SRC_DEFAULT:
		return -2;
	case SRC_ADDR:
		fd = sock_outgoing(dst->sa_family,
		                   (const struct sockaddr *)&bc->source_ss,
		                   bc->source_len, false, &what);
		break;
	case SRC_CLIENTIP:
		len = sock_addr_anyport((const struct sockaddr *)&s->client,
		                        &src);
		if (len == 0 || src.ss_family != dst->sa_family) {
			format_sockaddr((const struct sockaddr *)&s->client,
			                addr, sizeof(addr));
			log_warnx("%s/%s: cannot connect from the client's "
			          "address %s: not of the server's family",
			          bc->name, sc->name, addr);
			errno = EAFNOSUPPORT;
			return -1;
		}
		fd = sock_outgoing(dst->sa_family, (struct sockaddr *)&src, len,
		                   true, &what);
		break;
	default:
		return -2;
	}
	if (fd < 0 && errno != EMFILE && errno != ENFILE) {
		int err = errno;
		log_warn("%s/%s: source %s: %s", bc->name, sc->name, bc->source,
		         what);
		errno = err;
	}
	return fd;
}

/* The PROXY header for srv: the client's address and the address it
 * connected to.  Returns its length, or -1 (logged). */
static int
proxy_header_for(struct session *s, const struct server *srv, uint8_t *hdr,
                 size_t len)
{
	const struct cfg_server *sc = server_conf(srv);
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	const char *err;
	int n;

	if (getsockname(s->cfd, (struct sockaddr *)&local, &llen) < 0) {
		log_warn("%s/%s: PROXY header: getsockname",
		         backend_conf(s->be)->name, sc->name);
		return -1;
	}
	n = proxy_header(sc->proxy_protocol,
	                 (const struct sockaddr *)&s->client,
	                 (const struct sockaddr *)&local, hdr, len, &err);
	if (n < 0)
		log_warnx("%s/%s: PROXY header: %s", backend_conf(s->be)->name,
		          sc->name, err);
	return n;
}

static void server_connected(struct session *s);

static void
connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	/* Writable and nothing else: connected (an error or a reset is
	 * reported as readable and writable).  Otherwise SO_ERROR says. */
	if (what != EV_WRITE &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		connect_failed(s, err, true);
		return;
	}
	server_connected(s);
}

/* No descriptor for the server socket: the balancer's own shortage (the
 * client took the last one).  The client waits, as in the kernel's
 * backlog, while accepting pauses; every FDWAIT_STEP_MS the server choice
 * starts again, for at most timeout_connect; then unavailable_reply. */
static void
fd_shortage(struct session *s, int err)
{
	const struct sess_env *env = s->ctx->env;
	struct server *srv = s->srv;
	uint64_t now = now_ms();

	s->srv = NULL;
	pool_untake(pool_of(s), srv);
	if (s->t_fdwait == 0) {
		s->t_fdwait = now;
		if (!atomic_exchange(&env->cnt->fd_warned, true))
			log_warnx("no descriptor for a server connection (%s): "
			          "clients wait, accepting pauses",
			          strerror(err));
	}
	if (now - s->t_fdwait >= backend_conf(s->be)->timeout_connect_ms) {
		session_refuse(s, END_CONNECT_FAILED);
		return;
	}
	mailbox_post(env->main_mb, env->main_mail, MAIN_PAUSE, 0);
	s->state = S_FDWAIT;
	watch_queued(s);
	arm_timer(s, FDWAIT_STEP_MS);
}

/* Connect to srv, a slot of which the session holds. */
static void
session_connect_now(struct session *s)
{
	const struct cfg_addr *a = &server_conf(s->srv)->addr;
	const struct sess_env *env = s->ctx->env;
	const char *what;
	int fd;

	s->state = S_CONNECTING;
	s->t_connect = now_ms();
	/* With a source, source_socket says what went wrong itself. */
	fd = source_socket(s, s->srv);
	if (fd == -2 &&
	    (fd = sock_outgoing(a->ss.ss_family, NULL, 0, false, &what)) < 0 &&
	    errno != EMFILE && errno != ENFILE)
		log_warn("connect to %s: %s", a->text, what);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* Our own shortage, not the server's: no retry, no blame. */
		fd_shortage(s, errno);
		return;
	}
	s->t_fdwait = 0;
	if (atomic_load_explicit(&env->cnt->fd_warned, memory_order_relaxed))
		atomic_store(&env->cnt->fd_warned, false); /* news next time */
	if (fd < 0) {
		connect_failed(s, errno, false);
		return;
	}
	s->sfd = fd;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS) {
		connect_failed(s, errno, true);
		return;
	}
	/* Connected now (rare on loopback) or later: either way the
	 * outcome comes through connect_cb.  Watching reads too tells a
	 * plain success (writable only) from an error (reported as both). */
	s->cev = event_new(s->ctx->base, fd, EV_READ | EV_WRITE, connect_cb, s);
	if (s->cev == NULL || event_add(s->cev, NULL) < 0) {
		log_warn("connect to %s: event", a->text);
		connect_failed(s, ENOMEM, false);
		return;
	}
	arm_timer(s, backend_conf(s->be)->timeout_connect_ms);
}

/* Given srv by the pool (a slot is the session's): connect.  The pool may
 * have moved the session's backend to its successor (reload). */
static void
session_connect(struct session *s, struct server *srv)
{
	struct backend *be = server_backend(srv);

	if (be != s->be) {
		s->be = be;
		if (s->failed != NULL)
			s->failed = server_successor(s->failed);
		repin(&s->pin_be, gen_of_backend(be));
	}
	s->srv = srv;
	session_connect_now(s);
}

/* Pick a server and connect, queue, or refuse. */
static void
session_assign(struct session *s)
{
	const struct cfg_backend *bc;
	struct server *srv = NULL;
	enum pool_pick r;

	for (;;) {
		bc = backend_conf(s->be);
		r = pool_assign(pool_of(s), s->be, &s->wt,
		                bc->timeout_queue_ms > 0, &srv);
		if (r != POOL_MOVED)
			break;
		/* A reload replaced the backend: its successor, if any. */
		if (!move_backend(s)) {
			session_refuse(s, END_NO_SERVER);
			return;
		}
	}
	switch (r) {
	case POOL_OK:
		session_connect(s, srv);
		return;
	case POOL_QUEUED: {
		uint64_t now = now_ms(), left = bc->timeout_queue_ms;

		s->state = S_QUEUED;
		s->t_fdwait = 0; /* a wait of its own, under timeout_queue */
		if (s->queue_again && now - s->t_queue < left)
			left -= now - s->t_queue; /* asked to choose again */
		else if (!s->queue_again)
			s->t_queue = now;
		else
			left = 1;
		s->queue_again = false;
		watch_queued(s);
		arm_timer(s, left);
		return;
	}
	case POOL_FULL:
		session_refuse(s, END_QUEUE_TIMEOUT);
		return;
	case POOL_NONE:
	case POOL_MOVED:
		/* After failed attempts (passive health may have taken the
		 * last servers out): how they failed. */
		session_refuse(s, failed_end(s));
		return;
	}
}

/* OP_GRANTED: the pool gave the waiter a server, turned it away, or (a
 * reload removed the server it was given) asks it to choose again. */
static void
granted(struct session *s)
{
	struct server *srv = NULL;
	enum pool_claim r = pool_claim(pool_of(s), &s->wt, &srv);

	bool timed_out = s->state == S_DEQUEUED;

	if (r == CLAIM_NOTHING)
		return; /* not expected */
	s->queue_ms = (long long)(now_ms() - s->t_queue);
	s->state = S_NEW; /* out of the queue: nothing to wait for any more */
	if (s->close_pending) {
		s->close_pending = false;
		if (srv != NULL)
			release_slot(s, srv, 0, 0);
		session_close(s, s->end);
		return;
	}
	unwatch_queued(s);
	switch (r) {
	case CLAIM_SERVER:
		session_connect(s, srv);
		return;
	case CLAIM_AGAIN:
		/* Its wait goes on, with the time it has left (none when its
		 * timer fired meanwhile). */
		if (timed_out) {
			session_refuse(s, END_QUEUE_TIMEOUT);
			return;
		}
		s->queue_again = true;
		session_assign(s);
		return;
	case CLAIM_NO_SERVER:
	case CLAIM_NOTHING:
		session_refuse(s, failed_end(s));
		return;
	}
}

void
session_deliver_grants(struct pool_work *w)
{
	struct pool_waiter *wt, *next;

	for (wt = w->grants; wt != NULL; wt = next) {
		struct session *s =
		    (struct session *)(void *)((char *)wt -
		                               offsetof(struct session, wt));

		/* Read before posting: once posted, the waiter is its
		 * owner's again. */
		next = wt->next;
		mailbox_post(s->ctx->mb, &s->mail, OP_GRANTED, 0);
	}
	w->grants = NULL;
	w->grants_tail = &w->grants;
}

/* --- relay ----------------------------------------------------------- */

static void
relay_moved(void *arg, bool c2s, size_t n, int line)
{
	struct session *s = arg;

	if (line == RELAY_LINE_PENDING) {
		/* Bytes wait for the receiver: its turn (the server's for
		 * an upload, the client's for a download). */
		activity(s, !c2s, false);
		return;
	}
	if (c2s) {
		s->bytes_in += n;
		/* A complete line: the server's turn; a partial one: the
		 * client is still typing. */
		activity(s, line == 0, line < 0);
	} else {
		s->bytes_out += n;
		activity(s, line == 1, line < 0);
	}
}

static void
relay_eof(void *arg, bool c2s)
{
	struct session *s = arg;

	set_end(s, c2s ? END_CLIENT_CLOSE : END_SERVER_CLOSE);
	/* A side that is done has nothing more to say: from now on the wait
	 * is for the other one (which may still be reading what is in the
	 * kernel's buffers). */
	activity(s, !c2s, false);
}

static void
relay_end(void *arg, enum relay_end why)
{
	struct session *s = arg;

	switch (why) {
	case RELAY_DONE:
		session_close(s, s->end);
		return;
	case RELAY_CLIENT_ERROR:
		session_close(s, END_CLIENT_CLOSE);
		return;
	case RELAY_SERVER_ERROR:
		/* Reset or write failure: the session cannot go on.  The
		 * client sees its connection close, never a reply of ours. */
		session_close(s, END_SERVER_CLOSE);
		return;
	}
}

static const struct relay_cbs relay_callbacks = {
    .moved = relay_moved,
    .eof = relay_eof,
    .end = relay_end,
};

/* The relay takes both sockets over: first the PROXY header (unless the
 * gate sent it); what the server and the client said so far is still in
 * the kernel and comes next. */
static void
start_relay(struct session *s, const uint8_t *hdr, size_t hlen)
{
	s->relay = relay_new(s->ctx->relay, s->ctx->base, s->cfd, s->sfd,
	                     &relay_callbacks, s);
	if (s->relay == NULL) {
		log_warn("session: cannot set up the relay");
		connect_failed(s, ENOMEM, false);
		return;
	}
	s->cfd = s->sfd = -1; /* the relay's now */
	if (relay_queue(s->relay, true, hdr, hlen) < 0 ||
	    relay_start(s->relay) < 0) {
		log_warn("session: cannot start the relay");
		session_close(s, END_SERVER_CLOSE);
		return;
	}
	s->waiting_client = false; /* the server speaks first */
	s->last_activity = now_ms();
	s->state = S_RELAY;
	arm_timer(s, idle_step(s, idle_limit(s)));
}

/* --- the greeting gate (load-balancer.conf(5), GREETING GATE) ------------ */

/* How long the gate waits for the first line: timeout_greeting, unless
 * the server's idle limit (timeout_server) is shorter: that one ends the
 * session as it would without the gate (greet_timeout). */
static uint64_t
greet_wait(const struct session *s)
{
	const struct cfg_backend *bc = backend_conf(s->be);

	return bc->timeout_greeting_ms < bc->timeout_server_ms
	           ? bc->timeout_greeting_ms
	           : bc->timeout_server_ms;
}

/* The session commits to its server: the server's first line said 2xx or
 * 5xx, or the client spoke first. */
static void
greet_commit(struct session *s)
{
	pool_session_ok(pool_of(s), s->srv);
	if (s->cev != NULL) {
		event_free(s->cev);
		s->cev = NULL;
	}
	if (s->qev != NULL) {
		event_free(s->qev);
		s->qev = NULL;
	}
	start_relay(s, NULL, 0);
}

/* The code of a reply that starts with three digits, else 0. */
static int
greet_code(const char *b, size_t len)
{
	if (len < 3 || b[0] < '1' || b[0] > '5' || b[1] < '0' || b[1] > '9' ||
	    b[2] < '0' || b[2] > '9')
		return 0;
	return (b[0] - '0') * 100 + (b[1] - '0') * 10 + (b[2] - '0');
}

/* The server turned the session away (code, a 4xx), closed (GREET_EOF)
 * or said nothing in time (GREET_TIMEOUT): QUIT when it is still
 * listening, then another server. */
static void
greet_failed(struct session *s, int what, const char *line, size_t n, bool open)
{
	char reply[128] = "";
	struct check_result res = {
	    .step = "greeting",
	    .duration_ms = now_ms() - s->t_connect,
	};

	if (what > 0) {
		size_t i, k = 0;

		/* The text of its first line after the code, for the health
		 * log (as a check's reply). */
		for (i = n > 4 ? 4 : n;
		     i < n && line[i] != '\r' && line[i] != '\n' &&
		     k < sizeof(reply) - 1;
		     i++) {
			char c = line[i];

			reply[k++] = (unsigned char)c < 0x20 ? ' ' : c;
		}
		reply[k] = '\0';
		res.code = what;
		res.reply = reply;
	} else
		res.reason =
		    what == GREET_EOF ? "connection closed" : "timeout";
	if (open) {
		static const char quit[] = "QUIT\r\n";

		/* Best effort, never waited for.  What the server still has
		 * to say is read away first, so that the close is a FIN and
		 * not a reset that could drop the QUIT. */
		(void)send(s->sfd, quit, sizeof(quit) - 1,
		           MSG_NOSIGNAL | MSG_DONTWAIT);
		sock_discard_input(s->sfd);
	}
	log_debug("%s/%s: greeting failed: %s", backend_conf(s->be)->name,
	          server_conf(s->srv)->name, what > 0 ? reply : res.reason);
	s->greet_last = what;
	attempt_failed(s, &res, true);
}

/* The server's first bytes are looked at where they are (MSG_PEEK): on a
 * commit the relay reads them like any other, nothing is copied.  The
 * watch is edge-triggered, so a first line that is not complete yet waits
 * for more bytes (or the close) without spinning. */
static void
greet_server_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	char line[GREET_MAX];
	ssize_t n;
	int code;

	n = recv(fd, line, sizeof(line), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		greet_failed(s, GREET_EOF, NULL, 0, false);
		return;
	}
	code = greet_code(line, (size_t)n);
	if (memchr(line, '\n', (size_t)n) == NULL && (size_t)n < sizeof(line)) {
		int err = 0;
		socklen_t elen = sizeof(err);

		/* A reset after part of a line is reported as readable and
		 * writable, not as closed: SO_ERROR says. */
		if (!(what & EV_CLOSED) &&
		    (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 ||
		     err == 0))
			return; /* the first line is not complete yet */
		/* Closed after part of a line: a 4xx it managed to send
		 * still counts as one. */
		greet_failed(s, code >= 400 && code < 500 ? code : GREET_EOF,
		             line, (size_t)n, false);
		return;
	}
	if (code >= 400 && code < 500) {
		/* Closed with it: no QUIT to send. */
		greet_failed(s, code, line, (size_t)n, !(what & EV_CLOSED));
		return;
	}
	/* 2xx: the server will serve.  5xx: its decision about this
	 * client, relayed.  Anything else is no SMTP greeting the gate
	 * can judge: relayed as a layer-4 relay would. */
	greet_commit(s);
}

/* The client spoke (or hung up) before the server's first line: it
 * commits to this server at once, so that the server sees it as it is
 * (postscreen's pregreet test). */
static void
greet_client_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	greet_commit(arg);
}

static void
server_connected(struct session *s)
{
	uint8_t hdr[PROXY_HDR_MAX];
	int hlen = 0;
	ssize_t n;

	s->connect_ms = (long long)(now_ms() - s->t_connect);
	/* The connect's event fired and is not pending: the gate reuses
	 * it, the relay needs it no more. */
	if (s->qev != NULL) {
		event_free(s->qev);
		s->qev = NULL;
	}
	if (server_conf(s->srv)->proxy_protocol != PP_NONE &&
	    (hlen = proxy_header_for(s, s->srv, hdr, sizeof(hdr))) < 0) {
		connect_failed(s, EPROTO, false);
		return;
	}
	sock_set_nodelay(s->sfd);
	if (!backend_conf(s->be)->greeting_gate) {
		/* Layer 4: connected is committed. */
		pool_session_ok(pool_of(s), s->srv);
		event_free(s->cev);
		s->cev = NULL;
		start_relay(s, hdr, (size_t)hlen);
		return;
	}
	/* The gate: the PROXY header goes now (a fresh socket takes a few
	 * hundred bytes at once), then the server's first line is read
	 * while the client is only watched. */
	if (hlen > 0 && ((n = send(s->sfd, hdr, (size_t)hlen,
	                           MSG_NOSIGNAL | MSG_DONTWAIT)) != hlen)) {
		connect_failed(s, n < 0 ? errno : EPROTO, n < 0);
		return;
	}
	/* The connect's event watches the first line from now on. */
	if (event_assign(s->cev, s->ctx->base, s->sfd,
	                 EV_READ | EV_CLOSED | EV_ET | EV_PERSIST,
	                 greet_server_cb, s) < 0 ||
	    event_add(s->cev, NULL) < 0 ||
	    (s->qev = event_new(s->ctx->base, s->cfd, EV_READ | EV_CLOSED,
	                        greet_client_cb, s)) == NULL ||
	    event_add(s->qev, NULL) < 0) {
		log_warn("session: cannot watch the greeting");
		connect_failed(s, ENOMEM, false);
		return;
	}
	s->state = S_GREETING;
	arm_timer(s, greet_wait(s));
}

/* A queued client may hang up while it waits: then its place goes.
 * Bytes it sends early stay in the kernel for the relay. */
static void
queued_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	char c;
	ssize_t n;

	n = (what & EV_CLOSED) ? 0 : recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		s->client_eof = true;
		session_close(s, END_CLIENT_CLOSE);
		return;
	}
	if (n > 0 && !s->queue_early) {
		/* Early bytes: they wait in the kernel; from now on only a
		 * hang-up (EPOLLRDHUP) is watched. */
		s->queue_early = true;
		event_free(s->qev);
		s->qev = NULL;
	}
	watch_queued(s);
}

static void
watch_queued(struct session *s)
{
	if (s->qev == NULL &&
	    (s->qev = event_new(s->ctx->base, s->cfd,
	                        s->queue_early ? EV_CLOSED : EV_READ,
	                        queued_read_cb, s)) == NULL)
		return; /* then a hang-up is noticed at connect time */
	event_add(s->qev, NULL);
}

static void
unwatch_queued(struct session *s)
{
	if (s->qev != NULL)
		event_del(s->qev);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t now, limit, idle;

	(void)fd;
	(void)what;
	switch (s->state) {
	case S_NEW:
		return;
	case S_QUEUED:
		if (pool_leave_queue(pool_of(s), &s->wt) == WAITER_GRANTED) {
			/* Given a result meanwhile: its mail comes next. */
			s->state = S_DEQUEUED;
			return;
		}
		s->queue_ms = (long long)(now_ms() - s->t_queue);
		session_refuse(s, END_QUEUE_TIMEOUT);
		return;
	case S_DEQUEUED:
		return; /* its mail comes next */
	case S_FDWAIT:
		unwatch_queued(s);
		session_assign(s);
		return;
	case S_CONNECTING:
		connect_failed(s, ETIMEDOUT, true);
		return;
	case S_GREETING:
		if (backend_conf(s->be)->timeout_greeting_ms <=
		    backend_conf(s->be)->timeout_server_ms)
			greet_failed(s, GREET_TIMEOUT, NULL, 0, true);
		else
			/* timeout_server came first: the server's idle
			 * limit, as without the gate; nothing was relayed
			 * yet, so the client is told to come back. */
			session_refuse(s, END_SERVER_TIMEOUT);
		return;
	case S_REFUSING:
		session_close(s, s->end);
		return;
	case S_LINGER:
		linger_done(s);
		return;
	case S_RELAY:
		break;
	}
	now = now_ms();
	limit = idle_limit(s);
	idle = now - s->last_activity;
	if (idle >= limit) {
		session_close(s, s->waiting_client ? END_CLIENT_TIMEOUT
		                                   : END_SERVER_TIMEOUT);
		return;
	}
	arm_timer(s, idle_step(s, limit - idle));
}

/* --- start --------------------------------------------------------------- */

/* On the session's own thread. */
static void
session_start(struct session *s)
{
	struct sess_ctx *ctx = s->ctx;

	s->timer = evtimer_new(ctx->base, timer_cb, s);
	if (s->timer == NULL) {
		log_warn("session: cannot set up client connection");
		session_close(s, END_CLIENT_CLOSE);
		return;
	}
	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	s->started = true;
	if (atomic_load(&ctx->env->cnt->closing_all)) {
		session_close(s, END_SHUTDOWN);
		return;
	}
	/* Accepted before a reload that this thread has applied already:
	 * the new objects at once. */
	if (retired(s->pin_fe))
		(void)move_frontend(s);
	if (retired(s->pin_be))
		(void)move_backend(s);
	session_assign(s);
}

static void
session_mail(struct mail *m, unsigned ops, int arg)
{
	struct session *s =
	    (struct session *)(void *)((char *)m -
	                               offsetof(struct session, mail));

	(void)arg;
	if (ops & OP_START) {
		s->state = S_NEW;
		session_start(s);
		return; /* a grant cannot be pending before the start */
	}
	if (ops & OP_GRANTED)
		granted(s);
}

/* --- admission (load-balancer.conf(5), CLIENT LIMITS) ------------------- */

/* Turned away at accept: the reply, the log line, the count; no session
 * is made (nothing allocated), no server or queue place is taken. */
static void
refuse_at_accept(struct frontend *fe, evutil_socket_t fd,
                 const struct sockaddr *sa, enum session_end end,
                 const char *reply, atomic_ullong *counter)
{
	char buf[520];
	size_t len = 0;

	atomic_fetch_add(counter, 1);
	if (reply[0] != '\0') {
		int n = snprintf(buf, sizeof(buf), "%s\r\n", reply);

		len = n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0;
		/* A fresh socket's buffer takes one line at once. */
		if (len > 0) {
			ssize_t sent =
			    send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

			len = sent > 0 ? (size_t)sent : 0;
		}
	}
	if (fe->log_sessions)
		write_session_line(&(struct session_line){
		    .client = sa,
		    .frontend = fe->conf->name,
		    .backend = backend_conf(fe->be)->name,
		    .server = "-",
		    .connect_ms = -1,
		    .bytes_out = len,
		    .end = end,
		});
	/* What the client sent already is read away, so that the close is
	 * a FIN after the reply, not a reset that could destroy it. */
	sock_discard_input(fd);
	(void)shutdown(fd, SHUT_WR);
	evutil_closesocket(fd);
}

/* deny / allow, then the client network's limits.  Returns true when the
 * connection may become a session (*tab and *tk: the count it holds, if
 * any); false when it was turned away (fd closed). */
static bool
admit(struct frontend *fe, evutil_socket_t fd, const struct sockaddr *sa,
      struct climit **tab, struct climit_ticket *tk)
{
	const struct cfg_frontend *fc = fe->conf;
	struct frontend *newest;
	enum climit_verdict v;

	*tab = NULL;
	if ((fc->deny.n > 0 && cidr_list_match(&fc->deny, sa)) ||
	    (fc->allow.n > 0 && !cidr_list_match(&fc->allow, sa))) {
		refuse_at_accept(fe, fd, sa, END_DENIED, fc->deny_reply,
		                 &frontend_newest(fe)->refused_deny);
		return false;
	}
	if (fe->climit == NULL || cidr_list_match(&fc->limits.exempt, sa))
		return true;
	v = climit_admit(fe->climit, sa, (unsigned)fc->limits.maxconn,
	                 (unsigned)fc->limits.rate, now_ms(), tk);
	if (v == CLIMIT_ADMIT) {
		climit_ref(fe->climit);
		*tab = fe->climit;
		return true;
	}
	newest = frontend_newest(fe);
	refuse_at_accept(fe, fd, sa, END_CLIENT_LIMIT, fc->limits.reply,
	                 v == CLIMIT_MAXCONN ? &newest->refused_maxconn
	                                     : &newest->refused_rate);
	return false;
}

void
session_accept(struct sess_ctx *ctx, bool own, struct frontend *fe,
               evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	const struct sess_env *env = ctx->env;
	struct frontend *newest;
	struct session *s;
	struct climit *tab = NULL;
	struct climit_ticket tk;

	if ((fe->conf->deny.n > 0 || fe->conf->allow.n > 0 ||
	     fe->climit != NULL) &&
	    !admit(fe, fd, sa, &tab, &tk))
		return;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session: calloc");
		if (tab != NULL) {
			climit_release(tab, &tk, now_ms());
			climit_unref(tab);
		}
		evutil_closesocket(fd);
		return;
	}
	s->ctx = ctx;
	s->climit = tab;
	if (tab != NULL)
		s->ticket = tk;
	mail_init(&s->mail, session_mail);
	s->fe = fe;
	s->be = fe->be;
	s->pin_fe = fe->owner;
	s->pin_be = fe->owner;
	gen_ref(s->pin_fe);
	gen_ref(s->pin_be);
	s->queue_ms = 0;
	s->connect_ms = -1;
	s->t_accept = s->last_activity = now_ms();
	if (salen > 0 && (size_t)salen <= sizeof(s->client)) {
		memcpy(&s->client, sa, (size_t)salen);
		s->clientlen = (socklen_t)salen;
	}
	pool_waiter_init(&s->wt, (const struct sockaddr *)&s->client);
	s->cfd = fd;
	s->sfd = -1;
	s->state = S_NEW;
	/* TCP_NODELAY comes from the listening socket. */
	atomic_fetch_add(&ctx->nsess, 1);
	atomic_fetch_add(&ctx->total, 1);
	newest = frontend_newest(fe);
	atomic_fetch_add(&newest->cur_sess, 1);
	atomic_fetch_add(&newest->total_sess, 1);
	atomic_fetch_add(&env->cnt->cur_sess, 1);
	atomic_fetch_add(&env->cnt->total_sess, 1);
	if (own)
		session_start(s);
	else
		mailbox_post(ctx->mb, &s->mail, OP_START, 0);
}

/* --- what other threads ask of every session of this thread -------------- */

static struct server *
newest_server(const struct server *srv)
{
	const struct server *n;

	while ((n = server_successor(srv)) != NULL)
		srv = n;
	return (struct server *)srv;
}

unsigned
session_close_server(struct sess_ctx *ctx, const struct server *srv,
                     enum session_end end)
{
	struct session *s, *next;
	unsigned n = 0;

	/* One pass: a close only removes that session (what it frees for
	 * others goes through the mailboxes). */
	for (s = TAILQ_FIRST(&ctx->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->close_pending || s->srv == NULL ||
		    (s->srv != srv && newest_server(s->srv) != srv))
			continue;
		session_close(s, end);
		n++;
	}
	return n;
}

void
session_close_all(struct sess_ctx *ctx, enum session_end end)
{
	struct session *s, *next;

	for (s = TAILQ_FIRST(&ctx->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (!s->close_pending)
			session_close(s, end);
	}
}
