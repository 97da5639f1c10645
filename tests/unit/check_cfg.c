/* Unit tests for cfg.c: loading, defaults and every class of error, each
 * with its exact "FILE:LINE:" (load-balancer.conf(5), SYNTAX). */
#include "config.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include <check.h>

#include "common.h"
#include "cfg.h"

#define NAME "test.conf"
#define DEFAULT_REPLY                                                          \
	"421 4.3.2 Service not available, closing transmission channel"

/* A frontend and a backend that are valid on their own, for tests that
 * are about another part of the file. */
#define FE_OK                                                                  \
	"frontends = ( { name = \"in\"; bind = \"127.0.0.1:2525\";"            \
	" backend = \"filters\"; } );\n"
#define BE_OK                                                                  \
	"backends = ( { name = \"filters\"; timeout_server = \"10m\";"         \
	" servers = ( { name = \"f1\"; address = \"127.0.0.1:10025\"; } );"    \
	" } );\n"

/* --- helpers ------------------------------------------------------------ */

/* All messages, one per line, for failure reports. */
static const char *
all_msgs(const struct cfg_diag *d)
{
	static char buf[8192];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->n && off < sizeof(buf); i++) {
		int r = snprintf(buf + off, sizeof(buf) - off, "\n  [%s] %s",
		                 d->is_warning[i] ? "W" : "E", d->msgs[i]);
		if (r < 0)
			break;
		off += (size_t)r;
	}
	if (d->n == 0)
		snprintf(buf, sizeof(buf), " (none)");
	return buf;
}

/* The 1-based line of the first occurrence of needle in text; needle
 * must occur exactly once. */
static int
line_of(const char *text, const char *needle)
{
	const char *p = strstr(text, needle);
	int line = 1;

	ck_assert_msg(p != NULL, "test bug: \"%s\" not in the config", needle);
	ck_assert_msg(strstr(p + 1, needle) == NULL,
	              "test bug: \"%s\" occurs twice in the config", needle);
	for (const char *q = text; q < p; q++)
		if (*q == '\n')
			line++;
	return line;
}

static bool
has_msg_at(const struct cfg_diag *d, const char *file, int line, bool warning,
           const char *substr)
{
	char prefix[512];

	snprintf(prefix, sizeof(prefix), "%s:%d: %s", file, line,
	         warning ? "warning: " : "");
	for (size_t i = 0; i < d->n; i++) {
		if (d->is_warning[i] != warning)
			continue;
		if (strncmp(d->msgs[i], prefix, strlen(prefix)) != 0)
			continue;
		/* An error must not look like a warning. */
		if (!warning &&
		    strncmp(d->msgs[i] + strlen(prefix), "warning: ", 9) == 0)
			continue;
		if (strstr(d->msgs[i] + strlen(prefix), substr) != NULL)
			return true;
	}
	return false;
}

/* There is an error "test.conf:LINE: ...substr..." with LINE given as a
 * number. */
static void
expect_error_line(const struct cfg_diag *d, int line, const char *substr)
{
	ck_assert_msg(has_msg_at(d, NAME, line, false, substr),
	              "no error \"" NAME ":%d: ...%s...\"; messages:%s", line,
	              substr, all_msgs(d));
}

/* There is an error at the line of text that contains marker. */
static void
expect_error(const struct cfg_diag *d, const char *text, const char *marker,
             const char *substr)
{
	expect_error_line(d, line_of(text, marker), substr);
}

static void
expect_warning(const struct cfg_diag *d, const char *text, const char *marker,
               const char *substr)
{
	int line = line_of(text, marker);

	ck_assert_msg(has_msg_at(d, NAME, line, true, substr),
	              "no warning \"" NAME ":%d: warning: ...%s...\"; "
	              "messages:%s",
	              line, substr, all_msgs(d));
}

/* The text must load without errors. */
static struct cfg *
load_ok(const char *text, struct cfg_diag *d)
{
	struct cfg *cfg;

	cfg_diag_init(d);
	cfg = cfg_load_string(text, NAME, d);
	ck_assert_msg(d->nerrors == 0, "unexpected errors:%s", all_msgs(d));
	ck_assert_msg(cfg != NULL, "NULL config without errors");
	ck_assert_uint_eq(d->n, d->nerrors + d->nwarnings);
	return cfg;
}

/* The text must fail with exactly nerrors errors (0: any number). */
static void
load_bad(const char *text, struct cfg_diag *d, size_t nerrors)
{
	struct cfg *cfg;

	cfg_diag_init(d);
	cfg = cfg_load_string(text, NAME, d);
	ck_assert_msg(cfg == NULL, "loaded although it has errors:%s",
	              all_msgs(d));
	ck_assert_msg(d->nerrors > 0, "NULL config but no error");
	ck_assert_uint_eq(d->n, d->nerrors + d->nwarnings);
	if (nerrors > 0)
		ck_assert_msg(d->nerrors == nerrors,
		              "want %zu error(s), got %zu:%s", nerrors,
		              d->nerrors, all_msgs(d));
}

/* Load text that must have exactly one error, at marker's line,
 * containing substr. */
static void
one_error(const char *text, const char *marker, const char *substr)
{
	struct cfg_diag d;

	load_bad(text, &d, 1);
	expect_error(&d, text, marker, substr);
	cfg_diag_free(&d);
}

static uint16_t
port_of(const struct cfg_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

/* --- valid files and defaults -------------------------------------------- */

START_TEST(minimal_valid)
{
	static const char text[] = FE_OK BE_OK;
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_uint_eq(d.n, 0);
	ck_assert_uint_eq(cfg->nfrontends, 1);
	ck_assert_uint_eq(cfg->nbackends, 1);
	ck_assert_str_eq(cfg->frontends[0].name, "in");
	ck_assert_str_eq(cfg->frontends[0].backend_name, "filters");
	ck_assert_uint_eq(cfg->frontends[0].backend, 0);
	ck_assert_str_eq(cfg->backends[0].name, "filters");
	ck_assert_uint_eq(cfg->backends[0].nservers, 1);
	ck_assert_str_eq(cfg->backends[0].servers[0].name, "f1");
	ck_assert_str_eq(cfg->backends[0].servers[0].addr.text,
	                 "127.0.0.1:10025");
	ck_assert_int_eq(cfg->backends[0].servers[0].addr.ss.ss_family,
	                 AF_INET);
	ck_assert_uint_eq(port_of(&cfg->backends[0].servers[0].addr), 10025);
	ck_assert_ptr_eq(cfg_find_backend(cfg, "filters"), &cfg->backends[0]);
	ck_assert_ptr_null(cfg_find_backend(cfg, "nope"));
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(defaults_applied)
{
	static const char text[] =
	    "frontends = ( { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "  backend = \"filters\"; } );\n"
	    "backends = ( { name = \"filters\";\n"
	    "  servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; }"
	    " ); } );\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_frontend *fe = &cfg->frontends[0];
	const struct cfg_backend *be = &cfg->backends[0];
	const struct cfg_server *s = &be->servers[0];

	/* backend */
	ck_assert_int_eq(be->balance, LB_ROUNDROBIN);
	ck_assert_str_eq(cfg_algo_name(be->balance), "roundrobin");
	ck_assert_uint_eq(be->timeout_connect_ms, 5000);
	ck_assert_uint_eq(be->timeout_server_ms, 60000);
	ck_assert_uint_eq(be->timeout_queue_ms, 5000);
	ck_assert_int_eq(be->retries, 3);
	ck_assert_str_eq(be->source, "");
	ck_assert_int_eq(be->proxy_protocol, PP_NONE);
	ck_assert_int_eq(be->on_marked_down, MD_NONE);
	ck_assert(!be->has_check);
	/* fullconn 0: 10% of the frontends' maxconn (global 6000). */
	ck_assert_int_eq(be->fullconn, 600);
	/* server */
	ck_assert_int_eq(s->weight, 1);
	ck_assert_int_eq(s->maxconn, 0);
	ck_assert_int_eq(s->minconn, 0);
	ck_assert(!s->check);
	ck_assert(!s->backup);
	ck_assert(!s->disabled);
	ck_assert_int_eq(s->proxy_protocol, PP_NONE);
	/* frontend */
	ck_assert_uint_eq(fe->nbinds, 1);
	ck_assert(!fe->transparent);
	ck_assert_uint_eq(fe->timeout_client_ms, 60000);
	ck_assert_int_eq(fe->maxconn, 0);
	ck_assert_int_eq(fe->backlog, 1024);
	ck_assert_str_eq(fe->unavailable_reply, DEFAULT_REPLY);
	/* global */
	ck_assert_int_eq(cfg->global.maxconn, 6000);
	ck_assert(cfg->global.daemon);
	ck_assert_str_eq(cfg->global.pidfile, "/run/load-balancer.pid");
	ck_assert_int_eq(cfg->global.workers, 0);
	ck_assert_uint_eq(cfg->global.grace_ms, 10000);
	ck_assert_str_eq(cfg->global.control_socket, "/run/load-balancer.sock");
	ck_assert(cfg->global.log.syslog);
	ck_assert_int_eq(cfg->global.log.facility, LOG_LOCAL0);
	ck_assert_str_eq(cfg->global.log.ident, "load-balancer");
	ck_assert_int_eq(cfg->global.log.level, LOG_INFO);
	ck_assert(cfg->global.log.sessions);
	ck_assert_str_eq(cfg->global.health_log,
	                 "/var/log/load-balancer/health.log");
	ck_assert_str_eq(cfg->global.stats_listen, "127.0.0.1:8404");
	ck_assert(!cfg->global.stats_listen_set);
	ck_assert_uint_eq(port_of(&cfg->global.stats_addr), 8404);
	ck_assert_str_eq(cfg->global.stats_auth, "");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(values_read)
{
	static const char text[] =
	    "global = {\n"
	    "  maxconn = 2000; daemon = false;\n"
	    "  pidfile = \"/tmp/lb.pid\"; grace = \"30s\";\n"
	    "  log = { syslog = false; facility = \"mail\";"
	    " ident = \"lbx\"; level = \"debug\"; sessions = false; };\n"
	    "};\n"
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"[::1]:2525\"; backend = \"b2\";\n"
	    "    timeout_client = \"10m\"; maxconn = 500; backlog = 16;\n"
	    "    unavailable_reply = \"\"; },\n"
	    "  { name = \"in2\"; bind = \"127.0.0.1:2526\"; backend = \"b2\";\n"
	    "    unavailable_reply = \"421 4.3.0 try later\"; }\n"
	    ");\n"
	    "backends = (\n"
	    "  { name = \"b1\"; balance = \"source\";\n"
	    "    servers = ( { name = \"x\"; address = \"127.0.0.1:1\"; } );"
	    " },\n"
	    "  { name = \"b2\"; balance = \"leastconn\";\n"
	    "    timeout_connect = 1500; timeout_server = \"1h\";\n"
	    "    timeout_queue = \"250ms\"; retries = 0; fullconn = 50;\n"
	    "    servers = (\n"
	    "      { name = \"s1\"; address = \"[::1]:10025\"; weight = 256;\n"
	    "        maxconn = 100; minconn = 10; },\n"
	    "      { name = \"s2\"; address = \"127.0.0.1:10026\"; weight = 0;"
	    "\n"
	    "        backup = true; disabled = true; check = false;"
	    " proxy_protocol = \"none\"; }\n"
	    "    );\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_backend *b1, *b2;

	ck_assert_uint_eq(d.n, 0);
	ck_assert_int_eq(cfg->global.maxconn, 2000);
	ck_assert(!cfg->global.daemon);
	ck_assert_str_eq(cfg->global.pidfile, "/tmp/lb.pid");
	ck_assert_uint_eq(cfg->global.grace_ms, 30000);
	ck_assert(!cfg->global.log.syslog);
	ck_assert_int_eq(cfg->global.log.facility, LOG_MAIL);
	ck_assert_str_eq(cfg->global.log.ident, "lbx");
	ck_assert_int_eq(cfg->global.log.level, LOG_DEBUG);
	ck_assert(!cfg->global.log.sessions);

	ck_assert_uint_eq(cfg->nfrontends, 2);
	ck_assert_int_eq(cfg->frontends[0].binds[0].ss.ss_family, AF_INET6);
	ck_assert_uint_eq(cfg->frontends[0].timeout_client_ms, 600000);
	ck_assert_int_eq(cfg->frontends[0].maxconn, 500);
	ck_assert_int_eq(cfg->frontends[0].backlog, 16);
	ck_assert_str_eq(cfg->frontends[0].unavailable_reply, "");
	ck_assert_uint_eq(cfg->frontends[0].backend, 1);
	ck_assert_str_eq(cfg->frontends[1].unavailable_reply,
	                 "421 4.3.0 try later");
	ck_assert_uint_eq(cfg->frontends[1].backend, 1);

	ck_assert_uint_eq(cfg->nbackends, 2);
	b1 = cfg_find_backend(cfg, "b1");
	b2 = cfg_find_backend(cfg, "b2");
	ck_assert_ptr_eq(b1, &cfg->backends[0]);
	ck_assert_ptr_eq(b2, &cfg->backends[1]);
	ck_assert_int_eq(b1->balance, LB_SOURCE);
	ck_assert_str_eq(cfg_algo_name(b1->balance), "source");
	ck_assert_int_eq(b2->balance, LB_LEASTCONN);
	ck_assert_str_eq(cfg_algo_name(b2->balance), "leastconn");
	ck_assert_uint_eq(b2->timeout_connect_ms, 1500);
	ck_assert_uint_eq(b2->timeout_server_ms, 3600000);
	ck_assert_uint_eq(b2->timeout_queue_ms, 250);
	ck_assert_int_eq(b2->retries, 0);
	ck_assert_int_eq(b2->fullconn, 50);
	ck_assert_uint_eq(b2->nservers, 2);
	ck_assert_int_eq(b2->servers[0].weight, 256);
	ck_assert_int_eq(b2->servers[0].maxconn, 100);
	ck_assert_int_eq(b2->servers[0].minconn, 10);
	ck_assert_int_eq(b2->servers[0].addr.ss.ss_family, AF_INET6);
	ck_assert_uint_eq(port_of(&b2->servers[0].addr), 10025);
	ck_assert_int_eq(b2->servers[1].weight, 0);
	ck_assert(b2->servers[1].backup);
	ck_assert(b2->servers[1].disabled);
	ck_assert(!b2->servers[1].check);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(fullconn_from_frontend_maxconn)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"a\"; bind = \"127.0.0.1:2525\"; backend = \"b\";"
	    " maxconn = 300; },\n"
	    "  { name = \"c\"; bind = \"127.0.0.1:2526\"; backend = \"b\";"
	    " maxconn = 700; }\n"
	    ");\n"
	    "backends = ( { name = \"b\"; servers = ( { name = \"s\";"
	    " address = \"127.0.0.1:1\"; } ); } );\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_int_eq(cfg->backends[0].fullconn, 100);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(bind_string_and_lists)
{
	static const char *const texts[] = {
	    "frontends = ( { name = \"in\"; backend = \"filters\";\n"
	    "  bind = [ \"127.0.0.1:2525\", \"[::1]:2526\" ]; } );\n" BE_OK,
	    "frontends = ( { name = \"in\"; backend = \"filters\";\n"
	    "  bind = ( \"127.0.0.1:2525\", \"[::1]:2526\" ); } );\n" BE_OK,
	};
	struct cfg_diag d;
	struct cfg *cfg;

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		cfg = load_ok(texts[i], &d);
		ck_assert_uint_eq(cfg->frontends[0].nbinds, 2);
		ck_assert_str_eq(cfg->frontends[0].binds[0].text,
		                 "127.0.0.1:2525");
		ck_assert_int_eq(cfg->frontends[0].binds[0].ss.ss_family,
		                 AF_INET);
		ck_assert_uint_eq(cfg->frontends[0].binds[0].len,
		                  sizeof(struct sockaddr_in));
		ck_assert_uint_eq(port_of(&cfg->frontends[0].binds[0]), 2525);
		ck_assert_str_eq(cfg->frontends[0].binds[1].text, "[::1]:2526");
		ck_assert_int_eq(cfg->frontends[0].binds[1].ss.ss_family,
		                 AF_INET6);
		ck_assert_uint_eq(port_of(&cfg->frontends[0].binds[1]), 2526);
		cfg_free(cfg);
		cfg_diag_free(&d);
	}

	/* A single string. */
	cfg = load_ok(FE_OK BE_OK, &d);
	ck_assert_uint_eq(cfg->frontends[0].nbinds, 1);
	ck_assert_str_eq(cfg->frontends[0].binds[0].text, "127.0.0.1:2525");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(hostname_address_resolved)
{
	static const char text[] =
	    FE_OK "backends = ( { name = \"filters\"; servers = ( {"
	          " name = \"f1\"; address = \"localhost:10025\"; } ); } );\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_addr *a = &cfg->backends[0].servers[0].addr;

	ck_assert_str_eq(a->text, "localhost:10025");
	ck_assert(a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6);
	ck_assert_uint_eq(port_of(a), 10025);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(durations_integer_and_string)
{
	static const char text[] =
	    "frontends = ( { name = \"in\"; bind = \"127.0.0.1:2525\";"
	    " backend = \"filters\"; timeout_client = 90000; } );\n"
	    "backends = ( { name = \"filters\"; timeout_connect = \"2s\";\n"
	    "  timeout_server = \"14d\"; timeout_queue = 0;\n"
	    "  servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; } );"
	    " } );\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_uint_eq(cfg->frontends[0].timeout_client_ms, 90000);
	ck_assert_uint_eq(cfg->backends[0].timeout_connect_ms, 2000);
	ck_assert_uint_eq(cfg->backends[0].timeout_server_ms,
	                  14ULL * 86400 * 1000);
	ck_assert_uint_eq(cfg->backends[0].timeout_queue_ms, 0);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* --- syntax errors ----------------------------------------------------- */

START_TEST(syntax_error_line)
{
	static const char text[] = "global = {\n"
	                           "  maxconn = 5;\n"
	                           "  daemon = tru;\n"
	                           "};\n" FE_OK BE_OK;
	struct cfg_diag d;

	load_bad(text, &d, 1);
	expect_error_line(&d, 3, "syntax error");
	ck_assert_ptr_nonnull(strstr(d.msgs[0], NAME ":3: "));
	ck_assert_int_eq(strncmp(d.msgs[0], NAME ":3: ", strlen(NAME ":3: ")),
	                 0);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(syntax_error_deep_in_file)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = (\n"
	          "      { name = \"f1\"; address = \"127.0.0.1:1\" } ,\n"
	          "      { name = \"f2\"; address = = \"127.0.0.1:2\"; }\n"
	          "    );\n"
	          "  }\n"
	          ");\n";
	struct cfg_diag d;

	load_bad(text, &d, 1);
	expect_error(&d, text, "address = =", "syntax error");
	cfg_diag_free(&d);
}
END_TEST

START_TEST(syntax_error_unterminated)
{
	static const char text[] = "global = {\n"
	                           "  pidfile = \"/run/x.pid;\n"
	                           "};\n";
	struct cfg_diag d;

	load_bad(text, &d, 1);
	ck_assert_msg(strncmp(d.msgs[0], NAME ":", strlen(NAME ":")) == 0,
	              "message without file name: %s", d.msgs[0]);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(syntax_error_duplicate_setting)
{
	static const char text[] = FE_OK
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\";\n"
	    "      weight = 1;\n"
	    "      weight = 2; } );\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;

	load_bad(text, &d, 1);
	expect_error(&d, text, "weight = 2", "duplicate setting");
	cfg_diag_free(&d);
}
END_TEST

START_TEST(diag_uses_given_name)
{
	struct cfg_diag d;
	struct cfg *cfg;

	cfg_diag_init(&d);
	cfg = cfg_load_string("x = 1;\n" FE_OK BE_OK, "other/lb.conf", &d);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.nerrors, 1);
	ck_assert_str_eq(d.msgs[0],
	                 "other/lb.conf:1: unknown key 'x' in the top level");
	cfg_diag_free(&d);
}
END_TEST

START_TEST(load_file_names_path)
{
	char path[4096];
	struct cfg_diag d;
	struct cfg *cfg;
	char prefix[4200];

	snprintf(path, sizeof(path), "%s/tests/unit/data/valid.conf",
	         TEST_SRCDIR);
	cfg_diag_init(&d);
	cfg = cfg_load_file(path, &d);
	ck_assert_msg(cfg != NULL, "%s did not load:%s", path, all_msgs(&d));
	ck_assert_uint_eq(d.nerrors, 0);
	ck_assert_uint_eq(cfg->nfrontends, 1);
	ck_assert_uint_eq(cfg->backends[0].nservers, 2);
	cfg_free(cfg);
	cfg_diag_free(&d);

	snprintf(path, sizeof(path), "%s/tests/unit/data/errors.conf",
	         TEST_SRCDIR);
	cfg_diag_init(&d);
	cfg = cfg_load_file(path, &d);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.nerrors, 2);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, 10);
	ck_assert_msg(has_msg_at(&d, path, 10, false, "out of range"),
	              "want \"%s...out of range\"; messages:%s", prefix,
	              all_msgs(&d));
	ck_assert_msg(has_msg_at(&d, path, 4, false, "unknown key 'bogus'"),
	              "want \"%s:4: unknown key 'bogus'\"; messages:%s", path,
	              all_msgs(&d));
	cfg_diag_free(&d);

	snprintf(path, sizeof(path), "%s/tests/unit/data/no-such-file.conf",
	         TEST_SRCDIR);
	cfg_diag_init(&d);
	cfg = cfg_load_file(path, &d);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.nerrors, 1);
	snprintf(prefix, sizeof(prefix), "%s:", path);
	ck_assert_int_eq(strncmp(d.msgs[0], prefix, strlen(prefix)), 0);
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "No such file"));
	cfg_diag_free(&d);
}
END_TEST

/* --- unknown keys at each level ------------------------------------------ */

START_TEST(unknown_key_top_level)
{
	static const char text[] = FE_OK BE_OK "frontend = ();\n";

	one_error(text, "frontend = ()", "unknown key 'frontend'");
}
END_TEST

START_TEST(unknown_key_global)
{
	static const char text[] = "global = {\n"
	                           "  maxconn = 100;\n"
	                           "  max_conn = 100;\n"
	                           "};\n" FE_OK BE_OK;

	one_error(text, "max_conn", "unknown key 'max_conn'");
}
END_TEST

START_TEST(unknown_key_global_log)
{
	static const char text[] = "global = {\n"
	                           "  log = {\n"
	                           "    syslog = true;\n"
	                           "    facilty = \"local1\";\n"
	                           "  };\n"
	                           "};\n" FE_OK BE_OK;

	one_error(text, "facilty", "unknown key 'facilty'");
}
END_TEST

START_TEST(unknown_key_frontend)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "    default_backend = \"filters\";\n"
	    "    backend = \"filters\"; }\n"
	    ");\n" BE_OK;

	one_error(text, "default_backend", "unknown key 'default_backend'");
}
END_TEST

START_TEST(unknown_key_backend)
{
	static const char text[] = FE_OK
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    timeout_server = \"10m\";\n"
	    "    timeout_check = \"5s\";\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; } );\n"
	    "  }\n"
	    ");\n";

	one_error(text, "timeout_check", "unknown key 'timeout_check'");
}
END_TEST

START_TEST(unknown_key_server)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = (\n"
	          "      { name = \"f1\"; address = \"127.0.0.1:1\"; },\n"
	          "      { name = \"f2\"; address = \"127.0.0.1:2\";\n"
	          "        inter = 6000; }\n"
	          "    );\n"
	          "  }\n"
	          ");\n";

	one_error(text, "inter = 6000", "unknown key 'inter'");
}
END_TEST

START_TEST(unknown_key_health_check)
{
	/* health_check itself is not built yet (its own error), but its
	 * keys are still checked. */
	static const char text[] = FE_OK
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    health_check = {\n"
	    "      type = \"smtp\";\n"
	    "      intervall = \"2s\";\n"
	    "    };\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; } );\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;

	load_bad(text, &d, 0);
	expect_error(&d, text, "intervall", "unknown key 'intervall'");
	cfg_diag_free(&d);
}
END_TEST

/* --- values ------------------------------------------------------------- */

START_TEST(bad_duration)
{
	static const char *const cases[][3] = {
	    {"timeout_connect = \"5x\";", "timeout_connect", "bad duration"},
	    {"timeout_server = \"-1s\";", "timeout_server", "bad duration"},
	    {"timeout_queue = \"5 s\";", "timeout_queue", "bad duration"},
	    {"timeout_connect = \"\";", "timeout_connect", ""},
	    {"timeout_server = \"400d\";", "timeout_server", ""},
	    {"timeout_connect = -5;", "timeout_connect", ""},
	    {"timeout_queue = true;", "timeout_queue", ""},
	};
	char text[1024];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text),
		         FE_OK "backends = (\n"
		               "  { name = \"filters\";\n"
		               "    %s\n"
		               "    servers = ( { name = \"f1\";"
		               " address = \"127.0.0.1:1\"; } );\n"
		               "  }\n"
		               ");\n",
		         cases[i][0]);
		one_error(text, cases[i][0], cases[i][1]);
		one_error(text, cases[i][0], cases[i][2]);
	}
}
END_TEST

START_TEST(bad_duration_frontend_and_global)
{
	static const char text1[] =
	    "frontends = ( { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "  backend = \"filters\";\n"
	    "  timeout_client = \"1y\"; } );\n" BE_OK;
	static const char text2[] = "global = {\n"
	                            "  grace = \"ten seconds\";\n"
	                            "};\n" FE_OK BE_OK;

	one_error(text1, "timeout_client", "timeout_client: bad duration");
	one_error(text2, "grace", "grace: bad duration");
}
END_TEST

/* One server line, in a valid file otherwise. */
static void
server_error(const char *server_keys, const char *marker, const char *substr)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         FE_OK "backends = (\n"
	               "  { name = \"filters\";\n"
	               "    servers = (\n"
	               "      { name = \"f1\"; address = \"127.0.0.1:1\"; },\n"
	               "      { name = \"f2\"; address = \"127.0.0.1:2\";\n"
	               "        %s }\n"
	               "    );\n"
	               "  }\n"
	               ");\n",
	         server_keys);
	one_error(text, marker, substr);
}

/* One backend line, in a valid file otherwise. */
static void
backend_error(const char *backend_keys, const char *marker, const char *substr)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         FE_OK "backends = (\n"
	               "  { name = \"filters\";\n"
	               "    %s\n"
	               "    servers = ( { name = \"f1\";"
	               " address = \"127.0.0.1:1\"; } );\n"
	               "  }\n"
	               ");\n",
	         backend_keys);
	one_error(text, marker, substr);
}

/* One frontend line, in a valid file otherwise. */
static void
frontend_error(const char *frontend_keys, const char *marker,
               const char *substr)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "frontends = (\n"
	         "  { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	         "    backend = \"filters\";\n"
	         "    %s\n"
	         "  }\n"
	         ");\n" BE_OK,
	         frontend_keys);
	one_error(text, marker, substr);
}

/* One global line, in a valid file otherwise. */
static void
global_error(const char *global_keys, const char *marker, const char *substr)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "global = {\n"
	         "  daemon = false;\n"
	         "  %s\n"
	         "};\n" FE_OK BE_OK,
	         global_keys);
	one_error(text, marker, substr);
}

START_TEST(out_of_range)
{
	server_error("weight = 257;", "weight", "weight: 257 is out of range");
	server_error("weight = -1;", "weight", "weight: -1 is out of range");
	server_error("maxconn = -1;", "maxconn", "maxconn: -1 is out of range");
	server_error("minconn = -3;", "minconn", "out of range");
	server_error("weight = 10000000000L;", "weight", "out of range");
	backend_error("retries = -1;", "retries",
	              "retries: -1 is out of range");
	backend_error("retries = 101;", "retries", "out of range");
	backend_error("fullconn = -1;", "fullconn", "out of range");
	frontend_error("maxconn = -10;", "maxconn",
	               "maxconn: -10 is out of "
	               "range");
	frontend_error("backlog = 0;", "backlog", "backlog: 0 is out of range");
	frontend_error("backlog = -1;", "backlog", "out of range");
	global_error("maxconn = -1;", "maxconn", "out of range");
	global_error("workers = -1;", "workers", "out of range");
}
END_TEST

START_TEST(weight_bounds_accepted)
{
	static const char text[] = FE_OK
	    "backends = ( { name = \"filters\"; servers = (\n"
	    "  { name = \"a\"; address = \"127.0.0.1:1\"; weight = 0; },\n"
	    "  { name = \"b\"; address = \"127.0.0.1:2\"; weight = 256; }\n"
	    "); } );\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_int_eq(cfg->backends[0].servers[0].weight, 0);
	ck_assert_int_eq(cfg->backends[0].servers[1].weight, 256);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(rise_fall_out_of_range)
{
	static const char text[] = FE_OK
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    health_check = {\n"
	    "      rise = 0;\n"
	    "      fall = -2;\n"
	    "    };\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; } );\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;

	load_bad(text, &d, 0);
	expect_error(&d, text, "rise", "rise: 0 is out of range");
	expect_error(&d, text, "fall", "fall: -2 is out of range");
	cfg_diag_free(&d);
}
END_TEST

START_TEST(bad_enum)
{
	backend_error("balance = \"random\";", "balance",
	              "balance: expected one of");
	backend_error("balance = \"RoundRobin\";", "balance",
	              "balance: expected one of");
	backend_error("balance = 1;", "balance", "balance: expected one of");
	backend_error("proxy_protocol = \"v3\";", "proxy_protocol",
	              "proxy_protocol: expected one of");
	backend_error("on_marked_down = \"kill\";", "on_marked_down",
	              "on_marked_down: expected one of");
	server_error("proxy_protocol = \"v3\";", "proxy_protocol",
	             "proxy_protocol: expected one of");
	global_error("log = { facility = \"local9\"; };", "facility",
	             "unknown syslog facility");
	global_error("log = { level = \"verbose\"; };", "level",
	             "unknown log level");
}
END_TEST

START_TEST(bad_enum_lists_choices)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\"; balance = \"random\";\n"
	          "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; "
	          "} ); }\n"
	          ");\n";
	struct cfg_diag d;

	load_bad(text, &d, 1);
	expect_error(&d, text, "random", "roundrobin");
	expect_error(&d, text, "random", "leastconn");
	expect_error(&d, text, "random", "source");
	cfg_diag_free(&d);
}
END_TEST

START_TEST(wrong_type)
{
	server_error("weight = \"x\";", "weight",
	             "weight: expected an integer");
	server_error("weight = 1.5;", "weight", "weight: expected an integer");
	server_error("backup = \"yes\";", "backup",
	             "backup: expected true or false");
	server_error("maxconn = true;", "maxconn", "expected an integer");
	backend_error("retries = \"3\";", "retries",
	              "retries: expected an integer");
	frontend_error("transparent = 1;", "transparent",
	               "transparent: expected true or false");
	global_error("pidfile = 5;", "pidfile", "pidfile: expected a string");
	global_error("log = 1;", "log", "log: expected a group");
}
END_TEST

START_TEST(wrong_type_frontend_name_one_error)
{
	/* One mistake, one message: a non-string name is not also
	 * reported as empty. */
	static const char text[] = "frontends = (\n"
	                           "  { name = 5; bind = \"127.0.0.1:2525\";\n"
	                           "    backend = \"filters\"; }\n"
	                           ");\n" BE_OK;

	one_error(text, "name = 5", "name: expected a string");
}
END_TEST

START_TEST(wrong_type_names)
{
	static const char text1[] = FE_OK
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    servers = ( { name = 7; address = \"127.0.0.1:1\"; } ); }\n"
	    ");\n";
	static const char text2[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = ( { name = \"f1\"; address = 10025; } ); }\n"
	          ");\n";

	one_error(text1, "name = 7", "name: expected a string");
	one_error(text2, "address = 10025", "address: expected a string");
}
END_TEST

START_TEST(missing_backend_reference)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "    backend = \"filtres\"; }\n"
	    ");\n" BE_OK;

	one_error(text, "filtres", "no backend named 'filtres'");
}
END_TEST

START_TEST(duplicate_frontend)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\"; backend = "
	    "\"filters\"; },\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2526\";"
	    " backend = \"filters\"; }\n"
	    ");\n" BE_OK;

	one_error(text, "2526", "duplicate frontend name 'in'");
	one_error(text, "2526", "(first at line 2)");
}
END_TEST

START_TEST(duplicate_backend)
{
	static const char text[] = FE_OK "backends = (\n"
	                                 "  { name = \"filters\";\n"
	                                 "    servers = ( { name = \"f1\"; "
	                                 "address = \"127.0.0.1:1\"; } ); },\n"
	                                 "  { name = \"filters\"; # second\n"
	                                 "    servers = ( { name = \"f2\"; "
	                                 "address = \"127.0.0.1:2\"; } ); }\n"
	                                 ");\n";

	one_error(text, "# second", "duplicate backend name 'filters'");
	one_error(text, "# second", "(first at line 3)");
}
END_TEST

START_TEST(duplicate_server)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = (\n"
	          "      { name = \"f1\"; address = \"127.0.0.1:1\"; },\n"
	          "      { name = \"f2\"; address = \"127.0.0.1:2\"; },\n"
	          "      { name = \"f1\"; address = \"127.0.0.1:3\"; }\n"
	          "    );\n"
	          "  }\n"
	          ");\n";

	one_error(text, "127.0.0.1:3", "duplicate server name 'f1'");
}
END_TEST

START_TEST(same_server_name_in_two_backends_ok)
{
	static const char text[] = FE_OK "backends = (\n"
	                                 "  { name = \"filters\";\n"
	                                 "    servers = ( { name = \"f1\"; "
	                                 "address = \"127.0.0.1:1\"; } ); },\n"
	                                 "  { name = \"other\";\n"
	                                 "    servers = ( { name = \"f1\"; "
	                                 "address = \"127.0.0.1:2\"; } ); }\n"
	                                 ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(unparsable_address)
{
	static const char text1[] = FE_OK "backends = (\n"
	                                  "  { name = \"filters\";\n"
	                                  "    servers = (\n"
	                                  "      { name = \"f1\";\n"
	                                  "        address = \"127.0.0.1\"; }\n"
	                                  "    );\n"
	                                  "  }\n"
	                                  ");\n";
	static const char text2[] = FE_OK "backends = (\n"
	                                  "  { name = \"filters\";\n"
	                                  "    servers = (\n"
	                                  "      { name = \"f1\";\n"
	                                  "        address = \"::1:25\"; }\n"
	                                  "    );\n"
	                                  "  }\n"
	                                  ");\n";
	static const char text3[] =
	    "frontends = (\n"
	    "  { name = \"in\"; backend = \"filters\";\n"
	    "    bind = \"127.0.0.1:0\"; }\n"
	    ");\n" BE_OK;
	static const char text4[] =
	    "frontends = (\n"
	    "  { name = \"in\"; backend = \"filters\";\n"
	    "    bind = [ \"127.0.0.1:2525\",\n"
	    "             \"[::1:2525\" ]; }\n"
	    ");\n" BE_OK;
	static const char text5[] =
	    "frontends = (\n"
	    "  { name = \"in\"; backend = \"filters\";\n"
	    "    bind = [ ]; }\n"
	    ");\n" BE_OK;
	struct cfg_diag d;

	one_error(text1, "127.0.0.1\"", "cannot use address \"127.0.0.1\"");
	one_error(text2, "::1:25", "cannot use address \"::1:25\"");
	one_error(text3, "127.0.0.1:0", "cannot use address");
	one_error(text4, "[::1:2525", "cannot use address");
	load_bad(text5, &d, 1);
	expect_error(&d, text5, "bind = [ ]", "bind");
	cfg_diag_free(&d);
}
END_TEST

START_TEST(unresolvable_host)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = ( { name = \"f1\";\n"
	          "      address = \"no-such-host.invalid:25\"; } ); }\n"
	          ");\n";

	one_error(text, "no-such-host", "cannot use address");
}
END_TEST

/* --- missing required keys: the error is at the group's line ---------- */

START_TEST(missing_frontend_name)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\"; backend = "
	    "\"filters\"; },\n"
	    "  { # second\n"
	    "    bind = \"127.0.0.1:2526\";\n"
	    "    backend = \"filters\"; }\n"
	    ");\n" BE_OK;

	one_error(text, "# second", "missing required key 'name'");
}
END_TEST

START_TEST(missing_frontend_bind)
{
	static const char text[] = "frontends = (\n"
	                           "  {\n"
	                           "    name = \"in\";\n"
	                           "    backend = \"filters\";\n"
	                           "  }\n"
	                           ");\n" BE_OK;

	one_error(text, "{\n    name", "missing required key 'bind'");
	one_error(text, "{\n    name", "'in'");
}
END_TEST

START_TEST(missing_frontend_backend)
{
	static const char text[] = "frontends = (\n"
	                           "  {\n"
	                           "    name = \"in\";\n"
	                           "    bind = \"127.0.0.1:2525\";\n"
	                           "  }\n"
	                           ");\n" BE_OK;

	one_error(text, "{\n    name", "missing required key 'backend'");
}
END_TEST

START_TEST(missing_backend_name)
{
	static const char text[] =
	    "frontends = ( { name = \"in\"; bind = \"127.0.0.1:2525\";"
	    " backend = \"b\"; } );\n"
	    "backends = (\n"
	    "  { name = \"b\"; servers = ( { name = \"s\";"
	    " address = \"127.0.0.1:1\"; } ); },\n"
	    "  { # nameless\n"
	    "    servers = ( { name = \"s\"; address = \"127.0.0.1:2\"; } );\n"
	    "  }\n"
	    ");\n";

	one_error(text, "# nameless", "missing required key 'name'");
}
END_TEST

START_TEST(missing_server_name)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = (\n"
	          "      { name = \"f1\"; address = \"127.0.0.1:1\"; },\n"
	          "      {\n"
	          "        address = \"127.0.0.1:2\"; }\n"
	          "    );\n"
	          "  }\n"
	          ");\n";

	one_error(text, "{\n        address", "missing required key 'name'");
}
END_TEST

START_TEST(missing_server_address)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = (\n"
	          "      { name = \"f1\"; address = \"127.0.0.1:1\"; },\n"
	          "      { name = \"f2\";\n"
	          "        weight = 2; }\n"
	          "    );\n"
	          "  }\n"
	          ");\n";

	one_error(text, "{ name = \"f2\"", "missing required key 'address'");
	one_error(text, "{ name = \"f2\"", "'f2'");
}
END_TEST

START_TEST(multiple_errors_all_reported)
{
	static const char text[] =
	    "global = {\n"
	    "  maxconn = -1;\n" /* 2 */
	    "};\n"
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "    backend = \"nope\"; },\n"                  /* 6 */
	    "  { name = \"in\"; bind = \"127.0.0.1:2526\";" /* 7 */
	    " backend = \"filters\"; backlog = 0; }\n"
	    ");\n"
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    balance = \"random\";\n"     /* 11 */
	    "    timeout_connect = \"5y\";\n" /* 12 */
	    "    servers = (\n"
	    "      { name = \"f1\"; address = \"127.0.0.1:1\";"
	    " weight = 257; },\n"                                  /* 14 */
	    "      { name = \"f2\"; address = \"127.0.0.1\"; },\n" /* 15 */
	    "      { name = \"f3\"; addr = \"127.0.0.1:3\"; }\n"   /* 16 */
	    "    );\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;

	load_bad(text, &d, 0);
	expect_error_line(&d, 2, "maxconn");
	expect_error_line(&d, 6, "no backend named 'nope'");
	expect_error_line(&d, 7, "duplicate frontend name 'in'");
	expect_error_line(&d, 7, "backlog");
	expect_error_line(&d, 11, "balance");
	expect_error_line(&d, 12, "timeout_connect");
	expect_error_line(&d, 14, "weight");
	expect_error_line(&d, 15, "cannot use address");
	expect_error_line(&d, 16, "unknown key 'addr'");
	expect_error_line(&d, 16, "missing required key 'address'");
	ck_assert_msg(d.nerrors == 10, "want 10 errors, got %zu:%s", d.nerrors,
	              all_msgs(&d));
	for (size_t i = 0; i < d.n; i++)
		ck_assert_msg(strncmp(d.msgs[i], NAME ":", strlen(NAME ":")) ==
		                  0,
		              "bad prefix: %s", d.msgs[i]);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(messages_in_line_order)
{
	/* Errors found in different passes (backends are read before
	 * frontends) are still listed in the order of the file. */
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "    backend = \"nope\"; }\n"
	    ");\n"
	    "global = { maxconn = -1; };\n"
	    "backends = (\n"
	    "  { name = \"filters\"; retries = -1;\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\";"
	    " weight = 999; } ); }\n"
	    ");\n";
	struct cfg_diag d;
	int prev = 0, line;

	load_bad(text, &d, 4);
	for (size_t i = 0; i < d.n; i++) {
		ck_assert_msg(sscanf(d.msgs[i], NAME ":%d:", &line) == 1,
		              "bad prefix: %s", d.msgs[i]);
		ck_assert_msg(line >= prev, "not in line order:%s",
		              all_msgs(&d));
		prev = line;
	}
	cfg_diag_free(&d);
}
END_TEST

/* --- warnings ----------------------------------------------------------- */

START_TEST(port25_short_timeout_server_warns)
{
	static const char text[] =
	    "frontends = ( { name = \"smtp\"; bind = \"127.0.0.1:25\";"
	    " backend = \"filters\"; } );\n"
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    timeout_server = \"5m\";\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:10025\"; } "
	    ");\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_uint_eq(d.nwarnings, 1);
	ck_assert(d.is_warning[0]);
	expect_warning(&d, text, "timeout_server", "port 25");
	expect_warning(&d, text, "timeout_server", "10 minutes");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(port25_default_timeout_server_warns)
{
	/* Default timeout_server (1m) is under 10 minutes too; the warning
	 * points at the backend. */
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"smtp\"; backend = \"filters\";\n"
	    "    bind = [ \"127.0.0.1:2525\", \"[::1]:25\" ]; }\n"
	    ");\n"
	    "backends = (\n"
	    "  { name = \"filters\";\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:10025\"; } "
	    ");\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_uint_eq(d.nwarnings, 1);
	expect_warning(&d, text, "{ name = \"filters\"", "port 25");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(port25_long_timeout_no_warning)
{
	static const char text[] =
	    "frontends = ( { name = \"smtp\"; bind = \"127.0.0.1:25\";"
	    " backend = \"filters\"; } );\n"
	    "backends = (\n"
	    "  { name = \"filters\"; timeout_server = \"10m\";\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:10025\"; } "
	    ");\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(other_port_short_timeout_no_warning)
{
	static const char text[] =
	    "frontends = ( { name = \"smtp\"; bind = \"127.0.0.1:2525\";"
	    " backend = \"filters\"; } );\n"
	    "backends = (\n"
	    "  { name = \"filters\"; timeout_server = \"30s\";\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:25\"; } "
	    ");\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(warning_with_error_still_fails)
{
	static const char text[] =
	    "frontends = ( { name = \"smtp\"; bind = \"127.0.0.1:25\";"
	    " backend = \"filters\"; } );\n"
	    "backends = (\n"
	    "  { name = \"filters\"; timeout_server = \"1m\"; retries = -1;\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:10025\"; } "
	    ");\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;

	load_bad(text, &d, 1);
	expect_error(&d, text, "retries", "retries");
	ck_assert_uint_eq(d.nwarnings, 1);
	cfg_diag_free(&d);
}
END_TEST

/* --- client identity: transparent, source, proxy_protocol, privileges -- */

START_TEST(identity_keys_parsed)
{
	static const char text[] =
	    "global = { user = \"nobody\"; group = \"nogroup\";"
	    " chroot = \"/var/empty\"; };\n"
	    "frontends = ( { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "  backend = \"filters\"; transparent = true; } );\n"
	    "backends = ( { name = \"filters\"; timeout_server = \"10m\";\n"
	    "  proxy_protocol = \"v1\"; source = \"clientip\";\n"
	    "  servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; },\n"
	    "    { name = \"f2\"; address = \"127.0.0.1:2\";"
	    " proxy_protocol = \"v2\"; },\n"
	    "    { name = \"f3\"; address = \"127.0.0.1:3\";"
	    " proxy_protocol = \"none\"; } ); } );\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_backend *be = &cfg->backends[0];

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	ck_assert(cfg->frontends[0].transparent);
	ck_assert_int_eq(be->source_mode, SRC_CLIENTIP);
	ck_assert_int_eq(be->proxy_protocol, PP_V1);
	ck_assert_int_eq(be->servers[0].proxy_protocol, PP_V1); /* inherited */
	ck_assert_int_eq(be->servers[1].proxy_protocol, PP_V2);
	ck_assert_int_eq(be->servers[2].proxy_protocol, PP_NONE);
	ck_assert_str_eq(cfg->global.user, "nobody");
	ck_assert_str_eq(cfg->global.group, "nogroup");
	ck_assert_str_eq(cfg->global.chroot, "/var/empty");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(source_address_parsed)
{
	static const char *const texts[] = {
	    FE_OK "backends = ( { name = \"filters\"; source = \"10.1.2.3\";\n"
	          "  servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; }"
	          " ); } );\n",
	    FE_OK
	    "backends = ( { name = \"filters\"; source = \"2001:db8::5\";\n"
	    "  servers = ( { name = \"f1\"; address = \"[::1]:1\"; }"
	    " ); } );\n",
	};
	for (size_t i = 0; i < 2; i++) {
		struct cfg_diag d;
		struct cfg *cfg = load_ok(texts[i], &d);
		const struct cfg_backend *be = &cfg->backends[0];

		ck_assert_int_eq(be->source_mode, SRC_ADDR);
		ck_assert_int_eq(be->source_ss.ss_family,
		                 i == 0 ? AF_INET : AF_INET6);
		if (i == 0) {
			const struct sockaddr_in *in =
			    (const struct sockaddr_in *)(const void *)&be
			        ->source_ss;
			ck_assert_uint_eq(ntohl(in->sin_addr.s_addr),
			                  0x0A010203u);
			ck_assert_uint_eq(in->sin_port, 0);
		}
		cfg_free(cfg);
		cfg_diag_free(&d);
	}
}
END_TEST

START_TEST(identity_key_errors)
{
	backend_error("source = \"10.0.0.1:25\";", "source",
	              "expected \"\", \"clientip\" or an IP address");
	backend_error("source = \"client\";", "source",
	              "expected \"\", \"clientip\" or an IP address");
	backend_error("source = \"::1\";", "address",
	              "not of the family of the backend's source address");
	backend_error("proxy_protocol = \"v3\";", "proxy_protocol",
	              "expected one of none | v1 | v2");
	server_error("proxy_protocol = true;", "proxy_protocol", "");
	frontend_error("transparent = \"yes\";", "transparent", "");
	global_error("chroot = \"var/lib/lb\";", "chroot",
	             "must be an absolute path");
}
END_TEST

START_TEST(health_check_parsed)
{
	static const char text[] = FE_OK
	    "backends = (\n"
	    "  { name = \"filters\"; timeout_server = \"10m\";\n"
	    "    on_marked_down = \"shutdown-sessions\";\n"
	    "    health_check = {\n"
	    "      type = \"smtp\"; helo = \"noor.net\"; ehlo = true;\n"
	    "      interval = \"6s\"; fastinter = \"1s\"; downinter = \"\";\n"
	    "      rise = 3; fall = 4; cert_expiry_warn = \"30d\";\n"
	    "    };\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; },\n"
	    "                { name = \"f2\"; address = \"127.0.0.1:2\";"
	    " check = false; } );\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_backend *be = &cfg->backends[0];

	ck_assert(be->has_check);
	ck_assert_int_eq(be->on_marked_down, MD_SHUTDOWN_SESSIONS);
	ck_assert_int_eq(be->check.type, CHECK_SMTP);
	ck_assert_str_eq(be->check.helo, "noor.net");
	ck_assert(be->check.ehlo);
	ck_assert_uint_eq(be->check.interval_ms, 6000);
	ck_assert_uint_eq(be->check.fastinter_ms, 1000);
	ck_assert_uint_eq(be->check.downinter_ms, 0); /* "" = interval */
	ck_assert_uint_eq(be->check.cert_expiry_warn_ms, 30ULL * 86400000);
	ck_assert_int_eq(be->check.rise, 3);
	ck_assert_int_eq(be->check.fall, 4);
	ck_assert(be->servers[0].check); /* default with a health_check */
	ck_assert(!be->servers[1].check);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(health_check_errors)
{
	backend_error("health_check = { type = \"icmp\"; };", "health_check",
	              "type: expected one of tcp | smtp");
	backend_error("health_check = { interval = \"5x\"; };", "health_check",
	              "interval: bad duration");
	backend_error("health_check = { rise = 0; };", "health_check",
	              "rise: 0 is out of range");
	backend_error("health_check = { type = \"tcp\"; starttls = true; };",
	              "health_check", "starttls: needs type = \"smtp\"");
	backend_error("health_check = { tls_ca_file = \"/nonexistent/ca.pem\";"
	              " starttls = true; };",
	              "health_check", "tls_ca_file: cannot read");
	server_error("check = true;", "check", "no health_check group");
}
END_TEST

START_TEST(defaults_accepted)
{
	static const char text[] =
	    "frontends = ( { name = \"in\"; bind = \"127.0.0.1:2525\";\n"
	    "  backend = \"filters\"; transparent = false; } );\n"
	    "backends = ( { name = \"filters\"; timeout_server = \"10m\";\n"
	    "  proxy_protocol = \"none\"; on_marked_down = \"none\";"
	    " source = \"\";\n"
	    "  servers = ( { name = \"f1\"; address = \"127.0.0.1:10025\";\n"
	    "    proxy_protocol = \"none\"; check = false; } ); } );\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	ck_assert(!cfg->frontends[0].transparent);
	ck_assert_int_eq(cfg->backends[0].proxy_protocol, PP_NONE);
	ck_assert_int_eq(cfg->backends[0].servers[0].proxy_protocol, PP_NONE);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(unavailable_reply_checked)
{
	frontend_error("unavailable_reply = \"250 OK\";", "unavailable_reply",
	               "unavailable_reply");
	frontend_error("unavailable_reply = \"421 a\\r\\n250 b\";",
	               "unavailable_reply", "unavailable_reply");
}
END_TEST

/* --- greeting gate, passive health, client limits, allow and deny ---------
 * load-balancer.conf(5), FRONTENDS, CLIENT LIMITS, BACKENDS, GREETING GATE.
 */

#define LIMIT_REPLY                                                            \
	"421 4.7.0 Too many connections from your address, try again later"

/* The list must hold exactly these CIDRs (cidr_format's text), in this
 * order. */
static void
cidrs_are(const struct cidr_list *l, const char *ctx, size_t n, ...)
{
	va_list ap;

	ck_assert_msg(l->n == n, "%s: %zu CIDRs, want %zu", ctx, l->n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const char *want = va_arg(ap, const char *);
		char got[CIDR_STRLEN];

		cidr_format(&l->v[i], got, sizeof(got));
		ck_assert_msg(strcmp(got, want) == 0,
		              "%s: CIDR %zu is %s, want %s", ctx, i, got, want);
	}
	va_end(ap);
}

START_TEST(gate_and_limits_defaults)
{
	struct cfg_diag d;
	struct cfg *cfg = load_ok(FE_OK BE_OK, &d);
	const struct cfg_frontend *fe = &cfg->frontends[0];
	const struct cfg_backend *be = &cfg->backends[0];

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	ck_assert(be->greeting_gate);
	ck_assert_uint_eq(be->timeout_greeting_ms, 30000);
	ck_assert_int_eq(be->error_limit, 3);
	ck_assert_int_eq(fe->limits.maxconn, 0);
	ck_assert_int_eq(fe->limits.rate, 0);
	ck_assert_uint_eq(fe->limits.period_ms, 10000);
	ck_assert_int_eq(fe->limits.prefix4, 32);
	ck_assert_int_eq(fe->limits.prefix6, 64);
	ck_assert_str_eq(fe->limits.reply, LIMIT_REPLY);
	cidrs_are(&fe->limits.exempt, "default exempt", 2, "127.0.0.0/8",
	          "::1/128");
	ck_assert_int_eq(fe->limits.exempt.v[0].family, AF_INET);
	ck_assert_int_eq(fe->limits.exempt.v[1].family, AF_INET6);
	ck_assert_int_eq(fe->limits.table_size, 100000);
	cidrs_are(&fe->allow, "default allow", 0);
	cidrs_are(&fe->deny, "default deny", 0);
	ck_assert_str_eq(fe->deny_reply, "554 5.7.1 Access denied");
	cfg_free(cfg);
	cfg_diag_free(&d);

	/* An empty client_limits group: the same defaults. */
	cfg = load_ok(
	    "frontends = ( { name = \"in\"; bind = "
	    "\"127.0.0.1:2525\";\n"
	    "  backend = \"filters\"; client_limits = { }; } );\n" BE_OK,
	    &d);
	fe = &cfg->frontends[0];
	ck_assert_uint_eq(fe->limits.period_ms, 10000);
	ck_assert_int_eq(fe->limits.table_size, 100000);
	ck_assert_str_eq(fe->limits.reply, LIMIT_REPLY);
	cidrs_are(&fe->limits.exempt, "empty group", 2, "127.0.0.0/8",
	          "::1/128");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(gate_and_limits_parsed)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\"; backend = "
	    "\"filters\";\n"
	    "    client_limits = { maxconn = 1000000; rate = 1000000;"
	    " period = \"1m\";\n"
	    "      prefix4 = 24; prefix6 = 48; reply = \"450 4.7.1 slow "
	    "down\";\n"
	    "      exempt = ( \"10.0.0.0/8\", \"2001:db8:ffff::/48\" );"
	    " table_size = 10000000; };\n"
	    "    allow = [ \"192.0.2.0/24\", \"2001:db8::/32\","
	    " \"198.51.100.7\", \"2001:db8::1\" ];\n"
	    "    deny = ( \"192.0.2.128/25\", \"::ffff:203.0.113.0/120\","
	    " \"::/0\" );\n"
	    "    deny_reply = \"550 5.7.1 go away\"; },\n"
	    "  { name = \"in2\"; bind = \"127.0.0.1:2526\"; backend = "
	    "\"plain\";\n"
	    "    client_limits = { maxconn = 2; rate = 10; period = 100;"
	    " prefix4 = 0;\n"
	    "      prefix6 = 128; reply = \"\"; exempt = [ ]; table_size = 1;"
	    " };\n"
	    "    allow = [ ]; deny = [ \"0.0.0.0/0\" ]; deny_reply = \"\"; }\n"
	    ");\n"
	    "backends = (\n"
	    "  { name = \"filters\"; greeting_gate = false;"
	    " timeout_greeting = \"5s\";\n"
	    "    error_limit = 1000;\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\"; } ); "
	    "},\n"
	    "  { name = \"plain\"; greeting_gate = true; timeout_greeting = 1;"
	    " error_limit = 0;\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:2\"; } ); "
	    "}\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_frontend *in = &cfg->frontends[0];
	const struct cfg_frontend *in2 = &cfg->frontends[1];
	const struct cfg_backend *filters = &cfg->backends[0];
	const struct cfg_backend *plain = &cfg->backends[1];

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	ck_assert(!filters->greeting_gate);
	ck_assert_uint_eq(filters->timeout_greeting_ms, 5000);
	ck_assert_int_eq(filters->error_limit, 1000);
	ck_assert(plain->greeting_gate);
	ck_assert_uint_eq(plain->timeout_greeting_ms, 1);
	ck_assert_int_eq(plain->error_limit, 0);

	ck_assert_int_eq(in->limits.maxconn, 1000000);
	ck_assert_int_eq(in->limits.rate, 1000000);
	ck_assert_uint_eq(in->limits.period_ms, 60000);
	ck_assert_int_eq(in->limits.prefix4, 24);
	ck_assert_int_eq(in->limits.prefix6, 48);
	ck_assert_str_eq(in->limits.reply, "450 4.7.1 slow down");
	/* A list written replaces the default exempt list. */
	cidrs_are(&in->limits.exempt, "in exempt", 2, "10.0.0.0/8",
	          "2001:db8:ffff::/48");
	ck_assert_int_eq(in->limits.table_size, 10000000);
	/* A bare address is one host. */
	cidrs_are(&in->allow, "in allow", 4, "192.0.2.0/24", "2001:db8::/32",
	          "198.51.100.7/32", "2001:db8::1/128");
	ck_assert_int_eq(in->allow.v[1].family, AF_INET6);
	ck_assert_int_eq(in->allow.v[1].bits, 32);
	ck_assert_int_eq(in->allow.v[2].family, AF_INET);
	ck_assert_int_eq(in->allow.v[2].bits, 32);
	ck_assert_int_eq(in->allow.v[3].bits, 128);
	/* IPv4-mapped with a prefix of 96 or more: the IPv4 CIDR. */
	cidrs_are(&in->deny, "in deny", 3, "192.0.2.128/25", "203.0.113.0/24",
	          "::/0");
	ck_assert_int_eq(in->deny.v[1].family, AF_INET);
	ck_assert_int_eq(in->deny.v[2].family, AF_INET6);
	ck_assert_int_eq(in->deny.v[2].bits, 0);
	ck_assert_str_eq(in->deny_reply, "550 5.7.1 go away");

	ck_assert_int_eq(in2->limits.maxconn, 2);
	ck_assert_int_eq(in2->limits.rate, 10);
	ck_assert_uint_eq(in2->limits.period_ms, 100);
	ck_assert_int_eq(in2->limits.prefix4, 0);
	ck_assert_int_eq(in2->limits.prefix6, 128);
	ck_assert_str_eq(in2->limits.reply, "");
	cidrs_are(&in2->limits.exempt, "in2 exempt", 0);
	ck_assert_int_eq(in2->limits.table_size, 1);
	cidrs_are(&in2->allow, "in2 allow", 0);
	cidrs_are(&in2->deny, "in2 deny", 1, "0.0.0.0/0");
	ck_assert_str_eq(in2->deny_reply, "");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(gate_and_limits_out_of_range)
{
	backend_error("error_limit = 1001;", "error_limit",
	              "error_limit: 1001 is out of range");
	backend_error("error_limit = -1;", "error_limit",
	              "error_limit: -1 is out of range");
	backend_error("greeting_gate = \"yes\";", "greeting_gate",
	              "greeting_gate: expected true or false");
	backend_error("timeout_greeting = \"soon\";", "timeout_greeting",
	              "timeout_greeting: bad duration");
	backend_error("timeout_greeting = 0;", "timeout_greeting",
	              "timeout_greeting: duration must be at least 1ms");
	frontend_error("client_limits = { prefix4 = 33; };", "prefix4",
	               "prefix4: 33 is out of range");
	frontend_error("client_limits = { prefix4 = -1; };", "prefix4",
	               "prefix4: -1 is out of range");
	frontend_error("client_limits = { prefix6 = 129; };", "prefix6",
	               "prefix6: 129 is out of range");
	frontend_error("client_limits = { table_size = 0; };", "table_size",
	               "table_size: 0 is out of range");
	frontend_error("client_limits = { table_size = 10000001; };",
	               "table_size", "table_size: 10000001 is out of range");
	frontend_error("client_limits = { period = \"50ms\"; };", "period",
	               "period: duration must be at least 100ms");
	frontend_error("client_limits = { period = 99; };", "period",
	               "period: duration must be at least 100ms");
	frontend_error("client_limits = { period = \"often\"; };", "period",
	               "period: bad duration \"often\"");
	frontend_error("client_limits = { rate = -1; };", "rate",
	               "rate: -1 is out of range");
	frontend_error("client_limits = { rate = 1000001; };", "rate",
	               "rate: 1000001 is out of range");
	frontend_error("client_limits = { maxconn = -1; };", "client_limits",
	               "maxconn: -1 is out of range");
	frontend_error("client_limits = { maxconn = \"5\"; };", "client_limits",
	               "maxconn: expected an integer");
}
END_TEST

/* Slow start, the agent check and the state file (load-balancer.conf(5),
 * SLOW START, AGENT CHECK, OPERATOR STATE). */
START_TEST(weights_keys_defaults)
{
	struct cfg_diag d;
	struct cfg *cfg = load_ok(FE_OK BE_OK, &d);
	const struct cfg_backend *be = &cfg->backends[0];

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	ck_assert_uint_eq(be->slowstart_ms, 0);
	ck_assert_int_eq(be->agent.port, 0);
	ck_assert_uint_eq(be->agent.interval_ms, 5000);
	ck_assert_uint_eq(be->agent.timeout_ms, 2000);
	ck_assert_str_eq(be->agent.send, "");
	ck_assert(!be->has_agent);
	ck_assert_int_eq(be->servers[0].agent_port, 0);
	ck_assert_uint_eq(be->servers[0].agent_addr.len, 0);
	ck_assert_str_eq(cfg->global.state_file,
	                 "/var/lib/load-balancer/state");
	ck_assert(!cfg->global.state_file_set);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(weights_keys_parsed)
{
	static const char text[] =
	    "global = { state_file = \"\"; };\n" FE_OK "backends = (\n"
	    "  { name = \"filters\"; slowstart = \"1m\";\n"
	    "    agent = { port = 5555; interval = \"1s\"; send = "
	    "\"hello\\n\"; timeout = 300; };\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:25\"; },\n"
	    "      { name = \"f2\"; address = \"[::1]:25\"; agent_port = 7; "
	    "} ); },\n"
	    "  { name = \"plain\"; slowstart = \"0\";\n"
	    "    servers = ( { name = \"p1\"; address = \"127.0.0.1:26\"; },\n"
	    "      { name = \"p2\"; address = \"127.0.0.1:27\"; agent_port = "
	    "65535; } ); }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_backend *be = &cfg->backends[0],
	                         *pl = &cfg->backends[1];
	const struct sockaddr_in *a4;
	const struct sockaddr_in6 *a6;

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	ck_assert_str_eq(cfg->global.state_file, "");
	ck_assert(cfg->global.state_file_set);
	ck_assert_uint_eq(be->slowstart_ms, 60000);
	ck_assert_int_eq(be->agent.port, 5555);
	ck_assert_uint_eq(be->agent.interval_ms, 1000);
	ck_assert_uint_eq(be->agent.timeout_ms, 300);
	ck_assert_str_eq(be->agent.send, "hello\n");
	ck_assert_uint_eq(be->agent.send_len, 6);
	ck_assert(be->has_agent);
	/* The server's host on the agent port. */
	a4 = (const struct sockaddr_in *)(const void *)&be->servers[0]
	         .agent_addr.ss;
	ck_assert_uint_eq(be->servers[0].agent_addr.len,
	                  sizeof(struct sockaddr_in));
	ck_assert_uint_eq(ntohs(a4->sin_port), 5555);
	ck_assert_uint_eq(ntohl(a4->sin_addr.s_addr), 0x7f000001);
	a6 = (const struct sockaddr_in6 *)(const void *)&be->servers[1]
	         .agent_addr.ss;
	ck_assert_int_eq(a6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(a6->sin6_port), 7);
	/* No backend port: only the server with its own has an agent. */
	ck_assert_uint_eq(pl->slowstart_ms, 0);
	ck_assert(pl->has_agent);
	ck_assert_uint_eq(pl->servers[0].agent_addr.len, 0);
	ck_assert_uint_gt(pl->servers[1].agent_addr.len, 0);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(weights_keys_errors)
{
	backend_error("slowstart = \"soon\";", "slowstart",
	              "slowstart: bad duration");
	backend_error("slowstart = -5;", "slowstart",
	              "slowstart: bad duration -5");
	backend_error("agent = { port = 65536; };", "agent",
	              "port: 65536 is out of range");
	backend_error("agent = { port = -1; };", "agent",
	              "port: -1 is out of range");
	backend_error("agent = { interval = \"50ms\"; };", "agent",
	              "interval: duration must be at least 100ms");
	backend_error("agent = { timeout = 0; };", "agent",
	              "timeout: duration must be at least 1ms");
	backend_error("agent = { bogus = 1; };", "agent",
	              "unknown key 'bogus' in agent");
	backend_error("agent = 5555;", "agent",
	              "agent: expected a group { ... }");
	backend_error("agent = { send = 5; };", "agent",
	              "send: expected a string");
	global_error("state_file = \"state\";", "state_file",
	             "state_file: must be an absolute path to a file");
	global_error("state_file = \"/var/lib/\";", "state_file",
	             "state_file: must be an absolute path to a file");
	global_error("state_file = 1;", "state_file",
	             "state_file: expected a string");
}
END_TEST

START_TEST(agent_send_too_long)
{
	char send[1100], text[1600];

	memset(send, 'x', 1025);
	send[1025] = '\0';
	snprintf(text, sizeof(text),
	         FE_OK "backends = (\n"
	               "  { name = \"filters\"; agent = { send = \"%s\"; };\n"
	               "    servers = ( { name = \"f1\";"
	               " address = \"127.0.0.1:1\"; } );\n"
	               "  }\n"
	               ");\n",
	         send);
	one_error(text, "agent", "send: at most 1024 bytes");
}
END_TEST

START_TEST(agent_port_out_of_range)
{
	static const char text[] =
	    FE_OK "backends = (\n"
	          "  { name = \"filters\";\n"
	          "    servers = ( { name = \"f1\"; address = \"127.0.0.1:1\";"
	          " agent_port = 70000; } );\n"
	          "  }\n"
	          ");\n";

	one_error(text, "agent_port", "agent_port: 70000 is out of range");
}
END_TEST

/* A bad element of a CIDR list is an error at its own line.  (Not the
 * last one of a list written one element per line: libconfig gives that
 * element the line of the closing bracket, which it read ahead.) */
START_TEST(cidr_list_errors_at_element_line)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\"; backend = "
	    "\"filters\";\n"
	    "    allow = [\n"
	    "      \"192.0.2.0/24\",\n"
	    "      \"192.0.2.300\",\n"
	    "      \"2001:db8::/32\"\n"
	    "    ];\n"
	    "    deny = (\n"
	    "      \"10.0.0.0/8\",\n"
	    "      \"10.0.0.0/33\",\n"
	    "      \"2001:db8::/129\",\n"
	    "      \"\",\n"
	    "      \"192.0.2.0/24\"\n"
	    "    );\n"
	    "    client_limits = {\n"
	    "      exempt = [\n"
	    "        \"not-a-cidr\",\n"
	    "        \"127.0.0.0/8\"\n"
	    "      ];\n"
	    "    };\n"
	    "  }\n"
	    ");\n" BE_OK;
	struct cfg_diag d;

	load_bad(text, &d, 5);
	expect_error(&d, text, "\"192.0.2.300\"",
	             "allow: bad CIDR \"192.0.2.300\": bad IPv4 address");
	expect_error(&d, text, "\"10.0.0.0/33\"",
	             "deny: bad CIDR \"10.0.0.0/33\": prefix length must be "
	             "0..32");
	expect_error(&d, text, "\"2001:db8::/129\"",
	             "deny: bad CIDR \"2001:db8::/129\": prefix length must "
	             "be 0..128");
	expect_error(&d, text, "\"\",\n", "deny: bad CIDR \"\": empty CIDR");
	expect_error(&d, text, "\"not-a-cidr\"",
	             "exempt: bad CIDR \"not-a-cidr\"");
	cfg_diag_free(&d);

	/* The message starts with the key: "FILE:LINE: deny: bad CIDR". */
	frontend_error("deny = [ \"10.0.0.0/8x\" ];", "deny",
	               "deny: bad CIDR \"10.0.0.0/8x\"");
	frontend_error("deny = [ \" 10.0.0.0/8\" ];", "deny", "deny: bad CIDR");
	frontend_error("deny = [ \"10.0.0.0/-8\" ];", "deny", "deny: bad CIDR");
	frontend_error("allow = ( \"/24\" );", "allow", "allow: bad CIDR");
	frontend_error("client_limits = { exempt = [ \"::1/\" ]; };", "exempt",
	               "exempt: bad CIDR \"::1/\"");
}
END_TEST

START_TEST(cidr_list_must_be_a_list)
{
	frontend_error("deny = \"10.0.0.0/8\";", "deny",
	               "deny: expected a list of CIDR strings");
	frontend_error("deny = { net = \"10.0.0.0/8\"; };", "deny",
	               "deny: expected a list of CIDR strings");
	frontend_error("allow = 10;", "allow",
	               "allow: expected a list of CIDR strings");
	frontend_error("client_limits = { exempt = \"127.0.0.1\"; };", "exempt",
	               "exempt: expected a list of CIDR strings");
	frontend_error("deny = [ 10 ];", "deny",
	               "deny: expected a CIDR string");
	frontend_error("deny = ( \"10.0.0.0/8\", ( \"192.0.2.0/24\" ) );",
	               "deny", "deny: expected a CIDR string");
}
END_TEST

/* Bits after the prefix: read as the network, with a warning. */
START_TEST(cidr_host_bits_warn)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"in\"; bind = \"127.0.0.1:2525\"; backend = "
	    "\"filters\";\n"
	    "    deny = [\n"
	    "      \"10.1.2.3/8\",\n"
	    "      \"192.0.2.0/24\"\n"
	    "    ];\n"
	    "    allow = [ \"2001:db8::1/32\" ];\n"
	    "    client_limits = { exempt = [ \"127.0.0.1/8\" ]; };\n"
	    "  }\n"
	    ");\n" BE_OK;
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);
	const struct cfg_frontend *fe = &cfg->frontends[0];

	ck_assert_msg(d.nwarnings == 3, "want 3 warnings:%s", all_msgs(&d));
	expect_warning(&d, text, "\"10.1.2.3/8\"", "10.1.2.3/8");
	expect_warning(&d, text, "\"10.1.2.3/8\"", "10.0.0.0/8");
	expect_warning(&d, text, "\"2001:db8::1/32\"", "2001:db8::/32");
	expect_warning(&d, text, "\"127.0.0.1/8\"", "127.0.0.0/8");
	cidrs_are(&fe->deny, "deny", 2, "10.0.0.0/8", "192.0.2.0/24");
	cidrs_are(&fe->allow, "allow", 1, "2001:db8::/32");
	cidrs_are(&fe->limits.exempt, "exempt", 1, "127.0.0.0/8");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(limit_replies_checked)
{
	frontend_error("deny_reply = \"250 OK\";", "deny_reply",
	               "deny_reply: must be");
	frontend_error("deny_reply = \"554 a\\r\\n554 b\";", "deny_reply",
	               "deny_reply: must be");
	frontend_error("deny_reply = \"5541 no\";", "deny_reply",
	               "deny_reply: must be");
	frontend_error("deny_reply = 554;", "deny_reply",
	               "deny_reply: expected a string");
	frontend_error("client_limits = { reply = \"250 OK\"; };", "reply",
	               "reply: must be");
	frontend_error("client_limits = { reply = \"421 a\\n\"; };", "reply",
	               "reply: must be");
	frontend_error("client_limits = { reply = \"too many\"; };", "reply",
	               "reply: must be");
}
END_TEST

START_TEST(client_limits_unknown_key)
{
	frontend_error("client_limits = { maxconns = 3; };", "maxconns",
	               "unknown key 'maxconns' in client_limits");
	frontend_error("client_limits = { deny = [ ]; };", "client_limits",
	               "unknown key 'deny' in client_limits");
	frontend_error("client_limits = 5;", "client_limits",
	               "client_limits: expected a group");
	frontend_error("client_limits = ( 1, 2 );", "client_limits",
	               "client_limits: expected a group");
}
END_TEST

/* Port 465 (implicit TLS: the client speaks first) feeding a gated
 * backend: a warning at the frontend, once, not an error. */
START_TEST(port465_gated_backend_warns)
{
	static const char text[] =
	    "frontends = (\n"
	    "  { name = \"smtps\"; backend = \"gated\";\n"
	    "    bind = [ \"127.0.0.1:2465\", \"127.0.0.1:465\", \"[::1]:465\" "
	    "]; },\n"
	    "  { name = \"smtps2\"; backend = \"l4\"; bind = "
	    "\"127.0.0.2:465\"; "
	    "}\n"
	    ");\n"
	    "backends = (\n"
	    "  { name = \"gated\";\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:10465\"; } "
	    ");\n"
	    "  },\n"
	    "  { name = \"l4\"; greeting_gate = false;\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:10466\"; } "
	    ");\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_msg(d.nwarnings == 1 && d.n == 1, "want one warning:%s",
	              all_msgs(&d));
	expect_warning(&d, text, "{ name = \"smtps\"", "port 465");
	expect_warning(&d, text, "{ name = \"smtps\"", "greeting_gate");
	expect_warning(&d, text, "{ name = \"smtps\"", "'gated'");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(port465_ungated_no_warning)
{
	static const char text[] =
	    "frontends = ( { name = \"smtps\"; bind = \"127.0.0.1:465\";"
	    " backend = \"filters\"; } );\n"
	    "backends = (\n"
	    "  { name = \"filters\"; greeting_gate = false;\n"
	    "    servers = ( { name = \"f1\"; address = \"127.0.0.1:10465\"; } "
	    ");\n"
	    "  }\n"
	    ");\n";
	struct cfg_diag d;
	struct cfg *cfg = load_ok(text, &d);

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* --- stats_listen / stats_auth ------------------------------------------- */

static struct cfg *
load_global_ok(const char *global_keys, struct cfg_diag *d)
{
	static char text[1024];

	snprintf(text, sizeof(text), "global = {\n  %s\n};\n" FE_OK BE_OK,
	         global_keys);
	return load_ok(text, d);
}

START_TEST(stats_valid)
{
	static const struct {
		const char *keys, *listen;
		uint16_t port;
		int family;
		const char *auth;
	} ok[] = {
	    {"stats_listen = \"127.0.0.1:9000\";", "127.0.0.1:9000", 9000,
	     AF_INET, ""},
	    {"stats_listen = \"127.8.9.10:9001\";", "127.8.9.10:9001", 9001,
	     AF_INET, ""},
	    {"stats_listen = \"[::1]:9002\";", "[::1]:9002", 9002, AF_INET6,
	     ""},
	    {"stats_listen = \"[::ffff:127.0.0.1]:9003\";",
	     "[::ffff:127.0.0.1]:9003", 9003, AF_INET6, ""},
	    {"stats_listen = \"0.0.0.0:8404\"; stats_auth = \"admin:s3:cr=t\";",
	     "0.0.0.0:8404", 8404, AF_INET, "admin:s3:cr=t"},
	    {"stats_listen = \"[::]:8405\"; stats_auth = \"u:p\";", "[::]:8405",
	     8405, AF_INET6, "u:p"},
	    {"stats_auth = \"u:p\";", "127.0.0.1:8404", 8404, AF_INET, "u:p"},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cfg_diag d;
		struct cfg *cfg = load_global_ok(ok[i].keys, &d);
		const struct cfg_global *g = &cfg->global;

		ck_assert_msg(d.n == 0, "%s: unexpected messages:%s",
		              ok[i].keys, all_msgs(&d));
		ck_assert_str_eq(g->stats_listen, ok[i].listen);
		ck_assert_str_eq(g->stats_addr.text, ok[i].listen);
		ck_assert_int_eq(g->stats_addr.ss.ss_family, ok[i].family);
		ck_assert_uint_eq(port_of(&g->stats_addr), ok[i].port);
		ck_assert_str_eq(g->stats_auth, ok[i].auth);
		ck_assert(g->stats_listen_set ==
		          (strstr(ok[i].keys, "stats_listen") != NULL));
		cfg_free(cfg);
		cfg_diag_free(&d);
	}
}
END_TEST

/* global.workers: any count of threads up to 1024 (0: one per CPU). */
START_TEST(workers_counts)
{
	static const int ok[] = {0, 1, 2, 8, 1024};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cfg_diag d;
		char keys[64];
		struct cfg *cfg;

		snprintf(keys, sizeof(keys), "workers = %d;", ok[i]);
		cfg = load_global_ok(keys, &d);
		ck_assert_msg(d.n == 0, "%s: unexpected messages:%s", keys,
		              all_msgs(&d));
		ck_assert_int_eq(cfg->global.workers, ok[i]);
		cfg_free(cfg);
		cfg_diag_free(&d);
	}
	global_error("workers = 1025;", "workers", "out of range");
}
END_TEST

START_TEST(stats_disabled)
{
	struct cfg_diag d;
	struct cfg *cfg = load_global_ok("stats_listen = \"\";", &d);
	char text[512];

	ck_assert_msg(d.n == 0, "unexpected messages:%s", all_msgs(&d));
	ck_assert_str_eq(cfg->global.stats_listen, "");
	ck_assert(cfg->global.stats_listen_set);
	ck_assert_uint_eq(cfg->global.stats_addr.len, 0);
	cfg_free(cfg);
	cfg_diag_free(&d);

	/* Credentials without a page: a warning on their line. */
	snprintf(text, sizeof(text),
	         "global = {\n  stats_listen = \"\";\n"
	         "  stats_auth = \"u:p\";\n};\n" FE_OK BE_OK);
	cfg = load_ok(text, &d);
	ck_assert_uint_eq(d.nwarnings, 1);
	expect_warning(&d, text, "stats_auth", "stats_auth has no effect");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(stats_errors)
{
	global_error("stats_listen = \"0.0.0.0:8404\";", "stats_listen",
	             "stats_listen: 0.0.0.0:8404 is not a loopback address: "
	             "set stats_auth");
	global_error("stats_listen = \"[::]:8404\";", "stats_listen",
	             "is not a loopback address");
	global_error("stats_listen = \"192.0.2.1:8404\";", "stats_listen",
	             "is not a loopback address");
	global_error("stats_listen = \"127.0.0.1\";", "stats_listen",
	             "stats_listen: cannot use address \"127.0.0.1\"");
	global_error("stats_listen = \"127.0.0.1:0\";", "stats_listen",
	             "stats_listen: cannot use address");
	global_error("stats_listen = \"127.0.0.1:70000\";", "stats_listen",
	             "stats_listen: cannot use address");
	global_error("stats_listen = 8404;", "stats_listen",
	             "stats_listen: expected a string");
	global_error("stats_auth = \"nocolon\";", "stats_auth",
	             "stats_auth: expected \"user:password\"");
	global_error("stats_auth = \":pw\";", "stats_auth",
	             "stats_auth: expected \"user:password\"");
	global_error("stats_auth = \"user:\";", "stats_auth",
	             "stats_auth: expected \"user:password\"");
	global_error("stats_auth = \"us\\ter:pw\";", "stats_auth",
	             "stats_auth: control characters are not allowed");
	global_error("stats_auth = true;", "stats_auth",
	             "stats_auth: expected a string");
	{
		char keys[400];

		snprintf(keys, sizeof(keys), "stats_auth = \"u:%0300d\";", 0);
		global_error(keys, "stats_auth", "longer than 255 bytes");
	}
}
END_TEST

START_TEST(stats_auth_with_non_loopback_error_once)
{
	/* A bad address is one error, not two (no loopback complaint). */
	static const char text[] = "global = {\n"
	                           "  stats_listen = \"no-such-host.invalid:"
	                           "8404\";\n"
	                           "};\n" FE_OK BE_OK;
	struct cfg_diag d;

	load_bad(text, &d, 1);
	expect_error(&d, text, "stats_listen", "cannot use address");
	cfg_diag_free(&d);
}
END_TEST

static Suite *
cfg_suite(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, minimal_valid);
	tcase_add_test(tc, defaults_applied);
	tcase_add_test(tc, values_read);
	tcase_add_test(tc, fullconn_from_frontend_maxconn);
	tcase_add_test(tc, bind_string_and_lists);
	tcase_add_test(tc, hostname_address_resolved);
	tcase_add_test(tc, durations_integer_and_string);
	tcase_add_test(tc, weight_bounds_accepted);
	tcase_add_test(tc, same_server_name_in_two_backends_ok);
	suite_add_tcase(s, tc);

	tc = tcase_create("syntax");
	tcase_add_test(tc, syntax_error_line);
	tcase_add_test(tc, syntax_error_deep_in_file);
	tcase_add_test(tc, syntax_error_unterminated);
	tcase_add_test(tc, syntax_error_duplicate_setting);
	tcase_add_test(tc, diag_uses_given_name);
	tcase_add_test(tc, load_file_names_path);
	suite_add_tcase(s, tc);

	tc = tcase_create("unknown_keys");
	tcase_add_test(tc, unknown_key_top_level);
	tcase_add_test(tc, unknown_key_global);
	tcase_add_test(tc, unknown_key_global_log);
	tcase_add_test(tc, unknown_key_frontend);
	tcase_add_test(tc, unknown_key_backend);
	tcase_add_test(tc, unknown_key_server);
	tcase_add_test(tc, unknown_key_health_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	/* unresolvable_host may wait on an unreachable DNS. */
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, bad_duration);
	tcase_add_test(tc, bad_duration_frontend_and_global);
	tcase_add_test(tc, out_of_range);
	tcase_add_test(tc, rise_fall_out_of_range);
	tcase_add_test(tc, bad_enum);
	tcase_add_test(tc, bad_enum_lists_choices);
	tcase_add_test(tc, wrong_type);
	tcase_add_test(tc, wrong_type_frontend_name_one_error);
	tcase_add_test(tc, wrong_type_names);
	tcase_add_test(tc, unparsable_address);
	tcase_add_test(tc, unresolvable_host);
	tcase_add_test(tc, unavailable_reply_checked);
	suite_add_tcase(s, tc);

	tc = tcase_create("references");
	tcase_add_test(tc, missing_backend_reference);
	tcase_add_test(tc, duplicate_frontend);
	tcase_add_test(tc, duplicate_backend);
	tcase_add_test(tc, duplicate_server);
	tcase_add_test(tc, missing_frontend_name);
	tcase_add_test(tc, missing_frontend_bind);
	tcase_add_test(tc, missing_frontend_backend);
	tcase_add_test(tc, missing_backend_name);
	tcase_add_test(tc, missing_server_name);
	tcase_add_test(tc, missing_server_address);
	tcase_add_test(tc, multiple_errors_all_reported);
	tcase_add_test(tc, messages_in_line_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("warnings");
	tcase_add_test(tc, port25_short_timeout_server_warns);
	tcase_add_test(tc, port25_default_timeout_server_warns);
	tcase_add_test(tc, port25_long_timeout_no_warning);
	tcase_add_test(tc, other_port_short_timeout_no_warning);
	tcase_add_test(tc, warning_with_error_still_fails);
	suite_add_tcase(s, tc);

	tc = tcase_create("identity_and_checks");
	tcase_add_test(tc, identity_keys_parsed);
	tcase_add_test(tc, source_address_parsed);
	tcase_add_test(tc, identity_key_errors);
	tcase_add_test(tc, health_check_parsed);
	tcase_add_test(tc, health_check_errors);
	tcase_add_test(tc, defaults_accepted);
	suite_add_tcase(s, tc);

	tc = tcase_create("gate_and_limits");
	tcase_add_test(tc, gate_and_limits_defaults);
	tcase_add_test(tc, gate_and_limits_parsed);
	tcase_add_test(tc, gate_and_limits_out_of_range);
	tcase_add_test(tc, weights_keys_defaults);
	tcase_add_test(tc, weights_keys_parsed);
	tcase_add_test(tc, weights_keys_errors);
	tcase_add_test(tc, agent_send_too_long);
	tcase_add_test(tc, agent_port_out_of_range);
	tcase_add_test(tc, cidr_list_errors_at_element_line);
	tcase_add_test(tc, cidr_list_must_be_a_list);
	tcase_add_test(tc, cidr_host_bits_warn);
	tcase_add_test(tc, limit_replies_checked);
	tcase_add_test(tc, client_limits_unknown_key);
	tcase_add_test(tc, port465_gated_backend_warns);
	tcase_add_test(tc, port465_ungated_no_warning);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	/* stats_auth_with_non_loopback_error_once resolves a bad name. */
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stats_valid);
	tcase_add_test(tc, workers_counts);
	tcase_add_test(tc, stats_disabled);
	tcase_add_test(tc, stats_errors);
	tcase_add_test(tc, stats_auth_with_non_loopback_error_once);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cfg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
