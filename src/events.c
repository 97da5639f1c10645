/* Health events: pool events -> logfmt health-log lines. */
#include "config.h"

#include <syslog.h>
#include <time.h>

#include "events.h"
#include "log.h"
#include "rfc3339.h"

static const char *const kind_names[] = {
    [PEV_UP] = "up",
    [PEV_DOWN] = "down",
    [PEV_FAIL] = "fail",
    [PEV_READY] = "ready",
    [PEV_DRAIN] = "drain",
    [PEV_MAINT] = "maint",
    [PEV_BACKEND_UP] = "backend_up",
    [PEV_BACKEND_DOWN] = "backend_down",
    [PEV_CERT_EXPIRY] = "cert_expiry",
    [PEV_WEIGHT] = "weight",
};

/* The fields every server event starts with. */
static void
head(struct lf *l, const struct pool_event *ev)
{
	lf_init(l);
	lf_add(l, "event", kind_names[ev->kind]);
	lf_add(l, "backend", ev->be->name);
	if (ev->srv != NULL) {
		lf_add(l, "server", ev->srv->name);
		lf_add(l, "addr", ev->srv->addr.text);
	}
}

static void
tail(struct lf *l, const struct pool_event *ev)
{
	lf_addf(l, "active", "%u", ev->active);
	lf_addf(l, "backup", "%u", ev->backup);
}

static const char *
check_type(const struct pool_event *ev)
{
	return ev->be->check.type == CHECK_TCP ? "tcp" : "smtp";
}

static void
failure(struct lf *l, const struct pool_event *ev)
{
	/* A live session's failure, or the agent's word, is no check: it
	 * says so instead (load-balancer.conf(5), LOGS); the agent has no
	 * step. */
	if (ev->by != NULL)
		lf_add(l, "by", ev->by);
	else
		lf_add(l, "check", check_type(ev));
	if (ev->step != NULL)
		lf_add(l, "step", ev->step);
	if (ev->code != 0) {
		lf_addf(l, "code", "%d", ev->code);
		lf_add(l, "reply", ev->reply != NULL ? ev->reply : "");
	} else
		lf_add(l, "reason", ev->reason != NULL ? ev->reason : "");
	lf_addf(l, "duration_ms", "%llu", (unsigned long long)ev->duration_ms);
}

void
events_write(struct healthlog *hl, const struct pool_event *ev)
{
	char when[RFC3339_MAX];
	struct lf l;

	head(&l, ev);
	switch (ev->kind) {
	case PEV_DOWN:
	case PEV_FAIL:
		failure(&l, ev);
		if (ev->step != NULL)
			lf_addf(&l, "failures", "%u", ev->failures);
		tail(&l, ev);
		break;
	case PEV_UP:
		if (ev->by != NULL)
			lf_add(&l, "by", ev->by);
		else
			lf_add(&l, "check", check_type(ev));
		lf_addf(&l, "duration_ms", "%llu",
		        (unsigned long long)ev->duration_ms);
		if (ev->by == NULL)
			lf_addf(&l, "successes", "%u", ev->successes);
		lf_addf(&l, "downtime_s", "%llu",
		        (unsigned long long)ev->downtime_s);
		tail(&l, ev);
		break;
	case PEV_WEIGHT:
		lf_addf(&l, "weight", "%d", ev->weight);
		if (ev->has_maxconn)
			lf_addf(&l, "maxconn", "%d", ev->maxconn);
		/* fall through */
	case PEV_READY:
	case PEV_DRAIN:
	case PEV_MAINT:
		if (ev->by != NULL)
			lf_add(&l, "by", ev->by);
		tail(&l, ev);
		break;
	case PEV_BACKEND_UP:
	case PEV_BACKEND_DOWN:
		tail(&l, ev);
		break;
	case PEV_CERT_EXPIRY:
		rfc3339_format((int64_t)ev->not_after * 1000, false, when,
		               sizeof(when));
		lf_add(&l, "not_after", when);
		lf_addf(&l, "days_left", "%lld",
		        (long long)((ev->not_after - time(NULL)) / 86400));
		lf_add(&l, "subject", ev->subject != NULL ? ev->subject : "");
		break;
	}
	if (hl != NULL)
		healthlog_write(hl, &l);
	else
		log_event(LOG_NOTICE, "%s", l.buf + 1);
}

void
events_write_work(struct healthlog *hl, const struct pool_work *w)
{
	for (size_t i = 0; i < w->nevents; i++)
		events_write(hl, &w->events[i]);
}
