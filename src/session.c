/* Relayed sessions (SPEC 4.1).
 *
 * A session owns the client bufferevent from accept to close, and a server
 * bufferevent while connecting or relaying.  Bytes move with
 * evbuffer_add_buffer (no copy); each direction stops reading once
 * LB_SESSION_BUF_MAX bytes wait for the other side and resumes when half
 * has drained.  A read EOF is passed on as shutdown(SHUT_WR) once the other
 * side's output is flushed; the session ends when both sides are closed.
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
 * line (SPEC 5.2) once. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backend.h"
#include "listener.h"
#include "log.h"
#include "parse.h"
#include "proxy.h"
#include "relay.h"
#include "rt.h"
#include "server.h"
#include "session.h"
#include "sock.h"

#define FDWAIT_STEP_MS 50

enum sess_state {
	S_QUEUED,     /* waiting in the backend queue for a server slot */
	S_DEQUEUED,   /* out of the queue by another thread: mail follows */
	S_FDWAIT,     /* no descriptor for a server socket: try again soon */
	S_CONNECTING, /* connecting to a server */
	S_RELAY,      /* relaying bytes */
	S_REFUSING,   /* writing unavailable_reply, then closing */
	S_LINGER,     /* reply flushed, write side shut, waiting for EOF */
};

/* What another thread asks of a session (its worker's mailbox). */
enum {
	OP_START = 1,   /* accepted by the main thread */
	OP_CONNECT = 2, /* given a slot (s->srv) out of the queue */
	OP_REFUSE = 4,  /* out of the queue with no server: op_end */
	OP_CLOSE = 8,   /* close now: op_end */
};

struct session {
	TAILQ_ENTRY(session) entry;  /* rt->sessions */
	TAILQ_ENTRY(session) mentry; /* w->mail, while in_mail */
	struct worker *w;            /* the thread it runs on */
	unsigned ops;                /* OP_*, under the lock */
	enum session_end op_end;
	bool in_mail;
	TAILQ_ENTRY(session) sentry; /* srv->sessions, while srv is set */
	struct queue_entry qe;
	struct rt *rt;
	struct frontend *fe;
	struct backend *be;
	struct server *srv;    /* holds a slot of this server */
	struct server *failed; /* last server whose connect failed */
	/* The client side is not read before a server is connected (its
	 * early bytes wait in the kernel); while queued, qev notices a
	 * hang-up; cbev exists only to send the unavailable_reply.  Once
	 * connected the relay owns both sockets. */
	struct bufferevent *cbev;
	struct event *qev;
	int cfd, sfd;
	struct event *cev; /* the server connect in progress */
	struct relay *relay;
	struct event *timer;
	struct sockaddr_storage client;
	socklen_t clientlen;
	enum sess_state state;
	enum session_end end;
	bool end_set;
	bool queued;
	bool client_eof;     /* EOF from the client before the relay */
	bool queue_early;    /* queued, and the client already sent bytes */
	bool waiting_client; /* whose turn: see above */
	bool turn_unknown;   /* spliced bytes: either side's limit */
	int retries;
	uint64_t t_accept, t_queue, t_connect, last_activity;
	uint64_t t_fdwait; /* first descriptor shortage, 0 = none */
	long long queue_ms, connect_ms;
	uint64_t bytes_in, bytes_out;
	/* Retired configurations it still uses (reload): the one its
	 * frontend belongs to, the one its backend and server belong to. */
	struct rt_gen *pin_fe, *pin_be;
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
	uint64_t v = s->be->conf->timeout_server_ms;

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
	uint64_t v = s->be->conf->timeout_server_ms;
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

static void
log_session_line(struct session *s)
{
	char client[LB_SOCKADDR_STRLEN];

	if (!s->rt->cfg->global.log.sessions)
		return;
	format_sockaddr((struct sockaddr *)&s->client, client, sizeof(client));
	log_session("client=%s frontend=%s backend=%s server=%s queue_ms=%lld "
	            "connect_ms=%lld duration_ms=%llu bytes_in=%llu "
	            "bytes_out=%llu retries=%d end=%s",
	            client, s->fe->conf->name, s->be->conf->name,
	            s->srv != NULL      ? s->srv->conf->name
	            : s->failed != NULL ? s->failed->conf->name
	                                : "-",
	            s->queue_ms, s->connect_ms,
	            (unsigned long long)(now_ms() - s->t_accept),
	            (unsigned long long)s->bytes_in,
	            (unsigned long long)s->bytes_out, s->retries,
	            session_end_name(s->end));
}

/* The one close path. */
static void
session_close(struct session *s, enum session_end end)
{
	struct rt *rt = s->rt;
	struct backend *be = s->be;
	struct server *srv = s->srv;
	struct rt_gen *pin_fe, *pin_be;

	/* The cause that ends it wins (a timeout after a half-close, a
	 * shutdown); a natural end passes s->end back in. */
	s->end = end;
	s->end_set = true;
	log_session_line(s);
	s->fe->bytes_in += s->bytes_in;
	s->fe->bytes_out += s->bytes_out;
	if (srv != NULL) {
		srv->bytes_in += s->bytes_in;
		srv->bytes_out += s->bytes_out;
		TAILQ_REMOVE(&srv->sessions, s, sentry);
	}
	if (s->queued) {
		backend_dequeue(be, &s->qe);
		s->queued = false;
	}
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
	TAILQ_REMOVE(&rt->sessions, s, entry);
	if (s->in_mail)
		TAILQ_REMOVE(&s->w->mail, s, mentry);
	s->w->nsess--;
	if (s->fe->cur_sess > 0)
		s->fe->cur_sess--;
	pin_fe = s->pin_fe;
	pin_be = s->pin_be;
	free(s);
	/* Last: these may start queued sessions or resume listeners. */
	if (srv != NULL)
		backend_release(be, srv);
	if (pin_fe != NULL)
		rt_gen_unref(rt, pin_fe);
	if (pin_be != NULL)
		rt_gen_unref(rt, pin_be);
	rt_session_count(rt, -1);
}

/* --- refusing: unavailable_reply, then close ----------------------------- */

static void
linger_done(struct session *s)
{
	session_close(s, s->end);
}

static void
refuse_write_cb_locked(struct bufferevent *bev, void *arg)
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
refuse_write_cb(struct bufferevent *bev, void *arg)
{
	struct rt *rt = ((struct session *)arg)->rt;

	rt_lock(rt);
	refuse_write_cb_locked(bev, arg);
	rt_unlock(rt);
}

static void
linger_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev),
	               evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
linger_event_cb_locked(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		linger_done(arg);
}

static void
linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct rt *rt = ((struct session *)arg)->rt;

	rt_lock(rt);
	linger_event_cb_locked(bev, what, arg);
	rt_unlock(rt);
}

static void
session_refuse(struct session *s, enum session_end end)
{
	const char *reply = s->fe->conf->unavailable_reply;

	set_end(s, end);
	s->fe->refused++;
	if (s->queued) {
		/* Out of the queue, or a freed slot would be offered to a
		 * session that is already saying goodbye. */
		backend_dequeue(s->be, &s->qe);
		s->queued = false;
	}
	if (s->srv != NULL) {
		struct server *srv = s->srv;
		TAILQ_REMOVE(&srv->sessions, s, sentry);
		s->srv = NULL;
		drop_server_socket(s);
		backend_release(s->be, srv);
	}
	if (reply[0] == '\0' || s->client_eof) {
		session_close(s, end);
		return;
	}
	s->state = S_REFUSING;
	evtimer_del(s->timer);
	unwatch_queued(s);
	if ((s->cbev = bufferevent_socket_new(s->w->base, s->cfd, 0)) == NULL) {
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

/* --- server choice, queue and connect ---------------------------------- */

static void
connect_failed(struct session *s, int err)
{
	struct server *srv = s->srv;
	char addr[LB_SOCKADDR_STRLEN];

	srv->connect_failures++;
	format_sockaddr((const struct sockaddr *)&srv->conf->addr.ss, addr,
	                sizeof(addr));
	log_debug("connect to %s/%s (%s) failed: %s", s->be->conf->name,
	          srv->conf->name, addr, err != 0 ? strerror(err) : "timeout");
	drop_server_socket(s);
	TAILQ_REMOVE(&srv->sessions, s, sentry);
	s->srv = NULL;
	s->failed = srv;
	backend_release(s->be, srv);
	if (s->retries >= s->be->conf->retries) {
		session_refuse(s, END_CONNECT_FAILED);
		return;
	}
	s->retries++;
	s->be->retries++;
	session_assign(s);
}

/* The socket for a server connection when the backend has a source:
 * bound to the client's address (transparent) or to the configured one.
 * Returns the socket, -2 when the kernel's default source is fine (no
 * socket made), or -1 with errno set after logging why. */
static int
source_socket(struct session *s, const struct server *srv)
{
	const struct cfg_backend *bc = s->be->conf;
	const struct sockaddr *dst =
	    (const struct sockaddr *)&srv->conf->addr.ss;
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
			          bc->name, srv->conf->name, addr);
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
		log_warn("%s/%s: source %s: %s", bc->name, srv->conf->name,
		         bc->source, what);
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
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	const char *err;
	int n;

	if (getsockname(s->cfd, (struct sockaddr *)&local, &llen) < 0) {
		log_warn("%s/%s: PROXY header: getsockname", s->be->conf->name,
		         srv->conf->name);
		return -1;
	}
	n = proxy_header(srv->conf->proxy_protocol,
	                 (const struct sockaddr *)&s->client,
	                 (const struct sockaddr *)&local, hdr, len, &err);
	if (n < 0)
		log_warnx("%s/%s: PROXY header: %s", s->be->conf->name,
		          srv->conf->name, err);
	return n;
}

static void server_connected(struct session *s);

static void
connect_cb_locked(evutil_socket_t fd, short what, void *arg)
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
		connect_failed(s, err);
		return;
	}
	server_connected(s);
}

static void
connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt *rt = ((struct session *)arg)->rt;

	rt_lock(rt);
	connect_cb_locked(fd, what, arg);
	rt_unlock(rt);
}

/* A slot of srv is the session's from here. */
static void
take_slot(struct session *s, struct server *srv)
{
	backend_take(s->be, srv);
	s->srv = srv;
	TAILQ_INSERT_TAIL(&srv->sessions, s, sentry);
}

static void
session_connect(struct session *s, struct server *srv)
{
	take_slot(s, srv);
	session_connect_now(s);
}

/* No descriptor for the server socket: the balancer's own shortage (the
 * client took the last one).  The client waits, as in the kernel's
 * backlog, while accepting pauses; every FDWAIT_STEP_MS the server choice
 * starts again, for at most timeout_connect; then unavailable_reply. */
static void
fd_shortage(struct session *s, int err)
{
	struct server *srv = s->srv;
	uint64_t now = now_ms();

	TAILQ_REMOVE(&srv->sessions, s, sentry);
	s->srv = NULL;
	backend_untake(s->be, srv);
	if (s->t_fdwait == 0) {
		s->t_fdwait = now;
		if (!s->rt->fd_warned)
			log_warnx("no descriptor for a server connection (%s): "
			          "clients wait, accepting pauses",
			          strerror(err));
		s->rt->fd_warned = true;
	}
	if (now - s->t_fdwait >= s->be->conf->timeout_connect_ms) {
		session_refuse(s, END_CONNECT_FAILED);
		return;
	}
	rt_pause_accept(s->rt);
	s->state = S_FDWAIT;
	watch_queued(s);
	arm_timer(s, FDWAIT_STEP_MS);
}

/* Connect to s->srv, whose slot it holds. */
static void
session_connect_now(struct session *s)
{
	struct server *srv = s->srv;
	const struct cfg_addr *a = &srv->conf->addr;
	const char *what;
	int fd;

	s->state = S_CONNECTING;
	s->t_connect = now_ms();
	/* With a source, source_socket says what went wrong itself. */
	fd = source_socket(s, srv);
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
	if (s->rt->fd_warned)
		s->rt->fd_warned = false; /* the next shortage is news */
	if (fd < 0) {
		connect_failed(s, errno);
		return;
	}
	s->sfd = fd;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS) {
		connect_failed(s, errno);
		return;
	}
	/* Connected now (rare on loopback) or later: either way the
	 * outcome comes through connect_cb.  Watching reads too tells a
	 * plain success (writable only) from an error (reported as both). */
	s->cev = event_new(s->w->base, fd, EV_READ | EV_WRITE, connect_cb, s);
	if (s->cev == NULL || event_add(s->cev, NULL) < 0) {
		log_warn("connect to %s: event", a->text);
		connect_failed(s, ENOMEM);
		return;
	}
	arm_timer(s, s->be->conf->timeout_connect_ms);
}

static bool migrate_backend(struct session *s, struct rt_gen *old);

/* Pick a server and connect, queue, or refuse. */
static void
session_assign(struct session *s)
{
	struct server *srv = NULL;

	if (s->pin_be != NULL && !migrate_backend(s, NULL)) {
		/* A retry of a session whose backend was removed by a
		 * reload: nothing to try. */
		session_refuse(s, END_NO_SERVER);
		return;
	}

	switch (backend_pick(s->be, (struct sockaddr *)&s->client, s->failed,
	                     &srv)) {
	case PICK_OK:
		session_connect(s, srv);
		return;
	case PICK_FULL:
		if (s->be->conf->timeout_queue_ms == 0) {
			session_refuse(s, END_QUEUE_TIMEOUT);
			return;
		}
		s->state = S_QUEUED;
		s->queued = true;
		s->t_fdwait = 0; /* a wait of its own, under timeout_queue */
		s->t_queue = now_ms();
		backend_enqueue(s->be, &s->qe);
		watch_queued(s);
		arm_timer(s, s->be->conf->timeout_queue_ms);
		return;
	case PICK_NONE:
		session_refuse(s, s->retries > 0 ? END_CONNECT_FAILED
		                                 : END_NO_SERVER);
		return;
	}
}

bool
session_try_dequeue(struct session *s)
{
	struct server *srv = NULL;
	enum pick_result r;

	r = backend_pick(s->be, (struct sockaddr *)&s->client, s->failed, &srv);
	if (r == PICK_FULL)
		return false;
	backend_dequeue(s->be, &s->qe);
	s->queued = false;
	s->queue_ms = (long long)(now_ms() - s->t_queue);
	if (!rt_on_worker(s->w)) {
		/* Another thread's session: the slot is taken here, in
		 * queue order; its own thread connects. */
		s->state = S_DEQUEUED;
		if (r == PICK_OK) {
			take_slot(s, srv);
			session_post(s, OP_CONNECT, END_NO_SERVER);
		} else
			session_post(s, OP_REFUSE, END_NO_SERVER);
		return true;
	}
	unwatch_queued(s);
	if (r == PICK_OK)
		session_connect(s, srv);
	else
		session_refuse(s, END_NO_SERVER);
	return true;
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
relay_end_locked(void *arg, enum relay_end why)
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

static void
relay_end(void *arg, enum relay_end why)
{
	struct rt *rt = ((struct session *)arg)->rt;

	rt_lock(rt);
	relay_end_locked(arg, why);
	rt_unlock(rt);
}

static const struct relay_cbs relay_callbacks = {
    .moved = relay_moved,
    .eof = relay_eof,
    .end = relay_end,
};

static void
server_connected(struct session *s)
{
	uint8_t hdr[PROXY_HDR_MAX];
	int hlen = 0;

	s->connect_ms = (long long)(now_ms() - s->t_connect);
	event_free(s->cev);
	s->cev = NULL;
	if (s->qev != NULL) {
		event_free(s->qev);
		s->qev = NULL;
	}
	if (s->srv->conf->proxy_protocol != PP_NONE &&
	    (hlen = proxy_header_for(s, s->srv, hdr, sizeof(hdr))) < 0) {
		connect_failed(s, EPROTO);
		return;
	}
	s->relay = relay_new(s->w->relay, s->w->base, s->cfd, s->sfd,
	                     &relay_callbacks, s);
	if (s->relay == NULL) {
		log_warn("session: cannot set up the relay");
		connect_failed(s, ENOMEM);
		return;
	}
	sock_set_nodelay(s->sfd);
	s->cfd = s->sfd = -1; /* the relay's now */
	/* The PROXY header first; what the client sent early is still in
	 * the kernel and comes next. */
	if (relay_queue(s->relay, true, hdr, (size_t)hlen) < 0 ||
	    relay_start(s->relay) < 0) {
		log_warn("session: cannot start the relay");
		session_close(s, END_SERVER_CLOSE);
		return;
	}
	s->state = S_RELAY;
	s->waiting_client = false; /* the server speaks first */
	s->last_activity = now_ms();
	arm_timer(s, idle_step(s, idle_limit(s)));
}

/* A queued client may hang up while it waits: then its place goes.
 * Bytes it sends early stay in the kernel for the relay. */
static void
queued_read_cb_locked(evutil_socket_t fd, short what, void *arg)
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
queued_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt *rt = ((struct session *)arg)->rt;

	rt_lock(rt);
	queued_read_cb_locked(fd, what, arg);
	rt_unlock(rt);
}

static void
watch_queued(struct session *s)
{
	if (s->qev == NULL &&
	    (s->qev = event_new(s->w->base, s->cfd,
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
timer_cb_locked(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t now, limit, idle;

	(void)fd;
	(void)what;
	switch (s->state) {
	case S_QUEUED:
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
		connect_failed(s, ETIMEDOUT);
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

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt *rt = ((struct session *)arg)->rt;

	rt_lock(rt);
	timer_cb_locked(fd, what, arg);
	rt_unlock(rt);
}

/* --- accept ---------------------------------------------------------- */

void
session_accept(struct frontend *fe, evutil_socket_t fd,
               const struct sockaddr *sa, int salen)
{
	struct rt *rt = fe->rt;
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session: calloc");
		evutil_closesocket(fd);
		return;
	}
	s->rt = rt;
	s->w = rt_pick_worker(rt);
	s->fe = fe;
	s->be = fe->be;
	s->qe.s = s;
	s->queue_ms = 0;
	s->connect_ms = -1;
	s->t_accept = s->last_activity = now_ms();
	if (salen > 0 && (size_t)salen <= sizeof(s->client)) {
		memcpy(&s->client, sa, (size_t)salen);
		s->clientlen = (socklen_t)salen;
	}
	s->cfd = fd;
	s->sfd = -1;
	/* Not BEV_OPT_CLOSE_ON_FREE: the relay takes the socket over. */
	s->timer = evtimer_new(s->w->base, timer_cb, s);
	if (s->timer == NULL) {
		log_warn("session: cannot set up client connection");
		evutil_closesocket(fd);
		if (s->timer != NULL)
			event_free(s->timer);
		free(s);
		return;
	}
	/* TCP_NODELAY comes from the listening socket. */
	TAILQ_INSERT_TAIL(&rt->sessions, s, entry);
	s->w->nsess++;
	s->w->total++;
	fe->cur_sess++;
	fe->total_sess++;
	rt_session_count(rt, +1);
	if (rt_on_worker(s->w))
		session_assign(s);
	else
		session_post(s, OP_START, END_NO_SERVER);
}

/* --- the mailbox: what other threads ask ------------------------------ */

void
session_post(struct session *s, unsigned op, enum session_end end)
{
	if ((op & (OP_REFUSE | OP_CLOSE)) && !(s->ops & (OP_REFUSE | OP_CLOSE)))
		s->op_end = end;
	if (op & OP_CLOSE)
		s->op_end = end; /* a close wins over a refusal */
	s->ops |= op;
	if (s->in_mail)
		return;
	if (TAILQ_EMPTY(&s->w->mail))
		event_active(s->w->wake, EV_TIMEOUT, 0);
	TAILQ_INSERT_TAIL(&s->w->mail, s, mentry);
	s->in_mail = true;
}

void
session_mail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct session *s;

	(void)fd;
	(void)what;
	rt_lock(w->rt);
	while ((s = TAILQ_FIRST(&w->mail)) != NULL) {
		unsigned ops = s->ops;

		TAILQ_REMOVE(&w->mail, s, mentry);
		s->in_mail = false;
		s->ops = 0;
		if (ops & OP_CLOSE)
			session_close(s, s->op_end);
		else if (ops & OP_REFUSE) {
			/* Out of the queue (S_DEQUEUED), or connecting to a
			 * slot it was given: either way not relaying yet. */
			if (s->state != S_RELAY)
				session_refuse(s, s->op_end);
		} else if (ops & OP_START)
			session_assign(s);
		else if (ops & OP_CONNECT) {
			unwatch_queued(s);
			session_connect_now(s);
		}
	}
	rt_unlock(w->rt);
}

/* The sessions of a list other threads own are asked to close first
 * (nothing is freed while the list is walked), then this thread's own
 * are closed one by one (a close may start or end others). */
#define CLOSE_LIST(head, field, end, count)                                    \
	do {                                                                   \
		struct session *s_, *next_;                                    \
		for (s_ = TAILQ_FIRST(head); s_ != NULL; s_ = next_) {         \
			next_ = TAILQ_NEXT(s_, field);                         \
			if (!rt_on_worker(s_->w)) {                            \
				session_post(s_, OP_CLOSE, end);               \
				(count)++;                                     \
			}                                                      \
		}                                                              \
		for (;;) {                                                     \
			TAILQ_FOREACH(s_, head, field)                         \
			if (rt_on_worker(s_->w))                               \
				break;                                         \
			if (s_ == NULL)                                        \
				break;                                         \
			session_close(s_, end);                                \
			(count)++;                                             \
		}                                                              \
	} while (0)

unsigned
session_close_server(struct server *srv, enum session_end end)
{
	unsigned n = 0;

	CLOSE_LIST(&srv->sessions, sentry, end, n);
	return n;
}

/* --- reload ---------------------------------------------------------- */

static bool
same_server_address(const struct server *a, const struct server *b)
{
	return a->conf->addr.len == b->conf->addr.len &&
	       memcmp(&a->conf->addr.ss, &b->conf->addr.ss,
	              a->conf->addr.len) == 0;
}

/* pin: the retired configuration an object of s stays on (NULL when
 * it moved to the current one). */
static void
repin(struct rt *rt, struct rt_gen **pin, struct rt_gen *old, bool moved)
{
	struct rt_gen *g = *pin;

	if (moved) {
		*pin = NULL;
		if (g != NULL)
			rt_gen_unref(rt, g);
	} else if (g == NULL && old != NULL) {
		/* It was on the configuration being retired. */
		*pin = old;
		old->refs++;
	}
}

/* The frontend of the same name, if the reload kept one: the session's
 * count moves there (frontend maxconn). */
static bool
migrate_frontend(struct session *s, struct rt_gen *old)
{
	struct frontend *nfe = rt_find_frontend(s->rt, s->fe->conf->name);

	if (nfe != NULL && nfe != s->fe) {
		if (s->fe->cur_sess > 0)
			s->fe->cur_sess--;
		nfe->cur_sess++;
		s->fe = nfe;
	}
	repin(s->rt, &s->pin_fe, old, nfe != NULL);
	return nfe != NULL;
}

/* The backend of the same name and, for a session with a server, the
 * server of the same name at the same address: both, or neither. */
static bool
migrate_backend(struct session *s, struct rt_gen *old)
{
	struct backend *nbe = rt_find_backend(s->rt, s->be->conf->name);
	struct server *nsrv = NULL;
	bool ok = nbe != NULL;

	if (ok && s->srv != NULL &&
	    ((nsrv = backend_find_server(nbe, s->srv->conf->name)) == NULL ||
	     !same_server_address(nsrv, s->srv)))
		ok = false;
	if (ok && nbe != s->be) {
		if (s->queued) {
			backend_dequeue(s->be, &s->qe);
			backend_enqueue(nbe, &s->qe);
		}
		if (s->srv != NULL) {
			TAILQ_REMOVE(&s->srv->sessions, s, sentry);
			if (s->srv->cur_sess > 0)
				s->srv->cur_sess--;
			if (s->be->cur_sess > 0)
				s->be->cur_sess--;
			TAILQ_INSERT_TAIL(&nsrv->sessions, s, sentry);
			nsrv->cur_sess++;
			nbe->cur_sess++;
			s->srv = nsrv;
		}
		if (s->failed != NULL)
			s->failed =
			    backend_find_server(nbe, s->failed->conf->name);
		s->be = nbe;
	}
	repin(s->rt, &s->pin_be, old, ok);
	return ok;
}

unsigned
session_migrate_all(struct rt *rt, struct rt_gen *old)
{
	struct session *s, *next;
	unsigned pinned = 0;

	for (s = TAILQ_FIRST(&rt->sessions); s != NULL; s = next) {
		bool fe_ok, be_ok;

		next = TAILQ_NEXT(s, entry);
		fe_ok = migrate_frontend(s, old);
		be_ok = migrate_backend(s, old);
		if (!be_ok && s->queued) {
			/* Its backend is gone: nothing will ever offer it a
			 * slot.  (Pinned above: the reply and the log line
			 * still use the old objects.) */
			s->queue_ms = (long long)(now_ms() - s->t_queue);
			if (rt_on_worker(s->w)) {
				session_refuse(s, END_NO_SERVER);
				continue;
			}
			backend_dequeue(s->be, &s->qe);
			s->queued = false;
			s->state = S_DEQUEUED;
			session_post(s, OP_REFUSE, END_NO_SERVER);
		}
		pinned += !fe_ok || !be_ok;
	}
	return pinned;
}

void
session_close_all(struct rt *rt, enum session_end end)
{
	unsigned n = 0;

	CLOSE_LIST(&rt->sessions, entry, end, n);
	(void)n;
}
