/* Unit tests for haproxy_import.c (load-balancer --import-haproxy, README
 * "--import-haproxy"): the seed's two HAProxy configurations, a mail pool
 * with the directives people commonly write and one with client limits,
 * allow and deny lists and passive health, each against a golden output
 * compared byte for byte and loaded by the real configuration loader;
 * every class of malformed input; and the translation rules one by one. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "cfg.h"
#include "haproxy_import.h"

#define DATA TEST_SRCDIR "/tests/unit/data/"

/* --- helpers ------------------------------------------------------------ */

struct result {
	int status;
	char *out;
	char *diag;
};

static void
result_free(struct result *r)
{
	free(r->out);
	free(r->diag);
}

/* Translate an open stream named name. */
static struct result
run_stream(FILE *in, const char *name)
{
	struct result r;
	size_t outlen, diaglen;
	FILE *out, *diag;

	out = open_memstream(&r.out, &outlen);
	diag = open_memstream(&r.diag, &diaglen);
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(diag);
	r.status = haproxy_import(in, name, out, diag);
	fclose(out);
	fclose(diag);
	return r;
}

/* Translate text, named "t.cfg" in messages. */
static struct result
run(const char *text)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	struct result r;

	ck_assert_ptr_nonnull(in);
	r = run_stream(in, "t.cfg");
	fclose(in);
	return r;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = calloc((size_t)n + 1, 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* got == want, with a message that fits in Check's limit. */
#define same(got, want)                                                        \
	ck_assert_msg(strcmp((got), (want)) == 0,                              \
	              "got:\n%.1800s\nwant:\n%.1800s", (got), (want))

/* The output holds needle. */
static void
has(const struct result *r, const char *needle)
{
	ck_assert_msg(strstr(r->out, needle) != NULL,
	              "output lacks \"%s\"; output:\n%.1500s\nstderr:\n%.800s",
	              needle, r->out, r->diag);
}

static void
lacks(const struct result *r, const char *needle)
{
	ck_assert_msg(strstr(r->out, needle) == NULL,
	              "output has \"%s\"; output:\n%.1500s", needle, r->out);
}

/* The diagnostics hold needle. */
static void
says(const struct result *r, const char *needle)
{
	ck_assert_msg(strstr(r->diag, needle) != NULL,
	              "stderr lacks \"%s\"; stderr:\n%.2000s", needle, r->diag);
}

/* Translated (exit 0); the output loads with the real configuration
 * loader without errors. */
static void
loads(const struct result *r)
{
	struct cfg_diag d;
	struct cfg *cfg;

	ck_assert_msg(r->status == 0, "exit %d; stderr:\n%.2000s", r->status,
	              r->diag);
	cfg_diag_init(&d);
	cfg = cfg_load_string(r->out, "out.conf", &d);
	ck_assert_msg(cfg != NULL && d.nerrors == 0,
	              "the translation does not load (%zu errors, first: "
	              "%s); output:\n%.1500s",
	              d.nerrors, d.n > 0 ? d.msgs[0] : "-", r->out);
	cfg_free(cfg);
	cfg_diag_free(&d);
}

/* Refused (exit 1), nothing written, and the message expected. */
static void
refused(const char *text, const char *message)
{
	struct result r = run(text);

	ck_assert_msg(r.status == 1, "exit %d for:\n%.500s\nstderr:\n%.1000s",
	              r.status, text, r.diag);
	ck_assert_msg(r.out[0] == '\0', "output written:\n%.1500s", r.out);
	says(&r, message);
	result_free(&r);
}

/* --- the seed and the mail pool: golden files --------------------------- */

static void
golden(const char *base, const char *expected_diag)
{
	char path[512], name[128];
	struct result r;
	char *want;
	FILE *in;

	snprintf(name, sizeof(name), "%s.cfg", base);
	snprintf(path, sizeof(path), DATA "%s", name);
	in = fopen(path, "r");
	ck_assert_msg(in != NULL, "cannot open %s", path);
	r = run_stream(in, name);
	fclose(in);
	ck_assert_msg(r.status == 0, "exit %d; stderr:\n%.2000s", r.status,
	              r.diag);
	same(r.diag, expected_diag);
	snprintf(path, sizeof(path), DATA "%s.conf", base);
	want = read_file(path);
	ck_assert_msg(strcmp(r.out, want) == 0,
	              "the translation differs from %s; got:\n%.3000s", path,
	              r.out);
	free(want);
	result_free(&r);
}

#define SECOND_LOG(file)                                                       \
	file ":4: cannot translate: log 127.0.0.1 local1 notice (one log "     \
	     "target here: global.log takes the first \"log\" line)\n"

START_TEST(seed_nontransparent)
{
	golden("haproxy-seed-nontransparent",
	       SECOND_LOG("haproxy-seed-nontransparent.cfg"));
}
END_TEST

START_TEST(seed_transparent)
{
	golden("haproxy-seed-transparent",
	       SECOND_LOG("haproxy-seed-transparent.cfg"));
}
END_TEST

START_TEST(mail_pool)
{
	golden(
	    "haproxy-mail-pool",
	    "haproxy-mail-pool.cfg:6: cannot translate: log 10.0.0.9:514 "
	    "local3 (one log target here: global.log takes the first \"log\" "
	    "line)\n"
	    "haproxy-mail-pool.cfg:13: cannot translate: stats socket "
	    "/run/haproxy/admin.sock mode 660 level admin "
	    "(global.control_socket and lbctl replace the stats socket)\n"
	    "haproxy-mail-pool.cfg:14: cannot translate: stats timeout 30s "
	    "(global.control_socket and lbctl replace the stats socket)\n"
	    "haproxy-mail-pool.cfg:33: warning: frontend \"smtp-in\": "
	    "\"transparent\" is one setting for the whole frontend here: it "
	    "applies to this bind line and any other without it too\n"
	    "haproxy-mail-pool.cfg:38: cannot translate: option tcpka (no "
	    "TCP keep-alive probes here)\n"
	    "haproxy-mail-pool.cfg:50: warning: servers of backend "
	    "\"filters\" disagree on on-marked-down shutdown-sessions, which "
	    "f3, spare, old do not have: on_marked_down is one setting for "
	    "the whole backend here, and \"shutdown-sessions\" applies to "
	    "every server\n"
	    "haproxy-mail-pool.cfg:50: warning: servers of backend "
	    "\"filters\" disagree on slowstart: slowstart is one setting for "
	    "the backend here, and the most common value, none, is used "
	    "instead of 30s for f3 (line 50)\n"
	    "haproxy-mail-pool.cfg:59: warning: servers of backend "
	    "\"submission\" disagree on inter (10s for s1, 20s for s2): "
	    "health_check has one interval for the backend, 10s is used\n"
	    "haproxy-mail-pool.cfg:59: warning: servers of backend "
	    "\"submission\" disagree on fastinter (1s for s1, default for "
	    "s2): health_check has one fastinter for the backend, 1s is "
	    "used\n"
	    "haproxy-mail-pool.cfg:59: warning: servers of backend "
	    "\"submission\" disagree on downinter (30s for s1, default for "
	    "s2): health_check has one downinter for the backend, 30s is "
	    "used\n");
}
END_TEST

START_TEST(limits)
{
	golden(
	    "haproxy-limits",
	    "haproxy-limits.cfg:29: cannot translate: tcp-request "
	    "inspect-delay 5s (no content inspection here: the rules that "
	    "would use it are reported)\n"
	    "haproxy-limits.cfg:30: cannot translate: tcp-request content "
	    "reject if { req_len gt 0 } (req_len: client bytes are not "
	    "inspected; those sent before the greeting reach the server, "
	    "whose pregreet test (postscreen) sees them "
	    "(load-balancer.conf(5), GREETING GATE))\n"
	    "haproxy-limits.cfg:51: cannot translate: on-error fail-check "
	    "(HAProxy counts one failed check; error_limit marks the server "
	    "DOWN at once, as on-error mark-down does)\n"
	    "haproxy-limits.cfg:51: warning: servers of backend \"filters\" "
	    "disagree on observe layer4 error-limit (f1 5, f2 5, f3 3): "
	    "error_limit is one setting for the backend here, the smallest, "
	    "3, is used\n"
	    "haproxy-limits.cfg:54: warning: observe layer4 without on-error "
	    "is on-error fail-check in HAProxy (the failures count as one "
	    "failed check); error_limit marks the server DOWN at once, as "
	    "on-error mark-down does\n"
	    "haproxy-limits.cfg:55: cannot translate: observe layer7 (server "
	    "s2: HTTP responses only, not meaningful in TCP mode; "
	    "error_limit counts failed connects and greetings (observe "
	    "layer4))\n"
	    "haproxy-limits.cfg:55: warning: servers of backend "
	    "\"submission\" disagree on observe layer4 error-limit (s1 10, "
	    "s2 none): error_limit is one setting for the backend here, the "
	    "smallest, 10, is used\n");
}
END_TEST

/* slowstart, agent-* and the server state directives (README
 * "--import-haproxy"): default-server inheritance, agent ports that
 * differ, a backend where only some servers have an agent, servers that
 * disagree on slowstart and agent-inter, agent-send's escapes. */
START_TEST(agent)
{
	golden("haproxy-agent",
	       "haproxy-agent.cfg:8: warning: server-state-base: not needed: "
	       "operator state (drain, maint, weight set with lbctl) is saved "
	       "automatically to global.state_file\n"
	       "haproxy-agent.cfg:9: warning: server-state-file: not needed: "
	       "operator state (drain, maint, weight set with lbctl) is saved "
	       "automatically to global.state_file\n"
	       "haproxy-agent.cfg:18: warning: load-server-state-from-file: "
	       "not needed: operator state (drain, maint, weight set with "
	       "lbctl) is saved automatically to global.state_file\n"
	       "haproxy-agent.cfg:33: warning: servers of backend \"filters\" "
	       "disagree on slowstart: slowstart is one setting for the "
	       "backend here, and the most common value, 30s, is used instead "
	       "of 1m for f4 (line 33)\n"
	       "haproxy-agent.cfg:38: warning: server-state-file-name: not "
	       "needed: operator state (drain, maint, weight set with lbctl) "
	       "is saved automatically to global.state_file\n"
	       "haproxy-agent.cfg:40: warning: servers of backend \"relays\" "
	       "disagree on agent-inter: agent.interval is one setting for "
	       "the backend here, and the most common value, 10s, is used "
	       "instead of 2s for r1 (line 40)\n"
	       "haproxy-agent.cfg:41: warning: servers of backend \"relays\" "
	       "disagree on slowstart: slowstart is one setting for the "
	       "backend here, and the most common value, 1s, is used instead "
	       "of none for r2 (line 41)\n"
	       "haproxy-agent.cfg:42: cannot translate: agent-addr 10.9.9.9 "
	       "(server r3: the agent check connects to the server's own "
	       "address)\n"
	       "haproxy-agent.cfg:48: warning: server s1: agent-check without "
	       "agent-port, which HAProxy refuses: no agent check for this "
	       "server\n");
}
END_TEST

/* The golden outputs are valid configurations for the real loader. */
START_TEST(goldens_load)
{
	static const char *const files[] = {"haproxy-seed-nontransparent.conf",
	                                    "haproxy-seed-transparent.conf",
	                                    "haproxy-mail-pool.conf",
	                                    "haproxy-limits.conf",
	                                    "haproxy-agent.conf",
	                                    NULL};

	for (size_t i = 0; files[i] != NULL; i++) {
		char path[512];
		struct cfg_diag d;
		struct cfg *cfg;

		snprintf(path, sizeof(path), DATA "%s", files[i]);
		cfg_diag_init(&d);
		cfg = cfg_load_file(path, &d);
		ck_assert_msg(cfg != NULL && d.nerrors == 0,
		              "%s does not load: %zu errors, first: %s", path,
		              d.nerrors, d.n > 0 ? d.msgs[0] : "-");
		cfg_free(cfg);
		cfg_diag_free(&d);
	}
}
END_TEST

/* The seed's meaning, checked on the loaded configuration. */
START_TEST(seed_meaning)
{
	struct cfg_diag d;
	struct cfg *cfg;
	const struct cfg_backend *be;

	cfg_diag_init(&d);
	cfg = cfg_load_file(DATA "haproxy-seed-transparent.conf", &d);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->global.maxconn, 6000);
	ck_assert(cfg->global.daemon);
	ck_assert(cfg->global.log.sessions);
	ck_assert_uint_eq(cfg->nfrontends, 1);
	ck_assert(cfg->frontends[0].transparent);
	ck_assert_str_eq(cfg->frontends[0].binds[0].text, "0.0.0.0:25");
	ck_assert_uint_eq(cfg->frontends[0].timeout_client_ms, 60000);
	be = cfg_find_backend(cfg, "TO-FILTER-CLUSTER");
	ck_assert_ptr_nonnull(be);
	ck_assert_str_eq(be->source, "clientip");
	ck_assert_int_eq(be->proxy_protocol, PP_V1);
	ck_assert_int_eq(be->on_marked_down, MD_SHUTDOWN_SESSIONS);
	ck_assert_uint_eq(be->timeout_server_ms, 60000);
	ck_assert_uint_eq(be->timeout_connect_ms, 5000);
	ck_assert(be->has_check);
	/* "#  option smtpchk HELO noor.net" stays a comment: TCP check. */
	ck_assert_int_eq(be->check.type, CHECK_TCP);
	ck_assert_uint_eq(be->check.interval_ms, 6000);
	ck_assert_uint_eq(be->nservers, 3);
	for (size_t i = 0; i < be->nservers; i++) {
		ck_assert_int_eq(be->servers[i].weight, 100);
		ck_assert(be->servers[i].check);
		ck_assert_int_eq(be->servers[i].maxconn, 0);
	}
	ck_assert_str_eq(be->servers[2].addr.text, "10.10.10.3:25");
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* The limits file's meaning, checked on the loaded configuration. */
START_TEST(limits_meaning)
{
	struct cfg_diag d;
	struct cfg *cfg;
	const struct cfg_frontend *fe;

	cfg_diag_init(&d);
	cfg = cfg_load_file(DATA "haproxy-limits.conf", &d);
	ck_assert_msg(cfg != NULL && d.nerrors == 0, "first error: %s",
	              d.n > 0 ? d.msgs[0] : "-");
	ck_assert_uint_eq(cfg->nfrontends, 2);
	fe = &cfg->frontends[0];
	ck_assert_str_eq(fe->name, "smtp-in");
	ck_assert_int_eq(fe->limits.maxconn, 10);
	ck_assert_int_eq(fe->limits.rate, 30);
	ck_assert_uint_eq(fe->limits.period_ms, 10000);
	ck_assert_int_eq(fe->limits.prefix4, 32);
	ck_assert_int_eq(fe->limits.prefix6, 128);
	ck_assert_int_eq(fe->limits.table_size, 102400);
	ck_assert_uint_eq(fe->limits.exempt.n, 2);
	ck_assert_uint_eq(fe->deny.n, 3);
	ck_assert_uint_eq(fe->allow.n, 0);
	fe = &cfg->frontends[1];
	ck_assert_str_eq(fe->name, "submission");
	ck_assert_int_eq(fe->limits.maxconn, 5);
	ck_assert_int_eq(fe->limits.rate, 0);
	ck_assert_int_eq(fe->limits.table_size, 1024);
	ck_assert_uint_eq(fe->allow.n, 2);
	ck_assert_uint_eq(fe->deny.n, 0);
	/* The stick-table holder is no backend. */
	ck_assert_ptr_null(cfg_find_backend(cfg, "per_source"));
	ck_assert_int_eq(cfg_find_backend(cfg, "filters")->error_limit, 3);
	ck_assert_int_eq(cfg_find_backend(cfg, "submission")->error_limit, 10);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* The agent file's meaning, checked on the loaded configuration. */
START_TEST(agent_meaning)
{
	struct cfg_diag d;
	struct cfg *cfg;
	const struct cfg_backend *be;

	cfg_diag_init(&d);
	cfg = cfg_load_file(DATA "haproxy-agent.conf", &d);
	ck_assert_msg(cfg != NULL && d.nerrors == 0, "first error: %s",
	              d.n > 0 ? d.msgs[0] : "-");
	ck_assert_str_eq(cfg->global.state_file,
	                 "/var/lib/load-balancer/state");

	be = cfg_find_backend(cfg, "filters");
	ck_assert_ptr_nonnull(be);
	ck_assert_uint_eq(be->slowstart_ms, 30000);
	ck_assert(be->has_agent);
	ck_assert_int_eq(be->agent.port, 10999);
	ck_assert_uint_eq(be->agent.interval_ms, 4000);
	ck_assert_uint_eq(be->agent.timeout_ms, 3000);
	ck_assert_str_eq(be->agent.send, "queue\n");
	ck_assert_uint_eq(be->nservers, 4);
	ck_assert_int_eq(be->servers[0].agent_port, 0);
	ck_assert_uint_gt(be->servers[0].agent_addr.len, 0);
	ck_assert_int_eq(be->servers[2].agent_port, 11000);

	/* Only r1, r3 and r4 ran an agent in HAProxy. */
	be = cfg_find_backend(cfg, "relays");
	ck_assert_ptr_nonnull(be);
	ck_assert_uint_eq(be->slowstart_ms, 1000);
	ck_assert(be->has_agent);
	ck_assert_int_eq(be->agent.port, 0);
	ck_assert_uint_eq(be->agent.interval_ms, 10000);
	ck_assert_uint_eq(be->agent.send_len, 14);
	ck_assert_str_eq(be->agent.send, "ready?\r\n\t\\ \"q\"");
	ck_assert_int_eq(be->servers[0].agent_port, 9999);
	ck_assert_uint_gt(be->servers[0].agent_addr.len, 0);
	ck_assert_uint_eq(be->servers[1].agent_addr.len, 0);
	ck_assert_int_eq(be->servers[3].agent_port, 9998);

	be = cfg_find_backend(cfg, "spare");
	ck_assert_ptr_nonnull(be);
	ck_assert(!be->has_agent);
	ck_assert_uint_eq(be->slowstart_ms, 0);
	cfg_free(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* --- malformed input: exit 1, nothing written ------------------------------
 */

START_TEST(server_outside_backend)
{
	refused("frontend f\n  bind :25\n  server s1 10.0.0.1:25\n",
	        "t.cfg:3: server: not allowed in a frontend");
	refused("defaults\n  server s1 10.0.0.1:25\n",
	        "t.cfg:2: server: not allowed in a defaults");
	refused("global\n  daemon\n  server s1 10.0.0.1:25\n",
	        "t.cfg:3: server: not allowed in the global section");
	refused("server s1 10.0.0.1:25\n",
	        "t.cfg:1: \"server\" before any section");
}
END_TEST

START_TEST(directive_before_section)
{
	refused("# a comment is fine\n\nmaxconn 100\nglobal\n  daemon\n",
	        "t.cfg:3: \"maxconn\" before any section");
}
END_TEST

START_TEST(bad_address)
{
	refused("backend b\n  server s1 10.0.0.1:99999\n",
	        "t.cfg:2: server s1: bad address \"10.0.0.1:99999\": the port "
	        "must be a number 1-65535");
	refused("backend b\n  server s1 10.0.0.1:smtp\n",
	        "t.cfg:2: server s1: bad address");
	refused("backend b\n  server s1 :25\n", "missing host");
	refused("backend b\n  server s1 bad!host:25\n",
	        "invalid character in host");
	refused("backend b\n  server s1 [::1:25\n", "missing ']'");
	refused("backend b\n  server s1\n", "t.cfg:2: server: expected NAME "
	                                    "ADDRESS");
	refused("frontend f\n  bind 10.0.0.1\n  default_backend b\n"
	        "backend b\n  server s 10.0.0.2:25\n",
	        "t.cfg:2: bind: bad address \"10.0.0.1\": missing :PORT");
}
END_TEST

START_TEST(unknown_section)
{
	refused("global\n    daemon\nfrontned f\n    bind :25\n",
	        "t.cfg:3: unknown section \"frontned\"");
	refused("frontned f\n    bind :25\n",
	        "t.cfg:1: \"frontned\" before any section");
}
END_TEST

START_TEST(unreadable_file)
{
	char *out = NULL, *diag = NULL;
	size_t outlen, diaglen;
	FILE *o = open_memstream(&out, &outlen);
	FILE *d = open_memstream(&diag, &diaglen);

	ck_assert_int_eq(haproxy_import_file(DATA "no-such-file.cfg", o, d), 1);
	ck_assert_int_eq(haproxy_import_file(DATA, o, d), 1);
	fclose(o);
	fclose(d);
	ck_assert_str_eq(out, "");
	ck_assert_msg(strstr(diag, "load-balancer: cannot read " DATA
	                           "no-such-file.cfg: No such file") != NULL,
	              "stderr: %s", diag);
	ck_assert_msg(strstr(diag, "load-balancer: cannot read " DATA
	                           ": Is a directory") != NULL,
	              "stderr: %s", diag);
	free(out);
	free(diag);
}
END_TEST

START_TEST(huge_line)
{
	size_t n = 100000;
	char *text = malloc(n + 64);
	struct result r;

	ck_assert_ptr_nonnull(text);
	strcpy(text, "global\n  description ");
	memset(text + strlen(text), 'x', n);
	strcpy(text + strlen("global\n  description ") + n, "\n  daemon\n");
	r = run(text);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	same(r.diag, "t.cfg:2: line longer than 4096 bytes: not "
	             "an HAProxy configuration line\n");
	result_free(&r);
	free(text);

	/* Exactly HAPROXY_LINE_MAX bytes is fine, CRLF too. */
	text = malloc(HAPROXY_LINE_MAX + 64);
	ck_assert_ptr_nonnull(text);
	strcpy(text, "global\r\n");
	memset(text + 8, ' ', HAPROXY_LINE_MAX - 6);
	strcpy(text + 8 + HAPROXY_LINE_MAX - 6, "daemon\r\n");
	r = run(text);
	ck_assert_msg(r.status == 0, "stderr: %s", r.diag);
	has(&r, "daemon = true;");
	result_free(&r);
	free(text);
}
END_TEST

START_TEST(other_malformed)
{
	static const char nul[] = "global\n  dae\0mon\n";
	FILE *in = fmemopen((void *)nul, sizeof(nul) - 1, "r");
	struct result r = run_stream(in, "t.cfg");
	char words[400] = "global\n  log";

	fclose(in);
	ck_assert_int_eq(r.status, 1);
	says(&r, "t.cfg:2: a NUL byte");
	result_free(&r);

	refused("global\n  user \"root\n", "t.cfg:2: unterminated quote");
	for (int i = 0; i < 70; i++)
		strcat(words, " w");
	strcat(words, "\n");
	refused(words, "t.cfg:2: too many words on the line");
	refused("frontend f\n  bind :25\n  default_backend nope\n",
	        "t.cfg:3: default_backend: no backend named \"nope\"");
	refused("backend b\n  server s 10.0.0.1:25\n  server s 10.0.0.2:25\n",
	        "t.cfg:3: server \"s\": a server of that name exists already "
	        "in backend \"b\" (line 2)");
	refused("backend b\n  server s 10.0.0.1:25\nbackend b\n",
	        "t.cfg:3: backend \"b\": a backend of that name exists "
	        "already (line 1)");
	refused("backend b\n  timeout server 1x\n",
	        "t.cfg:2: timeout server: bad time \"1x\"");
	refused("backend b\n  timeout sever 1s\n",
	        "t.cfg:2: timeout: unknown timeout \"sever\"");
	refused("backend b\n  retries many\n",
	        "t.cfg:2: retries: expected a number, not \"many\"");
	refused("backend b\n  balance fastest\n",
	        "t.cfg:2: balance: unknown algorithm \"fastest\"");
	refused("backend b\n  server s 10.0.0.1:25 weight\n",
	        "t.cfg:2: server s: weight: missing its argument");
	refused("global\n  log 127.0.0.1 local9\n",
	        "t.cfg:2: log: unknown facility \"local9\"");
	refused("backend\n", "t.cfg:1: backend: missing name");
	refused("frontend f\n  bind :25\n  default_backend b\n"
	        "backend b\n  bind :26\n",
	        "t.cfg:5: bind: not allowed in a backend");
	refused("backend b\n  source 10.0.0.300\n",
	        "t.cfg:2: source: bad address \"10.0.0.300\"");
	refused("frontend f from nope\n",
	        "t.cfg:1: frontend: no defaults section named \"nope\"");
}
END_TEST

/* --- the translation, rule by rule ------------------------------------------
 */

#define FE "frontend in\n  bind 127.0.0.1:2525\n  default_backend pool\n"

START_TEST(durations)
{
	struct result r = run(
	    FE "backend pool\n  timeout server 600000\n  timeout connect 1500\n"
	       "  timeout queue 90s\n  timeout check 500us\n"
	       "  server a 127.0.0.1:10025 check inter 6000 fastinter 2m "
	       "downinter 1h rise 1 fall 5\n");

	loads(&r);
	has(&r, "timeout_server = \"10m\";");
	has(&r, "timeout_connect = \"1500ms\";");
	has(&r, "timeout_queue = \"90s\";");
	has(&r, "      interval = \"6s\";\n      fastinter = \"2m\";\n"
	        "      downinter = \"1h\";\n      rise = 1;\n      fall = 5;\n"
	        "      timeout = \"1ms\";\n");
	same(r.diag, "");
	result_free(&r);

	r = run(FE "backend pool\n  timeout server 0\n"
	           "  server a 127.0.0.1:10025\n");
	loads(&r);
	says(&r, "t.cfg:5: cannot translate: timeout server 0 (0 means no "
	         "timeout");
	lacks(&r, "timeout_server");
	result_free(&r);

	r = run(FE "backend pool\n  timeout server 400d\n"
	           "  server a 127.0.0.1:10025 check inter 50\n");
	loads(&r);
	says(&r, "t.cfg:5: cannot translate: timeout server 400d (longer "
	         "than 365 days)");
	says(&r, "t.cfg:6: cannot translate: inter 50 (checks run at most "
	         "every 100ms here)");
	result_free(&r);
}
END_TEST

START_TEST(comments_stay_comments)
{
	struct result r =
	    run("# my balancer\n\nglobal\n  daemon\n#  debug\n\n"
	        "# the pool\nbackend pool\n#  option smtpchk HELO x\n"
	        "  server a 127.0.0.1:10025 check\n"
	        "#  server b 127.0.0.1:10026 check\n"
	        "  server c 127.0.0.1:10027 check\n  # the end\n");

	loads(&r);
	has(&r, "# my balancer\n\nglobal = {\n  daemon = true;\n  # debug\n};");
	has(&r, "backends = (\n  # the pool\n  {\n");
	has(&r, "      # option smtpchk HELO x\n"
	        "      { name = \"a\"; address = \"127.0.0.1:10025\"; },\n"
	        "      # server b 127.0.0.1:10026 check\n"
	        "      { name = \"c\"; address = \"127.0.0.1:10027\"; }\n"
	        "      # the end\n    );\n");
	has(&r, "type = \"tcp\";");
	lacks(&r, "smtp\";");
	lacks(&r, "\"b\"");
	result_free(&r);
}
END_TEST

START_TEST(health_checks)
{
	struct result r;

	/* check alone: TCP connect; a server without check is not
	 * checked. */
	r = run(FE "backend pool\n  server a 127.0.0.1:10025 check\n"
	           "  server b 127.0.0.1:10026\n");
	loads(&r);
	has(&r, "    health_check = {\n      type = \"tcp\";\n    };\n");
	has(&r, "{ name = \"b\"; address = \"127.0.0.1:10026\"; check = "
	        "false; }");
	result_free(&r);

	/* option smtpchk: HELO, EHLO, bare. */
	r = run(FE "backend pool\n  option smtpchk HELO noor.net\n"
	           "  server a 127.0.0.1:10025 check\n");
	loads(&r);
	has(&r, "type = \"smtp\";\n      helo = \"noor.net\";\n    };");
	result_free(&r);
	r = run(FE "backend pool\n  option smtpchk EHLO mx.example\n"
	           "  server a 127.0.0.1:10025 check\n");
	loads(&r);
	has(&r, "type = \"smtp\";\n      helo = \"mx.example\";\n"
	        "      ehlo = true;\n");
	result_free(&r);
	r = run(FE "backend pool\n  option smtpchk\n"
	           "  server a 127.0.0.1:10025 check\n");
	loads(&r);
	has(&r, "health_check = {\n      type = \"smtp\";\n    };");
	result_free(&r);

	/* option tcp-check, minimal forms. */
	r = run(FE "backend pool\n  option tcp-check\n  tcp-check connect\n"
	           "  server a 127.0.0.1:10025 check\n");
	loads(&r);
	has(&r, "type = \"tcp\";");
	same(r.diag, "");
	result_free(&r);
	r = run(FE "backend pool\n  option tcp-check\n"
	           "  tcp-check expect string 220\n"
	           "  server a 127.0.0.1:10025 check\n");
	loads(&r);
	says(&r, "t.cfg:6: cannot translate: tcp-check expect string 220");
	result_free(&r);

	/* Other check kinds: a TCP check, said so. */
	r = run(FE "backend pool\n  option httpchk GET /\n"
	           "  server a 127.0.0.1:10025 check\n");
	loads(&r);
	has(&r, "type = \"tcp\";");
	says(&r, "t.cfg:5: cannot translate: option httpchk GET / (tcp and "
	         "smtp checks only");
	result_free(&r);

	/* smtpchk without any server checked: nothing checked. */
	r = run(FE "backend pool\n  option smtpchk\n"
	           "  server a 127.0.0.1:10025\n");
	loads(&r);
	lacks(&r, "health_check");
	lacks(&r, "check =");
	says(&r, "t.cfg:5: warning: option smtpchk: no server of backend "
	         "\"pool\" has \"check\"");
	result_free(&r);
}
END_TEST

START_TEST(server_options)
{
	struct result r = run(
	    FE "backend pool\n  default-server weight 7 maxconn 50\n"
	       "  server a 127.0.0.1:10025 minconn 5 backup send-proxy\n"
	       "  server b 127.0.0.1:10026 weight 0 disabled send-proxy-v2\n"
	       "  server c 127.0.0.1:10027 maxconn 10 minconn 20\n");

	loads(&r);
	has(&r, "{ name = \"a\"; address = \"127.0.0.1:10025\"; weight = 7; "
	        "maxconn = 50; minconn = 5; backup = true; proxy_protocol = "
	        "\"v1\"; },");
	has(&r, "{ name = \"b\"; address = \"127.0.0.1:10026\"; weight = 0; "
	        "maxconn = 50; disabled = true; proxy_protocol = \"v2\"; },");
	has(&r, "{ name = \"c\"; address = \"127.0.0.1:10027\"; weight = 7; "
	        "maxconn = 10; minconn = 10; }");
	says(&r, "t.cfg:8: warning: server c: minconn 20 is above maxconn "
	         "10: minconn = 10");
	result_free(&r);

	/* The same PROXY protocol on every server: one backend key. */
	r = run(FE "backend pool\n  server a 127.0.0.1:10025 send-proxy-v2\n"
	           "  server b 127.0.0.1:10026 send-proxy-v2\n");
	loads(&r);
	has(&r, "    proxy_protocol = \"v2\";\n    servers = (\n");
	lacks(&r, "; proxy_protocol");
	result_free(&r);
}
END_TEST

START_TEST(on_marked_down)
{
	struct result r =
	    run(FE "backend pool\n"
	           "  server a 127.0.0.1:10025 check on-marked-down "
	           "shutdown-sessions\n"
	           "  server b 127.0.0.1:10026 check\n");

	loads(&r);
	has(&r, "on_marked_down = \"shutdown-sessions\";");
	same(r.diag, "t.cfg:6: warning: servers of backend \"pool\" "
	             "disagree on on-marked-down shutdown-sessions, which "
	             "b does not have: on_marked_down is one setting for "
	             "the whole backend here, and \"shutdown-sessions\" "
	             "applies to every server\n");
	result_free(&r);
}
END_TEST

/* observe layer4 [error-limit N] [on-error MODE] -> the backend's
 * error_limit (load-balancer.conf(5), GREETING GATE). */
START_TEST(passive_health)
{
	struct result r;

	r = run(FE "backend pool\n"
	           "  server a 127.0.0.1:10025 check observe layer4 "
	           "error-limit 5 on-error mark-down\n"
	           "  server b 127.0.0.1:10026 check observe layer4 "
	           "error-limit 5 on-error mark-down\n");
	loads(&r);
	has(&r, "    error_limit = 5;  # observe layer4 error-limit\n"
	        "    health_check = {\n");
	lacks(&r, "observe =");
	same(r.diag, "");
	result_free(&r);

	/* HAProxy's default error-limit is 10; default-server sets it
	 * for the servers that follow. */
	r = run(FE "backend pool\n"
	           "  default-server check observe layer4 on-error mark-down\n"
	           "  server a 127.0.0.1:10025\n");
	loads(&r);
	has(&r, "error_limit = 10;  # observe layer4: HAProxy's default "
	        "error-limit\n");
	same(r.diag, "");
	result_free(&r);

	/* Without on-error HAProxy fails one check: said once, at the line
	 * that set observe. */
	r = run(FE "backend pool\n"
	           "  default-server check observe layer4 error-limit 4\n"
	           "  server a 127.0.0.1:10025\n"
	           "  server b 127.0.0.1:10026\n");
	loads(&r);
	has(&r, "error_limit = 4;");
	same(r.diag, "t.cfg:5: warning: observe layer4 without on-error is "
	             "on-error fail-check in HAProxy (the failures count as "
	             "one failed check); error_limit marks the server DOWN "
	             "at once, as on-error mark-down does\n");
	result_free(&r);

	/* Other modes are reported; servers that disagree: the smallest. */
	r = run(FE "backend pool\n"
	           "  server a 127.0.0.1:10025 check observe layer4 "
	           "error-limit 8 on-error fastinter\n"
	           "  server b 127.0.0.1:10026 check observe layer4 "
	           "error-limit 6 on-error sudden-death\n"
	           "  server c 127.0.0.1:10027 check\n");
	loads(&r);
	has(&r, "error_limit = 6;");
	says(&r, "t.cfg:5: cannot translate: on-error fastinter (HAProxy "
	         "only checks the server sooner; error_limit marks the "
	         "server DOWN at once");
	says(&r, "t.cfg:6: cannot translate: on-error sudden-death (HAProxy "
	         "leaves the server one failed check from DOWN");
	says(&r, "t.cfg:6: warning: servers of backend \"pool\" disagree on "
	         "observe layer4 error-limit (a 8, b 6, c none): error_limit "
	         "is one setting for the backend here, the smallest, 6, is "
	         "used\n");
	result_free(&r);

	/* layer7 is HTTP; servers without check are not observed; error-limit
	 * and on-error alone do nothing in HAProxy. */
	r = run(FE "backend pool\n"
	           "  server a 127.0.0.1:10025 check observe layer7\n"
	           "  server b 127.0.0.1:10026 observe layer4 on-error "
	           "mark-down\n"
	           "  server c 127.0.0.1:10027 check error-limit 2 on-error "
	           "mark-down\n");
	loads(&r);
	lacks(&r, "error_limit =");
	same(r.diag, "t.cfg:5: cannot translate: observe layer7 (server a: "
	             "HTTP responses only, not meaningful in TCP mode; "
	             "error_limit counts failed connects and greetings "
	             "(observe layer4))\n");
	result_free(&r);

	r = run(FE "backend pool\n"
	           "  server a 127.0.0.1:10025 check observe layer4 "
	           "error-limit 0 on-error mark-down\n");
	loads(&r);
	says(&r, "t.cfg:5: cannot translate: error-limit 0 (at least 1 "
	         "here)");
	has(&r, "error_limit = 10;");
	result_free(&r);

	refused(FE "backend pool\n  server a 127.0.0.1:10025 observe "
	           "layer5\n",
	        "t.cfg:5: server a: observe: unknown mode \"layer5\"");
	refused(FE "backend pool\n  server a 127.0.0.1:10025 on-error "
	           "reboot\n",
	        "t.cfg:5: server a: on-error: unknown mode \"reboot\"");
}
END_TEST

#define POOL "backend pool\n  server a 127.0.0.1:10025\n"
#define FRONT "frontend in\n  bind 127.0.0.1:2525\n"

/* The client_limits group written for one set of rules. */
static struct result
limits_of(const char *rules)
{
	char *text = NULL;
	struct result r;

	ck_assert_int_ge(
	    asprintf(&text, FRONT "%s  default_backend pool\n" POOL, rules), 0);
	r = run(text);
	free(text);
	return r;
}

/* stick-table + track-sc + reject if { counter gt|ge N } ->
 * client_limits (load-balancer.conf(5), CLIENT LIMITS).  track-sc counts
 * the new connection before the rules after it run: "gt 10" allows 10. */
START_TEST(client_limits)
{
	struct result r;

	r = limits_of("  stick-table type ip size 100k expire 30s store "
	              "conn_cur,conn_rate(10s)\n"
	              "  tcp-request connection track-sc0 src\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt "
	              "10 }\n"
	              "  tcp-request connection reject if { sc0_conn_rate gt "
	              "20 }\n");
	loads(&r);
	has(&r, "    backend = \"pool\";\n"
	        "    # HAProxy closed the connections its tcp-request rules "
	        "rejected;\n"
	        "    # here they get client_limits.reply (a 421: the client "
	        "retries later).\n"
	        "    client_limits = {\n"
	        "      maxconn = 10;  # line 5: sc0_conn_cur gt 10\n"
	        "      rate = 20;  # line 6: sc0_conn_rate gt 20; HAProxy "
	        "counted the refused connections too\n"
	        "      period = \"10s\";  # line 3: conn_rate(10s)\n"
	        "      table_size = 102400;  # line 3: size 100k\n"
	        "    };\n  }\n");
	same(r.diag, "");
	result_free(&r);

	/* ge: one less; sc_conn_cur(0); content rules; size 1m; ipv6 keys
	 * whole addresses. */
	r = limits_of("  stick-table type ipv6 size 1m store conn_cur\n"
	              "  tcp-request content track-sc0 src\n"
	              "  tcp-request content reject if { sc_conn_cur(0) ge 10 "
	              "}\n");
	loads(&r);
	has(&r, "      maxconn = 9;  # line 5: sc_conn_cur(0) ge 10\n"
	        "      prefix6 = 128;  # line 3: type ipv6, one entry per "
	        "address\n"
	        "      table_size = 1048576;  # line 3: size 1m\n");
	lacks(&r, "rate =");
	same(r.diag, "");
	result_free(&r);

	/* src_conn_* read before the track rule: the new connection is not
	 * counted yet, so "gt 10" allows 11 (HAProxy's documented example,
	 * which does not count the refused connections either). */
	r = limits_of("  stick-table type ip size 20 store conn_rate(1m)\n"
	              "  tcp-request connection reject if { src_conn_rate gt "
	              "10 }\n"
	              "  tcp-request connection track-sc1 src\n");
	loads(&r);
	has(&r, "      rate = 11;  # line 4: src_conn_rate gt 10, read "
	        "before track-sc counts the connection\n"
	        "      period = \"1m\";  # line 3: conn_rate(1m)\n"
	        "      table_size = 20;  # line 3: size 20\n");
	result_free(&r);
	r = limits_of("  stick-table type ip size 20 store conn_cur\n"
	              "  tcp-request connection track-sc1 src\n"
	              "  tcp-request connection reject if { src_conn_cur ge 3 "
	              "}\n");
	loads(&r);
	has(&r, "      maxconn = 2;  # line 5: src_conn_cur ge 3\n");
	result_free(&r);

	/* A table in a backend of its own (table NAME): that backend is
	 * left out. */
	r = run(FRONT "  tcp-request connection track-sc0 src table st\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt 4 "
	              "}\n  default_backend pool\n"
	              "backend st\n  stick-table type ip size 1k store "
	              "conn_cur\n" POOL);
	loads(&r);
	has(&r, "maxconn = 4;");
	has(&r, "table_size = 1024;  # line 7: size 1k\n");
	lacks(&r, "\"st\"");
	same(r.diag, "");
	result_free(&r);
}
END_TEST

/* Exempt addresses: a negated src acl in the rule, an accept rule before
 * it, or a track rule that skips them. */
START_TEST(client_limits_exempt)
{
	struct result r;

	r = limits_of("  stick-table type ip size 1k store conn_cur\n"
	              "  acl trusted src 192.0.2.0/24 198.51.100.7\n"
	              "  tcp-request connection track-sc0 src\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt 5 "
	              "} !trusted\n");
	loads(&r);
	has(&r, "      exempt = [ \"192.0.2.0/24\", \"198.51.100.7\" ];  # "
	        "not limited by HAProxy: line 6\n");
	same(r.diag, "");
	result_free(&r);

	r = limits_of("  stick-table type ip size 1k store conn_cur\n"
	              "  acl trusted src 192.0.2.0/24\n"
	              "  tcp-request connection accept if trusted\n"
	              "  tcp-request connection track-sc0 src\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt 5 "
	              "}\n");
	loads(&r);
	has(&r, "      exempt = [ \"192.0.2.0/24\" ];  # not limited by "
	        "HAProxy: line 5\n");
	same(r.diag, "");
	result_free(&r);

	r = limits_of("  stick-table type ip size 1k store conn_cur\n"
	              "  acl trusted src 192.0.2.0/24\n"
	              "  tcp-request connection track-sc0 src unless trusted\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt 5 "
	              "}\n");
	loads(&r);
	has(&r, "      exempt = [ \"192.0.2.0/24\" ];  # not limited by "
	        "HAProxy: line 5\n");
	result_free(&r);

	/* One exempt list: a rule that exempts others is reported. */
	r = limits_of("  stick-table type ip size 1k store "
	              "conn_cur,conn_rate(10s)\n"
	              "  acl a src 192.0.2.1\n  acl b src 192.0.2.2\n"
	              "  tcp-request connection track-sc0 src\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt 5 "
	              "} !a\n"
	              "  tcp-request connection reject if { sc0_conn_rate gt 9 "
	              "} !b\n");
	loads(&r);
	has(&r, "maxconn = 5;");
	lacks(&r, "rate =");
	same(r.diag, "t.cfg:8: cannot translate: tcp-request connection "
	             "reject if { sc0_conn_rate gt 9 } !b (exempts other "
	             "addresses than the rule of line 7: "
	             "client_limits.exempt is one list)\n");
	result_free(&r);
}
END_TEST

/* What does not map is reported, with the line; the rest is kept. */
START_TEST(client_limits_reported)
{
	struct result r;

	r = limits_of(
	    "  stick-table type ip size 1k store conn_cur,gpc0,"
	    "http_req_rate(10s)\n"
	    "  tcp-request connection reject if { sc0_conn_cur gt 5 }\n"
	    "  tcp-request connection track-sc0 src\n"
	    "  tcp-request connection reject if { sc0_get_gpc0 gt 0 }\n"
	    "  tcp-request connection reject if { sc0_conn_cur gt 0 }\n"
	    "  tcp-request connection reject if { sc0_conn_cur lt 5 }\n"
	    "  tcp-request connection silent-drop if { sc0_conn_cur gt 50 }\n"
	    "  tcp-request connection reject if { sc0_conn_cur gt 5 } { "
	    "dst_port 25 }\n"
	    "  tcp-request connection reject if { sc1_conn_cur gt 5 }\n"
	    "  tcp-request connection reject\n"
	    "  tcp-request connection reject if { src_http_req_rate gt 10 }\n"
	    "  tcp-request connection track-sc2 src,ipmask(24)\n"
	    "  tcp-request connection reject if { sc0_conn_cur gt 20 }\n");
	loads(&r);
	has(&r, "maxconn = 20;  # line 15");
	same(r.diag,
	     "t.cfg:4: cannot translate: tcp-request connection reject if { "
	     "sc0_conn_cur gt 5 } (sc0 is not tracked before this rule: the "
	     "condition never holds in HAProxy)\n"
	     "t.cfg:6: cannot translate: tcp-request connection reject if { "
	     "sc0_get_gpc0 gt 0 } (sc0_get_gpc0: only the conn_cur and "
	     "conn_rate counters of the client's address translate "
	     "(client_limits))\n"
	     "t.cfg:7: cannot translate: tcp-request connection reject if { "
	     "sc0_conn_cur gt 0 } (refuses every client: a limit of 0 here "
	     "is no limit)\n"
	     "t.cfg:8: cannot translate: tcp-request connection reject if { "
	     "sc0_conn_cur lt 5 } (sc0_conn_cur: only \"gt N\" or \"ge N\" "
	     "is a limit)\n"
	     "t.cfg:9: cannot translate: tcp-request connection silent-drop "
	     "if { sc0_conn_cur gt 50 } (no silent drop: refused clients "
	     "get client_limits.reply or deny_reply)\n"
	     "t.cfg:10: cannot translate: tcp-request connection reject if { "
	     "sc0_conn_cur gt 5 } { dst_port 25 } (dst_port: only src "
	     "addresses and conn_cur/conn_rate counters translate)\n"
	     "t.cfg:11: cannot translate: tcp-request connection reject if { "
	     "sc1_conn_cur gt 5 } (sc1 is not tracked before this rule: the "
	     "condition never holds in HAProxy)\n"
	     "t.cfg:12: cannot translate: tcp-request connection reject "
	     "(refuses every client)\n"
	     "t.cfg:13: cannot translate: tcp-request connection reject if { "
	     "src_http_req_rate gt 10 } (src_http_req_rate: only the "
	     "conn_cur and conn_rate counters of the client's address "
	     "translate (client_limits))\n"
	     "t.cfg:14: cannot translate: tcp-request connection track-sc2 "
	     "src,ipmask(24) (networks: client_limits counts networks of "
	     "prefix4 and prefix6 bits, set them instead)\n");
	result_free(&r);

	/* A rate the table does not store; a table of strings; no table. */
	r = limits_of("  stick-table type ip size 1k store conn_cur\n"
	              "  tcp-request connection track-sc0 src\n"
	              "  tcp-request connection reject if { sc0_conn_rate gt "
	              "5 }\n");
	loads(&r);
	lacks(&r, "client_limits = {");
	same(r.diag, "t.cfg:3: cannot translate: stick-table type ip size 1k "
	             "store conn_cur (no stick tables here: client_limits "
	             "counts the sessions of each client network; only "
	             "conn_cur and conn_rate limits on src translate)\n"
	             "t.cfg:5: cannot translate: tcp-request connection "
	             "reject if { sc0_conn_rate gt 5 } (the stick-table of "
	             "line 3 does not store conn_rate: the condition never "
	             "holds in HAProxy)\n");
	result_free(&r);
	r = limits_of("  stick-table type string size 1k store conn_cur\n"
	              "  tcp-request connection track-sc0 src\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt "
	              "5 }\n");
	loads(&r);
	says(&r, "t.cfg:4: cannot translate: tcp-request connection "
	         "track-sc0 src (a stick-table of type string: ip or ipv6 "
	         "only)\n");
	result_free(&r);
	r = limits_of("  tcp-request connection track-sc0 src\n");
	loads(&r);
	same(r.diag, "t.cfg:3: cannot translate: tcp-request connection "
	             "track-sc0 src (no stick-table in this section)\n");
	result_free(&r);

	/* peers and nopurge of a translated table; type ip behind an IPv6
	 * address. */
	r = run("frontend in\n  bind [::]:2525\n"
	        "  stick-table type ip size 1k store conn_cur peers p nopurge\n"
	        "  tcp-request connection track-sc0 src\n"
	        "  tcp-request connection reject if { sc0_conn_cur gt 3 }\n"
	        "  default_backend pool\n" POOL);
	loads(&r);
	has(&r, "maxconn = 3;");
	same(r.diag, "t.cfg:3: warning: stick-table type ip holds IPv4 "
	             "addresses only, so HAProxy did not limit IPv6 clients; "
	             "here they are limited per /64 (client_limits.prefix6)\n"
	             "t.cfg:3: cannot translate: peers p (each load-balancer "
	             "counts its own clients: the counts are not shared "
	             "between nodes)\n"
	             "t.cfg:3: cannot translate: nopurge (when the table is "
	             "full, the client network idle the longest is "
	             "evicted)\n");
	result_free(&r);

	/* An accept rule that is not translated: the rules after it in its
	 * phase are reported too. */
	r = limits_of("  stick-table type ip size 1k store conn_cur\n"
	              "  tcp-request connection accept if { dst_port 25 }\n"
	              "  tcp-request connection track-sc0 src\n"
	              "  tcp-request connection reject if { sc0_conn_cur gt "
	              "5 }\n");
	loads(&r);
	lacks(&r, "client_limits = {");
	says(&r, "t.cfg:4: cannot translate: tcp-request connection accept if "
	         "{ dst_port 25 } (dst_port: only src addresses");
	says(&r, "t.cfg:6: cannot translate: tcp-request connection reject "
	         "if { sc0_conn_cur gt 5 } (after the accept rule of line 4, "
	         "which is not translated)\n");
	result_free(&r);
}
END_TEST

/* acl NAME src ... + reject if !NAME -> allow, reject if NAME -> deny
 * (load-balancer.conf(5), CLIENT LIMITS). */
START_TEST(allow_deny)
{
	struct result r;

	r = limits_of("  acl internal src 10.0.0.0/8 192.168.0.0/255.255.0.0\n"
	              "  acl internal src 2001:db8::/32\n"
	              "  acl bad src 192.0.2.66 198.51.100.9/24\n"
	              "  tcp-request connection reject if !internal\n"
	              "  tcp-request content reject if bad\n"
	              "  tcp-request content reject if { src 203.0.113.1 }\n");
	loads(&r);
	has(&r, "    # HAProxy closed these connections; here they get "
	        "deny_reply\n"
	        "    # (by default \"554 5.7.1 Access denied\", a permanent "
	        "refusal).\n"
	        "    allow = [ \"10.0.0.0/8\", \"192.168.0.0/16\", "
	        "\"2001:db8::/32\" ];\n"
	        "    deny = [ \"192.0.2.66\", \"198.51.100.0/24\", "
	        "\"203.0.113.1\" ];\n  }\n");
	lacks(&r, "client_limits = {");
	same(r.diag, "");
	result_free(&r);

	/* unless; HAProxy's predefined LOCALHOST. */
	r = limits_of("  tcp-request connection reject unless LOCALHOST\n");
	loads(&r);
	has(&r, "allow = [ \"127.0.0.0/8\" ];");
	result_free(&r);

	/* An accept rule before: its addresses stay allowed; a deny it
	 * would skip is reported. */
	r = limits_of("  acl ours src 192.0.2.0/24\n"
	              "  acl lan src 10.0.0.0/8\n"
	              "  tcp-request connection accept if ours\n"
	              "  tcp-request connection reject if !lan\n"
	              "  tcp-request connection reject if { src 192.0.2.9 }\n");
	loads(&r);
	has(&r, "allow = [ \"10.0.0.0/8\", \"192.0.2.0/24\" ];");
	lacks(&r, "deny = [");
	same(r.diag, "t.cfg:7: cannot translate: tcp-request connection "
	             "reject if { src 192.0.2.9 } (192.0.2.9 is let through "
	             "by the accept rule of line 5 first)\n");
	result_free(&r);

	/* What is not an address list is reported. */
	r = limits_of("  acl f src -f /etc/haproxy/bad.lst\n"
	              "  acl h src mx.example.net\n"
	              "  acl x src 10.0.0.1\n  acl y src 10.0.0.2\n"
	              "  acl m src 10.0.0.3\n  acl m dst 10.0.0.4\n"
	              "  tcp-request connection reject if f\n"
	              "  tcp-request connection reject if h\n"
	              "  tcp-request connection reject if x || y\n"
	              "  tcp-request connection reject if x y\n"
	              "  tcp-request connection reject if m\n"
	              "  tcp-request connection reject if later\n"
	              "  tcp-request connection reject if !x\n"
	              "  tcp-request connection reject if !y\n"
	              "  acl later src 10.0.0.5\n");
	loads(&r);
	has(&r, "allow = [ \"10.0.0.1\" ];");
	same(r.diag,
	     "t.cfg:9: cannot translate: tcp-request connection reject if f "
	     "(acl f: addresses read from a file (-f): write them in the "
	     "acl)\n"
	     "t.cfg:10: cannot translate: tcp-request connection reject if h "
	     "(acl h: src mx.example.net: an address or CIDR only (no host "
	     "names))\n"
	     "t.cfg:11: cannot translate: tcp-request connection reject if x "
	     "|| y (a condition with \"or\")\n"
	     "t.cfg:12: cannot translate: tcp-request connection reject if x "
	     "y (only \"if\" with one counter limit, and at most one negated "
	     "src acl (the exempt addresses), translates to client_limits)\n"
	     "t.cfg:13: cannot translate: tcp-request connection reject if m "
	     "(acl m: several lines that are not all src addresses (line "
	     "8))\n"
	     "t.cfg:14: cannot translate: tcp-request connection reject if "
	     "later (acl later is defined after this rule (line 17), which "
	     "HAProxy refuses)\n"
	     "t.cfg:16: cannot translate: tcp-request connection reject if "
	     "!y (a second list of allowed addresses (the first: line 15): "
	     "allow is one list)\n");
	result_free(&r);

	/* Rules outside a frontend. */
	r = run("defaults\n  tcp-request connection reject if { src 10.0.0.1 "
	        "}\n" FRONT "  default_backend pool\n"
	        "backend pool\n  tcp-request content reject if { src 10.0.0.1 "
	        "}\n  tcp-request connection reject\n"
	        "  server a 127.0.0.1:10025\n");
	loads(&r);
	lacks(&r, "deny = [");
	same(r.diag,
	     "t.cfg:2: cannot translate: tcp-request connection reject if { "
	     "src 10.0.0.1 } (in a defaults section: write it in the "
	     "frontend)\n"
	     "t.cfg:7: cannot translate: tcp-request content reject if { src "
	     "10.0.0.1 } (client_limits, allow and deny are set per frontend "
	     "here: write the rule in the frontend)\n"
	     "t.cfg:8: cannot translate: tcp-request connection reject "
	     "(HAProxy allows it in frontends and listens only)\n");
	result_free(&r);

	/* Commented-out rules stay comments. */
	r = limits_of("#  tcp-request connection reject if { src 10.0.0.1 }\n");
	loads(&r);
	has(&r, "# tcp-request connection reject if { src 10.0.0.1 }\n");
	lacks(&r, "deny = [");
	result_free(&r);
}
END_TEST

/* slowstart (servers, default-server) -> the backend's slowstart: HAProxy
 * keeps whole seconds, rounded up; the most common value when servers
 * differ. */
START_TEST(slow_start)
{
	struct result r;

	r = run(FE "backend pool\n  default-server slowstart 500\n"
	           "  server a 127.0.0.1:10025\n"
	           "  server b 127.0.0.1:10026 slowstart 0\n"
	           "  server c 127.0.0.1:10027 slowstart 2m\n");
	loads(&r);
	has(&r, "    slowstart = \"1s\";\n    servers = (\n");
	same(r.diag, "t.cfg:7: warning: servers of backend \"pool\" disagree "
	             "on slowstart: slowstart is one setting for the backend "
	             "here, and the most common value, 1s, is used instead of "
	             "none for b (line 7), 2m for c (line 8)\n");
	result_free(&r);

	r = run(FE "backend pool\n  server a 127.0.0.1:10025 slowstart 90000\n"
	           "  server b 127.0.0.1:10026 slowstart 90s\n"
	           "  server c 127.0.0.1:10027 slowstart 1m\n");
	loads(&r);
	has(&r, "slowstart = \"90s\";");
	says(&r, "most common value, 90s, is used instead of 1m for c");
	result_free(&r);

	r = run(FE "backend pool\n  server a 127.0.0.1:10025 slowstart 0\n");
	loads(&r);
	lacks(&r, "slowstart");
	same(r.diag, "");
	result_free(&r);

	refused(FE "backend pool\n  server a 127.0.0.1:10025 slowstart 5x\n",
	        "t.cfg:5: slowstart: bad time \"5x\"");
}
END_TEST

/* agent-check, agent-port, agent-inter, agent-send, agent-addr -> the
 * backend's agent group and the servers' agent_port (load-balancer.conf(5),
 * AGENT CHECK). */
START_TEST(agent_checks)
{
	char *text = NULL, longsend[1100];
	struct result r;

	/* One port for all: nothing on the servers; HAProxy's agent-inter
	 * is inter, 2s unless written; no timeout check, no timeout. */
	r = run(FE "backend pool\n  default-server agent-check agent-port 7\n"
	           "  server a 127.0.0.1:10025\n  server b 127.0.0.1:10026\n");
	loads(&r);
	has(&r, "    agent = {\n      port = 7;\n      interval = \"2s\";  # "
	        "no agent-inter: HAProxy's is inter, 2s by default\n    };\n");
	has(&r, "{ name = \"a\"; address = \"127.0.0.1:10025\"; },");
	lacks(&r, "agent_port");
	lacks(&r, "timeout");
	same(r.diag, "");
	result_free(&r);

	/* agent-inter and timeout check written; IPv6 with its own address
	 * as agent-addr; no-agent-check on one server: that one alone has
	 * no agent, and the others get agent_port. */
	r = run(FE "backend pool\n  timeout check 700ms\n"
	           "  default-server agent-check agent-port 7 agent-inter 1m\n"
	           "  server a [2001:db8::1]:25 agent-addr 2001:db8::1\n"
	           "  server b 127.0.0.1:10026 agent-port 8\n"
	           "  server c 127.0.0.1:10027 no-agent-check\n");
	loads(&r);
	has(&r, "    # HAProxy ran agent checks on some servers only: "
	        "agent.port stays 0\n    # (off) and those servers have their "
	        "agent_port.\n    agent = {\n      interval = \"1m\";\n"
	        "      timeout = \"700ms\";  # timeout check\n    };\n");
	has(&r, "\"[2001:db8::1]:25\"; agent_port = 7; },");
	has(&r, "\"127.0.0.1:10026\"; agent_port = 8; },");
	has(&r, "\"127.0.0.1:10027\"; }");
	same(r.diag, "");
	result_free(&r);

	/* Servers that disagree on the line sent; agent-addr elsewhere, in
	 * default-server, reported once. */
	r = run(FE "backend pool\n  default-server agent-addr 192.0.2.9\n"
	           "  server a 127.0.0.1:10025 agent-check agent-port 7 "
	           "agent-send \"a\\n\"\n"
	           "  server b 127.0.0.1:10026 agent-check agent-port 7 "
	           "agent-send b\n");
	loads(&r);
	has(&r, "      send = \"a\\n\";\n");
	same(r.diag, "t.cfg:5: cannot translate: agent-addr 192.0.2.9 "
	             "(default-server: the agent check connects to the "
	             "server's own address)\n"
	             "t.cfg:7: warning: servers of backend \"pool\" disagree "
	             "on agent-send: agent.send is one setting for the "
	             "backend here, and the most common value, \"a?\", is "
	             "used instead of \"b\" for b (line 7)\n");
	result_free(&r);

	/* Values out of range here. */
	memset(longsend, 'x', 1025);
	longsend[1025] = '\0';
	ck_assert_int_ge(asprintf(&text,
	                          FE "backend pool\n  server a 127.0.0.1:10025 "
	                             "agent-check agent-port 7 agent-inter 50 "
	                             "agent-send %s\n",
	                          longsend),
	                 0);
	r = run(text);
	free(text);
	loads(&r);
	lacks(&r, "send =");
	has(&r, "interval = \"2s\";");
	same(r.diag, "t.cfg:5: cannot translate: agent-inter 50 (agent checks "
	             "run at most every 100ms here)\n"
	             "t.cfg:5: cannot translate: agent-send (server a: at most "
	             "1024 bytes here)\n");
	result_free(&r);

	r = run(FE "backend pool\n"
	           "  server a 127.0.0.1:10025 agent-check agent-port 0\n");
	loads(&r);
	lacks(&r, "agent = {");
	lacks(&r, "agent_port");
	same(r.diag, "t.cfg:5: cannot translate: agent-port 0 (at least 1 "
	             "here)\n"
	             "t.cfg:5: warning: server a: agent-check without "
	             "agent-port, which HAProxy refuses: no agent check for "
	             "this server\n");
	result_free(&r);

	refused(FE "backend pool\n"
	           "  server a 127.0.0.1:10025 agent-check agent-port x\n",
	        "t.cfg:5: agent-port: expected a number, not \"x\"");
	refused(FE "backend pool\n  server a 127.0.0.1:10025 agent-send\n",
	        "t.cfg:5: server a: agent-send: missing its argument");
}
END_TEST

/* server-state-file, server-state-base, server-state-file-name and
 * load-server-state-from-file: reported, and global.state_file written
 * once (load-balancer.conf(5), OPERATOR STATE). */
START_TEST(server_state)
{
	struct result r;

	r = run("defaults\n  load-server-state-from-file local\n" FE
	        "backend pool\n  server-state-file-name pool\n"
	        "  server a 127.0.0.1:10025\n");
	loads(&r);
	has(&r, "\nglobal = {\n  state_file = "
	        "\"/var/lib/load-balancer/state\";  # replaces HAProxy's "
	        "server state file: drain, disable and weight set with lbctl "
	        "survive a restart\n};\n");
	same(r.diag,
	     "t.cfg:2: warning: load-server-state-from-file: not needed: "
	     "operator state (drain, maint, weight set with lbctl) is saved "
	     "automatically to global.state_file\n"
	     "t.cfg:7: warning: server-state-file-name: not needed: operator "
	     "state (drain, maint, weight set with lbctl) is saved "
	     "automatically to global.state_file\n");
	result_free(&r);

	/* Commented out: stays a comment.  In a frontend: ignored. */
	r = run("global\n#  server-state-file /var/lib/haproxy/state\n"
	        "  daemon\nfrontend in\n  bind 127.0.0.1:2525\n"
	        "  load-server-state-from-file global\n"
	        "  default_backend pool\n" POOL);
	loads(&r);
	has(&r, "global = {\n  # server-state-file /var/lib/haproxy/state\n"
	        "  daemon = true;\n};\n");
	lacks(&r, "state_file");
	same(r.diag, "t.cfg:6: warning: load-server-state-from-file: ignored "
	             "in a frontend (HAProxy ignores it there too)\n");
	result_free(&r);
}
END_TEST

START_TEST(global_directives)
{
	struct result r =
	    run("global\n  log /dev/log daemon notice\n  log 127.0.0.1 local1\n"
	        "  log-tag lb\n  maxconn 100\n  user lb\n  group lb\n"
	        "  chroot /var/empty\n  pidfile /run/lb.pid\n"
	        "  hard-stop-after 1m\n  daemon\n" FE
	        "backend pool\n  option tcplog\n  server a 127.0.0.1:10025\n");

	ck_assert_int_eq(r.status, 0);
	has(&r, "global = {\n  log = {\n    syslog = true;\n"
	        "    facility = \"daemon\";\n    level = \"notice\";\n"
	        "    ident = \"lb\";\n    sessions = true;\n  };\n"
	        "  maxconn = 100;\n  user = \"lb\";\n  group = \"lb\";\n"
	        "  chroot = \"/var/empty\";\n  pidfile = \"/run/lb.pid\";\n"
	        "  grace = \"1m\";\n  daemon = true;\n};\n");
	same(r.diag, "t.cfg:3: cannot translate: log 127.0.0.1 local1 (one "
	             "log target here: global.log takes the first \"log\" "
	             "line)\n");
	result_free(&r);

	r = run("global\n  log 192.0.2.7:514 local0\n  nbthread 1\n"
	        "  chroot var/empty\n");
	loads(&r);
	has(&r, "workers = 1;");
	lacks(&r, "chroot = ");
	says(&r, "t.cfg:4: cannot translate: chroot var/empty (an absolute "
	         "path here)");
	says(&r, "t.cfg:2: warning: log 192.0.2.7:514: logs go to the local "
	         "syslog daemon");
	result_free(&r);
}
END_TEST

START_TEST(defaults_and_listen)
{
	struct result r = run(
	    "defaults\n  mode tcp\n  timeout client 30s\n  timeout server 11m\n"
	    "  balance leastconn\n  option smtpchk HELO lb\n"
	    "  default-server check inter 4s\n"
	    "listen smtp 127.0.0.1:2525\n  server a 127.0.0.1:10025\n"
	    "  server b 127.0.0.1:10026 no-check\n"
	    "defaults\n  timeout client 1m\n"
	    "frontend other\n  bind 127.0.0.1:2526\n  default_backend smtp\n");

	loads(&r);
	has(&r, "    name = \"smtp\";\n"
	        "    timeout_client = \"30s\";  # from defaults (line 3)\n"
	        "    bind = \"127.0.0.1:2525\";\n    backend = \"smtp\";\n");
	has(&r, "    name = \"other\";\n"
	        "    timeout_client = \"1m\";  # from defaults (line 12)\n");
	has(&r, "    name = \"smtp\";\n"
	        "    timeout_server = \"11m\";  # from defaults (line 4)\n"
	        "    balance = \"leastconn\";  # from defaults (line 5)\n"
	        "    health_check = {\n      type = \"smtp\";\n"
	        "      helo = \"lb\";\n      interval = \"4s\";\n    };\n");
	has(&r, "{ name = \"b\"; address = \"127.0.0.1:10026\"; check = "
	        "false; }");
	same(r.diag, "");
	result_free(&r);
}
END_TEST

START_TEST(binds_and_source)
{
	struct result r =
	    run("frontend in\n  bind :2525,*:2526\n  bind :::2527 v4v6\n"
	        "  bind ipv4@127.0.0.1:2528 transparent backlog 64\n"
	        "  maxconn 300\n  default_backend pool\n"
	        "backend pool\n  source 192.0.2.1\n  server a 127.0.0.1:10025\n"
	        "backend pool2\n  source 0.0.0.0 usesrc clientip\n"
	        "  server a 127.0.0.1:10025\n");

	ck_assert_int_eq(r.status, 0);
	has(&r, "bind = [ \"0.0.0.0:2525\", \"0.0.0.0:2526\", \"[::]:2527\", "
	        "\"127.0.0.1:2528\" ];\n    transparent = true;\n"
	        "    backlog = 64;\n    maxconn = 300;\n");
	has(&r, "source = \"192.0.2.1\";");
	has(&r, "source = \"clientip\";");
	says(&r, "t.cfg:2: warning: frontend \"in\": \"transparent\" is one "
	         "setting");
	result_free(&r);
}
END_TEST

START_TEST(untranslatable_reported)
{
	struct result r = run(
	    "global\n  stats socket /run/haproxy.sock\n"
	    "  tune.ssl.default-dh-param 2048\n" FE
	    "  mode http\n  option http-server-close\n  use_backend x if y\n"
	    "backend pool\n  mode tcp\n  no option http-server-close\n"
	    "  log global\n  option dontlognull\n  cookie SRV insert\n"
	    "  server a 127.0.0.1:10025 maxqueue 10 id 3 check port 99\n"
	    "  server b 127.0.0.1 check\n"
	    "  server c 127.0.0.1:10027 frobnicate 1 2\n"
	    "  balance uri\n  option tcpka\n  timeout tunnel 1h\n"
	    "  server d \"${HOST}:25\"\n");

	loads(&r);
	same(r.diag,
	     "t.cfg:2: cannot translate: stats socket /run/haproxy.sock "
	     "(global.control_socket and lbctl replace the stats socket)\n"
	     "t.cfg:7: cannot translate: mode http (a layer-4 relay: HTTP "
	     "traffic passes as plain TCP, without HTTP processing)\n"
	     "t.cfg:9: cannot translate: use_backend x if y (no content "
	     "switching: default_backend only)\n"
	     "t.cfg:15: cannot translate: cookie SRV insert\n"
	     "t.cfg:16: cannot translate: maxqueue 10 (server a: the queue is "
	     "per backend: timeout_queue)\n"
	     "t.cfg:16: cannot translate: port 99 (server a: checks go to the "
	     "server's own address and port)\n"
	     "t.cfg:17: cannot translate: server b 127.0.0.1 check (server b "
	     "skipped: no port: HAProxy would use the port each client "
	     "connected to; write the port)\n"
	     "t.cfg:18: cannot translate: frobnicate 1 2 (server c: option "
	     "\"frobnicate\" unknown to this translator)\n"
	     "t.cfg:19: cannot translate: balance uri (roundrobin, leastconn "
	     "and source only: roundrobin is used)\n"
	     "t.cfg:20: cannot translate: option tcpka (no TCP keep-alive "
	     "probes here)\n"
	     "t.cfg:21: cannot translate: timeout tunnel 1h (timeouts follow "
	     "the SMTP dialogue here: timeout_client and timeout_server)\n"
	     "t.cfg:22: cannot translate: server d \"${HOST}:25\" (environment "
	     "variables are not expanded: write the value)\n");
	has(&r, "#   line 2: cannot translate: stats socket");
	lacks(&r, "\"b\"");
	lacks(&r, "\"d\"");
	result_free(&r);
}
END_TEST

START_TEST(strings_escaped)
{
	struct result r = run("frontend \"a \\\"b\\\"\\\\c\"\n"
	                      "  bind 127.0.0.1:2525\n"
	                      "  default_backend 'x\\y'\n"
	                      "backend 'x\\y'\n  server \"s\\t1\" "
	                      "127.0.0.1:10025\n");

	loads(&r);
	has(&r, "name = \"a \\\"b\\\"\\\\c\";");
	has(&r, "backend = \"x\\\\y\";");
	has(&r, "{ name = \"s\\t1\";");
	result_free(&r);
}
END_TEST

START_TEST(empty_input)
{
	struct result r = run("");

	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "# Translated by load-balancer "
	                        "--import-haproxy from t.cfg\n");
	same(r.diag, "");
	result_free(&r);
}
END_TEST

static Suite *
import_suite(void)
{
	Suite *s = suite_create("import");
	TCase *tc;

	tc = tcase_create("golden");
	tcase_add_test(tc, seed_nontransparent);
	tcase_add_test(tc, seed_transparent);
	tcase_add_test(tc, mail_pool);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, agent);
	tcase_add_test(tc, goldens_load);
	tcase_add_test(tc, seed_meaning);
	tcase_add_test(tc, limits_meaning);
	tcase_add_test(tc, agent_meaning);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, server_outside_backend);
	tcase_add_test(tc, directive_before_section);
	tcase_add_test(tc, bad_address);
	tcase_add_test(tc, unknown_section);
	tcase_add_test(tc, unreadable_file);
	tcase_add_test(tc, huge_line);
	tcase_add_test(tc, other_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	tcase_add_test(tc, durations);
	tcase_add_test(tc, comments_stay_comments);
	tcase_add_test(tc, health_checks);
	tcase_add_test(tc, server_options);
	tcase_add_test(tc, on_marked_down);
	tcase_add_test(tc, passive_health);
	tcase_add_test(tc, slow_start);
	tcase_add_test(tc, agent_checks);
	tcase_add_test(tc, server_state);
	tcase_add_test(tc, client_limits);
	tcase_add_test(tc, client_limits_exempt);
	tcase_add_test(tc, client_limits_reported);
	tcase_add_test(tc, allow_deny);
	tcase_add_test(tc, global_directives);
	tcase_add_test(tc, defaults_and_listen);
	tcase_add_test(tc, binds_and_source);
	tcase_add_test(tc, untranslatable_reported);
	tcase_add_test(tc, strings_escaped);
	tcase_add_test(tc, empty_input);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(import_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
