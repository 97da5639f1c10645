/* Control socket: accept, read command lines, run them, reply. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "backend.h"
#include "ctl.h"
#include "healthlog.h"
#include "listener.h"
#include "log.h"
#include "rt.h"
#include "server.h"
#include "session.h"

#define CTL_IDLE_MS 60000
#define CTL_REPLY_MAX (1024 * 1024) /* stop reading while this is queued */
#define CTL_ACCEPT_PAUSE_MS 1000    /* after EMFILE and the like */

struct ctl {
	struct rt *rt;
	char *path;
	int fd;
	struct evconnlistener *evl;
	struct event *resume; /* re-enables evl after an accept pause */
	bool paused;
	unsigned nclients;
};

struct ctl_client {
	struct ctl *ctl;
	struct bufferevent *bev;
	bool closing;
};

/* --- commands --------------------------------------------------------- */

static struct server *
find_server(struct rt *rt, const char *spec, struct evbuffer *out)
{
	const char *slash = strchr(spec, '/');
	size_t blen;

	if (slash == NULL) {
		evbuffer_add_printf(out,
		                    "error: expected BACKEND/SERVER, got "
		                    "'%s'\n",
		                    spec);
		return NULL;
	}
	blen = (size_t)(slash - spec);
	for (size_t b = 0; b < rt->nbackends; b++) {
		struct backend *be = &rt->backends[b];
		if (strlen(be->conf->name) != blen ||
		    strncmp(be->conf->name, spec, blen) != 0)
			continue;
		for (size_t i = 0; i < be->nservers; i++)
			if (strcmp(be->servers[i].conf->name, slash + 1) == 0)
				return &be->servers[i];
		evbuffer_add_printf(out,
		                    "error: backend '%s' has no server '%s'\n",
		                    be->conf->name, slash + 1);
		return NULL;
	}
	evbuffer_add_printf(out, "error: no backend '%.*s'\n", (int)blen, spec);
	return NULL;
}

static void
show_servers(struct rt *rt, struct evbuffer *out)
{
	static const char *const hdr[] = {"BACKEND", "SERVER",    "ADDRESS",
	                                  "STATE",   "WEIGHT",    "CUR",
	                                  "TOTAL",   "LAST CHECK"};
	size_t w[8];
	char state[32], num[3][24];

	for (size_t c = 0; c < 8; c++)
		w[c] = strlen(hdr[c]);
	for (size_t b = 0; b < rt->nbackends; b++) {
		struct backend *be = &rt->backends[b];
		for (size_t i = 0; i < be->nservers; i++) {
			struct server *s = &be->servers[i];
			size_t l;
			server_state_text(s, state, sizeof(state));
			if ((l = strlen(be->conf->name)) > w[0])
				w[0] = l;
			if ((l = strlen(s->conf->name)) > w[1])
				w[1] = l;
			if ((l = strlen(s->conf->addr.text)) > w[2])
				w[2] = l;
			if ((l = strlen(state)) > w[3])
				w[3] = l;
		}
	}
	w[4] = 6;
	w[5] = 6;
	w[6] = 8;
	evbuffer_add_printf(
	    out, "%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0],
	    hdr[0], (int)w[1], hdr[1], (int)w[2], hdr[2], (int)w[3], hdr[3],
	    (int)w[4], hdr[4], (int)w[5], hdr[5], (int)w[6], hdr[6], hdr[7]);
	for (size_t b = 0; b < rt->nbackends; b++) {
		struct backend *be = &rt->backends[b];
		for (size_t i = 0; i < be->nservers; i++) {
			struct server *s = &be->servers[i];
			server_state_text(s, state, sizeof(state));
			snprintf(num[0], sizeof(num[0]), "%d", s->weight);
			snprintf(num[1], sizeof(num[1]), "%u", s->cur_sess);
			snprintf(num[2], sizeof(num[2]), "%llu",
			         (unsigned long long)s->total_sess);
			evbuffer_add_printf(
			    out,
			    "%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s%s\n",
			    (int)w[0], be->conf->name, (int)w[1], s->conf->name,
			    (int)w[2], s->conf->addr.text, (int)w[3], state,
			    (int)w[4], num[0], (int)w[5], num[1], (int)w[6],
			    num[2], s->last_check,
			    s->conf->backup ? " [backup]" : "");
		}
	}
}

static void
show_info(struct rt *rt, struct evbuffer *out)
{
	unsigned up = 0, total = 0;

	for (size_t b = 0; b < rt->nbackends; b++) {
		struct backend *be = &rt->backends[b];
		for (size_t i = 0; i < be->nservers; i++) {
			total++;
			if (be->servers[i].up &&
			    be->servers[i].admin != SRV_MAINT)
				up++;
		}
	}
	evbuffer_add_printf(out,
	                    "name: %s\nversion: %s\npid: %ld\nuptime_s: %lld\n"
	                    "config: %s\nsessions_current: %u\n"
	                    "sessions_total: %llu\nmaxconn: %u\nworkers: %u\n"
	                    "frontends: %zu\nbackends: %zu\n"
	                    "servers_up: %u/%u\nstopping: %s\n",
	                    LB_PROGRAM, PACKAGE_VERSION, (long)getpid(),
	                    (long long)(time(NULL) - rt->started),
	                    rt->cfg->file, rt->cur_sess,
	                    (unsigned long long)rt->total_sess, rt->max_sess,
	                    rt->nworkers, rt->nfrontends, rt->nbackends, up,
	                    total, rt->stopping ? "yes" : "no");
}

static void
emit_line(const char *line, void *arg)
{
	evbuffer_add(arg, line, strlen(line));
}

static void
cmd_check(struct rt *rt, struct evbuffer *out)
{
	if (rt_ready(rt, "error: ", out) == 0)
		evbuffer_add_printf(out, "ok\n");
}

static const char help_text[] =
    "show servers                       one row per server\n"
    "show info                          process and session counters\n"
    "show health [N]                    the last N health events "
    "(default 20)\n"
    "drain BACKEND/SERVER               no new sessions, checks go on\n"
    "disable BACKEND/SERVER             maintenance: no sessions, no "
    "checks\n"
    "enable BACKEND/SERVER              back to normal\n"
    "set weight BACKEND/SERVER N        weight 0..256\n"
    "shutdown sessions BACKEND/SERVER   close the server's sessions\n"
    "reload                             re-read the configuration\n"
    "check                              ok when every backend has a "
    "server UP\n";

/* Split line into at most 8 words (modified in place). */
static int
split(char *line, char **w, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t\r", &save); t != NULL;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return -1;
		w[n++] = t;
	}
	return n;
}

static void
execute(struct rt *rt, char *line, struct evbuffer *out)
{
	char *w[8];
	int n = split(line, w, 8);
	struct server *srv;

	if (n < 0) {
		evbuffer_add_printf(out, "error: too many words\n");
		return;
	}
	if (n == 0) {
		evbuffer_add_printf(out, "error: empty command (try help)\n");
		return;
	}
	if (strcmp(w[0], "help") == 0 && n == 1) {
		evbuffer_add(out, help_text, sizeof(help_text) - 1);
		return;
	}
	if (strcmp(w[0], "show") == 0 && n == 2 &&
	    strcmp(w[1], "servers") == 0) {
		show_servers(rt, out);
		return;
	}
	if (strcmp(w[0], "show") == 0 && n == 2 && strcmp(w[1], "info") == 0) {
		show_info(rt, out);
		return;
	}
	if (strcmp(w[0], "show") == 0 && (n == 2 || n == 3) &&
	    strcmp(w[1], "health") == 0) {
		long k = 20;
		char *end;
		if (n == 3) {
			errno = 0;
			k = strtol(w[2], &end, 10);
			if (errno != 0 || *end != '\0' || k < 1 ||
			    k > HEALTHLOG_KEEP) {
				evbuffer_add_printf(out,
				                    "error: N must be 1..%d\n",
				                    HEALTHLOG_KEEP);
				return;
			}
		}
		if (rt->hlog != NULL)
			healthlog_tail(rt->hlog, (size_t)k, emit_line, out);
		return;
	}
	if ((strcmp(w[0], "drain") == 0 || strcmp(w[0], "disable") == 0 ||
	     strcmp(w[0], "enable") == 0) &&
	    n == 2) {
		enum srv_admin a = w[0][0] == 'd' && w[0][1] == 'r' ? SRV_DRAIN
		                   : w[0][0] == 'd'                 ? SRV_MAINT
		                                                    : SRV_READY;
		char state[32];
		if ((srv = find_server(rt, w[1], out)) == NULL)
			return;
		server_set_admin(srv, a);
		server_state_text(srv, state, sizeof(state));
		evbuffer_add_printf(out, "ok: %s/%s is %s\n",
		                    srv->be->conf->name, srv->conf->name,
		                    a == SRV_READY ? "READY" : state);
		return;
	}
	if (strcmp(w[0], "set") == 0 && n == 4 && strcmp(w[1], "weight") == 0) {
		char *end;
		long v;
		int old;
		errno = 0;
		v = strtol(w[3], &end, 10);
		if (errno != 0 || *end != '\0' || v < 0 || v > LB_WEIGHT_MAX) {
			evbuffer_add_printf(out,
			                    "error: weight must be 0..%d, not "
			                    "'%s'\n",
			                    LB_WEIGHT_MAX, w[3]);
			return;
		}
		if ((srv = find_server(rt, w[2], out)) == NULL)
			return;
		old = srv->weight;
		server_set_weight(srv, (int)v);
		evbuffer_add_printf(out, "ok: %s/%s weight %ld (was %d)\n",
		                    srv->be->conf->name, srv->conf->name, v,
		                    old);
		return;
	}
	if (strcmp(w[0], "shutdown") == 0 && n == 3 &&
	    strcmp(w[1], "sessions") == 0) {
		unsigned k;
		if ((srv = find_server(rt, w[2], out)) == NULL)
			return;
		k = session_close_server(srv, END_SHUTDOWN);
		evbuffer_add_printf(out, "ok: closed %u sessions of %s/%s\n", k,
		                    srv->be->conf->name, srv->conf->name);
		return;
	}
	if (strcmp(w[0], "reload") == 0 && n == 1) {
		char msg[512];
		struct evbuffer *detail = evbuffer_new();
		int rc = rt_reload(rt, msg, sizeof(msg), detail);

		/* The summary first: lbctl reads "error: " there. */
		evbuffer_add_printf(out, "%s: %s\n", rc == 0 ? "ok" : "error",
		                    msg);
		if (detail != NULL) {
			evbuffer_add_buffer(out, detail);
			evbuffer_free(detail);
		}
		return;
	}
	if (strcmp(w[0], "check") == 0 && n == 1) {
		cmd_check(rt, out);
		return;
	}
	evbuffer_add_printf(out, "error: unknown command '%s' (try help)\n",
	                    w[0]);
}

void
ctl_execute(struct rt *rt, const char *line, struct evbuffer *out)
{
	char buf[CTL_LINE_MAX + 1];

	snprintf(buf, sizeof(buf), "%s", line);
	execute(rt, buf, out);
	evbuffer_add(out, "\n", 1);
}

/* --- connections -------------------------------------------------------- */

static void
client_free(struct ctl_client *c)
{
	c->ctl->nclients--;
	bufferevent_free(c->bev);
	free(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;

	if (c->closing) {
		client_free(c);
		return;
	}
	bufferevent_enable(bev, EV_READ);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line;
	size_t n;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		if (n > CTL_LINE_MAX)
			evbuffer_add_printf(out,
			                    "error: command longer than %d "
			                    "bytes\n\n",
			                    CTL_LINE_MAX);
		else if (memchr(line, '\0', n) != NULL)
			evbuffer_add_printf(out,
			                    "error: NUL byte in command\n\n");
		else {
			rt_lock(c->ctl->rt);
			ctl_execute(c->ctl->rt, line, out);
			rt_unlock(c->ctl->rt);
		}
		free(line);
		if (evbuffer_get_length(out) > CTL_REPLY_MAX) {
			/* The client does not read: wait for the output. */
			bufferevent_disable(bev, EV_READ);
			return;
		}
	}
	if (evbuffer_get_length(in) > CTL_LINE_MAX) {
		evbuffer_add_printf(out,
		                    "error: command longer than %d bytes\n\n",
		                    CTL_LINE_MAX);
		c->closing = true;
		bufferevent_disable(bev, EV_READ);
	}
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		/* Half-closed after its command: reply, then close. */
		c->closing = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		client_free(c);
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct ctl *ctl = arg;
	struct ctl_client *c;
	struct timeval idle = {CTL_IDLE_MS / 1000, 0};

	(void)evl;
	(void)sa;
	(void)salen;
	ctl->paused = false;
	if (ctl->nclients >= CTL_CLIENTS_MAX ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("control socket: too many clients, refusing one");
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->bev =
	    bufferevent_socket_new(ctl->rt->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warn("control socket: bufferevent");
		close(fd);
		free(c);
		return;
	}
	ctl->nclients++;
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	                  client_event_cb, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *ctl = arg;

	(void)fd;
	(void)what;
	/* paused stays set until an accept works: one warning a pause. */
	evconnlistener_enable(ctl->evl);
}

/* Without this, libevent warns and retries at once: a level-triggered
 * listener out of descriptors spins at 100% CPU and floods the log. */
static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct ctl *ctl = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {CTL_ACCEPT_PAUSE_MS / 1000, 0};

	errno = err;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		log_warn("control socket %s: accept", ctl->path);
		return;
	}
	if (!ctl->paused)
		log_warn("control socket %s: accept, pausing for %d ms",
		         ctl->path, CTL_ACCEPT_PAUSE_MS);
	ctl->paused = true;
	evconnlistener_disable(evl);
	evtimer_add(ctl->resume, &tv);
}

struct ctl *
ctl_bind(struct rt *rt, const char *path)
{
	struct sockaddr_un sun;
	struct ctl *ctl;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket %s: path too long", path);
		return NULL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                 0)) < 0) {
		log_warn("control socket %s: socket", path);
		return NULL;
	}
	/* A socket file left by a dead daemon is replaced; a live one
	 * means another daemon uses this path. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		log_warnx("control socket %s: another daemon is answering "
		          "there",
		          path);
		close(fd);
		return NULL;
	}
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_warn("control socket %s: cannot remove the old file", path);
		return NULL;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                 0)) < 0) {
		log_warn("control socket %s: socket", path);
		return NULL;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		log_warn("control socket %s: bind", path);
		close(fd);
		return NULL;
	}
	umask(old);
	if (chmod(sun.sun_path, 0600) < 0) {
		log_warn("control socket %s: chmod", sun.sun_path);
		close(fd);
		unlink(sun.sun_path);
		return NULL;
	}
	if (listen(fd, 16) < 0) {
		log_warn("control socket %s: listen", sun.sun_path);
		close(fd);
		unlink(sun.sun_path);
		return NULL;
	}
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL ||
	    (ctl->path = strdup(path)) == NULL) {
		log_warn("control socket");
		free(ctl);
		close(fd);
		unlink(path);
		return NULL;
	}
	ctl->rt = rt;
	ctl->fd = fd;
	return ctl;
}

int
ctl_start(struct ctl *ctl, struct event_base *base)
{
	ctl->evl = evconnlistener_new(
	    base, accept_cb, ctl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    0, ctl->fd);
	if (ctl->evl == NULL) {
		log_warn("control socket %s", ctl->path);
		return -1;
	}
	ctl->fd = -1;
	if ((ctl->resume = evtimer_new(base, resume_cb, ctl)) == NULL) {
		log_warnx("control socket %s: cannot create a timer",
		          ctl->path);
		return -1;
	}
	evconnlistener_set_error_cb(ctl->evl, accept_error_cb);
	return 0;
}

void
ctl_free(struct ctl *ctl)
{
	if (ctl == NULL)
		return;
	if (ctl->evl != NULL)
		evconnlistener_free(ctl->evl);
	if (ctl->resume != NULL)
		event_free(ctl->resume);
	if (ctl->fd >= 0)
		close(ctl->fd);
	/* After a privilege drop or chroot the file may be out of reach:
	 * the next start replaces it. */
	if (unlink(ctl->path) < 0 && errno != ENOENT && errno != EACCES &&
	    errno != EPERM)
		log_warn("control socket %s: unlink", ctl->path);
	free(ctl->path);
	free(ctl);
}
