/* Server state: admin state, health, connection limits, and the health
 * events (SPEC 5.1) that state changes produce. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>

#include "backend.h"
#include "check.h"
#include "healthlog.h"
#include "log.h"
#include "parse.h"
#include "rt.h"
#include "server.h"
#include "session.h"

const char *const server_check_steps[SERVER_CHECK_STEPS] = {
    "connect", "greeting", "helo", "starttls", "tls", "ehlo", "quit"};

void
server_init(struct server *srv, const struct cfg_server *conf,
            struct backend *be)
{
	memset(srv, 0, sizeof(*srv));
	srv->conf = conf;
	srv->be = be;
	srv->admin = conf->disabled ? SRV_MAINT : SRV_READY;
	srv->up = true;
	srv->weight = conf->weight;
	srv->checked = conf->check && be->conf->has_check;
	health_init(&srv->health, be->conf->check.rise, be->conf->check.fall);
	TAILQ_INIT(&srv->sessions);
	srv->last_change = time(NULL);
	snprintf(srv->last_check, sizeof(srv->last_check), "%s",
	         srv->checked ? "not checked yet" : "no check");
}

static bool
same_cfg_addr(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

void
server_inherit(struct server *srv, const struct server *old)
{
	const struct cfg_server *nc = srv->conf, *oc = old->conf;

	srv->total_sess = old->total_sess;
	srv->max_sess = old->max_sess;
	srv->connect_failures = old->connect_failures;
	srv->bytes_in = old->bytes_in;
	srv->bytes_out = old->bytes_out;
	srv->last_change = old->last_change;
	srv->checks = old->checks;
	srv->last_check_ms = old->last_check_ms;
	memcpy(srv->check_failures, old->check_failures,
	       sizeof(srv->check_failures));
	if (nc->disabled == oc->disabled)
		srv->admin = old->admin;
	if (nc->weight == oc->weight)
		srv->weight = old->weight;
	if (!same_cfg_addr(&nc->addr, &oc->addr))
		return; /* another machine: checked afresh */
	srv->cert_not_after = old->cert_not_after;
	srv->cert_warned = old->cert_warned;
	if (!srv->checked || !old->checked)
		return; /* always UP, or checked from now on: as at start */
	srv->up = old->up;
	srv->health.counter =
	    old->up ? srv->health.rise + srv->health.fall - 1 : 0;
	srv->down_since_ms = old->down_since_ms;
	snprintf(srv->last_check, sizeof(srv->last_check), "%s",
	         old->last_check);
}

bool
server_usable(const struct server *srv)
{
	return srv->up && srv->admin == SRV_READY && srv->weight > 0;
}

unsigned
server_limit(const struct server *srv)
{
	const struct cfg_server *c = srv->conf;
	unsigned fullconn, lim;

	if (c->maxconn == 0)
		return 0;
	if (c->minconn == 0)
		return (unsigned)c->maxconn;
	/* HAProxy's dynamic limit: ramps from minconn to maxconn as the
	 * backend approaches fullconn sessions. */
	fullconn = (unsigned)srv->be->conf->fullconn;
	if (srv->be->cur_sess >= fullconn)
		return (unsigned)c->maxconn;
	lim = (unsigned)((unsigned long long)c->maxconn * srv->be->cur_sess /
	                 fullconn);
	if (lim < (unsigned)c->minconn)
		lim = (unsigned)c->minconn;
	if (lim > (unsigned)c->maxconn)
		lim = (unsigned)c->maxconn;
	return lim;
}

bool
server_has_room(const struct server *srv)
{
	unsigned lim = server_limit(srv);

	return lim == 0 || srv->cur_sess < lim;
}

void
server_state_text(const struct server *srv, char *buf, size_t len)
{
	if (srv->admin == SRV_MAINT)
		snprintf(buf, len, "MAINT");
	else if (srv->admin == SRV_DRAIN && srv->up)
		snprintf(buf, len, "DRAIN");
	else if (srv->checked)
		health_state_text(&srv->health, buf, len);
	else
		snprintf(buf, len, "%s", srv->up ? "UP" : "DOWN");
}

void
server_count_alive(const struct backend *be, unsigned *active, unsigned *backup)
{
	*active = *backup = 0;
	for (size_t i = 0; i < be->nservers; i++) {
		const struct server *s = &be->servers[i];
		if (!s->up || s->admin == SRV_MAINT)
			continue;
		if (s->conf->backup)
			(*backup)++;
		else
			(*active)++;
	}
}

static uint64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* The fields every server event starts with. */
static void
event_head(struct lf *l, const struct server *srv, const char *event)
{
	lf_init(l);
	lf_add(l, "event", event);
	lf_add(l, "backend", srv->be->conf->name);
	lf_add(l, "server", srv->conf->name);
	lf_add(l, "addr", srv->conf->addr.text);
}

static void
event_tail(struct lf *l, const struct backend *be)
{
	unsigned active, backup;

	server_count_alive(be, &active, &backup);
	lf_addf(l, "active", "%u", active);
	lf_addf(l, "backup", "%u", backup);
}

static void
write_event(const struct backend *be, const struct lf *l)
{
	if (be->rt->hlog != NULL)
		healthlog_write(be->rt->hlog, l);
	else
		log_event(LOG_NOTICE, "%s", l->buf + 1);
}

/* backend_down / backend_up when the last server left or the first came
 * back. */
static void
backend_state(struct backend *be)
{
	unsigned active, backup;
	bool alive;
	struct lf l;

	server_count_alive(be, &active, &backup);
	alive = active + backup > 0;
	if (alive == be->alive)
		return;
	be->alive = alive;
	lf_init(&l);
	lf_add(&l, "event", alive ? "backend_up" : "backend_down");
	lf_add(&l, "backend", be->conf->name);
	lf_addf(&l, "active", "%u", active);
	lf_addf(&l, "backup", "%u", backup);
	write_event(be, &l);
}

static const char *
check_type_name(const struct server *srv)
{
	return srv->be->conf->check.type == CHECK_TCP ? "tcp" : "smtp";
}

static void
failure_fields(struct lf *l, const struct server *srv,
               const struct check_result *res)
{
	lf_add(l, "check", check_type_name(srv));
	lf_add(l, "step", res->step);
	if (res->code != 0) {
		lf_addf(l, "code", "%d", res->code);
		lf_add(l, "reply", res->reply != NULL ? res->reply : "");
	} else
		lf_add(l, "reason", res->reason != NULL ? res->reason : "");
	lf_addf(l, "duration_ms", "%llu", (unsigned long long)res->duration_ms);
}

void
server_check_result(struct server *srv, const struct check_result *res)
{
	struct backend *be = srv->be;
	enum health_change ch;
	struct lf l;

	if (res->pass)
		snprintf(srv->last_check, sizeof(srv->last_check),
		         "passed (%llu ms)",
		         (unsigned long long)res->duration_ms);
	else if (res->code != 0)
		snprintf(srv->last_check, sizeof(srv->last_check),
		         "failed at %s: %d %s (%llu ms)", res->step, res->code,
		         res->reply != NULL ? res->reply : "",
		         (unsigned long long)res->duration_ms);
	else
		snprintf(srv->last_check, sizeof(srv->last_check),
		         "failed at %s: %s (%llu ms)", res->step,
		         res->reason != NULL ? res->reason : "",
		         (unsigned long long)res->duration_ms);

	srv->checks++;
	srv->last_check_ms = res->duration_ms;
	if (!res->pass)
		for (size_t i = 0; i < SERVER_CHECK_STEPS; i++)
			if (res->step != NULL &&
			    strcmp(res->step, server_check_steps[i]) == 0)
				srv->check_failures[i]++;
	ch = health_result(&srv->health, res->pass);
	switch (ch) {
	case HEALTH_WENT_DOWN:
		srv->up = false;
		srv->down_since_ms = wall_ms();
		srv->last_change = time(NULL);
		event_head(&l, srv, "down");
		failure_fields(&l, srv, res);
		lf_addf(&l, "failures", "%u", srv->health.fails);
		event_tail(&l, be);
		write_event(be, &l);
		if (be->conf->on_marked_down == MD_SHUTDOWN_SESSIONS)
			session_close_server(srv, END_SERVER_DOWN);
		backend_state(be);
		/* Queued clients may now have nowhere to go. */
		backend_process_queue(be);
		break;
	case HEALTH_WENT_UP:
		srv->up = true;
		srv->last_change = time(NULL);
		event_head(&l, srv, "up");
		lf_add(&l, "check", check_type_name(srv));
		lf_addf(&l, "duration_ms", "%llu",
		        (unsigned long long)res->duration_ms);
		lf_addf(&l, "successes", "%u", srv->health.passes);
		lf_addf(&l, "downtime_s", "%llu",
		        (unsigned long long)(srv->down_since_ms != 0
		                                 ? (wall_ms() -
		                                    srv->down_since_ms) /
		                                       1000
		                                 : 0));
		event_tail(&l, be);
		write_event(be, &l);
		backend_state(be);
		backend_process_queue(be);
		break;
	case HEALTH_SAME:
		if (!res->pass && srv->up) {
			/* A failed check while still UP (going down). */
			event_head(&l, srv, "fail");
			failure_fields(&l, srv, res);
			lf_addf(&l, "failures", "%u", srv->health.fails);
			event_tail(&l, be);
			write_event(be, &l);
		}
		break;
	}
}

void
server_set_admin(struct server *srv, enum srv_admin admin)
{
	static const char *const names[] = {"ready", "drain", "maint"};
	enum srv_admin old = srv->admin;
	struct lf l;

	if (old == admin)
		return;
	srv->admin = admin;
	srv->last_change = time(NULL);
	if (srv->check != NULL) {
		if (admin == SRV_MAINT)
			check_stop(srv->check);
		else if (old == SRV_MAINT) {
			/* Back from maintenance: UP but unconfirmed, checked
			 * at once (a failure makes it DOWN immediately). */
			health_init(&srv->health, srv->be->conf->check.rise,
			            srv->be->conf->check.fall);
			srv->up = true;
			check_schedule(srv->check, 0);
		}
	}
	event_head(&l, srv, names[admin]);
	event_tail(&l, srv->be);
	write_event(srv->be, &l);
	backend_state(srv->be);
	if (admin == SRV_READY)
		backend_process_queue(srv->be);
}

void
server_set_weight(struct server *srv, int weight)
{
	srv->weight = weight;
	if (weight > 0)
		backend_process_queue(srv->be);
}

void
server_cert_seen(struct server *srv, time_t not_after, const char *subject)
{
	time_t now = time(NULL);
	uint64_t warn_s = srv->be->conf->check.cert_expiry_warn_ms / 1000;
	char when[32];
	struct tm tm;
	struct lf l;

	srv->cert_not_after = not_after;
	if (not_after - now > (time_t)warn_s)
		return;
	/* Once a day per server, not at every check. */
	if (srv->cert_warned != 0 && now - srv->cert_warned < 86400)
		return;
	srv->cert_warned = now;
	gmtime_r(&not_after, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	event_head(&l, srv, "cert_expiry");
	lf_add(&l, "not_after", when);
	lf_addf(&l, "days_left", "%lld",
	        (long long)((not_after - now) / 86400));
	lf_add(&l, "subject", subject);
	write_event(srv->be, &l);
}
