/* Frontends and their listening sockets (see listener.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

#include "listener.h"
#include "log.h"
#include "sock.h"

#define ACCEPT_PAUSE_MS 100

struct acceptor {
	struct event_base *base;
	struct counters *cnt;
	accept_fn fn;
	void *arg;
	struct frontend *fes; /* the frontends that accept now */
	size_t nfes;
	bool paused; /* descriptor shortage */
	bool warned; /* said so; again only after an accept worked */
	struct event *timer;
};

void
frontend_init(struct frontend *fe, const struct cfg_frontend *conf,
              struct backend *be, bool log_sessions, void *owner)
{
	memset(fe, 0, sizeof(*fe));
	fe->conf = conf;
	fe->owner = owner;
	fe->be = be;
	fe->log_sessions = log_sessions;
	fe->nlisteners = conf->nbinds;
	fe->listeners =
	    calloc(conf->nbinds ? conf->nbinds : 1, sizeof(*fe->listeners));
	if (fe->listeners == NULL)
		fatal("frontend %s", conf->name);
	for (size_t j = 0; j < conf->nbinds; j++) {
		fe->listeners[j].fe = fe;
		fe->listeners[j].addr = &conf->binds[j];
		fe->listeners[j].fd = -1;
		fe->listeners[j].sock = -1;
	}
	if ((conf->limits.maxconn > 0 || conf->limits.rate > 0) &&
	    (fe->climit = climit_new((size_t)conf->limits.table_size,
	                             (unsigned)conf->limits.prefix4,
	                             (unsigned)conf->limits.prefix6,
	                             conf->limits.period_ms)) == NULL)
		fatal("frontend %s: client_limits table of %d networks",
		      conf->name, conf->limits.table_size);
}

struct frontend *
frontend_successor(const struct frontend *fe)
{
	return atomic_load_explicit(&((struct frontend *)fe)->successor,
	                            memory_order_acquire);
}

struct frontend *
frontend_newest(const struct frontend *fe)
{
	struct frontend *n;

	while ((n = frontend_successor(fe)) != NULL)
		fe = n;
	return (struct frontend *)fe;
}

/* IP_TRANSPARENT on fd when the frontend wants it; -1 (fd closed) when it
 * cannot be had. */
static int
transparent(struct listener *l, int fd)
{
	int family = l->addr->ss.ss_family;

	if (!l->fe->conf->transparent || sock_set_transparent(fd, family) == 0)
		return 0;
	log_warn("cannot listen on %s: transparent = true needs %s (run as "
	         "root or with CAP_NET_ADMIN)",
	         l->addr->text,
	         family == AF_INET6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT");
	close(fd);
	return -1;
}

/* The socket a running daemon handed over (load-balancer(8), RESTART):
 * its queue of connections not accepted yet comes with it.  The new
 * backlog and IP_TRANSPARENT apply to it as to a new one. */
static int
adopt_one(struct listener *l, int fd, int backlog)
{
	if (transparent(l, fd) < 0)
		return -1;
	if (listen(fd, backlog) < 0)
		log_warn("%s: new backlog", l->addr->text);
	l->fd = fd;
	l->sock = fd;
	log_info("%s: listening socket taken over", l->addr->text);
	return 0;
}

static int
bind_one(struct listener *l, int backlog, struct sock_inherit *inh)
{
	const struct sockaddr *sa = (const struct sockaddr *)&l->addr->ss;
	int one = 1;
	evutil_socket_t fd;

	if ((fd = sock_inherit_take(inh, sa)) >= 0)
		return adopt_one(l, fd, backlog);
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0) {
		log_warn("cannot listen on %s: socket", l->addr->text);
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		log_warn("%s: SO_REUSEADDR", l->addr->text);
	/* Accepted sockets inherit it: one call instead of one per client. */
	sock_set_nodelay(fd);
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		log_warn("%s: IPV6_V6ONLY", l->addr->text);
	if (transparent(l, fd) < 0)
		return -1;
	if (bind(fd, sa, l->addr->len) < 0) {
		log_warn("cannot bind %s", l->addr->text);
		close(fd);
		return -1;
	}
	if (listen(fd, backlog) < 0) {
		log_warn("cannot listen on %s", l->addr->text);
		close(fd);
		return -1;
	}
	l->fd = fd;
	l->sock = fd;
	return 0;
}

static bool
same_address(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return sock_same_addr((const struct sockaddr *)&a->ss,
	                      (const struct sockaddr *)&b->ss);
}

/* Does a listener of fe before position i take o over already? */
static bool
claimed(const struct frontend *fe, size_t i, const struct listener *o)
{
	for (size_t k = 0; k < i; k++)
		if (fe->listeners[k].from == o)
			return true;
	return false;
}

int
frontend_bind_reload(struct frontend *fe, struct frontend *olds, size_t nold)
{
	for (size_t i = 0; i < fe->nlisteners; i++) {
		struct listener *l = &fe->listeners[i];

		for (size_t f = 0; f < nold && l->from == NULL; f++)
			for (size_t j = 0; j < olds[f].nlisteners; j++) {
				struct listener *o = &olds[f].listeners[j];

				if (same_address(o->addr, l->addr) &&
				    !claimed(fe, i, o)) {
					l->from = o;
					l->sock = o->sock;
					break;
				}
			}
		if (l->from == NULL && bind_one(l, fe->conf->backlog, NULL) < 0)
			return -1;
	}
	return 0;
}

int
frontend_bind(struct frontend *fe, struct sock_inherit *inh)
{
	for (size_t i = 0; i < fe->nlisteners; i++)
		if (bind_one(&fe->listeners[i], fe->conf->backlog, inh) < 0)
			return -1;
	return 0;
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct listener *l = arg;
	struct acceptor *acc = l->acc;

	(void)evl;
	acc->warned = false;
	acc->fn(acc->arg, l->fe, fd, sa, salen);
}

static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)evl;
	errno = err;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors or memory: a level-triggered listener
		 * would spin.  Pause accepting for a moment. */
		if (!l->acc->warned)
			log_warn("accept on %s, pausing new connections",
			         l->addr->text);
		acceptor_pause(l->acc);
		return;
	}
	log_warn("accept on %s", l->addr->text);
}

int
frontend_start(struct frontend *fe, struct acceptor *acc)
{
	int rc = 0;

	/* Every listener, even after a failure: a reload's takeovers must
	 * all happen (the old listeners are closed next). */
	for (size_t i = 0; i < fe->nlisteners; i++) {
		struct listener *l = &fe->listeners[i];

		l->acc = acc;
		if (l->from != NULL) {
			/* Reload: the old listener's socket, with its queue
			 * of connections not accepted yet. */
			struct listener *o = l->from;
			evutil_socket_t fd;

			l->from = NULL;
			if (o->evl == NULL) {
				log_warnx("%s: the previous listener is gone",
				          l->addr->text);
				rc = -1;
				continue;
			}
			fd = evconnlistener_get_fd(o->evl);
			l->evl = o->evl;
			l->enabled = o->enabled;
			o->evl = NULL;
			o->enabled = false;
			evconnlistener_set_cb(l->evl, accept_cb, l);
			evconnlistener_set_error_cb(l->evl, accept_error_cb);
			if (listen(fd, fe->conf->backlog) < 0)
				log_warn("%s: new backlog", l->addr->text);
			if (fe->conf->transparent &&
			    sock_set_transparent(fd, l->addr->ss.ss_family) < 0)
				log_warn("%s: IP_TRANSPARENT", l->addr->text);
			continue;
		}
		if (l->fd < 0)
			continue;
		l->evl = evconnlistener_new(acc->base, accept_cb, l,
		                            LEV_OPT_CLOSE_ON_FREE |
		                                LEV_OPT_CLOSE_ON_EXEC |
		                                LEV_OPT_DISABLED,
		                            0, l->fd);
		if (l->evl == NULL) {
			log_warn("cannot watch listener %s", l->addr->text);
			rc = -1;
			continue;
		}
		l->fd = -1; /* owned by evl now */
		l->enabled = false;
		evconnlistener_set_error_cb(l->evl, accept_error_cb);
	}
	return rc;
}

void
frontend_close(struct frontend *fe)
{
	for (size_t i = 0; i < fe->nlisteners; i++) {
		struct listener *l = &fe->listeners[i];

		/* A takeover that did not happen: the old listener keeps
		 * its socket. */
		l->from = NULL;
		if (l->evl != NULL) {
			evconnlistener_free(l->evl);
			l->evl = NULL;
		}
		if (l->fd >= 0) {
			close(l->fd);
			l->fd = -1;
		}
		l->enabled = false;
	}
}

void
frontend_free(struct frontend *fe)
{
	climit_unref(fe->climit);
	fe->climit = NULL;
	if (fe->listeners == NULL)
		return;
	frontend_close(fe);
	free(fe->listeners);
	fe->listeners = NULL;
}

/* --- the acceptor --------------------------------------------------------- */

static void
pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acceptor *acc = arg;

	(void)fd;
	(void)what;
	acc->paused = false;
	acceptor_update(acc);
}

struct acceptor *
acceptor_new(struct event_base *base, struct counters *cnt, accept_fn fn,
             void *arg)
{
	struct acceptor *acc = calloc(1, sizeof(*acc));

	if (acc == NULL) {
		log_warn("acceptor");
		return NULL;
	}
	acc->base = base;
	acc->cnt = cnt;
	acc->fn = fn;
	acc->arg = arg;
	if ((acc->timer = evtimer_new(base, pause_cb, acc)) == NULL) {
		log_warnx("cannot create the accept pause timer");
		free(acc);
		return NULL;
	}
	return acc;
}

void
acceptor_free(struct acceptor *acc)
{
	if (acc == NULL)
		return;
	event_free(acc->timer);
	free(acc);
}

void
acceptor_set(struct acceptor *acc, struct frontend *fes, size_t n)
{
	acc->fes = fes;
	acc->nfes = n;
}

/* Should fe accept now (global and frontend maxconn, pauses)? */
static bool
wants(const struct acceptor *acc, const struct frontend *fe)
{
	const struct counters *c = acc->cnt;

	return !atomic_load(&c->stopping) && !acc->paused &&
	       atomic_load(&c->cur_sess) < atomic_load(&c->max_sess) &&
	       (fe->conf->maxconn == 0 ||
	        atomic_load(&frontend_newest(fe)->cur_sess) <
	            (unsigned)fe->conf->maxconn);
}

void
acceptor_update(struct acceptor *acc)
{
	unsigned off = 0;

	/* Said first, read after: a session that ends once the counts were
	 * read sees the flag and wakes this thread again (both sides use
	 * sequentially consistent atomics). */
	atomic_store(&acc->cnt->listeners_off, 1);
	for (size_t f = 0; f < acc->nfes; f++) {
		struct frontend *fe = &acc->fes[f];
		bool want = wants(acc, fe);

		for (size_t i = 0; i < fe->nlisteners; i++) {
			struct listener *l = &fe->listeners[i];

			if (l->evl == NULL)
				continue;
			if (l->enabled != want) {
				if (want ? evconnlistener_enable(l->evl)
				         : evconnlistener_disable(l->evl)) {
					log_warnx("cannot %s listener %s",
					          want ? "enable" : "disable",
					          l->addr->text);
				} else
					l->enabled = want;
			}
			off += !l->enabled;
		}
	}
	atomic_store(&acc->cnt->listeners_off, off);
}

void
acceptor_pause(struct acceptor *acc)
{
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};

	acc->paused = true;
	acc->warned = true; /* one warning per shortage */
	evtimer_add(acc->timer, &tv);
	acceptor_update(acc);
}

void
acceptor_close(struct acceptor *acc)
{
	for (size_t f = 0; f < acc->nfes; f++)
		frontend_close(&acc->fes[f]);
	atomic_store(&acc->cnt->listeners_off, 0);
}

bool
acceptor_warned(const struct acceptor *acc)
{
	return acc->warned;
}
