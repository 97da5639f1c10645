/* The byte relay of an established session (see relay.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "log.h"
#include "relay.h"

/* A read that fills the whole buffer means bulk data: the next reads of
 * that direction are spliced.  A spliced read shorter than this, with
 * the pipe empty again, goes back to plain reads (and line detection). */
#define SPLICE_MIN 16384
#define PIPE_POOL LB_RELAY_PIPE_POOL
#define PIPES_MAX LB_RELAY_PIPES

struct relay_ctx {
	char buf[RELAY_BUF];
	bool splice;
	int pool[PIPE_POOL][2];
	size_t npool, pool_max;
	size_t pipes_used, pipes_max; /* this event loop's share */
	unsigned long reads; /* read events handled (relay_ctx_reads) */
	unsigned long bulk;  /* of which bulk reads (relay_ctx_bulk) */
};

struct relay_dir {
	struct relay *r;
	bool c2s;
	int from, to;
	struct event *rev, *wev;
	char *buf; /* bytes read but not yet taken by the peer */
	size_t len, off;
	int pfd[2]; /* splicing: the pipe, and how much is in it */
	size_t in_pipe;
	bool splice;
	bool no_splice; /* the kernel refused: plain reads only */
	bool eof;       /* read EOF from `from` */
	bool shut;      /* shutdown(to, SHUT_WR) done */
};

struct relay {
	struct relay_ctx *ctx;
	const struct relay_cbs *cbs;
	void *arg;
	int cfd, sfd;
	struct relay_dir d[2]; /* [0] client -> server, [1] server -> client */
};

struct relay_ctx *
relay_ctx_new(bool splice, unsigned share)
{
	struct relay_ctx *ctx = calloc(1, sizeof(*ctx));

	if (share == 0)
		share = 1;
	if (ctx != NULL) {
		ctx->splice = splice;
		/* 0 with more workers than pipes: plain copies only. */
		ctx->pipes_max = PIPES_MAX / share;
		ctx->pool_max = PIPE_POOL / share;
	}
	return ctx;
}

void
relay_ctx_free(struct relay_ctx *ctx)
{
	if (ctx == NULL)
		return;
	for (size_t i = 0; i < ctx->npool; i++) {
		close(ctx->pool[i][0]);
		close(ctx->pool[i][1]);
	}
	free(ctx);
}

static bool
pipe_get(struct relay_ctx *ctx, int pfd[2])
{
	if (ctx->npool > 0) {
		ctx->npool--;
		pfd[0] = ctx->pool[ctx->npool][0];
		pfd[1] = ctx->pool[ctx->npool][1];
	} else if (ctx->pipes_used >= ctx->pipes_max ||
	           pipe2(pfd, O_NONBLOCK | O_CLOEXEC) < 0) {
		return false;
	}
	ctx->pipes_used++;
	return true;
}

/* An empty pipe goes back to the pool; one with bytes left is closed. */
static void
pipe_put(struct relay_ctx *ctx, int pfd[2], bool empty)
{
	ctx->pipes_used--;
	if (empty && ctx->npool < ctx->pool_max) {
		ctx->pool[ctx->npool][0] = pfd[0];
		ctx->pool[ctx->npool][1] = pfd[1];
		ctx->npool++;
	} else {
		close(pfd[0]);
		close(pfd[1]);
	}
	pfd[0] = pfd[1] = -1;
}

static size_t
pending(const struct relay_dir *d)
{
	return d->len - d->off + d->in_pipe;
}

/* The end, reported once; r may be freed by the callback. */
static void
fail(struct relay_dir *d, bool on_from)
{
	/* on_from: the error is on the reading socket. */
	bool client = d->c2s == on_from;

	d->r->cbs->end(d->r->arg,
	               client ? RELAY_CLIENT_ERROR : RELAY_SERVER_ERROR);
}

/* Write what is pending.  1 all written, 0 the peer is full, -1 error. */
static int
flush(struct relay_dir *d)
{
	while (d->off < d->len) {
		ssize_t w = send(d->to, d->buf + d->off, d->len - d->off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		d->off += (size_t)w;
	}
	if (d->buf != NULL) {
		free(d->buf);
		d->buf = NULL;
		d->len = d->off = 0;
	}
	while (d->in_pipe > 0) {
		ssize_t w = splice(d->pfd[0], NULL, d->to, NULL, d->in_pipe,
		                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		if (w == 0)
			return -1;
		d->in_pipe -= (size_t)w;
	}
	return 1;
}

static void
check_end(struct relay *r)
{
	if (r->d[0].shut && r->d[1].shut)
		r->cbs->end(r->arg, RELAY_DONE);
}

/* The sender is done and everything reached the peer: pass the EOF on.
 * Returns true when the relay ended (r may be gone). */
static bool
shut(struct relay_dir *d)
{
	struct relay *r = d->r;
	struct relay_dir *other = &r->d[d->c2s ? 1 : 0];

	/* When the other direction is already done, both sockets were read
	 * to their EOF: closing them sends the FIN, no shutdown needed. */
	if (!other->shut)
		(void)shutdown(d->to, SHUT_WR);
	d->shut = true;
	if (r->d[0].shut && r->d[1].shut) {
		check_end(r);
		return true;
	}
	return false;
}

/* Bytes are waiting for the peer: stop reading, watch for room.  Until
 * they are taken it is the receiver's turn. */
static void
block(struct relay_dir *d)
{
	event_del(d->rev);
	event_add(d->wev, NULL);
	d->r->cbs->moved(d->r->arg, d->c2s, 0, RELAY_LINE_PENDING);
}

static void
leave_splice(struct relay_dir *d)
{
	if (d->splice && d->in_pipe == 0) {
		pipe_put(d->r->ctx, d->pfd, true);
		d->splice = false;
	}
}

static void
got_eof(struct relay_dir *d)
{
	struct relay *r = d->r;

	d->eof = true;
	event_del(d->rev);
	r->cbs->eof(r->arg, d->c2s);
	if (pending(d) == 0)
		(void)shut(d);
}

static bool
nothing_left(int fd)
{
	int avail = 0;

	return ioctl(fd, FIONREAD, &avail) == 0 && avail == 0;
}

/* Plain read: into the shared buffer, straight on to the peer; what the
 * peer does not take now is kept (at most RELAY_BUF). */
static void
read_copy(struct relay_dir *d, bool closed)
{
	struct relay *r = d->r;
	struct relay_ctx *ctx = r->ctx;
	ssize_t n, w;
	bool last;

	do
		n = recv(d->from, ctx->buf, sizeof(ctx->buf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN)
			fail(d, true);
		return;
	}
	if (n == 0) {
		got_eof(d);
		return;
	}
	/* The peer's FIN came with these bytes (EPOLLRDHUP) and nothing is
	 * left to read: the EOF is known now.  (A short read alone does not
	 * say so: recv stops at TCP urgent data.)  MSG_MORE holds the bytes
	 * back an instant so that the shutdown below sends them with the
	 * FIN, one segment instead of two. */
	last = closed && (size_t)n < sizeof(ctx->buf) && nothing_left(d->from);
	if ((size_t)n >= RELAY_BULK_READ)
		ctx->bulk++;
	r->cbs->moved(r->arg, d->c2s, (size_t)n, ctx->buf[n - 1] == '\n');
	do
		w = send(d->to, ctx->buf, (size_t)n,
		         MSG_NOSIGNAL | MSG_DONTWAIT | (last ? MSG_MORE : 0));
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno != EAGAIN) {
			fail(d, false);
			return;
		}
		w = 0;
	}
	if (w < n) {
		d->len = (size_t)(n - w);
		d->off = 0;
		if ((d->buf = malloc(d->len)) == NULL) {
			log_warn("relay: cannot keep %zu bytes", d->len);
			fail(d, false);
			return;
		}
		memcpy(d->buf, ctx->buf + w, d->len);
		block(d); /* the EOF is read again once they are taken */
		return;
	}
	if (last) {
		got_eof(d);
		return;
	}
	/* A full buffer: bulk data, splice from now on. */
	if ((size_t)n == sizeof(ctx->buf) && ctx->splice && !d->no_splice &&
	    pipe_get(ctx, d->pfd))
		d->splice = true;
}

/* Spliced read: socket -> pipe -> socket, never through user space. */
static void
read_splice(struct relay_dir *d)
{
	struct relay *r = d->r;
	ssize_t n;
	int rc;

	do
		n = splice(d->from, NULL, d->pfd[1], NULL, RELAY_BUF,
		           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINVAL || errno == ENOSYS) {
			/* EAGAIN with the socket readable: splice stops at TCP
			 * urgent data, which recv() steps over.  EINVAL,
			 * ENOSYS: not spliceable.  Plain reads either way. */
			if (errno != EAGAIN)
				d->no_splice = true;
			leave_splice(d);
			read_copy(d, false);
			return;
		}
		fail(d, true);
		return;
	}
	if (n == 0) {
		leave_splice(d);
		got_eof(d);
		return;
	}
	d->in_pipe += (size_t)n;
	r->ctx->bulk++;
	r->cbs->moved(r->arg, d->c2s, (size_t)n, -1);
	rc = flush(d);
	if (rc < 0) {
		fail(d, false);
		return;
	}
	if (rc == 0) {
		block(d);
		return;
	}
	if ((size_t)n < SPLICE_MIN)
		leave_splice(d);
}

unsigned long
relay_ctx_reads(const struct relay_ctx *ctx)
{
	return ctx->reads;
}

unsigned long
relay_ctx_bulk(const struct relay_ctx *ctx)
{
	return ctx->bulk;
}

unsigned
relay_pause_us(unsigned long reads, unsigned long bulk, unsigned max_us)
{
	if (reads == 0 || max_us == 0)
		return 0;
	if (max_us <= RELAY_PAUSE_MIN_US)
		return max_us;
	if (bulk > 0 || reads <= RELAY_PAUSE_MIN_US / RELAY_PAUSE_STEP_US)
		return RELAY_PAUSE_MIN_US;
	if (reads >= max_us / RELAY_PAUSE_STEP_US)
		return max_us;
	return (unsigned)reads * RELAY_PAUSE_STEP_US;
}

static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_dir *d = arg;

	(void)fd;
	d->r->ctx->reads++;
	if (pending(d) > 0)
		return; /* not reached: reading stops while blocked */
	if (d->splice) {
		int avail = 0;

		/* The tail of a transfer (".\r\n" ending DATA) is read
		 * plainly, so that whose turn it is stays known. */
		if (ioctl(d->from, FIONREAD, &avail) == 0 && avail < SPLICE_MIN)
			leave_splice(d);
	}
	if (d->splice)
		read_splice(d);
	else
		read_copy(d, (what & EV_CLOSED) != 0);
}

static void
write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_dir *d = arg;
	size_t before = pending(d);
	int rc;

	(void)fd;
	(void)what;
	rc = flush(d);
	if (rc >= 0 && pending(d) < before)
		/* Progress: the receiver is taking its bytes. */
		d->r->cbs->moved(d->r->arg, d->c2s, 0, RELAY_LINE_PENDING);
	if (rc < 0) {
		fail(d, false);
		return;
	}
	if (rc == 0)
		return;
	event_del(d->wev);
	if (d->eof) {
		leave_splice(d);
		(void)shut(d);
		return;
	}
	event_add(d->rev, NULL);
}

struct relay *
relay_new(struct relay_ctx *ctx, struct event_base *base, int cfd, int sfd,
          const struct relay_cbs *cbs, void *arg)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->ctx = ctx;
	r->cbs = cbs;
	r->arg = arg;
	r->cfd = cfd;
	r->sfd = sfd;
	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = &r->d[i];

		d->r = r;
		d->c2s = i == 0;
		d->from = d->c2s ? cfd : sfd;
		d->to = d->c2s ? sfd : cfd;
		d->pfd[0] = d->pfd[1] = -1;
		d->rev =
		    event_new(base, d->from, EV_READ | EV_CLOSED | EV_PERSIST,
		              read_cb, d);
		d->wev =
		    event_new(base, d->to, EV_WRITE | EV_PERSIST, write_cb, d);
		if (d->rev == NULL || d->wev == NULL) {
			r->cfd = r->sfd = -1; /* the caller still owns them */
			relay_free(r);
			return NULL;
		}
	}
	return r;
}

int
relay_queue(struct relay *r, bool c2s, const void *data, size_t len)
{
	struct relay_dir *d = &r->d[c2s ? 0 : 1];
	char *nb;

	if (len == 0)
		return 0;
	if ((nb = realloc(d->buf, d->len + len)) == NULL)
		return -1;
	memcpy(nb + d->len, data, len);
	d->buf = nb;
	d->len += len;
	return 0;
}

int
relay_start(struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = &r->d[i];

		if (event_add(pending(d) > 0 ? d->wev : d->rev, NULL) < 0)
			return -1;
	}
	return 0;
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = &r->d[i];

		if (d->rev != NULL)
			event_free(d->rev);
		if (d->wev != NULL)
			event_free(d->wev);
		free(d->buf);
		if (d->pfd[0] >= 0)
			pipe_put(r->ctx, d->pfd, d->in_pipe == 0);
	}
	if (r->cfd >= 0)
		close(r->cfd);
	if (r->sfd >= 0)
		close(r->sfd);
	free(r);
}
