/* Health timeline: health-log events -> SVG (see timeline.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "rfc3339.h"
#include "timeline.h"

#define PLOT_X (TIMELINE_WIDTH - TIMELINE_PLOT_W - 20)
#define TOP 58         /* first lane */
#define LANE_H 22      /* lane pitch */
#define BAR_H 16       /* band height */
#define LABEL_CHARS 32 /* longer names are cut (the full one in a title) */
#define NO_SEG ((size_t)-1)

struct tl_seg {
	int64_t start;
	enum tl_state st;
	char *why; /* DOWN: the failure; else NULL */
};

struct tl_lane {
	char backend[REPORT_NAME_MAX];
	char server[REPORT_NAME_MAX];
	bool declared;
	size_t order;
	enum tl_state hint; /* declared: the current state */
	bool known;         /* some event or start told its state */
	bool down;
	enum report_admin admin;
	char why[REPORT_TEXT_MAX]; /* the current DOWN's failure */
	int64_t last_ms;           /* its last event (or start) */
	bool since_start;          /* an event of its own since the start */
	struct tl_seg *segs;
	size_t nsegs, cap;
};

struct timeline {
	int64_t from, to;
	bool have_data;
	int64_t data_from; /* first event of the input */
	bool have_start;
	int64_t last_start;
	bool finished;
	struct tl_lane *lanes;
	size_t nlanes, cap;
	size_t changes;
	unsigned long extra;     /* events of servers past the lane limit */
	unsigned long dropped;   /* changes past TIMELINE_CHANGES_MAX */
	unsigned long malformed; /* lines skipped */
};

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static void
copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

const char *
timeline_state_name(enum tl_state st)
{
	switch (st) {
	case TL_UP:
		return "UP";
	case TL_DOWN:
		return "DOWN";
	case TL_DRAIN:
		return "DRAIN";
	case TL_MAINT:
		return "MAINT";
	case TL_NODATA:
		break;
	}
	return "NO DATA";
}

/* Which state a pixel column shows when several meet in it. */
static int
rank(enum tl_state st)
{
	switch (st) {
	case TL_DOWN:
		return 4;
	case TL_MAINT:
		return 3;
	case TL_DRAIN:
		return 2;
	case TL_UP:
		return 1;
	case TL_NODATA:
		break;
	}
	return 0;
}

static const char *
state_class(enum tl_state st)
{
	switch (st) {
	case TL_UP:
		return "tl-up";
	case TL_DOWN:
		return "tl-down";
	case TL_DRAIN:
		return "tl-drain";
	case TL_MAINT:
		return "tl-maint";
	case TL_NODATA:
		break;
	}
	return "tl-nodata";
}

/* --- escaping ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (XML characters only), or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];

	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
		unsigned char hi = c == 0xed ? 0x9f : 0xbf;

		if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80)
			return 0;
		/* U+FFFE and U+FFFF are not XML characters. */
		if (c == 0xef && p[1] == 0xbf && p[2] >= 0xbe)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;

		if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

size_t
timeline_utf8_len(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return *u < 0x80 ? (*u != '\0') : utf8_len(u);
}

void
timeline_escape(const char *s, void (*put)(void *arg, const char *p, size_t n),
                void *arg)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *run = p;

	while (*p != '\0') {
		const char *rep = NULL;
		size_t adv = 1;

		switch (*p) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				rep = " ";
			else if (*p >= 0x80 && (adv = utf8_len(p)) == 0) {
				rep = "\xef\xbf\xbd"; /* U+FFFD */
				adv = 1;
			}
		}
		if (rep != NULL) {
			if (p > run)
				put(arg, (const char *)run, (size_t)(p - run));
			put(arg, rep, strlen(rep));
			p += adv;
			run = p;
		} else
			p += adv;
	}
	if (p > run)
		put(arg, (const char *)run, (size_t)(p - run));
}

/* --- accumulation --------------------------------------------------------- */

struct timeline *
timeline_new(int64_t from_ms, int64_t to_ms)
{
	struct timeline *tl = calloc(1, sizeof(*tl));

	if (tl == NULL)
		return NULL;
	tl->from = from_ms;
	tl->to = to_ms > from_ms ? to_ms : from_ms + 1;
	return tl;
}

void
timeline_free(struct timeline *tl)
{
	if (tl == NULL)
		return;
	for (size_t i = 0; i < tl->nlanes; i++) {
		for (size_t j = 0; j < tl->lanes[i].nsegs; j++)
			free(tl->lanes[i].segs[j].why);
		free(tl->lanes[i].segs);
	}
	free(tl->lanes);
	free(tl);
}

static bool
same_why(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* The lane is in state st (why: the failure of a DOWN) from t on. */
static int
push(struct timeline *tl, struct tl_lane *l, int64_t t, enum tl_state st,
     const char *why)
{
	struct tl_seg *last = l->nsegs > 0 ? &l->segs[l->nsegs - 1] : NULL;
	char *w = NULL;

	if (st != TL_DOWN)
		why = NULL;
	if (last != NULL && last->st == st && same_why(last->why, why))
		return 0;
	if (why != NULL && why[0] != '\0' && (w = strdup(why)) == NULL)
		return -1;
	if (last != NULL &&
	    (last->start >= t || (t <= tl->from && last->start <= tl->from))) {
		/* Same instant, or both before the window: replace. */
		free(last->why);
		last->start = t;
		last->st = st;
		last->why = w;
		if (l->nsegs >= 2 && l->segs[l->nsegs - 2].st == st &&
		    same_why(l->segs[l->nsegs - 2].why, w)) {
			free(w);
			l->nsegs--;
			tl->changes--;
		}
		return 0;
	}
	if (tl->changes >= TIMELINE_CHANGES_MAX) {
		tl->dropped++;
		free(w);
		return 0;
	}
	if (l->nsegs == l->cap) {
		size_t ncap = l->cap == 0 ? 8 : l->cap * 2;
		struct tl_seg *n = reallocarray(l->segs, ncap, sizeof(*n));

		if (n == NULL) {
			free(w);
			return -1;
		}
		l->segs = n;
		l->cap = ncap;
	}
	l->segs[l->nsegs].start = t;
	l->segs[l->nsegs].st = st;
	l->segs[l->nsegs].why = w;
	l->nsegs++;
	tl->changes++;
	return 0;
}

static enum tl_state
display(const struct tl_lane *l)
{
	if (!l->known)
		return TL_NODATA;
	if (l->admin == RADMIN_MAINT)
		return TL_MAINT;
	if (l->down)
		return TL_DOWN;
	if (l->admin == RADMIN_DRAIN)
		return TL_DRAIN;
	return TL_UP;
}

/* Index of the lane, created when absent (-1: out of memory, -2: past
 * the lane limit). */
static long
find_lane(struct timeline *tl, const char *backend, const char *server)
{
	struct tl_lane *l;

	for (size_t i = 0; i < tl->nlanes; i++)
		if (strcmp(tl->lanes[i].backend, backend) == 0 &&
		    strcmp(tl->lanes[i].server, server) == 0)
			return (long)i;
	if (tl->nlanes >= TIMELINE_LANES_MAX)
		return -2;
	if (tl->nlanes == tl->cap) {
		size_t ncap = tl->cap == 0 ? 16 : tl->cap * 2;
		struct tl_lane *n = reallocarray(tl->lanes, ncap, sizeof(*n));

		if (n == NULL)
			return -1;
		tl->lanes = n;
		tl->cap = ncap;
	}
	l = &tl->lanes[tl->nlanes];
	memset(l, 0, sizeof(*l));
	copy_str(l->backend, sizeof(l->backend), backend);
	copy_str(l->server, sizeof(l->server), server);
	l->admin = RADMIN_READY;
	l->last_ms = INT64_MIN;
	l->order = tl->nlanes;
	if (tl->have_start) {
		/* Servers start UP: it was UP since the daemon started. */
		l->known = true;
		l->last_ms = tl->last_start;
		if (push(tl, l, tl->last_start, TL_UP, NULL) < 0)
			return -1;
	}
	return (long)tl->nlanes++;
}

int
timeline_lane(struct timeline *tl, const char *backend, const char *server,
              enum tl_state now)
{
	long i = find_lane(tl, backend, server);

	if (i == -1)
		return -1;
	if (i >= 0) {
		tl->lanes[i].declared = true;
		tl->lanes[i].hint = now;
	}
	return 0;
}

static void
failure_text(const struct report_event *ev, char *buf, size_t len)
{
	struct report_failure f;

	memset(&f, 0, sizeof(f));
	f.t_ms = ev->t_ms;
	copy_str(f.step, sizeof(f.step), ev->step);
	f.code = ev->code;
	copy_str(f.reply, sizeof(f.reply), ev->reply);
	copy_str(f.reason, sizeof(f.reason), ev->reason);
	report_format_failure(&f, buf, len);
}

/* The lane's first information, with no daemon start before it: what the
 * event implies about the time before it (from the input's start). */
static int
learn(struct timeline *tl, struct tl_lane *l, const struct report_event *ev,
      int64_t t)
{
	int64_t since = tl->data_from;

	l->known = true;
	l->down = false;
	l->admin = RADMIN_READY;
	switch (ev->type) {
	case REV_UP:
		/* Its downtime tells when it went down, even before the
		 * input begins. */
		if (ev->downtime_s >= 0 &&
		    ev->downtime_s <= 10 * REPORT_DURATION_MAX_MS / 1000)
			since = t - ev->downtime_s * 1000;
		l->down = true;
		copy_str(l->why, sizeof(l->why),
		         "went down before the log begins");
		return push(tl, l, since, TL_DOWN, l->why);
	case REV_READY:
		return 0; /* DRAIN or MAINT before: unknown */
	default:
		return push(tl, l, since, TL_UP, NULL);
	}
}

static int
server_event(struct timeline *tl, const struct report_event *ev)
{
	long i = find_lane(tl, ev->backend, ev->server);
	struct tl_lane *l;
	int64_t t;

	if (i == -1)
		return -1;
	if (i == -2) {
		tl->extra++;
		return 0;
	}
	l = &tl->lanes[i];
	t = max64(ev->t_ms, l->last_ms);
	l->last_ms = t;
	if (!l->known && learn(tl, l, ev, t) < 0)
		return -1;
	switch (ev->type) {
	case REV_DOWN:
		l->down = true;
		failure_text(ev, l->why, sizeof(l->why));
		break;
	case REV_UP:
		l->down = false;
		break;
	case REV_DRAIN:
		l->admin = RADMIN_DRAIN;
		break;
	case REV_MAINT:
		l->admin = RADMIN_MAINT;
		break;
	case REV_READY:
		l->admin = RADMIN_READY;
		break;
	default:
		break;
	}
	l->since_start = true;
	return push(tl, l, t, display(l), l->why);
}

static int
start_event(struct timeline *tl, int64_t t)
{
	for (size_t i = 0; i < tl->nlanes; i++) {
		struct tl_lane *l = &tl->lanes[i];
		int64_t ts = max64(t, l->last_ms);

		l->last_ms = ts;
		l->known = true;
		l->down = false;
		l->admin = RADMIN_READY;
		l->since_start = false;
		if (push(tl, l, ts, TL_UP, NULL) < 0)
			return -1;
	}
	tl->have_start = true;
	tl->last_start = t;
	return 0;
}

int
timeline_add(struct timeline *tl, const struct report_event *ev)
{
	if (ev->t_ms > tl->to)
		return 0;
	if (!tl->have_data) {
		tl->have_data = true;
		tl->data_from = ev->t_ms;
	}
	switch (ev->type) {
	case REV_UP:
	case REV_DOWN:
	case REV_FAIL:
	case REV_DRAIN:
	case REV_MAINT:
	case REV_READY:
	case REV_CERT_EXPIRY:
		return server_event(tl, ev);
	case REV_START:
		return start_event(tl, ev->t_ms);
	default:
		return 0;
	}
}

int
timeline_add_line(struct timeline *tl, const char *line)
{
	struct report_event *ev;
	const char *err;
	int rc;

	if (line[strspn(line, " \t\r\n")] == '\0')
		return 0;
	/* struct report_event is large: not on the stack. */
	if ((ev = malloc(sizeof(*ev))) == NULL)
		return -1;
	if (report_parse_line(line, ev, &err) < 0) {
		tl->malformed++;
		rc = 0;
	} else
		rc = timeline_add(tl, ev);
	free(ev);
	return rc;
}

/* Declared lanes without events since the daemon started show their
 * current state from the start on. */
static void
finish(struct timeline *tl)
{
	if (tl->finished)
		return;
	tl->finished = true;
	for (size_t i = 0; i < tl->nlanes; i++) {
		struct tl_lane *l = &tl->lanes[i];

		if (!l->declared || l->since_start || !tl->have_start ||
		    l->hint == TL_NODATA)
			continue;
		if (push(tl, l, l->last_ms, l->hint, NULL) < 0)
			continue; /* out of memory: keep what it had */
		if (l->hint == TL_MAINT)
			l->admin = RADMIN_MAINT;
		else if (l->hint == TL_DRAIN)
			l->admin = RADMIN_DRAIN;
		l->down = l->hint == TL_DOWN;
	}
}

/* --- output --------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
sb_put(void *arg, const char *s, size_t n)
{
	struct sbuf *b = arg;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap == 0 ? 4096 : b->cap;
		char *np;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		sb_put(b, small, (size_t)n);
		return;
	}
	{
		char *big = malloc((size_t)n + 1);

		if (big == NULL) {
			b->oom = true;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		sb_put(b, big, (size_t)n);
		free(big);
	}
}

static void
sb_esc(struct sbuf *b, const char *s)
{
	timeline_escape(s, sb_put, b);
}

static void
fmt_time(int64_t ms, char *buf, size_t len)
{
	rfc3339_format_text(ms, buf, len);
}

/* "backend/server", cut to LABEL_CHARS characters with "...". */
static void
lane_label(const struct tl_lane *l, char *buf, size_t len)
{
	size_t chars = 0, i;

	snprintf(buf, len, "%s/%s", l->backend, l->server);
	for (i = 0; buf[i] != '\0'; i++) {
		if (((unsigned char)buf[i] & 0xc0) == 0x80)
			continue;
		if (++chars > LABEL_CHARS && i + 4 < len) {
			memcpy(buf + i, "...", 4);
			return;
		}
	}
}

/* A pixel column: its worst state, the first and last segment in that
 * state overlapping it, and how many there are. */
struct col {
	enum tl_state st;
	size_t first, last, n;
};

/* One band: columns [c0, c1] in state st, made of segments first..last
 * of the lane (nseg of them in this state). */
static void
band(struct sbuf *b, const struct timeline *tl, const struct tl_lane *l, int y,
     size_t c0, size_t c1, enum tl_state st, size_t first, size_t last,
     size_t nseg)
{
	char name[2 * REPORT_NAME_MAX + 2], t0[32], t1[32], dur[32];

	snprintf(name, sizeof(name), "%s/%s", l->backend, l->server);
	sb_printf(b,
	          "<rect class=\"%s\" x=\"%zu\" y=\"%d\" width=\"%zu\" "
	          "height=\"%d\" data-state=\"%s\"><title>",
	          state_class(st), (size_t)PLOT_X + c0, y, c1 - c0 + 1, BAR_H,
	          timeline_state_name(st));
	sb_esc(b, name);
	if (st == TL_NODATA || first == NO_SEG) {
		sb_printf(b, ": no data</title></rect>\n");
		return;
	}
	if (nseg <= 1) {
		const struct tl_seg *s = &l->segs[first];
		bool ongoing = first + 1 == l->nsegs;
		int64_t end = ongoing ? tl->to : l->segs[first + 1].start;

		fmt_time(s->start, t0, sizeof(t0));
		fmt_time(end, t1, sizeof(t1));
		report_format_duration(end - s->start, dur, sizeof(dur));
		sb_printf(b, ": %s from %s to %s UTC (%s%s)",
		          timeline_state_name(st), t0, t1, dur,
		          ongoing ? ", ongoing" : "");
		if (s->why != NULL) {
			sb_printf(b, ": ");
			sb_esc(b, s->why);
		}
	} else {
		const struct tl_seg *s = &l->segs[last];
		int64_t end =
		    last + 1 == l->nsegs ? tl->to : l->segs[last + 1].start;

		fmt_time(l->segs[first].start, t0, sizeof(t0));
		fmt_time(end, t1, sizeof(t1));
		sb_printf(b, ": %s %zu times between %s and %s UTC",
		          timeline_state_name(st), nseg, t0, t1);
		if (s->why != NULL) {
			sb_printf(b, "; last: ");
			sb_esc(b, s->why);
		}
	}
	sb_printf(b, "</title></rect>\n");
}

static void
draw_lane(struct sbuf *b, const struct timeline *tl, const struct tl_lane *l,
          int y, struct col *cols)
{
	const size_t ncol = TIMELINE_PLOT_W;
	const int64_t span = tl->to - tl->from;
	char label[2 * REPORT_NAME_MAX + 8], full[2 * REPORT_NAME_MAX + 2];
	size_t c = 0;

	for (size_t i = 0; i < ncol; i++)
		cols[i] = (struct col){TL_NODATA, NO_SEG, NO_SEG, 0};
	for (size_t i = 0; i < l->nsegs; i++) {
		int64_t s = l->segs[i].start;
		int64_t e = i + 1 < l->nsegs ? l->segs[i + 1].start : tl->to;
		int64_t c0, c1;

		if (e <= s || e <= tl->from || s >= tl->to)
			continue;
		if (s < tl->from)
			s = tl->from;
		if (e > tl->to)
			e = tl->to;
		c0 = (s - tl->from) * (int64_t)ncol / span;
		c1 = ((e - tl->from) * (int64_t)ncol + span - 1) / span - 1;
		if (c1 < c0)
			c1 = c0;
		if (c1 >= (int64_t)ncol)
			c1 = (int64_t)ncol - 1;
		for (int64_t k = c0; k <= c1; k++) {
			struct col *cl = &cols[k];

			if (rank(l->segs[i].st) > rank(cl->st))
				*cl = (struct col){l->segs[i].st, i, i, 1};
			else if (l->segs[i].st == cl->st && cl->last != i) {
				cl->last = i;
				cl->n++;
			}
		}
	}

	snprintf(full, sizeof(full), "%s/%s", l->backend, l->server);
	lane_label(l, label, sizeof(label));
	sb_printf(b, "<g class=\"tl-lane\" data-backend=\"");
	sb_esc(b, l->backend);
	sb_printf(b, "\" data-server=\"");
	sb_esc(b, l->server);
	sb_printf(b,
	          "\" data-state=\"%s\">\n<text class=\"tl-label\" x=\"8\" "
	          "y=\"%d\">",
	          timeline_state_name(display(l)), y + BAR_H - 4);
	sb_esc(b, label);
	sb_printf(b, "<title>");
	sb_esc(b, full);
	sb_printf(b, "</title></text>\n");
	while (c < ncol) {
		enum tl_state st = cols[c].st;
		size_t end = c, first = NO_SEG, last = NO_SEG, nseg = 0;

		while (end < ncol && cols[end].st == st) {
			const struct col *cl = &cols[end];

			if (cl->first != NO_SEG) {
				/* A segment over several columns counts once.
				 */
				nseg += cl->n - (cl->first == last ? 1 : 0);
				if (first == NO_SEG)
					first = cl->first;
				last = cl->last;
			}
			end++;
		}
		band(b, tl, l, y, c, end - 1, st, first, last, nseg);
		c = end;
	}
	sb_printf(b, "</g>\n");
}

static int
cmp_lane(const void *a, const void *b)
{
	const struct tl_lane *x = *(const struct tl_lane *const *)a;
	const struct tl_lane *y = *(const struct tl_lane *const *)b;
	int c;

	if (x->declared != y->declared)
		return x->declared ? -1 : 1;
	if (x->declared)
		return x->order < y->order ? -1 : x->order > y->order;
	if ((c = strcmp(x->backend, y->backend)) != 0)
		return c;
	return strcmp(x->server, y->server);
}

/* Grid step: the smallest of these giving at most 8 intervals. */
static int64_t
tick_step(int64_t span)
{
	static const int64_t steps[] = {
	    1000,      5000,       15000,      30000,     60000,
	    300000,    900000,     1800000,    3600000,   7200000,
	    10800000,  21600000,   43200000,   86400000,  172800000,
	    604800000, 1209600000, 2592000000, 7776000000};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (span / steps[i] <= 8)
			return steps[i];
	return 7776000000;
}

static void
axis(struct sbuf *b, const struct timeline *tl, int bottom)
{
	const int64_t span = tl->to - tl->from;
	int64_t step = tick_step(span);
	int64_t t = tl->from / step * step;
	char full[32], lab[32];

	if (t < tl->from)
		t += step;
	for (; t <= tl->to; t += step) {
		long x =
		    PLOT_X + (long)((t - tl->from) * TIMELINE_PLOT_W / span);

		/* "2026-11-23 18:40:01": date only for whole days, seconds
		 * only for steps under a minute. */
		fmt_time(t, full, sizeof(full));
		if (step >= 86400000)
			snprintf(lab, sizeof(lab), "%.10s", full);
		else if (step < 60000)
			snprintf(lab, sizeof(lab), "%s", full + 11);
		else
			snprintf(lab, sizeof(lab), "%.5s", full + 11);
		sb_printf(
		    b,
		    "<line class=\"tl-grid\" x1=\"%ld\" y1=\"%d\" "
		    "x2=\"%ld\" y2=\"%d\"/>\n<text class=\"tl-tick\" "
		    "x=\"%ld\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
		    x, TOP - 6, x, bottom, x, TOP - 10, lab);
	}
}

static void
legend(struct sbuf *b, int y)
{
	static const enum tl_state st[] = {TL_UP, TL_DOWN, TL_DRAIN, TL_MAINT,
	                                   TL_NODATA};
	int x = PLOT_X;

	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		sb_printf(b,
		          "<rect class=\"%s\" x=\"%d\" y=\"%d\" width=\"12\" "
		          "height=\"12\"/><text class=\"tl-tick\" x=\"%d\" "
		          "y=\"%d\">%s</text>\n",
		          state_class(st[i]), x, y, x + 16, y + 10,
		          st[i] == TL_NODATA ? "no data"
		                             : timeline_state_name(st[i]));
		x += 90;
	}
}

char *
timeline_svg(struct timeline *tl, bool standalone, size_t *len)
{
	struct sbuf head = {0}, body = {0};
	struct tl_lane **order = NULL;
	struct col *cols = NULL;
	size_t drawn = 0;
	char t0[32], t1[32], dur[32];
	int height, y, lanes_bottom;

	finish(tl);
	if ((cols = calloc(TIMELINE_PLOT_W, sizeof(*cols))) == NULL ||
	    (tl->nlanes > 0 &&
	     (order = calloc(tl->nlanes, sizeof(*order))) == NULL)) {
		free(cols);
		return NULL;
	}
	for (size_t i = 0; i < tl->nlanes; i++)
		order[i] = &tl->lanes[i];
	if (tl->nlanes > 0)
		qsort(order, tl->nlanes, sizeof(*order), cmp_lane);

	for (; drawn < tl->nlanes && body.len < TIMELINE_SVG_MAX; drawn++)
		draw_lane(&body, tl, order[drawn],
		          TOP + (int)drawn * LANE_H + (LANE_H - BAR_H) / 2,
		          cols);
	y = TOP + (int)drawn * LANE_H;
	if (tl->nlanes == 0) {
		sb_printf(&body,
		          "<text class=\"tl-note\" x=\"%d\" y=\"%d\">No server "
		          "events in this window.</text>\n",
		          PLOT_X, y + 16);
		y += LANE_H;
	}
	lanes_bottom = y;
	legend(&body, y + 10);
	y += 30;
	if (drawn < tl->nlanes) {
		sb_printf(&body,
		          "<text class=\"tl-note\" x=\"8\" y=\"%d\">%zu more "
		          "servers not drawn (picture too large)</text>\n",
		          y + 12, tl->nlanes - drawn);
		y += 18;
	}
	if (tl->extra > 0) {
		sb_printf(&body,
		          "<text class=\"tl-note\" x=\"8\" y=\"%d\">more than "
		          "%d servers: the events of the others (%lu) are not "
		          "drawn</text>\n",
		          y + 12, TIMELINE_LANES_MAX, tl->extra);
		y += 18;
	}
	if (tl->dropped > 0) {
		sb_printf(&body,
		          "<text class=\"tl-note\" x=\"8\" y=\"%d\">%lu state "
		          "changes past the first %d are not drawn</text>\n",
		          y + 12, tl->dropped, TIMELINE_CHANGES_MAX);
		y += 18;
	}
	if (tl->malformed > 0) {
		sb_printf(&body,
		          "<text class=\"tl-note\" x=\"8\" y=\"%d\">%lu "
		          "malformed log lines skipped</text>\n",
		          y + 12, tl->malformed);
		y += 18;
	}
	height = y + 8;

	fmt_time(tl->from, t0, sizeof(t0));
	fmt_time(tl->to, t1, sizeof(t1));
	report_format_duration(tl->to - tl->from, dur, sizeof(dur));
	if (standalone)
		sb_printf(&head,
		          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	sb_printf(&head,
	          "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	          "class=\"tl\" width=\"%d\" height=\"%d\" "
	          "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
	          "font-size=\"12\" role=\"img\" "
	          "data-from=\"%lld\" data-to=\"%lld\">\n"
	          "<title>Health timeline, %s to %s UTC</title>\n"
	          "<style>\n"
	          ".tl-up{fill:#3a9a4f}.tl-down{fill:#d23c32}"
	          ".tl-drain{fill:#e6a118}.tl-maint{fill:#5b7fb6}"
	          ".tl-nodata{fill:#e4e4e4}"
	          ".tl-grid{stroke:#c8c8c8;stroke-width:1}"
	          ".tl-label{fill:#222}.tl-tick{fill:#555;font-size:11px}"
	          ".tl-note{fill:#555;font-size:11px}"
	          ".tl-head{fill:#222;font-size:14px;font-weight:bold}\n"
	          "</style>\n"
	          "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
	          "fill=\"#ffffff\"/>\n"
	          "<text class=\"tl-head\" x=\"8\" y=\"20\">Health "
	          "timeline: %s to %s UTC (%s)</text>\n",
	          TIMELINE_WIDTH, height, TIMELINE_WIDTH, height,
	          (long long)tl->from, (long long)tl->to, t0, t1,
	          TIMELINE_WIDTH, height, t0, t1, dur);
	axis(&head, tl, lanes_bottom);
	sb_put(&head, body.p != NULL ? body.p : "", body.len);
	sb_printf(&head, "</svg>\n");
	free(body.p);
	free(order);
	free(cols);
	if (head.oom || body.oom) {
		free(head.p);
		errno = ENOMEM;
		return NULL;
	}
	if (len != NULL)
		*len = head.len;
	return head.p;
}
