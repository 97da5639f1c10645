/* Health-log report: parse the log (load-balancer.conf(5), LOGS), replay
 * its events per server and backend over a window, print text or JSON. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "report.h"
#include "rfc3339.h"

#define MS_PER_DAY (86400LL * 1000)

static int64_t
min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Copy src into dst (size len), always NUL-terminated. */
static void
copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- Durations ---- */

int
report_parse_duration(const char *text, int64_t *ms, const char **err)
{
	uint64_t v;

	/* parse_duration caps durations at 365 days, well inside int64_t. */
	if (parse_duration(text, &v, err) < 0)
		return -1;
	*ms = (int64_t)v;
	return 0;
}

void
report_format_duration(int64_t ms, char *buf, size_t len)
{
	long long s;

	if (ms <= 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (ms < 1000) {
		snprintf(buf, len, "%lldms", (long long)ms);
		return;
	}
	s = (long long)(ms / 1000);
	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

/* The window length as a round label when it is one: "24h" "7d" "30m". */
static void
format_window(int64_t ms, char *buf, size_t len)
{
	if (ms > 0 && ms % (3600 * 1000) == 0 && ms / (3600 * 1000) < 100)
		snprintf(buf, len, "%lldh", (long long)(ms / (3600 * 1000)));
	else if (ms > 0 && ms % MS_PER_DAY == 0)
		snprintf(buf, len, "%lldd", (long long)(ms / MS_PER_DAY));
	else if (ms > 0 && ms % 60000 == 0 && ms / 60000 < 60)
		snprintf(buf, len, "%lldm", (long long)(ms / 60000));
	else
		report_format_duration(ms, buf, len);
}

/* ---- Line parser ---- */

static const struct {
	const char *name;
	enum report_event_type type;
} event_names[] = {
    {"up", REV_UP},
    {"down", REV_DOWN},
    {"fail", REV_FAIL},
    {"drain", REV_DRAIN},
    {"maint", REV_MAINT},
    {"ready", REV_READY},
    {"backend_down", REV_BACKEND_DOWN},
    {"backend_up", REV_BACKEND_UP},
    {"cert_expiry", REV_CERT_EXPIRY},
    {"start", REV_START},
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
key_is(const char *key, size_t klen, const char *want)
{
	return strlen(want) == klen && memcmp(key, want, klen) == 0;
}

/* A name-like field: must fit. */
static int
set_name(char *dst, size_t len, const char *val, bool truncated,
         const char **err)
{
	if (truncated || strlen(val) >= len) {
		*err = "value too long";
		return -1;
	}
	copy_str(dst, len, val);
	return 0;
}

/* A free text: cut with "..." when it does not fit. */
static void
set_text(char *dst, size_t len, const char *val, bool truncated)
{
	size_t n = strlen(val);

	copy_str(dst, len, val);
	if ((truncated || n >= len) && len > 4)
		memcpy(dst + len - 4, "...", 4);
}

/* Decimal integer, optional '-': whole string. */
static bool
parse_long(const char *s, long long *out)
{
	char *end;
	long long v;

	if (*s == '\0' || !(isdigit((unsigned char)*s) || *s == '-'))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		return false;
	*out = v;
	return true;
}

static int
store_field(struct report_event *ev, const char *key, size_t klen,
            const char *val, bool truncated, const char **err)
{
	long long v;

	if (key_is(key, klen, "event")) {
		if (set_name(ev->name, sizeof(ev->name), val, truncated, err) <
		    0)
			return -1;
		ev->type = REV_OTHER;
		for (size_t i = 0;
		     i < sizeof(event_names) / sizeof(event_names[0]); i++)
			if (strcmp(val, event_names[i].name) == 0)
				ev->type = event_names[i].type;
		return 0;
	}
	if (key_is(key, klen, "backend"))
		return set_name(ev->backend, sizeof(ev->backend), val,
		                truncated, err);
	if (key_is(key, klen, "server"))
		return set_name(ev->server, sizeof(ev->server), val, truncated,
		                err);
	if (key_is(key, klen, "addr"))
		return set_name(ev->addr, sizeof(ev->addr), val, truncated,
		                err);
	if (key_is(key, klen, "step")) {
		/* Future steps are tolerated; only the length is bounded. */
		return set_name(ev->step, sizeof(ev->step), val, truncated,
		                err);
	}
	if (key_is(key, klen, "code")) {
		/* A code that is not one is tolerated (treated as none). */
		if (parse_long(val, &v) && v >= 100 && v <= 599)
			ev->code = (int)v;
		return 0;
	}
	if (key_is(key, klen, "reply")) {
		set_text(ev->reply, sizeof(ev->reply), val, truncated);
		return 0;
	}
	if (key_is(key, klen, "reason")) {
		set_text(ev->reason, sizeof(ev->reason), val, truncated);
		return 0;
	}
	if (key_is(key, klen, "downtime_s")) {
		if (parse_long(val, &v) && v >= 0 &&
		    v <= REPORT_DURATION_MAX_MS / 1000 * 100)
			ev->downtime_s = v;
		return 0;
	}
	if (key_is(key, klen, "not_after")) {
		if (set_name(ev->not_after, sizeof(ev->not_after), val,
		             truncated, err) < 0)
			return -1;
		if (rfc3339_parse(val, &ev->not_after_ms) < 0)
			ev->not_after_ms = REPORT_FROM_FIRST;
		return 0;
	}
	if (key_is(key, klen, "days_left")) {
		if (parse_long(val, &v) && v > -1000000 && v < 1000000) {
			ev->days_left = (long)v;
			ev->has_days_left = true;
		}
		return 0;
	}
	return 0; /* unknown keys are tolerated */
}

int
report_parse_line(const char *line, struct report_event *ev, const char **err)
{
	char ts[REPORT_TIME_MAX];
	char val[REPORT_TEXT_MAX];
	const char *p = line, *end, *key;
	size_t n, klen;
	bool truncated, have_event = false;

	memset(ev, 0, sizeof(*ev));
	ev->code = -1;
	ev->downtime_s = -1;
	ev->days_left = -1;
	ev->not_after_ms = REPORT_FROM_FIRST;

	/* The line ends at its newline (CR LF tolerated). */
	end = line + strcspn(line, "\r\n");

	n = strcspn(p, " \t\r\n");
	if (n == 0) {
		*err = "empty line";
		return -1;
	}
	if (n >= sizeof(ts)) {
		*err = "bad timestamp";
		return -1;
	}
	memcpy(ts, p, n);
	ts[n] = '\0';
	if (rfc3339_parse(ts, &ev->t_ms) < 0) {
		*err = "bad timestamp";
		return -1;
	}
	p += n;

	for (;;) {
		while (p < end && is_blank(*p))
			p++;
		if (p >= end)
			break;
		key = p;
		while (p < end && !is_blank(*p) && *p != '=')
			p++;
		klen = (size_t)(p - key);
		if (klen == 0) {
			*err = "empty key";
			return -1;
		}
		if (p >= end || *p != '=')
			continue; /* a bare word: tolerated, ignored */
		p++;
		n = 0;
		truncated = false;
		if (p < end && *p == '"') {
			bool closed = false;

			for (p++; p < end; p++) {
				char c = *p;

				if (c == '"') {
					closed = true;
					p++;
					break;
				}
				if (c == '\\' && p + 1 < end &&
				    (p[1] == '"' || p[1] == '\\'))
					c = *++p;
				if (n + 1 < sizeof(val))
					val[n++] = c;
				else
					truncated = true;
			}
			if (!closed) {
				*err = "unterminated quoted value";
				return -1;
			}
			if (p < end && !is_blank(*p)) {
				*err = "text after a quoted value";
				return -1;
			}
		} else {
			for (; p < end && !is_blank(*p); p++) {
				if (n + 1 < sizeof(val))
					val[n++] = *p;
				else
					truncated = true;
			}
		}
		val[n] = '\0';
		if (key_is(key, klen, "event"))
			have_event = true;
		if (store_field(ev, key, klen, val, truncated, err) < 0)
			return -1;
	}

	if (!have_event || ev->name[0] == '\0') {
		*err = "no event";
		return -1;
	}
	switch (ev->type) {
	case REV_UP:
	case REV_DOWN:
	case REV_FAIL:
	case REV_DRAIN:
	case REV_MAINT:
	case REV_READY:
	case REV_CERT_EXPIRY:
		if (ev->backend[0] == '\0' || ev->server[0] == '\0') {
			*err = "missing backend or server";
			return -1;
		}
		break;
	case REV_BACKEND_DOWN:
	case REV_BACKEND_UP:
		if (ev->backend[0] == '\0') {
			*err = "missing backend";
			return -1;
		}
		break;
	case REV_OTHER:
	case REV_START:
		break;
	}
	return 0;
}

/* ---- Accumulation ---- */

void
report_init(struct report *r, int64_t from_ms, int64_t to_ms)
{
	memset(r, 0, sizeof(*r));
	r->from_ms = from_ms;
	r->to_ms = to_ms;
}

void
report_free(struct report *r)
{
	for (size_t i = 0; i < r->n_servers; i++)
		free(r->servers[i].outages);
	free(r->servers);
	free(r->backends);
	r->servers = NULL;
	r->backends = NULL;
	r->n_servers = r->n_backends = 0;
	r->cap_servers = r->cap_backends = 0;
}

/* Part of [a, b] inside the window. */
static int64_t
in_window(const struct report *r, int64_t a, int64_t b)
{
	int64_t lo = max64(a, r->from_ms), hi = min64(b, r->to_ms);

	return hi > lo ? hi - lo : 0;
}

static bool
t_in_window(const struct report *r, int64_t t)
{
	return t >= r->from_ms && t <= r->to_ms;
}

static int
grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap == 0 ? 16 : *cap * 2;
	p = realloc(*arr, ncap * size);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

static struct report_backend *
find_backend(struct report *r, const char *name)
{
	struct report_backend *b;

	for (size_t i = 0; i < r->n_backends; i++)
		if (strcmp(r->backends[i].name, name) == 0)
			return &r->backends[i];
	if (r->n_backends >= REPORT_SERVERS_MAX) {
		errno = ENOSPC;
		return NULL;
	}
	if (grow((void **)&r->backends, &r->cap_backends, r->n_backends,
	         sizeof(*r->backends)) < 0)
		return NULL;
	b = &r->backends[r->n_backends++];
	memset(b, 0, sizeof(*b));
	copy_str(b->name, sizeof(b->name), name);
	b->mark_ms = INT64_MIN;
	return b;
}

/* A new server, UP and ready, time accounted from mark_ms. */
static struct report_server *
new_server(struct report *r, const char *backend, const char *server,
           int64_t mark_ms)
{
	struct report_server *s;

	if (r->n_servers >= REPORT_SERVERS_MAX) {
		errno = ENOSPC;
		return NULL;
	}
	if (grow((void **)&r->servers, &r->cap_servers, r->n_servers,
	         sizeof(*r->servers)) < 0)
		return NULL;
	s = &r->servers[r->n_servers++];
	memset(s, 0, sizeof(*s));
	copy_str(s->backend, sizeof(s->backend), backend);
	copy_str(s->server, sizeof(s->server), server);
	s->admin = RADMIN_READY;
	s->conf_admin = RADMIN_READY;
	s->mark_ms = mark_ms;
	s->last_up_ms = -1;
	s->cert_not_after_ms = REPORT_FROM_FIRST;
	return s;
}

/* The server of an event, made when unknown; *fresh: this is its first
 * event (it may have been declared from the configuration before). */
static struct report_server *
find_server(struct report *r, const char *backend, const char *server,
            int64_t t, bool *fresh)
{
	struct report_server *s = NULL;

	for (size_t i = 0; i < r->n_servers && s == NULL; i++)
		if (strcmp(r->servers[i].backend, backend) == 0 &&
		    strcmp(r->servers[i].server, server) == 0)
			s = &r->servers[i];
	if (s == NULL && (s = new_server(r, backend, server, t)) == NULL)
		return NULL;
	*fresh = !s->has_events;
	s->has_events = true;
	return s;
}

int
report_declare_server(struct report *r, const char *backend, const char *server,
                      const char *addr, enum report_admin admin)
{
	struct report_server *s;

	if (strlen(backend) >= REPORT_NAME_MAX ||
	    strlen(server) >= REPORT_NAME_MAX) {
		errno = ENAMETOOLONG; /* its log lines are malformed too */
		return -1;
	}
	if (report_find_server(r, backend, server) != NULL)
		return 0; /* declared twice: the first one stays */
	if (find_backend(r, backend) == NULL)
		return -1;
	/* Its state holds from the window start (INT64_MIN: wherever that
	 * turns out to be), as if the daemon had started before it. */
	if ((s = new_server(r, backend, server, INT64_MIN)) == NULL)
		return -1;
	if (addr != NULL && strlen(addr) < sizeof(s->addr))
		copy_str(s->addr, sizeof(s->addr), addr);
	s->configured = true;
	s->conf_admin = admin;
	s->admin = admin;
	r->n_configured++;
	return 0;
}

/* Account the time from the last mark to t in the current state. */
static void
server_accrue(const struct report *r, struct report_server *s, int64_t t)
{
	int64_t d;

	if (t <= s->mark_ms)
		return;
	d = in_window(r, s->mark_ms, t);
	if (s->admin != RADMIN_READY)
		s->maint_ms += d;
	else if (s->down)
		s->downtime_ms += d;
	s->mark_ms = t;
}

static void
backend_accrue(const struct report *r, struct report_backend *b, int64_t t)
{
	int64_t d;

	if (b->mark_ms == INT64_MIN || t <= b->mark_ms) {
		b->mark_ms = max64(b->mark_ms, t);
		return;
	}
	d = in_window(r, b->mark_ms, t);
	if (b->down) {
		b->no_server_ms += d;
		b->cur_ms += d;
	}
	b->mark_ms = t;
}

static struct report_outage *
newest_outage(struct report_server *s)
{
	return &s->outages[(s->first + s->n_outages - 1) % s->cap];
}

const struct report_outage *
report_outage(const struct report_server *s, size_t i)
{
	return &s->outages[(s->first + i) % s->cap];
}

static int
outage_open(struct report_server *s, int64_t start,
            const struct report_failure *why, bool after_maint)
{
	struct report_outage *o;

	if (s->n_outages == s->cap && s->cap < REPORT_OUTAGES_KEEP) {
		size_t ncap = s->cap == 0 ? 4 : s->cap * 2;

		if (ncap > REPORT_OUTAGES_KEEP)
			ncap = REPORT_OUTAGES_KEEP;
		/* Not wrapped yet: first is 0 until the ring is full. */
		o = realloc(s->outages, ncap * sizeof(*o));
		if (o == NULL)
			return -1;
		s->outages = o;
		s->cap = ncap;
	}
	if (s->n_outages == s->cap) { /* full: drop the oldest */
		s->first = (s->first + 1) % s->cap;
		s->n_outages--;
	}
	s->n_outages++;
	o = newest_outage(s);
	memset(o, 0, sizeof(*o));
	o->start_ms = start;
	o->end_ms = -1;
	o->after_maint = after_maint;
	o->why = *why;
	s->outages_total++;
	s->in_outage = true;
	return 0;
}

static void
outage_close(const struct report *r, struct report_server *s, int64_t end)
{
	struct report_outage *o = newest_outage(s);

	s->in_outage = false;
	o->end_ms = end;
	o->window_ms = in_window(r, o->start_ms, end);
	if (end <= r->from_ms) { /* entirely before the window */
		s->n_outages--;
		s->outages_total--;
		return;
	}
	s->longest_ms = max64(s->longest_ms, o->window_ms);
}

static void
failure_from_event(const struct report_event *ev, struct report_failure *f)
{
	memset(f, 0, sizeof(*f));
	f->t_ms = ev->t_ms;
	copy_str(f->step, sizeof(f->step), ev->step);
	f->code = ev->code;
	copy_str(f->reply, sizeof(f->reply), ev->reply);
	copy_str(f->reason, sizeof(f->reason), ev->reason);
}

static int
server_event(struct report *r, const struct report_event *ev, int64_t t)
{
	struct report_server *s;
	struct report_failure f;
	enum report_admin was;
	bool fresh;

	s = find_server(r, ev->backend, ev->server, t, &fresh);
	if (s == NULL)
		return -1;
	/* Out-of-order lines are taken as simultaneous with the last. */
	t = max64(t, s->mark_ms);
	server_accrue(r, s, t);
	if (ev->addr[0] != '\0')
		copy_str(s->addr, sizeof(s->addr), ev->addr);

	switch (ev->type) {
	case REV_DOWN:
		failure_from_event(ev, &f);
		if (t_in_window(r, t)) {
			s->down_events++;
			s->has_failure = true;
			s->last_failure = f;
		}
		if (s->down)
			break; /* repeated: the outage goes on */
		s->down = true;
		s->seen_down = true;
		s->down_why = f;
		if (s->admin != RADMIN_READY)
			break; /* maintenance is not an outage */
		if (t_in_window(r, t) && s->last_up_ms >= 0 &&
		    t - s->last_up_ms < REPORT_FLAP_GAP_MS)
			s->flaps++;
		return outage_open(s, t, &f, false);
	case REV_FAIL:
		if (t_in_window(r, t)) {
			failure_from_event(ev, &s->last_failure);
			s->has_failure = true;
		}
		break;
	case REV_UP:
		if (s->down) {
			s->down = false;
			if (s->in_outage) {
				outage_close(r, s, t);
				s->last_up_ms = t;
			}
		} else if (fresh && ev->downtime_s > 0 &&
		           s->admin == RADMIN_READY) {
			/* Its `down` is in an older (rotated) log: rebuild
			 * the outage from the logged downtime. */
			memset(&f, 0, sizeof(f));
			f.code = -1;
			f.t_ms = t - ev->downtime_s * 1000;
			copy_str(f.reason, sizeof(f.reason),
			         "went down before the log begins");
			if (outage_open(s, f.t_ms, &f, false) < 0)
				return -1;
			s->downtime_ms += in_window(r, f.t_ms, t);
			s->seen_down = true;
			outage_close(r, s, t);
			s->last_up_ms = t;
		}
		break;
	case REV_DRAIN:
	case REV_MAINT:
		if (s->in_outage)
			outage_close(r, s, t);
		s->admin = ev->type == REV_DRAIN ? RADMIN_DRAIN : RADMIN_MAINT;
		break;
	case REV_READY:
		was = s->admin;
		s->admin = RADMIN_READY;
		if (was != RADMIN_READY && s->down)
			return outage_open(s, t, &s->down_why, true);
		break;
	case REV_CERT_EXPIRY:
		s->has_cert = true;
		copy_str(s->cert_not_after, sizeof(s->cert_not_after),
		         ev->not_after);
		s->cert_not_after_ms = ev->not_after_ms;
		s->cert_days_left = ev->days_left;
		s->cert_has_days = ev->has_days_left;
		break;
	default:
		break;
	}
	return 0;
}

static int
backend_event(struct report *r, const struct report_event *ev, int64_t t)
{
	struct report_backend *b = find_backend(r, ev->backend);

	if (b == NULL)
		return -1;
	t = max64(t, b->mark_ms);
	backend_accrue(r, b, t);
	if (ev->type == REV_BACKEND_DOWN) {
		if (t_in_window(r, t))
			b->down_events++;
		if (!b->down) {
			b->down = true;
			b->down_since = t;
			b->cur_ms = 0;
		}
	} else if (ev->type == REV_BACKEND_UP && b->down) {
		b->down = false;
		b->longest_ms = max64(b->longest_ms, b->cur_ms);
	}
	return 0;
}

/* The daemon restarted: servers start UP and ready, or in MAINT when
 * disabled in the configuration (load-balancer.conf(5), HEALTH CHECKS,
 * SERVERS). */
static void
restart_event(struct report *r, int64_t t)
{
	for (size_t i = 0; i < r->n_servers; i++) {
		struct report_server *s = &r->servers[i];
		int64_t ts = max64(t, s->mark_ms);

		server_accrue(r, s, ts);
		if (s->in_outage)
			outage_close(r, s, ts);
		s->down = false;
		/* A server disabled in the configuration starts in MAINT,
		 * without an event. */
		s->admin = s->conf_admin;
	}
	for (size_t i = 0; i < r->n_backends; i++) {
		struct report_backend *b = &r->backends[i];

		backend_accrue(r, b, max64(t, b->mark_ms));
		if (b->down)
			b->longest_ms = max64(b->longest_ms, b->cur_ms);
		b->down = false;
	}
}

int
report_add(struct report *r, const struct report_event *ev)
{
	int64_t t = ev->t_ms;

	if (t > r->to_ms) {
		r->future++;
		return 0;
	}
	if (r->from_ms == REPORT_FROM_FIRST)
		r->from_ms = t;
	switch (ev->type) {
	case REV_UP:
	case REV_DOWN:
	case REV_FAIL:
	case REV_DRAIN:
	case REV_MAINT:
	case REV_READY:
	case REV_CERT_EXPIRY:
		/* Make the backend known (listed even without events). */
		if (find_backend(r, ev->backend) == NULL ||
		    server_event(r, ev, t) < 0) {
			if (errno != ENOSPC)
				return -1;
			r->overflow++;
			return 0;
		}
		break;
	case REV_BACKEND_DOWN:
	case REV_BACKEND_UP:
		if (backend_event(r, ev, t) < 0) {
			if (errno != ENOSPC)
				return -1;
			r->overflow++;
			return 0;
		}
		break;
	case REV_START:
		restart_event(r, t);
		break;
	case REV_OTHER:
		break;
	}
	r->events++;
	return 0;
}

int
report_add_line(struct report *r, const char *line)
{
	struct report_event ev;
	const char *err;

	r->lines++;
	if (line[strspn(line, " \t\r\n")] == '\0')
		return 0; /* blank lines are not worth a warning */
	if (report_parse_line(line, &ev, &err) < 0) {
		r->malformed++;
		return 0;
	}
	return report_add(r, &ev);
}

int
report_read(struct report *r, FILE *fp)
{
	char buf[REPORT_LINE_MAX + 2];
	bool skipping = false;

	while (fgets(buf, sizeof(buf), fp) != NULL) {
		size_t n = strlen(buf);
		bool complete = n > 0 && buf[n - 1] == '\n';

		if (skipping) { /* the rest of an over-long line */
			if (complete)
				skipping = false;
			continue;
		}
		if (!complete && n >= sizeof(buf) - 1) {
			r->lines++;
			r->too_long++;
			skipping = true;
			continue;
		}
		/* A last line without '\n' is parsed as it is. */
		if (report_add_line(r, buf) < 0)
			return -1;
	}
	if (ferror(fp)) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return 0;
}

static int
cmp_server(const void *a, const void *b)
{
	const struct report_server *x = a, *y = b;
	int c = strcmp(x->backend, y->backend);

	return c != 0 ? c : strcmp(x->server, y->server);
}

static int
cmp_backend(const void *a, const void *b)
{
	const struct report_backend *x = a, *y = b;

	return strcmp(x->name, y->name);
}

void
report_finish(struct report *r)
{
	if (r->finished)
		return;
	r->finished = true;
	if (r->from_ms == REPORT_FROM_FIRST || r->from_ms > r->to_ms)
		r->from_ms = r->to_ms;
	for (size_t i = 0; i < r->n_servers; i++) {
		struct report_server *s = &r->servers[i];

		server_accrue(r, s, r->to_ms);
		if (s->in_outage) {
			struct report_outage *o = newest_outage(s);

			o->window_ms = in_window(r, o->start_ms, r->to_ms);
			s->longest_ms = max64(s->longest_ms, o->window_ms);
		}
	}
	for (size_t i = 0; i < r->n_backends; i++) {
		struct report_backend *b = &r->backends[i];

		backend_accrue(r, b, r->to_ms);
		if (b->down)
			b->longest_ms = max64(b->longest_ms, b->cur_ms);
	}
	if (r->n_servers > 1)
		qsort(r->servers, r->n_servers, sizeof(*r->servers),
		      cmp_server);
	if (r->n_backends > 1)
		qsort(r->backends, r->n_backends, sizeof(*r->backends),
		      cmp_backend);
}

const struct report_server *
report_find_server(const struct report *r, const char *backend,
                   const char *server)
{
	for (size_t i = 0; i < r->n_servers; i++)
		if (strcmp(r->servers[i].backend, backend) == 0 &&
		    strcmp(r->servers[i].server, server) == 0)
			return &r->servers[i];
	return NULL;
}

const struct report_backend *
report_find_backend(const struct report *r, const char *name)
{
	for (size_t i = 0; i < r->n_backends; i++)
		if (strcmp(r->backends[i].name, name) == 0)
			return &r->backends[i];
	return NULL;
}

double
report_availability(const struct report *r, const struct report_server *s)
{
	int64_t w = r->to_ms - r->from_ms;

	if (w <= 0)
		return s->down && s->admin == RADMIN_READY ? 0.0 : 100.0;
	return 100.0 * (double)(w - s->downtime_ms) / (double)w;
}

bool
report_cert_days(const struct report *r, const struct report_server *s,
                 long *days)
{
	if (!s->has_cert)
		return false;
	if (s->cert_not_after_ms != REPORT_FROM_FIRST) {
		*days = (long)rfc3339_days(s->cert_not_after_ms - r->to_ms);
		return true;
	}
	if (s->cert_has_days) {
		*days = s->cert_days_left;
		return true;
	}
	return false;
}

void
report_format_failure(const struct report_failure *f, char *buf, size_t len)
{
	const char *sep = f->step[0] != '\0' ? ": " : "";

	if (f->code >= 0)
		snprintf(buf, len, "%s%s%d%s%s", f->step, sep, f->code,
		         f->reply[0] != '\0' ? " " : "", f->reply);
	else if (f->reason[0] != '\0')
		snprintf(buf, len, "%s%s%s", f->step, sep, f->reason);
	else if (f->reply[0] != '\0')
		snprintf(buf, len, "%s%s%s", f->step, sep, f->reply);
	else if (f->step[0] != '\0')
		snprintf(buf, len, "%s", f->step);
	else
		snprintf(buf, len, "-");
}

/* ---- Output ---- */

static const char *
state_name(const struct report_server *s)
{
	if (s->admin == RADMIN_MAINT)
		return "MAINT";
	if (s->admin == RADMIN_DRAIN)
		return "DRAIN";
	return s->down ? "DOWN" : "UP";
}

/* Availability truncated (never rounded up to 100 with downtime). */
static void
format_pct(double pct, int decimals, char *buf, size_t len)
{
	long long scale = decimals == 4 ? 10000 : 1000;
	long long v = (long long)(pct * (double)scale);

	if (v < 0)
		v = 0;
	snprintf(buf, len, "%lld.%0*lld", v / scale, decimals, v % scale);
}

/* Display width of a UTF-8 string, in code points. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

static void
pad(FILE *fp, size_t n)
{
	while (n-- > 0)
		fputc(' ', fp);
}

/* Text with control characters shown as '?' (defensive: the log's
 * texts come from remote SMTP servers). */
static void
put_clean(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++)
		fputc(iscntrl((unsigned char)*s) ? '?' : *s, fp);
}

/* One table cell, left or right aligned, then two spaces unless last. */
static void
cell(FILE *fp, const char *s, size_t width, bool right, bool last)
{
	size_t w = text_width(s);

	if (right)
		pad(fp, width > w ? width - w : 0);
	put_clean(fp, s);
	if (last)
		return;
	if (!right)
		pad(fp, width > w ? width - w : 0);
	fputs("  ", fp);
}

enum {
	C_BACKEND,
	C_SERVER,
	C_ADDR,
	C_STATE,
	C_AVAIL,
	C_DOWNS,
	C_DOWNTIME,
	C_LONGEST,
	C_FLAPS,
	C_MAINT,
	C_CERT,
	C_N
};

static const struct {
	const char *head;
	bool right;
} server_cols[C_N] = {
    {"BACKEND", false}, {"SERVER", false},      {"ADDRESS", false},
    {"NOW", false},     {"AVAIL", true},        {"DOWNS", true},
    {"DOWNTIME", true}, {"LONGEST", true},      {"FLAPS", true},
    {"MAINT", true},    {"CERT EXPIRY", false},
};

#define CELL_MAX (REPORT_NAME_MAX + 32)

static void
server_cells(const struct report *r, const struct report_server *s,
             char cells[C_N][CELL_MAX])
{
	char tmp[64];
	long days;

	snprintf(cells[C_BACKEND], CELL_MAX, "%s", s->backend);
	snprintf(cells[C_SERVER], CELL_MAX, "%s", s->server);
	snprintf(cells[C_ADDR], CELL_MAX, "%s",
	         s->addr[0] != '\0' ? s->addr : "-");
	snprintf(cells[C_STATE], CELL_MAX, "%s", state_name(s));
	format_pct(report_availability(r, s), 3, tmp, sizeof(tmp));
	snprintf(cells[C_AVAIL], CELL_MAX, "%s%%", tmp);
	snprintf(cells[C_DOWNS], CELL_MAX, "%lu", s->down_events);
	report_format_duration(s->downtime_ms, cells[C_DOWNTIME], CELL_MAX);
	report_format_duration(s->longest_ms, cells[C_LONGEST], CELL_MAX);
	snprintf(cells[C_FLAPS], CELL_MAX, "%lu", s->flaps);
	report_format_duration(s->maint_ms, cells[C_MAINT], CELL_MAX);
	if (!report_cert_days(r, s, &days)) {
		snprintf(cells[C_CERT], CELL_MAX, "-");
	} else {
		const char *date = s->cert_not_after;
		char dbuf[REPORT_TIME_MAX];

		if (s->cert_not_after_ms != REPORT_FROM_FIRST) {
			rfc3339_format(s->cert_not_after_ms, false, dbuf,
			               sizeof(dbuf));
			dbuf[10] = '\0'; /* the date */
			date = dbuf;
		}
		if (days < 0)
			snprintf(cells[C_CERT], CELL_MAX, "%s EXPIRED",
			         date[0] != '\0' ? date : "?");
		else
			snprintf(cells[C_CERT], CELL_MAX, "%s (%ldd)",
			         date[0] != '\0' ? date : "?", days);
	}
}

static void
print_servers(const struct report *r, FILE *fp)
{
	size_t width[C_N];
	char cells[C_N][CELL_MAX];

	for (int c = 0; c < C_N; c++)
		width[c] = strlen(server_cols[c].head);
	for (size_t i = 0; i < r->n_servers; i++) {
		server_cells(r, &r->servers[i], cells);
		for (int c = 0; c < C_N; c++)
			width[c] = max64((int64_t)width[c],
			                 (int64_t)text_width(cells[c]));
	}
	for (int c = 0; c < C_N; c++)
		cell(fp, server_cols[c].head, width[c], server_cols[c].right,
		     c == C_N - 1);
	fputc('\n', fp);
	for (size_t i = 0; i < r->n_servers; i++) {
		server_cells(r, &r->servers[i], cells);
		for (int c = 0; c < C_N; c++) {
			if (c == C_N - 1) {
				put_clean(fp, cells[c]);
				break;
			}
			cell(fp, cells[c], width[c], server_cols[c].right,
			     false);
		}
		fputc('\n', fp);
	}
}

static void
print_backends(const struct report *r, FILE *fp)
{
	size_t wname = strlen("BACKEND"), wev = strlen("NO-SERVER EVENTS");
	size_t wtime = strlen("TIME WITH NO SERVER");
	char t1[32], t2[32];

	for (size_t i = 0; i < r->n_backends; i++)
		wname = max64((int64_t)wname,
		              (int64_t)text_width(r->backends[i].name));
	cell(fp, "BACKEND", wname, false, false);
	cell(fp, "NO-SERVER EVENTS", wev, true, false);
	cell(fp, "TIME WITH NO SERVER", wtime, true, false);
	cell(fp, "LONGEST", 8, true, false);
	fputs("NOW\n", fp);
	for (size_t i = 0; i < r->n_backends; i++) {
		const struct report_backend *b = &r->backends[i];

		snprintf(t1, sizeof(t1), "%lu", b->down_events);
		report_format_duration(b->no_server_ms, t2, sizeof(t2));
		cell(fp, b->name, wname, false, false);
		cell(fp, t1, wev, true, false);
		cell(fp, t2, wtime, true, false);
		report_format_duration(b->longest_ms, t1, sizeof(t1));
		cell(fp, t1, 8, true, false);
		fputs(b->down ? "NO SERVER UP\n" : "ok\n", fp);
	}
}

static void
print_failures(const struct report *r, FILE *fp)
{
	char when[32], why[REPORT_TEXT_MAX * 2 + REPORT_STEP_MAX + 16];
	size_t wname = 0;
	bool any = false;

	for (size_t i = 0; i < r->n_servers; i++) {
		const struct report_server *s = &r->servers[i];

		if (s->has_failure) {
			any = true;
			wname = max64((int64_t)wname,
			              (int64_t)(text_width(s->backend) + 1 +
			                        text_width(s->server)));
		}
	}
	if (!any)
		return;
	fputs("\nLast failure\n", fp);
	for (size_t i = 0; i < r->n_servers; i++) {
		const struct report_server *s = &r->servers[i];

		if (!s->has_failure)
			continue;
		rfc3339_format_text(s->last_failure.t_ms, when, sizeof(when));
		report_format_failure(&s->last_failure, why, sizeof(why));
		fprintf(fp, "  %s/%s", s->backend, s->server);
		pad(fp, wname - (text_width(s->backend) + 1 +
		                 text_width(s->server)));
		fprintf(fp, "  %s  ", when);
		put_clean(fp, why);
		fputc('\n', fp);
	}
}

static void
print_outages(const struct report *r, FILE *fp)
{
	char start[32], end[32], dur[32];
	char why[REPORT_TEXT_MAX * 2 + REPORT_STEP_MAX + 16];
	bool any = false, clipped = false;

	for (size_t i = 0; i < r->n_servers; i++) {
		const struct report_server *s = &r->servers[i];

		if (s->n_outages == 0)
			continue;
		if (!any)
			fputs("\nOutages (start, end, duration in the window, "
			      "reason)\n",
			      fp);
		any = true;
		fprintf(fp, "  %s/%s", s->backend, s->server);
		if (s->outages_total > s->n_outages)
			fprintf(fp, " (last %zu of %lu)", s->n_outages,
			        s->outages_total);
		fputc('\n', fp);
		for (size_t j = 0; j < s->n_outages; j++) {
			const struct report_outage *o = report_outage(s, j);
			bool before = o->start_ms < r->from_ms;

			rfc3339_format_text(o->start_ms, start, sizeof(start));
			if (o->end_ms < 0)
				snprintf(end, sizeof(end), "ongoing");
			else
				rfc3339_format_text(o->end_ms, end,
				                    sizeof(end));
			report_format_duration(o->window_ms, dur, sizeof(dur));
			report_format_failure(&o->why, why, sizeof(why));
			fprintf(fp, "    %s%s  %-19s  %7s  ", start,
			        before ? "*" : " ", end, dur);
			if (o->after_maint)
				fputs("(still down after maintenance) ", fp);
			put_clean(fp, why);
			fputc('\n', fp);
			clipped = clipped || before;
		}
	}
	if (clipped)
		fputs("  * began before the window; only the part inside the "
		      "window is counted\n",
		      fp);
}

/* "Now: 4 UP, 1 DOWN (B/S), 0 in maintenance; no backend without a
 * server." */
static void
print_now(const struct report *r, FILE *fp)
{
	size_t up = 0, down = 0, maint = 0, shown = 0, nobackend = 0;

	if (r->n_servers == 0)
		return;
	for (size_t i = 0; i < r->n_servers; i++) {
		const struct report_server *s = &r->servers[i];

		if (s->admin != RADMIN_READY)
			maint++;
		else if (s->down)
			down++;
		else
			up++;
	}
	fprintf(fp, "Now: %zu UP, %zu DOWN", up, down);
	for (size_t i = 0; i < r->n_servers && down > 0; i++) {
		const struct report_server *s = &r->servers[i];

		if (s->admin != RADMIN_READY || !s->down)
			continue;
		if (shown == 5) {
			fputs(", ...", fp);
			break;
		}
		fputs(shown == 0 ? " (" : ", ", fp);
		put_clean(fp, s->backend);
		fputc('/', fp);
		put_clean(fp, s->server);
		shown++;
	}
	if (shown > 0)
		fputc(')', fp);
	fprintf(fp, ", %zu drained or disabled", maint);
	for (size_t i = 0; i < r->n_backends; i++)
		if (r->backends[i].down)
			nobackend++;
	if (nobackend > 0)
		fprintf(fp, "; %zu backend%s with NO SERVER UP", nobackend,
		        nobackend == 1 ? "" : "s");
	fputs(".\n", fp);
}

int
report_print_text(const struct report *r, const char *source, FILE *fp)
{
	char from[32], to[32], len[32], flap[32];
	unsigned long skipped = r->malformed + r->too_long + r->overflow;

	rfc3339_format_text(r->from_ms, from, sizeof(from));
	rfc3339_format_text(r->to_ms, to, sizeof(to));
	format_window(r->to_ms - r->from_ms, len, sizeof(len));
	fprintf(fp, "Health report from %s to %s UTC (%s)\n", from, to, len);
	if (source != NULL)
		fprintf(fp, "Log %s: ", source);
	else
		fputs("Log: ", fp);
	fprintf(fp, "%lu event%s", r->events, r->events == 1 ? "" : "s");
	if (skipped > 0) {
		const char *sep = " (";

		fprintf(fp, ", %lu line%s skipped", skipped,
		        skipped == 1 ? "" : "s");
		if (r->malformed > 0) {
			fprintf(fp, "%s%lu malformed", sep, r->malformed);
			sep = ", ";
		}
		if (r->too_long > 0) {
			fprintf(fp, "%s%lu longer than %d bytes", sep,
			        r->too_long, REPORT_LINE_MAX);
			sep = ", ";
		}
		if (r->overflow > 0)
			fprintf(fp, "%s%lu past %d servers", sep, r->overflow,
			        REPORT_SERVERS_MAX);
		fputc(')', fp);
	}
	if (r->future > 0)
		fprintf(fp, ", %lu after the window ignored", r->future);
	fputc('\n', fp);
	if (r->config != NULL) {
		fputs("Configuration ", fp);
		put_clean(fp, r->config);
		fprintf(fp, ": %zu server%s\n", r->n_configured,
		        r->n_configured == 1 ? "" : "s");
	}
	print_now(r, fp);
	fputc('\n', fp);
	if (r->n_servers == 0) {
		fputs("No server events in this window: every server was UP "
		      "throughout.\n",
		      fp);
	} else {
		print_servers(r, fp);
		print_failures(r, fp);
		print_outages(r, fp);
	}
	if (r->n_backends > 0) {
		fputc('\n', fp);
		print_backends(r, fp);
	}

	format_window(REPORT_FLAP_GAP_MS, flap, sizeof(flap));
	fprintf(fp,
	        "\nAVAIL: time not DOWN / window length. DOWNS: down events. "
	        "DOWNTIME, LONGEST:\n"
	        "time DOWN inside the window (a server still DOWN counts "
	        "until now). MAINT:\n"
	        "time drained or disabled, not counted as downtime. FLAPS: "
	        "outages that began\n"
	        "less than %s after the previous outage ended. A server "
	        "without events was UP,\n"
	        "or MAINT when disabled in the configuration. Times are "
	        "UTC.\n",
	        flap);
	return ferror(fp) ? -1 : 0;
}

void
report_json_string(FILE *fp, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', fp);
	while (*s != '\0') {
		unsigned char c = *s;
		size_t n = 0;

		if (c == '"' || c == '\\') {
			fputc('\\', fp);
			fputc(c, fp);
			s++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\n':
				fputs("\\n", fp);
				break;
			case '\r':
				fputs("\\r", fp);
				break;
			case '\t':
				fputs("\\t", fp);
				break;
			default:
				fprintf(fp, "\\u%04x", c);
			}
			s++;
			continue;
		}
		if (c < 0x80) {
			fputc(c, fp);
			s++;
			continue;
		}
		/* A well-formed UTF-8 sequence passes; anything else is
		 * replaced by U+FFFD, one byte at a time. */
		if (c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3;
		if (n > 0) {
			bool ok = true;

			for (size_t i = 1; i <= n; i++)
				if ((s[i] & 0xC0) != 0x80)
					ok = false;
			/* overlongs, surrogates, > U+10FFFF */
			if (ok && c == 0xE0 && s[1] < 0xA0)
				ok = false;
			if (ok && c == 0xED && s[1] > 0x9F)
				ok = false;
			if (ok && c == 0xF0 && s[1] < 0x90)
				ok = false;
			if (ok && c == 0xF4 && s[1] > 0x8F)
				ok = false;
			if (ok) {
				fwrite(s, 1, n + 1, fp);
				s += n + 1;
				continue;
			}
		}
		fputs("\\ufffd", fp);
		s++;
	}
	fputc('"', fp);
}

/* Milliseconds as JSON seconds: "66", "66.004", "0.5". */
static void
json_seconds(FILE *fp, int64_t ms)
{
	long long frac;
	char fbuf[8];
	int n;

	if (ms < 0)
		ms = 0;
	frac = (long long)(ms % 1000);
	if (frac == 0) {
		fprintf(fp, "%lld", (long long)(ms / 1000));
		return;
	}
	n = snprintf(fbuf, sizeof(fbuf), "%03lld", frac);
	while (n > 0 && fbuf[n - 1] == '0')
		fbuf[--n] = '\0';
	fprintf(fp, "%lld.%s", (long long)(ms / 1000), fbuf);
}

static void
json_time(FILE *fp, int64_t ms)
{
	char buf[REPORT_TIME_MAX];

	rfc3339_format(ms, true, buf, sizeof(buf));
	report_json_string(fp, buf);
}

static void
json_failure(FILE *fp, const struct report_failure *f)
{
	fputs("{\"time\": ", fp);
	json_time(fp, f->t_ms);
	fputs(", \"step\": ", fp);
	if (f->step[0] != '\0')
		report_json_string(fp, f->step);
	else
		fputs("null", fp);
	if (f->code >= 0)
		fprintf(fp, ", \"code\": %d, \"reply\": ", f->code);
	else
		fputs(", \"code\": null, \"reply\": ", fp);
	if (f->code >= 0 || f->reply[0] != '\0')
		report_json_string(fp, f->reply);
	else
		fputs("null", fp);
	fputs(", \"reason\": ", fp);
	if (f->reason[0] != '\0')
		report_json_string(fp, f->reason);
	else
		fputs("null", fp);
	fputc('}', fp);
}

static void
json_server(const struct report *r, const struct report_server *s, FILE *fp)
{
	char buf[REPORT_TEXT_MAX * 2 + REPORT_STEP_MAX + 16];
	long days;

	fputs("    {\"backend\": ", fp);
	report_json_string(fp, s->backend);
	fputs(", \"server\": ", fp);
	report_json_string(fp, s->server);
	fputs(", \"addr\": ", fp);
	if (s->addr[0] != '\0')
		report_json_string(fp, s->addr);
	else
		fputs("null", fp);
	fprintf(fp, ", \"state\": \"%s\", \"configured\": %s,\n", state_name(s),
	        s->configured ? "true" : "false");
	format_pct(report_availability(r, s), 4, buf, sizeof(buf));
	fprintf(fp,
	        "     \"availability_pct\": %s, \"down_events\": %lu, "
	        "\"downtime_s\": ",
	        buf, s->down_events);
	json_seconds(fp, s->downtime_ms);
	fputs(", \"longest_outage_s\": ", fp);
	json_seconds(fp, s->longest_ms);
	fprintf(fp, ", \"flaps\": %lu, \"maint_s\": ", s->flaps);
	json_seconds(fp, s->maint_ms);
	fputs(",\n     \"last_failure\": ", fp);
	if (s->has_failure)
		json_failure(fp, &s->last_failure);
	else
		fputs("null", fp);
	fputs(",\n     \"cert_not_after\": ", fp);
	if (s->has_cert && s->cert_not_after[0] != '\0')
		report_json_string(fp, s->cert_not_after);
	else
		fputs("null", fp);
	if (report_cert_days(r, s, &days))
		fprintf(fp, ", \"cert_days_left\": %ld", days);
	else
		fputs(", \"cert_days_left\": null", fp);
	fprintf(fp, ",\n     \"outages_omitted\": %lu, \"outages\": [",
	        s->outages_total - s->n_outages);
	for (size_t j = 0; j < s->n_outages; j++) {
		const struct report_outage *o = report_outage(s, j);

		fputs(j == 0 ? "\n" : ",\n", fp);
		fputs("       {\"start\": ", fp);
		json_time(fp, o->start_ms);
		fputs(", \"end\": ", fp);
		if (o->end_ms < 0)
			fputs("null", fp);
		else
			json_time(fp, o->end_ms);
		fputs(", \"seconds\": ", fp);
		json_seconds(fp, o->window_ms);
		fprintf(fp,
		        ", \"started_before_window\": %s, "
		        "\"after_maintenance\": %s, \"reason\": ",
		        o->start_ms < r->from_ms ? "true" : "false",
		        o->after_maint ? "true" : "false");
		report_format_failure(&o->why, buf, sizeof(buf));
		report_json_string(fp, buf);
		fputc('}', fp);
	}
	fputs(s->n_outages > 0 ? "\n     ]}" : "]}", fp);
}

int
report_print_json(const struct report *r, FILE *fp)
{
	fputs("{\n  \"window\": {\"from\": ", fp);
	json_time(fp, r->from_ms);
	fputs(", \"to\": ", fp);
	json_time(fp, r->to_ms);
	fputs(", \"seconds\": ", fp);
	json_seconds(fp, r->to_ms - r->from_ms);
	fprintf(fp,
	        "},\n  \"log\": {\"lines\": %lu, \"events\": %lu, "
	        "\"malformed\": %lu, \"too_long\": %lu, \"over_limit\": %lu, "
	        "\"after_window\": %lu},\n",
	        r->lines, r->events, r->malformed, r->too_long, r->overflow,
	        r->future);
	fputs("  \"configuration\": ", fp);
	if (r->config != NULL) {
		fputs("{\"file\": ", fp);
		report_json_string(fp, r->config);
		fprintf(fp, ", \"servers\": %zu},\n", r->n_configured);
	} else
		fputs("null,\n", fp);
	fprintf(fp, "  \"flap_gap_s\": %lld,\n",
	        (long long)(REPORT_FLAP_GAP_MS / 1000));
	fputs("  \"servers\": [", fp);
	for (size_t i = 0; i < r->n_servers; i++) {
		fputs(i == 0 ? "\n" : ",\n", fp);
		json_server(r, &r->servers[i], fp);
	}
	fputs(r->n_servers > 0 ? "\n  ],\n" : "],\n", fp);
	fputs("  \"backends\": [", fp);
	for (size_t i = 0; i < r->n_backends; i++) {
		const struct report_backend *b = &r->backends[i];

		fputs(i == 0 ? "\n    {\"backend\": " : ",\n    {\"backend\": ",
		      fp);
		report_json_string(fp, b->name);
		fprintf(fp, ", \"down_events\": %lu, \"no_server_s\": ",
		        b->down_events);
		json_seconds(fp, b->no_server_ms);
		fputs(", \"longest_no_server_s\": ", fp);
		json_seconds(fp, b->longest_ms);
		fprintf(fp, ", \"no_server_now\": %s}",
		        b->down ? "true" : "false");
	}
	fputs(r->n_backends > 0 ? "\n  ]\n}\n" : "]\n}\n", fp);
	return ferror(fp) ? -1 : 0;
}
