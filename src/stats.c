/* The status HTTP server: status page, Prometheus metrics, health
 * timeline and health probe (see stats.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "backend.h"
#include "cfg.h"
#include "healthlog.h"
#include "listener.h"
#include "log.h"
#include "report.h"
#include "rt.h"
#include "server.h"
#include "stats.h"
#include "timeline.h"

#define CT_HTML "text/html; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"
#define CT_SVG "image/svg+xml; charset=utf-8"
#define CSP                                                                    \
	"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' "       \
	"data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

struct stats {
	struct rt *rt;
	char *listen; /* as written, for messages */
	bool loopback;
	/* The credentials in force when the socket was bound: a reload
	 * that drops stats_auth while the socket stays on a non-loopback
	 * address keeps asking for them. */
	char *bind_auth;
	evutil_socket_t fd; /* until stats_start */
	struct evhttp *http;
	struct evconnlistener *evl;
};

/* --- output helpers ------------------------------------------------------- */

/* A response body under construction; err records any failed append. */
struct out {
	struct evbuffer *b;
	bool err;
};

static void __attribute__((format(printf, 2, 3)))
outf(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->b, fmt, ap) < 0)
		o->err = true;
	va_end(ap);
}

static void
out_put(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	if (evbuffer_add(o->b, p, n) < 0)
		o->err = true;
}

/* Text escaped for HTML. */
static void
esc(struct out *o, const char *s)
{
	timeline_escape(s, out_put, o);
}

/* A Prometheus label value: \ " and newline escaped, other control
 * characters as spaces, invalid UTF-8 as U+FFFD. */
static void
label(struct out *o, const char *s)
{
	const char *run = s;

	while (*s != '\0') {
		const char *rep = NULL;
		size_t adv = 1;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '"')
			rep = "\\\"";
		else if (*s == '\n')
			rep = "\\n";
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			rep = " ";
		else if ((unsigned char)*s >= 0x80 &&
		         (adv = timeline_utf8_len(s)) == 0) {
			rep = "\xef\xbf\xbd";
			adv = 1;
		}
		if (rep != NULL) {
			out_put(o, run, (size_t)(s - run));
			out_put(o, rep, strlen(rep));
			s += adv;
			run = s;
		} else
			s += adv;
	}
	out_put(o, run, (size_t)(s - run));
}

static int64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

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
	const char *auth = st->rt->cfg->global.stats_auth;
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

/* --- views of the runtime ------------------------------------------------- */

/* What a server shows: "UP", "DOWN", "DRAIN", "MAINT". */
static enum tl_state
server_tl_state(const struct server *s)
{
	if (s->admin == SRV_MAINT)
		return TL_MAINT;
	if (!s->up)
		return TL_DOWN;
	if (s->admin == SRV_DRAIN)
		return TL_DRAIN;
	return TL_UP;
}

/* The same rule as `lbctl check`: UP (or DRAIN) and not in maintenance. */
static bool
server_alive(const struct server *s)
{
	return s->up && s->admin != SRV_MAINT;
}

static bool
backend_alive(const struct backend *be)
{
	unsigned active, backup;

	server_count_alive(be, &active, &backup);
	return active + backup > 0;
}

/* CSS class of server_state_text's text. */
static const char *
state_css(const char *state)
{
	if (strcmp(state, "UP") == 0)
		return "st-up";
	if (strcmp(state, "DOWN") == 0)
		return "st-down";
	if (strcmp(state, "DRAIN") == 0)
		return "st-drain";
	if (strcmp(state, "MAINT") == 0)
		return "st-maint";
	if (strncmp(state, "UP ", 3) == 0)
		return "st-going-down";
	return "st-going-up";
}

/* --- health timeline ------------------------------------------------------ */

/* The last STATS_FILE_TAIL bytes of the health log, from a line start;
 * NULL when it cannot be read (syslog only, chroot, removed). */
static char *
read_tail(const char *path, size_t *len)
{
	struct stat sb;
	char *buf = NULL, *nl;
	off_t off;
	size_t want, got = 0;
	int fd;

	if (path[0] == '\0')
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		goto fail;
	off = sb.st_size > STATS_FILE_TAIL ? sb.st_size - STATS_FILE_TAIL : 0;
	want = (size_t)(sb.st_size - off);
	if ((buf = malloc(want + 1)) == NULL)
		goto fail;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break; /* truncated meanwhile */
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (off > 0) {
		/* Started mid-line: skip to the next one. */
		if ((nl = memchr(buf, '\n', got)) == NULL)
			got = 0;
		else {
			got -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, got);
		}
		buf[got] = '\0';
	}
	*len = got;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* Time of a log line (its first field), or INT64_MAX. */
static int64_t
line_time(const char *line)
{
	char ts[REPORT_TIME_MAX];
	size_t n = strcspn(line, " \t\r\n");
	int64_t t;

	if (n == 0 || n >= sizeof(ts))
		return INT64_MAX;
	memcpy(ts, line, n);
	ts[n] = '\0';
	return report_parse_time(ts, &t) == 0 ? t : INT64_MAX;
}

struct ring_feed {
	struct timeline *tl;
	int64_t before; /* only lines older than the file's first */
	bool err;
};

static void
ring_line(const char *line, void *arg)
{
	struct ring_feed *f = arg;

	if (!f->err && line_time(line) < f->before &&
	    timeline_add_line(f->tl, line) < 0)
		f->err = true;
}

/* Feed the health history: lines kept in memory that are older than the
 * file's (a rotated log), then the file's tail.  Returns 0 or -1. */
static int
feed_history(struct stats *st, struct timeline *tl)
{
	struct rt *rt = st->rt;
	struct ring_feed f = {tl, INT64_MAX, false};
	size_t len = 0;
	char *buf = read_tail(rt->cfg->global.health_log, &len);
	char *p, *end;

	if (buf != NULL) {
		for (p = buf; p < buf + len && f.before == INT64_MAX;) {
			f.before = line_time(p);
			if ((end = strchr(p, '\n')) == NULL)
				break;
			p = end + 1;
		}
	}
	if (rt->hlog != NULL)
		healthlog_tail(rt->hlog, 0, ring_line, &f);
	for (p = buf; !f.err && p != NULL && p < buf + len; p = end + 1) {
		if ((end = strchr(p, '\n')) == NULL)
			end = buf + len;
		*end = '\0';
		if (timeline_add_line(tl, p) < 0)
			f.err = true;
	}
	free(buf);
	return f.err ? -1 : 0;
}

/* The picture of the last since_ms, NULL when out of memory. */
static char *
make_timeline(struct stats *st, int64_t since_ms, bool standalone, size_t *len)
{
	struct rt *rt = st->rt;
	int64_t now = wall_ms();
	struct timeline *tl = timeline_new(now - since_ms, now);
	char *svg = NULL;

	if (tl == NULL)
		return NULL;
	for (size_t b = 0; b < rt->nbackends; b++) {
		struct backend *be = &rt->backends[b];

		for (size_t i = 0; i < be->nservers; i++)
			if (timeline_lane(tl, be->conf->name,
			                  be->servers[i].conf->name,
			                  server_tl_state(&be->servers[i])) < 0)
				goto out;
	}
	if (feed_history(st, tl) == 0)
		svg = timeline_svg(tl, standalone, len);
out:
	timeline_free(tl);
	return svg;
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

/* --- / -------------------------------------------------------------------- */

/* A window for people ("24 hours", "7 days", "90 minutes") and for the
 * query string ("24h"). */
static void
window_text(int64_t ms, char *human, size_t hlen, char *query, size_t qlen)
{
	static const struct {
		int64_t ms;
		const char *unit, *word;
	} units[] = {{86400000, "d", "day"},
	             {3600000, "h", "hour"},
	             {60000, "m", "minute"},
	             {1000, "s", "second"}};

	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (ms % units[i].ms == 0) {
			long long n = ms / units[i].ms;

			snprintf(human, hlen, "%lld %s%s", n, units[i].word,
			         n == 1 ? "" : "s");
			snprintf(query, qlen, "%lld%s", n, units[i].unit);
			return;
		}
	report_format_duration(ms, human, hlen);
	snprintf(query, qlen, "%lldms", (long long)ms);
}

static const char page_css[] =
    "body{font-family:sans-serif;font-size:13px;margin:16px;color:#222;"
    "background:#f7f7f7}"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px}"
    "table{border-collapse:collapse;background:#fff;margin-bottom:6px}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;"
    "white-space:nowrap}th{background:#ececec}.l{text-align:left}"
    "td.st{font-weight:bold;text-align:center;color:#fff}"
    ".st-up{background:#3a9a4f}.st-down{background:#d23c32}"
    ".st-drain{background:#e6a118}.st-maint{background:#5b7fb6}"
    ".st-going-down{background:#e07b22}.st-going-up{background:#b5524a}"
    "td.check{text-align:left;white-space:normal;min-width:160px;"
    "max-width:360px}"
    ".be-up{color:#2e7d3e}.be-down{color:#d23c32}.meta{color:#555}"
    ".warn{color:#b35c00;font-weight:bold}"
    ".expired{color:#d23c32;font-weight:bold}"
    ".timeline{overflow-x:auto}";

static void
page_frontends(struct out *o, const struct rt *rt)
{
	outf(o, "<h2>Frontends</h2>\n<table id=\"frontends\">\n<tr>"
	        "<th class=\"l\">Frontend</th><th class=\"l\">Listening "
	        "on</th><th class=\"l\">Backend</th><th>Sessions</th>"
	        "<th>Total</th><th>Unavailable replies</th><th>Bytes in</th>"
	        "<th>Bytes out</th></tr>\n");
	for (size_t f = 0; f < rt->nfrontends; f++) {
		const struct frontend *fe = &rt->frontends[f];

		outf(o, "<tr class=\"frontend\" data-frontend=\"");
		esc(o, fe->conf->name);
		outf(o, "\"><td class=\"l\">");
		esc(o, fe->conf->name);
		outf(o, "</td><td class=\"l\">");
		for (size_t i = 0; i < fe->conf->nbinds; i++) {
			if (i > 0)
				outf(o, "<br>");
			esc(o, fe->conf->binds[i].text);
		}
		outf(o, "</td><td class=\"l\"><a href=\"#backend-");
		esc(o, fe->conf->backend_name);
		outf(o, "\">");
		esc(o, fe->conf->backend_name);
		outf(o,
		     "</a></td><td>%u</td><td>%" PRIu64 "</td><td>%" PRIu64
		     "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n",
		     fe->cur_sess, fe->total_sess, fe->refused, fe->bytes_in,
		     fe->bytes_out);
	}
	outf(o, "</table>\n");
}

static void
cert_cell(struct out *o, const struct server *s, time_t now)
{
	char when[32];
	long days;
	uint64_t warn_s = s->be->conf->check.cert_expiry_warn_ms / 1000;

	if (s->cert_not_after == 0) {
		outf(o, "<td>-</td>");
		return;
	}
	report_format_time_text((int64_t)s->cert_not_after * 1000, when,
	                        sizeof(when));
	days = (long)((s->cert_not_after - now) / 86400);
	if (s->cert_not_after <= now)
		outf(o, "<td class=\"expired\">%s UTC (expired)</td>", when);
	else
		outf(o, "<td%s>%s UTC (%ld day%s)</td>",
		     s->cert_not_after - now <= (time_t)warn_s
		         ? " class=\"warn\""
		         : "",
		     when, days, days == 1 ? "" : "s");
}

static void
page_server(struct out *o, const struct server *s, time_t now)
{
	char state[32], since[32], lim[24];
	unsigned limit = server_limit(s);

	server_state_text(s, state, sizeof(state));
	report_format_duration(
	    (int64_t)(now > s->last_change ? now - s->last_change : 0) * 1000,
	    since, sizeof(since));
	if (limit == 0)
		snprintf(lim, sizeof(lim), "-");
	else
		snprintf(lim, sizeof(lim), "%u", limit);
	outf(o, "<tr class=\"server\" data-server=\"");
	esc(o, s->conf->name);
	outf(o, "\" data-state=\"%s\"><td class=\"l\">", state);
	esc(o, s->conf->name);
	if (s->conf->backup)
		outf(o, " (backup)");
	outf(o, "</td><td class=\"l\">");
	esc(o, s->conf->addr.text);
	outf(o,
	     "</td><td class=\"st %s\">%s</td><td>%d</td><td>%u</td>"
	     "<td>%u</td><td>%" PRIu64 "</td><td>%s</td><td>%" PRIu64
	     "</td><td>%" PRIu64 "</td><td class=\"check\">",
	     state_css(state), state, s->weight, s->cur_sess, s->max_sess,
	     s->total_sess, lim, s->bytes_in, s->bytes_out);
	esc(o, s->last_check);
	outf(o, "</td><td>%" PRIu64 "</td><td>%s</td>", s->checks, since);
	cert_cell(o, s, now);
	outf(o, "</tr>\n");
}

static void
page_backend(struct out *o, const struct backend *be, time_t now)
{
	unsigned active, backup;
	const struct cfg_backend *c = be->conf;

	server_count_alive(be, &active, &backup);
	outf(o, "<h2 id=\"backend-");
	esc(o, c->name);
	outf(o, "\">Backend ");
	esc(o, c->name);
	if (active + backup == 0)
		outf(o, ": <span class=\"be-down\">no server UP</span>");
	else
		outf(o, ": <span class=\"be-up\">%u of %zu servers UP%s</span>",
		     active + backup, be->nservers,
		     active == 0 ? " (backup only)" : "");
	outf(o,
	     "</h2>\n<p class=\"meta\">balance %s &middot; sessions %u "
	     "&middot; queue %u &middot; connect retries %" PRIu64,
	     cfg_algo_name(c->balance), be->cur_sess, be->queued, be->retries);
	if (c->has_check)
		outf(o, " &middot; %s check every %" PRIu64 " ms",
		     c->check.type == CHECK_TCP ? "tcp" : "smtp",
		     c->check.interval_ms);
	else
		outf(o, " &middot; no health check");
	outf(o, "</p>\n<table class=\"servers\" data-backend=\"");
	esc(o, c->name);
	outf(o, "\">\n<tr><th class=\"l\">Server</th><th class=\"l\">"
	        "Address</th><th>State</th><th>Weight</th><th>Sessions</th>"
	        "<th>Max</th><th>Total</th><th>Limit</th><th>Bytes in</th>"
	        "<th>Bytes out</th><th class=\"l\">Last check</th>"
	        "<th>Checks</th><th>Since change</th><th>Certificate "
	        "expiry</th></tr>\n");
	for (size_t i = 0; i < be->nservers; i++)
		page_server(o, &be->servers[i], now);
	outf(o, "</table>\n");
}

static void
serve_page(struct stats *st, struct evhttp_request *req)
{
	struct rt *rt = st->rt;
	struct out o = {evbuffer_new(), false};
	time_t now = time(NULL);
	char up[32], gen[32], win[48], winq[32];
	int64_t since_ms;
	char *svg;
	size_t svglen = 0;

	if (o.b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (query_since(req, &since_ms) < 0) {
		evbuffer_free(o.b);
		return;
	}
	report_format_duration((int64_t)(now - rt->started) * 1000, up,
	                       sizeof(up));
	report_format_time_text((int64_t)now * 1000, gen, sizeof(gen));
	window_text(since_ms, win, sizeof(win), winq, sizeof(winq));
	outf(&o,
	     "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	     "charset=\"utf-8\">\n<meta http-equiv=\"refresh\" "
	     "content=\"%d\">\n<meta name=\"viewport\" "
	     "content=\"width=device-width, initial-scale=1\">\n"
	     "<title>%s status</title>\n<style>%s</style>\n</head>"
	     "<body>\n<h1>%s</h1>\n<p class=\"meta\" id=\"info\">version "
	     "%s &middot; pid %ld &middot; up %s &middot; sessions %u of %u "
	     "(%" PRIu64 " since start) &middot; reloads %u%s &middot; "
	     "%s UTC, refreshed every %d s &middot; <a "
	     "href=\"metrics\">metrics</a> &middot; <a "
	     "href=\"health\">health</a></p>\n",
	     STATS_REFRESH_S, LB_PROGRAM, page_css, LB_PROGRAM, PACKAGE_VERSION,
	     (long)getpid(), up, rt->cur_sess, rt->max_sess, rt->total_sess,
	     rt->reloads, rt->stopping ? " &middot; stopping" : "", gen,
	     STATS_REFRESH_S);
	page_frontends(&o, rt);
	for (size_t b = 0; b < rt->nbackends; b++)
		page_backend(&o, &rt->backends[b], now);
	outf(&o,
	     "<h2 id=\"timeline\">Health timeline (last %s)</h2>\n<div "
	     "class=\"timeline\">\n",
	     win);
	if ((svg = make_timeline(st, since_ms, false, &svglen)) == NULL)
		outf(&o, "<p>(the timeline could not be drawn: out of "
		         "memory)</p>\n");
	else {
		out_put(&o, svg, svglen);
		free(svg);
	}
	outf(&o,
	     "</div>\n<p class=\"meta\">The same picture alone: <a "
	     "href=\"timeline?since=%s\">timeline</a> (?since=7d for a "
	     "week, here too); hover a band for its times and the "
	     "failure.</p>\n</body></html>\n",
	     winq);
	reply_out(req, 200, "OK", CT_HTML, &o);
	evbuffer_free(o.b);
}

/* --- /timeline ------------------------------------------------------------ */

static void
serve_timeline(struct stats *st, struct evhttp_request *req)
{
	struct evbuffer *b;
	int64_t since_ms;
	size_t len = 0;
	char *svg;

	if (query_since(req, &since_ms) < 0)
		return;
	if ((svg = make_timeline(st, since_ms, true, &len)) == NULL ||
	    (b = evbuffer_new()) == NULL) {
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

/* --- /health -------------------------------------------------------------- */

static void
serve_health(struct stats *st, struct evhttp_request *req)
{
	struct rt *rt = st->rt;
	struct out o = {evbuffer_new(), false};
	bool ok = rt->nbackends > 0;

	if (o.b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (rt->nbackends == 0)
		outf(&o, "no backend\n");
	if (rt_ready(rt, "", o.b) > 0)
		ok = false;
	if (ok)
		outf(&o, "ok\n");
	reply_out(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
	          CT_TEXT, &o);
	evbuffer_free(o.b);
}

/* --- /metrics ------------------------------------------------------------- */

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
fe_sample(struct out *o, const char *name, const struct frontend *fe)
{
	outf(o, "%s{frontend=\"", name);
	label(o, fe->conf->name);
	outf(o, "\"} ");
}

static void
be_sample(struct out *o, const char *name, const struct backend *be)
{
	outf(o, "%s{backend=\"", name);
	label(o, be->conf->name);
	outf(o, "\"} ");
}

/* name{backend="B",server="S" (no closing brace: more labels may
 * follow). */
static void
srv_labels(struct out *o, const char *name, const struct server *s)
{
	outf(o, "%s{backend=\"", name);
	label(o, s->be->conf->name);
	outf(o, "\",server=\"");
	label(o, s->conf->name);
	outf(o, "\"");
}

enum srv_metric {
	SM_UP,
	SM_WEIGHT,
	SM_CUR,
	SM_MAX,
	SM_TOTAL,
	SM_BYTES_IN,
	SM_BYTES_OUT,
	SM_CONNECT_FAIL,
	SM_CHECKS,
	SM_CHECK_SECONDS,
	SM_LAST_CHANGE,
};

static const struct {
	const char *name, *type, *help;
} srv_metrics[] = {
    [SM_UP] = {"load_balancer_server_up", "gauge",
               "1 when the server is UP (checks pass or it is not "
               "checked) and not in maintenance, else 0."},
    [SM_WEIGHT] = {"load_balancer_server_weight", "gauge",
                   "Current weight (0-256)."},
    [SM_CUR] = {"load_balancer_server_sessions_current", "gauge",
                "Sessions holding a slot on the server."},
    [SM_MAX] = {"load_balancer_server_sessions_max", "gauge",
                "Highest number of concurrent sessions seen."},
    [SM_TOTAL] = {"load_balancer_server_sessions_total", "counter",
                  "Sessions given to the server."},
    [SM_BYTES_IN] = {"load_balancer_server_bytes_in_total", "counter",
                     "Bytes received from clients in the server's "
                     "finished sessions."},
    [SM_BYTES_OUT] = {"load_balancer_server_bytes_out_total", "counter",
                      "Bytes sent to clients in the server's finished "
                      "sessions."},
    [SM_CONNECT_FAIL] = {"load_balancer_server_connect_failures_total",
                         "counter", "Failed connection attempts of sessions."},
    [SM_CHECKS] = {"load_balancer_server_checks_total", "counter",
                   "Health checks run."},
    [SM_CHECK_SECONDS] = {"load_balancer_server_check_duration_seconds",
                          "gauge", "Duration of the last health check."},
    [SM_LAST_CHANGE] = {"load_balancer_server_last_change_timestamp_seconds",
                        "gauge",
                        "Unix time of the server's last state change."},
};

static void
srv_value(struct out *o, enum srv_metric m, const struct server *s)
{
	switch (m) {
	case SM_UP:
		outf(o, "%d\n", server_alive(s) ? 1 : 0);
		break;
	case SM_WEIGHT:
		outf(o, "%d\n", s->weight);
		break;
	case SM_CUR:
		outf(o, "%u\n", s->cur_sess);
		break;
	case SM_MAX:
		outf(o, "%u\n", s->max_sess);
		break;
	case SM_TOTAL:
		outf(o, "%" PRIu64 "\n", s->total_sess);
		break;
	case SM_BYTES_IN:
		outf(o, "%" PRIu64 "\n", s->bytes_in);
		break;
	case SM_BYTES_OUT:
		outf(o, "%" PRIu64 "\n", s->bytes_out);
		break;
	case SM_CONNECT_FAIL:
		outf(o, "%" PRIu64 "\n", s->connect_failures);
		break;
	case SM_CHECKS:
		outf(o, "%" PRIu64 "\n", s->checks);
		break;
	case SM_CHECK_SECONDS:
		outf(o, "%" PRIu64 ".%03u\n", s->last_check_ms / 1000,
		     (unsigned)(s->last_check_ms % 1000));
		break;
	case SM_LAST_CHANGE:
		outf(o, "%lld\n", (long long)s->last_change);
		break;
	}
}

static void
metrics_servers(struct out *o, const struct rt *rt)
{
	static const char *const states[] = {"UP", "DOWN", "DRAIN", "MAINT"};

	for (size_t m = 0; m < ARRAY_SIZE(srv_metrics); m++) {
		family(o, srv_metrics[m].name, srv_metrics[m].type,
		       srv_metrics[m].help);
		for (size_t b = 0; b < rt->nbackends; b++)
			for (size_t i = 0; i < rt->backends[b].nservers; i++) {
				const struct server *s =
				    &rt->backends[b].servers[i];

				if ((m == SM_CHECKS || m == SM_CHECK_SECONDS) &&
				    !s->checked)
					continue;
				srv_labels(o, srv_metrics[m].name, s);
				outf(o, "} ");
				srv_value(o, (enum srv_metric)m, s);
			}
	}

	family(o, "load_balancer_server_state", "gauge",
	       "1 for the server's current state (UP, DOWN, DRAIN, MAINT), 0 "
	       "for the others.");
	for (size_t b = 0; b < rt->nbackends; b++)
		for (size_t i = 0; i < rt->backends[b].nservers; i++) {
			const struct server *s = &rt->backends[b].servers[i];
			const char *cur =
			    timeline_state_name(server_tl_state(s));

			for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
				srv_labels(o, "load_balancer_server_state", s);
				outf(o, ",state=\"%s\"} %d\n", states[k],
				     strcmp(cur, states[k]) == 0);
			}
		}

	family(o, "load_balancer_server_check_failures_total", "counter",
	       "Failed health checks by the step that failed (connect "
	       "greeting helo starttls tls ehlo quit).");
	for (size_t b = 0; b < rt->nbackends; b++)
		for (size_t i = 0; i < rt->backends[b].nservers; i++) {
			const struct server *s = &rt->backends[b].servers[i];

			if (!s->checked)
				continue;
			for (size_t k = 0; k < SERVER_CHECK_STEPS; k++) {
				srv_labels(
				    o,
				    "load_balancer_server_check_failures_total",
				    s);
				outf(o, ",step=\"%s\"} %" PRIu64 "\n",
				     server_check_steps[k],
				     s->check_failures[k]);
			}
		}

	family(o, "load_balancer_server_cert_expiry_timestamp_seconds", "gauge",
	       "Unix time when the server's TLS certificate expires (STARTTLS "
	       "checks).");
	for (size_t b = 0; b < rt->nbackends; b++)
		for (size_t i = 0; i < rt->backends[b].nservers; i++) {
			const struct server *s = &rt->backends[b].servers[i];

			if (s->cert_not_after == 0)
				continue;
			srv_labels(o,
			           "load_balancer_server_cert_expiry_timestamp_"
			           "seconds",
			           s);
			outf(o, "} %lld\n", (long long)s->cert_not_after);
		}
}

static void
serve_metrics(struct stats *st, struct evhttp_request *req)
{
	struct rt *rt = st->rt;
	struct out o = {evbuffer_new(), false};

	if (o.b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	family(&o, "load_balancer_info", "gauge",
	       "Always 1; the version as a label.");
	outf(&o, "load_balancer_info{version=\"");
	label(&o, PACKAGE_VERSION);
	outf(&o, "\"} 1\n");
	family(&o, "load_balancer_start_time_seconds", "gauge",
	       "Unix time when the daemon started.");
	outf(&o, "load_balancer_start_time_seconds %lld\n",
	     (long long)rt->started);
	family(&o, "load_balancer_sessions_current", "gauge",
	       "Client sessions open now.");
	outf(&o, "load_balancer_sessions_current %u\n", rt->cur_sess);
	family(&o, "load_balancer_sessions_limit", "gauge",
	       "Effective global maxconn.");
	outf(&o, "load_balancer_sessions_limit %u\n", rt->max_sess);
	family(&o, "load_balancer_sessions_total", "counter",
	       "Client sessions accepted.");
	outf(&o, "load_balancer_sessions_total %" PRIu64 "\n", rt->total_sess);
	family(&o, "load_balancer_reloads_total", "counter",
	       "Configuration reloads applied.");
	outf(&o, "load_balancer_reloads_total %u\n", rt->reloads);
	family(&o, "load_balancer_worker_sessions_current", "gauge",
	       "Client sessions open now on the worker thread.");
	for (unsigned w = 0; w < rt->nworkers; w++)
		outf(
		    &o,
		    "load_balancer_worker_sessions_current{worker=\"%u\"} %u\n",
		    w, rt->workers[w].nsess);
	family(&o, "load_balancer_worker_sessions_total", "counter",
	       "Client sessions given to the worker thread.");
	for (unsigned w = 0; w < rt->nworkers; w++)
		outf(&o,
		     "load_balancer_worker_sessions_total{worker=\"%u\"} "
		     "%" PRIu64 "\n",
		     w, rt->workers[w].total);

	family(&o, "load_balancer_frontend_sessions_current", "gauge",
	       "Client sessions open now on the frontend.");
	for (size_t f = 0; f < rt->nfrontends; f++) {
		fe_sample(&o, "load_balancer_frontend_sessions_current",
		          &rt->frontends[f]);
		outf(&o, "%u\n", rt->frontends[f].cur_sess);
	}
	family(&o, "load_balancer_frontend_sessions_total", "counter",
	       "Client sessions accepted by the frontend.");
	for (size_t f = 0; f < rt->nfrontends; f++) {
		fe_sample(&o, "load_balancer_frontend_sessions_total",
		          &rt->frontends[f]);
		outf(&o, "%" PRIu64 "\n", rt->frontends[f].total_sess);
	}
	family(&o, "load_balancer_frontend_bytes_in_total", "counter",
	       "Bytes received from clients in finished sessions.");
	for (size_t f = 0; f < rt->nfrontends; f++) {
		fe_sample(&o, "load_balancer_frontend_bytes_in_total",
		          &rt->frontends[f]);
		outf(&o, "%" PRIu64 "\n", rt->frontends[f].bytes_in);
	}
	family(&o, "load_balancer_frontend_bytes_out_total", "counter",
	       "Bytes sent to clients in finished sessions (unavailable "
	       "replies included).");
	for (size_t f = 0; f < rt->nfrontends; f++) {
		fe_sample(&o, "load_balancer_frontend_bytes_out_total",
		          &rt->frontends[f]);
		outf(&o, "%" PRIu64 "\n", rt->frontends[f].bytes_out);
	}
	family(&o, "load_balancer_frontend_unavailable_replies_total",
	       "counter",
	       "Clients turned away with unavailable_reply (no server, queue "
	       "timeout, retries spent).");
	for (size_t f = 0; f < rt->nfrontends; f++) {
		fe_sample(&o,
		          "load_balancer_frontend_unavailable_replies_total",
		          &rt->frontends[f]);
		outf(&o, "%" PRIu64 "\n", rt->frontends[f].refused);
	}

	family(&o, "load_balancer_backend_up", "gauge",
	       "1 when some server of the backend is UP, else 0.");
	for (size_t b = 0; b < rt->nbackends; b++) {
		be_sample(&o, "load_balancer_backend_up", &rt->backends[b]);
		outf(&o, "%d\n", backend_alive(&rt->backends[b]) ? 1 : 0);
	}
	family(&o, "load_balancer_backend_servers_up", "gauge",
	       "Servers of the backend that are UP and not in maintenance.");
	for (size_t b = 0; b < rt->nbackends; b++) {
		unsigned active, backup;

		server_count_alive(&rt->backends[b], &active, &backup);
		be_sample(&o, "load_balancer_backend_servers_up",
		          &rt->backends[b]);
		outf(&o, "%u\n", active + backup);
	}
	family(&o, "load_balancer_backend_sessions_current", "gauge",
	       "Sessions with a server of the backend.");
	for (size_t b = 0; b < rt->nbackends; b++) {
		be_sample(&o, "load_balancer_backend_sessions_current",
		          &rt->backends[b]);
		outf(&o, "%u\n", rt->backends[b].cur_sess);
	}
	family(&o, "load_balancer_backend_queue_length", "gauge",
	       "Clients waiting in the backend queue for a server slot.");
	for (size_t b = 0; b < rt->nbackends; b++) {
		be_sample(&o, "load_balancer_backend_queue_length",
		          &rt->backends[b]);
		outf(&o, "%u\n", rt->backends[b].queued);
	}
	family(&o, "load_balancer_backend_connect_retries_total", "counter",
	       "Connection attempts repeated after a failure.");
	for (size_t b = 0; b < rt->nbackends; b++) {
		be_sample(&o, "load_balancer_backend_connect_retries_total",
		          &rt->backends[b]);
		outf(&o, "%" PRIu64 "\n", rt->backends[b].retries);
	}
	metrics_servers(&o, rt);
	reply_out(req, 200, "OK", CT_PROM, &o);
	evbuffer_free(o.b);
}

/* --- dispatch ------------------------------------------------------------- */

static void handle_locked(struct evhttp_request *req, struct stats *st);

/* Everything a page shows is shared with the worker threads. */
static void
handle(struct evhttp_request *req, void *arg)
{
	struct stats *st = arg;

	rt_lock(st->rt);
	handle_locked(req, st);
	rt_unlock(st->rt);
}

static void
handle_locked(struct evhttp_request *req, struct stats *st)
{
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

struct stats *
stats_bind(struct rt *rt)
{
	const struct cfg_global *g = &rt->cfg->global;
	const struct cfg_addr *a = &g->stats_addr;
	struct stats *st;
	int fd, one = 1;

	if (a->len == 0) {
		log_warnx("status page %s: no address", g->stats_listen);
		return NULL;
	}
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	            0);
	if (fd < 0) {
		log_warn("status page %s: socket", g->stats_listen);
		return NULL;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		log_warn("status page %s: SO_REUSEADDR", g->stats_listen);
		close(fd);
		return NULL;
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		log_warn("status page: cannot listen on %s", g->stats_listen);
		close(fd);
		return NULL;
	}
	if (listen(fd, 64) < 0) {
		log_warn("status page: cannot listen on %s", g->stats_listen);
		close(fd);
		return NULL;
	}
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
	st->rt = rt;
	st->fd = fd;
	st->loopback = cfg_is_loopback(&a->ss);
	return st;
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
stats_start(struct stats *st, struct event_base *base)
{
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
	         st->rt->cfg->global.stats_auth[0] != '\0'
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
