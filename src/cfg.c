/* Configuration loader: libconfig file -> validated struct cfg.
 *
 * Every problem is collected as "FILE:LINE: message" (libconfig's line
 * numbers) so that -c can report all of them at once.  Keys whose feature
 * is not built yet are parsed and validated, and any non-default value is
 * an error saying so: nothing is silently ignored. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <syslog.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <libconfig.h>

#include "common.h"
#include "cfg.h"
#include "log.h"
#include "parse.h"
#include "xmalloc.h"

#define DEFAULT_UNAVAILABLE                                                    \
	"421 4.3.2 Service not available, closing transmission channel"
#define RFC5321_DATA_TIMEOUT_MS (10ULL * 60 * 1000)
#define DEFAULT_LIMIT_REPLY                                                    \
	"421 4.7.0 Too many connections from your address, try again later"
#define DEFAULT_DENY_REPLY "554 5.7.1 Access denied"
#define LB_TABLE_SIZE_MAX 10000000
#define LB_RATE_MAX 1000000

struct loader {
	struct cfg_diag *diag;
	const char *name; /* file name for messages */
	struct cfg *cfg;
};

/* --- diagnostics ------------------------------------------------------ */

void
cfg_diag_init(struct cfg_diag *diag)
{
	memset(diag, 0, sizeof(*diag));
}

void
cfg_diag_free(struct cfg_diag *diag)
{
	for (size_t i = 0; i < diag->n; i++)
		free(diag->msgs[i]);
	free(diag->msgs);
	free(diag->is_warning);
	free(diag->lines);
	memset(diag, 0, sizeof(*diag));
}

static void diag_vadd(struct cfg_diag *diag, bool warning, const char *file,
                      int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void
diag_vadd(struct cfg_diag *diag, bool warning, const char *file, int line,
          const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A quoted value may span lines: one message, one line. */
	for (char *c = msg; *c != '\0'; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			*c = '?';
	diag->msgs = xreallocarray(diag->msgs, diag->n + 1, sizeof(char *));
	diag->is_warning =
	    xreallocarray(diag->is_warning, diag->n + 1, sizeof(bool));
	diag->msgs[diag->n] = xasprintf("%s:%d: %s%s", file, line,
	                                warning ? "warning: " : "", msg);
	diag->is_warning[diag->n] = warning;
	diag->lines = xreallocarray(diag->lines, diag->n + 1, sizeof(int));
	diag->lines[diag->n] = line;
	diag->n++;
	if (warning)
		diag->nwarnings++;
	else
		diag->nerrors++;
}

static const char *
src_file(const struct loader *L, const config_setting_t *s)
{
	const char *f = s != NULL ? config_setting_source_file(s) : NULL;
	return f != NULL ? f : L->name;
}

static int
src_line(const config_setting_t *s)
{
	int line = s != NULL ? (int)config_setting_source_line(s) : 0;
	return line > 0 ? line : 1;
}

static void __attribute__((format(printf, 3, 4)))
err_at(struct loader *L, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(L->diag, false, src_file(L, s), src_line(s), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
warn_at(struct loader *L, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(L->diag, true, src_file(L, s), src_line(s), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
warn_line(struct loader *L, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(L->diag, true, L->name, line, fmt, ap);
	va_end(ap);
}

/* --- the keys of each group ------------------------------------------- */

/* Every key the file may hold, group by group: check_keys rejects any
 * other, and cfg_keysets() gives them to the test that compares them with
 * load-balancer.conf(5) (tests/unit/check_cfgkeys.c).  NULL-terminated. */
static const char *const root_keys[] = {"global", "frontends", "backends",
                                        NULL};
static const char *const global_keys[] = {
    "maxconn",    "daemon",       "pidfile",    "user",           "group",
    "chroot",     "workers",      "grace",      "control_socket", "log",
    "health_log", "stats_listen", "stats_auth", "state_file",     NULL};
static const char *const log_keys[] = {"syslog", "facility", "ident",
                                       "level",  "sessions", NULL};
static const char *const frontend_keys[] = {"name",
                                            "bind",
                                            "transparent",
                                            "backend",
                                            "timeout_client",
                                            "maxconn",
                                            "backlog",
                                            "unavailable_reply",
                                            "client_limits",
                                            "allow",
                                            "deny",
                                            "deny_reply",
                                            NULL};
static const char *const limits_keys[] = {"maxconn", "rate",       "period",
                                          "prefix4", "prefix6",    "reply",
                                          "exempt",  "table_size", NULL};
static const char *const backend_keys[] = {
    "name",           "balance",       "timeout_connect",
    "timeout_server", "timeout_queue", "retries",
    "fullconn",       "source",        "proxy_protocol",
    "on_marked_down", "greeting_gate", "timeout_greeting",
    "error_limit",    "slowstart",     "agent",
    "health_check",   "servers",       NULL};
static const char *const agent_keys[] = {"port", "interval", "send", "timeout",
                                         NULL};
static const char *const health_check_keys[] = {"type",
                                                "helo",
                                                "ehlo",
                                                "starttls",
                                                "tls_verify",
                                                "tls_ca_file",
                                                "tls_servername",
                                                "cert_expiry_warn",
                                                "interval",
                                                "fastinter",
                                                "downinter",
                                                "timeout",
                                                "rise",
                                                "fall",
                                                NULL};
static const char *const server_keys[] = {
    "name",   "address",  "weight",         "maxconn",    "minconn", "check",
    "backup", "disabled", "proxy_protocol", "agent_port", NULL};

static const struct cfg_keyset keysets[] = {
    {"top level", root_keys},
    {"global", global_keys},
    {"global.log", log_keys},
    {"frontends", frontend_keys},
    {"frontends.client_limits", limits_keys},
    {"backends", backend_keys},
    {"backends.agent", agent_keys},
    {"backends.health_check", health_check_keys},
    {"backends.servers", server_keys},
    {NULL, NULL},
};

const struct cfg_keyset *
cfg_keysets(void)
{
	return keysets;
}

/* --- typed getters: leave *out alone when the key is absent ----------- */

/* Unknown keys are errors.  known is NULL-terminated. */
static void
check_keys(struct loader *L, const config_setting_t *g, const char *where,
           const char *const *known)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, i);
		const char *name = config_setting_name(m);
		bool ok = false;

		if (name == NULL)
			continue;
		for (size_t k = 0; known[k] != NULL; k++)
			if (strcmp(known[k], name) == 0)
				ok = true;
		if (!ok)
			err_at(L, m, "unknown key '%s' in %s", name, where);
	}
}

static bool
is_int(const config_setting_t *m)
{
	int t = config_setting_type(m);
	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/* Returns the member, or NULL when absent or invalid (error recorded). */
static const config_setting_t *
get_int(struct loader *L, const config_setting_t *g, const char *key,
        long long min, long long max, int *out)
{
	const config_setting_t *m = config_setting_get_member(g, key);
	long long v;

	if (m == NULL)
		return NULL;
	if (!is_int(m)) {
		err_at(L, m, "%s: expected an integer", key);
		return NULL;
	}
	v = config_setting_get_int64(m);
	if (v < min || v > max) {
		err_at(L, m, "%s: %lld is out of range (%lld-%lld)", key, v,
		       min, max);
		return NULL;
	}
	*out = (int)v;
	return m;
}

static const config_setting_t *
get_bool(struct loader *L, const config_setting_t *g, const char *key,
         bool *out)
{
	const config_setting_t *m = config_setting_get_member(g, key);

	if (m == NULL)
		return NULL;
	if (config_setting_type(m) != CONFIG_TYPE_BOOL) {
		err_at(L, m, "%s: expected true or false", key);
		return NULL;
	}
	*out = config_setting_get_bool(m) != 0;
	return m;
}

/* *out is replaced by a copy (the old value freed). */
static const config_setting_t *
get_string(struct loader *L, const config_setting_t *g, const char *key,
           char **out)
{
	const config_setting_t *m = config_setting_get_member(g, key);

	if (m == NULL)
		return NULL;
	if (config_setting_type(m) != CONFIG_TYPE_STRING) {
		err_at(L, m, "%s: expected a string", key);
		return NULL;
	}
	free(*out);
	*out = xstrdup(config_setting_get_string(m));
	return m;
}

/* A duration: integer milliseconds or a string with a unit.  With
 * allow_empty, "" keeps the default.  min_ms is the smallest value. */
static const config_setting_t *
get_duration(struct loader *L, const config_setting_t *g, const char *key,
             bool allow_empty, uint64_t min_ms, uint64_t *out)
{
	const config_setting_t *m = config_setting_get_member(g, key);
	const char *err;
	uint64_t v;

	if (m == NULL)
		return NULL;
	if (is_int(m)) {
		long long iv = config_setting_get_int64(m);
		if (iv < 0 || (uint64_t)iv > LB_DURATION_MAX_MS) {
			err_at(L, m, "%s: bad duration %lld: out of range", key,
			       iv);
			return NULL;
		}
		v = (uint64_t)iv;
	} else if (config_setting_type(m) == CONFIG_TYPE_STRING) {
		const char *s = config_setting_get_string(m);
		if (allow_empty && *s == '\0')
			return NULL;
		if (parse_duration(s, &v, &err) < 0) {
			err_at(L, m, "%s: bad duration \"%s\": %s", key, s,
			       err);
			return NULL;
		}
	} else {
		err_at(L, m,
		       "%s: bad duration: expected milliseconds or a string "
		       "such as \"5s\"",
		       key);
		return NULL;
	}
	if (v < min_ms) {
		err_at(L, m, "%s: duration must be at least %llums", key,
		       (unsigned long long)min_ms);
		return NULL;
	}
	*out = v;
	return m;
}

/* A string from a fixed set; returns its index in *out. */
static const config_setting_t *
get_enum(struct loader *L, const config_setting_t *g, const char *key,
         const char *const *names, int *out)
{
	const config_setting_t *m = config_setting_get_member(g, key);
	const char *s;
	char choices[256] = "";

	if (m == NULL)
		return NULL;
	if (config_setting_type(m) == CONFIG_TYPE_STRING) {
		s = config_setting_get_string(m);
		for (int i = 0; names[i] != NULL; i++)
			if (strcmp(names[i], s) == 0) {
				*out = i;
				return m;
			}
	}
	for (int i = 0; names[i] != NULL; i++) {
		if (i > 0)
			strncat(choices, " | ",
			        sizeof(choices) - strlen(choices) - 1);
		strncat(choices, names[i],
		        sizeof(choices) - strlen(choices) - 1);
	}
	err_at(L, m, "%s: expected one of %s", key, choices);
	return NULL;
}

static bool
resolve_into(struct loader *L, const config_setting_t *m, const char *key,
             const char *text, struct cfg_addr *a)
{
	const char *err;

	a->text = xstrdup(text);
	if (resolve_address(text, &a->ss, &a->len, &err) < 0) {
		err_at(L, m, "%s: cannot use address \"%s\": %s", key, text,
		       err);
		return false;
	}
	return true;
}

static const char *const proxy_names[] = {"none", "v1", "v2", NULL};

/* A bare IPv4 or IPv6 address (no port) into ss with port 0. */
static int
parse_source_ip(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

/* --- global ------------------------------------------------------------ */

static void
load_log(struct loader *L, const config_setting_t *g, struct cfg_log *lg)
{
	const config_setting_t *m;
	char *s = NULL;

	if (!config_setting_is_group(g)) {
		err_at(L, g, "log: expected a group { ... }");
		return;
	}
	check_keys(L, g, "global.log", log_keys);
	get_bool(L, g, "syslog", &lg->syslog);
	get_bool(L, g, "sessions", &lg->sessions);
	get_string(L, g, "ident", &lg->ident);
	if ((m = get_string(L, g, "facility", &s)) != NULL) {
		int f = log_facility_from_name(s);
		if (f < 0)
			err_at(L, m,
			       "facility: unknown syslog facility \"%s\" "
			       "(e.g. local0-local7, mail, daemon)",
			       s);
		else
			lg->facility = f;
		free(s);
		s = NULL;
	}
	if ((m = get_string(L, g, "level", &s)) != NULL) {
		int lv = log_level_from_name(s);
		if (lv < 0)
			err_at(L, m,
			       "level: unknown log level \"%s\" "
			       "(emerg alert crit err warning notice info "
			       "debug)",
			       s);
		else
			lg->level = lv;
		free(s);
	}
}

bool
cfg_is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *in =
	    (const struct sockaddr_in *)(const void *)ss;
	const struct sockaddr_in6 *in6 =
	    (const struct sockaddr_in6 *)(const void *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		        in6->sin6_addr.s6_addr[12] == 127);
	return false;
}

/* global.stats_listen and global.stats_auth: the address must resolve,
 * the credentials be "user:password", and anything but loopback needs
 * them (the page shows the whole cluster). */
static void
load_stats(struct loader *L, const config_setting_t *g, struct cfg_global *gl)
{
	const config_setting_t *lm = NULL, *am = NULL;
	const char *a, *colon;
	bool addr_ok;

	/* g is NULL without a global group: the defaults. */
	if (g != NULL &&
	    (lm = get_string(L, g, "stats_listen", &gl->stats_listen)) != NULL)
		gl->stats_listen_set = true;
	if (g != NULL)
		am = get_string(L, g, "stats_auth", &gl->stats_auth);
	a = gl->stats_auth;
	if (am != NULL && a[0] != '\0') {
		colon = strchr(a, ':');
		if (colon == NULL || colon == a || colon[1] == '\0')
			err_at(L, am,
			       "stats_auth: expected \"user:password\" (a "
			       "user name without ':' and a password, both "
			       "not empty)");
		else if (strlen(a) > 255)
			err_at(L, am, "stats_auth: longer than 255 bytes");
		else
			for (const char *p = a; *p != '\0'; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f) {
					err_at(L, am,
					       "stats_auth: control characters "
					       "are not allowed");
					break;
				}
	}
	if (gl->stats_listen[0] == '\0') {
		if (a[0] != '\0')
			warn_at(L, am,
			        "stats_auth has no effect: stats_listen is "
			        "\"\" (no status page)");
		return;
	}
	addr_ok = resolve_into(L, lm, "stats_listen", gl->stats_listen,
	                       &gl->stats_addr);
	if (!addr_ok)
		gl->stats_addr.len = 0;
	else if (a[0] == '\0' && !cfg_is_loopback(&gl->stats_addr.ss))
		err_at(L, lm,
		       "stats_listen: %s is not a loopback address: set "
		       "stats_auth = \"user:password\" (HTTP basic "
		       "authentication) to serve the status page there",
		       gl->stats_listen);
}

static void
load_global(struct loader *L, const config_setting_t *g)
{
	struct cfg_global *gl = &L->cfg->global;
	const config_setting_t *m;

	if (!config_setting_is_group(g)) {
		err_at(L, g, "global: expected a group { ... }");
		return;
	}
	check_keys(L, g, "global", global_keys);
	get_int(L, g, "maxconn", 1, LB_MAXCONN_MAX, &gl->maxconn);
	get_bool(L, g, "daemon", &gl->daemon);
	if ((m = get_string(L, g, "pidfile", &gl->pidfile)) != NULL &&
	    gl->pidfile[0] != '/')
		err_at(L, m, "pidfile: must be an absolute path");
	/* Looked up at start (exit 3 when missing), not here: -c may run
	 * on another machine. */
	get_string(L, g, "user", &gl->user);
	get_string(L, g, "group", &gl->group);
	if ((m = get_string(L, g, "chroot", &gl->chroot)) != NULL &&
	    gl->chroot[0] != '\0' && gl->chroot[0] != '/')
		err_at(L, m, "chroot: must be an absolute path");
	get_int(L, g, "workers", 0, 1024, &gl->workers);
	get_duration(L, g, "grace", false, 0, &gl->grace_ms);
	if ((m = get_string(L, g, "control_socket", &gl->control_socket)) !=
	    NULL) {
		gl->control_socket_set = true;
		if (gl->control_socket[0] != '\0' &&
		    gl->control_socket[0] != '/')
			err_at(L, m,
			       "control_socket: must be an absolute path "
			       "(or \"\" for none)");
	}
	if ((m = get_string(L, g, "health_log", &gl->health_log)) != NULL) {
		gl->health_log_set = true;
		if (gl->health_log[0] != '\0' && gl->health_log[0] != '/')
			err_at(L, m,
			       "health_log: must be an absolute path (or "
			       "\"\" for syslog only)");
	}
	if ((m = get_string(L, g, "state_file", &gl->state_file)) != NULL) {
		gl->state_file_set = true;
		if (gl->state_file[0] != '\0' &&
		    (gl->state_file[0] != '/' ||
		     gl->state_file[strlen(gl->state_file) - 1] == '/'))
			err_at(L, m,
			       "state_file: must be an absolute path to a file "
			       "(or \"\" for none)");
	}
	load_stats(L, g, gl);
	if ((m = config_setting_get_member(g, "log")) != NULL)
		load_log(L, m, &gl->log);
}

/* --- frontends ---------------------------------------------------------- */

static bool
valid_reply(const char *s)
{
	if (*s == '\0')
		return true;
	if (strlen(s) > 510)
		return false;
	if (!(s[0] == '4' || s[0] == '5') || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || !(s[3] == '\0' || s[3] == ' '))
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '\r' || *p == '\n' || (unsigned char)*p < 0x20)
			return false;
	return true;
}

/* A reply the balancer sends itself (unavailable_reply, deny_reply,
 * client_limits.reply). */
static void
get_reply(struct loader *L, const config_setting_t *g, const char *key,
          char **out)
{
	const config_setting_t *m = get_string(L, g, key, out);

	if (m != NULL && !valid_reply(*out))
		err_at(L, m,
		       "%s: must be \"\" or one SMTP reply line starting with "
		       "a 4xx or 5xx code (at most 510 characters)",
		       key);
}

static void
load_binds(struct loader *L, const config_setting_t *m, struct cfg_frontend *fe)
{
	int t = config_setting_type(m);

	if (t == CONFIG_TYPE_STRING) {
		fe->binds = xcalloc(1, sizeof(*fe->binds));
		fe->nbinds = 1;
		resolve_into(L, m, "bind", config_setting_get_string(m),
		             &fe->binds[0]);
		return;
	}
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		err_at(L, m,
		       "bind: expected an address string or a list of "
		       "them");
		return;
	}
	if (config_setting_length(m) == 0) {
		err_at(L, m, "bind: empty list");
		return;
	}
	fe->nbinds = (size_t)config_setting_length(m);
	fe->binds = xcalloc(fe->nbinds, sizeof(*fe->binds));
	for (size_t i = 0; i < fe->nbinds; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(m, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			err_at(L, e, "bind: expected an address string");
			fe->binds[i].text = xstrdup("");
			continue;
		}
		resolve_into(L, e, "bind", config_setting_get_string(e),
		             &fe->binds[i]);
	}
}

/* A list of CIDR strings (allow, deny, client_limits.exempt): an array
 * [ ] or a list ( ); a bare address is one host. */
static void
load_cidrs(struct loader *L, const config_setting_t *m, const char *key,
           struct cidr_list *out)
{
	int t = config_setting_type(m);
	size_t n;

	free(out->v);
	out->v = NULL;
	out->n = 0;
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		err_at(L, m,
		       "%s: expected a list of CIDR strings, such as "
		       "[ \"192.0.2.0/24\", \"2001:db8::/32\" ]",
		       key);
		return;
	}
	n = (size_t)config_setting_length(m);
	if (n == 0)
		return;
	out->v = xcalloc(n, sizeof(*out->v));
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(m, (unsigned)i);
		const char *text, *err;
		bool host_bits = false;
		char net[INET6_ADDRSTRLEN + 5];

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			err_at(L, e, "%s: expected a CIDR string", key);
			continue;
		}
		text = config_setting_get_string(e);
		if (cidr_parse(text, &out->v[out->n], &host_bits, &err) < 0) {
			err_at(L, e, "%s: bad CIDR \"%s\": %s", key, text, err);
			continue;
		}
		if (host_bits) {
			cidr_format(&out->v[out->n], net, sizeof(net));
			warn_at(L, e,
			        "%s: \"%s\" has bits set after the prefix: "
			        "read as %s",
			        key, text, net);
		}
		out->n++;
	}
}

static void
limits_defaults(struct cfg_client_limits *cl)
{
	static const char *const exempt[] = {"127.0.0.0/8", "::1/128"};

	cl->period_ms = 10 * 1000;
	cl->prefix4 = 32;
	cl->prefix6 = 64;
	cl->table_size = 100000;
	cl->reply = xstrdup(DEFAULT_LIMIT_REPLY);
	cl->exempt.v = xcalloc(2, sizeof(*cl->exempt.v));
	for (size_t i = 0; i < 2; i++) {
		const char *err;
		bool host_bits;

		if (cidr_parse(exempt[i], &cl->exempt.v[cl->exempt.n],
		               &host_bits, &err) == 0)
			cl->exempt.n++;
	}
}

static void
load_limits(struct loader *L, const config_setting_t *g,
            struct cfg_client_limits *cl)
{
	const config_setting_t *m;

	if (!config_setting_is_group(g)) {
		err_at(L, g, "client_limits: expected a group { ... }");
		return;
	}
	check_keys(L, g, "client_limits", limits_keys);
	get_int(L, g, "maxconn", 0, LB_MAXCONN_MAX, &cl->maxconn);
	get_int(L, g, "rate", 0, LB_RATE_MAX, &cl->rate);
	get_duration(L, g, "period", false, 100, &cl->period_ms);
	get_int(L, g, "prefix4", 0, 32, &cl->prefix4);
	get_int(L, g, "prefix6", 0, 128, &cl->prefix6);
	get_reply(L, g, "reply", &cl->reply);
	if ((m = config_setting_get_member(g, "exempt")) != NULL)
		load_cidrs(L, m, "exempt", &cl->exempt);
	get_int(L, g, "table_size", 1, LB_TABLE_SIZE_MAX, &cl->table_size);
}

static void
load_frontend(struct loader *L, const config_setting_t *g,
              struct cfg_frontend *fe)
{
	const config_setting_t *m;

	fe->line = src_line(g);
	limits_defaults(&fe->limits);
	fe->deny_reply = xstrdup(DEFAULT_DENY_REPLY);
	fe->timeout_client_ms = 60 * 1000;
	fe->backlog = 1024;
	fe->unavailable_reply = xstrdup(DEFAULT_UNAVAILABLE);
	fe->name = xstrdup("");
	fe->backend_name = xstrdup("");
	if (!config_setting_is_group(g)) {
		err_at(L, g, "frontends: each frontend is a group { ... }");
		return;
	}
	check_keys(L, g, "a frontend", frontend_keys);
	if (config_setting_get_member(g, "name") == NULL)
		err_at(L, g, "frontend: missing required key 'name'");
	else if (get_string(L, g, "name", &fe->name) != NULL &&
	         fe->name[0] == '\0')
		err_at(L, config_setting_get_member(g, "name"),
		       "name: must not be empty");
	if ((m = config_setting_get_member(g, "bind")) != NULL)
		load_binds(L, m, fe);
	else
		err_at(L, g, "frontend '%s': missing required key 'bind'",
		       fe->name);
	get_bool(L, g, "transparent", &fe->transparent);
	if (config_setting_get_member(g, "backend") == NULL)
		err_at(L, g, "frontend '%s': missing required key 'backend'",
		       fe->name);
	else
		get_string(L, g, "backend", &fe->backend_name);
	get_duration(L, g, "timeout_client", false, 1, &fe->timeout_client_ms);
	get_int(L, g, "maxconn", 0, LB_MAXCONN_MAX, &fe->maxconn);
	get_int(L, g, "backlog", 1, 65535, &fe->backlog);
	get_reply(L, g, "unavailable_reply", &fe->unavailable_reply);
	if ((m = config_setting_get_member(g, "client_limits")) != NULL)
		load_limits(L, m, &fe->limits);
	if ((m = config_setting_get_member(g, "allow")) != NULL)
		load_cidrs(L, m, "allow", &fe->allow);
	if ((m = config_setting_get_member(g, "deny")) != NULL)
		load_cidrs(L, m, "deny", &fe->deny);
	get_reply(L, g, "deny_reply", &fe->deny_reply);
}

/* --- backends ----------------------------------------------------------- */

static void
load_check(struct loader *L, const config_setting_t *g, struct cfg_check *c)
{
	static const char *const types[] = {"tcp", "smtp", NULL};
	int type = CHECK_SMTP;
	const config_setting_t *m;

	c->line = src_line(g);
	if (!config_setting_is_group(g)) {
		err_at(L, g, "health_check: expected a group { ... }");
		return;
	}
	check_keys(L, g, "health_check", health_check_keys);
	if (get_enum(L, g, "type", types, &type) != NULL)
		c->type = (enum check_type)type;
	get_string(L, g, "helo", &c->helo);
	get_bool(L, g, "ehlo", &c->ehlo);
	if ((m = get_bool(L, g, "starttls", &c->starttls)) != NULL &&
	    c->starttls && c->type != CHECK_SMTP)
		err_at(L, m, "starttls: needs type = \"smtp\"");
	get_bool(L, g, "tls_verify", &c->tls_verify);
	get_string(L, g, "tls_ca_file", &c->tls_ca_file);
	get_string(L, g, "tls_servername", &c->tls_servername);
	get_duration(L, g, "cert_expiry_warn", false, 0,
	             &c->cert_expiry_warn_ms);
	get_duration(L, g, "interval", false, 100, &c->interval_ms);
	get_duration(L, g, "fastinter", true, 100, &c->fastinter_ms);
	get_duration(L, g, "downinter", true, 100, &c->downinter_ms);
	get_duration(L, g, "timeout", true, 1, &c->timeout_ms);
	get_int(L, g, "rise", 1, 1000, &c->rise);
	get_int(L, g, "fall", 1, 1000, &c->fall);
	if ((c->tls_verify || c->tls_ca_file[0] != '\0' ||
	     c->tls_servername[0] != '\0') &&
	    !c->starttls)
		warn_at(
		    L, g,
		    "health_check: tls_verify, tls_ca_file and "
		    "tls_servername have no effect without starttls = true");
	if (c->tls_ca_file[0] != '\0' && access(c->tls_ca_file, R_OK) < 0)
		err_at(L, config_setting_get_member(g, "tls_ca_file"),
		       "tls_ca_file: cannot read %s: %s", c->tls_ca_file,
		       strerror(errno));
}

/* The agent check's address: the server's host on its agent port (its
 * own agent_port, else the backend's agent.port); len 0 when off. */
static void
agent_address(struct cfg_server *s, const struct cfg_backend *be)
{
	int port = s->agent_port != 0 ? s->agent_port : be->agent.port;
	struct sockaddr_storage *ss = &s->agent_addr.ss;

	s->agent_addr.len = 0;
	if (port == 0 || s->addr.len == 0)
		return;
	memcpy(ss, &s->addr.ss, s->addr.len);
	s->agent_addr.len = s->addr.len;
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)(void *)ss)->sin_port =
		    htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)(void *)ss)->sin6_port =
		    htons((uint16_t)port);
}

static void
load_agent(struct loader *L, const config_setting_t *g, struct cfg_agent *a)
{
	const config_setting_t *m;

	a->line = src_line(g);
	if (!config_setting_is_group(g)) {
		err_at(L, g, "agent: expected a group { ... }");
		return;
	}
	check_keys(L, g, "agent", agent_keys);
	get_int(L, g, "port", 0, 65535, &a->port);
	get_duration(L, g, "interval", false, 100, &a->interval_ms);
	get_duration(L, g, "timeout", false, 1, &a->timeout_ms);
	if ((m = get_string(L, g, "send", &a->send)) != NULL &&
	    strlen(a->send) > 1024)
		err_at(L, m, "send: at most 1024 bytes");
	a->send_len = strlen(a->send);
}

static void
load_server(struct loader *L, const config_setting_t *g,
            const struct cfg_backend *be, struct cfg_server *s)
{
	const config_setting_t *m, *mmin;
	int pp = PP_NONE;

	s->line = src_line(g);
	s->name = xstrdup("");
	s->weight = 1;
	s->check = be->has_check;
	s->proxy_protocol = be->proxy_protocol;
	if (!config_setting_is_group(g)) {
		err_at(L, g, "servers: each server is a group { ... }");
		return;
	}
	check_keys(L, g, "a server", server_keys);
	if (config_setting_get_member(g, "name") == NULL)
		err_at(L, g, "server: missing required key 'name'");
	else if (get_string(L, g, "name", &s->name) != NULL &&
	         s->name[0] == '\0')
		err_at(L, config_setting_get_member(g, "name"),
		       "name: must not be empty");
	if ((m = config_setting_get_member(g, "address")) == NULL)
		err_at(L, g, "server%s%s%s: missing required key 'address'",
		       s->name[0] ? " '" : "", s->name, s->name[0] ? "'" : "");
	else if (config_setting_type(m) != CONFIG_TYPE_STRING)
		err_at(L, m, "address: expected a string \"HOST:PORT\"");
	else
		resolve_into(L, m, "address", config_setting_get_string(m),
		             &s->addr);
	get_int(L, g, "weight", 0, LB_WEIGHT_MAX, &s->weight);
	get_int(L, g, "maxconn", 0, LB_MAXCONN_MAX, &s->maxconn);
	mmin = get_int(L, g, "minconn", 0, LB_MAXCONN_MAX, &s->minconn);
	if (mmin != NULL && s->minconn > 0 && s->maxconn == 0)
		warn_at(L, mmin,
		        "minconn: has no effect without maxconn (unlimited)");
	else if (mmin != NULL && s->minconn > s->maxconn)
		err_at(L, mmin, "minconn: %d is larger than maxconn %d",
		       s->minconn, s->maxconn);
	if ((m = get_bool(L, g, "check", &s->check)) != NULL && s->check &&
	    !be->has_check)
		err_at(L, m,
		       "check: the backend has no health_check group saying "
		       "how to check");
	get_bool(L, g, "backup", &s->backup);
	get_bool(L, g, "disabled", &s->disabled);
	if (get_enum(L, g, "proxy_protocol", proxy_names, &pp) != NULL)
		s->proxy_protocol = (enum proxy_proto)pp;
	get_int(L, g, "agent_port", 0, 65535, &s->agent_port);
	agent_address(s, be);
	if (be->source_mode == SRC_ADDR && s->addr.len > 0 &&
	    s->addr.ss.ss_family != be->source_ss.ss_family)
		err_at(L, config_setting_get_member(g, "address"),
		       "address: %s is not of the family of the backend's "
		       "source address %s",
		       s->addr.text, be->source);
}

static void
load_backend(struct loader *L, const config_setting_t *g,
             struct cfg_backend *be, int *timeout_server_line)
{
	static const char *const algos[] = {"roundrobin", "leastconn", "source",
	                                    NULL};
	static const char *const md[] = {"none", "shutdown-sessions", NULL};
	const config_setting_t *m;
	int v;

	be->line = src_line(g);
	be->name = xstrdup("");
	be->source = xstrdup("");
	be->timeout_connect_ms = 5 * 1000;
	be->timeout_server_ms = 60 * 1000;
	be->timeout_queue_ms = 5 * 1000;
	be->retries = 3;
	be->greeting_gate = true;
	be->timeout_greeting_ms = 30 * 1000;
	be->error_limit = 3;
	be->agent.interval_ms = 5 * 1000;
	be->agent.timeout_ms = 2 * 1000;
	be->agent.send = xstrdup("");
	be->check.type = CHECK_SMTP;
	be->check.helo = xstrdup("");
	be->check.tls_ca_file = xstrdup("");
	be->check.tls_servername = xstrdup("");
	be->check.cert_expiry_warn_ms = 14ULL * 86400 * 1000;
	be->check.interval_ms = 2000;
	be->check.rise = 2;
	be->check.fall = 3;
	*timeout_server_line = be->line;
	if (!config_setting_is_group(g)) {
		err_at(L, g, "backends: each backend is a group { ... }");
		return;
	}
	check_keys(L, g, "a backend", backend_keys);
	if (config_setting_get_member(g, "name") == NULL)
		err_at(L, g, "backend: missing required key 'name'");
	else if (get_string(L, g, "name", &be->name) != NULL &&
	         be->name[0] == '\0')
		err_at(L, config_setting_get_member(g, "name"),
		       "name: must not be empty");
	if (get_enum(L, g, "balance", algos, &v) != NULL)
		be->balance = (enum lb_algo)v;
	get_duration(L, g, "timeout_connect", false, 1,
	             &be->timeout_connect_ms);
	if ((m = get_duration(L, g, "timeout_server", false, 1,
	                      &be->timeout_server_ms)) != NULL)
		*timeout_server_line = src_line(m);
	get_duration(L, g, "timeout_queue", false, 0, &be->timeout_queue_ms);
	get_int(L, g, "retries", 0, LB_RETRIES_MAX, &be->retries);
	get_int(L, g, "fullconn", 0, LB_MAXCONN_MAX, &be->fullconn);
	if ((m = get_string(L, g, "source", &be->source)) != NULL &&
	    be->source[0] != '\0') {
		if (strcmp(be->source, "clientip") == 0)
			be->source_mode = SRC_CLIENTIP;
		else if (parse_source_ip(be->source, &be->source_ss,
		                         &be->source_len) == 0)
			be->source_mode = SRC_ADDR;
		else
			err_at(L, m,
			       "source: expected \"\", \"clientip\" or an IP "
			       "address, not \"%s\"",
			       be->source);
	}
	if (get_enum(L, g, "proxy_protocol", proxy_names, &v) != NULL)
		be->proxy_protocol = (enum proxy_proto)v;
	if (get_enum(L, g, "on_marked_down", md, &v) != NULL) {
		be->on_marked_down = (enum marked_down)v;
	}
	get_bool(L, g, "greeting_gate", &be->greeting_gate);
	get_duration(L, g, "timeout_greeting", false, 1,
	             &be->timeout_greeting_ms);
	get_int(L, g, "error_limit", 0, 1000, &be->error_limit);
	get_duration(L, g, "slowstart", false, 0, &be->slowstart_ms);
	if ((m = config_setting_get_member(g, "agent")) != NULL)
		load_agent(L, m, &be->agent);
	if ((m = config_setting_get_member(g, "health_check")) != NULL) {
		be->has_check = true;
		load_check(L, m, &be->check);
	}
	m = config_setting_get_member(g, "servers");
	if (m == NULL || config_setting_length(m) == 0) {
		if (m != NULL && !config_setting_is_aggregate(m))
			err_at(L, m, "servers: expected a list ( { ... } )");
		else
			warn_at(L, m != NULL ? m : g,
			        "backend '%s' has no servers: every client "
			        "gets unavailable_reply",
			        be->name);
		return;
	}
	if (!config_setting_is_list(m) && !config_setting_is_array(m)) {
		err_at(L, m, "servers: expected a list ( { ... } )");
		return;
	}
	be->nservers = (size_t)config_setting_length(m);
	be->servers = xcalloc(be->nservers, sizeof(*be->servers));
	for (size_t i = 0; i < be->nservers; i++) {
		const config_setting_t *sg =
		    config_setting_get_elem(m, (unsigned)i);
		load_server(L, sg, be, &be->servers[i]);
		if (be->servers[i].agent_addr.len > 0)
			be->has_agent = true;
		for (size_t j = 0; j < i; j++)
			if (be->servers[i].name[0] != '\0' &&
			    strcmp(be->servers[i].name, be->servers[j].name) ==
			        0)
				err_at(L, sg,
				       "duplicate server name '%s' in backend "
				       "'%s' (first at line %d)",
				       be->servers[i].name, be->name,
				       be->servers[j].line);
	}
}

/* --- whole file ---------------------------------------------------------- */

static void
set_global_defaults(struct cfg_global *g)
{
	g->maxconn = 6000;
	g->daemon = true;
	g->pidfile = xstrdup("/run/load-balancer.pid");
	g->user = xstrdup("");
	g->group = xstrdup("");
	g->chroot = xstrdup("");
	g->workers = 0;
	g->grace_ms = 10 * 1000;
	g->control_socket = xstrdup("/run/load-balancer.sock");
	g->log.syslog = true;
	g->log.facility = LOG_LOCAL0;
	g->log.ident = xstrdup(LB_PROGRAM);
	g->log.level = LOG_INFO;
	g->log.sessions = true;
	g->health_log = xstrdup("/var/log/load-balancer/health.log");
	g->state_file = xstrdup("/var/lib/load-balancer/state");
	g->stats_listen = xstrdup(LB_STATS_LISTEN_DEFAULT);
	g->stats_auth = xstrdup("");
}

static bool
addr_port_is(const struct cfg_addr *a, uint16_t port)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;

	if (a->len == 0)
		return false;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)
		                 ->sin_port) == port;
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)
		                 ->sin6_port) == port;
	return false;
}

static void
load_root(struct loader *L, const config_t *lc)
{
	const config_setting_t *root = config_root_setting(lc);
	const config_setting_t *m, *fl, *bl;
	struct cfg *cfg = L->cfg;
	int *ts_lines = NULL;
	const config_setting_t **fe_settings = NULL;

	check_keys(L, root, "the top level", root_keys);
	if ((m = config_setting_get_member(root, "global")) != NULL)
		load_global(L, m);
	else
		load_stats(L, NULL, &cfg->global);

	bl = config_setting_get_member(root, "backends");
	if (bl != NULL && !config_setting_is_list(bl) &&
	    !config_setting_is_array(bl)) {
		err_at(L, bl, "backends: expected a list ( { ... } )");
		bl = NULL;
	}
	if (bl == NULL || config_setting_length(bl) == 0)
		warn_at(L, bl, "no backends defined");
	if (bl != NULL && config_setting_length(bl) > 0) {
		cfg->nbackends = (size_t)config_setting_length(bl);
		cfg->backends = xcalloc(cfg->nbackends, sizeof(*cfg->backends));
		ts_lines = xcalloc(cfg->nbackends, sizeof(int));
		for (size_t i = 0; i < cfg->nbackends; i++) {
			const config_setting_t *g =
			    config_setting_get_elem(bl, (unsigned)i);
			load_backend(L, g, &cfg->backends[i], &ts_lines[i]);
			for (size_t j = 0; j < i; j++)
				if (cfg->backends[i].name[0] != '\0' &&
				    strcmp(cfg->backends[i].name,
				           cfg->backends[j].name) == 0)
					err_at(L, g,
					       "duplicate backend name '%s' "
					       "(first at line %d)",
					       cfg->backends[i].name,
					       cfg->backends[j].line);
		}
	}

	fl = config_setting_get_member(root, "frontends");
	if (fl != NULL && !config_setting_is_list(fl) &&
	    !config_setting_is_array(fl)) {
		err_at(L, fl, "frontends: expected a list ( { ... } )");
		fl = NULL;
	}
	if (fl == NULL || config_setting_length(fl) == 0)
		warn_at(L, fl, "no frontends defined: nothing to listen on");
	if (fl != NULL && config_setting_length(fl) > 0) {
		cfg->nfrontends = (size_t)config_setting_length(fl);
		cfg->frontends =
		    xcalloc(cfg->nfrontends, sizeof(*cfg->frontends));
		fe_settings = xcalloc(cfg->nfrontends, sizeof(*fe_settings));
		for (size_t i = 0; i < cfg->nfrontends; i++) {
			const config_setting_t *g =
			    config_setting_get_elem(fl, (unsigned)i);
			struct cfg_frontend *fe = &cfg->frontends[i];
			const config_setting_t *bm;

			fe_settings[i] = g;
			load_frontend(L, g, fe);
			for (size_t j = 0; j < i; j++)
				if (fe->name[0] != '\0' &&
				    strcmp(fe->name, cfg->frontends[j].name) ==
				        0)
					err_at(L, g,
					       "duplicate frontend name '%s' "
					       "(first at line %d)",
					       fe->name,
					       cfg->frontends[j].line);
			bm = config_setting_is_group(g)
			         ? config_setting_get_member(g, "backend")
			         : NULL;
			if (bm == NULL || fe->backend_name[0] == '\0')
				continue;
			fe->backend = cfg->nbackends;
			for (size_t b = 0; b < cfg->nbackends; b++)
				if (strcmp(cfg->backends[b].name,
				           fe->backend_name) == 0)
					fe->backend = b;
			if (fe->backend == cfg->nbackends)
				err_at(L, bm, "backend: no backend named '%s'",
				       fe->backend_name);
		}
	}

	/* Derived values and cross-checks, once everything is known. */
	for (size_t b = 0; b < cfg->nbackends; b++) {
		struct cfg_backend *be = &cfg->backends[b];
		long long sum = 0;

		for (size_t f = 0; f < cfg->nfrontends; f++) {
			const struct cfg_frontend *fe = &cfg->frontends[f];
			if (fe->backend != b || fe->backend_name[0] == '\0' ||
			    strcmp(fe->backend_name, be->name) != 0)
				continue;
			sum +=
			    fe->maxconn > 0 ? fe->maxconn : cfg->global.maxconn;
			for (size_t i = 0; i < fe->nbinds && be->greeting_gate;
			     i++) {
				if (!addr_port_is(&fe->binds[i], 465))
					continue;
				warn_line(L, fe->line,
				          "frontend '%s' listens on port 465 "
				          "(implicit TLS: the client speaks "
				          "first) but backend '%s' has "
				          "greeting_gate = true: set "
				          "greeting_gate = false there",
				          fe->name, be->name);
				break;
			}
			for (size_t i = 0; i < fe->nbinds; i++) {
				if (!addr_port_is(&fe->binds[i], 25) ||
				    be->timeout_server_ms >=
				        RFC5321_DATA_TIMEOUT_MS)
					continue;
				warn_line(
				    L, ts_lines[b],
				    "frontend '%s' listens on port 25 "
				    "but backend '%s' has timeout_server "
				    "%llums: RFC 5321 gives a server 10 "
				    "minutes to answer the end of DATA, "
				    "so a filter that scans longer would "
				    "have its session cut",
				    fe->name, be->name,
				    (unsigned long long)be->timeout_server_ms);
				break;
			}
		}
		if (be->fullconn == 0) {
			long long fc = sum / 10;
			be->fullconn = fc > 0 ? (int)fc : 1;
		}
	}
	free(ts_lines);
	free(fe_settings);
}

static void __attribute__((format(printf, 4, 5)))
err_file_line(struct loader *L, const char *file, int line, const char *fmt,
              ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(L->diag, false, file != NULL ? file : L->name,
	          line > 0 ? line : 1, fmt, ap);
	va_end(ap);
}

/* Stable insertion sort of the messages added since first, by line. */
static void
sort_diag(struct cfg_diag *d, size_t first)
{
	for (size_t i = first + 1; i < d->n; i++) {
		char *m = d->msgs[i];
		bool w = d->is_warning[i];
		int line = d->lines[i];
		size_t j = i;

		while (j > first && d->lines[j - 1] > line) {
			d->msgs[j] = d->msgs[j - 1];
			d->is_warning[j] = d->is_warning[j - 1];
			d->lines[j] = d->lines[j - 1];
			j--;
		}
		d->msgs[j] = m;
		d->is_warning[j] = w;
		d->lines[j] = line;
	}
}

static struct cfg *
load(config_t *lc, bool parsed, const char *name, struct cfg_diag *diag)
{
	struct loader L = {diag, name, NULL};
	size_t first = diag->n;

	L.cfg = xcalloc(1, sizeof(*L.cfg));
	L.cfg->file = xstrdup(name);
	set_global_defaults(&L.cfg->global);
	if (!parsed) {
		if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
			err_file_line(&L, name, 0, "cannot read file: %s",
			              config_error_text(lc));
		else
			err_file_line(&L, config_error_file(lc),
			              config_error_line(lc), "syntax error: %s",
			              config_error_text(lc));
	} else
		load_root(&L, lc);
	config_destroy(lc);
	sort_diag(diag, first);
	if (diag->nerrors > 0) {
		cfg_free(L.cfg);
		return NULL;
	}
	return L.cfg;
}

struct cfg *
cfg_load_file(const char *path, struct cfg_diag *diag)
{
	config_t lc;
	FILE *fp;
	bool ok;

	config_init(&lc);
	/* Read through a stream so that a missing file reports errno. */
	if ((fp = fopen(path, "r")) == NULL) {
		struct loader L = {diag, path, NULL};
		err_file_line(&L, path, 0, "cannot open file: %s",
		              strerror(errno));
		config_destroy(&lc);
		return NULL;
	}
	fclose(fp);
	ok = config_read_file(&lc, path) == CONFIG_TRUE;
	return load(&lc, ok, path, diag);
}

struct cfg *
cfg_load_string(const char *text, const char *name, struct cfg_diag *diag)
{
	config_t lc;
	bool ok;

	config_init(&lc);
	ok = config_read_string(&lc, text) == CONFIG_TRUE;
	return load(&lc, ok, name, diag);
}

static void
free_addr(struct cfg_addr *a)
{
	free(a->text);
}

void
cfg_free(struct cfg *cfg)
{
	struct cfg_global *g;

	if (cfg == NULL)
		return;
	g = &cfg->global;
	free(g->pidfile);
	free(g->user);
	free(g->group);
	free(g->chroot);
	free(g->control_socket);
	free(g->log.ident);
	free(g->health_log);
	free(g->state_file);
	free(g->stats_listen);
	free_addr(&g->stats_addr);
	free(g->stats_auth);
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		struct cfg_frontend *fe = &cfg->frontends[i];
		for (size_t j = 0; j < fe->nbinds; j++)
			free_addr(&fe->binds[j]);
		free(fe->binds);
		free(fe->name);
		free(fe->backend_name);
		free(fe->unavailable_reply);
		free(fe->limits.reply);
		free(fe->limits.exempt.v);
		free(fe->allow.v);
		free(fe->deny.v);
		free(fe->deny_reply);
	}
	free(cfg->frontends);
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct cfg_backend *be = &cfg->backends[i];
		for (size_t j = 0; j < be->nservers; j++) {
			free(be->servers[j].name);
			free_addr(&be->servers[j].addr);
			free_addr(&be->servers[j].agent_addr);
		}
		free(be->servers);
		free(be->name);
		free(be->source);
		free(be->agent.send);
		free(be->check.helo);
		free(be->check.tls_ca_file);
		free(be->check.tls_servername);
	}
	free(cfg->backends);
	free(cfg->file);
	free(cfg);
}

const char *
cfg_algo_name(enum lb_algo algo)
{
	switch (algo) {
	case LB_ROUNDROBIN:
		return "roundrobin";
	case LB_LEASTCONN:
		return "leastconn";
	case LB_SOURCE:
		return "source";
	}
	return "?";
}

const struct cfg_backend *
cfg_find_backend(const struct cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return &cfg->backends[i];
	return NULL;
}
