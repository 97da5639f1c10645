/* /metrics: the Prometheus text exposition format, from a snapshot
 * (global.stats_listen, load-balancer.conf(5), GLOBAL). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "metrics.h"
#include "timeline.h"

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

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
fe_sample(struct out *o, const char *name, const struct snap_frontend *fe)
{
	outf(o, "%s{frontend=\"", name);
	label(o, fe->conf->name);
	outf(o, "\"} ");
}

static void
be_sample(struct out *o, const char *name, const struct pool_snap_backend *be)
{
	outf(o, "%s{backend=\"", name);
	label(o, be->conf->name);
	outf(o, "\"} ");
}

/* The per-frontend and per-backend families, in output order. */
enum fe_metric { FM_CUR, FM_TOTAL, FM_BYTES_IN, FM_BYTES_OUT, FM_REFUSED };

static const struct {
	const char *name, *type, *help;
} fe_metrics[] = {
    [FM_CUR] = {"load_balancer_frontend_sessions_current", "gauge",
                "Client sessions open now on the frontend."},
    [FM_TOTAL] = {"load_balancer_frontend_sessions_total", "counter",
                  "Client sessions accepted by the frontend."},
    [FM_BYTES_IN] = {"load_balancer_frontend_bytes_in_total", "counter",
                     "Bytes received from clients in finished sessions."},
    [FM_BYTES_OUT] = {"load_balancer_frontend_bytes_out_total", "counter",
                      "Bytes sent to clients in finished sessions "
                      "(unavailable replies included)."},
    [FM_REFUSED] = {"load_balancer_frontend_unavailable_replies_total",
                    "counter",
                    "Clients turned away with unavailable_reply (no "
                    "server, queue timeout, retries spent)."},
};

static uint64_t
fe_value(const struct snap_frontend *fe, enum fe_metric m)
{
	switch (m) {
	case FM_CUR:
		return fe->cur;
	case FM_TOTAL:
		return fe->total;
	case FM_BYTES_IN:
		return fe->bytes_in;
	case FM_BYTES_OUT:
		return fe->bytes_out;
	case FM_REFUSED:
		return fe->refused;
	}
	return 0;
}

enum be_metric { BM_UP, BM_SERVERS_UP, BM_CUR, BM_QUEUE, BM_RETRIES };

static const struct {
	const char *name, *type, *help;
} be_metrics[] = {
    [BM_UP] = {"load_balancer_backend_up", "gauge",
               "1 when some server of the backend takes new sessions (UP, "
               "not drained or in maintenance, weight above 0), else 0."},
    [BM_SERVERS_UP] = {"load_balancer_backend_servers_up", "gauge",
                       "Servers of the backend that are UP and not in "
                       "maintenance."},
    [BM_CUR] = {"load_balancer_backend_sessions_current", "gauge",
                "Sessions with a server of the backend."},
    [BM_QUEUE] = {"load_balancer_backend_queue_length", "gauge",
                  "Clients waiting in the backend queue for a server "
                  "slot."},
    [BM_RETRIES] = {"load_balancer_backend_connect_retries_total", "counter",
                    "Connection attempts repeated after a failure."},
};

static uint64_t
be_value(const struct pool_snap_backend *be, enum be_metric m)
{
	switch (m) {
	case BM_UP:
		return be->takes > 0;
	case BM_SERVERS_UP:
		return be->active + be->backup;
	case BM_CUR:
		return be->cur;
	case BM_QUEUE:
		return be->queued;
	case BM_RETRIES:
		return be->retries;
	}
	return 0;
}

/* name{backend="B",server="S" (no closing brace: more labels may
 * follow). */
static void
srv_labels(struct out *o, const char *name, const struct pool_snap_backend *be,
           const struct pool_snap_server *s)
{
	outf(o, "%s{backend=\"", name);
	label(o, be->conf->name);
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
	SM_TRAFFIC_ERRORS,
	SM_TRAFFIC_FAILS,
	SM_AGENT_CHECKS,
	SM_AGENT_FAILURES,
};

static const struct {
	const char *name, *type, *help;
} srv_metrics[] = {
    [SM_UP] = {"load_balancer_server_up", "gauge",
               "1 when the server is UP (checks pass or it is not "
               "checked) and not in maintenance, else 0."},
    [SM_WEIGHT] = {"load_balancer_server_weight", "gauge",
                   "Weight in force (0-256): the configured or operator's "
                   "weight, times the agent's percentage, during a slow "
                   "start its ramp; rounded up."},
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
    [SM_TRAFFIC_ERRORS] = {"load_balancer_server_traffic_errors_total",
                           "counter",
                           "Failed connects and greetings of live sessions "
                           "(passive health)."},
    [SM_TRAFFIC_FAILS] = {"load_balancer_server_traffic_errors_consecutive",
                          "gauge",
                          "Of them in a row now; error_limit of them mark a "
                          "checked server DOWN."},
    [SM_AGENT_CHECKS] = {"load_balancer_server_agent_checks_total", "counter",
                         "Agent checks run (servers with an agent port)."},
    [SM_AGENT_FAILURES] = {"load_balancer_server_agent_failures_total",
                           "counter",
                           "Agent checks that got no usable answer "
                           "(unreachable, timeout, garbage): counted, "
                           "never acted on."},
};

static void
srv_value(struct out *o, enum srv_metric m, const struct pool_snap_server *s)
{
	switch (m) {
	case SM_UP:
		outf(o, "%d\n", s->alive ? 1 : 0);
		break;
	case SM_WEIGHT:
		outf(o, "%d\n", s->weight);
		break;
	case SM_CUR:
		outf(o, "%u\n", s->cur);
		break;
	case SM_MAX:
		outf(o, "%u\n", s->max);
		break;
	case SM_TOTAL:
		outf(o, "%" PRIu64 "\n", s->total);
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
	case SM_TRAFFIC_ERRORS:
		outf(o, "%" PRIu64 "\n", s->traffic_errors);
		break;
	case SM_TRAFFIC_FAILS:
		outf(o, "%u\n", s->traffic_fails);
		break;
	case SM_AGENT_CHECKS:
		outf(o, "%" PRIu64 "\n", s->agent_checks);
		break;
	case SM_AGENT_FAILURES:
		outf(o, "%" PRIu64 "\n", s->agent_failures);
		break;
	}
}

/* Every server of the snapshot, with its backend. */
#define FOR_SERVERS(snap, be, sv)                                              \
	for (size_t b_ = 0; b_ < (snap)->pool.nbackends; b_++)                 \
		for (size_t i_ = 0; i_ < (snap)->pool.backends[b_].nservers && \
		                    ((be) = &(snap)->pool.backends[b_],        \
		                    (sv) = &(be)->servers[i_], 1);             \
		     i_++)

static void
metrics_servers(struct out *o, const struct snapshot *snap)
{
	static const char *const states[] = {"UP", "DOWN", "DRAIN", "MAINT"};
	const struct pool_snap_backend *be;
	const struct pool_snap_server *s;

	for (size_t m = 0; m < ARRAY_SIZE(srv_metrics); m++) {
		family(o, srv_metrics[m].name, srv_metrics[m].type,
		       srv_metrics[m].help);
		FOR_SERVERS(snap, be, s)
		{
			if ((m == SM_CHECKS || m == SM_CHECK_SECONDS) &&
			    !s->checked)
				continue;
			if ((m == SM_AGENT_CHECKS || m == SM_AGENT_FAILURES) &&
			    !s->has_agent)
				continue;
			srv_labels(o, srv_metrics[m].name, be, s);
			outf(o, "} ");
			srv_value(o, (enum srv_metric)m, s);
		}
	}

	family(o, "load_balancer_server_state", "gauge",
	       "1 for the server's current state (UP, DOWN, DRAIN, MAINT), 0 "
	       "for the others.");
	FOR_SERVERS(snap, be, s)
	{
		const char *cur = srv_state_name(s->state);

		for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
			srv_labels(o, "load_balancer_server_state", be, s);
			outf(o, ",state=\"%s\"} %d\n", states[k],
			     strcmp(cur, states[k]) == 0);
		}
	}

	family(o, "load_balancer_server_check_failures_total", "counter",
	       "Failed health checks by the step that failed (connect "
	       "greeting helo starttls tls ehlo quit).");
	FOR_SERVERS(snap, be, s)
	{
		if (!s->checked)
			continue;
		for (size_t k = 0; k < HEALTH_STEPS; k++) {
			srv_labels(o,
			           "load_balancer_server_check_failures_total",
			           be, s);
			outf(o, ",step=\"%s\"} %" PRIu64 "\n", health_steps[k],
			     s->check_failures[k]);
		}
	}

	family(o, "load_balancer_server_cert_expiry_timestamp_seconds", "gauge",
	       "Unix time when the server's TLS certificate expires (STARTTLS "
	       "checks).");
	FOR_SERVERS(snap, be, s)
	{
		if (s->cert_not_after == 0)
			continue;
		srv_labels(o,
		           "load_balancer_server_cert_expiry_timestamp_"
		           "seconds",
		           be, s);
		outf(o, "} %lld\n", (long long)s->cert_not_after);
	}
}

void
metrics_render(struct out *o, const struct snapshot *s)
{
	family(o, "load_balancer_info", "gauge",
	       "Always 1; the version as a label.");
	outf(o, "load_balancer_info{version=\"");
	label(o, PACKAGE_VERSION);
	outf(o, "\"} 1\n");
	family(o, "load_balancer_start_time_seconds", "gauge",
	       "Unix time when the daemon started.");
	outf(o, "load_balancer_start_time_seconds %lld\n",
	     (long long)s->started);
	family(o, "load_balancer_sessions_current", "gauge",
	       "Client sessions open now.");
	outf(o, "load_balancer_sessions_current %u\n", s->cur_sess);
	family(o, "load_balancer_sessions_limit", "gauge",
	       "Effective global maxconn.");
	outf(o, "load_balancer_sessions_limit %u\n", s->max_sess);
	family(o, "load_balancer_sessions_total", "counter",
	       "Client sessions accepted.");
	outf(o, "load_balancer_sessions_total %" PRIu64 "\n", s->total_sess);
	family(o, "load_balancer_reloads_total", "counter",
	       "Configuration reloads applied.");
	outf(o, "load_balancer_reloads_total %u\n", s->reloads);
	family(o, "load_balancer_worker_sessions_current", "gauge",
	       "Client sessions open now on the worker thread.");
	for (unsigned w = 0; w < s->nworkers; w++)
		outf(
		    o,
		    "load_balancer_worker_sessions_current{worker=\"%u\"} %u\n",
		    w, s->worker_cur[w]);
	family(o, "load_balancer_worker_sessions_total", "counter",
	       "Client sessions given to the worker thread.");
	for (unsigned w = 0; w < s->nworkers; w++)
		outf(o,
		     "load_balancer_worker_sessions_total{worker=\"%u\"} "
		     "%" PRIu64 "\n",
		     w, s->worker_total[w]);

	for (size_t m = 0; m < ARRAY_SIZE(fe_metrics); m++) {
		family(o, fe_metrics[m].name, fe_metrics[m].type,
		       fe_metrics[m].help);
		for (size_t f = 0; f < s->nfrontends; f++) {
			fe_sample(o, fe_metrics[m].name, &s->frontends[f]);
			outf(o, "%" PRIu64 "\n",
			     fe_value(&s->frontends[f], (enum fe_metric)m));
		}
	}
	family(o, "load_balancer_frontend_refused_total", "counter",
	       "Connections refused at accept, before any server: maxconn "
	       "and rate (client_limits), deny (deny and allow lists).");
	for (size_t f = 0; f < s->nfrontends; f++) {
		const struct snap_frontend *fe = &s->frontends[f];
		const struct {
			const char *reason;
			uint64_t n;
		} r[] = {{"maxconn", fe->refused_maxconn},
		         {"rate", fe->refused_rate},
		         {"deny", fe->refused_deny}};

		for (size_t k = 0; k < ARRAY_SIZE(r); k++) {
			outf(
			    o,
			    "load_balancer_frontend_refused_total{frontend=\"");
			label(o, fe->conf->name);
			outf(o, "\",reason=\"%s\"} %" PRIu64 "\n", r[k].reason,
			     r[k].n);
		}
	}
	for (size_t m = 0; m < ARRAY_SIZE(be_metrics); m++) {
		family(o, be_metrics[m].name, be_metrics[m].type,
		       be_metrics[m].help);
		for (size_t b = 0; b < s->pool.nbackends; b++) {
			be_sample(o, be_metrics[m].name, &s->pool.backends[b]);
			outf(o, "%" PRIu64 "\n",
			     be_value(&s->pool.backends[b], (enum be_metric)m));
		}
	}
	metrics_servers(o, s);
}
