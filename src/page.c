/* The status page (global.stats_listen, load-balancer.conf(5), GLOBAL):
 * HTML from a snapshot, with the health timeline drawn beforehand. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "page.h"
#include "report.h"
#include "rfc3339.h"

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
page_frontends(struct out *o, const struct snapshot *s)
{
	outf(o, "<h2>Frontends</h2>\n<table id=\"frontends\">\n<tr>"
	        "<th class=\"l\">Frontend</th><th class=\"l\">Listening "
	        "on</th><th class=\"l\">Backend</th><th>Sessions</th>"
	        "<th>Total</th><th>Unavailable replies</th><th>Bytes in</th>"
	        "<th>Bytes out</th></tr>\n");
	for (size_t f = 0; f < s->nfrontends; f++) {
		const struct snap_frontend *fe = &s->frontends[f];

		outf(o, "<tr class=\"frontend\" data-frontend=\"");
		out_esc(o, fe->conf->name);
		outf(o, "\"><td class=\"l\">");
		out_esc(o, fe->conf->name);
		outf(o, "</td><td class=\"l\">");
		for (size_t i = 0; i < fe->conf->nbinds; i++) {
			if (i > 0)
				outf(o, "<br>");
			out_esc(o, fe->conf->binds[i].text);
		}
		outf(o, "</td><td class=\"l\"><a href=\"#backend-");
		out_esc(o, fe->conf->backend_name);
		outf(o, "\">");
		out_esc(o, fe->conf->backend_name);
		outf(o,
		     "</a></td><td>%u</td><td>%" PRIu64 "</td><td>%" PRIu64
		     "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n",
		     fe->cur, fe->total, fe->refused, fe->bytes_in,
		     fe->bytes_out);
	}
	outf(o, "</table>\n");
}

static void
cert_cell(struct out *o, const struct pool_snap_server *s,
          const struct cfg_backend *bc, time_t now)
{
	char when[32];
	long days;
	uint64_t warn_s = bc->check.cert_expiry_warn_ms / 1000;

	if (s->cert_not_after == 0) {
		outf(o, "<td>-</td>");
		return;
	}
	rfc3339_format_text((int64_t)s->cert_not_after * 1000, when,
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
page_server(struct out *o, const struct pool_snap_server *s,
            const struct cfg_backend *bc, time_t now)
{
	const char *state = s->state_text;
	char since[32], lim[24];
	unsigned limit = s->limit;

	report_format_duration(
	    (int64_t)(now > s->last_change ? now - s->last_change : 0) * 1000,
	    since, sizeof(since));
	if (limit == 0)
		snprintf(lim, sizeof(lim), "-");
	else
		snprintf(lim, sizeof(lim), "%u", limit);
	outf(o, "<tr class=\"server\" data-server=\"");
	out_esc(o, s->conf->name);
	outf(o, "\" data-state=\"%s\"><td class=\"l\">", state);
	out_esc(o, s->conf->name);
	if (s->conf->backup)
		outf(o, " (backup)");
	outf(o, "</td><td class=\"l\">");
	out_esc(o, s->conf->addr.text);
	outf(o,
	     "</td><td class=\"st %s\">%s</td><td>%d</td><td>%u</td>"
	     "<td>%u</td><td>%" PRIu64 "</td><td>%s</td><td>%" PRIu64
	     "</td><td>%" PRIu64 "</td><td class=\"check\">",
	     state_css(state), state, s->weight, s->cur, s->max, s->total, lim,
	     s->bytes_in, s->bytes_out);
	out_esc(o, s->last_check);
	if (s->has_agent) {
		/* load-balancer.conf(5), AGENT CHECK: its last answer and
		 * failures. */
		outf(o, "<br>agent: ");
		out_esc(o, s->agent_last);
		outf(o, ", %" PRIu64 " failed", s->agent_failures);
	}
	outf(o, "</td><td>%" PRIu64 "</td><td>%s</td>", s->checks, since);
	cert_cell(o, s, bc, now);
	outf(o, "</tr>\n");
}

static void
page_backend(struct out *o, const struct pool_snap_backend *be, time_t now)
{
	const struct cfg_backend *c = be->conf;
	unsigned active = 0, backup = 0;

	/* Servers that take new sessions, by tier (the one predicate that
	 * /health and lbctl check use too). */
	for (size_t i = 0; i < be->nservers; i++)
		if (be->servers[i].takes) {
			if (be->servers[i].conf->backup)
				backup++;
			else
				active++;
		}
	outf(o, "<h2 id=\"backend-");
	out_esc(o, c->name);
	outf(o, "\">Backend ");
	out_esc(o, c->name);
	if (active + backup == 0)
		outf(o, ": <span class=\"be-down\">no server UP</span>");
	else
		outf(o, ": <span class=\"be-up\">%u of %zu servers UP%s</span>",
		     active + backup, be->nservers,
		     active == 0 ? " (backup only)" : "");
	outf(o,
	     "</h2>\n<p class=\"meta\">balance %s &middot; sessions %u "
	     "&middot; queue %u &middot; connect retries %" PRIu64,
	     cfg_algo_name(c->balance), be->cur, be->queued, be->retries);
	if (c->has_check)
		outf(o, " &middot; %s check every %" PRIu64 " ms",
		     c->check.type == CHECK_TCP ? "tcp" : "smtp",
		     c->check.interval_ms);
	else
		outf(o, " &middot; no health check");
	outf(o, "</p>\n<table class=\"servers\" data-backend=\"");
	out_esc(o, c->name);
	outf(o, "\">\n<tr><th class=\"l\">Server</th><th class=\"l\">"
	        "Address</th><th>State</th><th>Weight</th><th>Sessions</th>"
	        "<th>Max</th><th>Total</th><th>Limit</th><th>Bytes in</th>"
	        "<th>Bytes out</th><th class=\"l\">Last check</th>"
	        "<th>Checks</th><th>Since change</th><th>Certificate "
	        "expiry</th></tr>\n");
	for (size_t i = 0; i < be->nservers; i++)
		page_server(o, &be->servers[i], c, now);
	outf(o, "</table>\n");
}

void
page_render(struct out *o, const struct snapshot *s, int64_t since_ms,
            const char *svg, size_t svglen)
{
	char up[32], gen[32], win[48], winq[32];

	report_format_duration((int64_t)(s->now - s->started) * 1000, up,
	                       sizeof(up));
	rfc3339_format_text((int64_t)s->now * 1000, gen, sizeof(gen));
	window_text(since_ms, win, sizeof(win), winq, sizeof(winq));
	outf(o,
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
	     PAGE_REFRESH_S, LB_PROGRAM, page_css, LB_PROGRAM, PACKAGE_VERSION,
	     (long)getpid(), up, s->cur_sess, s->max_sess, s->total_sess,
	     s->reloads, s->stopping ? " &middot; stopping" : "", gen,
	     PAGE_REFRESH_S);
	page_frontends(o, s);
	for (size_t b = 0; b < s->pool.nbackends; b++)
		page_backend(o, &s->pool.backends[b], s->now);
	outf(o,
	     "<h2 id=\"timeline\">Health timeline (last %s)</h2>\n<div "
	     "class=\"timeline\">\n",
	     win);
	if (svg == NULL)
		outf(o, "<p>(the timeline could not be drawn: out of "
		        "memory)</p>\n");
	else
		out_put(o, svg, svglen);
	outf(o,
	     "</div>\n<p class=\"meta\">The same picture alone: <a "
	     "href=\"timeline?since=%s\">timeline</a> (?since=7d for a "
	     "week, here too); hover a band for its times and the "
	     "failure.</p>\n</body></html>\n",
	     winq);
}
