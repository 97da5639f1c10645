/* The status HTTP server (see stats.h), on libevent's evhttp, on the
 * control thread.  Each request takes a snapshot (snapshot.c: the pool's
 * lock for one copy), then renders from it with no lock held: the page
 * (page.c), the metrics (metrics.c), the timeline (history.c, which also
 * reads the health log's file). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "common.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "page.h"
#include "report.h"
#include "stats.h"

#define CT_HTML "text/html; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"
#define CT_SVG "image/svg+xml; charset=utf-8"
#define CSP                                                                    \
	"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' "       \
	"data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

struct stats {
	struct stats_env env;
	char *listen; /* as written, for messages */
	bool loopback;
	/* The credentials in force when the socket was bound: a reload
	 * that drops stats_auth while the socket stays on a non-loopback
	 * address keeps asking for them. */
	char *bind_auth;
	evutil_socket_t fd;   /* until stats_start */
	evutil_socket_t sock; /* its socket, for a takeover */
	struct evhttp *http;
	struct evconnlistener *evl;
};

static void
reply(struct evhttp_request *req, int code, const char *reason,
      const char *ctype, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (evhttp_add_header(h, "Content-Type", ctype) < 0 ||
	    evhttp_add_header(h, "Cache-Control", "no-store") < 0 ||
	    evhttp_add_header(h, "X-Content-Type-Options", "nosniff") < 0 ||
	    evhttp_add_header(h, "Content-Security-Policy", CSP) < 0 ||
	    evhttp_add_header(h, "Referrer-Policy", "no-referrer") < 0) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_send_reply(req, code, reason, body);
}

/* A short text reply. */
static void
reply_text(struct evhttp_request *req, int code, const char *reason,
           const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || evbuffer_add(b, text, strlen(text)) < 0) {
		if (b != NULL)
			evbuffer_free(b);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	reply(req, code, reason, CT_TEXT, b);
	evbuffer_free(b);
}

static void
reply_out(struct evhttp_request *req, int code, const char *reason,
          const char *ctype, struct out *o)
{
	if (o->err) {
		log_warnx("status page: out of memory building a reply");
		evhttp_send_error(req, 500, NULL);
		return;
	}
	reply(req, code, reason, ctype, o->b);
}

/* --- authentication ------------------------------------------------------- */

static void
base64(const char *in, char *out, size_t outlen)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	                          "rstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)in;
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n && o + 5 <= outlen; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* Compare without leaking where the first difference is. */
static bool
same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static bool
authorized(const struct stats *st, struct evhttp_request *req)
{
	const char *auth = (*st->env.src.cur)->cfg->global.stats_auth;
	const char *h;
	char want[512];

	if (auth[0] == '\0' && !st->loopback)
		auth = st->bind_auth;
	if (auth == NULL || auth[0] == '\0')
		return true;
	h = evhttp_find_header(evhttp_request_get_input_headers(req),
	                       "Authorization");
	if (h == NULL || strncasecmp(h, "Basic", 5) != 0 ||
	    (h[5] != ' ' && h[5] != '\t'))
		return false;
	for (h += 5; *h == ' ' || *h == '\t'; h++)
		;
	base64(auth, want, sizeof(want));
	return same_secret(h, want);
}

/* ?since=DURATION (default 24h).  Returns 0, or -1 with a reply sent. */
static int
query_since(struct evhttp_request *req, int64_t *since_ms)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	const char *v, *err = NULL;
	char msg[256];
	int rc = 0;

	*since_ms = STATS_DEFAULT_WINDOW_MS;
	if (q == NULL || q[0] == '\0')
		return 0;
	TAILQ_INIT(&params);
	if (evhttp_parse_query_str(q, &params) < 0) {
		reply_text(req, 400, "Bad Request", "malformed query string\n");
		return -1;
	}
	if ((v = evhttp_find_header(&params, "since")) != NULL &&
	    (report_parse_duration(v, since_ms, &err) < 0 || *since_ms <= 0)) {
		snprintf(msg, sizeof(msg),
		         "since: %s; e.g. since=90m, 24h or 7d (at most "
		         "365d)\n",
		         err != NULL ? err : "must be more than 0");
		reply_text(req, 400, "Bad Request", msg);
		rc = -1;
	}
	evhttp_clear_headers(&params);
	return rc;
}

/* --- pages -----------------------------------------------------------------
 */

/* A body built from a snapshot; 500 when out of memory. */
static bool
take(struct stats *st, struct evhttp_request *req, struct snapshot *snap,
     struct out *o)
{
	o->err = false;
	if ((o->b = evbuffer_new()) == NULL ||
	    snapshot_take(&st->env.src, snap) < 0) {
		if (o->b != NULL)
			evbuffer_free(o->b);
		log_warnx("status page: out of memory");
		evhttp_send_error(req, 500, NULL);
		return false;
	}
	return true;
}

static void
serve_page(struct stats *st, struct evhttp_request *req)
{
	struct snapshot snap;
	struct out o;
	int64_t since_ms;
	size_t svglen = 0;
	char *svg;

	if (query_since(req, &since_ms) < 0 || !take(st, req, &snap, &o))
		return;
	svg = history_timeline(&snap, st->env.hlog, since_ms, false, &svglen);
	page_render(&o, &snap, since_ms, svg, svglen);
	free(svg);
	snapshot_free(&snap);
	reply_out(req, 200, "OK", CT_HTML, &o);
	evbuffer_free(o.b);
}

static void
serve_timeline(struct stats *st, struct evhttp_request *req)
{
	struct snapshot snap;
	struct evbuffer *b = NULL;
	int64_t since_ms;
	size_t len = 0;
	char *svg = NULL;

	if (query_since(req, &since_ms) < 0)
		return;
	if (snapshot_take(&st->env.src, &snap) == 0) {
		svg =
		    history_timeline(&snap, st->env.hlog, since_ms, true, &len);
		snapshot_free(&snap);
	}
	if (svg == NULL || (b = evbuffer_new()) == NULL) {
		free(svg);
		log_warnx("status page: out of memory drawing the timeline");
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (evbuffer_add(b, svg, len) < 0)
		evhttp_send_error(req, 500, NULL);
	else
		reply(req, 200, "OK", CT_SVG, b);
	evbuffer_free(b);
	free(svg);
}

static void
health_problem(void *arg, const struct cfg_backend *be)
{
	outf(arg, "backend %s has no server UP\n", be->name);
}

static void
serve_health(struct stats *st, struct evhttp_request *req)
{
	const struct gen *g = *st->env.src.cur;
	struct out o = {evbuffer_new(), false};
	bool ok = g->cfg->nbackends > 0;

	if (o.b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	/* The same rule as lbctl check: not stopping, and every backend
	 * has a server that takes sessions. */
	if (g->cfg->nbackends == 0)
		outf(&o, "no backend\n");
	if (atomic_load(&st->env.src.cnt->stopping)) {
		outf(&o, "the daemon is stopping\n");
		ok = false;
	}
	if (pool_ready(st->env.src.pool, health_problem, &o) > 0)
		ok = false;
	if (ok)
		outf(&o, "ok\n");
	reply_out(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
	          CT_TEXT, &o);
	evbuffer_free(o.b);
}

static void
serve_metrics(struct stats *st, struct evhttp_request *req)
{
	struct snapshot snap;
	struct out o;

	if (!take(st, req, &snap, &o))
		return;
	metrics_render(&o, &snap);
	snapshot_free(&snap);
	reply_out(req, 200, "OK", CT_PROM, &o);
	evbuffer_free(o.b);
}

/* --- dispatch ------------------------------------------------------------- */

static void
handle(struct evhttp_request *req, void *arg)
{
	struct stats *st = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evkeyvalq *h;

	if (!authorized(st, req)) {
		h = evhttp_request_get_output_headers(req);
		if (evhttp_add_header(h, "WWW-Authenticate",
		                      "Basic realm=\"" LB_PROGRAM
		                      "\", charset=\"UTF-8\"") < 0) {
			evhttp_send_error(req, 500, NULL);
			return;
		}
		reply_text(req, 401, "Unauthorized",
		           "authentication required\n");
		return;
	}
	if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
		serve_page(st, req);
	else if (strcmp(path, "/metrics") == 0)
		serve_metrics(st, req);
	else if (strcmp(path, "/timeline") == 0)
		serve_timeline(st, req);
	else if (strcmp(path, "/health") == 0)
		serve_health(st, req);
	else
		reply_text(
		    req, 404, "Not Found",
		    "not found: try /, /metrics, /timeline or /health\n");
}

/* --- socket --------------------------------------------------------------- */

/* The socket for g->stats_listen: a new one, or -1 after logging. */
static int
listen_on(const struct cfg_global *g)
{
	const struct cfg_addr *a = &g->stats_addr;
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	            0);
	if (fd < 0) {
		log_warn("status page %s: socket", g->stats_listen);
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		log_warn("status page %s: SO_REUSEADDR", g->stats_listen);
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		log_warn("status page: cannot listen on %s", g->stats_listen);
		close(fd);
		return -1;
	}
	if (listen(fd, 64) < 0) {
		log_warn("status page: cannot listen on %s", g->stats_listen);
		close(fd);
		return -1;
	}
	return fd;
}

struct stats *
stats_bind(const struct cfg_global *g, struct sock_inherit *inh)
{
	const struct cfg_addr *a = &g->stats_addr;
	struct stats *st;
	int fd;

	if (a->len == 0) {
		log_warnx("status page %s: no address", g->stats_listen);
		return NULL;
	}
	if ((fd = sock_inherit_take(inh, (const struct sockaddr *)&a->ss)) >= 0)
		log_info("status page %s: listening socket taken over",
		         g->stats_listen);
	else if ((fd = listen_on(g)) < 0)
		return NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->listen = strdup(g->stats_listen)) == NULL ||
	    (st->bind_auth = strdup(g->stats_auth)) == NULL) {
		log_warn("status page");
		if (st != NULL)
			free(st->listen);
		free(st);
		close(fd);
		return NULL;
	}
	st->fd = fd;
	st->sock = fd;
	st->loopback = cfg_is_loopback(&a->ss);
	return st;
}

int
stats_sock(const struct stats *st)
{
	return st != NULL ? st->sock : -1;
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	if (evconnlistener_enable(arg) < 0)
		log_warnx("status page: cannot resume accepting");
}

/* accept() failed: out of descriptors or memory pauses accepting for a
 * while instead of spinning on a listener that stays readable.  (arg is
 * evhttp's; the timer is a one-shot event of the base, which stats_free
 * outlives only at exit, with the loop stopped.) */
static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {STATS_ACCEPT_PAUSE_MS / 1000,
	                     (STATS_ACCEPT_PAUSE_MS % 1000) * 1000};

	(void)arg;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		log_warnx("status page: accept: %s: pausing for %d ms",
		          strerror(err), STATS_ACCEPT_PAUSE_MS);
		if (evconnlistener_disable(evl) < 0 ||
		    event_base_once(evconnlistener_get_base(evl), -1,
		                    EV_TIMEOUT, resume_cb, evl, &tv) < 0)
			log_warnx("status page: cannot pause accepting");
		return;
	}
	log_warnx("status page: accept: %s", strerror(err));
}

int
stats_start(struct stats *st, struct event_base *base,
            const struct stats_env *env)
{
	st->env = *env;
	if ((st->http = evhttp_new(base)) == NULL) {
		log_warnx("status page %s: cannot create the HTTP server",
		          st->listen);
		return -1;
	}
	evhttp_set_timeout(st->http, STATS_TIMEOUT_S);
	evhttp_set_max_headers_size(st->http, STATS_MAX_HEADERS);
	evhttp_set_max_body_size(st->http, STATS_MAX_BODY);
	evhttp_set_allowed_methods(st->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(st->http, handle, st);
	st->evl = evconnlistener_new(
	    base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
	    st->fd);
	if (st->evl == NULL) {
		log_warnx("status page %s: cannot watch the socket",
		          st->listen);
		return -1;
	}
	st->fd = -1; /* the listener owns it now */
	if (evhttp_bind_listener(st->http, st->evl) == NULL) {
		log_warnx("status page %s: cannot attach the HTTP server",
		          st->listen);
		evconnlistener_free(st->evl);
		st->evl = NULL;
		return -1;
	}
	/* evhttp sets the accept callback, not the error one. */
	evconnlistener_set_error_cb(st->evl, accept_error_cb);
	log_info("status page on http://%s/ (metrics at /metrics)%s",
	         st->listen,
	         (*env->src.cur)->cfg->global.stats_auth[0] != '\0'
	             ? ", with basic authentication"
	             : "");
	return 0;
}

void
stats_free(struct stats *st)
{
	if (st == NULL)
		return;
	/* evhttp_free frees the listener bound to it (and its socket). */
	if (st->http != NULL)
		evhttp_free(st->http);
	else if (st->evl != NULL)
		evconnlistener_free(st->evl);
	if (st->fd >= 0)
		close(st->fd);
	free(st->listen);
	free(st->bind_auth);
	free(st);
}
