/* Health checks (load-balancer.conf(5), HEALTH CHECKS) and agent checks
 * (AGENT CHECK): one explicit state machine per server and kind.
 *
 *   agent:  CONNECT -> [send agent.send] -> AGENT (one line) -> pass
 *   health: CONNECT -> (tcp: pass)
 *           -> GREETING (220) -> HELO/EHLO (250)
 *                -> [STARTTLS (220) -> TLS handshake -> EHLO (250)]
 *                -> QUIT (any reply or close) -> pass
 *
 * Every step is bounded by one deadline for the whole check.  A failure
 * carries its step and the reply code and text, or a reason ("timeout",
 * "connection refused", "bad reply", the TLS library's text...).  Results
 * go to the owner's callback (monitor.c), which schedules the next check
 * from the end of this one. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "agent.h"
#include "check.h"
#include "common.h"
#include "log.h"
#include "parse.h"
#include "proxy.h"
#include "smtp_reply.h"
#include "sock.h"
#include "tls.h"

enum step {
	ST_CONNECT,
	ST_GREETING,
	ST_HELO,
	ST_STARTTLS,
	ST_TLS,
	ST_EHLO,
	ST_QUIT,
	ST_AGENT, /* the agent check's answer */
};

/* The steps are health_steps, in the same order, then the agent's. */
static const char *
step_name(enum step st)
{
	return st == ST_AGENT ? "agent" : health_steps[st];
}

/* The step of the agent checks' start times (check_schedule). */
#define AGENT_GRAIN_MS 100

/* Bytes a check buffers from the server: a reply is at most 4 KiB. */
#define CHECK_READ_MAX (2 * SMTP_REPLY_MAX)

struct check {
	bool agent; /* an agent check (check_new_agent) */
	const struct cfg_backend *bc;
	const struct cfg_server *sc;
	const struct check_cbs *cbs;
	void *arg;
	const struct cfg_check *conf;
	struct event_base *base;
	SSL_CTX *tls_ctx;
	struct event *sched;    /* next check */
	struct event *deadline; /* the running check's timeout */
	struct bufferevent *bev;
	enum step step;
	bool running;
	struct smtp_reply reply;
	uint64_t t_start;
	uint64_t timeout_ms;
	char host[LB_ADDR_MAX]; /* server host, for SNI */
	char domain[256];       /* HELO/EHLO argument */
	/* The agent's answer: AGENT_LINE_MAX bytes, "\r\n", a NUL. */
	char line[AGENT_LINE_MAX + 3];
	size_t line_len;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval
ms_tv(uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
	                     (suseconds_t)((ms % 1000) * 1000)};
	return tv;
}

static void
drop_connection(struct check *chk)
{
	if (chk->bev != NULL && chk->agent) {
		/* The agent said its line (or failed): a reset ends the
		 * connection without the FIN exchange and leaves no
		 * TIME_WAIT on either side, as HAProxy's checks do. */
		struct linger lg = {1, 0};

		(void)setsockopt(bufferevent_getfd(chk->bev), SOL_SOCKET,
		                 SO_LINGER, &lg, sizeof(lg));
	}
	if (chk->bev != NULL) {
		bufferevent_setcb(chk->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(chk->bev, EV_READ | EV_WRITE);
		bufferevent_free(chk->bev); /* frees SSL and socket too */
		chk->bev = NULL;
	}
	evtimer_del(chk->deadline);
	chk->running = false;
}

/* End of one check: report (the owner schedules the next). */
static void
finish(struct check *chk, bool pass, int code, const char *reply,
       const char *reason)
{
	struct check_result res;

	res.pass = pass;
	res.step = step_name(chk->step);
	res.code = code;
	res.reply = reply;
	res.reply_len = chk->agent      ? chk->line_len
	                : reply != NULL ? strlen(reply)
	                                : 0;
	res.reason = reason;
	res.duration_ms = now_ms() - chk->t_start;
	drop_connection(chk);
	if (chk->tls_ctx != NULL)
		ERR_clear_error(); /* (OpenSSL's queue, STARTTLS only) */
	chk->cbs->result(chk->arg, &res);
}

static void
fail_reply(struct check *chk, const struct smtp_reply *r)
{
	finish(chk, false, r->code, r->text, NULL);
}

static void
fail_reason(struct check *chk, const char *reason)
{
	finish(chk, false, 0, NULL, reason);
}

/* strerror text with a lower-case first letter: "connection refused". */
static void
fail_errno(struct check *chk, int err)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%s", strerror(err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	fail_reason(chk, buf);
}

/* Send "CMD\r\n" or "CMD ARG\r\n" and wait for the reply of step next. */
static void
send_line(struct check *chk, enum step next, const char *cmd, const char *arg)
{
	struct evbuffer *out = bufferevent_get_output(chk->bev);
	int r;

	chk->step = next;
	smtp_reply_init(&chk->reply);
	if (arg != NULL)
		r = evbuffer_add_printf(out, "%s %s\r\n", cmd, arg);
	else
		r = evbuffer_add_printf(out, "%s\r\n", cmd);
	if (r < 0)
		fail_reason(chk, "out of memory");
}

static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static void
start_tls(struct check *chk)
{
	char err[256];
	struct bufferevent *tb;
	SSL *ssl;

	chk->step = ST_TLS;
	ssl = tls_client_ssl(chk->tls_ctx, chk->conf, chk->host, err,
	                     sizeof(err));
	if (ssl == NULL) {
		fail_reason(chk, err);
		return;
	}
	tb = bufferevent_openssl_filter_new(chk->base, chk->bev, ssl,
	                                    BUFFEREVENT_SSL_CONNECTING,
	                                    BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		fail_reason(chk, "cannot start TLS");
		return;
	}
	/* Servers often close after 221 without close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	chk->bev = tb; /* owns the socket bufferevent now */
	bufferevent_setwatermark(tb, EV_READ, 0, CHECK_READ_MAX);
	bufferevent_setcb(tb, read_cb, NULL, event_cb, chk);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static void
tls_up(struct check *chk)
{
	SSL *ssl = bufferevent_openssl_get_ssl(chk->bev);
	char subject[256] = "";
	time_t not_after;

	if (ssl != NULL &&
	    tls_peer_expiry(ssl, &not_after, subject, sizeof(subject)))
		chk->cbs->cert(chk->arg, not_after, subject);
	send_line(chk, ST_EHLO, "EHLO", chk->domain);
}

/* A complete reply arrived in step chk->step. */
static void
on_reply(struct check *chk, bool trailing)
{
	const struct smtp_reply *r = &chk->reply;
	bool ehlo = chk->conf->ehlo || chk->conf->starttls;

	if (trailing && chk->step != ST_QUIT) {
		/* Bytes after a reply we did not ask for: a server that
		 * pipelines unasked, or STARTTLS injection. */
		fail_reason(chk, "bad reply");
		return;
	}
	switch (chk->step) {
	case ST_GREETING:
		if (r->code != 220) {
			fail_reply(chk, r);
			return;
		}
		send_line(chk, ST_HELO, ehlo ? "EHLO" : "HELO", chk->domain);
		return;
	case ST_HELO:
		if (r->code != 250) {
			fail_reply(chk, r);
			return;
		}
		if (!chk->conf->starttls) {
			send_line(chk, ST_QUIT, "QUIT", NULL);
			return;
		}
		if (!r->starttls) {
			chk->step = ST_STARTTLS;
			fail_reason(chk, "STARTTLS not offered");
			return;
		}
		send_line(chk, ST_STARTTLS, "STARTTLS", NULL);
		return;
	case ST_STARTTLS:
		if (r->code != 220) {
			fail_reply(chk, r);
			return;
		}
		start_tls(chk);
		return;
	case ST_EHLO:
		if (r->code != 250) {
			fail_reply(chk, r);
			return;
		}
		send_line(chk, ST_QUIT, "QUIT", NULL);
		return;
	case ST_QUIT:
		finish(chk, true, 0, NULL, NULL);
		return;
	case ST_CONNECT:
	case ST_TLS:
	case ST_AGENT:
		break;
	}
	fail_reason(chk, "bad reply");
}

/* The agent's line: up to "\n" or, at_eof, what came before the close
 * (HAProxy's agents may close without one); its ending does not count in
 * its AGENT_LINE_MAX bytes (the parser judges the rest).  Returns true
 * when the check ended. */
static bool
agent_line(struct check *chk, struct evbuffer *in, bool at_eof)
{
	struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
	size_t n = evbuffer_get_length(in);

	if (nl.pos >= 0)
		n = (size_t)nl.pos + 1;
	else if (n <= AGENT_LINE_MAX + 1 && !at_eof)
		return false; /* (the last byte may be the "\r" of "\r\n") */
	if (n == 0) {
		fail_reason(chk, "connection closed");
		return true;
	}
	if (n > AGENT_LINE_MAX + 2 || (nl.pos < 0 && n > AGENT_LINE_MAX + 1)) {
		fail_reason(chk, "reply too long");
		return true;
	}
	evbuffer_remove(in, chk->line, n);
	chk->line[n] = '\0';
	/* The length goes in reply_len: the line may hold a NUL, which
	 * the parser must see and refuse. */
	chk->line_len = n;
	finish(chk, true, 0, chk->line, NULL);
	return true;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct check *chk = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (chk->agent) {
		if (chk->running && chk->step == ST_AGENT)
			agent_line(chk, in, false);
		return;
	}
	while (chk->running && evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_length(in), used = 0;
		const char *p =
		    (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
		enum smtp_parse r;

		if (p == NULL) {
			fail_reason(chk, "out of memory");
			return;
		}
		if (chk->step != ST_GREETING && chk->step != ST_HELO &&
		    chk->step != ST_STARTTLS && chk->step != ST_EHLO &&
		    chk->step != ST_QUIT) {
			fail_reason(chk, "bad reply");
			return;
		}
		r = smtp_reply_feed(&chk->reply, p, n, &used);
		evbuffer_drain(in, used);
		switch (r) {
		case SMTP_NEED_MORE:
			return;
		case SMTP_ERR_LONG:
			fail_reason(chk, "reply too long");
			return;
		case SMTP_ERR_BAD:
			fail_reason(chk, "bad reply");
			return;
		case SMTP_DONE:
			on_reply(chk, evbuffer_get_length(in) > 0);
			/* The next reply starts fresh; on_reply may have
			 * ended the check or switched to TLS. */
			return;
		}
	}
}

/* A server that takes the PROXY protocol wants a header on every
 * connection: a PROXY command with this connection's own addresses (not
 * LOCAL or UNKNOWN, which some Postfix versions refuse).  The socket has
 * just connected, so the few bytes go out at once.  Returns 0, or -1
 * after failing the check. */
static int
send_proxy_header(struct check *chk)
{
	struct sockaddr_storage src, dst;
	socklen_t slen = sizeof(src), dlen = sizeof(dst);
	int fd = bufferevent_getfd(chk->bev);
	uint8_t hdr[PROXY_HDR_MAX];
	const char *err;
	ssize_t w;
	int n;

	if (getsockname(fd, (struct sockaddr *)&src, &slen) < 0 ||
	    getpeername(fd, (struct sockaddr *)&dst, &dlen) < 0) {
		fail_errno(chk, errno);
		return -1;
	}
	n = proxy_header(chk->sc->proxy_protocol, (struct sockaddr *)&src,
	                 (struct sockaddr *)&dst, hdr, sizeof(hdr), &err);
	if (n < 0) {
		fail_reason(chk, err);
		return -1;
	}
	w = send(fd, hdr, (size_t)n, MSG_NOSIGNAL);
	if (w != n) {
		if (w < 0)
			fail_errno(chk, errno);
		else
			fail_reason(chk, "PROXY header: short write");
		return -1;
	}
	return 0;
}

/* agent.send goes out as soon as the connection is up, before any answer
 * is read: an agent that answers at once still gets it (queued in the
 * bufferevent, it could lose the race with the answer and never leave).
 * At most 1024 bytes on a fresh socket; a short write queues the rest.
 * Returns 0, or -1 after failing the check. */
static int
send_agent_string(struct check *chk)
{
	const char *s = chk->bc->agent.send;
	size_t n = chk->bc->agent.send_len;
	ssize_t w;

	if (n == 0)
		return 0;
	w = send(bufferevent_getfd(chk->bev), s, n, MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) {
		fail_errno(chk, errno);
		return -1;
	}
	if (w < 0)
		w = 0;
	if ((size_t)w < n &&
	    bufferevent_write(chk->bev, s + w, n - (size_t)w) < 0) {
		fail_reason(chk, "out of memory");
		return -1;
	}
	return 0;
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct check *chk = arg;
	char reason[256];

	if (what & BEV_EVENT_CONNECTED) {
		if (chk->agent) {
			/* No PROXY header: the agent is no mail server. */
			chk->step = ST_AGENT;
			if (send_agent_string(chk) < 0)
				return;
			bufferevent_setwatermark(bev, EV_READ, 0,
			                         AGENT_LINE_MAX + 2);
			bufferevent_enable(bev, EV_READ | EV_WRITE);
			return;
		}
		if (chk->step == ST_TLS) {
			tls_up(chk);
			return;
		}
		if (chk->sc->proxy_protocol != PP_NONE &&
		    send_proxy_header(chk) < 0)
			return;
		if (chk->conf->type == CHECK_TCP) {
			finish(chk, true, 0, NULL, NULL);
			return;
		}
		chk->step = ST_GREETING;
		smtp_reply_init(&chk->reply);
		bufferevent_setwatermark(bev, EV_READ, 0, CHECK_READ_MAX);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		return;
	}
	if (chk->step == ST_QUIT) {
		/* Closed after QUIT, with or without 221: a clean end. */
		finish(chk, true, 0, NULL, NULL);
		return;
	}
	if (chk->step == ST_AGENT && (what & BEV_EVENT_EOF)) {
		agent_line(chk, bufferevent_get_input(bev), true);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		fail_reason(chk, "connection closed");
		return;
	}
	if (chk->step == ST_TLS || bufferevent_openssl_get_ssl(bev) != NULL) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		int err = EVUTIL_SOCKET_ERROR();

		if (e == 0 && chk->step != ST_TLS && err != 0) {
			fail_errno(chk, err);
			return;
		}
		tls_error_text(bufferevent_openssl_get_ssl(bev), e, reason,
		               sizeof(reason));
		fail_reason(chk, reason);
		return;
	}
	fail_errno(chk, EVUTIL_SOCKET_ERROR() != 0 ? EVUTIL_SOCKET_ERROR()
	                                           : ECONNRESET);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check *chk = arg;

	(void)fd;
	(void)what;
	if (chk->step == ST_QUIT)
		finish(chk, true, 0, NULL, NULL);
	else
		fail_reason(chk, "timeout");
}

static void
run(struct check *chk)
{
	const struct cfg_addr *a =
	    chk->agent ? &chk->sc->agent_addr : &chk->sc->addr;
	const struct cfg_backend *bc = chk->bc;
	struct timeval tv = ms_tv(chk->timeout_ms);
	const char *what;
	int fd = -1;

	if (chk->running)
		return;
	chk->running = true;
	chk->step = ST_CONNECT;
	chk->t_start = now_ms();
	/* A configured source address applies to checks too (the server
	 * may accept only it); "clientip" has no client here.  The socket
	 * is made non-blocking at once (one system call less a check). */
	if ((fd =
	         sock_outgoing(a->ss.ss_family,
	                       bc->source_mode == SRC_ADDR
	                           ? (const struct sockaddr *)&bc->source_ss
	                           : NULL,
	                       bc->source_mode == SRC_ADDR ? bc->source_len : 0,
	                       false, &what)) < 0) {
		fail_errno(chk, errno);
		return;
	}
	chk->bev = bufferevent_socket_new(chk->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (chk->bev == NULL) {
		int err = errno != 0 ? errno : ENOMEM;
		if (fd >= 0)
			close(fd);
		fail_errno(chk, err);
		return;
	}
	bufferevent_setcb(chk->bev, read_cb, NULL, event_cb, chk);
	evtimer_add(chk->deadline, &tv);
	if (bufferevent_socket_connect(chk->bev, (struct sockaddr *)&a->ss,
	                               (int)a->len) < 0)
		fail_errno(chk, errno != 0 ? errno : ECONNREFUSED);
}

static void
sched_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run(arg);
}

struct check *
check_new_agent(const struct cfg_backend *bc, const struct cfg_server *sc,
                struct event_base *base, const struct check_cbs *cbs, void *arg)
{
	struct check *chk = check_new(bc, sc, base, NULL, cbs, arg);

	if (chk != NULL) {
		chk->agent = true;
		chk->timeout_ms = bc->agent.timeout_ms;
	}
	return chk;
}

struct check *
check_new(const struct cfg_backend *bc, const struct cfg_server *sc,
          struct event_base *base, SSL_CTX *tls_ctx,
          const struct check_cbs *cbs, void *arg)
{
	struct check *chk;
	uint16_t port;
	const char *err;

	if ((chk = calloc(1, sizeof(*chk))) == NULL)
		return NULL;
	chk->bc = bc;
	chk->sc = sc;
	chk->cbs = cbs;
	chk->arg = arg;
	chk->conf = &bc->check;
	chk->base = base;
	chk->tls_ctx = tls_ctx;
	chk->timeout_ms = chk->conf->timeout_ms;
	if (chk->timeout_ms == 0)
		chk->timeout_ms =
		    chk->conf->interval_ms < bc->timeout_connect_ms
		        ? chk->conf->interval_ms
		        : bc->timeout_connect_ms;
	if (parse_address(sc->addr.text, chk->host, sizeof(chk->host), &port,
	                  &err) < 0)
		chk->host[0] = '\0';
	if (chk->conf->helo[0] != '\0')
		snprintf(chk->domain, sizeof(chk->domain), "%s",
		         chk->conf->helo);
	else if (gethostname(chk->domain, sizeof(chk->domain)) < 0 ||
	         chk->domain[0] == '\0')
		snprintf(chk->domain, sizeof(chk->domain), "localhost");
	chk->domain[sizeof(chk->domain) - 1] = '\0';
	chk->sched = evtimer_new(chk->base, sched_cb, chk);
	chk->deadline = evtimer_new(chk->base, deadline_cb, chk);
	if (chk->sched == NULL || chk->deadline == NULL) {
		check_free(chk);
		return NULL;
	}
	return chk;
}

void
check_schedule(struct check *chk, uint64_t delay_ms)
{
	struct timeval tv;

	/* Agent checks start on a grid of AGENT_GRAIN_MS: the ones due
	 * within the same step go out in one wake-up of the loop, and
	 * their connects and answers tend to share wake-ups too (timer
	 * coalescing: with 50 agents a second, about a third of the CPU
	 * time is the loop's sleeping and waking).  Each keeps its own
	 * timer and its place in the spread, moved by half a step at most. */
	if (chk->agent && delay_ms > 0) {
		uint64_t now = now_ms(), at = now + delay_ms;

		/* To the nearest step: on average the interval stays. */
		at += AGENT_GRAIN_MS / 2;
		at -= at % AGENT_GRAIN_MS;
		delay_ms = at > now ? at - now : 0;
	}
	tv = ms_tv(delay_ms);

	if (chk->running)
		return; /* it reschedules itself when it ends */
	evtimer_add(chk->sched, &tv);
}

void
check_stop(struct check *chk)
{
	evtimer_del(chk->sched);
	drop_connection(chk);
}

void
check_free(struct check *chk)
{
	if (chk == NULL)
		return;
	if (chk->deadline != NULL)
		check_stop(chk);
	if (chk->sched != NULL)
		event_free(chk->sched);
	if (chk->deadline != NULL)
		event_free(chk->deadline);
	free(chk);
}
