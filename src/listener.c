/* Frontends and their listening sockets. */
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
#include "rt.h"
#include "session.h"
#include "sock.h"

static int
bind_one(struct listener *l, int backlog)
{
	const struct sockaddr *sa = (const struct sockaddr *)&l->addr->ss;
	int one = 1;
	evutil_socket_t fd;

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
	if (l->fe->conf->transparent &&
	    sock_set_transparent(fd, sa->sa_family) < 0) {
		log_warn("cannot listen on %s: transparent = true needs %s "
		         "(run as root or with CAP_NET_ADMIN)",
		         l->addr->text,
		         sa->sa_family == AF_INET6 ? "IPV6_TRANSPARENT"
		                                   : "IP_TRANSPARENT");
		close(fd);
		return -1;
	}
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
	return 0;
}

static bool
same_address(const struct cfg_addr *a, const struct cfg_addr *b)
{
	const struct sockaddr *x = (const struct sockaddr *)&a->ss;
	const struct sockaddr *y = (const struct sockaddr *)&b->ss;

	if (x->sa_family != y->sa_family)
		return false;
	if (x->sa_family == AF_INET) {
		const struct sockaddr_in *p = (const void *)x,
		                         *q = (const void *)y;
		return p->sin_port == q->sin_port &&
		       p->sin_addr.s_addr == q->sin_addr.s_addr;
	}
	if (x->sa_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const void *)x,
		                          *q = (const void *)y;
		return p->sin6_port == q->sin6_port &&
		       memcmp(&p->sin6_addr, &q->sin6_addr,
		              sizeof(p->sin6_addr)) == 0;
	}
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

				if (o->evl != NULL && !o->taken &&
				    same_address(o->addr, l->addr)) {
					o->taken = true;
					l->from = o;
					break;
				}
			}
		if (l->from == NULL && bind_one(l, fe->conf->backlog) < 0)
			return -1;
	}
	return 0;
}

int
frontend_bind(struct frontend *fe)
{
	for (size_t i = 0; i < fe->nlisteners; i++)
		if (bind_one(&fe->listeners[i], fe->conf->backlog) < 0)
			return -1;
	return 0;
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct listener *l = arg;

	(void)evl;
	rt_lock(l->fe->rt);
	l->fe->rt->accept_warned = false;
	session_accept(l->fe, fd, sa, salen);
	rt_unlock(l->fe->rt);
}

static void accept_error(struct listener *l, int err);

static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)evl;
	errno = err;
	rt_lock(l->fe->rt);
	accept_error(l, err);
	rt_unlock(l->fe->rt);
}

static void
accept_error(struct listener *l, int err)
{
	errno = err;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors or memory: a level-triggered listener
		 * would spin.  Pause accepting for a moment. */
		if (!l->fe->rt->accept_warned)
			log_warn("accept on %s, pausing new connections",
			         l->addr->text);
		rt_pause_accept(l->fe->rt);
		return;
	}
	log_warn("accept on %s", l->addr->text);
}

int
frontend_start(struct frontend *fe, struct event_base *base)
{
	int rc = 0;

	/* Every listener, even after a failure: a reload's takeovers must
	 * all happen (the old listeners are closed next). */
	for (size_t i = 0; i < fe->nlisteners; i++) {
		struct listener *l = &fe->listeners[i];

		if (l->from != NULL) {
			/* Reload: the old listener's socket, with its queue
			 * of connections not accepted yet. */
			evutil_socket_t fd =
			    evconnlistener_get_fd(l->from->evl);

			l->evl = l->from->evl;
			l->enabled = l->from->enabled;
			l->from->evl = NULL;
			l->from->enabled = false;
			l->from = NULL;
			evconnlistener_set_cb(l->evl, accept_cb, l);
			if (listen(fd, fe->conf->backlog) < 0)
				log_warn("%s: new backlog", l->addr->text);
			if (fe->conf->transparent &&
			    sock_set_transparent(fd, l->addr->ss.ss_family) < 0)
				log_warn("%s: IP_TRANSPARENT", l->addr->text);
			continue;
		}
		if (l->fd < 0)
			continue;
		l->evl = evconnlistener_new(base, accept_cb, l,
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

		if (l->from != NULL) {
			/* A reload that did not go through: the old
			 * listener keeps its socket. */
			l->from->taken = false;
			l->from = NULL;
		}
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
	frontend_close(fe);
	free(fe->listeners);
	fe->listeners = NULL;
}

/* Should fe accept now (global and frontend maxconn, pauses)? */
static bool
frontend_wants(const struct rt *rt, const struct frontend *fe)
{
	return !rt->stopping && !rt->accept_paused &&
	       rt->cur_sess < rt->max_sess &&
	       (fe->conf->maxconn == 0 ||
	        fe->cur_sess < (unsigned)fe->conf->maxconn);
}

bool
listeners_stale(const struct rt *rt)
{
	for (size_t f = 0; f < rt->nfrontends; f++) {
		const struct frontend *fe = &rt->frontends[f];
		bool want = frontend_wants(rt, fe);

		for (size_t i = 0; i < fe->nlisteners; i++)
			if (fe->listeners[i].evl != NULL &&
			    fe->listeners[i].enabled != want)
				return true;
	}
	return false;
}

void
listeners_update(struct rt *rt)
{
	for (size_t f = 0; f < rt->nfrontends; f++) {
		struct frontend *fe = &rt->frontends[f];
		bool want = frontend_wants(rt, fe);

		for (size_t i = 0; i < fe->nlisteners; i++) {
			struct listener *l = &fe->listeners[i];

			if (l->evl == NULL || l->enabled == want)
				continue;
			if (want ? evconnlistener_enable(l->evl)
			         : evconnlistener_disable(l->evl)) {
				log_warnx("cannot %s listener %s",
				          want ? "enable" : "disable",
				          l->addr->text);
				continue;
			}
			l->enabled = want;
		}
	}
}
