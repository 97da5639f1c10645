/* load-balancer --import-haproxy: an HAProxy configuration -> the
 * equivalent libconfig configuration (load-balancer.conf(5)).
 *
 * Two steps.  The reader goes through the file line by line and fills a
 * model: the global settings and one struct proxy per frontend, backend,
 * listen or defaults section, each made of key slots in the order the
 * directives came (so that the output reads in the same order as the input
 * and carried-over comments land next to their neighbours).  Then the
 * backends' per-server settings that are per-backend here (health check
 * parameters, on-marked-down, PROXY protocol, observe, slowstart, the agent
 * check) are folded, the frontends' tcp-request rules become client limits
 * and address lists where they can, and the writer prints the model.  Nothing
 * is written when the input has an error, so a half translation never ends up
 * in a file.
 *
 * What is translated, dropped or reported, and why: README.md, "Coming from
 * HAProxy", "--import-haproxy". */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common.h"
#include "haproxy_import.h"
#include "log.h"
#include "parse.h"
#include "xmalloc.h"

/* --- the model ------------------------------------------------------------ */

enum vkind { V_STR, V_NUM, V_BOOL };

/* One "key = value;" of a group.  Keys are string literals; those starting
 * with '.' are internal (read by the folding step, never printed). */
struct slot {
	const char *key;
	char *val; /* V_STR: the string itself; else the literal text */
	enum vkind kind;
	int line;
	unsigned seq;     /* output order */
	bool inherited;   /* from a defaults section */
	const char *note; /* a comment after the value, or NULL */
};

struct slots {
	struct slot *v;
	size_t n;
};

struct comment {
	char *text;
	unsigned seq;
};

struct comments {
	struct comment *v;
	size_t n;
};

struct hserver {
	char *name;
	char *addr; /* "HOST:PORT" */
	int line;
	struct slots o;
	struct comments before; /* comment lines just above it */
};

enum target { T_NONE, T_FE, T_BE, T_SRV };

/* A list of strings (CIDRs), owned. */
struct strlist {
	char **v;
	size_t n;
};

/* acl NAME CRITERION [FLAGS] [OPERATOR] [VALUE...]: one line (lines of
 * the same name add up). */
struct hacl {
	char *name;
	int line;
	int n;
	char **w; /* from the criterion on */
};

/* tcp-request connection|session|content ACTION [ARGS] [if|unless COND],
 * in the order evaluated by HAProxy: connection rules at accept, then
 * session rules, then content rules, each in the order written. */
enum phase { PH_CONNECTION, PH_SESSION, PH_CONTENT, PH_N };

struct hrule {
	int line;
	enum phase phase;
	int n;
	char **w;   /* the words after "tcp-request PHASE" */
	char *disp; /* the line as written, for messages */
	bool reported;
};

/* stick-table type T size S [expire E] [store ...]: only what client
 * limits need. */
struct htable {
	int line; /* 0: none */
	char *disp;
	char *type;
	long long size;
	char *size_text;
	bool conn_cur;
	uint64_t period_ms; /* conn_rate(PERIOD); 0: not stored */
	char *period_text;
	/* Options reported when the table is translated. */
	char *xwhat[4];
	const char *xwhy[4];
	int nx;
	int nusers; /* frontends whose limits read it */
	bool used;
};

/* What a frontend's client_limits, allow and deny become. */
struct limits_out {
	bool on;
	long long maxconn, rate, table_size;
	int prefix6;
	char period[32];
	char *maxconn_note, *rate_note, *period_note, *prefix6_note;
	char *table_note, *exempt_note;
	struct strlist exempt;
	bool exempt_set;
	int exempt_line;
	struct proxy *tp; /* the proxy whose stick-table is read */
	struct strlist allow, deny;
	int allow_line;
	bool allow_set;
};

#define CAP_FE 1u
#define CAP_BE 2u

struct proxy {
	char *name;       /* NULL for an unnamed defaults section */
	const char *kind; /* "frontend" "backend" "listen" "defaults" */
	unsigned cap;
	bool defaults;
	int line;
	struct slots fe, be, srvdef; /* srvdef: default-server */
	char **binds;
	size_t nbinds;
	unsigned bind_seq;
	int nbind_lines, ntransparent, plain_bind_line;
	struct hserver *servers;
	size_t nservers;
	struct comments lead; /* comment lines just above the header */
	struct comments fe_c, be_c, srv_tail;
	enum target last;
	int use_backend_line;
	/* Client limits, allow and deny (load-balancer.conf(5), CLIENT
	 * LIMITS), read as written and translated by fold_client_limits. */
	struct hacl *acls;
	size_t nacls;
	struct hrule *rules;
	size_t nrules;
	struct htable table;
	int inspect_line;
	char *inspect_disp;
	struct limits_out lim;
	/* Set by the folding step. */
	bool emit_fe, emit_be;
	/* timeout_queue, proxy_protocol, on_marked_down */
	struct slots derived;
	struct slots hc; /* the health_check group */
	bool has_hc;
	struct slots agent; /* the agent group */
	bool has_agent;
	bool agent_some; /* agent checks on some servers only */
};

enum dkind { D_ERROR, D_WARNING, D_UNTRANSLATED };

struct diag_msg {
	int line;
	unsigned seq;
	enum dkind kind;
	char *text;
};

enum section { S_NONE, S_GLOBAL, S_DEFAULTS, S_PROXY, S_SKIP, S_BAD };

/* One line, split into words as HAProxy does. */
struct hline {
	int n;
	char *w[HAPROXY_WORDS_MAX];
	bool indented;
	bool env;            /* "${VAR}" or "$VAR" inside double quotes */
	const char *comment; /* the text after '#' of a comment-only line */
	char buf[HAPROXY_LINE_MAX + 2];
	char disp[HAPROXY_LINE_MAX + 2]; /* the directive, blanks collapsed */
};

struct imp {
	const char *name;
	unsigned seq;
	struct diag_msg *diags;
	size_t ndiags, nerrors;
	struct slots global;
	struct comments global_lead, global_c, top_c;
	int nlog;        /* log targets translated */
	char *first_log; /* its words, to recognise the same line in a proxy */
	size_t ncarried; /* comment lines carried over */
	struct proxy **px; /* frontends, backends and listens, in order */
	size_t npx;
	struct proxy **dfl; /* every defaults section */
	size_t ndfl;
	struct proxy *curdfl; /* in effect; NULL = HAProxy's built-in */
	/* Reader state. */
	enum section sect;
	struct proxy *cur; /* the proxy or defaults section being read */
	bool sect_indented;
	struct hline *hl;
	int line;
	char **pend; /* comment lines waiting for a place */
	size_t npend;
	bool pend_after_blank;
	bool blank; /* a blank line since the last non-blank one */
};

/* --- small helpers ------------------------------------------------------ */

static char *vfmt(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

static char *
vfmt(const char *fmt, va_list ap)
{
	va_list aq;
	char *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		fatalx("vsnprintf failed");
	s = xcalloc((size_t)n + 1, 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static void diag_add(struct imp *im, int line, enum dkind kind, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static void
diag_add(struct imp *im, int line, enum dkind kind, const char *fmt, ...)
{
	struct diag_msg *d;
	va_list ap;

	im->diags = xreallocarray(im->diags, im->ndiags + 1, sizeof(*d));
	d = &im->diags[im->ndiags++];
	d->line = line;
	d->seq = im->seq++;
	d->kind = kind;
	va_start(ap, fmt);
	d->text = vfmt(fmt, ap);
	va_end(ap);
	/* Words are unescaped ("\n", "\x00"...): one message, one line
	 * (also in the output's header comments). */
	for (char *c = d->text; *c != '\0'; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			*c = '?';
	if (kind == D_ERROR)
		im->nerrors++;
}

#define error_at(im, line, ...) diag_add(im, line, D_ERROR, __VA_ARGS__)
#define warn_at(im, line, ...) diag_add(im, line, D_WARNING, __VA_ARGS__)

/* "FILE:LINE: cannot translate: WHAT (WHY)". */
static void
untranslated(struct imp *im, int line, const char *what, const char *why)
{
	if (why != NULL)
		diag_add(im, line, D_UNTRANSLATED, "%s (%s)", what, why);
	else
		diag_add(im, line, D_UNTRANSLATED, "%s", what);
}

/* The current line as written, for messages. */
static void
skip_line(struct imp *im, const char *why)
{
	untranslated(im, im->line, im->hl->disp, why);
}

static bool
streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static bool
in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (streq(s, list[i]))
			return true;
	return false;
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Words first..first+n-1 of the line, joined by spaces (malloc'd). */
static char *
join_words(const struct hline *hl, int first, int n)
{
	size_t len = 1;
	char *s;

	for (int i = first; i < first + n && i < hl->n; i++)
		len += strlen(hl->w[i]) + 1;
	s = xcalloc(len, 1);
	for (int i = first; i < first + n && i < hl->n; i++) {
		if (i > first)
			strcat(s, " ");
		strcat(s, hl->w[i]);
	}
	return s;
}

/* --- slots and comments -------------------------------------------------- */

static struct slot *
slot_find(const struct slots *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i].key, key))
			return &s->v[i];
	return NULL;
}

static const char *
slot_val(const struct slots *s, const char *key)
{
	const struct slot *sl = slot_find(s, key);

	return sl != NULL ? sl->val : NULL;
}

/* Set key: a new key takes the next place in the output, a key set again
 * (HAProxy: the last one wins) keeps its place. */
static struct slot *
slot_put(struct imp *im, struct slots *s, const char *key, enum vkind kind,
         const char *val, int line)
{
	struct slot *sl = slot_find(s, key);

	if (sl == NULL) {
		s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
		sl = &s->v[s->n++];
		sl->key = key;
		sl->seq = im->seq++;
	} else {
		free(sl->val);
	}
	sl->val = xstrdup(val);
	sl->kind = kind;
	sl->line = line;
	sl->inherited = false;
	sl->note = NULL;
	return sl;
}

static void
slot_del(struct slots *s, const char *key)
{
	struct slot *sl = slot_find(s, key);
	size_t i;

	if (sl == NULL)
		return;
	i = (size_t)(sl - s->v);
	free(sl->val);
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
	s->n--;
}

static void
slots_copy(struct slots *dst, const struct slots *src, bool inherited)
{
	dst->v = NULL;
	dst->n = 0;
	if (src->n == 0)
		return;
	dst->v = xreallocarray(NULL, src->n, sizeof(*dst->v));
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = src->v[i];
		dst->v[i].val = xstrdup(src->v[i].val);
		if (inherited)
			dst->v[i].inherited = true;
	}
	dst->n = src->n;
}

static void
slots_free(struct slots *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].val);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void
comments_free(struct comments *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].text);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* Move the waiting comment lines into c, in front of whatever comes next. */
static void
flush_pending(struct imp *im, struct comments *c)
{
	if (im->npend == 0)
		return;
	c->v = xreallocarray(c->v, c->n + im->npend, sizeof(*c->v));
	for (size_t i = 0; i < im->npend; i++) {
		c->v[c->n].text = im->pend[i];
		c->v[c->n].seq = im->seq++;
		c->n++;
		im->ncarried++;
	}
	free(im->pend);
	im->pend = NULL;
	im->npend = 0;
}

static void
drop_pending(struct imp *im)
{
	for (size_t i = 0; i < im->npend; i++)
		free(im->pend[i]);
	free(im->pend);
	im->pend = NULL;
	im->npend = 0;
}

/* Move the comments of c to the end of to. */
static void
comments_move(struct imp *im, struct comments *to, struct comments *c)
{
	for (size_t i = 0; i < c->n; i++) {
		to->v = xreallocarray(to->v, to->n + 1, sizeof(*to->v));
		to->v[to->n].text = c->v[i].text;
		to->v[to->n++].seq = im->seq++;
	}
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* Where a directive of the current section puts its comments. */
static struct comments *
comments_for(struct imp *im, struct proxy *p, enum target t)
{
	if (p == NULL)
		return &im->global_c;
	if (p->defaults)
		return &im->top_c;
	switch (t) {
	case T_FE:
		return &p->fe_c;
	case T_SRV:
		return &p->srv_tail;
	case T_BE:
		return &p->be_c;
	case T_NONE:
		break;
	}
	return (p->cap & CAP_BE) ? &p->be_c : &p->fe_c;
}

static void
global_put(struct imp *im, const char *key, enum vkind kind, const char *val,
           bool here)
{
	if (here)
		flush_pending(im, &im->global_c);
	slot_put(im, &im->global, key, kind, val, im->line);
}

static void
fe_put(struct imp *im, struct proxy *p, const char *key, enum vkind kind,
       const char *val)
{
	flush_pending(im, comments_for(im, p, T_FE));
	p->last = T_FE;
	slot_put(im, &p->fe, key, kind, val, im->line);
}

static void
be_put(struct imp *im, struct proxy *p, const char *key, enum vkind kind,
       const char *val)
{
	/* Internal keys print nothing: their comments wait for a real key. */
	if (key[0] != '.') {
		flush_pending(im, comments_for(im, p, T_BE));
		p->last = T_BE;
	}
	slot_put(im, &p->be, key, kind, val, im->line);
}

/* --- values ------------------------------------------------------------- */

/* A non-negative decimal integer; false when s is not one. */
static bool
parse_count(const char *s, long long *out)
{
	long long v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s) || v > 99999999999LL)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

/* Argument i of the current line as a number in min..max.  A missing or
 * malformed number is an error (HAProxy refuses it too); a number outside
 * what load-balancer accepts cannot be translated (words from..i are
 * reported).  False in both cases. */
static bool
arg_int(struct imp *im, const char *what, int from, int i, long long min,
        long long max, long long *out)
{
	const struct hline *hl = im->hl;
	long long v;

	if (i >= hl->n) {
		error_at(im, im->line, "%s: expected a number", what);
		return false;
	}
	if (!parse_count(hl->w[i], &v)) {
		error_at(im, im->line, "%s: expected a number, not \"%s\"",
		         what, hl->w[i]);
		return false;
	}
	if (v < min || v > max) {
		char *s = join_words(hl, from, i - from + 1), why[64];

		if (v < min)
			snprintf(why, sizeof(why), "at least %lld here", min);
		else
			snprintf(why, sizeof(why), "at most %lld here", max);
		untranslated(im, im->line, s, why);
		free(s);
		return false;
	}
	*out = v;
	return true;
}

/* HAProxy's time format: digits and an optional unit, us ms s m h d; a
 * bare number is milliseconds.  Returns 0, -1 when malformed, 1 when longer
 * than load-balancer's limit (365 days). */
static int
hap_time(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
	    {"", 1},          {"ms", 1},          {"s", 1000},
	    {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
	};
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > LB_DURATION_MAX_MS * 1000)
			return 1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (streq(s, "us")) {
		*ms = (v + 999) / 1000;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (!streq(s, units[i].unit))
			continue;
		if (v > LB_DURATION_MAX_MS / units[i].ms)
			return 1;
		*ms = v * units[i].ms;
		return 0;
	}
	return -1;
}

/* Milliseconds in the largest unit that divides them: "6s", "1m". */
static void
fmt_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {
	    {86400 * 1000, "d"},
	    {3600 * 1000, "h"},
	    {60 * 1000, "m"},
	    {1000, "s"},
	};

	for (size_t i = 0; ms != 0 && i < ARRAY_SIZE(units); i++)
		if (ms % units[i].ms == 0) {
			snprintf(buf, len, "%llu%s",
			         (unsigned long long)(ms / units[i].ms),
			         units[i].unit);
			return;
		}
	snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* Argument i as a duration of at least min_ms (below it: words from..i
 * cannot be translated, why_small says why), in *ms.  False when
 * unusable. */
static bool
arg_ms(struct imp *im, const char *what, int from, int i, uint64_t min_ms,
       const char *why_small, uint64_t *ms)
{
	const struct hline *hl = im->hl;
	int r;

	if (i >= hl->n) {
		error_at(im, im->line, "%s: expected a time", what);
		return false;
	}
	r = hap_time(hl->w[i], ms);
	if (r < 0) {
		error_at(im, im->line,
		         "%s: bad time \"%s\" (a number with an optional "
		         "unit: us ms s m h d)",
		         what, hl->w[i]);
		return false;
	}
	if (r > 0 || *ms < min_ms) {
		char *s = join_words(hl, from, i - from + 1);

		untranslated(im, im->line, s,
		             r > 0 ? "longer than 365 days" : why_small);
		free(s);
		return false;
	}
	return true;
}

/* The same, formatted into buf. */
static bool
arg_time(struct imp *im, const char *what, int from, int i, uint64_t min_ms,
         const char *why_small, char *buf, size_t len)
{
	uint64_t ms;

	if (!arg_ms(im, what, from, i, min_ms, why_small, &ms))
		return false;
	fmt_duration(ms, buf, len);
	return true;
}

enum addr_use { A_BIND, A_SERVER };

/* An HAProxy address -> "HOST:PORT" or "[IPv6]:PORT" in out.  Returns 0,
 * -1 when malformed (an error, with *why), 1 when it is valid HAProxy but
 * has no equivalent here (*why says why). */
static int
hap_address(const char *in, enum addr_use use, char *out, size_t len,
            const char **why)
{
	static const char *const other_families[] = {
	    "unix@", "abns@", "abnsz@", "fd@",    "sockpair@",
	    "udp@",  "udp4@", "udp6@",  "quic4@", "quic6@",
	    "uxst@", "uxdg@", "rhttp@", NULL};
	static const char *const tcp_prefixes[] = {"ipv4@", "tcp@", "tcp4@",
	                                           NULL};
	char host[LB_ADDR_MAX], hostport[LB_ADDR_MAX + 16];
	const char *p = in, *colon, *port;
	bool v6 = false;
	long long pv;
	uint16_t pnum;
	size_t n;

	for (size_t i = 0; other_families[i] != NULL; i++)
		if (has_prefix(in, other_families[i])) {
			*why = "not a TCP address";
			return 1;
		}
	if (in[0] == '/') {
		*why = "a Unix socket: TCP addresses only";
		return 1;
	}
	for (size_t i = 0; tcp_prefixes[i] != NULL; i++)
		if (has_prefix(p, tcp_prefixes[i]))
			p += strlen(tcp_prefixes[i]);
	if (has_prefix(p, "ipv6@") || has_prefix(p, "tcp6@")) {
		p += 5;
		v6 = true;
	}
	if (strchr(p, '@') != NULL) {
		*why = "unknown address prefix";
		return -1;
	}
	if (p[0] == '[') {
		const char *end = strchr(p, ']');

		if (end == NULL) {
			*why = "missing ']' after an IPv6 address";
			return -1;
		}
		n = (size_t)(end - p - 1);
		if (n >= sizeof(host)) {
			*why = "host name too long";
			return -1;
		}
		memcpy(host, p + 1, n);
		host[n] = '\0';
		v6 = true;
		if (end[1] == '\0')
			colon = NULL;
		else if (end[1] == ':')
			colon = end + 1;
		else {
			*why = "expected :PORT after ']'";
			return -1;
		}
	} else {
		colon = strrchr(p, ':');
		n = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (n >= sizeof(host)) {
			*why = "host name too long";
			return -1;
		}
		memcpy(host, p, n);
		host[n] = '\0';
		if (strchr(host, ':') != NULL)
			v6 = true;
	}
	if (colon == NULL || colon[1] == '\0') {
		if (use == A_BIND) {
			*why = "missing :PORT";
			return -1;
		}
		if (host[0] == '\0') {
			*why = "missing address";
			return -1;
		}
		*why = "no port: HAProxy would use the port each client "
		       "connected to; write the port";
		return 1;
	}
	port = colon + 1;
	if (host[0] == '\0' || streq(host, "*")) {
		if (use == A_SERVER) {
			*why = "missing host";
			return -1;
		}
		strcpy(host, v6 ? "::" : "0.0.0.0");
	}
	if (use == A_BIND && strchr(port, '-') != NULL &&
	    isdigit((unsigned char)port[0])) {
		*why = "a port range: write one address per port";
		return 1;
	}
	if (use == A_SERVER && (port[0] == '+' || port[0] == '-')) {
		*why = "a port relative to the client's: write the port";
		return 1;
	}
	if (!parse_count(port, &pv) || pv < 1 || pv > 65535) {
		*why = "the port must be a number 1-65535";
		return -1;
	}
	if (use == A_SERVER && (streq(host, "0.0.0.0") || streq(host, "::"))) {
		*why = "the address each client connected to (transparent "
		       "proxying of any destination): list the servers";
		return 1;
	}
	snprintf(hostport, sizeof(hostport), v6 ? "[%s]:%lld" : "%s:%lld", host,
	         pv);
	/* The same check as the configuration loader's. */
	if (parse_address(hostport, host, sizeof(host), &pnum, why) < 0)
		return -1;
	snprintf(out, len, "%s", hostport);
	return 0;
}

/* --- reading lines ----------------------------------------------------- */

/* Split raw into words as HAProxy 2.x does: blanks separate words; '#'
 * outside quotes starts a comment; backslash escapes (\  \# \\ \' \" \r \n
 * \t \xHH); "double quotes" (escapes still apply) and 'single quotes'
 * (literal).  Returns 0, or -1 with *err. */
static int
tokenize(const char *raw, struct hline *hl, const char **err)
{
	enum { Q_NONE, Q_SINGLE, Q_DOUBLE } q = Q_NONE;
	const char *p = raw;
	char *o = hl->buf, *d = hl->disp;
	bool inword = false;

	hl->n = 0;
	hl->env = false;
	hl->comment = NULL;
	hl->indented = (*p == ' ' || *p == '\t');
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '#') {
		hl->comment = p + 1;
		hl->disp[0] = '\0';
		return 0;
	}
	for (; *p != '\0'; p++) {
		char c = *p;

		if (q == Q_NONE && (c == ' ' || c == '\t')) {
			if (inword)
				*o++ = '\0';
			inword = false;
			if (d > hl->disp && d[-1] != ' ')
				*d++ = ' ';
			continue;
		}
		if (q == Q_NONE && c == '#')
			break;
		*d++ = c;
		if (!inword) {
			if (hl->n == HAPROXY_WORDS_MAX) {
				*err = "too many words on the line (at most "
				       "64)";
				return -1;
			}
			hl->w[hl->n++] = o;
			inword = true;
		}
		if (q == Q_SINGLE) {
			if (c == '\'')
				q = Q_NONE;
			else
				*o++ = c;
			continue;
		}
		if (c == '\'' && q == Q_NONE) {
			q = Q_SINGLE;
			continue;
		}
		if (c == '"') {
			q = q == Q_DOUBLE ? Q_NONE : Q_DOUBLE;
			continue;
		}
		if (c == '$' && q == Q_DOUBLE &&
		    (p[1] == '{' || p[1] == '_' ||
		     isalpha((unsigned char)p[1])))
			hl->env = true;
		if (c == '\\' && p[1] != '\0') {
			char e = *++p;

			*d++ = e;
			switch (e) {
			case 'r':
				*o++ = '\r';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'x':
				if (isxdigit((unsigned char)p[1]) &&
				    isxdigit((unsigned char)p[2])) {
					char hex[3] = {p[1], p[2], '\0'};

					*d++ = p[1];
					*d++ = p[2];
					*o++ = (char)strtol(hex, NULL, 16);
					p += 2;
				} else {
					*o++ = '\\';
					*o++ = 'x';
				}
				break;
			case ' ':
			case '#':
			case '\\':
			case '\'':
			case '"':
			case '$':
				*o++ = e;
				break;
			default:
				*o++ = '\\';
				*o++ = e;
				break;
			}
			continue;
		}
		*o++ = c;
	}
	if (q != Q_NONE) {
		*err = "unterminated quote";
		return -1;
	}
	if (inword)
		*o = '\0';
	while (d > hl->disp && d[-1] == ' ')
		d--;
	*d = '\0';
	return 0;
}

/* --- sections ------------------------------------------------------------ */

static const char *const skipped_sections[] = {
    "peers",       "userlist", "resolvers", "mailers",   "program",
    "ring",        "cache",    "fcgi-app",  "crt-store", "http-errors",
    "log-forward", "traces",   "acme",      NULL};

static bool
is_section(const char *w)
{
	static const char *const known[] = {"global",  "defaults", "frontend",
	                                    "backend", "listen",   NULL};

	return in_list(w, known) || in_list(w, skipped_sections);
}

static void
words_free(char **w, int n)
{
	for (int i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

static void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
limits_free(struct limits_out *lo)
{
	free(lo->maxconn_note);
	free(lo->rate_note);
	free(lo->period_note);
	free(lo->prefix6_note);
	free(lo->table_note);
	free(lo->exempt_note);
	strlist_free(&lo->exempt);
	strlist_free(&lo->allow);
	strlist_free(&lo->deny);
}

static void
proxy_free(struct proxy *p)
{
	free(p->name);
	for (size_t i = 0; i < p->nacls; i++) {
		free(p->acls[i].name);
		words_free(p->acls[i].w, p->acls[i].n);
	}
	free(p->acls);
	for (size_t i = 0; i < p->nrules; i++) {
		words_free(p->rules[i].w, p->rules[i].n);
		free(p->rules[i].disp);
	}
	free(p->rules);
	free(p->table.disp);
	free(p->table.type);
	free(p->table.size_text);
	free(p->table.period_text);
	for (int i = 0; i < p->table.nx; i++)
		free(p->table.xwhat[i]);
	free(p->inspect_disp);
	limits_free(&p->lim);
	slots_free(&p->fe);
	slots_free(&p->be);
	slots_free(&p->srvdef);
	slots_free(&p->derived);
	slots_free(&p->hc);
	slots_free(&p->agent);
	for (size_t i = 0; i < p->nbinds; i++)
		free(p->binds[i]);
	free(p->binds);
	for (size_t i = 0; i < p->nservers; i++) {
		free(p->servers[i].name);
		free(p->servers[i].addr);
		slots_free(&p->servers[i].o);
		comments_free(&p->servers[i].before);
	}
	free(p->servers);
	comments_free(&p->lead);
	comments_free(&p->fe_c);
	comments_free(&p->be_c);
	comments_free(&p->srv_tail);
	free(p);
}

/* The section being read ends (at a header when next_header, else at the
 * end of the file).  Comment lines still waiting belong to it, unless they
 * sit right above the next header after a blank line: then they describe
 * the next section. */
static bool
end_section(struct imp *im, bool next_header)
{
	bool keep =
	    next_header && im->npend > 0 && im->pend_after_blank && !im->blank;

	if (keep)
		return true;
	switch (im->sect) {
	case S_GLOBAL:
		flush_pending(im, &im->global_c);
		break;
	case S_DEFAULTS:
	case S_NONE:
		flush_pending(im, &im->top_c);
		break;
	case S_PROXY:
		flush_pending(im, comments_for(im, im->cur, im->cur->last));
		break;
	case S_SKIP:
	case S_BAD:
		drop_pending(im);
		break;
	}
	return false;
}

static struct proxy *
find_defaults(struct imp *im, const char *name)
{
	for (size_t i = im->ndfl; i > 0; i--)
		if (im->dfl[i - 1]->name != NULL &&
		    streq(im->dfl[i - 1]->name, name))
			return im->dfl[i - 1];
	return NULL;
}

static void bind_addresses(struct imp *im, struct proxy *p, int first,
                           int last);

/* A section header.  Returns false when the line is not one. */
static bool
section_header(struct imp *im)
{
	struct hline *hl = im->hl;
	const char *k = hl->w[0];
	struct proxy *p, *from;
	bool lead, explicit_from;
	int last;

	if (!is_section(k))
		return false;
	lead = end_section(im, true);
	im->sect_indented = false;
	im->cur = NULL;
	if (streq(k, "global")) {
		im->sect = S_GLOBAL;
		if (lead)
			flush_pending(im, &im->global_lead);
		return true;
	}
	if (in_list(k, skipped_sections)) {
		im->sect = S_SKIP;
		drop_pending(im);
		untranslated(im, im->line, hl->disp,
		             streq(k, "resolvers")
		                 ? "section skipped: host names are resolved "
		                   "by the system at start"
		             : streq(k, "mailers")
		                 ? "section skipped: no e-mail alerts; the "
		                   "health log and lbctl health-report record "
		                   "every state change"
		                 : "section skipped: nothing equivalent here");
		return true;
	}
	p = xcalloc(1, sizeof(*p));
	p->kind = streq(k, "defaults")   ? "defaults"
	          : streq(k, "frontend") ? "frontend"
	          : streq(k, "backend")  ? "backend"
	                                 : "listen";
	p->defaults = streq(k, "defaults");
	p->cap = streq(k, "frontend")  ? CAP_FE
	         : streq(k, "backend") ? CAP_BE
	                               : CAP_FE | CAP_BE;
	p->line = im->line;
	if (lead)
		flush_pending(im, p->defaults ? &im->top_c : &p->lead);
	im->cur = p;
	im->sect = p->defaults ? S_DEFAULTS : S_PROXY;

	/* NAME [ADDRESS...] [from DEFAULTS] */
	last = hl->n;
	from = im->curdfl;
	explicit_from = false;
	if (hl->n >= 3 && streq(hl->w[hl->n - 2], "from")) {
		from = find_defaults(im, hl->w[hl->n - 1]);
		if (from == NULL)
			error_at(im, im->line,
			         "%s: no defaults section named \"%s\"", k,
			         hl->w[hl->n - 1]);
		explicit_from = true;
		last = hl->n - 2;
	}
	if (last >= 2)
		p->name = xstrdup(hl->w[1]);
	if (!p->defaults && p->name == NULL) {
		error_at(im, im->line, "%s: missing name", k);
		p->name = xstrdup("");
	}
	if (p->defaults) {
		if (last > 2)
			error_at(im, im->line, "defaults: unexpected \"%s\"",
			         hl->w[2]);
		if (from != NULL && explicit_from) {
			slots_copy(&p->fe, &from->fe, false);
			slots_copy(&p->be, &from->be, false);
			slots_copy(&p->srvdef, &from->srvdef, false);
		}
		im->dfl = xreallocarray(im->dfl, im->ndfl + 1, sizeof(p));
		im->dfl[im->ndfl++] = p;
		im->curdfl = p;
		return true;
	}
	for (size_t i = 0; i < im->npx; i++) {
		struct proxy *o = im->px[i];

		if ((o->cap & p->cap) && p->name[0] != '\0' &&
		    streq(o->name, p->name))
			error_at(im, im->line,
			         "%s \"%s\": a %s of that name exists already "
			         "(line %d)",
			         k, p->name,
			         (o->cap & p->cap & CAP_FE) ? "frontend"
			                                    : "backend",
			         o->line);
	}
	if (from != NULL) {
		if (p->cap & CAP_FE)
			slots_copy(&p->fe, &from->fe, true);
		if (p->cap & CAP_BE) {
			slots_copy(&p->be, &from->be, true);
			slots_copy(&p->srvdef, &from->srvdef, false);
		}
	}
	im->px = xreallocarray(im->px, im->npx + 1, sizeof(p));
	im->px[im->npx++] = p;
	if (last > 2) {
		if (p->cap & CAP_FE)
			bind_addresses(im, p, 2, last);
		else
			error_at(im, im->line, "backend: unexpected \"%s\"",
			         hl->w[2]);
	}
	return true;
}

/* --- global ------------------------------------------------------------- */

static const char *const hap_levels[] = {"emerg", "alert",   "crit",
                                         "err",   "warning", "notice",
                                         "info",  "debug",   NULL};

/* log ADDRESS [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]] */
static void
global_log(struct imp *im)
{
	static const char *const hap_facilities[] = {
	    "kern",   "user",   "mail",   "daemon", "auth",
	    "syslog", "lpr",    "news",   "uucp",   "cron",
	    "auth2",  "ftp",    "ntp",    "audit",  "alert",
	    "cron2",  "local0", "local1", "local2", "local3",
	    "local4", "local5", "local6", "local7", NULL};
	static const char *const local[] = {
	    "127.0.0.1", "127.0.0.1:514", "localhost", "localhost:514",
	    "::1",       "[::1]:514",     "/dev/log",  NULL};
	const struct hline *hl = im->hl;
	const char *addr, *fac, *level = NULL, *minlevel = NULL;
	bool sampled = false;
	int i = 2;

	if (hl->n < 3) {
		error_at(im, im->line,
		         "log: expected ADDRESS FACILITY [LEVEL]");
		return;
	}
	addr = hl->w[1];
	while (i + 1 < hl->n &&
	       (streq(hl->w[i], "len") || streq(hl->w[i], "format") ||
	        streq(hl->w[i], "sample"))) {
		if (streq(hl->w[i], "sample"))
			sampled = true;
		i += 2;
	}
	if (i >= hl->n) {
		error_at(im, im->line, "log: missing the facility");
		return;
	}
	fac = hl->w[i++];
	if (i < hl->n)
		level = hl->w[i++];
	if (i < hl->n)
		minlevel = hl->w[i++];
	if (i < hl->n) {
		error_at(im, im->line, "log: unexpected \"%s\"", hl->w[i]);
		return;
	}
	if (!in_list(fac, hap_facilities)) {
		error_at(im, im->line, "log: unknown facility \"%s\"", fac);
		return;
	}
	if ((level != NULL && !in_list(level, hap_levels)) ||
	    (minlevel != NULL && !in_list(minlevel, hap_levels))) {
		error_at(im, im->line, "log: unknown level \"%s\"",
		         level != NULL && !in_list(level, hap_levels)
		             ? level
		             : minlevel);
		return;
	}
	if (im->nlog > 0) {
		skip_line(im, "one log target here: global.log takes the "
		              "first \"log\" line");
		return;
	}
	if (streq(addr, "stdout") || streq(addr, "stderr") ||
	    streq(addr, "fd@1") || streq(addr, "fd@2")) {
		skip_line(im, "logs go to syslog, and also to stderr with -F");
		return;
	}
	if (has_prefix(addr, "ring@")) {
		skip_line(im, "no log rings: logs go to syslog");
		return;
	}
	if (streq(fac, "auth2"))
		fac = "authpriv";
	if (log_facility_from_name(fac) < 0) {
		skip_line(im, "no such syslog facility here");
		return;
	}
	if (has_prefix(addr, "udp@"))
		addr += 4;
	else if (has_prefix(addr, "ipv4@"))
		addr += 5;
	if (!in_list(addr, local))
		warn_at(
		    im, im->line,
		    "log %s: logs go to the local syslog daemon (/dev/log); "
		    "forward them from there",
		    hl->w[1]);
	if (minlevel != NULL)
		warn_at(im, im->line,
		        "log: the minimum level \"%s\" is dropped: every "
		        "message up to \"%s\" is logged",
		        minlevel, level);
	if (sampled)
		warn_at(im, im->line,
		        "log: sample is dropped: every message "
		        "is logged");
	global_put(im, "log.syslog", V_BOOL, "true", true);
	global_put(im, "log.facility", V_STR, fac, true);
	if (level != NULL)
		global_put(im, "log.level", V_STR, level, true);
	im->nlog++;
	im->first_log = join_words(hl, 1, hl->n - 1);
}

/* Keywords of proxies: misplaced in the global section, they mean the file
 * is not what it seems (a missing section header). */
static const char *const proxy_only[] = {"bind",
                                         "server",
                                         "default-server",
                                         "server-template",
                                         "default_backend",
                                         "use_backend",
                                         "balance",
                                         "timeout",
                                         "option",
                                         "mode",
                                         "retries",
                                         "fullconn",
                                         "backlog",
                                         "source",
                                         NULL};

static void unknown_directive(struct imp *im);

/* Where global.state_file points when a translation writes it (the
 * configuration loader's default too). */
#define STATE_FILE "/var/lib/load-balancer/state"

/* server-state-file and server-state-base (global), server-state-file-name
 * and load-server-state-from-file (defaults, backends): HAProxy reloads
 * server states an operator dumped by hand first.  Here what lbctl changes
 * is written to global.state_file at once (load-balancer.conf(5),
 * OPERATOR STATE), which the translation writes out. */
static void
server_state(struct imp *im)
{
	struct slot *sl;

	warn_at(im, im->line,
	        "%s: not needed: operator state (drain, maint, weight set "
	        "with lbctl) is saved automatically to global.state_file",
	        im->hl->w[0]);
	if (slot_find(&im->global, "state_file") != NULL)
		return;
	if (im->sect == S_GLOBAL)
		flush_pending(im, &im->global_c);
	sl = slot_put(im, &im->global, "state_file", V_STR, STATE_FILE,
	              im->line);
	sl->note = "replaces HAProxy's server state file: drain, disable and "
	           "weight set with lbctl survive a restart";
}

static void
global_directive(struct imp *im)
{
	static const char *const silent[] = {"quiet",
	                                     "ulimit-n",
	                                     "spread-checks",
	                                     "ca-base",
	                                     "crt-base",
	                                     "log-send-hostname",
	                                     "zero-warning",
	                                     "node",
	                                     "description",
	                                     "expose-experimental-directives",
	                                     NULL};
	const struct hline *hl = im->hl;
	const char *k = hl->w[0];
	char buf[64];
	long long v;

	if (streq(k, "log")) {
		global_log(im);
	} else if (streq(k, "maxconn")) {
		if (arg_int(im, k, 0, 1, 1, LB_MAXCONN_MAX, &v)) {
			snprintf(buf, sizeof(buf), "%lld", v);
			global_put(im, "maxconn", V_NUM, buf, true);
		}
	} else if (streq(k, "user") || streq(k, "group") ||
	           streq(k, "chroot") || streq(k, "pidfile")) {
		if (hl->n != 2)
			error_at(im, im->line, "%s: expected one argument", k);
		else if ((streq(k, "chroot") || streq(k, "pidfile")) &&
		         hl->w[1][0] != '/')
			skip_line(im, "an absolute path here");
		else
			global_put(im,
			           streq(k, "user")     ? "user"
			           : streq(k, "group")  ? "group"
			           : streq(k, "chroot") ? "chroot"
			                                : "pidfile",
			           V_STR, hl->w[1], true);
	} else if (streq(k, "daemon")) {
		global_put(im, "daemon", V_BOOL, "true", true);
	} else if (streq(k, "log-tag")) {
		if (hl->n != 2)
			error_at(im, im->line,
			         "log-tag: expected one argument");
		else
			global_put(im, "log.ident", V_STR, hl->w[1], true);
	} else if (streq(k, "hard-stop-after")) {
		if (arg_time(im, k, 0, 1, 0, NULL, buf, sizeof(buf)))
			global_put(im, "grace", V_STR, buf, true);
	} else if (streq(k, "nbthread")) {
		if (arg_int(im, k, 0, 1, 1, 1024, &v)) {
			snprintf(buf, sizeof(buf), "%lld", v);
			global_put(im, "workers", V_NUM, buf, true);
		}
	} else if (streq(k, "server-state-file") ||
	           streq(k, "server-state-base")) {
		server_state(im);
	} else if (streq(k, "uid") || streq(k, "gid")) {
		skip_line(im, "write user and group with names");
	} else if (streq(k, "stats")) {
		skip_line(im, "global.control_socket and lbctl replace the "
		              "stats socket");
	} else if (streq(k, "debug")) {
		skip_line(im, "use -F: foreground, logs on stderr too");
	} else if (streq(k, "nbproc") || streq(k, "master-worker") ||
	           streq(k, "cpu-map")) {
		skip_line(im, "one process; its threads are global.workers");
	} else if (in_list(k, silent) || has_prefix(k, "ssl-") ||
	           has_prefix(k, "tune.ssl.")) {
		/* No meaning here: see README. */
	} else if (in_list(k, proxy_only)) {
		error_at(im, im->line,
		         "%s: not allowed in the global section (missing a "
		         "frontend, backend or listen line?)",
		         k);
	} else {
		unknown_directive(im);
	}
}

/* --- proxies: frontend side --------------------------------------------- */

static void
bind_addresses(struct imp *im, struct proxy *p, int first, int last)
{
	const struct hline *hl = im->hl;

	for (int i = first; i < last; i++) {
		char *list = xstrdup(hl->w[i]), *save = NULL;

		for (char *a = strtok_r(list, ",", &save); a != NULL;
		     a = strtok_r(NULL, ",", &save)) {
			char out[LB_ADDR_MAX + 16];
			const char *why = NULL;
			int r = hap_address(a, A_BIND, out, sizeof(out), &why);

			if (r < 0) {
				error_at(im, im->line,
				         "bind: bad address \"%s\": %s", a,
				         why);
			} else if (r > 0) {
				char *what = xasprintf("bind %s", a);

				untranslated(im, im->line, what, why);
				free(what);
			} else {
				if (p->nbinds == 0) {
					flush_pending(
					    im, comments_for(im, p, T_FE));
					p->bind_seq = im->seq++;
				}
				p->last = T_FE;
				p->binds = xreallocarray(
				    p->binds, p->nbinds + 1, sizeof(char *));
				p->binds[p->nbinds++] = xstrdup(out);
			}
		}
		free(list);
	}
}

/* bind ADDRESS[,ADDRESS...] [OPTIONS] */
static void
proxy_bind(struct imp *im, struct proxy *p)
{
	static const struct {
		const char *name;
		int nargs;
		const char *why; /* NULL: dropped, no meaning here */
	} opts[] = {
	    {"transparent", 0, NULL},
	    {"backlog", 1, NULL},
	    {"v4v6", 0, NULL},
	    {"v6only", 0, NULL},
	    {"name", 1, NULL},
	    {"id", 1, NULL},
	    {"process", 1, NULL},
	    {"thread", 1, NULL},
	    {"nice", 1, NULL},
	    {"maxconn", 1,
	     "per address: frontends[].maxconn limits the whole frontend"},
	    {"accept-proxy", 0, "PROXY headers from clients are not read"},
	    {"interface", 1, "binding to an interface"},
	    {"namespace", 1, "network namespaces"},
	    {"mss", 1, "TCP MSS setting"},
	    {"tcp-ut", 1, "TCP user timeout"},
	    {"tfo", 0, "TCP Fast Open"},
	    {"defer-accept", 0, "deferred accept: SMTP servers speak first"},
	    {"ssl", 0,
	     "TLS termination: STARTTLS passes through to the servers"},
	    {"crt", 1, "TLS termination"},
	    {"crt-list", 1, "TLS termination"},
	    {"ca-file", 1, "TLS termination"},
	    {"alpn", 1, "TLS termination"},
	    {"ciphers", 1, "TLS termination"},
	    {"ciphersuites", 1, "TLS termination"},
	    {"verify", 1, "TLS termination"},
	    {"ssl-min-ver", 1, "TLS termination"},
	    {"ssl-max-ver", 1, "TLS termination"},
	    {"curves", 1, "TLS termination"},
	    {"strict-sni", 0, "TLS termination"},
	    {"no-tls-tickets", 0, "TLS termination"},
	    {"mode", 1, NULL},
	    {"user", 1, NULL},
	    {"group", 1, NULL},
	    {"uid", 1, NULL},
	    {"gid", 1, NULL},
	    {"level", 1, NULL},
	    {"expose-fd", 1, NULL},
	};
	const struct hline *hl = im->hl;
	int i, nline_before = (int)p->nbinds;
	bool transparent = false;

	if (hl->n < 2) {
		error_at(im, im->line, "bind: expected an address");
		return;
	}
	/* The addresses first: options of a bind line whose addresses are
	 * all left out apply to nothing. */
	bind_addresses(im, p, 1, 2);
	if ((int)p->nbinds == nline_before)
		return;
	p->nbind_lines++;
	for (i = 2; i < hl->n;) {
		size_t k;

		for (k = 0; k < ARRAY_SIZE(opts); k++)
			if (streq(hl->w[i], opts[k].name))
				break;
		if (k == ARRAY_SIZE(opts)) {
			char *what = join_words(hl, i, hl->n - i);

			untranslated(im, im->line, what,
			             "bind option unknown to this translator");
			free(what);
			break;
		}
		if (opts[k].nargs > 0 && i + opts[k].nargs >= hl->n) {
			error_at(im, im->line, "bind: %s: missing its argument",
			         hl->w[i]);
			return;
		}
		if (streq(opts[k].name, "transparent")) {
			transparent = true;
			fe_put(im, p, "transparent", V_BOOL, "true");
		} else if (streq(opts[k].name, "backlog")) {
			long long v;

			if (arg_int(im, "backlog", i, i + 1, 1, 65535, &v)) {
				char buf[32];

				snprintf(buf, sizeof(buf), "%lld", v);
				fe_put(im, p, "backlog", V_NUM, buf);
			}
		} else if (opts[k].why != NULL) {
			char *what = join_words(hl, i, opts[k].nargs + 1);

			untranslated(im, im->line, what, opts[k].why);
			free(what);
		}
		i += opts[k].nargs + 1;
	}
	if (transparent)
		p->ntransparent++;
	else if (p->plain_bind_line == 0)
		p->plain_bind_line = im->line;
}

/* --- proxies: servers ----------------------------------------------------- */

enum srv_act {
	SO_WEIGHT,
	SO_MAXCONN,
	SO_MINCONN,
	SO_CHECK,
	SO_NOCHECK,
	SO_INTER,
	SO_FASTINTER,
	SO_DOWNINTER,
	SO_RISE,
	SO_FALL,
	SO_BACKUP,
	SO_NOBACKUP,
	SO_DISABLED,
	SO_ENABLED,
	SO_PP1,
	SO_PP2,
	SO_PP2_TLS,
	SO_NOPP,
	SO_OMD,
	SO_CHECK_PP,
	SO_SOURCE,
	SO_OBSERVE,
	SO_ERROR_LIMIT,
	SO_ON_ERROR,
	SO_SLOWSTART,
	SO_AGENT,
	SO_NOAGENT,
	SO_AGENT_PORT,
	SO_AGENT_INTER,
	SO_AGENT_SEND,
	SO_AGENT_ADDR,
	SO_DROP, /* no meaning here */
	SO_NO,   /* cannot translate: why */
};

static const struct srvopt {
	const char *name;
	int nargs;
	enum srv_act act;
	const char *why;
} srvopts[] = {
    {"weight", 1, SO_WEIGHT, NULL},
    {"maxconn", 1, SO_MAXCONN, NULL},
    {"minconn", 1, SO_MINCONN, NULL},
    {"check", 0, SO_CHECK, NULL},
    {"no-check", 0, SO_NOCHECK, NULL},
    {"inter", 1, SO_INTER, NULL},
    {"fastinter", 1, SO_FASTINTER, NULL},
    {"downinter", 1, SO_DOWNINTER, NULL},
    {"rise", 1, SO_RISE, NULL},
    {"fall", 1, SO_FALL, NULL},
    {"backup", 0, SO_BACKUP, NULL},
    {"no-backup", 0, SO_NOBACKUP, NULL},
    {"disabled", 0, SO_DISABLED, NULL},
    {"enabled", 0, SO_ENABLED, NULL},
    {"send-proxy", 0, SO_PP1, NULL},
    {"send-proxy-v2", 0, SO_PP2, NULL},
    {"send-proxy-v2-ssl", 0, SO_PP2_TLS, NULL},
    {"send-proxy-v2-ssl-cn", 0, SO_PP2_TLS, NULL},
    {"no-send-proxy", 0, SO_NOPP, NULL},
    {"no-send-proxy-v2", 0, SO_NOPP, NULL},
    {"on-marked-down", 1, SO_OMD, NULL},
    {"check-send-proxy", 0, SO_CHECK_PP, NULL},
    {"source", 1, SO_SOURCE, NULL},
    {"id", 1, SO_DROP, NULL},
    {"non-stick", 0, SO_DROP, NULL},
    {"stick", 0, SO_DROP, NULL},
    {"pool-max-conn", 1, SO_DROP, NULL},
    {"pool-low-conn", 1, SO_DROP, NULL},
    {"pool-purge-delay", 1, SO_DROP, NULL},
    {"max-reuse", 1, SO_DROP, NULL},
    {"on-marked-up", 1, SO_NO, "no action when a server comes up"},
    {"observe", 1, SO_OBSERVE, NULL},
    {"error-limit", 1, SO_ERROR_LIMIT, NULL},
    {"on-error", 1, SO_ON_ERROR, NULL},
    {"port", 1, SO_NO, "checks go to the server's own address and port"},
    {"addr", 1, SO_NO, "checks go to the server's own address and port"},
    {"slowstart", 1, SO_SLOWSTART, NULL},
    {"maxqueue", 1, SO_NO, "the queue is per backend: timeout_queue"},
    {"cookie", 1, SO_NO, "HTTP cookies"},
    {"redir", 1, SO_NO, "HTTP redirects"},
    {"track", 1, SO_NO, "each server is checked itself"},
    {"resolvers", 1, SO_NO,
     "host names are resolved by the system at "
     "start"},
    {"resolve-prefer", 1, SO_NO,
     "host names are resolved by the system "
     "at start"},
    {"resolve-net", 1, SO_NO,
     "host names are resolved by the system at "
     "start"},
    {"resolve-opts", 1, SO_NO,
     "host names are resolved by the system "
     "at start"},
    {"init-addr", 1, SO_NO,
     "host names are resolved by the system at "
     "start"},
    {"agent-check", 0, SO_AGENT, NULL},
    {"no-agent-check", 0, SO_NOAGENT, NULL},
    {"agent-port", 1, SO_AGENT_PORT, NULL},
    {"agent-inter", 1, SO_AGENT_INTER, NULL},
    {"agent-send", 1, SO_AGENT_SEND, NULL},
    {"agent-addr", 1, SO_AGENT_ADDR, NULL},
    {"ssl", 0, SO_NO,
     "TLS towards the servers: sessions are relayed as "
     "they come (STARTTLS passes through)"},
    {"check-ssl", 0, SO_NO, "TLS checks: use health_check.starttls"},
    {"verify", 1, SO_NO, "TLS towards the servers"},
    {"verifyhost", 1, SO_NO, "TLS towards the servers"},
    {"ca-file", 1, SO_NO, "TLS towards the servers"},
    {"crl-file", 1, SO_NO, "TLS towards the servers"},
    {"crt", 1, SO_NO, "TLS towards the servers"},
    {"sni", 1, SO_NO, "TLS towards the servers"},
    {"check-sni", 1, SO_NO, "TLS towards the servers"},
    {"alpn", 1, SO_NO, "TLS towards the servers"},
    {"ciphers", 1, SO_NO, "TLS towards the servers"},
    {"ssl-min-ver", 1, SO_NO, "TLS towards the servers"},
    {"ssl-max-ver", 1, SO_NO, "TLS towards the servers"},
    {"no-ssl", 0, SO_DROP, NULL},
    {"tfo", 0, SO_NO, "TCP Fast Open"},
    {"namespace", 1, SO_NO, "network namespaces"},
    {"proxy-v2-options", 1, SO_NO, "no PROXY v2 options (TLVs)"},
    {"socks4", 1, SO_NO, "no SOCKS"},
    {"check-via-socks4", 0, SO_NO, "no SOCKS"},
    {"tcp-ut", 1, SO_NO, "TCP user timeout"},
    {"proto", 1, SO_NO, "the relay is plain TCP"},
    {"check-proto", 1, SO_NO, "the relay is plain TCP"},
};

/* backends[].error_limit: at most this many here. */
#define ERROR_LIMIT_MAX 1000
/* HAProxy's error-limit when observe is set without one. */
#define HAP_ERROR_LIMIT_DEFAULT "10"
/* backends[].agent.send: at most this many bytes here. */
#define AGENT_SEND_MAX 1024

static const char *const on_error_modes[] = {"fastinter", "fail-check",
                                             "sudden-death", "mark-down", NULL};

/* Server options from word first on, into o (a server or default-server);
 * who names it in messages. */
static void
server_options(struct imp *im, int first, struct slots *o, const char *who)
{
	const struct hline *hl = im->hl;
	bool check_pp = false;
	char buf[64];
	long long v;

	for (int i = first; i < hl->n;) {
		const struct srvopt *so = NULL;
		const char *key = NULL;

		for (size_t k = 0; k < ARRAY_SIZE(srvopts); k++)
			if (streq(hl->w[i], srvopts[k].name))
				so = &srvopts[k];
		if (so == NULL) {
			char *what = join_words(hl, i, hl->n - i);
			char *why = xasprintf("%s: option \"%s\" unknown to "
			                      "this translator",
			                      who, hl->w[i]);

			untranslated(im, im->line, what, why);
			free(what);
			free(why);
			break;
		}
		if (so->nargs > 0 && i + so->nargs >= hl->n) {
			error_at(im, im->line, "%s: %s: missing its argument",
			         who, so->name);
			return;
		}
		switch (so->act) {
		case SO_WEIGHT:
		case SO_MAXCONN:
		case SO_MINCONN:
			key = so->act == SO_WEIGHT    ? "weight"
			      : so->act == SO_MAXCONN ? "maxconn"
			                              : "minconn";
			if (arg_int(im, so->name, i, i + 1, 0,
			            so->act == SO_WEIGHT ? LB_WEIGHT_MAX
			                                 : LB_MAXCONN_MAX,
			            &v)) {
				snprintf(buf, sizeof(buf), "%lld", v);
				slot_put(im, o, key, V_NUM, buf, im->line);
			}
			break;
		case SO_RISE:
		case SO_FALL:
			if (arg_int(im, so->name, i, i + 1, 1, 1000, &v)) {
				snprintf(buf, sizeof(buf), "%lld", v);
				slot_put(im, o,
				         so->act == SO_RISE ? ".rise" : ".fall",
				         V_NUM, buf, im->line);
			}
			break;
		case SO_INTER:
		case SO_FASTINTER:
		case SO_DOWNINTER:
			key = so->act == SO_INTER       ? ".inter"
			      : so->act == SO_FASTINTER ? ".fastinter"
			                                : ".downinter";
			if (arg_time(im, so->name, i, i + 1, 100,
			             "checks run at most every 100ms here", buf,
			             sizeof(buf)))
				slot_put(im, o, key, V_STR, buf, im->line);
			break;
		case SO_CHECK:
		case SO_NOCHECK:
		case SO_AGENT:
		case SO_NOAGENT:
			slot_put(im, o,
			         so->act == SO_CHECK || so->act == SO_NOCHECK
			             ? "check"
			             : ".agent",
			         V_BOOL,
			         so->act == SO_CHECK || so->act == SO_AGENT
			             ? "true"
			             : "false",
			         im->line);
			break;
		case SO_BACKUP:
			slot_put(im, o, "backup", V_BOOL, "true", im->line);
			break;
		case SO_NOBACKUP:
			slot_del(o, "backup");
			break;
		case SO_DISABLED:
			slot_put(im, o, "disabled", V_BOOL, "true", im->line);
			break;
		case SO_ENABLED:
			slot_del(o, "disabled");
			break;
		case SO_PP1:
			slot_put(im, o, "proxy_protocol", V_STR, "v1",
			         im->line);
			break;
		case SO_PP2_TLS:
			untranslated(im, im->line, so->name,
			             "no TLS information in PROXY v2 headers: "
			             "plain send-proxy-v2 is used");
			/* fall through */
		case SO_PP2:
			slot_put(im, o, "proxy_protocol", V_STR, "v2",
			         im->line);
			break;
		case SO_NOPP:
			slot_put(im, o, "proxy_protocol", V_STR, "none",
			         im->line);
			break;
		case SO_OMD:
			if (!streq(hl->w[i + 1], "shutdown-sessions")) {
				error_at(im, im->line,
				         "%s: on-marked-down: unknown action "
				         "\"%s\"",
				         who, hl->w[i + 1]);
				return;
			}
			slot_put(im, o, ".omd", V_BOOL, "true", im->line);
			break;
		case SO_CHECK_PP:
			check_pp = true;
			break;
		case SO_SOURCE: {
			/* source ADDR [usesrc X] [interface X] */
			int n = 1;

			while (i + n + 1 < hl->n &&
			       (streq(hl->w[i + n], "usesrc") ||
			        streq(hl->w[i + n], "interface")))
				n += 2;
			char *what = join_words(hl, i, n + 1);
			char *why = xasprintf("%s: the source address is set "
			                      "per backend here (source)",
			                      who);

			untranslated(im, im->line, what, why);
			free(what);
			free(why);
			i += n + 1;
			continue;
		}
		case SO_OBSERVE:
			/* Passive health (load-balancer.conf(5), GREETING
			 * GATE): folded
			 * into the backend's error_limit. */
			if (streq(hl->w[i + 1], "layer4")) {
				slot_put(im, o, ".observe", V_BOOL, "true",
				         im->line);
			} else if (streq(hl->w[i + 1], "layer7")) {
				char *what = join_words(hl, i, 2);
				char *why = xasprintf(
				    "%s: HTTP responses only, not meaningful "
				    "in TCP mode; error_limit counts failed "
				    "connects and greetings (observe layer4)",
				    who);

				untranslated(im, im->line, what, why);
				free(what);
				free(why);
				slot_del(o, ".observe");
			} else {
				error_at(im, im->line,
				         "%s: observe: unknown mode \"%s\" "
				         "(layer4 or layer7)",
				         who, hl->w[i + 1]);
				return;
			}
			break;
		case SO_ERROR_LIMIT:
			if (arg_int(im, so->name, i, i + 1, 1, ERROR_LIMIT_MAX,
			            &v)) {
				snprintf(buf, sizeof(buf), "%lld", v);
				slot_put(im, o, ".error_limit", V_NUM, buf,
				         im->line);
			}
			break;
		case SO_ON_ERROR:
			if (!in_list(hl->w[i + 1], on_error_modes)) {
				error_at(im, im->line,
				         "%s: on-error: unknown mode \"%s\"",
				         who, hl->w[i + 1]);
				return;
			}
			slot_put(im, o, ".on_error", V_STR, hl->w[i + 1],
			         im->line);
			break;
		case SO_SLOWSTART: {
			uint64_t ms;

			/* HAProxy keeps whole seconds, rounded up. */
			if (!arg_ms(im, so->name, i, i + 1, 0, NULL, &ms))
				break;
			ms = (ms + 999) / 1000 * 1000;
			if (ms == 0)
				snprintf(buf, sizeof(buf), "0");
			else
				fmt_duration(ms, buf, sizeof(buf));
			slot_put(im, o, ".slowstart", V_STR, buf, im->line);
			break;
		}
		case SO_AGENT_PORT:
			if (arg_int(im, so->name, i, i + 1, 1, 65535, &v)) {
				snprintf(buf, sizeof(buf), "%lld", v);
				slot_put(im, o, ".agent_port", V_NUM, buf,
				         im->line);
			}
			break;
		case SO_AGENT_INTER:
			if (arg_time(im, so->name, i, i + 1, 100,
			             "agent checks run at most every 100ms "
			             "here",
			             buf, sizeof(buf)))
				slot_put(im, o, ".agent_inter", V_STR, buf,
				         im->line);
			break;
		case SO_AGENT_SEND:
			if (strlen(hl->w[i + 1]) > AGENT_SEND_MAX) {
				char *why = xasprintf("%s: at most %d bytes "
				                      "here",
				                      who, AGENT_SEND_MAX);

				untranslated(im, im->line, so->name, why);
				free(why);
				slot_del(o, ".agent_send");
			} else {
				slot_put(im, o, ".agent_send", V_STR,
				         hl->w[i + 1], im->line);
			}
			break;
		case SO_AGENT_ADDR:
			/* Compared with each server's host when folded. */
			slot_put(im, o, ".agent_addr", V_STR, hl->w[i + 1],
			         im->line);
			break;
		case SO_DROP:
			break;
		case SO_NO: {
			char *what = join_words(hl, i, so->nargs + 1);
			char *why = xasprintf("%s: %s", who, so->why);

			untranslated(im, im->line, what, why);
			free(what);
			free(why);
			break;
		}
		}
		i += so->nargs + 1;
	}
	if (check_pp) {
		const char *pp = slot_val(o, "proxy_protocol");

		if (pp == NULL || streq(pp, "none")) {
			char *why = xasprintf("%s: checks send a PROXY header "
			                      "when the server's sessions do",
			                      who);

			untranslated(im, im->line, "check-send-proxy", why);
			free(why);
		}
	}
}

/* server NAME ADDRESS [OPTIONS] */
static void
proxy_server(struct imp *im, struct proxy *p)
{
	const struct hline *hl = im->hl;
	struct hserver *s;
	char addr[LB_ADDR_MAX + 16], *who;
	const char *why = NULL;
	int r;

	if (hl->n < 3) {
		error_at(im, im->line, "server: expected NAME ADDRESS");
		return;
	}
	for (size_t i = 0; i < p->nservers; i++)
		if (streq(p->servers[i].name, hl->w[1])) {
			error_at(im, im->line,
			         "server \"%s\": a server of that name exists "
			         "already in %s \"%s\" (line %d)",
			         hl->w[1], p->kind, p->name,
			         p->servers[i].line);
			return;
		}
	r = hap_address(hl->w[2], A_SERVER, addr, sizeof(addr), &why);
	if (r < 0) {
		error_at(im, im->line, "server %s: bad address \"%s\": %s",
		         hl->w[1], hl->w[2], why);
		return;
	}
	if (r > 0) {
		char *w = xasprintf("server %s skipped: %s", hl->w[1], why);

		skip_line(im, w);
		free(w);
		return;
	}
	p->servers = xreallocarray(p->servers, p->nservers + 1, sizeof(*s));
	s = &p->servers[p->nservers++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(hl->w[1]);
	s->addr = xstrdup(addr);
	s->line = im->line;
	slots_copy(&s->o, &p->srvdef, false);
	flush_pending(im, &s->before);
	p->last = T_SRV;
	who = xasprintf("server %s", s->name);
	server_options(im, 3, &s->o, who);
	free(who);
}

/* --- proxies: the other directives ---------------------------------------- */

/* A directive for one side only: elsewhere HAProxy ignores it with a
 * warning, and so does this. */
static bool
need_cap(struct imp *im, struct proxy *p, unsigned cap)
{
	if (p->cap & cap)
		return true;
	warn_at(im, im->line,
	        "%s: ignored in a %s (HAProxy ignores it there too)",
	        im->hl->w[0], p->kind);
	return false;
}

static void
proxy_timeout(struct imp *im, struct proxy *p, const char *kind, int vi)
{
	static const char *const http_only[] = {
	    "http-request", "http-keep-alive", "tarpit", NULL};
	static const char *const dialogue[] = {"tunnel", "client-fin",
	                                       "server-fin", NULL};
	char buf[64], *what;
	const char *key;
	unsigned cap;

	if (in_list(kind, http_only))
		return;
	if (in_list(kind, dialogue)) {
		skip_line(im, "timeouts follow the SMTP dialogue here: "
		              "timeout_client and timeout_server");
		return;
	}
	if (streq(kind, "client")) {
		key = "timeout_client";
		cap = CAP_FE;
	} else if (streq(kind, "server")) {
		key = "timeout_server";
		cap = CAP_BE;
	} else if (streq(kind, "connect")) {
		key = "timeout_connect";
		cap = CAP_BE;
	} else if (streq(kind, "queue")) {
		key = "timeout_queue";
		cap = CAP_BE;
	} else if (streq(kind, "check")) {
		key = ".hc_timeout";
		cap = CAP_BE;
	} else {
		error_at(im, im->line, "timeout: unknown timeout \"%s\"", kind);
		return;
	}
	if (!need_cap(im, p, cap))
		return;
	what = xasprintf("timeout %s", kind);
	if (arg_time(im, what, 0, vi, 1,
	             "0 means no timeout in HAProxy, which is not available "
	             "here: the default is kept",
	             buf, sizeof(buf))) {
		if (cap == CAP_FE)
			fe_put(im, p, key, V_STR, buf);
		else
			be_put(im, p, key, V_STR, buf);
	}
	free(what);
}

/* balance ALGORITHM [ARGUMENTS] */
static void
proxy_balance(struct imp *im, struct proxy *p)
{
	static const char *const other[] = {
	    "first", "random", "uri", "url_param", "hash", "rdp-cookie", NULL};
	const struct hline *hl = im->hl;
	const char *a;

	if (hl->n < 2) {
		error_at(im, im->line, "balance: expected an algorithm");
		return;
	}
	a = hl->w[1];
	if (streq(a, "roundrobin") || streq(a, "static-rr"))
		be_put(im, p, "balance", V_STR, "roundrobin");
	else if (streq(a, "leastconn") || streq(a, "source"))
		be_put(im, p, "balance", V_STR, a);
	else if (in_list(a, other) || has_prefix(a, "hdr(") ||
	         has_prefix(a, "random(") || has_prefix(a, "rdp-cookie("))
		skip_line(im, "roundrobin, leastconn and source only: "
		              "roundrobin is used");
	else
		error_at(im, im->line, "balance: unknown algorithm \"%s\"", a);
}

/* An IP address with an optional port: true when valid, *port set when
 * a port was written. */
static bool
split_ip(const char *in, char *ip, size_t len, bool *port)
{
	unsigned char buf[sizeof(struct in6_addr)];
	const char *colon;
	long long pv;

	*port = false;
	if (in[0] == '[') {
		const char *end = strchr(in, ']');

		if (end == NULL || (size_t)(end - in) >= len)
			return false;
		memcpy(ip, in + 1, (size_t)(end - in - 1));
		ip[end - in - 1] = '\0';
		if (end[1] == ':') {
			*port = true;
			if (!parse_count(end + 2, &pv) || pv > 65535)
				return false;
		} else if (end[1] != '\0')
			return false;
		return inet_pton(AF_INET6, ip, buf) == 1;
	}
	if (strlen(in) >= len)
		return false;
	snprintf(ip, len, "%s", in);
	if (inet_pton(AF_INET6, ip, buf) == 1)
		return true;
	colon = strrchr(in, ':');
	if (colon != NULL) {
		ip[colon - in] = '\0';
		*port = true;
		if (!parse_count(colon + 1, &pv) || pv > 65535)
			return false;
	}
	return inet_pton(AF_INET, ip, buf) == 1;
}

/* source ADDR[:PORT] [usesrc {clientip | client | ADDR[:PORT] | ...}]
 *        [interface NAME] */
static void
proxy_source(struct imp *im, struct proxy *p)
{
	const struct hline *hl = im->hl;
	char ip[INET6_ADDRSTRLEN + 8];
	const char *usesrc = NULL;
	bool port;
	int i;

	if (hl->n < 2) {
		error_at(im, im->line, "source: expected an address");
		return;
	}
	if (!split_ip(hl->w[1], ip, sizeof(ip), &port)) {
		error_at(im, im->line, "source: bad address \"%s\"", hl->w[1]);
		return;
	}
	for (i = 2; i + 1 < hl->n; i += 2) {
		if (streq(hl->w[i], "usesrc")) {
			usesrc = hl->w[i + 1];
		} else if (streq(hl->w[i], "interface")) {
			char *what = join_words(hl, i, 2);

			untranslated(im, im->line, what,
			             "binding to an interface");
			free(what);
		} else {
			break;
		}
	}
	if (i < hl->n) {
		error_at(im, im->line, "source: unexpected \"%s\"", hl->w[i]);
		return;
	}
	if (usesrc != NULL) {
		if (streq(usesrc, "clientip") || streq(usesrc, "client")) {
			if (streq(usesrc, "client"))
				warn_at(im, im->line,
				        "usesrc client: connections leave from "
				        "the client's address, not its port");
			be_put(im, p, "source", V_STR, "clientip");
		} else {
			skip_line(im, "usesrc: the client's address "
			              "(clientip) or a local address only");
		}
		return;
	}
	if (port)
		warn_at(im, im->line,
		        "source %s: the port is dropped; the kernel picks one",
		        hl->w[1]);
	if (streq(ip, "0.0.0.0") || streq(ip, "::"))
		be_put(im, p, "source", V_STR, "");
	else
		be_put(im, p, "source", V_STR, ip);
}

static void
proxy_option(struct imp *im, struct proxy *p, bool no)
{
	static const char *const silent[] = {
	    "dontlognull",     "redispatch",       "log-health-checks",
	    "allbackups",      "splice-auto",      "splice-request",
	    "splice-response", "tcp-smart-accept", "tcp-smart-connect",
	    "forwardfor",      "originalto",       "httpclose",
	    "forceclose",      "abortonclose",     "persist",
	    "contstats",       "socket-stats",     NULL};
	static const char *const other_checks[] = {
	    "httpchk",     "ssl-hello-chk",  "mysql-check",
	    "pgsql-check", "redis-check",    "ldap-check",
	    "spop-check",  "external-check", NULL};
	const struct hline *hl = im->hl;
	int o = no ? 2 : 1;
	const char *name;

	if (hl->n <= o) {
		error_at(im, im->line, "option: expected an option name");
		return;
	}
	name = hl->w[o];
	if (in_list(name, silent) ||
	    (has_prefix(name, "http") && !streq(name, "httpchk") &&
	     !streq(name, "httplog")) ||
	    has_prefix(name, "accept-invalid-http") || has_prefix(name, "h1-"))
		return;
	if (no) {
		if (streq(name, "tcplog") || streq(name, "httplog"))
			return;
		skip_line(im, NULL);
		return;
	}
	if (streq(name, "tcplog") || streq(name, "httplog")) {
		global_put(im, "log.sessions", V_BOOL, "true", false);
	} else if (streq(name, "smtpchk")) {
		if (!need_cap(im, p, CAP_BE))
			return;
		be_put(im, p, ".hc_type", V_STR, "smtp");
		slot_del(&p->be, ".hc_helo");
		slot_del(&p->be, ".hc_ehlo");
		if (hl->n >= 4 && (strcasecmp(hl->w[2], "HELO") == 0 ||
		                   strcasecmp(hl->w[2], "EHLO") == 0)) {
			be_put(im, p, ".hc_helo", V_STR, hl->w[3]);
			if (strcasecmp(hl->w[2], "EHLO") == 0)
				be_put(im, p, ".hc_ehlo", V_BOOL, "true");
		}
	} else if (streq(name, "tcp-check")) {
		if (need_cap(im, p, CAP_BE))
			be_put(im, p, ".hc_type", V_STR, "tcp");
	} else if (in_list(name, other_checks)) {
		if (!need_cap(im, p, CAP_BE))
			return;
		skip_line(im, "tcp and smtp checks only: servers with "
		              "\"check\" get a TCP connect check");
		be_put(im, p, ".hc_type", V_STR, "tcp");
	} else if (streq(name, "tcpka") || streq(name, "clitcpka") ||
	           streq(name, "srvtcpka")) {
		skip_line(im, "no TCP keep-alive probes here");
	} else if (streq(name, "logasap")) {
		skip_line(im, "sessions are logged when they end");
	} else if (streq(name, "dontlog-normal")) {
		skip_line(im, "every session is logged (global.log.sessions)");
	} else if (streq(name, "transparent")) {
		skip_line(im, "no relaying to the original destination: list "
		              "the servers");
	} else if (streq(name, "independent-streams")) {
		skip_line(im, "timeouts follow the SMTP dialogue here: "
		              "timeout_client and timeout_server");
	} else {
		skip_line(im, NULL);
	}
}

/* log global | log ADDRESS ... | no log */
static void
proxy_log(struct imp *im)
{
	const struct hline *hl = im->hl;
	char *words;

	if (hl->n == 2 && streq(hl->w[1], "global"))
		return;
	words = join_words(hl, 1, hl->n - 1);
	if (im->first_log == NULL || !streq(words, im->first_log))
		skip_line(im, "one log target here: global.log");
	free(words);
}

/* --- proxies: acl, stick-table, tcp-request ------------------------------- */

/* These are read as written; fold_client_limits translates what has a
 * meaning here (load-balancer.conf(5), CLIENT LIMITS) and reports the
 * rest. */

static char **
words_dup(const struct hline *hl, int first)
{
	char **w = xreallocarray(NULL, (size_t)(hl->n - first + 1), sizeof(*w));

	for (int i = first; i < hl->n; i++)
		w[i - first] = xstrdup(hl->w[i]);
	return w;
}

static const char *const in_defaults =
    "in a defaults section: write it in the frontend";

/* acl NAME CRITERION [FLAGS] [OPERATOR] [VALUE...] */
static void
proxy_acl(struct imp *im, struct proxy *p)
{
	const struct hline *hl = im->hl;
	struct hacl *a;

	if (p->defaults) {
		skip_line(im, in_defaults);
		return;
	}
	if (hl->n < 3) {
		skip_line(im, "expected acl NAME CRITERION [VALUES]");
		return;
	}
	p->acls = xreallocarray(p->acls, p->nacls + 1, sizeof(*p->acls));
	a = &p->acls[p->nacls++];
	a->name = xstrdup(hl->w[1]);
	a->line = im->line;
	a->n = hl->n - 2;
	a->w = words_dup(hl, 2);
}

/* HAProxy's table size: a count with an optional k, m or g (2^10, 2^20,
 * 2^30). */
static bool
hap_size(const char *s, long long *out)
{
	long long v = 0, mult = 1;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > 99999999999LL)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (*s == 'k' || *s == 'K')
		mult = 1LL << 10;
	else if (*s == 'm' || *s == 'M')
		mult = 1LL << 20;
	else if (*s == 'g' || *s == 'G')
		mult = 1LL << 30;
	else if (*s != '\0')
		return false;
	if (mult > 1 && s[1] != '\0')
		return false;
	*out = v * mult;
	return true;
}

static void
table_clear(struct htable *t)
{
	free(t->disp);
	free(t->type);
	free(t->size_text);
	free(t->period_text);
	for (int i = 0; i < t->nx; i++)
		free(t->xwhat[i]);
	memset(t, 0, sizeof(*t));
}

/* "store A,B(x),C": the data types client limits read. */
static const char *
table_store(struct htable *t, const char *list)
{
	const char *p = list;

	while (*p != '\0') {
		const char *e = p;
		int depth = 0;
		size_t n;

		while (*e != '\0' && (depth > 0 || *e != ',')) {
			if (*e == '(')
				depth++;
			else if (*e == ')' && depth > 0)
				depth--;
			e++;
		}
		n = (size_t)(e - p);
		if (n == 8 && strncmp(p, "conn_cur", 8) == 0) {
			t->conn_cur = true;
		} else if (n > 11 && strncmp(p, "conn_rate(", 10) == 0 &&
		           p[n - 1] == ')') {
			char period[32];
			uint64_t ms;

			if (n - 11 >= sizeof(period))
				return "conn_rate: bad period";
			memcpy(period, p + 10, n - 11);
			period[n - 11] = '\0';
			if (hap_time(period, &ms) != 0 || ms == 0)
				return "conn_rate: bad period";
			t->period_ms = ms;
			free(t->period_text);
			t->period_text = xstrdup(period);
		}
		/* Other data types are read by rules that are reported. */
		p = *e == ',' ? e + 1 : e;
	}
	return NULL;
}

/* stick-table type T [len N] size S [expire E] [nopurge] [peers P]
 *             [store D[,D...]]... */
static void
proxy_stick_table(struct imp *im, struct proxy *p)
{
	const struct hline *hl = im->hl;
	struct htable *t = &p->table;
	const char *why = NULL;

	if (p->defaults) {
		skip_line(im, in_defaults);
		return;
	}
	if (t->line != 0) {
		skip_line(im, "one stick-table per section, as in HAProxy");
		return;
	}
	t->line = im->line;
	t->disp = xstrdup(hl->disp);
	for (int i = 1; i < hl->n && why == NULL;) {
		const char *k = hl->w[i];
		bool arg = i + 1 < hl->n;

		if (streq(k, "type") && arg) {
			free(t->type);
			t->type = xstrdup(hl->w[i + 1]);
			i += 2;
			if (i + 1 < hl->n && streq(hl->w[i], "len"))
				i += 2;
		} else if (streq(k, "size") && arg) {
			if (!hap_size(hl->w[i + 1], &t->size) || t->size < 1)
				why = "bad size";
			free(t->size_text);
			t->size_text = xstrdup(hl->w[i + 1]);
			i += 2;
		} else if (streq(k, "expire") && arg) {
			/* Client networks are evicted when the table is full
			 * (table_size), the idle ones first. */
			i += 2;
		} else if (streq(k, "store") && arg) {
			why = table_store(t, hl->w[i + 1]);
			i += 2;
		} else if ((streq(k, "peers") || streq(k, "srvkey") ||
		            streq(k, "write-to")) &&
		           arg) {
			if (t->nx < (int)ARRAY_SIZE(t->xwhat)) {
				t->xwhat[t->nx] = join_words(hl, i, 2);
				t->xwhy[t->nx++] =
				    streq(k, "peers")
				        ? "each load-balancer counts its own "
				          "clients: the counts are not shared "
				          "between nodes"
				        : "no stick tables here";
			}
			i += 2;
		} else if (streq(k, "nopurge") || streq(k, "recv-only")) {
			if (t->nx < (int)ARRAY_SIZE(t->xwhat)) {
				t->xwhat[t->nx] = xstrdup(k);
				t->xwhy[t->nx++] =
				    streq(k, "nopurge")
				        ? "when the table is full, the client "
				          "network idle the longest is evicted"
				        : "no stick tables here";
			}
			i++;
		} else {
			why = "an option unknown to this translator";
		}
	}
	if (why == NULL && (t->type == NULL || t->size == 0))
		why = "expected type and size";
	if (why != NULL) {
		skip_line(im, why);
		table_clear(t);
	}
}

/* tcp-request inspect-delay T | tcp-request PHASE ACTION ... */
static void
proxy_tcp_request(struct imp *im, struct proxy *p)
{
	static const char *const phases[PH_N] = {"connection", "session",
	                                         "content"};
	const struct hline *hl = im->hl;
	struct hrule *r;
	int ph;

	if (hl->n < 2) {
		skip_line(im, NULL);
		return;
	}
	if (p->defaults) {
		skip_line(im, in_defaults);
		return;
	}
	if (streq(hl->w[1], "inspect-delay")) {
		p->inspect_line = im->line;
		free(p->inspect_disp);
		p->inspect_disp = xstrdup(hl->disp);
		return;
	}
	for (ph = 0; ph < PH_N; ph++)
		if (streq(hl->w[1], phases[ph]))
			break;
	if (ph == PH_N) {
		skip_line(im, NULL);
		return;
	}
	if (ph != PH_CONTENT && !(p->cap & CAP_FE)) {
		skip_line(im,
		          "HAProxy allows it in frontends and listens only");
		return;
	}
	if (hl->n < 3) {
		skip_line(im, "expected an action");
		return;
	}
	p->rules = xreallocarray(p->rules, p->nrules + 1, sizeof(*p->rules));
	r = &p->rules[p->nrules++];
	memset(r, 0, sizeof(*r));
	r->line = im->line;
	r->phase = (enum phase)ph;
	r->n = hl->n - 2;
	r->w = words_dup(hl, 2);
	r->disp = xstrdup(hl->disp);
}

static void
proxy_directive(struct imp *im)
{
	static const char *const silent[] = {
	    "description", "id",          "enabled",
	    "hash-type",   "errorfile",   "errorloc",
	    "errorloc302", "errorloc303", NULL};
	const struct hline *hl = im->hl;
	struct proxy *p = im->cur;
	const char *k = hl->w[0];
	char buf[64];
	long long v;

	if (streq(k, "bind")) {
		if (p->defaults || !(p->cap & CAP_FE))
			error_at(im, im->line, "bind: not allowed in a %s",
			         p->kind);
		else
			proxy_bind(im, p);
	} else if (streq(k, "server") || streq(k, "server-template")) {
		if (p->defaults || !(p->cap & CAP_BE))
			error_at(im, im->line,
			         "%s: not allowed in a %s (only in a backend "
			         "or listen section)",
			         k, p->kind);
		else if (streq(k, "server"))
			proxy_server(im, p);
		else
			skip_line(im, "list the servers one by one");
	} else if (streq(k, "default-server")) {
		if (!(p->cap & CAP_BE))
			error_at(im, im->line,
			         "default-server: not allowed in a %s",
			         p->kind);
		else
			server_options(im, 1, &p->srvdef, "default-server");
	} else if (streq(k, "mode")) {
		if (hl->n < 2)
			error_at(im, im->line, "mode: expected tcp or http");
		else if (streq(hl->w[1], "http"))
			skip_line(im, "a layer-4 relay: HTTP traffic passes "
			              "as plain TCP, without HTTP processing");
		else if (!streq(hl->w[1], "tcp"))
			skip_line(im, "a layer-4 relay only");
	} else if (streq(k, "maxconn")) {
		if (need_cap(im, p, CAP_FE) &&
		    arg_int(im, k, 0, 1, 0, LB_MAXCONN_MAX, &v)) {
			snprintf(buf, sizeof(buf), "%lld", v);
			fe_put(im, p, "maxconn", V_NUM, buf);
		}
	} else if (streq(k, "backlog")) {
		if (need_cap(im, p, CAP_FE) &&
		    arg_int(im, k, 0, 1, 1, 65535, &v)) {
			snprintf(buf, sizeof(buf), "%lld", v);
			fe_put(im, p, "backlog", V_NUM, buf);
		}
	} else if (streq(k, "default_backend")) {
		if (!need_cap(im, p, CAP_FE))
			return;
		if (hl->n != 2)
			error_at(im, im->line,
			         "default_backend: expected a backend name");
		else
			fe_put(im, p, "backend", V_STR, hl->w[1]);
	} else if (streq(k, "use_backend")) {
		if (p->use_backend_line == 0)
			p->use_backend_line = im->line;
		skip_line(im, "no content switching: default_backend only");
	} else if (streq(k, "timeout")) {
		if (hl->n < 3)
			error_at(im, im->line, "timeout: expected KIND TIME");
		else
			proxy_timeout(im, p, hl->w[1], 2);
	} else if (streq(k, "clitimeout") || streq(k, "srvtimeout") ||
	           streq(k, "contimeout")) {
		proxy_timeout(im, p,
		              streq(k, "clitimeout")   ? "client"
		              : streq(k, "srvtimeout") ? "server"
		                                       : "connect",
		              1);
	} else if (streq(k, "retries")) {
		if (need_cap(im, p, CAP_BE) &&
		    arg_int(im, k, 0, 1, 0, LB_RETRIES_MAX, &v)) {
			snprintf(buf, sizeof(buf), "%lld", v);
			be_put(im, p, "retries", V_NUM, buf);
		}
	} else if (streq(k, "fullconn")) {
		if (need_cap(im, p, CAP_BE) &&
		    arg_int(im, k, 0, 1, 0, LB_MAXCONN_MAX, &v)) {
			snprintf(buf, sizeof(buf), "%lld", v);
			be_put(im, p, "fullconn", V_NUM, buf);
		}
	} else if (streq(k, "balance")) {
		if (need_cap(im, p, CAP_BE))
			proxy_balance(im, p);
	} else if (streq(k, "source")) {
		if (need_cap(im, p, CAP_BE))
			proxy_source(im, p);
	} else if (streq(k, "option")) {
		proxy_option(im, p, false);
	} else if (streq(k, "no") && hl->n >= 2 && streq(hl->w[1], "option")) {
		proxy_option(im, p, true);
	} else if (streq(k, "no") && hl->n == 2 && streq(hl->w[1], "log")) {
		skip_line(im, "sessions are logged for every frontend "
		              "(global.log.sessions)");
	} else if (streq(k, "log")) {
		proxy_log(im);
	} else if (streq(k, "tcp-check")) {
		if (!need_cap(im, p, CAP_BE))
			return;
		if (!(hl->n == 2 && streq(hl->w[1], "connect")) &&
		    !(hl->n >= 2 && streq(hl->w[1], "comment")))
			skip_line(im, "no scripted checks: a TCP connect, or "
			              "the SMTP dialogue of option smtpchk");
	} else if (streq(k, "http-check")) {
		skip_line(im, "tcp and smtp checks only");
	} else if (streq(k, "server-state-file-name") ||
	           streq(k, "load-server-state-from-file") ||
	           streq(k, "server-state-file")) {
		if (need_cap(im, p, CAP_BE))
			server_state(im);
	} else if (streq(k, "disabled")) {
		skip_line(im, "a disabled section: leave it out of the file");
	} else if (streq(k, "acl")) {
		proxy_acl(im, p);
	} else if (streq(k, "stick-table")) {
		proxy_stick_table(im, p);
	} else if (streq(k, "tcp-request")) {
		proxy_tcp_request(im, p);
	} else if (in_list(k, silent)) {
		/* No meaning here: see README. */
	} else {
		unknown_directive(im);
	}
}

/* A keyword this translator does not know.  A line that starts in the
 * first column while the section's directives are indented is a section
 * header nobody knows: the rest of the file would be misread, so it is an
 * error.  Anything else is a directive that cannot be translated. */
static void
unknown_directive(struct imp *im)
{
	if (!im->hl->indented && im->sect_indented) {
		error_at(im, im->line,
		         "unknown section \"%s\" (expected global, defaults, "
		         "frontend, backend or listen)",
		         im->hl->w[0]);
		drop_pending(im);
		im->sect = S_BAD;
		return;
	}
	skip_line(im, NULL);
}

/* --- reading the file ------------------------------------------------------
 */

static void
comment_line(struct imp *im, const char *text)
{
	const char *s = text;
	size_t n;

	/* A comment after a blank line starts a new block: the previous one
	 * was not right above anything, so it stays where it is. */
	if (im->npend > 0 && im->blank)
		end_section(im, false);
	if (im->npend == 0)
		im->pend_after_blank = im->blank;
	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	im->pend = xreallocarray(im->pend, im->npend + 1, sizeof(char *));
	im->pend[im->npend] = xcalloc(n + 1, 1);
	memcpy(im->pend[im->npend], s, n);
	im->npend++;
}

static void
directive_line(struct imp *im)
{
	struct hline *hl = im->hl;

	if (section_header(im))
		return;
	if (im->npend > 0)
		im->pend_after_blank = false;
	switch (im->sect) {
	case S_NONE:
		error_at(im, im->line,
		         "\"%s\" before any section (global, defaults, "
		         "frontend, backend or listen)",
		         hl->w[0]);
		im->sect = S_BAD;
		return;
	case S_SKIP:
	case S_BAD:
		return;
	case S_GLOBAL:
	case S_DEFAULTS:
	case S_PROXY:
		break;
	}
	if (hl->indented)
		im->sect_indented = true;
	if (hl->env) {
		skip_line(im, "environment variables are not expanded: write "
		              "the value");
		return;
	}
	if (im->sect == S_GLOBAL)
		global_directive(im);
	else
		proxy_directive(im);
}

/* Read one line into raw (at most HAPROXY_LINE_MAX bytes plus a '\r').
 * Returns 1 with a line, 0 at the end, -1 on a read error; *toolong and
 * *nul report a line that is too long or holds a NUL byte. */
static int
read_line(FILE *in, char *raw, bool *toolong, bool *nul)
{
	size_t len = 0;
	int c;

	*toolong = *nul = false;
	while ((c = getc(in)) != EOF && c != '\n') {
		if (c == '\0')
			*nul = true;
		if (len < HAPROXY_LINE_MAX + 1)
			raw[len++] = (char)c;
		else
			*toolong = true;
	}
	if (c == EOF && ferror(in))
		return -1;
	if (c == EOF && len == 0 && !*toolong)
		return 0;
	if (len > 0 && raw[len - 1] == '\r')
		len--;
	if (len > HAPROXY_LINE_MAX)
		*toolong = true;
	raw[len] = '\0';
	return 1;
}

/* --- folding per-server settings into the backend ------------------------- */

static const struct proxy *
find_backend(const struct imp *im, const char *name)
{
	for (size_t i = 0; i < im->npx; i++)
		if ((im->px[i]->cap & CAP_BE) && im->px[i]->emit_be &&
		    streq(im->px[i]->name, name))
			return im->px[i];
	return NULL;
}

/* The health check parameter key of every checked server: when they
 * differ, the first checked server's value is used, with a warning. */
static void
fold_check_param(struct imp *im, struct proxy *p, const char *key,
                 const char *hap_name, const char *our_key, enum vkind kind)
{
	const struct hserver *first = NULL;
	const char *v0 = NULL;

	for (size_t i = 0; i < p->nservers; i++) {
		const struct hserver *s = &p->servers[i];
		const char *c = slot_val(&s->o, "check"), *v;

		if (c == NULL || !streq(c, "true"))
			continue;
		v = slot_val(&s->o, key);
		if (first == NULL) {
			first = s;
			v0 = v;
			continue;
		}
		if ((v0 == NULL) != (v == NULL) ||
		    (v0 != NULL && !streq(v0, v))) {
			warn_at(im, s->line,
			        "servers of backend \"%s\" disagree on %s "
			        "(%s for %s, %s for %s): health_check has one "
			        "%s for the backend, %s is used",
			        p->name, hap_name, v0 != NULL ? v0 : "default",
			        first->name, v != NULL ? v : "default", s->name,
			        our_key, v0 != NULL ? v0 : "the default");
			break;
		}
	}
	if (v0 != NULL)
		slot_put(im, &p->hc, our_key, kind, v0, first->line);
}

/* Some servers have on-marked-down shutdown-sessions, some not: one
 * warning naming those without it. */
static void
warn_omd(struct imp *im, const struct proxy *p)
{
	char names[256] = "";
	int line = 0, n = 0;

	for (size_t i = 0; i < p->nservers; i++) {
		if (slot_find(&p->servers[i].o, ".omd") != NULL)
			continue;
		if (line == 0)
			line = p->servers[i].line;
		if (n++ > 0)
			strncat(names, ", ", sizeof(names) - strlen(names) - 1);
		strncat(names, p->servers[i].name,
		        sizeof(names) - strlen(names) - 1);
	}
	warn_at(im, line,
	        "servers of backend \"%s\" disagree on on-marked-down "
	        "shutdown-sessions, which %s %s not have: on_marked_down is "
	        "one setting for the whole backend here, and "
	        "\"shutdown-sessions\" applies to every server",
	        p->name, names, n == 1 ? "does" : "do");
}

/* A line reported once only (a default-server line shared by servers). */
static bool
line_once(int **lines, size_t *n, int line)
{
	for (size_t i = 0; i < *n; i++)
		if ((*lines)[i] == line)
			return false;
	*lines = xreallocarray(*lines, *n + 1, sizeof(**lines));
	(*lines)[(*n)++] = line;
	return true;
}

/* "observe layer4 [error-limit N] [on-error MODE]" of the checked servers
 * -> the backend's error_limit (load-balancer.conf(5), GREETING GATE).
 * HAProxy counts each
 * server's consecutive failed connections of live traffic and, after
 * error-limit of them (10 by default), does what on-error says (fail-check by
 * default).  error_limit counts failed connects and greetings and marks a
 * checked server DOWN, which is on-error mark-down; other modes are reported.
 * It is one setting per backend here: when the servers disagree, the smallest
 * limit is used, with a warning.  Servers without "check" are left aside, as
 * HAProxy only observes checked servers. */
static void
fold_error_limit(struct imp *im, struct proxy *p)
{
	const struct hserver *first = NULL, *best_s = NULL;
	long long v0 = -1, best = 0;
	int differ_line = 0, *lines = NULL;
	size_t nlines = 0;
	char list[256] = "", buf[32];
	struct slot *sl;

	for (size_t i = 0; i < p->nservers; i++) {
		const struct hserver *s = &p->servers[i];
		const char *c = slot_val(&s->o, "check");
		const struct slot *obs = slot_find(&s->o, ".observe");
		const struct slot *oe = slot_find(&s->o, ".on_error");
		const char *el = slot_val(&s->o, ".error_limit");
		long long v = 0;
		char item[96];

		if (c == NULL || !streq(c, "true"))
			continue;
		if (obs != NULL)
			v = atoll(el != NULL ? el : HAP_ERROR_LIMIT_DEFAULT);
		if (first == NULL) {
			first = s;
			v0 = v;
		} else if (v != v0 && differ_line == 0) {
			differ_line = s->line;
		}
		if (v > 0 && (best == 0 || v < best)) {
			best = v;
			best_s = s;
		}
		if (v > 0)
			snprintf(item, sizeof(item), "%s%s %lld",
			         list[0] != '\0' ? ", " : "", s->name, v);
		else
			snprintf(item, sizeof(item), "%s%s none",
			         list[0] != '\0' ? ", " : "", s->name);
		strncat(list, item, sizeof(list) - strlen(list) - 1);
		if (obs == NULL)
			continue;
		if (oe == NULL) {
			if (line_once(&lines, &nlines, obs->line))
				warn_at(im, obs->line,
				        "observe layer4 without on-error is "
				        "on-error fail-check in HAProxy (the "
				        "failures count as one failed check); "
				        "error_limit marks the server DOWN at "
				        "once, as on-error mark-down does");
		} else if (!streq(oe->val, "mark-down") &&
		           line_once(&lines, &nlines, oe->line)) {
			char *what = xasprintf("on-error %s", oe->val);

			untranslated(
			    im, oe->line, what,
			    streq(oe->val, "fastinter")
			        ? "HAProxy only checks the server sooner; "
			          "error_limit marks the server DOWN at once, "
			          "as on-error mark-down does"
			    : streq(oe->val, "fail-check")
			        ? "HAProxy counts one failed check; "
			          "error_limit marks the server DOWN at once, "
			          "as on-error mark-down does"
			        : "HAProxy leaves the server one failed check "
			          "from DOWN; error_limit marks it DOWN at "
			          "once, as on-error mark-down does");
			free(what);
		}
	}
	free(lines);
	if (best == 0)
		return;
	if (differ_line != 0)
		warn_at(im, differ_line,
		        "servers of backend \"%s\" disagree on observe layer4 "
		        "error-limit (%s): error_limit is one setting for the "
		        "backend here, the smallest, %lld, is used",
		        p->name, list, best);
	snprintf(buf, sizeof(buf), "%lld", best);
	sl = slot_put(im, &p->derived, "error_limit", V_NUM, buf, best_s->line);
	sl->note = slot_find(&best_s->o, ".error_limit") != NULL
	               ? "observe layer4 error-limit"
	               : "observe layer4: HAProxy's default error-limit";
}

/* The index of the most common of the n values (NULL ones left out; the
 * first seen among equally common ones), -1 when all are NULL. */
static int
most_common(const char *const *v, size_t n)
{
	size_t best_n = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		size_t c = 0;

		if (v[i] == NULL)
			continue;
		for (size_t j = 0; j < n; j++)
			c += v[j] != NULL && streq(v[i], v[j]);
		if (c > best_n) {
			best = (int)i;
			best_n = c;
		}
	}
	return best;
}

/* A setting that is per server in HAProxy and per backend here: vals[i]
 * is server i's, as shown in messages (NULL: left out).  Returns the index
 * of the most common value, -1 when there is none; when servers differ, a
 * warning names the others with their lines. */
static int
fold_common(struct imp *im, const struct proxy *p, const char *const *vals,
            const char *hap_name, const char *our_name)
{
	int best = most_common(vals, p->nservers), line = 0;
	char *others = NULL;

	if (best < 0)
		return best;
	for (size_t i = 0; i < p->nservers; i++) {
		const struct hserver *s = &p->servers[i];
		char *o;

		if (vals[i] == NULL || streq(vals[i], vals[best]))
			continue;
		if (line == 0)
			line = s->line;
		o = xasprintf(
		    "%s%s%s for %s (line %d)", others != NULL ? others : "",
		    others != NULL ? ", " : "", vals[i], s->name, s->line);
		free(others);
		others = o;
	}
	if (others != NULL) {
		warn_at(im, line,
		        "servers of backend \"%s\" disagree on %s: %s is one "
		        "setting for the backend here, and the most common "
		        "value, %s, is used instead of %s",
		        p->name, hap_name, our_name, vals[best], others);
		free(others);
	}
	return best;
}

/* slowstart (servers, default-server) -> the backend's slowstart. */
static void
fold_slowstart(struct imp *im, struct proxy *p)
{
	const char **v;
	int best;

	if (p->nservers == 0)
		return;
	v = xreallocarray(NULL, p->nservers, sizeof(*v));
	for (size_t i = 0; i < p->nservers; i++) {
		const char *ss = slot_val(&p->servers[i].o, ".slowstart");

		v[i] = ss != NULL && !streq(ss, "0") ? ss : "none";
	}
	best = fold_common(im, p, v, "slowstart", "slowstart");
	if (!streq(v[best], "none"))
		slot_put(im, &p->derived, "slowstart", V_STR, v[best],
		         p->servers[best].line);
	free(v);
}

/* HAProxy's check interval when inter is not written. */
#define HAP_INTER_DEFAULT "2s"

/* agent-addr names the server's own host (as HAProxy writes it, without
 * brackets): nothing is lost. */
static bool
agent_addr_same(const char *server_addr, const char *agent_addr)
{
	const char *colon = strrchr(server_addr, ':');
	size_t n = (size_t)(colon - server_addr);

	if (server_addr[0] == '[') {
		server_addr++;
		n -= 2;
	}
	return strlen(agent_addr) == n &&
	       strncmp(server_addr, agent_addr, n) == 0;
}

/* agent-check, agent-port, agent-inter and agent-send of the servers (and
 * default-server) -> the backend's agent group and the servers' agent_port
 * (load-balancer.conf(5), AGENT CHECK).  The port most servers use is the
 * backend's, the
 * others get their own agent_port; when only some servers have an agent
 * check, the backend's port stays 0 (off) and each of those has its
 * agent_port, which says the same.  The interval and the line sent are one
 * setting per backend here: the most common, with a warning when servers
 * differ.  HAProxy's agent-inter defaults to inter, and its agent timeout
 * is timeout check. */
static void
fold_agent(struct imp *im, struct proxy *p)
{
	size_t n = p->nservers, nagent = 0, nlines = 0;
	const char **port, **inter;
	char **sendq;
	int *lines = NULL, bp, bi, bs;
	const struct slot *to;
	const char *note = NULL;

	if (n == 0)
		return;
	port = xcalloc(n, sizeof(*port));
	inter = xcalloc(n, sizeof(*inter));
	sendq = xcalloc(n, sizeof(*sendq));
	for (size_t i = 0; i < n; i++) {
		struct hserver *s = &p->servers[i];
		const char *a = slot_val(&s->o, ".agent");
		const char *sd = slot_val(&s->o, ".agent_send");
		const struct slot *ad = slot_find(&s->o, ".agent_addr");

		if (a == NULL || !streq(a, "true"))
			continue;
		port[i] = slot_val(&s->o, ".agent_port");
		if (port[i] == NULL) {
			warn_at(im, s->line,
			        "server %s: agent-check without agent-port, "
			        "which HAProxy refuses: no agent check for "
			        "this server",
			        s->name);
			continue;
		}
		nagent++;
		inter[i] = slot_val(&s->o, ".agent_inter");
		if (inter[i] == NULL)
			inter[i] = slot_val(&s->o, ".inter");
		if (inter[i] == NULL)
			inter[i] = HAP_INTER_DEFAULT;
		sendq[i] = sd != NULL && sd[0] != '\0' ? xasprintf("\"%s\"", sd)
		                                       : xstrdup("none");
		if (ad != NULL && !agent_addr_same(s->addr, ad->val) &&
		    line_once(&lines, &nlines, ad->line)) {
			char *what = xasprintf("agent-addr %s", ad->val);
			char *why = xasprintf(
			    "%s%s: the agent check connects to the server's "
			    "own address",
			    ad->line == s->line ? "server " : "default-server",
			    ad->line == s->line ? s->name : "");

			untranslated(im, ad->line, what, why);
			free(what);
			free(why);
		}
	}
	free(lines);
	if (nagent == 0)
		goto out;
	p->has_agent = true;
	p->agent_some = nagent < n;
	bp = p->agent_some ? -1 : most_common(port, n);
	if (bp >= 0)
		slot_put(im, &p->agent, "port", V_NUM, port[bp],
		         p->servers[bp].line);
	for (size_t i = 0; i < n; i++)
		if (port[i] != NULL && (bp < 0 || !streq(port[i], port[bp])))
			slot_put(im, &p->servers[i].o, "agent_port", V_NUM,
			         port[i], p->servers[i].line);
	bi = fold_common(im, p, inter, "agent-inter", "agent.interval");
	if (slot_find(&p->servers[bi].o, ".agent_inter") == NULL)
		note = slot_find(&p->servers[bi].o, ".inter") != NULL
		           ? "no agent-inter: HAProxy's is inter"
		           : "no agent-inter: HAProxy's is inter, 2s by "
		             "default";
	slot_put(im, &p->agent, "interval", V_STR, inter[bi],
	         p->servers[bi].line)
	    ->note = note;
	bs = fold_common(im, p, (const char *const *)sendq, "agent-send",
	                 "agent.send");
	if (!streq(sendq[bs], "none"))
		slot_put(im, &p->agent, "send", V_STR,
		         slot_val(&p->servers[bs].o, ".agent_send"),
		         p->servers[bs].line);
	to = slot_find(&p->be, ".hc_timeout");
	if (to != NULL)
		slot_put(im, &p->agent, "timeout", V_STR, to->val, to->line)
		    ->note = "timeout check";
out:
	for (size_t i = 0; i < n; i++)
		free(sendq[i]);
	free(port);
	free(inter);
	free(sendq);
}

static void
fold_backend(struct imp *im, struct proxy *p)
{
	const char *type = slot_val(&p->be, ".hc_type");
	const struct slot *tq, *tc;
	size_t nchecked = 0, nomd = 0;
	const char *pp0 = NULL;
	bool pp_same = true;

	for (size_t i = 0; i < p->nservers; i++) {
		const struct hserver *s = &p->servers[i];
		const char *c = slot_val(&s->o, "check");
		const char *pp = slot_val(&s->o, "proxy_protocol");

		if (c != NULL && streq(c, "true"))
			nchecked++;
		if (slot_find(&s->o, ".omd") != NULL)
			nomd++;
		if (pp == NULL)
			pp = "none";
		if (i == 0)
			pp0 = pp;
		else if (!streq(pp, pp0))
			pp_same = false;
	}

	/* HAProxy's timeout queue defaults to timeout connect. */
	tq = slot_find(&p->be, "timeout_queue");
	tc = slot_find(&p->be, "timeout_connect");
	if (tq == NULL && tc != NULL && !streq(tc->val, "5s"))
		slot_put(im, &p->derived, "timeout_queue", V_STR, tc->val,
		         tc->line)
		    ->note = "HAProxy's default: timeout connect";

	if (p->nservers > 0 && pp_same && !streq(pp0, "none"))
		slot_put(im, &p->derived, "proxy_protocol", V_STR, pp0,
		         p->servers[0].line);
	for (size_t i = 0; i < p->nservers; i++) {
		const char *pp = slot_val(&p->servers[i].o, "proxy_protocol");

		if (pp != NULL && (pp_same || streq(pp, "none")))
			slot_del(&p->servers[i].o, "proxy_protocol");
	}

	if (nomd > 0) {
		slot_put(im, &p->derived, "on_marked_down", V_STR,
		         "shutdown-sessions", p->line);
		if (nomd < p->nservers)
			warn_omd(im, p);
	}
	fold_error_limit(im, p);
	fold_slowstart(im, p);
	fold_agent(im, p);

	if (nchecked == 0) {
		const struct slot *t = slot_find(&p->be, ".hc_type");

		if (t != NULL && !t->inherited && streq(t->val, "smtp"))
			warn_at(im, t->line,
			        "option smtpchk: no server of backend \"%s\" "
			        "has \"check\", so nothing is checked (as in "
			        "HAProxy)",
			        p->name);
	} else {
		const char *helo = slot_val(&p->be, ".hc_helo");
		const struct slot *to = slot_find(&p->be, ".hc_timeout");
		bool smtp = type != NULL && streq(type, "smtp");

		p->has_hc = true;
		slot_put(im, &p->hc, "type", V_STR, smtp ? "smtp" : "tcp",
		         p->line);
		if (smtp && helo != NULL) {
			slot_put(im, &p->hc, "helo", V_STR, helo, p->line);
			if (slot_find(&p->be, ".hc_ehlo") != NULL)
				slot_put(im, &p->hc, "ehlo", V_BOOL, "true",
				         p->line);
		}
		fold_check_param(im, p, ".inter", "inter", "interval", V_STR);
		fold_check_param(im, p, ".fastinter", "fastinter", "fastinter",
		                 V_STR);
		fold_check_param(im, p, ".downinter", "downinter", "downinter",
		                 V_STR);
		fold_check_param(im, p, ".rise", "rise", "rise", V_NUM);
		fold_check_param(im, p, ".fall", "fall", "fall", V_NUM);
		if (to != NULL)
			slot_put(im, &p->hc, "timeout", V_STR, to->val,
			         to->line);
	}
	for (size_t i = 0; i < p->nservers; i++) {
		struct hserver *s = &p->servers[i];
		const char *c = slot_val(&s->o, "check");
		const char *mx = slot_val(&s->o, "maxconn");
		const char *mn = slot_val(&s->o, "minconn");

		if (nchecked > 0 && (c == NULL || !streq(c, "true")))
			slot_put(im, &s->o, "check", V_BOOL, "false", s->line);
		else
			slot_del(&s->o, "check");
		/* HAProxy lowers a minconn above maxconn to maxconn. */
		if (mx != NULL && mn != NULL && atoll(mx) > 0 &&
		    atoll(mn) > atoll(mx)) {
			char *m = xstrdup(mx);

			warn_at(im, s->line,
			        "server %s: minconn %s is above maxconn %s: "
			        "minconn = %s (as HAProxy does)",
			        s->name, mn, mx, mx);
			slot_put(im, &s->o, "minconn", V_NUM, m, s->line);
			free(m);
		}
	}
}

/* --- client limits, allow and deny ----------------------------------------
 *
 * HAProxy writes per-client limits and address lists as tcp-request rules
 * over acls and a stick-table:
 *
 *   stick-table type ip size 100k expire 30s store conn_cur,conn_rate(10s)
 *   acl trusted src 192.0.2.0/24
 *   tcp-request connection reject if !internal          -> allow
 *   tcp-request connection reject if blocked            -> deny
 *   tcp-request connection track-sc0 src
 *   tcp-request connection reject if { sc0_conn_cur gt 10 } !trusted
 *                                   -> client_limits.maxconn, exempt
 *
 * fold_client_limits follows the rules in HAProxy's order (connection,
 * session, then content rules, each in the order written) and translates
 * those that have a meaning here (load-balancer.conf(5), CLIENT LIMITS);
 * every other
 * rule is reported.  HAProxy closes a rejected connection; here the
 * client gets client_limits.reply or deny_reply first, which a comment in
 * the output says. */

/* client_limits.maxconn and rate: at most this much here. */
#define CLIENT_LIMIT_MAX 1000000
/* client_limits.table_size: at most this many here. */
#define TABLE_SIZE_MAX 10000000
/* client_limits.period: at least this long here. */
#define PERIOD_MIN_MS 100
/* track-sc0 .. track-sc9 (HAProxy has 3 by default). */
#define SC_MAX 10
#define COND_TERMS_MAX 8

/* An IP address or prefix in HAProxy's acl syntax (a.b.c.d, a.b.c.d/len,
 * a.b.c.d/m.m.m.m, IPv6, IPv6/len), read into family, bytes and prefix
 * length, masked.  *bare: no prefix length was written. */
static bool
cidr_read(const char *in, int *family, unsigned char a[16], int *bits,
          bool *bare)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(in, '/');
	size_t n = slash != NULL ? (size_t)(slash - in) : strlen(in);
	int max;

	if (n == 0 || n >= sizeof(addr))
		return false;
	memcpy(addr, in, n);
	addr[n] = '\0';
	memset(a, 0, 16);
	if (inet_pton(AF_INET, addr, a) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		*family = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	*bare = slash == NULL;
	*bits = max;
	if (slash != NULL) {
		unsigned char m[4];
		long long v;

		if (parse_count(slash + 1, &v) && v <= max) {
			*bits = (int)v;
		} else if (*family == AF_INET &&
		           inet_pton(AF_INET, slash + 1, m) == 1) {
			uint32_t mask = (uint32_t)m[0] << 24 |
			                (uint32_t)m[1] << 16 |
			                (uint32_t)m[2] << 8 | m[3];
			int b = 0;

			while (b < 32 && (mask & (1u << (31 - b))))
				b++;
			if (b < 32 && (mask << b) != 0)
				return false; /* not contiguous */
			*bits = b;
		} else {
			return false;
		}
	}
	for (int i = 0; i < max / 8; i++) {
		int keep = *bits - i * 8;

		if (keep <= 0)
			a[i] = 0;
		else if (keep < 8)
			a[i] &= (unsigned char)(0xff << (8 - keep));
	}
	return true;
}

/* The same, written as load-balancer reads it: "192.0.2.7",
 * "192.0.2.0/24", "2001:db8::/32". */
static bool
cidr_text(const char *in, char *out, size_t len)
{
	unsigned char a[16];
	char addr[INET6_ADDRSTRLEN];
	int family, bits;
	bool bare;

	if (!cidr_read(in, &family, a, &bits, &bare) ||
	    inet_ntop(family, a, addr, sizeof(addr)) == NULL)
		return false;
	if (bare)
		snprintf(out, len, "%s", addr);
	else
		snprintf(out, len, "%s/%d", addr, bits);
	return true;
}

/* Two prefixes share an address. */
static bool
cidr_overlap(const char *x, const char *y)
{
	unsigned char a[16], b[16];
	int fa, fb, ba, bb, bits;
	bool bare;

	if (!cidr_read(x, &fa, a, &ba, &bare) ||
	    !cidr_read(y, &fb, b, &bb, &bare) || fa != fb)
		return false;
	bits = ba < bb ? ba : bb;
	for (int i = 0; i < 16 && bits > 0; i++, bits -= 8) {
		unsigned char m =
		    bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));

		if ((a[i] & m) != (b[i] & m))
			return false;
	}
	return true;
}

static bool
strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->v[i], s))
			return true;
	return false;
}

static void
strlist_add(struct strlist *l, const char *s)
{
	if (strlist_has(l, s))
		return;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

static void
strlist_add_all(struct strlist *l, const struct strlist *from, size_t n)
{
	for (size_t i = 0; i < n && i < from->n; i++)
		strlist_add(l, from->v[i]);
}

/* The same set of strings. */
static bool
strlist_same(const struct strlist *a, const struct strlist *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strlist_has(b, a->v[i]))
			return false;
	for (size_t i = 0; i < b->n; i++)
		if (!strlist_has(a, b->v[i]))
			return false;
	return true;
}

/* One term of a condition: an acl, by name or anonymous ({ ... }),
 * possibly negated. */
enum tkind { TM_SRC, TM_COUNT, TM_OTHER };

struct term {
	enum tkind kind;
	bool neg;
	struct strlist cidrs; /* TM_SRC */
	bool rate;            /* TM_COUNT: conn_rate, else conn_cur */
	int sc;               /* TM_COUNT: the counter; -1 for src_* */
	char *tname;          /* TM_COUNT: a table argument, or NULL */
	bool ge;              /* TM_COUNT: ge, else gt */
	long long value;      /* TM_COUNT */
	char *text;           /* TM_COUNT: as written, for notes */
	char *why;            /* TM_OTHER */
};

static void
term_free(struct term *t)
{
	strlist_free(&t->cidrs);
	free(t->tname);
	free(t->text);
	free(t->why);
}

static void
term_other(struct term *t, char *why)
{
	term_free(t);
	memset(t, 0, sizeof(*t));
	t->kind = TM_OTHER;
	t->why = why;
}

/* A counter of the client's address: sc_conn_cur(N[,T]),
 * sc_conn_rate(N[,T]), scN_conn_cur[(T)], scN_conn_rate[(T)],
 * src_conn_cur[(T)], src_conn_rate[(T)]. */
static bool
counter_fetch(const char *c, bool *rate, int *sc, char **tname)
{
	const char *rest, *args = NULL;
	bool need_sc = false;
	size_t n;

	*tname = NULL;
	if (has_prefix(c, "src_")) {
		*sc = -1;
		rest = c + 4;
	} else if (has_prefix(c, "sc_")) {
		need_sc = true;
		rest = c + 3;
	} else if (has_prefix(c, "sc") && isdigit((unsigned char)c[2]) &&
	           c[3] == '_') {
		*sc = c[2] - '0';
		rest = c + 4;
	} else {
		return false;
	}
	if (has_prefix(rest, "conn_cur")) {
		*rate = false;
		rest += 8;
	} else if (has_prefix(rest, "conn_rate")) {
		*rate = true;
		rest += 9;
	} else {
		return false;
	}
	if (*rest == '(') {
		n = strlen(rest);
		if (n < 3 || rest[n - 1] != ')')
			return false;
		args = rest + 1;
	} else if (*rest != '\0') {
		return false;
	}
	if (need_sc) {
		long long v;
		const char *comma;
		char num[8];

		if (args == NULL)
			return false;
		comma = strchr(args, ',');
		n = comma != NULL ? (size_t)(comma - args)
		                  : strlen(args) - 1; /* without ')' */
		if (n == 0 || n >= sizeof(num))
			return false;
		memcpy(num, args, n);
		num[n] = '\0';
		if (!parse_count(num, &v) || v >= SC_MAX)
			return false;
		*sc = (int)v;
		args = comma != NULL ? comma + 1 : NULL;
	}
	if (args != NULL) {
		n = strlen(args) - 1;
		if (n == 0)
			return false;
		*tname = xcalloc(n + 1, 1);
		memcpy(*tname, args, n);
	}
	return true;
}

/* An acl's words (criterion, flags, operator, values) -> a term. */
static void
classify(const char *const *w, int n, struct term *t)
{
	const char *c = w[0];
	int i = 1;

	memset(t, 0, sizeof(*t));
	if (streq(c, "src")) {
		t->kind = TM_SRC;
		for (; i < n && w[i][0] == '-'; i++) {
			if (streq(w[i], "--")) {
				i++;
				break;
			}
			if (streq(w[i], "-n"))
				continue;
			if (streq(w[i], "-m") && i + 1 < n &&
			    streq(w[i + 1], "ip")) {
				i++;
				continue;
			}
			term_other(t,
			           xstrdup(streq(w[i], "-f")
			                       ? "addresses read from a file "
			                         "(-f): write them in the acl"
			                       : "src with match flags other "
			                         "than -m ip"));
			return;
		}
		if (i == n) {
			term_other(t, xstrdup("src without an address"));
			return;
		}
		for (; i < n; i++) {
			char buf[INET6_ADDRSTRLEN + 8];

			if (!cidr_text(w[i], buf, sizeof(buf))) {
				term_other(t, xasprintf("src %s: an address "
				                        "or CIDR only (no host "
				                        "names)",
				                        w[i]));
				return;
			}
			strlist_add(&t->cidrs, buf);
		}
		return;
	}
	if (counter_fetch(c, &t->rate, &t->sc, &t->tname)) {
		t->kind = TM_COUNT;
		if (i + 1 < n && streq(w[i], "-m") && streq(w[i + 1], "int"))
			i += 2;
		if (i + 2 == n && (streq(w[i], "gt") || streq(w[i], "ge")) &&
		    parse_count(w[i + 1], &t->value)) {
			t->ge = streq(w[i], "ge");
			t->text = xasprintf("%s %s %s", c, w[i], w[i + 1]);
			return;
		}
		term_other(t, xasprintf("%s: only \"gt N\" or \"ge N\" is a "
		                        "limit",
		                        c));
		return;
	}
	if (streq(c, "req_len") || streq(c, "req.len"))
		term_other(t, xasprintf("%s: client bytes are not inspected; "
		                        "those sent before the greeting reach "
		                        "the server, whose pregreet test "
		                        "(postscreen) sees them "
		                        "(load-balancer.conf(5), GREETING "
		                        "GATE)",
		                        c));
	else if (has_prefix(c, "sc") || has_prefix(c, "src_") ||
	         has_prefix(c, "table_"))
		term_other(t, xasprintf("%s: only the conn_cur and conn_rate "
		                        "counters of the client's address "
		                        "translate (client_limits)",
		                        c));
	else
		term_other(t, xasprintf("%s: only src addresses and "
		                        "conn_cur/conn_rate counters "
		                        "translate",
		                        c));
}

/* A named acl used on line `line`: its lines add up (any matches),
 * those after the rule too, but HAProxy needs the first one before. */
static void
resolve_acl(const struct proxy *p, const char *name, int line, struct term *t)
{
	size_t nlines = 0;

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < p->nacls; i++) {
		const struct hacl *a = &p->acls[i];
		struct term one;

		if (!streq(a->name, name))
			continue;
		if (nlines == 0 && a->line > line) {
			term_other(t, xasprintf("acl %s is defined after this "
			                        "rule (line %d), which HAProxy "
			                        "refuses",
			                        name, a->line));
			return;
		}
		classify((const char *const *)a->w, a->n, &one);
		if (nlines++ == 0) {
			*t = one;
			continue;
		}
		if (t->kind == TM_SRC && one.kind == TM_SRC) {
			strlist_add_all(&t->cidrs, &one.cidrs, one.cidrs.n);
			term_free(&one);
			continue;
		}
		term_free(&one);
		if (t->kind != TM_OTHER)
			term_other(t, xasprintf("acl %s: several lines "
			                        "that are not all src "
			                        "addresses (line %d)",
			                        name, a->line));
	}
	if (t->kind == TM_OTHER && t->why != NULL &&
	    !has_prefix(t->why, "acl "))
		term_other(t, xasprintf("acl %s: %s", name, t->why));
	if (nlines > 0)
		return;
	if (streq(name, "LOCALHOST")) { /* HAProxy's predefined acl */
		t->kind = TM_SRC;
		strlist_add(&t->cidrs, "127.0.0.0/8");
		return;
	}
	term_other(t, xasprintf("no acl named \"%s\"", name));
}

/* if|unless TERM...: terms all true (and), "!" negates; "||" and "or"
 * are not translated. */
struct cond {
	bool unless;
	int n;
	struct term t[COND_TERMS_MAX];
	char *why; /* the condition cannot be translated as a whole */
};

static void
cond_free(struct cond *c)
{
	for (int i = 0; i < c->n; i++)
		term_free(&c->t[i]);
	free(c->why);
}

static void
read_cond(const struct proxy *p, int line, char **w, int n, struct cond *c)
{
	memset(c, 0, sizeof(*c));
	c->unless = streq(w[0], "unless");
	for (int i = 1; i < n;) {
		struct term *t;
		bool neg = false;
		const char *name = w[i];

		if (streq(w[i], "||") || streq(w[i], "or")) {
			c->why = xstrdup("a condition with \"or\"");
			return;
		}
		if (streq(w[i], "!")) {
			neg = true;
			if (++i == n) {
				c->why =
				    xstrdup("a \"!\" with nothing after it");
				return;
			}
			name = w[i];
		} else if (name[0] == '!') {
			neg = true;
			name++;
		}
		if (c->n == COND_TERMS_MAX) {
			c->why = xstrdup("too many terms");
			return;
		}
		t = &c->t[c->n++];
		if (streq(name, "{")) {
			int end = i + 1;

			while (end < n && !streq(w[end], "}"))
				end++;
			if (end == n || end == i + 1) {
				memset(t, 0, sizeof(*t));
				c->why = xstrdup("an unterminated { } acl");
				return;
			}
			classify((const char *const *)&w[i + 1], end - i - 1,
			         t);
			i = end + 1;
		} else {
			resolve_acl(p, name, line, t);
			i++;
		}
		t->neg = neg;
	}
	if (c->n == 0)
		c->why = xstrdup("an empty condition");
}

enum ract { RA_TRACK, RA_ACCEPT, RA_REJECT, RA_OTHER };

/* One tcp-request rule, read. */
struct prule {
	struct hrule *r;
	enum ract act;
	bool has_cond;
	struct cond c;
	int sc;           /* RA_TRACK */
	struct proxy *tp; /* RA_TRACK: whose stick-table */
	char *why;        /* cannot be translated */
	/* Set while walking the rules. */
	size_t nacc; /* accept exemptions of its phase in force */
	bool valid_track;
	struct strlist texempt; /* RA_TRACK: addresses never tracked */
	int texempt_lines[2];   /* RA_TRACK: the rules that say so */
};

/* The proxy whose stick-table HAProxy calls name. */
static struct proxy *
find_table(const struct imp *im, const char *name)
{
	for (size_t i = 0; i < im->npx; i++)
		if (im->px[i]->table.line != 0 && streq(im->px[i]->name, name))
			return im->px[i];
	return NULL;
}

static void
read_rule(const struct imp *im, struct proxy *p, struct hrule *r,
          struct prule *pr)
{
	char **w = r->w;
	const char *a = w[0];
	int ci = 1; /* where the condition starts */

	memset(pr, 0, sizeof(*pr));
	pr->r = r;
	if (streq(a, "accept")) {
		pr->act = RA_ACCEPT;
	} else if (streq(a, "reject")) {
		pr->act = RA_REJECT;
	} else if (has_prefix(a, "track-sc") && isdigit((unsigned char)a[8]) &&
	           a[9] == '\0') {
		const char *tname = NULL;

		pr->act = RA_TRACK;
		pr->sc = a[8] - '0';
		if (r->n < 2) {
			pr->why = xstrdup("track-sc without a key");
			return;
		}
		ci = 2;
		if (ci + 1 < r->n && streq(w[ci], "table")) {
			tname = w[ci + 1];
			ci += 2;
		}
		if (has_prefix(w[1], "src,ipmask(")) {
			pr->why =
			    xstrdup("networks: client_limits counts "
			            "networks of prefix4 and prefix6 bits, "
			            "set them instead");
			return;
		}
		if (!streq(w[1], "src")) {
			pr->why = xasprintf("tracks %s: only the client's "
			                    "address (src) is a client network",
			                    w[1]);
			return;
		}
		pr->tp = tname != NULL        ? find_table(im, tname)
		         : p->table.line != 0 ? p
		                              : NULL;
		if (pr->tp == NULL) {
			pr->why = tname != NULL
			              ? xasprintf("no stick-table named \"%s\"",
			                          tname)
			              : xstrdup("no stick-table in this "
			                        "section");
			return;
		}
		if (!streq(pr->tp->table.type, "ip") &&
		    !streq(pr->tp->table.type, "ipv6")) {
			pr->why = xasprintf("a stick-table of type %s: ip or "
			                    "ipv6 only",
			                    pr->tp->table.type);
			return;
		}
	} else {
		pr->act = RA_OTHER;
		pr->why = xstrdup(
		    streq(a, "silent-drop")
		        ? "no silent drop: refused clients get "
		          "client_limits.reply or deny_reply"
		    : streq(a, "expect-proxy")
		        ? "PROXY headers from clients are not read"
		    : has_prefix(a, "sc-") || has_prefix(a, "set-") ||
		            has_prefix(a, "unset-") || streq(a, "capture")
		        ? "no counters, variables or captures here: "
		          "client_limits counts the sessions of each "
		          "client network"
		        : "only accept, reject and track-sc rules translate");
		return;
	}
	if (ci < r->n) {
		if (!streq(w[ci], "if") && !streq(w[ci], "unless")) {
			pr->why = xasprintf("unexpected \"%s\"", w[ci]);
			return;
		}
		pr->has_cond = true;
		read_cond(p, r->line, &w[ci], r->n - ci, &pr->c);
	}
}

/* The condition is one src acl; *inside: true when it holds for the
 * addresses of the acl (if A, unless !A), false when it holds for the
 * others (if !A, unless A). */
static const struct term *
one_src(const struct prule *pr, bool *inside)
{
	const struct term *t;

	if (!pr->has_cond || pr->c.why != NULL || pr->c.n != 1 ||
	    pr->c.t[0].kind != TM_SRC)
		return NULL;
	t = &pr->c.t[0];
	*inside = t->neg == pr->c.unless;
	return t;
}

/* Why the condition is not translated: the first term's reason, or the
 * condition's. */
static const char *
cond_why(const struct prule *pr)
{
	if (pr->c.why != NULL)
		return pr->c.why;
	for (int i = 0; i < pr->c.n; i++)
		if (pr->c.t[i].kind == TM_OTHER)
			return pr->c.t[i].why;
	return NULL;
}

struct walk {
	struct prule *pr;
	size_t *order; /* indices in pr, in HAProxy's order */
	size_t n;
	struct strlist acc[PH_N]; /* addresses an accept rule lets through */
	int acc_line[PH_N];
};

static void
rule_report(struct imp *im, struct prule *pr, const char *why)
{
	untranslated(im, pr->r->line, pr->r->disp, why);
	pr->r->reported = true;
}

/* The first track rule, before position pos (or anywhere when pos is the
 * end), that counts sc (sc >= 0) or fills tp's table (sc < 0). */
static const struct prule *
find_track(const struct walk *wk, size_t pos, int sc, const struct proxy *tp,
           size_t *at)
{
	for (size_t k = 0; k < pos && k < wk->n; k++) {
		const struct prule *pr = &wk->pr[wk->order[k]];

		if (!pr->valid_track)
			continue;
		if ((sc >= 0 && pr->sc == sc) || (sc < 0 && pr->tp == tp)) {
			*at = k;
			return pr;
		}
	}
	return NULL;
}

/* A limit term at position pos -> the number of sessions allowed (in a
 * period for a rate), the track rule that counts them, and tp.  NULL
 * with *why when it does not translate.
 *
 * When the counter is read matters.  Tracking a connection counts it at
 * once: HAProxy's documentation says of sc_conn_cur that "this number is
 * automatically incremented when tracking begins", and a tracked
 * connection counts in conn_rate from then on.  So after
 * "track-sc0 src", "reject if { sc0_conn_cur gt 10 }" sees the new
 * connection already counted: it refuses the 11th concurrent one and
 * allows 10, which is maxconn = 10 (client_limits refuses a client
 * network that already holds maxconn sessions); "ge 10" allows 9.
 * src_conn_cur and src_conn_rate read the table without tracking: before
 * the track rule the new connection is not counted yet, so "gt 10"
 * allows 11 and "ge 10" allows 10.  (HAProxy's documented example
 * "reject if { src_conn_rate gt 10 }" before "track-sc0 src" also does
 * not count the refused connections, as client_limits does.) */
static const struct prule *
limit_value(const struct imp *im, struct proxy *p, const struct walk *wk,
            size_t pos, const struct term *t, long long *v, struct proxy **tpp,
            bool *counted, char **why)
{
	const struct prule *tr;
	struct proxy *tp;
	size_t at = 0;

	if (t->sc >= 0) {
		tr = find_track(wk, pos, t->sc, NULL, &at);
		if (tr == NULL) {
			*why = xasprintf("sc%d is not tracked before this "
			                 "rule: the condition never holds in "
			                 "HAProxy",
			                 t->sc);
			return NULL;
		}
		tp = tr->tp;
		if (t->tname != NULL && !streq(t->tname, tp->name)) {
			*why = xasprintf("reads table \"%s\", not the one "
			                 "sc%d counts in (\"%s\")",
			                 t->tname, t->sc, tp->name);
			return NULL;
		}
		*counted = true;
	} else {
		tp = t->tname != NULL     ? find_table(im, t->tname)
		     : p->table.line != 0 ? p
		                          : NULL;
		if (tp == NULL) {
			*why = t->tname != NULL
			           ? xasprintf("no stick-table named \"%s\"",
			                       t->tname)
			           : xstrdup("no stick-table in this section");
			return NULL;
		}
		tr = find_track(wk, wk->n, -1, tp, &at);
		if (tr == NULL) {
			*why = xstrdup("no track-sc rule counts the clients "
			               "in that stick-table: the condition "
			               "never holds in HAProxy");
			return NULL;
		}
		*counted = at < pos;
	}
	if (t->rate ? tp->table.period_ms == 0 : !tp->table.conn_cur) {
		*why = xasprintf("the stick-table of line %d does not store "
		                 "%s: the condition never holds in HAProxy",
		                 tp->table.line,
		                 t->rate ? "conn_rate" : "conn_cur");
		return NULL;
	}
	if (t->rate && tp->table.period_ms < PERIOD_MIN_MS) {
		*why = xasprintf("conn_rate(%s): client_limits.period is at "
		                 "least %dms",
		                 tp->table.period_text, PERIOD_MIN_MS);
		return NULL;
	}
	*v = t->value + (*counted ? 0 : 1) - (t->ge ? 1 : 0);
	if (*v < 1) {
		*why = xstrdup("refuses every client: a limit of 0 here is "
		               "no limit");
		return NULL;
	}
	if (*v > CLIENT_LIMIT_MAX) {
		*why = xasprintf("at most %d here", CLIENT_LIMIT_MAX);
		return NULL;
	}
	*tpp = tp;
	return tr;
}

/* "not limited by HAProxy: line 25" (or "lines 25, 27"), from the
 * non-zero lines, each once, in order. */
static char *
exempt_note(const int *lines, int n)
{
	char buf[96] = "";
	int v[8], k = 0;

	for (int i = 0; i < n && k < (int)ARRAY_SIZE(v); i++) {
		int j = k;
		bool dup = lines[i] == 0;

		for (int m = 0; m < k; m++)
			dup = dup || v[m] == lines[i];
		if (dup)
			continue;
		while (j > 0 && v[j - 1] > lines[i]) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = lines[i];
		k++;
	}
	for (int i = 0; i < k; i++) {
		char num[16];

		snprintf(num, sizeof(num), "%s%d", i > 0 ? ", " : "", v[i]);
		strncat(buf, num, sizeof(buf) - strlen(buf) - 1);
	}
	return xasprintf("not limited by HAProxy: line%s %s", k > 1 ? "s" : "",
	                 buf);
}

/* reject if { COUNTER gt|ge N } [!SRC-ACL]: a client limit. */
static void
reject_limit(struct imp *im, struct proxy *p, struct walk *wk, size_t pos,
             const struct term *cnt, const struct term *ex)
{
	struct prule *pr = &wk->pr[wk->order[pos]];
	struct limits_out *lo = &p->lim;
	const struct prule *tr;
	struct proxy *tp = NULL;
	struct strlist exempt = {NULL, 0};
	char *why = NULL, *note;
	long long v = 0;
	bool counted = false;

	tr = limit_value(im, p, wk, pos, cnt, &v, &tp, &counted, &why);
	if (tr == NULL) {
		rule_report(im, pr, why);
		free(why);
		return;
	}
	/* Those HAProxy lets through: the acl of the rule, an accept rule
	 * before it, or a track rule that does not count them. */
	if (ex != NULL)
		strlist_add_all(&exempt, &ex->cidrs, ex->cidrs.n);
	strlist_add_all(&exempt, &wk->acc[pr->r->phase], pr->nacc);
	strlist_add_all(&exempt, &tr->texempt, tr->texempt.n);
	if (lo->exempt_set && !strlist_same(&exempt, &lo->exempt)) {
		why = xasprintf("exempts other addresses than the rule of "
		                "line %d: client_limits.exempt is one list",
		                lo->exempt_line);
		rule_report(im, pr, why);
		free(why);
		strlist_free(&exempt);
		return;
	}
	if (cnt->rate && lo->rate > 0) {
		char period[32];

		fmt_duration(tp->table.period_ms, period, sizeof(period));
		if (!streq(period, lo->period)) {
			rule_report(im, pr,
			            "a second rate over another period: "
			            "client_limits has one period");
			strlist_free(&exempt);
			return;
		}
	}
	if (!lo->exempt_set) {
		int lines[4] = {ex != NULL ? pr->r->line : 0,
		                pr->nacc > 0 ? wk->acc_line[pr->r->phase] : 0,
		                tr->texempt_lines[0], tr->texempt_lines[1]};

		lo->exempt_set = true;
		lo->exempt_line = pr->r->line;
		lo->exempt = exempt;
		if (exempt.n > 0)
			lo->exempt_note = exempt_note(lines, 4);
	} else {
		strlist_free(&exempt);
	}
	if (lo->tp == NULL) {
		lo->tp = tp;
	} else if (lo->tp != tp) {
		warn_at(im, pr->r->line,
		        "the client limits read two stick-tables (lines %d "
		        "and %d): table_size and the prefixes follow the "
		        "first",
		        lo->tp->table.line, tp->table.line);
	}
	note = xasprintf("line %d: %s%s", pr->r->line, cnt->text,
	                 counted ? ""
	                         : ", read before track-sc counts the "
	                           "connection");
	lo->on = true;
	if (!cnt->rate) {
		if (lo->maxconn > 0) {
			warn_at(im, pr->r->line,
			        "two limits on concurrent sessions: the "
			        "smaller, %lld, is used",
			        v < lo->maxconn ? v : lo->maxconn);
			if (v >= lo->maxconn) {
				free(note);
				return;
			}
		}
		lo->maxconn = v;
		free(lo->maxconn_note);
		lo->maxconn_note = note;
		return;
	}
	if (lo->rate > 0) {
		warn_at(im, pr->r->line,
		        "two limits on the session rate: the smaller, %lld, "
		        "is used",
		        v < lo->rate ? v : lo->rate);
		if (v >= lo->rate) {
			free(note);
			return;
		}
	}
	lo->rate = v;
	free(lo->rate_note);
	lo->rate_note = note;
	if (counted) {
		/* The connection was counted by track-sc before the rule
		 * refused it. */
		char *more = xasprintf("%s; HAProxy counted the refused "
		                       "connections too",
		                       lo->rate_note);

		free(lo->rate_note);
		lo->rate_note = more;
	}
	fmt_duration(tp->table.period_ms, lo->period, sizeof(lo->period));
	free(lo->period_note);
	lo->period_note = xasprintf("line %d: conn_rate(%s)", tp->table.line,
	                            tp->table.period_text);
}

/* reject if SRC-ACL (deny) or reject if !SRC-ACL (allow). */
static void
reject_list(struct imp *im, struct proxy *p, struct walk *wk, size_t pos,
            const struct term *t, bool inside)
{
	struct prule *pr = &wk->pr[wk->order[pos]];
	const struct strlist *acc = &wk->acc[pr->r->phase];
	struct limits_out *lo = &p->lim;
	struct strlist allow = {NULL, 0};

	if (inside) {
		/* deny: an accept rule before it lets its addresses through,
		 * which a deny list cannot say. */
		for (size_t i = 0; i < t->cidrs.n; i++)
			for (size_t j = 0; j < pr->nacc; j++)
				if (cidr_overlap(t->cidrs.v[i], acc->v[j])) {
					char *why = xasprintf(
					    "%s is let through by the accept "
					    "rule of line %d first",
					    t->cidrs.v[i],
					    wk->acc_line[pr->r->phase]);

					rule_report(im, pr, why);
					free(why);
					return;
				}
		strlist_add_all(&lo->deny, &t->cidrs, t->cidrs.n);
		return;
	}
	/* allow: what an accept rule let through before stays allowed. */
	strlist_add_all(&allow, &t->cidrs, t->cidrs.n);
	strlist_add_all(&allow, acc, pr->nacc);
	if (lo->allow_set && !strlist_same(&allow, &lo->allow)) {
		char *why = xasprintf("a second list of allowed addresses "
		                      "(the first: line %d): allow is one "
		                      "list",
		                      lo->allow_line);

		rule_report(im, pr, why);
		free(why);
		strlist_free(&allow);
		return;
	}
	if (lo->allow_set) {
		strlist_free(&allow);
		return;
	}
	lo->allow_set = true;
	lo->allow_line = pr->r->line;
	lo->allow = allow;
}

static void
walk_reject(struct imp *im, struct proxy *p, struct walk *wk, size_t pos)
{
	struct prule *pr = &wk->pr[wk->order[pos]];
	const struct term *cnt = NULL, *ex = NULL, *t;
	bool inside, other = false;

	if (!pr->has_cond) {
		rule_report(im, pr, "refuses every client");
		return;
	}
	if (cond_why(pr) != NULL) {
		rule_report(im, pr, cond_why(pr));
		return;
	}
	if ((t = one_src(pr, &inside)) != NULL) {
		reject_list(im, p, wk, pos, t, inside);
		return;
	}
	for (int i = 0; i < pr->c.n && !other; i++) {
		t = &pr->c.t[i];
		if (t->kind == TM_COUNT && !t->neg && cnt == NULL)
			cnt = t;
		else if (t->kind == TM_SRC && t->neg && ex == NULL)
			ex = t;
		else
			other = true;
	}
	if (cnt == NULL || other || pr->c.unless) {
		rule_report(im, pr,
		            "only \"if\" with one counter limit, and at most "
		            "one negated src acl (the exempt addresses), "
		            "translates to client_limits");
		return;
	}
	reject_limit(im, p, wk, pos, cnt, ex);
}

/* The first pass: accept and track rules, in HAProxy's order. */
static void
walk_first(struct imp *im, struct walk *wk)
{
	int blocked[PH_N] = {0};
	bool tracked[SC_MAX] = {false};

	for (size_t k = 0; k < wk->n; k++) {
		struct prule *pr = &wk->pr[wk->order[k]];
		enum phase ph = pr->r->phase;
		const struct term *t;
		bool inside = false;
		char *why;

		pr->nacc = wk->acc[ph].n;
		if (blocked[ph] != 0) {
			why = xasprintf("after the accept rule of line %d, "
			                "which is not translated",
			                blocked[ph]);
			rule_report(im, pr, why);
			free(why);
			continue;
		}
		if (pr->why != NULL) {
			rule_report(im, pr, pr->why);
			continue;
		}
		t = one_src(pr, &inside);
		if (pr->act == RA_ACCEPT) {
			if (t != NULL && inside) {
				strlist_add_all(&wk->acc[ph], &t->cidrs,
				                t->cidrs.n);
				wk->acc_line[ph] = pr->r->line;
				continue;
			}
			rule_report(im, pr,
			            pr->has_cond && cond_why(pr) != NULL
			                ? cond_why(pr)
			                : "only \"accept if SRC-ACL\" "
			                  "translates (to exempt addresses)");
			blocked[ph] = pr->r->line;
			continue;
		}
		if (pr->act != RA_TRACK)
			continue;
		if (pr->has_cond && (t == NULL || inside)) {
			rule_report(im, pr,
			            cond_why(pr) != NULL
			                ? cond_why(pr)
			                : "tracks only some clients: only "
			                  "\"if !SRC-ACL\" (exempt addresses) "
			                  "translates");
			continue;
		}
		if (tracked[pr->sc]) {
			why = xasprintf("sc%d is tracked already: HAProxy "
			                "keeps the first",
			                pr->sc);
			rule_report(im, pr, why);
			free(why);
			continue;
		}
		tracked[pr->sc] = true;
		pr->valid_track = true;
		if (t != NULL) {
			strlist_add_all(&pr->texempt, &t->cidrs, t->cidrs.n);
			pr->texempt_lines[0] = pr->r->line;
		}
		if (pr->nacc > 0) {
			strlist_add_all(&pr->texempt, &wk->acc[ph], pr->nacc);
			pr->texempt_lines[1] = wk->acc_line[ph];
		}
	}
}

static int
phase_cmp(const struct hrule *a, const struct hrule *b)
{
	if (a->phase != b->phase)
		return a->phase < b->phase ? -1 : 1;
	return a->line < b->line ? -1 : a->line > b->line;
}

/* A frontend's (or listen's) tcp-request rules -> client_limits, allow,
 * deny; what cannot be translated is reported. */
static void
fold_client_limits(struct imp *im, struct proxy *p)
{
	struct limits_out *lo = &p->lim;
	struct walk wk;
	bool content_reported = false;

	memset(&wk, 0, sizeof(wk));
	wk.n = p->nrules;
	wk.pr = xreallocarray(NULL, wk.n + 1, sizeof(*wk.pr));
	wk.order = xreallocarray(NULL, wk.n + 1, sizeof(*wk.order));
	for (size_t i = 0; i < wk.n; i++) {
		size_t j = i;

		read_rule(im, p, &p->rules[i], &wk.pr[i]);
		/* Insertion sort: a handful of rules. */
		while (j > 0 && phase_cmp(&p->rules[wk.order[j - 1]],
		                          &p->rules[i]) > 0) {
			wk.order[j] = wk.order[j - 1];
			j--;
		}
		wk.order[j] = i;
	}
	walk_first(im, &wk);
	for (size_t k = 0; k < wk.n; k++) {
		struct prule *pr = &wk.pr[wk.order[k]];

		if (pr->act == RA_REJECT && !pr->r->reported)
			walk_reject(im, p, &wk, k);
	}
	for (size_t i = 0; i < wk.n; i++) {
		if (wk.pr[i].r->reported && wk.pr[i].r->phase == PH_CONTENT)
			content_reported = true;
		cond_free(&wk.pr[i].c);
		free(wk.pr[i].why);
		strlist_free(&wk.pr[i].texempt);
	}
	for (int ph = 0; ph < PH_N; ph++)
		strlist_free(&wk.acc[ph]);
	free(wk.pr);
	free(wk.order);
	/* Content inspection only matters to the rules that need it. */
	if (p->inspect_line != 0 && content_reported)
		untranslated(im, p->inspect_line, p->inspect_disp,
		             "no content inspection here: the rules that "
		             "would use it are reported");
	if (!lo->on)
		return;
	/* The comments of a section that only holds the stick-table go
	 * with the frontend that reads it. */
	if (lo->tp->cap == CAP_BE && !lo->tp->emit_be) {
		comments_move(im, &p->fe_c, &lo->tp->lead);
		comments_move(im, &p->fe_c, &lo->tp->be_c);
	}
	lo->tp->table.used = true;
	lo->tp->table.nusers++;
	lo->table_size = lo->tp->table.size;
	if (lo->table_size > TABLE_SIZE_MAX) {
		warn_at(im, lo->tp->table.line,
		        "stick-table size %s: client_limits.table_size is at "
		        "most %d",
		        lo->tp->table.size_text, TABLE_SIZE_MAX);
		lo->table_size = TABLE_SIZE_MAX;
	}
	lo->table_note = xasprintf("line %d: size %s", lo->tp->table.line,
	                           lo->tp->table.size_text);
	if (streq(lo->tp->table.type, "ipv6")) {
		/* HAProxy keys the full address (IPv4 ones mapped). */
		lo->prefix6 = 128;
		lo->prefix6_note = xasprintf("line %d: type ipv6, one entry "
		                             "per address",
		                             lo->tp->table.line);
	} else {
		bool v6 = false;

		for (size_t i = 0; i < p->nbinds; i++)
			if (p->binds[i][0] == '[')
				v6 = true;
		if (v6)
			warn_at(im, lo->tp->table.line,
			        "stick-table type ip holds IPv4 addresses "
			        "only, so HAProxy did not limit IPv6 "
			        "clients; here they are limited per /64 "
			        "(client_limits.prefix6)");
	}
}

/* Rules of a section that has no frontend here. */
static void
report_rules(struct imp *im, struct proxy *p, const char *why)
{
	for (size_t i = 0; i < p->nrules; i++)
		untranslated(im, p->rules[i].line, p->rules[i].disp, why);
	if (p->inspect_line != 0 && p->nrules > 0)
		untranslated(im, p->inspect_line, p->inspect_disp, why);
}

/* Stick-tables no translated limit reads, and the options of those
 * read. */
static void
report_tables(struct imp *im)
{
	for (size_t i = 0; i < im->npx; i++) {
		struct htable *t = &im->px[i]->table;

		if (t->line == 0)
			continue;
		if (!t->used) {
			untranslated(im, t->line, t->disp,
			             "no stick tables here: client_limits "
			             "counts the sessions of each client "
			             "network; only conn_cur and conn_rate "
			             "limits on src translate");
			continue;
		}
		for (int k = 0; k < t->nx; k++)
			untranslated(im, t->line, t->xwhat[k], t->xwhy[k]);
		if (t->nusers > 1)
			warn_at(im, t->line,
			        "stick-table of \"%s\" read by %d frontends: "
			        "HAProxy counted their clients together; "
			        "here each frontend counts its own",
			        im->px[i]->name, t->nusers);
	}
}

/* A frontend or listen names this backend (default_backend). */
static bool
backend_named(const struct imp *im, const char *name)
{
	for (size_t i = 0; i < im->npx; i++) {
		const char *b = slot_val(&im->px[i]->fe, "backend");

		if ((im->px[i]->cap & CAP_FE) && b != NULL && streq(b, name))
			return true;
	}
	return false;
}

/* Decide what each proxy becomes and check the references. */
static void
fold(struct imp *im)
{
	for (size_t i = 0; i < im->npx; i++) {
		struct proxy *p = im->px[i];
		const struct slot *b = slot_find(&p->fe, "backend");
		bool own_backend = b != NULL && !b->inherited;

		/* A backend that only holds a stick-table for frontends'
		 * track-sc rules is not a backend here. */
		if (p->cap == CAP_BE) {
			p->emit_be = p->nservers > 0 || p->table.line == 0 ||
			             backend_named(im, p->name);
		} else if (p->cap == (CAP_FE | CAP_BE))
			p->emit_be = p->nservers > 0 || !own_backend;
	}
	for (size_t i = 0; i < im->npx; i++) {
		struct proxy *p = im->px[i];
		const struct slot *b = slot_find(&p->fe, "backend");

		if (!(p->cap & CAP_FE))
			continue;
		if (p->cap & CAP_BE) {
			/* listen: its own servers unless it names others */
			if (b == NULL || b->inherited)
				fe_put(im, p, "backend", V_STR, p->name);
			b = slot_find(&p->fe, "backend");
			if (p->nbinds == 0)
				continue; /* a listen without bind: backend */
		} else if (p->nbinds == 0) {
			char *what = xasprintf("frontend %s", p->name);

			untranslated(im, p->line, what,
			             "no bind address that can be translated: "
			             "frontend left out");
			free(what);
			continue;
		} else if (b == NULL) {
			char *what = xasprintf("frontend %s", p->name);

			untranslated(
			    im, p->line, what,
			    p->use_backend_line != 0
			        ? "no default_backend, and use_backend "
			          "rules cannot be translated: frontend "
			          "left out"
			        : "no default_backend: frontend left "
			          "out");
			free(what);
			continue;
		}
		if (find_backend(im, b->val) == NULL) {
			error_at(im, b->line,
			         "default_backend: no backend named \"%s\"",
			         b->val);
			continue;
		}
		p->emit_fe = true;
		if (p->ntransparent > 0 && p->ntransparent < p->nbind_lines)
			warn_at(im, p->plain_bind_line,
			        "frontend \"%s\": \"transparent\" is one "
			        "setting for the whole frontend here: it "
			        "applies to this bind line and any other "
			        "without it too",
			        p->name);
	}
	for (size_t i = 0; i < im->npx; i++) {
		struct proxy *p = im->px[i];

		if (p->emit_fe)
			fold_client_limits(im, p);
		else if (p->cap == CAP_FE || p->nbinds > 0)
			report_rules(im, p, "the frontend is left out");
		else
			report_rules(
			    im, p,
			    "client_limits, allow and deny are set per "
			    "frontend here: write the rule in the "
			    "frontend");
	}
	report_tables(im);
	for (size_t i = 0; i < im->npx; i++) {
		struct proxy *p = im->px[i];

		if (p->emit_be)
			fold_backend(im, p);
		else if (p->cap == CAP_BE) {
			/* A stick-table holder nobody reads: its comments
			 * stay comments, at the top. */
			comments_move(im, &im->top_c, &p->lead);
			comments_move(im, &im->top_c, &p->be_c);
		}
	}
}

/* --- writing ---------------------------------------------------------------
 */

static void
put_string(FILE *out, const char *s)
{
	putc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	     p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		case '\f':
			fputs("\\f", out);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(out, "\\x%02x", *p);
			else
				putc(*p, out);
		}
	}
	putc('"', out);
}

static void
put_comment(FILE *out, int indent, const char *text)
{
	fprintf(out, "%*s#", indent, "");
	if (*text != '\0')
		putc(' ', out);
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0';
	     p++)
		putc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
	putc('\n', out);
}

static void
put_value(FILE *out, const struct slot *sl)
{
	if (sl->kind == V_STR)
		put_string(out, sl->val);
	else
		fputs(sl->val, out);
}

static void
put_slot(FILE *out, int indent, const char *key, const struct slot *sl)
{
	fprintf(out, "%*s%s = ", indent, "", key);
	put_value(out, sl);
	putc(';', out);
	if (sl->note != NULL)
		fprintf(out, "  # %s", sl->note);
	else if (sl->inherited)
		fprintf(out, "  # from defaults (line %d)", sl->line);
	putc('\n', out);
}

static void
put_comments(FILE *out, int indent, const struct comments *c)
{
	for (size_t i = 0; i < c->n; i++)
		put_comment(out, indent, c->v[i].text);
}

/* Items of a group in output order: slots (internal ones left out) and
 * comments merged by sequence number, with one special item. */
struct item {
	unsigned seq;
	const struct slot *slot;
	const char *comment;
	bool special;
};

static int
item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static struct item *
items_of(const struct slots *s, const char *skip_prefix,
         const struct comments *c, bool special, unsigned special_seq,
         size_t *n)
{
	struct item *v = xreallocarray(NULL, s->n + c->n + 1, sizeof(*v));
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].key[0] == '.' ||
		    (skip_prefix != NULL &&
		     has_prefix(s->v[i].key, skip_prefix)))
			continue;
		v[k++] = (struct item){s->v[i].seq, &s->v[i], NULL, false};
	}
	for (size_t i = 0; i < c->n; i++)
		v[k++] = (struct item){c->v[i].seq, NULL, c->v[i].text, false};
	if (special)
		v[k++] = (struct item){special_seq, NULL, NULL, true};
	qsort(v, k, sizeof(*v), item_cmp);
	*n = k;
	return v;
}

static void
write_global(struct imp *im, FILE *out)
{
	unsigned log_seq = UINT32_MAX;
	bool has_log = false;
	struct item *it;
	size_t n;

	for (size_t i = 0; i < im->global.n; i++)
		if (has_prefix(im->global.v[i].key, "log.")) {
			has_log = true;
			if (im->global.v[i].seq < log_seq)
				log_seq = im->global.v[i].seq;
		}
	put_comments(out, 0, &im->global_lead);
	fputs("global = {\n", out);
	it = items_of(&im->global, "log.", &im->global_c, has_log, log_seq, &n);
	for (size_t i = 0; i < n; i++) {
		if (it[i].comment != NULL) {
			put_comment(out, 2, it[i].comment);
		} else if (it[i].slot != NULL) {
			put_slot(out, 2, it[i].slot->key, it[i].slot);
		} else {
			struct slot *sorted =
			    xreallocarray(NULL, im->global.n, sizeof(*sorted));
			size_t k = 0;

			for (size_t j = 0; j < im->global.n; j++)
				if (has_prefix(im->global.v[j].key, "log."))
					sorted[k++] = im->global.v[j];
			fputs("  log = {\n", out);
			for (size_t a = 0; a < k; a++) {
				size_t best = a;

				for (size_t b = a + 1; b < k; b++)
					if (sorted[b].seq < sorted[best].seq)
						best = b;
				struct slot tmp = sorted[a];
				sorted[a] = sorted[best];
				sorted[best] = tmp;
				put_slot(out, 4, sorted[a].key + 4, &sorted[a]);
			}
			fputs("  };\n", out);
			free(sorted);
		}
	}
	free(it);
	fputs("};\n", out);
}

static void
put_note(FILE *out, const char *note)
{
	if (note != NULL)
		fprintf(out, "  # %s", note);
	putc('\n', out);
}

static void
put_list(FILE *out, int indent, const char *key, const struct strlist *l,
         const char *note)
{
	fprintf(out, "%*s%s = [ ", indent, "", key);
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			fputs(", ", out);
		put_string(out, l->v[i]);
	}
	fputs(" ];", out);
	put_note(out, note);
}

/* client_limits, allow and deny, after the frontend's other keys
 * (load-balancer.conf(5), CLIENT LIMITS). */
static void
write_limits(const struct proxy *p, FILE *out)
{
	const struct limits_out *lo = &p->lim;

	if (lo->on) {
		put_comment(out, 4,
		            "HAProxy closed the connections its tcp-request "
		            "rules rejected;");
		put_comment(out, 4,
		            "here they get client_limits.reply (a 421: the "
		            "client retries later).");
		fputs("    client_limits = {\n", out);
		if (lo->maxconn > 0) {
			fprintf(out, "      maxconn = %lld;", lo->maxconn);
			put_note(out, lo->maxconn_note);
		}
		if (lo->rate > 0) {
			fprintf(out, "      rate = %lld;", lo->rate);
			put_note(out, lo->rate_note);
			fputs("      period = ", out);
			put_string(out, lo->period);
			putc(';', out);
			put_note(out, lo->period_note);
		}
		if (lo->prefix6 > 0) {
			fprintf(out, "      prefix6 = %d;", lo->prefix6);
			put_note(out, lo->prefix6_note);
		}
		if (lo->exempt.n > 0)
			put_list(out, 6, "exempt", &lo->exempt,
			         lo->exempt_note);
		fprintf(out, "      table_size = %lld;", lo->table_size);
		put_note(out, lo->table_note);
		fputs("    };\n", out);
	}
	if (lo->allow.n > 0 || lo->deny.n > 0) {
		put_comment(out, 4,
		            "HAProxy closed these connections; here they get "
		            "deny_reply");
		put_comment(out, 4,
		            "(by default \"554 5.7.1 Access denied\", a "
		            "permanent refusal).");
	}
	if (lo->allow.n > 0)
		put_list(out, 4, "allow", &lo->allow, NULL);
	if (lo->deny.n > 0)
		put_list(out, 4, "deny", &lo->deny, NULL);
}

static void
write_frontend(const struct proxy *p, FILE *out, bool last)
{
	struct item *it;
	size_t n;

	put_comments(out, 2, &p->lead);
	fputs("  {\n    name = ", out);
	put_string(out, p->name);
	fputs(";\n", out);
	it = items_of(&p->fe, NULL, &p->fe_c, true, p->bind_seq, &n);
	for (size_t i = 0; i < n; i++) {
		if (it[i].comment != NULL) {
			put_comment(out, 4, it[i].comment);
		} else if (it[i].slot != NULL) {
			put_slot(out, 4, it[i].slot->key, it[i].slot);
		} else if (p->nbinds == 1) {
			fputs("    bind = ", out);
			put_string(out, p->binds[0]);
			fputs(";\n", out);
		} else {
			fputs("    bind = [ ", out);
			for (size_t b = 0; b < p->nbinds; b++) {
				if (b > 0)
					fputs(", ", out);
				put_string(out, p->binds[b]);
			}
			fputs(" ];\n", out);
		}
	}
	write_limits(p, out);
	/* A listen's comments all went to its backend part when it has one;
	 * without one they are printed here. */
	if (!p->emit_be && (p->cap & CAP_BE)) {
		put_comments(out, 4, &p->be_c);
		put_comments(out, 4, &p->srv_tail);
	}
	free(it);
	fprintf(out, "  }%s\n", last ? "" : ",");
}

static void
write_server(const struct hserver *s, FILE *out, bool last)
{
	static const char *const keys[] = {
	    "weight",   "maxconn",        "minconn",    "check", "backup",
	    "disabled", "proxy_protocol", "agent_port", NULL};

	put_comments(out, 6, &s->before);
	fputs("      { name = ", out);
	put_string(out, s->name);
	fputs("; address = ", out);
	put_string(out, s->addr);
	fputs(";", out);
	for (size_t i = 0; keys[i] != NULL; i++) {
		const struct slot *sl = slot_find(&s->o, keys[i]);

		if (sl == NULL)
			continue;
		fprintf(out, " %s = ", keys[i]);
		put_value(out, sl);
		putc(';', out);
	}
	fprintf(out, " }%s\n", last ? "" : ",");
}

static void
write_backend(const struct proxy *p, FILE *out, bool last)
{
	struct item *it;
	size_t n;

	if (!p->emit_fe)
		put_comments(out, 2, &p->lead);
	fputs("  {\n    name = ", out);
	put_string(out, p->name);
	fputs(";\n", out);
	it = items_of(&p->be, NULL, &p->be_c, false, 0, &n);
	for (size_t i = 0; i < n; i++) {
		if (it[i].comment != NULL)
			put_comment(out, 4, it[i].comment);
		else
			put_slot(out, 4, it[i].slot->key, it[i].slot);
	}
	free(it);
	for (size_t i = 0; i < p->derived.n; i++)
		put_slot(out, 4, p->derived.v[i].key, &p->derived.v[i]);
	if (p->has_agent) {
		if (p->agent_some) {
			put_comment(out, 4,
			            "HAProxy ran agent checks on some servers "
			            "only: agent.port stays 0");
			put_comment(out, 4,
			            "(off) and those servers have their "
			            "agent_port.");
		}
		fputs("    agent = {\n", out);
		for (size_t i = 0; i < p->agent.n; i++)
			put_slot(out, 6, p->agent.v[i].key, &p->agent.v[i]);
		fputs("    };\n", out);
	}
	if (p->has_hc) {
		fputs("    health_check = {\n", out);
		for (size_t i = 0; i < p->hc.n; i++)
			put_slot(out, 6, p->hc.v[i].key, &p->hc.v[i]);
		fputs("    };\n", out);
	}
	if (p->nservers > 0) {
		fputs("    servers = (\n", out);
		for (size_t i = 0; i < p->nservers; i++)
			write_server(&p->servers[i], out, i + 1 == p->nservers);
		put_comments(out, 6, &p->srv_tail);
		fputs("    );\n", out);
	} else {
		put_comments(out, 4, &p->srv_tail);
	}
	fprintf(out, "  }%s\n", last ? "" : ",");
}

static int
diag_cmp(const void *a, const void *b)
{
	const struct diag_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *
diag_prefix(enum dkind k)
{
	return k == D_WARNING        ? "warning: "
	       : k == D_UNTRANSLATED ? "cannot translate: "
	                             : "";
}

static void
write_output(struct imp *im, FILE *out)
{
	size_t nfe = 0, nbe = 0, k;

	fputs("# Translated by load-balancer --import-haproxy from ", out);
	for (const unsigned char *p = (const unsigned char *)im->name;
	     *p != '\0'; p++)
		putc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
	fputs("\n", out);
	if (im->ndiags > 0) {
		fputs("#\n# To review (also reported on stderr):\n", out);
		for (size_t i = 0; i < im->ndiags; i++) {
			char *t = xasprintf(
			    "   line %d: %s%s", im->diags[i].line,
			    diag_prefix(im->diags[i].kind), im->diags[i].text);

			fputs("#", out);
			for (const unsigned char *p = (const unsigned char *)t;
			     *p != '\0'; p++)
				putc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
			fputs("\n", out);
			free(t);
		}
	}
	if (im->ncarried > 0)
		fputs("#\n# Lines commented out in the HAProxy file are "
		      "carried over as comments:\n# they stay inactive.\n",
		      out);
	if (im->top_c.n > 0) {
		fputs("\n", out);
		put_comments(out, 0, &im->top_c);
	}
	if (im->global.n > 0 || im->global_c.n > 0 || im->global_lead.n > 0) {
		fputs("\n", out);
		write_global(im, out);
	}
	for (size_t i = 0; i < im->npx; i++) {
		nfe += im->px[i]->emit_fe;
		nbe += im->px[i]->emit_be;
	}
	if (nfe > 0) {
		fputs("\nfrontends = (\n", out);
		k = 0;
		for (size_t i = 0; i < im->npx; i++)
			if (im->px[i]->emit_fe)
				write_frontend(im->px[i], out, ++k == nfe);
		fputs(");\n", out);
	}
	if (nbe > 0) {
		fputs("\nbackends = (\n", out);
		k = 0;
		for (size_t i = 0; i < im->npx; i++)
			if (im->px[i]->emit_be)
				write_backend(im->px[i], out, ++k == nbe);
		fputs(");\n", out);
	}
}

/* --- entry points ------------------------------------------------------------
 */

static void
imp_free(struct imp *im)
{
	for (size_t i = 0; i < im->ndiags; i++)
		free(im->diags[i].text);
	free(im->diags);
	slots_free(&im->global);
	comments_free(&im->global_lead);
	comments_free(&im->global_c);
	comments_free(&im->top_c);
	free(im->first_log);
	for (size_t i = 0; i < im->npx; i++)
		proxy_free(im->px[i]);
	free(im->px);
	for (size_t i = 0; i < im->ndfl; i++)
		proxy_free(im->dfl[i]);
	free(im->dfl);
	drop_pending(im);
	free(im->hl);
}

int
haproxy_import(FILE *in, const char *name, FILE *out, FILE *diag)
{
	struct imp im;
	char *raw = xcalloc(HAPROXY_LINE_MAX + 2, 1);
	bool toolong, nul;
	int r, status = 0, read_errno = 0;

	memset(&im, 0, sizeof(im));
	im.name = name;
	im.hl = xcalloc(1, sizeof(*im.hl));
	im.blank = true;
	while ((r = read_line(in, raw, &toolong, &nul)) != 0) {
		const char *err = NULL;

		if (r < 0) {
			read_errno = errno;
			break;
		}
		im.line++;
		if (nul) {
			error_at(&im, im.line,
			         "a NUL byte: this is not a text file");
			continue;
		}
		if (toolong) {
			error_at(&im, im.line,
			         "line longer than %d bytes: not an HAProxy "
			         "configuration line",
			         HAPROXY_LINE_MAX);
			continue;
		}
		if (tokenize(raw, im.hl, &err) < 0) {
			error_at(&im, im.line, "%s", err);
			continue;
		}
		if (im.hl->n == 0) {
			if (im.hl->comment != NULL) {
				if (im.sect != S_SKIP && im.sect != S_BAD)
					comment_line(&im, im.hl->comment);
				im.blank = false;
			} else {
				im.blank = true;
			}
			continue;
		}
		directive_line(&im);
		im.blank = false;
	}
	end_section(&im, false);
	if (im.nerrors == 0 && read_errno == 0)
		fold(&im);
	if (im.ndiags > 1)
		qsort(im.diags, im.ndiags, sizeof(*im.diags), diag_cmp);
	for (size_t i = 0; i < im.ndiags; i++)
		fprintf(diag, "%s:%d: %s%s\n", name, im.diags[i].line,
		        diag_prefix(im.diags[i].kind), im.diags[i].text);
	if (read_errno != 0)
		fprintf(diag, "%s: cannot read %s: %s\n", LB_PROGRAM, name,
		        strerror(read_errno));
	if (im.nerrors > 0 || read_errno != 0) {
		status = 1;
	} else {
		write_output(&im, out);
		if (fflush(out) != 0 || ferror(out)) {
			fprintf(diag, "%s: cannot write the translation: %s\n",
			        LB_PROGRAM, strerror(errno));
			status = 1;
		}
	}
	imp_free(&im);
	free(raw);
	return status;
}

int
haproxy_import_file(const char *path, FILE *out, FILE *diag)
{
	FILE *in;
	int status;

	if (streq(path, "-"))
		return haproxy_import(stdin, "-", out, diag);
	in = fopen(path, "r");
	if (in == NULL) {
		fprintf(diag, "%s: cannot read %s: %s\n", LB_PROGRAM, path,
		        strerror(errno));
		return 1;
	}
	status = haproxy_import(in, path, out, diag);
	fclose(in);
	return status;
}
