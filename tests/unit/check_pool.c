/* Unit tests for pool.c: the server pool (include/pool.h is the contract;
 * load-balancer.conf(5), BACKENDS, SERVERS and BALANCING give the
 * semantics).
 *
 * No event loop and no threads: the pool is plain data behind a lock taken
 * inside each function, so every test drives it directly and looks at what
 * each call returns in its struct pool_work (grants, events, checks,
 * close) and at pool_snapshot.  Configurations are loaded from strings
 * with cfg_load_string; time comes from a fake clock (pool_set_clock).
 * Every test frees what it allocates (ASan/LSan and valgrind in CI).
 * The last two tests are regression tests of defects these tests found
 * (fixed in pool.c). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <check.h>

#include "agent.h"
#include "cfg.h"
#include "common.h"
#include "health.h"
#include "pool.h"

#define NAME "pool-test.conf"

/* --- fake clock ----------------------------------------------------------- */

#define T0_MS 1700000000000ULL /* 2023-11-14T22:13:20Z */

static uint64_t fake_now_ms;

static uint64_t
fake_clock(void)
{
	return fake_now_ms;
}

/* --- configurations ---------------------------------------------------------
 */

/* A server line: name, port, extra keys. */
#define SRV(n, port, extra)                                                    \
	"{ name = \"" n "\"; address = \"127.0.0.1:" port "\"; " extra " }"

#define HCHECK                                                                 \
	"health_check = { type = \"tcp\"; rise = 2; fall = 3;"                 \
	" interval = \"2s\"; fastinter = \"500ms\"; downinter = \"10s\"; };"

/* Two servers with one slot each. */
static const char CFG_TWO[] =
    "backends = ( { name = \"be\"; servers = (\n"
    "  " SRV("a", "10001", "maxconn = 1;") ",\n"
                                           "  " SRV("b", "10002",
                                                    "maxconn = 1;") "\n"
                                                                    "); } );\n";

/* Source hashing, two servers with one slot each. */
static const char CFG_SOURCE[] =
    "backends = ( { name = \"src\"; balance = \"source\"; servers = (\n"
    "  " SRV("a", "10001", "maxconn = 1;") ",\n"
                                           "  " SRV("b", "10002",
                                                    "maxconn = 1;") "\n"
                                                                    "); } );\n";

/* Operators: drain, maint, weight. */
static const char CFG_ADMIN[] =
    "backends = (\n"
    " { name = \"d\"; servers = (\n"
    "  " SRV(
        "a", "10001",
        "") ",\n"
            "  " SRV(
                "b", "10002",
                "") "\n"
                    " ); },\n"
                    " { name = \"solo\"; servers = ( " SRV(
                        "s", "10003",
                        "") " ); },\n"
                            " { name = \"m\"; " HCHECK " servers = (\n"
                            "  " SRV(
                                "a", "10011",
                                "maxconn = 1;") ",\n"
                                                "  " SRV(
                                                    "b", "10012",
                                                    "maxconn = 1;") "\n"
                                                                    " ); },\n"
                                                                    " { name = "
                                                                    "\"w\"; "
                                                                    "servers = "
                                                                    "(\n"
                                                                    "  " SRV(
                                                                        "a",
                                                                        "10021",
                                                                        "weight"
                                                                        " = 3;") ",\n"
                                                                                 "  " SRV(
                                                                                     "b",
                                                                                     "10022",
                                                                                     "weight = 1;") ",\n"
                                                                                                    "  " SRV(
                                                                                                        "c",
                                                                                                        "10023",
                                                                                                        "weight = 1;") "\n"
                                                                                                                       " ); },\n"
                                                                                                                       " { name = \"wq\"; servers = (\n"
                                                                                                                       "  " SRV(
                                                                                                                           "a",
                                                                                                                           "10031",
                                                                                                                           "maxconn = 1;") ",\n"
                                                                                                                                           "  " SRV(
                                                                                                                                               "b",
                                                                                                                                               "10032",
                                                                                                                                               "maxconn = 1;") "\n"
                                                                                                                                                               " ); },\n"
                                                                                                                                                               " { name = \"plain\"; servers = ( " SRV(
                                                                                                                                                                   "u",
                                                                                                                                                                   "10041",
                                                                                                                                                                   "") " ); }\n"
                                                                                                                                                                       ");\n";

/* Health checks: rise 2, fall 3, interval 2s, fastinter 500ms, downinter
 * 10s. */
static const char CFG_HEALTH[] =
    "backends = (\n"
    " { name = \"h\"; " HCHECK " servers = ( " SRV(
        "a", "10001",
        "") " ); },\n"
            " { name = \"h2\"; " HCHECK " servers = (\n"
            "  " SRV("a", "10011",
                     "") ",\n"
                         "  " SRV(
                             "b", "10012",
                             "") "\n"
                                 " ); },\n"
                                 " { name = \"sd\"; on_marked_down = "
                                 "\"shutdown-sessions\"; " HCHECK
                                 " servers = ( " SRV(
                                     "a", "10021",
                                     "maxconn = 1;") " ); },\n"
                                                     " { name = \"cert\"; "
                                                     "health_check = { type = "
                                                     "\"tcp\";"
                                                     " cert_expiry_warn = "
                                                     "\"7d\"; }; servers = (\n"
                                                     "  " SRV(
                                                         "a", "10031",
                                                         "") ",\n"
                                                             "  " SRV(
                                                                 "b", "10032",
                                                                 "") "\n"
                                                                     " ); }\n"
                                                                     ");\n";

/* Backup servers. */
static const char CFG_BACKUP[] =
    "backends = (\n"
    " { name = \"bk\"; " HCHECK " servers = (\n"
    "  " SRV(
        "a1", "10001",
        "") ",\n"
            "  " SRV(
                "a2", "10002",
                "") ",\n"
                    "  " SRV(
                        "k", "10003",
                        "backup = true;") "\n"
                                          " ); },\n"
                                          " { name = \"fb\"; servers = (\n"
                                          "  " SRV(
                                              "a", "10011",
                                              "maxconn = 1;") ",\n"
                                                              "  " SRV(
                                                                  "k", "10012",
                                                                  "maxconn = "
                                                                  "1; backup = "
                                                                  "true;") "\n"
                                                                           " );"
                                                                           " }"
                                                                           "\n"
                                                                           ");"
                                                                           "\n";

/* pool_ready: which backends take no session. */
static const char CFG_READY[] =
    "backends = (\n"
    " { name = \"ok\"; servers = ( " SRV(
        "a", "10001",
        "") " ); },\n"
            " { name = \"drained\"; servers = ( " SRV(
                "a", "10002",
                "") " ); },\n"
                    " { name = \"empty\"; },\n"
                    " { name = \"w0\"; servers = ( " SRV(
                        "a", "10003",
                        "weight = 0;") " ); },\n"
                                       " { name = \"off\"; servers = ( " SRV(
                                           "a", "10004",
                                           "disabled = true;") " ); }\n"
                                                               ");\n";

/* minconn / fullconn. */
static const char CFG_MINCONN[] =
    "backends = (\n"
    " { name = \"mc\"; fullconn = 10; servers = (\n"
    "  " SRV("a", "10001",
             "maxconn = 8; minconn = 2;") ",\n"
                                          "  " SRV(
                                              "b", "10002",
                                              "") "\n"
                                                  " ); },\n"
                                                  " { name = \"one\"; fullconn "
                                                  "= 10; servers = (\n"
                                                  "  " SRV(
                                                      "s", "10011",
                                                      "maxconn = 8; minconn = "
                                                      "2;") "\n"
                                                            " ); }\n"
                                                            ");\n";

/* Reload, states: the first file ... */
static const char
    CFG_R1
        [] =
            "backends = (\n"
            " { name = \"be\"; " HCHECK " servers = (\n"
            "  " SRV("a", "10001", "check = false;") ",\n"
                                                     "  " SRV("b", "10002", "check = false;") ",\n"
                                                                                              "  " SRV("c", "10003", "check = false;") ",\n"
                                                                                                                                       "  " SRV("c2", "10013", "check = false; disabled = true;") ",\n"
                                                                                                                                                                                                  "  " SRV("d", "10004", "check = false; weight = 1;") ",\n"
                                                                                                                                                                                                                                                       "  " SRV("e", "10005", "check = false; weight = 1;") ",\n"
                                                                                                                                                                                                                                                                                                            "  " SRV(
                                                                                                                                                                                                                                                                                                                "f", "10006", "") ",\n"
                                                                                                                                                                                                                                                                                                                                  "  " SRV("g", "10007", "") ",\n"
                                                                                                                                                                                                                                                                                                                                                             "  " SRV("h", "10008", "") ",\n"
                                                                                                                                                                                                                                                                                                                                                                                        "  " SRV(
                                                                                                                                                                                                                                                                                                                                                                                            "x",
                                                                                                                                                                                                                                                                                                                                                                                            "10009", "check = false;") "\n"
                                                                                                                                                                                                                                                                                                                                                                                                                       " ); },\n"
                                                                                                                                                                                                                                                                                                                                                                                                                       " { name = \"gone\"; servers = ( " SRV(
                                                                                                                                                                                                                                                                                                                                                                                                                           "y",
                                                                                                                                                                                                                                                                                                                                                                                                                           "10020",
                                                                                                                                                                                                                                                                                                                                                                                                                           "") " ); }\n"
                                                                                                                                                                                                                                                                                                                                                                                                                               ");\n";

/* ... and the second: b disabled, c2 enabled, e weight 2, g moved to
 * another port, h no longer checked, x removed, n new; backend gone
 * removed, fresh new. */
static const char
    CFG_R2[] =
        "backends = (\n"
        " { name = \"fresh\"; servers = ( " SRV(
            "z", "10030",
            "") " ); },\n"
                " { name = \"be\"; " HCHECK " servers = (\n"
                "  " SRV(
                    "n", "10010",
                    "check = false;") ",\n"
                                      "  " SRV(
                                          "a", "10001",
                                          "check = false;") ",\n"
                                                            "  " SRV(
                                                                "b",
                                                                "10002", "check = false; disabled = true;") ",\n"
                                                                                                            "  " SRV("c", "10003", "check = false;") ",\n"
                                                                                                                                                     "  " SRV("c2", "10013", "check = false;") ",\n"
                                                                                                                                                                                               "  " SRV("d", "10004", "check = false; weight = 1;") ",\n"
                                                                                                                                                                                                                                                    "  " SRV("e", "10005", "check = false; weight = 2;") ",\n"
                                                                                                                                                                                                                                                                                                         "  " SRV("f", "10006", "") ",\n"
                                                                                                                                                                                                                                                                                                                                    "  " SRV(
                                                                                                                                                                                                                                                                                                                                        "g",
                                                                                                                                                                                                                                                                                                                                        "10017",
                                                                                                                                                                                                                                                                                                                                        "") ",\n"
                                                                                                                                                                                                                                                                                                                                            "  " SRV(
                                                                                                                                                                                                                                                                                                                                                "h", "10008", "check = false;") "\n"
                                                                                                                                                                                                                                                                                                                                                                                " ); }\n"
                                                                                                                                                                                                                                                                                                                                                                                ");\n";

/* Reload, slots. */
static const char CFG_S1[] =
    "backends = (\n"
    " { name = \"be\"; servers = (\n"
    "  " SRV("a", "10001",
             "") ",\n"
                 "  " SRV("g", "10002",
                          "") "\n"
                              " ); },\n"
                              " { name = \"gone\"; servers = ( " SRV(
                                  "y", "10003", "") " ); }\n"
                                                    ");\n";
static const char CFG_S2[] =
    "backends = (\n"
    " { name = \"be\"; servers = (\n"
    "  " SRV("a", "10001", "") ",\n"
                               "  " SRV("g", "10012", "") "\n"
                                                          " ); }\n"
                                                          ");\n";

/* Reload, waiters. */
static const char CFG_W1[] =
    "backends = (\n"
    " { name = \"keep\"; servers = (\n"
    "  " SRV("s", "10001",
             "maxconn = 1;") ",\n"
                             "  " SRV(
                                 "r", "10002",
                                 "maxconn = 1;") "\n"
                                                 " ); },\n"
                                                 " { name = \"gone\"; servers "
                                                 "= ( " SRV(
                                                     "z", "10003",
                                                     "maxconn = 1;") " ); }\n"
                                                                     ");\n";
static const char CFG_W2[] = "backends = (\n"
                             " { name = \"keep\"; servers = (\n"
                             "  " SRV("s", "10001", "maxconn = 1;") "\n"
                                                                    " ); }\n"
                                                                    ");\n";

/* Reload, counters. */
static const char CFG_K1[] =
    "backends = ( { name = \"be\"; servers = (\n"
    "  " SRV("a", "10001", "") ",\n"
                               "  " SRV("b", "10002", "") "\n"
                                                          "); } );\n";
static const char CFG_K2[] = "backends = ( { name = \"be\"; servers = (\n"
                             "  " SRV("a", "10001", "") "\n"
                                                        "); } );\n";

/* Passive health (load-balancer.conf(5), GREETING GATE): checked
 * servers (rise 2, fall 3) in "ph" (error_limit 3, the default, written
 * out), "sd" (shutdown-sessions, one slot), "q2" (one slot each); servers
 * without checks in "nochk" (no health_check) and "off" (a: check =
 * false); error_limit 0 and 1. */
/* clang-format off */
static const char CFG_PASSIVE[] =
    "backends = (\n"
    " { name = \"ph\"; error_limit = 3; " HCHECK " servers = (\n"
    "  " SRV("a", "10001", "") ",\n"
    "  " SRV("b", "10002", "") "\n"
    " ); },\n"
    " { name = \"sd\"; on_marked_down = \"shutdown-sessions\"; " HCHECK
    " servers = ( " SRV("a", "10011", "maxconn = 1;") " ); },\n"
    " { name = \"q2\"; " HCHECK " servers = (\n"
    "  " SRV("a", "10021", "maxconn = 1;") ",\n"
    "  " SRV("b", "10022", "maxconn = 1;") "\n"
    " ); },\n"
    " { name = \"nochk\"; servers = (\n"
    "  " SRV("a", "10031", "") ",\n"
    "  " SRV("b", "10032", "") "\n"
    " ); },\n"
    " { name = \"off\"; " HCHECK " servers = (\n"
    "  " SRV("a", "10041", "check = false;") ",\n"
    "  " SRV("b", "10042", "") "\n"
    " ); },\n"
    " { name = \"zero\"; error_limit = 0; " HCHECK " servers = (\n"
    "  " SRV("a", "10051", "") ",\n"
    "  " SRV("b", "10052", "") "\n"
    " ); },\n"
    " { name = \"one\"; error_limit = 1; " HCHECK " servers = (\n"
    "  " SRV("a", "10061", "") ",\n"
    "  " SRV("b", "10062", "") "\n"
    " ); }\n"
    ");\n";

/* Avoided servers: three (roundrobin) with room, three with one slot
 * each, ten. */
static const char CFG_AVOID[] =
    "backends = (\n"
    " { name = \"abc\"; servers = (\n"
    "  " SRV("a", "10001", "") ",\n"
    "  " SRV("b", "10002", "") ",\n"
    "  " SRV("c", "10003", "") "\n"
    " ); },\n"
    " { name = \"full\"; servers = (\n"
    "  " SRV("a", "10011", "maxconn = 1;") ",\n"
    "  " SRV("b", "10012", "maxconn = 1;") ",\n"
    "  " SRV("c", "10013", "maxconn = 1;") "\n"
    " ); },\n"
    " { name = \"ten\"; servers = (\n"
    "  " SRV("s0", "10020", "") ", " SRV("s1", "10021", "") ",\n"
    "  " SRV("s2", "10022", "") ", " SRV("s3", "10023", "") ",\n"
    "  " SRV("s4", "10024", "") ", " SRV("s5", "10025", "") ",\n"
    "  " SRV("s6", "10026", "") ", " SRV("s7", "10027", "") ",\n"
    "  " SRV("s8", "10028", "") ", " SRV("s9", "10029", "") "\n"
    " ); }\n"
    ");\n";
/* The same, but "full" lost a and gained d (with room). */
static const char CFG_AVOID2[] =
    "backends = (\n"
    " { name = \"abc\"; servers = (\n"
    "  " SRV("a", "10001", "") ",\n"
    "  " SRV("b", "10002", "") ",\n"
    "  " SRV("c", "10003", "") "\n"
    " ); },\n"
    " { name = \"full\"; servers = (\n"
    "  " SRV("b", "10012", "maxconn = 1;") ",\n"
    "  " SRV("c", "10013", "maxconn = 1;") ",\n"
    "  " SRV("d", "10014", "") "\n"
    " ); }\n"
    ");\n";
/* clang-format on */

/* --- helpers ---------------------------------------------------------------
 */

static const char *
diag_text(const struct cfg_diag *d)
{
	static char buf[4096];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->n && off < sizeof(buf); i++) {
		int r = snprintf(buf + off, sizeof(buf) - off, "\n  %s",
		                 d->msgs[i]);
		if (r < 0)
			break;
		off += (size_t)r;
	}
	return buf;
}

/* Load a configuration that must have no errors (warnings are fine). */
static struct cfg *
load(const char *text)
{
	struct cfg_diag d;
	struct cfg *cfg;

	cfg_diag_init(&d);
	cfg = cfg_load_string(text, NAME, &d);
	ck_assert_msg(d.nerrors == 0, "configuration errors:%s", diag_text(&d));
	ck_assert_msg(cfg != NULL, "NULL configuration without errors");
	cfg_diag_free(&d);
	return cfg;
}

static const char *
pick_name(enum pool_pick r)
{
	switch (r) {
	case POOL_OK:
		return "POOL_OK";
	case POOL_QUEUED:
		return "POOL_QUEUED";
	case POOL_FULL:
		return "POOL_FULL";
	case POOL_NONE:
		return "POOL_NONE";
	case POOL_MOVED:
		return "POOL_MOVED";
	}
	return "?";
}

static const char *
kind_name(enum pool_event_kind k)
{
	switch (k) {
	case PEV_UP:
		return "up";
	case PEV_DOWN:
		return "down";
	case PEV_FAIL:
		return "fail";
	case PEV_READY:
		return "ready";
	case PEV_DRAIN:
		return "drain";
	case PEV_MAINT:
		return "maint";
	case PEV_BACKEND_UP:
		return "backend_up";
	case PEV_BACKEND_DOWN:
		return "backend_down";
	case PEV_CERT_EXPIRY:
		return "cert_expiry";
	case PEV_WEIGHT:
		return "weight";
	}
	return "?";
}

static const char *
name_of(const struct server *s)
{
	return s != NULL ? server_conf(s)->name : "(none)";
}

/* A pool with one configuration installed. */
struct fx {
	struct cfg *cfg;
	struct pool *p;
	struct pool_set *set;
};

static void expect_work_empty(const struct pool_work *w, const char *ctx);

static void
fx_open(struct fx *f, const char *text)
{
	struct pool_work w;

	f->cfg = load(text);
	f->p = pool_new();
	ck_assert_ptr_nonnull(f->p);
	fake_now_ms = T0_MS;
	pool_set_clock(f->p, fake_clock);
	f->set = pool_set_new(f->cfg, f->cfg);
	ck_assert_ptr_nonnull(f->set);
	pool_work_init(&w);
	pool_install(f->p, f->set, &w);
	expect_work_empty(&w, "first pool_install");
}

static void
fx_close(struct fx *f)
{
	pool_free(f->p);
	pool_set_free(f->set);
	cfg_free(f->cfg);
}

static struct backend *
find_be(struct pool_set *set, const char *name)
{
	struct backend *be = pool_set_find(set, name);

	ck_assert_msg(be != NULL, "no backend '%s' in the set", name);
	return be;
}

static struct server *
find_srv(struct pool *p, const char *spec)
{
	char err[256] = "";
	struct server *s = pool_find_server(p, spec, err, sizeof(err));

	ck_assert_msg(s != NULL, "pool_find_server(%s): %s", spec, err);
	return s;
}

static void
waiter(struct pool_waiter *wt)
{
	pool_waiter_init(wt, NULL);
}

/* A waiter for client 192.0.2.last. */
static void
ip_waiter(struct pool_waiter *wt, unsigned last)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xC0000200u | (last & 0xffu));
	pool_waiter_init(wt, (const struct sockaddr *)&sin);
}

static void
expect_pick(struct pool *p, struct backend *be, struct pool_waiter *wt,
            bool queue, enum pool_pick want, const char *ctx)
{
	struct server *s = NULL;
	enum pool_pick r = pool_assign(p, be, wt, queue, &s);

	ck_assert_msg(r == want, "%s: pool_assign gave %s (server %s), want %s",
	              ctx, pick_name(r), r == POOL_OK ? name_of(s) : "-",
	              pick_name(want));
}

/* pool_assign that must give a slot at once; returns its server. */
static struct server *
take_ok(struct pool *p, struct backend *be, struct pool_waiter *wt,
        const char *ctx)
{
	struct server *s = NULL;
	enum pool_pick r = pool_assign(p, be, wt, true, &s);

	ck_assert_msg(r == POOL_OK, "%s: pool_assign gave %s, want POOL_OK",
	              ctx, pick_name(r));
	ck_assert_msg(s != NULL, "%s: POOL_OK without a server", ctx);
	ck_assert_msg(wt->state == WAITER_IDLE,
	              "%s: a client given a slot at once is not waiting", ctx);
	return s;
}

/* Take a slot (queue = false) and give it back at once: which server the
 * pool chooses now.  Nobody may be waiting. */
static struct server *
pick_release(struct pool *p, struct backend *be, const char *ctx)
{
	struct pool_waiter wt;
	struct pool_work w;
	struct server *s;

	waiter(&wt);
	s = take_ok(p, be, &wt, ctx);
	pool_work_init(&w);
	pool_release(p, s, 0, 0, &w);
	ck_assert_msg(w.grants == NULL, "%s: release granted someone", ctx);
	return s;
}

static void
release(struct pool *p, struct server *s, struct pool_work *w)
{
	pool_work_init(w);
	pool_release(p, s, 0, 0, w);
}

/* The work's grants must be exactly these (waiter, server) pairs, in this
 * order; server NULL: turned away. */
static void
expect_grants(const struct pool_work *w, const char *ctx, size_t n, ...)
{
	const struct pool_waiter *g = w->grants;
	struct pool_waiter *const *tail = &w->grants;
	size_t i, count = 0;
	va_list ap;

	for (const struct pool_waiter *x = w->grants; x != NULL; x = x->next)
		count++;
	ck_assert_msg(count == n, "%s: %zu grants, want %zu", ctx, count, n);
	va_start(ap, n);
	for (i = 0; i < n; i++, g = g->next) {
		const struct pool_waiter *wt = va_arg(ap, struct pool_waiter *);
		const struct server *srv = va_arg(ap, struct server *);

		ck_assert_msg(g == wt,
		              "%s: grant %zu is not the expected "
		              "waiter (queue order)",
		              ctx, i);
		ck_assert_msg(g->state == WAITER_GRANTED,
		              "%s: grant %zu: state %d, want WAITER_GRANTED",
		              ctx, i, (int)g->state);
		ck_assert_msg(g->granted == srv,
		              "%s: grant %zu: server %s, want %s", ctx, i,
		              name_of(g->granted), name_of(srv));
		tail = &((struct pool_waiter *)g)->next;
	}
	va_end(ap);
	ck_assert_msg(w->grants_tail == tail,
	              "%s: grants_tail does not point at the last next", ctx);
}

static const char *
kinds_text(const struct pool_work *w)
{
	static char buf[256];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < w->nevents && off < sizeof(buf); i++) {
		int r = snprintf(buf + off, sizeof(buf) - off, "%s%s",
		                 i ? "," : "", kind_name(w->events[i].kind));
		if (r < 0)
			break;
		off += (size_t)r;
	}
	return buf;
}

/* The work's events must be exactly these kinds, in this order. */
static void
expect_events(const struct pool_work *w, const char *ctx, size_t n, ...)
{
	va_list ap;

	ck_assert_msg(w->nevents == n, "%s: %zu events [%s], want %zu", ctx,
	              w->nevents, kinds_text(w), n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		enum pool_event_kind k = (enum pool_event_kind)va_arg(ap, int);

		ck_assert_msg(w->events[i].kind == k,
		              "%s: events [%s], event %zu want %s", ctx,
		              kinds_text(w), i, kind_name(k));
	}
	va_end(ap);
}

/* A server event's identity and its alive counts. */
static void
expect_srv_event(const struct pool_event *ev, enum pool_event_kind kind,
                 const struct server *s, unsigned active, unsigned backup,
                 const char *ctx)
{
	ck_assert_msg(ev->kind == kind, "%s: event %s, want %s", ctx,
	              kind_name(ev->kind), kind_name(kind));
	ck_assert_msg(ev->be == backend_conf(server_backend(s)),
	              "%s: event's backend", ctx);
	ck_assert_msg(ev->srv == server_conf(s),
	              "%s: event's server %s, want %s", ctx,
	              ev->srv != NULL ? ev->srv->name : "NULL", name_of(s));
	ck_assert_msg(ev->active == active && ev->backup == backup,
	              "%s: %s active=%u backup=%u, want %u/%u", ctx,
	              kind_name(kind), ev->active, ev->backup, active, backup);
}

static void
expect_be_event(const struct pool_event *ev, enum pool_event_kind kind,
                const struct backend *be, unsigned active, unsigned backup,
                const char *ctx)
{
	ck_assert_msg(ev->kind == kind, "%s: event %s, want %s", ctx,
	              kind_name(ev->kind), kind_name(kind));
	ck_assert_msg(ev->be == backend_conf(be), "%s: event's backend", ctx);
	ck_assert_msg(ev->srv == NULL, "%s: a backend event names a server",
	              ctx);
	ck_assert_msg(ev->active == active && ev->backup == backup,
	              "%s: %s active=%u backup=%u, want %u/%u", ctx,
	              kind_name(kind), ev->active, ev->backup, active, backup);
}

static void
expect_work_empty(const struct pool_work *w, const char *ctx)
{
	ck_assert_msg(w->grants == NULL, "%s: unexpected grants", ctx);
	ck_assert_msg(w->grants_tail == &w->grants, "%s: grants_tail moved",
	              ctx);
	ck_assert_msg(w->nevents == 0, "%s: unexpected events [%s]", ctx,
	              kinds_text(w));
	ck_assert_msg(w->close == NULL, "%s: unexpected close", ctx);
	ck_assert_msg(w->check == NULL && !w->check_stop && !w->check_now &&
	                  !w->check_next,
	              "%s: unexpected check work", ctx);
}

static void
state_is(struct pool *p, struct server *s, const char *want, const char *ctx)
{
	char buf[32];

	memset(buf, 'Z', sizeof(buf));
	pool_state_text(p, s, buf, sizeof(buf));
	ck_assert_msg(memchr(buf, '\0', sizeof(buf)) != NULL,
	              "%s: state text not terminated", ctx);
	ck_assert_msg(strcmp(buf, want) == 0, "%s: %s is \"%s\", want \"%s\"",
	              ctx, name_of(s), buf, want);
}

static const struct pool_snap_backend *
snap_be(const struct pool_snap *snap, const char *name)
{
	for (size_t b = 0; b < snap->nbackends; b++)
		if (strcmp(snap->backends[b].conf->name, name) == 0)
			return &snap->backends[b];
	ck_abort_msg("snapshot: no backend '%s'", name);
	return NULL;
}

static const struct pool_snap_server *
snap_srv(const struct pool_snap *snap, const char *be, const char *name)
{
	const struct pool_snap_backend *b = snap_be(snap, be);

	for (size_t i = 0; i < b->nservers; i++)
		if (strcmp(b->servers[i].conf->name, name) == 0)
			return &b->servers[i];
	ck_abort_msg("snapshot: no server '%s/%s'", be, name);
	return NULL;
}

static void
snap(struct pool *p, struct pool_snap *s)
{
	ck_assert_int_eq(pool_snapshot(p, s), 0);
}

/* A health check result; strings are literals, so the events that point
 * at them stay valid. */
static void
check_res(struct pool *p, struct server *s, bool pass, const char *step,
          int code, const char *reply, const char *reason, struct pool_work *w)
{
	struct check_result r;

	memset(&r, 0, sizeof(r));
	r.pass = pass;
	r.step = step;
	r.code = code;
	r.reply = reply;
	r.reason = reason;
	r.duration_ms = 7;
	pool_work_init(w);
	pool_check_result(p, s, &r, w);
}

static void
check_pass(struct pool *p, struct server *s, struct pool_work *w)
{
	check_res(p, s, true, NULL, 0, NULL, NULL, w);
}

static void
check_fail(struct pool *p, struct server *s, struct pool_work *w)
{
	check_res(p, s, false, "connect", 0, NULL, "connection refused", w);
}

/* The next check must be scheduled after ms. */
static void
expect_next(const struct pool_work *w, const struct server *s, uint64_t ms,
            const char *ctx)
{
	ck_assert_msg(w->check == s, "%s: work's check is %s, want %s", ctx,
	              name_of(w->check), name_of(s));
	ck_assert_msg(w->check_next && !w->check_stop && !w->check_now,
	              "%s: want check_next only (next %d stop %d now %d)", ctx,
	              w->check_next, w->check_stop, w->check_now);
	ck_assert_msg(w->next_ms == ms, "%s: next check in %llu ms, want %llu",
	              ctx, (unsigned long long)w->next_ms,
	              (unsigned long long)ms);
}

static void
set_admin(struct pool *p, struct server *s, enum srv_admin a,
          struct pool_work *w)
{
	pool_work_init(w);
	pool_set_admin(p, s, a, NULL, 0, w);
}

struct problems {
	const char *names[8];
	size_t n;
};

static void
problem_cb(void *arg, const struct cfg_backend *be)
{
	struct problems *pr = arg;

	ck_assert_msg(pr->n < ARRAY_SIZE(pr->names), "too many problems");
	pr->names[pr->n++] = be->name;
}

/* A live session's connect or greeting to s failed (load-balancer.conf(5),
 * GREETING GATE), as the session layer reports it; the strings are
 * literals, so the events that point at them stay valid. */
static void
traffic_fail(struct pool *p, struct server *s, const char *step, int code,
             const char *reply, const char *reason, bool retry,
             struct pool_work *w)
{
	struct check_result r;

	memset(&r, 0, sizeof(r));
	r.pass = false;
	r.step = step;
	r.code = code;
	r.reply = reply;
	r.reason = reason;
	r.duration_ms = 4;
	pool_work_init(w);
	pool_session_failed(p, s, &r, retry, w);
}

/* The server answered "421 4.7.0 busy" instead of a greeting. */
static void
greeting_421(struct pool *p, struct server *s, struct pool_work *w)
{
	traffic_fail(p, s, "greeting", 421, "421 4.7.0 busy", NULL, true, w);
}

static void
connect_refused(struct pool *p, struct server *s, bool retry,
                struct pool_work *w)
{
	traffic_fail(p, s, "connect", 0, NULL, "connection refused", retry, w);
}

/* A connect failure that must have no consequence but its counters. */
static void
connect_failed(struct pool *p, struct server *s, bool retry)
{
	struct pool_work w;

	connect_refused(p, s, retry, &w);
	expect_work_empty(&w, "connect failure");
}

/* The current set's BE/SRV traffic counters. */
static void
traffic_is(struct pool *p, const char *be, const char *srv, uint64_t errors,
           unsigned fails, const char *ctx)
{
	struct pool_snap sn;
	const struct pool_snap_server *ss;

	snap(p, &sn);
	ss = snap_srv(&sn, be, srv);
	ck_assert_msg(ss->traffic_errors == errors &&
	                  ss->traffic_fails == fails,
	              "%s: %s/%s traffic_errors %llu traffic_fails %u, want "
	              "%llu %u",
	              ctx, be, srv, (unsigned long long)ss->traffic_errors,
	              ss->traffic_fails, (unsigned long long)errors, fails);
	pool_snap_free(&sn);
}

/* A passive DOWN event: by "traffic", the failure that made it. */
static void
expect_traffic_down(const struct pool_event *ev, const struct server *s,
                    unsigned active, const char *step, int code,
                    const char *reply, const char *reason, unsigned failures,
                    const char *ctx)
{
	expect_srv_event(ev, PEV_DOWN, s, active, 0, ctx);
	ck_assert_msg(ev->by != NULL && strcmp(ev->by, "traffic") == 0,
	              "%s: by \"%s\", want \"traffic\"", ctx,
	              ev->by != NULL ? ev->by : "(null)");
	ck_assert_msg(ev->step != NULL && strcmp(ev->step, step) == 0,
	              "%s: step \"%s\", want \"%s\"", ctx,
	              ev->step != NULL ? ev->step : "(null)", step);
	ck_assert_int_eq(ev->code, code);
	ck_assert_str_eq(ev->reply, reply);
	ck_assert_str_eq(ev->reason, reason);
	ck_assert_uint_eq(ev->duration_ms, 4);
	ck_assert_msg(ev->failures == failures, "%s: failures %u, want %u", ctx,
	              ev->failures, failures);
}

/* Checks until s is fully UP ("UP", not "UP 1/3"). */
static void
fully_up(struct pool *p, struct server *s)
{
	struct pool_work w;

	check_pass(p, s, &w);
	check_pass(p, s, &w);
	state_is(p, s, "UP", "fully up");
}

/* --- 1. the queue ------------------------------------------------------- */

START_TEST(queue_oldest_first_and_timeout)
{
	struct fx f;
	struct backend *be;
	struct server *a, *b, *s = NULL;
	struct pool_waiter c1, c2, w1, w2, w3, w4, wf;
	struct pool_work w;
	struct pool_snap sn;

	fx_open(&f, CFG_TWO);
	be = find_be(f.set, "be");
	a = find_srv(f.p, "be/a");
	b = find_srv(f.p, "be/b");
	waiter(&c1);
	waiter(&c2);
	waiter(&w1);
	waiter(&w2);
	waiter(&w3);
	waiter(&w4);
	waiter(&wf);

	ck_assert_ptr_eq(take_ok(f.p, be, &c1, "c1"), a);
	ck_assert_ptr_eq(take_ok(f.p, be, &c2, "c2"), b);
	expect_pick(f.p, be, &w1, true, POOL_QUEUED, "w1");
	expect_pick(f.p, be, &w2, true, POOL_QUEUED, "w2");
	expect_pick(f.p, be, &w3, true, POOL_QUEUED, "w3");
	expect_pick(f.p, be, &w4, true, POOL_QUEUED, "w4");
	ck_assert_int_eq(w1.state, WAITER_QUEUED);
	ck_assert_int_eq(w4.state, WAITER_QUEUED);
	ck_assert_ptr_eq(w1.be, be);

	/* queue = false: POOL_FULL, nothing done. */
	expect_pick(f.p, be, &wf, false, POOL_FULL, "wf (queue=false)");
	ck_assert_msg(wf.state == WAITER_IDLE, "queue=false queued the client");
	ck_assert_int_eq(pool_leave_queue(f.p, &wf), WAITER_IDLE);
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "be")->queued, 4);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 2);
	pool_snap_free(&sn);

	ck_assert_msg(!pool_claim(f.p, &w1, &s), "claim before any grant");

	/* w2's timeout_queue runs out: it leaves. */
	ck_assert_int_eq(pool_leave_queue(f.p, &w2), WAITER_QUEUED);
	ck_assert_int_eq(w2.state, WAITER_IDLE);
	ck_assert_int_eq(pool_leave_queue(f.p, &w2), WAITER_IDLE);
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "be")->queued, 3);
	pool_snap_free(&sn);

	/* a's slot goes to the oldest waiter, w1. */
	release(f.p, a, &w);
	expect_grants(&w, "release a", 1, &w1, a);
	ck_assert_msg(w.nevents == 0 && w.close == NULL && w.check == NULL,
	              "release: only grants");
	/* b's slot to the next one still waiting: w3, not w2 (gone). */
	release(f.p, b, &w);
	expect_grants(&w, "release b", 1, &w3, b);
	ck_assert_msg(w2.state == WAITER_IDLE && w2.granted == NULL,
	              "w2 left the queue but was given a slot");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "be")->queued, 1);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->cur, 1);
	ck_assert_uint_eq(snap_srv(&sn, "be", "b")->cur, 1);
	pool_snap_free(&sn);

	/* w3's timer fires after its grant: it must claim the slot. */
	ck_assert_int_eq(pool_leave_queue(f.p, &w3), WAITER_GRANTED);
	ck_assert_msg(pool_claim(f.p, &w3, &s), "w3: nothing to claim");
	ck_assert_ptr_eq(s, b);
	ck_assert_int_eq(w3.state, WAITER_IDLE);
	ck_assert_msg(!pool_claim(f.p, &w3, &s), "w3 claimed twice");
	ck_assert_msg(pool_claim(f.p, &w1, &s), "w1: nothing to claim");
	ck_assert_ptr_eq(s, a);
	ck_assert_msg(!pool_claim(f.p, &w2, &s), "w2 has nothing to claim");

	/* w1 ends: its slot goes to w4. */
	release(f.p, a, &w);
	expect_grants(&w, "w1 ends", 1, &w4, a);
	ck_assert_msg(pool_claim(f.p, &w4, &s) && s == a, "w4 claims a");

	release(f.p, b, &w); /* w3 ends */
	expect_work_empty(&w, "w3 ends");
	release(f.p, a, &w); /* w4 ends */
	expect_work_empty(&w, "w4 ends");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "be")->queued, 0);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 0);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->total, 3);
	ck_assert_uint_eq(snap_srv(&sn, "be", "b")->total, 2);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->max, 1);
	pool_snap_free(&sn);
	fx_close(&f);
}
END_TEST

START_TEST(queue_source_hash_keeps_place)
{
	struct fx f;
	struct backend *be;
	struct server *a, *b, *s = NULL;
	unsigned ips_a[2], ips_b[2], na = 0, nb = 0;
	struct pool_waiter xa, xb, wa, wb;
	struct pool_work w;
	struct pool_snap sn;

	fx_open(&f, CFG_SOURCE);
	be = find_be(f.set, "src");
	a = find_srv(f.p, "src/a");
	b = find_srv(f.p, "src/b");
	/* Which clients hash to which server (slot given back unused). */
	for (unsigned ip = 1; ip < 255 && (na < 2 || nb < 2); ip++) {
		struct pool_waiter t;

		ip_waiter(&t, ip);
		s = take_ok(f.p, be, &t, "probe");
		pool_untake(f.p, s);
		if (s == a && na < 2)
			ips_a[na++] = ip;
		else if (s == b && nb < 2)
			ips_b[nb++] = ip;
	}
	ck_assert_msg(na == 2 && nb == 2, "test bug: no clients for a and b");

	ip_waiter(&xa, ips_a[0]);
	ip_waiter(&xb, ips_b[0]);
	ip_waiter(&wa, ips_a[1]);
	ip_waiter(&wb, ips_b[1]);
	ck_assert_ptr_eq(take_ok(f.p, be, &xa, "xa"), a);
	ck_assert_ptr_eq(take_ok(f.p, be, &xb, "xb"), b);
	/* wa (for a) waits first, wb (for b) after it. */
	expect_pick(f.p, be, &wa, true, POOL_QUEUED, "wa");
	expect_pick(f.p, be, &wb, true, POOL_QUEUED, "wb");

	/* b frees up: wa's server is still full, wa keeps its place and wb
	 * (later, for b) is served. */
	release(f.p, b, &w);
	expect_grants(&w, "release b", 1, &wb, b);
	ck_assert_int_eq(wa.state, WAITER_QUEUED);
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "src")->queued, 1);
	pool_snap_free(&sn);
	ck_assert_msg(pool_claim(f.p, &wb, &s) && s == b, "wb claims b");

	/* a frees up: wa, still first in the queue, gets it. */
	release(f.p, a, &w);
	expect_grants(&w, "release a", 1, &wa, a);
	ck_assert_msg(pool_claim(f.p, &wa, &s) && s == a, "wa claims a");

	release(f.p, a, &w);
	expect_work_empty(&w, "wa ends");
	release(f.p, b, &w);
	expect_work_empty(&w, "wb ends");
	fx_close(&f);
}
END_TEST

/* --- 2. slots ------------------------------------------------------------ */

START_TEST(release_hands_on_the_slot)
{
	struct fx f;
	struct backend *be;
	struct server *a, *b, *s = NULL;
	struct pool_waiter c1, c2, w1, w2;
	struct pool_work w;
	struct pool_snap sn;
	const struct pool_snap_server *sa, *sb;

	fx_open(&f, CFG_TWO);
	be = find_be(f.set, "be");
	a = find_srv(f.p, "be/a");
	b = find_srv(f.p, "be/b");
	waiter(&c1);
	waiter(&c2);
	waiter(&w1);
	waiter(&w2);
	ck_assert_ptr_eq(take_ok(f.p, be, &c1, "c1"), a);
	ck_assert_ptr_eq(take_ok(f.p, be, &c2, "c2"), b);
	expect_pick(f.p, be, &w1, true, POOL_QUEUED, "w1");
	expect_pick(f.p, be, &w2, true, POOL_QUEUED, "w2");

	/* c1 ends: exactly its slot of a goes to w1. */
	pool_work_init(&w);
	pool_release(f.p, a, 1000, 2500, &w);
	expect_grants(&w, "c1 ends", 1, &w1, a);
	snap(f.p, &sn);
	sa = snap_srv(&sn, "be", "a");
	ck_assert_uint_eq(sa->cur, 1); /* still at maxconn */
	ck_assert_uint_eq(sa->max, 1);
	ck_assert_uint_eq(sa->limit, 1);
	ck_assert_uint_eq(sa->total, 2);
	ck_assert_uint_eq(sa->bytes_in, 1000);
	ck_assert_uint_eq(sa->bytes_out, 2500);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 2);
	ck_assert_uint_eq(snap_be(&sn, "be")->queued, 1);
	pool_snap_free(&sn);

	/* c2's slot was never used: given back, the queue is not run. */
	pool_untake(f.p, b);
	ck_assert_int_eq(w2.state, WAITER_QUEUED);
	snap(f.p, &sn);
	sb = snap_srv(&sn, "be", "b");
	ck_assert_uint_eq(sb->cur, 0);
	ck_assert_uint_eq(sb->total, 0);
	ck_assert_uint_eq(sb->bytes_in, 0);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 1);
	ck_assert_uint_eq(snap_be(&sn, "be")->queued, 1);
	pool_snap_free(&sn);

	/* Connect failures and retries. */
	connect_failed(f.p, a, true);
	connect_failed(f.p, a, false);
	connect_failed(f.p, b, true);
	connect_failed(f.p, b, true);
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->connect_failures, 2);
	ck_assert_uint_eq(snap_srv(&sn, "be", "b")->connect_failures, 2);
	ck_assert_uint_eq(snap_be(&sn, "be")->retries, 3);
	pool_snap_free(&sn);

	/* A second session's bytes add up.  w2 has been waiting since b's
	 * slot was given back (pool_untake does not run the queue); this
	 * release runs it and w2 gets a free slot (a or b). */
	ck_assert_msg(pool_claim(f.p, &w1, &s) && s == a, "w1 claims a");
	pool_work_init(&w);
	pool_release(f.p, a, 5, 7, &w);
	ck_assert_msg(w.grants == &w2 && w2.next == NULL &&
	                  (w2.granted == a || w2.granted == b),
	              "w1 ends: w2 must be given a free slot");
	ck_assert_msg(pool_claim(f.p, &w2, &s) && s != NULL, "w2 claims");
	pool_work_init(&w);
	pool_release(f.p, s, 0, 0, &w);
	expect_work_empty(&w, "w2 ends");
	snap(f.p, &sn);
	sa = snap_srv(&sn, "be", "a");
	ck_assert_uint_eq(sa->bytes_in, 1005);
	ck_assert_uint_eq(sa->bytes_out, 2507);
	ck_assert_uint_eq(sa->total, s == a ? 3 : 2);
	ck_assert_uint_eq(sa->cur, 0);
	ck_assert_uint_eq(snap_srv(&sn, "be", "b")->cur, 0);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 0);
	pool_snap_free(&sn);
	fx_close(&f);
}
END_TEST

/* --- 3. drain, maint, weight --------------------------------------------- */

START_TEST(drain_stops_new_picks)
{
	struct fx f;
	struct backend *d, *solo;
	struct server *a, *b, *s;
	struct pool_waiter c1, c;
	struct pool_work w;
	struct pool_snap sn;
	struct problems pr;
	char text[32];

	fx_open(&f, CFG_ADMIN);
	d = find_be(f.set, "d");
	solo = find_be(f.set, "solo");
	a = find_srv(f.p, "d/a");
	b = find_srv(f.p, "d/b");
	s = find_srv(f.p, "solo/s");
	waiter(&c1);
	ck_assert_ptr_eq(take_ok(f.p, d, &c1, "c1"), a);

	fake_now_ms = T0_MS + 42000;
	pool_work_init(&w);
	pool_set_admin(f.p, a, SRV_DRAIN, text, sizeof(text), &w);
	ck_assert_str_eq(text, "DRAIN");
	expect_events(&w, "drain a", 1, PEV_DRAIN);
	expect_srv_event(&w.events[0], PEV_DRAIN, a, 2, 0, "drain a");
	ck_assert_msg(w.grants == NULL && w.close == NULL && w.check == NULL,
	              "drain of an unchecked server: events only");
	state_is(f.p, a, "DRAIN", "drained");

	/* No new session for a; its established one is untouched. */
	for (int i = 0; i < 4; i++) {
		waiter(&c);
		ck_assert_msg(take_ok(f.p, d, &c, "after drain") == b,
		              "pick %d went to the drained server", i);
	}
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "d", "a")->cur, 1);
	ck_assert_int_eq(snap_srv(&sn, "d", "a")->state, SRV_STATE_DRAIN);
	ck_assert_msg(!snap_srv(&sn, "d", "a")->takes, "drained a takes");
	ck_assert_uint_eq(snap_srv(&sn, "d", "a")->last_change,
	                  (T0_MS + 42000) / 1000);
	ck_assert_uint_eq(snap_srv(&sn, "d", "b")->cur, 4);
	ck_assert_uint_eq(snap_be(&sn, "d")->takes, 1);
	ck_assert_uint_eq(snap_be(&sn, "d")->active, 2); /* DRAIN is alive */
	pool_snap_free(&sn);

	/* The same state again: nothing happens. */
	pool_work_init(&w);
	pool_set_admin(f.p, a, SRV_DRAIN, text, sizeof(text), &w);
	expect_work_empty(&w, "drain again");
	ck_assert_str_eq(text, "DRAIN");

	/* The only server drained: no server takes sessions, but it is still
	 * alive (no backend_down). */
	set_admin(f.p, s, SRV_DRAIN, &w);
	expect_events(&w, "drain solo/s", 1, PEV_DRAIN);
	expect_srv_event(&w.events[0], PEV_DRAIN, s, 1, 0, "drain solo/s");
	waiter(&c);
	expect_pick(f.p, solo, &c, true, POOL_NONE, "solo drained");
	ck_assert_int_eq(c.state, WAITER_IDLE);
	memset(&pr, 0, sizeof(pr));
	ck_assert_uint_eq(pool_ready(f.p, problem_cb, &pr), 1);
	ck_assert_uint_eq(pr.n, 1);
	ck_assert_str_eq(pr.names[0], "solo");

	/* Ready again: picks come back to a. */
	set_admin(f.p, a, SRV_READY, &w);
	expect_events(&w, "ready a", 1, PEV_READY);
	expect_srv_event(&w.events[0], PEV_READY, a, 2, 0, "ready a");
	ck_assert_ptr_null(w.check);
	state_is(f.p, a, "UP", "ready");
	/* (Smooth round robin: b's score is ahead after its 4 picks, so a
	 * comes back within two picks.) */
	ck_assert_msg(pick_release(f.p, d, "after ready") == a ||
	                  pick_release(f.p, d, "after ready") == a,
	              "a is not picked again after ready");
	set_admin(f.p, s, SRV_READY, &w);
	expect_events(&w, "ready solo/s", 1, PEV_READY);
	ck_assert_uint_eq(pool_ready(f.p, problem_cb, &pr), 0);

	/* Let the sessions end. */
	release(f.p, a, &w);
	for (int i = 0; i < 4; i++)
		release(f.p, b, &w);
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "d")->cur, 0);
	pool_snap_free(&sn);
	fx_close(&f);
}
END_TEST

START_TEST(maint_and_back)
{
	struct fx f;
	struct backend *m;
	struct server *a, *b, *s = NULL;
	struct pool_waiter c1, w1;
	struct pool_work w;
	struct pool_snap sn;

	fx_open(&f, CFG_ADMIN);
	m = find_be(f.set, "m");
	a = find_srv(f.p, "m/a");
	b = find_srv(f.p, "m/b");
	ck_assert_msg(server_checked(a) && server_checked(b), "m is checked");

	set_admin(f.p, a, SRV_MAINT, &w);
	expect_events(&w, "maint a", 1, PEV_MAINT);
	expect_srv_event(&w.events[0], PEV_MAINT, a, 1, 0, "maint a");
	ck_assert_msg(w.check == a && w.check_stop && !w.check_now &&
	                  !w.check_next,
	              "maint: the check must be stopped");
	ck_assert_ptr_null(w.grants);
	state_is(f.p, a, "MAINT", "maint");
	snap(f.p, &sn);
	ck_assert_int_eq(snap_srv(&sn, "m", "a")->state, SRV_STATE_MAINT);
	ck_assert_msg(!snap_srv(&sn, "m", "a")->takes, "MAINT takes");
	ck_assert_uint_eq(snap_be(&sn, "m")->active, 1);
	pool_snap_free(&sn);

	/* A check that was running when maintenance began: counted, but no
	 * next check is scheduled. */
	check_pass(f.p, a, &w);
	ck_assert_msg(!w.check_next && w.check == NULL,
	              "a check result in MAINT scheduled a next check");
	ck_assert_uint_eq(w.nevents, 0);

	/* a in maintenance, b full: the next client waits. */
	waiter(&c1);
	waiter(&w1);
	ck_assert_ptr_eq(take_ok(f.p, m, &c1, "c1"), b);
	expect_pick(f.p, m, &w1, true, POOL_QUEUED, "w1");

	/* Back: checked at once, UP but unconfirmed, the queue runs. */
	set_admin(f.p, a, SRV_READY, &w);
	expect_events(&w, "ready a", 1, PEV_READY);
	expect_srv_event(&w.events[0], PEV_READY, a, 2, 0, "ready a");
	ck_assert_msg(w.check == a && w.check_now && !w.check_stop,
	              "back from maint: check now");
	expect_grants(&w, "ready a", 1, &w1, a);
	state_is(f.p, a, "UP 1/3", "back from maint");
	ck_assert_msg(pool_claim(f.p, &w1, &s) && s == a, "w1 claims a");

	/* One failed check: DOWN at once. */
	check_fail(f.p, a, &w);
	expect_events(&w, "first check after maint fails", 1, PEV_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, a, 1, 0, "down");
	ck_assert_uint_eq(w.events[0].failures, 1);
	state_is(f.p, a, "DOWN", "failed after maint");

	/* The last alive server goes into maintenance: backend_down after
	 * maint; back: ready then backend_up. */
	set_admin(f.p, b, SRV_MAINT, &w);
	expect_events(&w, "maint b", 2, PEV_MAINT, PEV_BACKEND_DOWN);
	expect_srv_event(&w.events[0], PEV_MAINT, b, 0, 0, "maint b");
	expect_be_event(&w.events[1], PEV_BACKEND_DOWN, m, 0, 0, "maint b");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "m", "b")->cur, 1); /* untouched */
	pool_snap_free(&sn);
	set_admin(f.p, b, SRV_READY, &w);
	expect_events(&w, "ready b", 2, PEV_READY, PEV_BACKEND_UP);
	expect_srv_event(&w.events[0], PEV_READY, b, 1, 0, "ready b");
	expect_be_event(&w.events[1], PEV_BACKEND_UP, m, 1, 0, "ready b");

	release(f.p, a, &w);
	release(f.p, b, &w);
	fx_close(&f);
}
END_TEST

START_TEST(weight_and_roundrobin)
{
	struct fx f;
	struct backend *wb, *wq;
	struct server *a, *b, *c, *qa, *qb, *s = NULL;
	struct pool_waiter c1, w1;
	struct pool_work w;
	struct pool_snap sn;
	char order[16];

	fx_open(&f, CFG_ADMIN);
	wb = find_be(f.set, "w");
	a = find_srv(f.p, "w/a");
	b = find_srv(f.p, "w/b");
	c = find_srv(f.p, "w/c");
	/* Weights 3:1:1 give A B A C A, and again. */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 5; i++) {
			struct server *p = pick_release(f.p, wb, "3:1:1");

			order[i] = p == a   ? 'A'
			           : p == b ? 'B'
			           : p == c ? 'C'
			                    : '?';
		}
		order[5] = '\0';
		ck_assert_msg(strcmp(order, "ABACA") == 0,
		              "round %d: weights 3:1:1 gave %s, want ABACA",
		              round, order);
	}

	/* Weight 0: never picked; returns the previous weight. */
	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, a, 0, &w), 3);
	/* The health log's weight event (load-balancer.conf(5), LOGS),
	 * nothing else. */
	expect_events(&w, "weight 0", 1, PEV_WEIGHT);
	ck_assert_int_eq(w.events[0].weight, 0);
	ck_assert_ptr_null(w.events[0].by);
	ck_assert_ptr_null(w.grants);
	ck_assert_ptr_null(w.close);
	ck_assert_ptr_null(w.check);
	for (int i = 0; i < 6; i++)
		ck_assert_msg(pick_release(f.p, wb, "a weight 0") != a,
		              "pick %d went to a server of weight 0", i);
	snap(f.p, &sn);
	ck_assert_int_eq(snap_srv(&sn, "w", "a")->weight, 0);
	ck_assert_msg(!snap_srv(&sn, "w", "a")->takes, "weight 0 takes");
	ck_assert_int_eq(snap_srv(&sn, "w", "a")->state, SRV_STATE_UP);
	pool_snap_free(&sn);
	state_is(f.p, a, "UP", "weight 0");
	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, a, 3, &w), 0);

	/* Weight back above 0: waiters get the slots. */
	wq = find_be(f.set, "wq");
	qa = find_srv(f.p, "wq/a");
	qb = find_srv(f.p, "wq/b");
	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, qb, 0, &w), 1);
	waiter(&c1);
	waiter(&w1);
	ck_assert_ptr_eq(take_ok(f.p, wq, &c1, "c1"), qa);
	expect_pick(f.p, wq, &w1, true, POOL_QUEUED, "w1 (b weight 0)");
	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, qb, 2, &w), 0);
	expect_grants(&w, "weight 2", 1, &w1, qb);
	expect_events(&w, "weight 2", 1, PEV_WEIGHT);
	ck_assert_int_eq(w.events[0].weight, 2);
	ck_assert_msg(pool_claim(f.p, &w1, &s) && s == qb, "w1 claims b");
	snap(f.p, &sn);
	ck_assert_int_eq(snap_srv(&sn, "wq", "b")->weight, 2);
	ck_assert_uint_eq(snap_srv(&sn, "wq", "b")->cur, 1);
	pool_snap_free(&sn);

	release(f.p, qa, &w);
	release(f.p, qb, &w);
	fx_close(&f);
}
END_TEST

START_TEST(state_texts)
{
	struct fx f;
	struct server *a, *u;
	struct pool_work w;
	struct pool_snap sn;
	char small[4];

	ck_assert_str_eq(srv_state_name(SRV_STATE_UP), "UP");
	ck_assert_str_eq(srv_state_name(SRV_STATE_DOWN), "DOWN");
	ck_assert_str_eq(srv_state_name(SRV_STATE_DRAIN), "DRAIN");
	ck_assert_str_eq(srv_state_name(SRV_STATE_MAINT), "MAINT");

	fx_open(&f, CFG_HEALTH);
	a = find_srv(f.p, "h/a");
	/* Unconfirmed at start: one failure from DOWN. */
	state_is(f.p, a, "UP 1/3", "start");
	check_pass(f.p, a, &w);
	state_is(f.p, a, "UP 2/3", "one pass");
	check_pass(f.p, a, &w);
	state_is(f.p, a, "UP", "two passes");
	check_fail(f.p, a, &w);
	state_is(f.p, a, "UP 2/3", "one failure");
	check_fail(f.p, a, &w);
	state_is(f.p, a, "UP 1/3", "two failures");
	snap(f.p, &sn);
	ck_assert_str_eq(snap_srv(&sn, "h", "a")->state_text, "UP 1/3");
	ck_assert_int_eq(snap_srv(&sn, "h", "a")->state, SRV_STATE_UP);
	pool_snap_free(&sn);
	check_fail(f.p, a, &w);
	state_is(f.p, a, "DOWN", "three failures");
	check_pass(f.p, a, &w);
	state_is(f.p, a, "DOWN 1/2", "one pass while down");
	snap(f.p, &sn);
	ck_assert_str_eq(snap_srv(&sn, "h", "a")->state_text, "DOWN 1/2");
	ck_assert_int_eq(snap_srv(&sn, "h", "a")->state, SRV_STATE_DOWN);
	pool_snap_free(&sn);
	/* Drained while DOWN: still DOWN. */
	set_admin(f.p, a, SRV_DRAIN, &w);
	state_is(f.p, a, "DOWN 1/2", "drained while down");
	check_pass(f.p, a, &w);
	state_is(f.p, a, "DRAIN", "drained and up");
	set_admin(f.p, a, SRV_MAINT, &w);
	state_is(f.p, a, "MAINT", "maint");
	/* A small buffer is cut, not overrun. */
	pool_state_text(f.p, a, small, sizeof(small));
	ck_assert_str_eq(small, "MAI");
	fx_close(&f);

	fx_open(&f, CFG_ADMIN);
	u = find_srv(f.p, "plain/u");
	ck_assert_msg(!server_checked(u), "plain/u is not checked");
	state_is(f.p, u, "UP", "unchecked");
	fx_close(&f);
}
END_TEST

/* --- 4. health ----------------------------------------------------------- */

START_TEST(health_first_check_down)
{
	struct fx f;
	struct backend *h, *h2;
	struct server *a, *ha, *hb;
	struct pool_waiter c;
	struct pool_work w;
	struct pool_snap sn;
	const struct pool_snap_server *ss;

	fx_open(&f, CFG_HEALTH);
	h = find_be(f.set, "h");
	h2 = find_be(f.set, "h2");
	a = find_srv(f.p, "h/a");
	ha = find_srv(f.p, "h2/a");
	hb = find_srv(f.p, "h2/b");

	/* The only server's first check fails (a reply code): DOWN, then
	 * backend_down. */
	fake_now_ms = T0_MS + 1500;
	check_res(f.p, a, false, "helo", 554, "554 5.7.1 go away", NULL, &w);
	expect_events(&w, "h/a first check", 2, PEV_DOWN, PEV_BACKEND_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, a, 0, 0, "h/a down");
	ck_assert_str_eq(w.events[0].step, "helo");
	ck_assert_int_eq(w.events[0].code, 554);
	ck_assert_str_eq(w.events[0].reply, "554 5.7.1 go away");
	ck_assert_uint_eq(w.events[0].failures, 1);
	ck_assert_uint_eq(w.events[0].duration_ms, 7);
	expect_be_event(&w.events[1], PEV_BACKEND_DOWN, h, 0, 0, "h down");
	ck_assert_msg(w.close == NULL, "no on_marked_down: nothing to close");
	expect_next(&w, a, 10000, "h/a DOWN: downinter");
	ck_assert_ptr_null(w.grants);
	state_is(f.p, a, "DOWN", "h/a");
	waiter(&c);
	expect_pick(f.p, h, &c, true, POOL_NONE, "h all DOWN");
	ck_assert_int_eq(c.state, WAITER_IDLE);

	/* Not the last server (a reason, no code): down only. */
	check_res(f.p, ha, false, "connect", 0, NULL, "connection refused", &w);
	expect_events(&w, "h2/a first check", 1, PEV_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, ha, 1, 0, "h2/a down");
	ck_assert_str_eq(w.events[0].step, "connect");
	ck_assert_int_eq(w.events[0].code, 0);
	ck_assert_str_eq(w.events[0].reason, "connection refused");
	ck_assert_uint_eq(w.events[0].failures, 1);
	ck_assert_ptr_null(w.close);
	expect_next(&w, ha, 10000, "h2/a DOWN");
	/* New clients go to b. */
	ck_assert_ptr_eq(pick_release(f.p, h2, "h2 after a down"), hb);
	ck_assert_ptr_eq(pick_release(f.p, h2, "h2 after a down"), hb);

	snap(f.p, &sn);
	ss = snap_srv(&sn, "h2", "a");
	ck_assert_int_eq(ss->state, SRV_STATE_DOWN);
	ck_assert_msg(!ss->takes && ss->checked, "h2/a: DOWN, checked");
	ck_assert_uint_eq(ss->checks, 1);
	ck_assert_uint_eq(ss->check_failures[health_step_index("connect")], 1);
	ck_assert_uint_eq(ss->last_check_ms, 7);
	ck_assert_str_eq(ss->last_check,
	                 "failed at connect: connection refused (7 ms)");
	ck_assert_uint_eq(ss->last_change, (T0_MS + 1500) / 1000);
	ss = snap_srv(&sn, "h", "a");
	ck_assert_uint_eq(ss->check_failures[health_step_index("helo")], 1);
	ck_assert_uint_eq(ss->check_failures[health_step_index("connect")], 0);
	ck_assert_uint_eq(snap_be(&sn, "h2")->active, 1);
	ck_assert_uint_eq(snap_be(&sn, "h")->active, 0);
	pool_snap_free(&sn);

	/* The last one of h2: down, backend_down. */
	check_fail(f.p, hb, &w);
	expect_events(&w, "h2/b", 2, PEV_DOWN, PEV_BACKEND_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, hb, 0, 0, "h2/b down");
	expect_be_event(&w.events[1], PEV_BACKEND_DOWN, h2, 0, 0, "h2 down");
	fx_close(&f);
}
END_TEST

START_TEST(health_fall_and_rise)
{
	struct fx f;
	struct backend *h;
	struct server *a;
	struct pool_waiter c;
	struct pool_work w;
	struct pool_snap sn;
	const struct pool_snap_server *ss;

	fx_open(&f, CFG_HEALTH);
	h = find_be(f.set, "h");
	a = find_srv(f.p, "h/a");

	/* From unconfirmed to fully UP: fastinter, then interval. */
	check_pass(f.p, a, &w);
	ck_assert_uint_eq(w.nevents, 0);
	expect_next(&w, a, 500, "pass 1: fastinter");
	check_pass(f.p, a, &w);
	ck_assert_uint_eq(w.nevents, 0);
	expect_next(&w, a, 2000, "fully UP: interval");
	state_is(f.p, a, "UP", "fully up");

	/* fall-1 failures: fail events, still UP. */
	check_res(f.p, a, false, "greeting", 421, "421 4.7.0 busy", NULL, &w);
	expect_events(&w, "failure 1", 1, PEV_FAIL);
	expect_srv_event(&w.events[0], PEV_FAIL, a, 1, 0, "failure 1");
	ck_assert_str_eq(w.events[0].step, "greeting");
	ck_assert_int_eq(w.events[0].code, 421);
	ck_assert_str_eq(w.events[0].reply, "421 4.7.0 busy");
	ck_assert_uint_eq(w.events[0].failures, 1);
	ck_assert_ptr_null(w.close);
	expect_next(&w, a, 500, "going down: fastinter");
	state_is(f.p, a, "UP 2/3", "failure 1");

	check_res(f.p, a, false, "helo", 0, NULL, "timeout", &w);
	expect_events(&w, "failure 2", 1, PEV_FAIL);
	expect_srv_event(&w.events[0], PEV_FAIL, a, 1, 0, "failure 2");
	ck_assert_str_eq(w.events[0].step, "helo");
	ck_assert_str_eq(w.events[0].reason, "timeout");
	ck_assert_uint_eq(w.events[0].failures, 2);
	expect_next(&w, a, 500, "going down: fastinter");
	state_is(f.p, a, "UP 1/3", "failure 2");
	ck_assert_ptr_eq(pick_release(f.p, h, "still UP"), a);

	/* The fall-th: down, backend_down (in that order). */
	fake_now_ms = T0_MS + 5000;
	check_fail(f.p, a, &w);
	expect_events(&w, "failure 3", 2, PEV_DOWN, PEV_BACKEND_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, a, 0, 0, "failure 3");
	ck_assert_uint_eq(w.events[0].failures, 3);
	ck_assert_str_eq(w.events[0].step, "connect");
	ck_assert_str_eq(w.events[0].reason, "connection refused");
	expect_be_event(&w.events[1], PEV_BACKEND_DOWN, h, 0, 0, "failure 3");
	ck_assert_ptr_null(w.close);
	expect_next(&w, a, 10000, "DOWN: downinter");
	state_is(f.p, a, "DOWN", "failure 3");
	waiter(&c);
	expect_pick(f.p, h, &c, true, POOL_NONE, "DOWN");

	/* rise passes: up (downtime from the fake clock), backend_up. */
	fake_now_ms = T0_MS + 5000 + 66400;
	check_pass(f.p, a, &w);
	ck_assert_uint_eq(w.nevents, 0);
	expect_next(&w, a, 500, "going up: fastinter");
	state_is(f.p, a, "DOWN 1/2", "pass 1 of 2");
	fake_now_ms += 600;
	check_pass(f.p, a, &w);
	expect_events(&w, "pass 2 of 2", 2, PEV_UP, PEV_BACKEND_UP);
	expect_srv_event(&w.events[0], PEV_UP, a, 1, 0, "up");
	ck_assert_uint_eq(w.events[0].successes, 2);
	ck_assert_uint_eq(w.events[0].downtime_s, 67);
	ck_assert_uint_eq(w.events[0].duration_ms, 7);
	expect_be_event(&w.events[1], PEV_BACKEND_UP, h, 1, 0, "up");
	expect_next(&w, a, 2000, "UP: interval");
	state_is(f.p, a, "UP", "up again");
	ck_assert_ptr_eq(pick_release(f.p, h, "UP again"), a);

	snap(f.p, &sn);
	ss = snap_srv(&sn, "h", "a");
	ck_assert_uint_eq(ss->checks, 7);
	ck_assert_uint_eq(ss->check_failures[health_step_index("connect")], 1);
	ck_assert_uint_eq(ss->check_failures[health_step_index("greeting")], 1);
	ck_assert_uint_eq(ss->check_failures[health_step_index("helo")], 1);
	ck_assert_uint_eq(ss->check_failures[health_step_index("quit")], 0);
	ck_assert_str_eq(ss->last_check, "passed (7 ms)");
	ck_assert_uint_eq(ss->last_change, (T0_MS + 5000 + 66400 + 600) / 1000);
	pool_snap_free(&sn);
	fx_close(&f);
}
END_TEST

START_TEST(health_shutdown_sessions)
{
	struct fx f;
	struct backend *sd;
	struct server *a, *s = NULL;
	struct pool_waiter c1, w1;
	struct pool_work w;

	fx_open(&f, CFG_HEALTH);
	sd = find_be(f.set, "sd");
	a = find_srv(f.p, "sd/a");
	waiter(&c1);
	waiter(&w1);
	ck_assert_ptr_eq(take_ok(f.p, sd, &c1, "c1"), a);
	expect_pick(f.p, sd, &w1, true, POOL_QUEUED, "w1");

	check_fail(f.p, a, &w);
	expect_events(&w, "sd/a down", 2, PEV_DOWN, PEV_BACKEND_DOWN);
	ck_assert_msg(w.close == a,
	              "on_marked_down = shutdown-sessions: close a's sessions");
	/* The queued client has nowhere to go: turned away. */
	expect_grants(&w, "sd/a down", 1, &w1, NULL);
	ck_assert_msg(pool_claim(f.p, &w1, &s), "w1: turned away, claimable");
	ck_assert_ptr_null(s);

	/* The caller closes c1's session. */
	release(f.p, a, &w);
	expect_work_empty(&w, "c1 closed");

	/* Going UP closes nothing. */
	check_pass(f.p, a, &w);
	check_pass(f.p, a, &w);
	expect_events(&w, "sd/a up", 2, PEV_UP, PEV_BACKEND_UP);
	ck_assert_ptr_null(w.close);
	fx_close(&f);
}
END_TEST

START_TEST(health_cert_expiry)
{
	struct fx f;
	struct server *a, *b;
	struct pool_work w;
	struct pool_snap sn;
	time_t now, na;

	fx_open(&f, CFG_HEALTH);
	a = find_srv(f.p, "cert/a");
	b = find_srv(f.p, "cert/b");
	now = (time_t)(T0_MS / 1000);

	/* Far away (30 days, warn at 7): nothing. */
	pool_work_init(&w);
	pool_cert_seen(f.p, a, now + 30 * 86400, "CN=a", &w);
	expect_work_empty(&w, "30 days");
	snap(f.p, &sn);
	ck_assert_int_eq((long long)snap_srv(&sn, "cert", "a")->cert_not_after,
	                 (long long)(now + 30 * 86400));
	pool_snap_free(&sn);

	/* Within 7 days: cert_expiry. */
	na = now + 3 * 86400;
	pool_work_init(&w);
	pool_cert_seen(f.p, a, na, "CN=a", &w);
	expect_events(&w, "3 days", 1, PEV_CERT_EXPIRY);
	ck_assert_ptr_eq(w.events[0].srv, server_conf(a));
	ck_assert_ptr_eq(w.events[0].be, backend_conf(server_backend(a)));
	ck_assert_int_eq((long long)w.events[0].not_after, (long long)na);
	ck_assert_str_eq(w.events[0].subject, "CN=a");

	/* Seen again an hour later, and just under a day later: nothing. */
	fake_now_ms = T0_MS + 3600 * 1000ULL;
	pool_work_init(&w);
	pool_cert_seen(f.p, a, na, "CN=a", &w);
	expect_work_empty(&w, "an hour later");
	fake_now_ms = T0_MS + 86399 * 1000ULL;
	pool_work_init(&w);
	pool_cert_seen(f.p, a, na, "CN=a", &w);
	expect_work_empty(&w, "23:59:59 later");
	/* A day later: again. */
	fake_now_ms = T0_MS + 86400 * 1000ULL;
	pool_work_init(&w);
	pool_cert_seen(f.p, a, na, "CN=a", &w);
	expect_events(&w, "a day later", 1, PEV_CERT_EXPIRY);

	/* Another server, once a day of its own; an expired certificate
	 * counts. */
	pool_work_init(&w);
	pool_cert_seen(f.p, b, now - 86400, "CN=b", &w);
	expect_events(&w, "b expired", 1, PEV_CERT_EXPIRY);
	ck_assert_ptr_eq(w.events[0].srv, server_conf(b));
	ck_assert_str_eq(w.events[0].subject, "CN=b");
	fx_close(&f);
}
END_TEST

/* --- 5. backup servers -----------------------------------------------------
 */

START_TEST(backup_servers)
{
	struct fx f;
	struct backend *bk;
	struct server *a1, *a2, *k, *s;
	struct pool_waiter c;
	struct pool_work w;
	struct pool_snap sn;
	struct problems pr;
	bool seen1 = false, seen2 = false;

	fx_open(&f, CFG_BACKUP);
	bk = find_be(f.set, "bk");
	a1 = find_srv(f.p, "bk/a1");
	a2 = find_srv(f.p, "bk/a2");
	k = find_srv(f.p, "bk/k");

	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "bk")->active, 2);
	ck_assert_uint_eq(snap_be(&sn, "bk")->backup, 1);
	ck_assert_uint_eq(snap_be(&sn, "bk")->takes, 3);
	pool_snap_free(&sn);

	/* Active servers only. */
	for (int i = 0; i < 6; i++) {
		s = pick_release(f.p, bk, "all up");
		ck_assert_msg(s != k, "pick %d went to the backup server", i);
		seen1 |= s == a1;
		seen2 |= s == a2;
	}
	ck_assert_msg(seen1 && seen2, "both active servers are used");

	/* a1 DOWN: a2 only. */
	check_fail(f.p, a1, &w);
	expect_events(&w, "a1 down", 1, PEV_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, a1, 1, 1, "a1 down");
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_eq(pick_release(f.p, bk, "a1 down"), a2);

	/* a2 drained: no active server takes sessions, k does. */
	set_admin(f.p, a2, SRV_DRAIN, &w);
	expect_events(&w, "a2 drain", 1, PEV_DRAIN);
	expect_srv_event(&w.events[0], PEV_DRAIN, a2, 1, 1, "a2 drain");
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_eq(pick_release(f.p, bk, "a2 drained"), k);
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "bk")->active, 1);
	ck_assert_uint_eq(snap_be(&sn, "bk")->backup, 1);
	ck_assert_uint_eq(snap_be(&sn, "bk")->takes, 1);
	pool_snap_free(&sn);
	set_admin(f.p, a2, SRV_READY, &w);
	expect_events(&w, "a2 ready", 1, PEV_READY);
	ck_assert_ptr_eq(pick_release(f.p, bk, "a2 ready"), a2);

	/* a2 in maintenance: k. */
	set_admin(f.p, a2, SRV_MAINT, &w);
	expect_events(&w, "a2 maint", 1, PEV_MAINT);
	expect_srv_event(&w.events[0], PEV_MAINT, a2, 0, 1, "a2 maint");
	ck_assert_ptr_eq(pick_release(f.p, bk, "a2 maint"), k);
	set_admin(f.p, a2, SRV_READY, &w);
	expect_events(&w, "a2 back", 1, PEV_READY);
	expect_srv_event(&w.events[0], PEV_READY, a2, 1, 1, "a2 back");
	ck_assert_ptr_eq(pick_release(f.p, bk, "a2 back"), a2);

	/* a2 weight 0: k. */
	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, a2, 0, &w), 1);
	ck_assert_ptr_eq(pick_release(f.p, bk, "a2 weight 0"), k);
	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, a2, 1, &w), 0);
	ck_assert_ptr_eq(pick_release(f.p, bk, "a2 weight 1"), a2);

	/* a1 back UP: active servers only again. */
	check_pass(f.p, a1, &w);
	check_pass(f.p, a1, &w);
	expect_events(&w, "a1 up", 1, PEV_UP);
	expect_srv_event(&w.events[0], PEV_UP, a1, 2, 1, "a1 up");
	seen1 = seen2 = false;
	for (int i = 0; i < 4; i++) {
		s = pick_release(f.p, bk, "a1 up");
		ck_assert_msg(s != k, "pick %d went to the backup server", i);
		seen1 |= s == a1;
		seen2 |= s == a2;
	}
	ck_assert_msg(seen1 && seen2, "both active servers are used again");

	/* Everything DOWN: POOL_NONE, pool_ready reports the backend. */
	check_fail(f.p, a2, &w); /* unconfirmed since maint: down at once */
	expect_events(&w, "a2 down", 1, PEV_DOWN);
	check_fail(f.p, a1, &w);
	check_fail(f.p, a1, &w);
	check_fail(f.p, a1, &w);
	expect_events(&w, "a1 down", 1, PEV_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, a1, 0, 1, "a1 down");
	ck_assert_ptr_eq(pick_release(f.p, bk, "actives down"), k);
	check_fail(f.p, k, &w);
	expect_events(&w, "k down", 2, PEV_DOWN, PEV_BACKEND_DOWN);
	expect_srv_event(&w.events[0], PEV_DOWN, k, 0, 0, "k down");
	expect_be_event(&w.events[1], PEV_BACKEND_DOWN, bk, 0, 0, "bk down");
	waiter(&c);
	expect_pick(f.p, bk, &c, true, POOL_NONE, "all down");
	ck_assert_int_eq(c.state, WAITER_IDLE);
	memset(&pr, 0, sizeof(pr));
	ck_assert_uint_eq(pool_ready(f.p, problem_cb, &pr), 1);
	ck_assert_uint_eq(pr.n, 1);
	ck_assert_str_eq(pr.names[0], "bk");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "bk")->active, 0);
	ck_assert_uint_eq(snap_be(&sn, "bk")->backup, 0);
	ck_assert_uint_eq(snap_be(&sn, "bk")->takes, 0);
	pool_snap_free(&sn);

	/* The backup server back first: backend_up, it takes sessions. */
	check_pass(f.p, k, &w);
	check_pass(f.p, k, &w);
	expect_events(&w, "k up", 2, PEV_UP, PEV_BACKEND_UP);
	expect_be_event(&w.events[1], PEV_BACKEND_UP, bk, 0, 1, "bk up");
	ck_assert_ptr_eq(pick_release(f.p, bk, "k up"), k);
	fx_close(&f);
}
END_TEST

START_TEST(ready_reports_backends)
{
	struct fx f;
	struct pool *empty;
	struct server *d;
	struct pool_work w;
	struct problems pr;

	fx_open(&f, CFG_READY);
	d = find_srv(f.p, "drained/a");
	memset(&pr, 0, sizeof(pr));
	/* empty: no servers; w0: weight 0; off: disabled (MAINT). */
	ck_assert_uint_eq(pool_ready(f.p, problem_cb, &pr), 3);
	ck_assert_uint_eq(pr.n, 3);
	ck_assert_str_eq(pr.names[0], "empty");
	ck_assert_str_eq(pr.names[1], "w0");
	ck_assert_str_eq(pr.names[2], "off");
	/* A drained-only backend does not take sessions either. */
	set_admin(f.p, d, SRV_DRAIN, &w);
	memset(&pr, 0, sizeof(pr));
	ck_assert_uint_eq(pool_ready(f.p, problem_cb, &pr), 4);
	ck_assert_str_eq(pr.names[0], "drained");
	ck_assert_str_eq(pr.names[1], "empty");
	state_is(f.p, find_srv(f.p, "off/a"), "MAINT", "disabled");
	fx_close(&f);

	/* No set installed yet: nothing to report. */
	empty = pool_new();
	ck_assert_ptr_nonnull(empty);
	memset(&pr, 0, sizeof(pr));
	ck_assert_uint_eq(pool_ready(empty, problem_cb, &pr), 0);
	pool_free(empty);
}
END_TEST

/* --- 6. minconn / fullconn ----------------------------------------------- */

static unsigned
limit_of_a(struct pool *p, const char *be, const char *srv, unsigned *becur)
{
	struct pool_snap sn;
	unsigned lim;

	snap(p, &sn);
	lim = snap_srv(&sn, be, srv)->limit;
	if (becur != NULL)
		*becur = snap_be(&sn, be)->cur;
	pool_snap_free(&sn);
	return lim;
}

START_TEST(minconn_fullconn)
{
	struct fx f;
	struct backend *mc, *one;
	struct server *a, *b, *s, *got = NULL;
	struct pool_waiter c, q;
	struct pool_work w;
	struct pool_snap sn;
	unsigned cur;
	/* Backend sessions -> a's limit: max(2, 8 * n / 10) below fullconn
	 * 10, maxconn 8 from there. */
	static const unsigned want[] = {2, 2, 2, 2, 3, 4, 4, 5, 6, 7, 8, 8, 8};

	fx_open(&f, CFG_MINCONN);
	mc = find_be(f.set, "mc");
	one = find_be(f.set, "one");
	a = find_srv(f.p, "mc/a");
	b = find_srv(f.p, "mc/b");
	ck_assert_uint_eq(backend_conf(mc)->fullconn, 10);

	/* Sessions on b only (a drained), a's limit follows. */
	set_admin(f.p, a, SRV_DRAIN, &w);
	for (unsigned n = 0; n < ARRAY_SIZE(want); n++) {
		unsigned lim = limit_of_a(f.p, "mc", "a", &cur);

		ck_assert_uint_eq(cur, n);
		ck_assert_msg(lim == want[n],
		              "%u backend sessions: a's limit %u, want %u", n,
		              lim, want[n]);
		ck_assert_uint_eq(limit_of_a(f.p, "mc", "b", NULL), 0);
		waiter(&c);
		ck_assert_ptr_eq(take_ok(f.p, mc, &c, "to b"), b);
	}
	for (unsigned n = 0; n < ARRAY_SIZE(want); n++)
		release(f.p, b, &w);
	ck_assert_uint_eq(limit_of_a(f.p, "mc", "a", &cur), 2);
	ck_assert_uint_eq(cur, 0);
	set_admin(f.p, a, SRV_READY, &w);

	/* Alone: at its limit (minconn 2 with 2 sessions of 10) clients
	 * queue although maxconn is 8. */
	s = find_srv(f.p, "one/s");
	waiter(&c);
	ck_assert_ptr_eq(take_ok(f.p, one, &c, "1"), s);
	waiter(&c);
	ck_assert_ptr_eq(take_ok(f.p, one, &c, "2"), s);
	waiter(&q);
	expect_pick(f.p, one, &q, true, POOL_QUEUED, "3rd: over the limit");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "one", "s")->limit, 2);
	ck_assert_uint_eq(snap_srv(&sn, "one", "s")->cur, 2);
	ck_assert_uint_eq(snap_be(&sn, "one")->queued, 1);
	pool_snap_free(&sn);
	release(f.p, s, &w);
	expect_grants(&w, "one slot freed", 1, &q, s);
	ck_assert_msg(pool_claim(f.p, &q, &got) && got == s, "q claims s");
	release(f.p, s, &w);
	release(f.p, s, &w);
	fx_close(&f);
}
END_TEST

/* --- 7. reload ------------------------------------------------------------ */

struct fx2 {
	struct fx f;
	struct cfg *cfg2;
	struct pool_set *set2;
};

static void
reload(struct fx2 *x, const char *text, struct pool_work *w)
{
	x->cfg2 = load(text);
	x->set2 = pool_set_new(x->cfg2, x->cfg2);
	ck_assert_ptr_nonnull(x->set2);
	pool_work_init(w);
	pool_install(x->f.p, x->set2, w);
}

static void
fx2_close(struct fx2 *x)
{
	pool_free(x->f.p);
	pool_set_free(x->f.set);
	pool_set_free(x->set2);
	cfg_free(x->f.cfg);
	cfg_free(x->cfg2);
}

START_TEST(reload_carries_states)
{
	struct fx2 x;
	struct pool_work w;
	struct pool_snap sn;
	const struct pool_snap_server *ss;
	struct server *f, *g, *h, *od;
	struct pool_waiter c;

	fx_open(&x.f, CFG_R1);
	od = find_srv(x.f.p, "be/d");
	set_admin(x.f.p, find_srv(x.f.p, "be/a"), SRV_DRAIN, &w);
	set_admin(x.f.p, find_srv(x.f.p, "be/b"), SRV_DRAIN, &w);
	set_admin(x.f.p, find_srv(x.f.p, "be/c"), SRV_MAINT, &w);
	pool_work_init(&w);
	pool_set_weight(x.f.p, find_srv(x.f.p, "be/d"), 5, &w);
	pool_set_weight(x.f.p, find_srv(x.f.p, "be/e"), 5, &w);
	f = find_srv(x.f.p, "be/f");
	g = find_srv(x.f.p, "be/g");
	h = find_srv(x.f.p, "be/h");
	fake_now_ms = T0_MS + 9000;
	check_fail(x.f.p, f, &w);
	check_fail(x.f.p, g, &w);
	check_res(x.f.p, h, false, "helo", 0, NULL, "timeout", &w);
	/* Sessions and counters. */
	waiter(&c);
	/* d (weight 5, first) is the smooth round robin's first pick. */
	ck_assert_ptr_eq(take_ok(x.f.p, find_be(x.f.set, "be"), &c, "c"), od);
	connect_failed(x.f.p, f, true);
	connect_failed(x.f.p, g, false);

	reload(&x, CFG_R2, &w);
	expect_work_empty(&w, "reload (a reload is not a health event)");
	ck_assert_ptr_eq(server_backend(find_srv(x.f.p, "be/a")),
	                 pool_set_find(x.set2, "be"));

	snap(x.f.p, &sn);
	ck_assert_uint_eq(sn.nbackends, 2);
	/* Operator's drain kept (the file did not change a). */
	ss = snap_srv(&sn, "be", "a");
	ck_assert_int_eq(ss->state, SRV_STATE_DRAIN);
	/* Drained by the operator, and the file now disables b: the
	 * operator's state wins until enable (load-balancer.conf(5),
	 * OPERATOR STATE). */
	ck_assert_int_eq(snap_srv(&sn, "be", "b")->state, SRV_STATE_DRAIN);
	/* Operator's maintenance kept. */
	ck_assert_int_eq(snap_srv(&sn, "be", "c")->state, SRV_STATE_MAINT);
	/* The file enabled c2: READY. */
	ck_assert_int_eq(snap_srv(&sn, "be", "c2")->state, SRV_STATE_UP);
	/* Operator's weight kept where the file did not change it. */
	ck_assert_int_eq(snap_srv(&sn, "be", "d")->weight, 5);
	ck_assert_uint_eq(snap_srv(&sn, "be", "d")->cur, 1);
	ck_assert_uint_eq(snap_srv(&sn, "be", "d")->total, 1);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 1);
	/* The operator's weight wins over the file's new one, too. */
	ck_assert_int_eq(snap_srv(&sn, "be", "e")->weight, 5);
	/* Health kept: same address, still checked. */
	ss = snap_srv(&sn, "be", "f");
	ck_assert_int_eq(ss->state, SRV_STATE_DOWN);
	ck_assert_str_eq(ss->state_text, "DOWN");
	ck_assert_msg(!ss->takes, "f DOWN takes");
	ck_assert_uint_eq(ss->checks, 1);
	ck_assert_uint_eq(ss->check_failures[health_step_index("connect")], 1);
	ck_assert_uint_eq(ss->connect_failures, 1);
	ck_assert_uint_eq(ss->last_change, (T0_MS + 9000) / 1000);
	ck_assert_str_eq(ss->last_check,
	                 "failed at connect: connection refused (7 ms)");
	/* Another address: checked afresh (UP, unconfirmed); counters kept. */
	ss = snap_srv(&sn, "be", "g");
	ck_assert_int_eq(ss->state, SRV_STATE_UP);
	ck_assert_str_eq(ss->state_text, "UP 1/3");
	ck_assert_uint_eq(ss->checks, 1);
	ck_assert_uint_eq(ss->connect_failures, 1);
	/* No longer checked: always UP. */
	ss = snap_srv(&sn, "be", "h");
	ck_assert_int_eq(ss->state, SRV_STATE_UP);
	ck_assert_str_eq(ss->state_text, "UP");
	ck_assert_msg(!ss->checked, "h is no longer checked");
	ck_assert_uint_eq(ss->check_failures[health_step_index("helo")], 1);
	/* New server: fresh. */
	ss = snap_srv(&sn, "be", "n");
	ck_assert_int_eq(ss->state, SRV_STATE_UP);
	ck_assert_uint_eq(ss->total, 0);
	/* f DOWN, g/h/n/a/b (DRAIN)/c2/d/e alive: no event, the set just
	 * is so. */
	ck_assert_uint_eq(snap_be(&sn, "be")->active, 8);
	pool_snap_free(&sn);
	/* c's session ends through the old d. */
	release(x.f.p, od, &w);
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "be", "d")->cur, 0);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 0);
	pool_snap_free(&sn);
	fx2_close(&x);
}
END_TEST

START_TEST(reload_successors)
{
	struct fx2 x;
	struct pool_work w;
	struct backend *obe, *ogone, *nbe;
	struct server *oa, *og, *ox, *of, *na, *nn;
	char err[128];

	fx_open(&x.f, CFG_R1);
	obe = find_be(x.f.set, "be");
	ogone = find_be(x.f.set, "gone");
	oa = find_srv(x.f.p, "be/a");
	of = find_srv(x.f.p, "be/f");
	og = find_srv(x.f.p, "be/g");
	ox = find_srv(x.f.p, "be/x");
	ck_assert_ptr_null(backend_successor(obe));
	ck_assert_ptr_null(server_successor(oa));

	reload(&x, CFG_R2, &w);
	nbe = find_be(x.set2, "be");
	na = backend_find_server(nbe, "a");
	nn = backend_find_server(nbe, "n");
	ck_assert_ptr_nonnull(na);
	ck_assert_ptr_nonnull(nn);
	ck_assert_ptr_eq(backend_successor(obe), nbe);
	ck_assert_ptr_null(backend_successor(ogone));
	ck_assert_ptr_null(backend_successor(nbe));
	ck_assert_ptr_eq(server_successor(oa), na);
	ck_assert_ptr_eq(server_successor(of), backend_find_server(nbe, "f"));
	ck_assert_msg(server_successor(og) == NULL,
	              "g moved to another address: no successor");
	ck_assert_msg(server_successor(ox) == NULL, "x removed: no successor");
	ck_assert_ptr_null(server_successor(na));
	ck_assert_ptr_eq(server_backend(na), nbe);
	ck_assert_ptr_eq(backend_owner(nbe), x.cfg2);
	/* Positions in the new set ("fresh" comes first, "n" first in be). */
	ck_assert_uint_eq(backend_index(nbe), 1);
	ck_assert_uint_eq(server_index(nn), 0);
	ck_assert_uint_eq(server_index(na), 1);
	ck_assert_ptr_eq(backend_owner(obe), x.f.cfg);

	/* pool_find_server looks in the new set. */
	ck_assert_ptr_eq(find_srv(x.f.p, "be/a"), na);
	ck_assert_ptr_eq(find_srv(x.f.p, "fresh/z"),
	                 backend_server(find_be(x.set2, "fresh"), 0));
	ck_assert_ptr_null(pool_find_server(x.f.p, "gone/y", err, sizeof(err)));
	ck_assert_str_eq(err, "no backend 'gone'");
	ck_assert_ptr_null(pool_find_server(x.f.p, "be/x", err, sizeof(err)));
	ck_assert_str_eq(err, "backend 'be' has no server 'x'");
	fx2_close(&x);
}
END_TEST

START_TEST(reload_moves_slots)
{
	struct fx2 x;
	struct pool_work w;
	struct backend *obe, *ogone, *nbe;
	struct server *oa, *og, *oy, *na, *ng, *s = NULL;
	struct pool_waiter c1, c2, c3, c4, c5;
	struct pool_snap sn;

	fx_open(&x.f, CFG_S1);
	obe = find_be(x.f.set, "be");
	ogone = find_be(x.f.set, "gone");
	oa = find_srv(x.f.p, "be/a");
	og = find_srv(x.f.p, "be/g");
	oy = find_srv(x.f.p, "gone/y");
	waiter(&c1);
	waiter(&c2);
	waiter(&c3);
	waiter(&c4);
	waiter(&c5);
	ck_assert_ptr_eq(take_ok(x.f.p, obe, &c1, "c1"), oa);
	ck_assert_ptr_eq(take_ok(x.f.p, obe, &c2, "c2"), og);
	ck_assert_ptr_eq(take_ok(x.f.p, obe, &c3, "c3"), oa);
	ck_assert_ptr_eq(take_ok(x.f.p, ogone, &c4, "c4"), oy);
	pool_work_init(&w);
	pool_release(x.f.p, oa, 10, 20, &w); /* c1 ends before the reload */
	expect_work_empty(&w, "c1 ends");
	ck_assert_ptr_eq(take_ok(x.f.p, obe, &c1, "c1 again"), og);

	reload(&x, CFG_S2, &w);
	expect_work_empty(&w, "reload");
	nbe = find_be(x.set2, "be");
	na = backend_find_server(nbe, "a");
	ng = backend_find_server(nbe, "g");
	ck_assert_ptr_eq(server_successor(oa), na);
	ck_assert_ptr_null(server_successor(og));

	snap(x.f.p, &sn);
	/* a's slot (c3) counts on the new a; g moved to another address:
	 * its two slots stay with the old g.  Counters carried over. */
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->cur, 1);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->total, 2);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->bytes_in, 10);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->bytes_out, 20);
	ck_assert_uint_eq(snap_srv(&sn, "be", "g")->cur, 0);
	ck_assert_uint_eq(snap_srv(&sn, "be", "g")->total, 2);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 1);
	pool_snap_free(&sn);

	/* The old backend is no longer current. */
	expect_pick(x.f.p, obe, &c5, true, POOL_MOVED, "old backend");
	ck_assert_int_eq(c5.state, WAITER_IDLE);
	expect_pick(x.f.p, ogone, &c5, true, POOL_MOVED, "removed backend");
	ck_assert_ptr_eq(backend_successor(obe), nbe);
	ck_assert_ptr_nonnull(s = take_ok(x.f.p, nbe, &c5, "successor"));
	release(x.f.p, s, &w);

	/* c3 ends, released through the old pointer: counted on the new a. */
	pool_work_init(&w);
	pool_release(x.f.p, oa, 100, 200, &w);
	expect_work_empty(&w, "release old a");
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->cur, 0);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->bytes_in, 110);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->bytes_out, 220);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 0);
	pool_snap_free(&sn);
	/* A new session on the new g, then the old g's sessions end: the
	 * new g is not touched. */
	waiter(&c5);
	ck_assert_msg(take_ok(x.f.p, nbe, &c5, "c5") != NULL, "c5");
	for (int i = 0; i < 2; i++) {
		pool_work_init(&w);
		pool_release(x.f.p, og, 5, 5, &w);
		expect_work_empty(&w, "release old g");
	}
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "be", "g")->bytes_in, 0);
	ck_assert_uint_eq(
	    snap_srv(&sn, "be", "a")->cur + snap_srv(&sn, "be", "g")->cur, 1);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 1);
	pool_snap_free(&sn);
	/* The removed backend's session ends. */
	pool_work_init(&w);
	pool_release(x.f.p, oy, 0, 0, &w);
	expect_work_empty(&w, "release old y");
	/* c5 ends. */
	snap(x.f.p, &sn);
	s = snap_srv(&sn, "be", "a")->cur == 1 ? na : ng;
	pool_snap_free(&sn);
	release(x.f.p, s, &w);
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->cur, 0);
	ck_assert_uint_eq(snap_srv(&sn, "be", "g")->cur, 0);
	ck_assert_uint_eq(snap_be(&sn, "be")->cur, 0);
	pool_snap_free(&sn);
	fx2_close(&x);
}
END_TEST

/* CFG_W1's backend "keep" full: c1 holds s, c2 holds r, w1..w3 queued. */
static void
fill_keep(struct fx2 *x, struct pool_waiter *c1, struct pool_waiter *c2,
          struct pool_waiter *w1, struct pool_waiter *w2,
          struct pool_waiter *w3)
{
	struct backend *okeep = find_be(x->f.set, "keep");

	waiter(c1);
	waiter(c2);
	waiter(w1);
	waiter(w2);
	waiter(w3);
	ck_assert_ptr_eq(take_ok(x->f.p, okeep, c1, "c1"),
	                 find_srv(x->f.p, "keep/s"));
	ck_assert_ptr_eq(take_ok(x->f.p, okeep, c2, "c2"),
	                 find_srv(x->f.p, "keep/r"));
	expect_pick(x->f.p, okeep, w1, true, POOL_QUEUED, "w1");
	expect_pick(x->f.p, okeep, w2, true, POOL_QUEUED, "w2");
	expect_pick(x->f.p, okeep, w3, true, POOL_QUEUED, "w3");
}

START_TEST(reload_moves_waiters)
{
	struct fx2 x;
	struct pool_work w;
	struct backend *ogone, *nkeep;
	struct server *os, *orr, *oz, *ns, *s = NULL;
	struct pool_waiter c1, c2, c3, w1, w2, w3, g1, g2;
	struct pool_snap sn;

	fx_open(&x.f, CFG_W1);
	ogone = find_be(x.f.set, "gone");
	os = find_srv(x.f.p, "keep/s");
	orr = find_srv(x.f.p, "keep/r");
	oz = find_srv(x.f.p, "gone/z");
	waiter(&c3);
	waiter(&g1);
	waiter(&g2);
	fill_keep(&x, &c1, &c2, &w1, &w2, &w3);
	/* c2 ends: w1 is given r but has not claimed it yet. */
	release(x.f.p, orr, &w);
	expect_grants(&w, "c2 ends", 1, &w1, orr);
	ck_assert_ptr_eq(take_ok(x.f.p, ogone, &c3, "c3"), oz);
	expect_pick(x.f.p, ogone, &g1, true, POOL_QUEUED, "g1");
	expect_pick(x.f.p, ogone, &g2, true, POOL_QUEUED, "g2");

	/* keep loses r, gone is removed. */
	reload(&x, CFG_W2, &w);
	nkeep = find_be(x.set2, "keep");
	ns = backend_find_server(nkeep, "s");
	ck_assert_ptr_eq(server_successor(os), ns);
	ck_assert_ptr_null(server_successor(orr));
	/* gone's waiters are turned away, in queue order. */
	expect_grants(&w, "reload", 2, &g1, NULL, &g2, NULL);
	ck_assert_uint_eq(w.nevents, 0);
	ck_assert_int_eq(pool_leave_queue(x.f.p, &g1), WAITER_GRANTED);
	ck_assert_msg(pool_claim(x.f.p, &g1, &s), "g1: turned away");
	ck_assert_ptr_null(s);
	ck_assert_msg(pool_claim(x.f.p, &g2, &s), "g2: turned away");
	ck_assert_ptr_null(s);
	ck_assert_msg(!pool_claim(x.f.p, &g2, &s), "g2 claimed twice");

	/* w1's server is gone: its grant stays (its mail is on the way and
	 * the grant may still be in its granter's list), with no server and
	 * "choose again"; the slot it had was given back. */
	ck_assert_int_eq(w1.state, WAITER_GRANTED);
	ck_assert_ptr_null(w1.granted);
	ck_assert(w1.again);
	ck_assert_ptr_eq(w1.be, nkeep);
	ck_assert_ptr_eq(w2.be, nkeep);
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "keep")->queued, 2);
	ck_assert_uint_eq(snap_be(&sn, "keep")->cur, 1);
	ck_assert_uint_eq(snap_srv(&sn, "keep", "s")->cur, 1);
	pool_snap_free(&sn);
	ck_assert_int_eq(pool_claim(x.f.p, &w1, &s), CLAIM_AGAIN);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(pool_claim(x.f.p, &w1, &s), CLAIM_NOTHING);
	/* It chooses again: s is full, it waits behind w2 and w3. */
	expect_pick(x.f.p, nkeep, &w1, true, POOL_QUEUED, "w1 again");

	/* c1 ends (old pointer): w2, then w3, then w1. */
	release(x.f.p, os, &w);
	expect_grants(&w, "c1 ends", 1, &w2, ns);
	ck_assert_msg(pool_claim(x.f.p, &w2, &s) && s == ns, "w2 claims s");
	release(x.f.p, ns, &w);
	expect_grants(&w, "w2 ends", 1, &w3, ns);
	ck_assert_msg(pool_claim(x.f.p, &w3, &s) && s == ns, "w3 claims s");
	release(x.f.p, ns, &w);
	expect_grants(&w, "w3 ends", 1, &w1, ns);
	ck_assert_msg(pool_claim(x.f.p, &w1, &s) && s == ns, "w1 claims s");
	release(x.f.p, ns, &w);
	expect_work_empty(&w, "w1 ends");
	release(x.f.p, oz, &w); /* c3, on the removed backend */
	expect_work_empty(&w, "c3 ends");
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "keep")->queued, 0);
	ck_assert_uint_eq(snap_be(&sn, "keep")->cur, 0);
	pool_snap_free(&sn);
	fx2_close(&x);
}
END_TEST

START_TEST(reload_keeps_granted_on_kept_server)
{
	struct fx2 x;
	struct pool_work w;
	struct backend *nkeep;
	struct server *os, *orr, *ns, *s = NULL;
	struct pool_waiter c1, c2, w1, w2, w3;

	fx_open(&x.f, CFG_W1);
	os = find_srv(x.f.p, "keep/s");
	orr = find_srv(x.f.p, "keep/r");
	fill_keep(&x, &c1, &c2, &w1, &w2, &w3);
	release(x.f.p, orr, &w);
	expect_grants(&w, "c2 ends", 1, &w1, orr);
	release(x.f.p, os, &w);
	expect_grants(&w, "c1 ends", 1, &w2, os);

	reload(&x, CFG_W2, &w);
	expect_work_empty(&w, "reload: s is full, nobody is served");
	nkeep = find_be(x.set2, "keep");
	ns = backend_find_server(nkeep, "s");
	/* w2 keeps its grant, now on the new s; w1's server r is removed:
	 * it keeps its grant too, with no server and "choose again". */
	ck_assert_int_eq(w2.state, WAITER_GRANTED);
	ck_assert_ptr_eq(w2.granted, ns);
	ck_assert_int_eq(w1.state, WAITER_GRANTED);
	ck_assert(w1.again);
	ck_assert_int_eq(pool_leave_queue(x.f.p, &w2), WAITER_GRANTED);
	ck_assert_msg(pool_claim(x.f.p, &w2, &s) == CLAIM_SERVER && s == ns,
	              "w2 claims the new s");
	ck_assert_int_eq(pool_claim(x.f.p, &w1, &s), CLAIM_AGAIN);
	expect_pick(x.f.p, nkeep, &w1, true, POOL_QUEUED, "w1 again");
	release(x.f.p, os, &w); /* w2 ends, through the old pointer */
	expect_grants(&w, "w2 ends", 1, &w3, ns);
	ck_assert_msg(pool_claim(x.f.p, &w3, &s) && s == ns, "w3 claims s");
	release(x.f.p, ns, &w);
	expect_grants(&w, "w3 ends", 1, &w1, ns);
	ck_assert_msg(pool_claim(x.f.p, &w1, &s) && s == ns, "w1 claims s");
	release(x.f.p, ns, &w);
	expect_work_empty(&w, "w1 ends");
	fx2_close(&x);
}
END_TEST

START_TEST(reload_carries_counters)
{
	struct fx2 x;
	struct pool_work w;
	struct server *oa, *ob;
	struct pool_waiter c;
	struct pool_snap sn;
	const struct pool_snap_server *ss;

	fx_open(&x.f, CFG_K1);
	oa = find_srv(x.f.p, "be/a");
	ob = find_srv(x.f.p, "be/b");
	waiter(&c);
	ck_assert_ptr_eq(take_ok(x.f.p, find_be(x.f.set, "be"), &c, "c"), oa);
	pool_work_init(&w);
	pool_release(x.f.p, oa, 300, 400, &w);
	connect_failed(x.f.p, oa, true);
	connect_failed(x.f.p, oa, true);
	connect_failed(x.f.p, ob, false);

	reload(&x, CFG_K1, &w);
	expect_work_empty(&w, "same file again");
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "be")->retries, 2);
	ss = snap_srv(&sn, "be", "a");
	ck_assert_uint_eq(ss->connect_failures, 2);
	ck_assert_uint_eq(ss->total, 1);
	ck_assert_uint_eq(ss->max, 1);
	ck_assert_uint_eq(ss->bytes_in, 300);
	ck_assert_uint_eq(ss->bytes_out, 400);
	ck_assert_uint_eq(snap_srv(&sn, "be", "b")->connect_failures, 1);
	pool_snap_free(&sn);

	/* Later through the old pointer: counted on the successor. */
	connect_failed(x.f.p, oa, true);
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "be")->retries, 3);
	ck_assert_uint_eq(snap_srv(&sn, "be", "a")->connect_failures, 3);
	pool_snap_free(&sn);
	fx2_close(&x);
}
END_TEST

/* Regression (pool_connect_failed, now pool_session_failed): pool.h says that
 * "everything done later to the old object through this interface (release,
 * retry counts)" moves to the successor.  A retry after a reload on a server
 * the new file removed (so the server has no successor, but its backend has
 * one) was counted on the retired backend, and so never reached the current
 * backend's retries counter (/metrics). */
START_TEST(reload_retry_on_removed_server)
{
	struct fx2 x;
	struct pool_work w;
	struct server *ob;
	struct pool_snap sn;

	fx_open(&x.f, CFG_K1);
	ob = find_srv(x.f.p, "be/b");
	connect_failed(x.f.p, ob, true);
	reload(&x, CFG_K2, &w);
	ck_assert_ptr_null(server_successor(ob));
	/* A session that was connecting to b retries. */
	connect_failed(x.f.p, ob, true);
	snap(x.f.p, &sn);
	ck_assert_msg(snap_be(&sn, "be")->retries == 2,
	              "retry on a removed server after reload: "
	              "current backend counts %llu retries, want 2",
	              (unsigned long long)snap_be(&sn, "be")->retries);
	pool_snap_free(&sn);
	fx2_close(&x);
}
END_TEST

/* --- 8. pool_find_server -------------------------------------------------- */

START_TEST(find_server)
{
	struct fx f;
	struct pool *empty;
	struct backend *be;
	struct server *s;
	char err[128];

	fx_open(&f, CFG_TWO);
	be = find_be(f.set, "be");
	strcpy(err, "untouched");
	s = pool_find_server(f.p, "be/b", err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_eq(s, backend_server(be, 1));
	ck_assert_ptr_eq(s, backend_find_server(be, "b"));
	ck_assert_str_eq(server_conf(s)->name, "b");
	ck_assert_ptr_eq(server_backend(s), be);

	ck_assert_ptr_null(
	    pool_find_server(f.p, "nobackend/x", err, sizeof(err)));
	ck_assert_str_eq(err, "no backend 'nobackend'");
	ck_assert_ptr_null(pool_find_server(f.p, "be/nosrv", err, sizeof(err)));
	ck_assert_str_eq(err, "backend 'be' has no server 'nosrv'");
	ck_assert_ptr_null(pool_find_server(f.p, "noslash", err, sizeof(err)));
	ck_assert_str_eq(err, "expected BACKEND/SERVER, got 'noslash'");
	ck_assert_ptr_null(pool_find_server(f.p, "/a", err, sizeof(err)));
	ck_assert_str_eq(err, "no backend ''");

	/* The accessors. */
	ck_assert_uint_eq(pool_set_nbackends(f.set), 1);
	ck_assert_ptr_eq(pool_set_backend(f.set, 0), be);
	ck_assert_ptr_null(pool_set_backend(f.set, 1));
	ck_assert_ptr_null(pool_set_find(f.set, "nobackend"));
	ck_assert_str_eq(backend_conf(be)->name, "be");
	ck_assert_ptr_eq(backend_owner(be), f.cfg);
	ck_assert_uint_eq(backend_nservers(be), 2);
	ck_assert_ptr_null(backend_server(be, 2));
	ck_assert_ptr_null(backend_find_server(be, "zz"));
	ck_assert_msg(!server_checked(s), "no health_check: not checked");
	ck_assert_uint_eq(backend_index(be), 0);
	ck_assert_uint_eq(server_index(s), 1);
	ck_assert_uint_eq(server_index(backend_server(be, 0)), 0);
	fx_close(&f);

	/* Nothing installed. */
	empty = pool_new();
	ck_assert_ptr_nonnull(empty);
	ck_assert_ptr_null(pool_find_server(empty, "be/a", err, sizeof(err)));
	ck_assert_str_eq(err, "no backend 'be'");
	pool_free(empty);
}
END_TEST

/* --- 9. passive health (load-balancer.conf(5), GREETING GATE) ----------- */

/* error_limit consecutive failures of live sessions mark a checked server
 * DOWN at once (one event, by=traffic); rise passing checks bring it back;
 * a session that commits starts the count again. */
START_TEST(passive_down_after_error_limit)
{
	struct fx f;
	struct backend *ph;
	struct server *a, *b;
	struct pool_work w;
	struct pool_snap sn;
	const struct pool_snap_server *ss;
	bool a_picked = false;

	fx_open(&f, CFG_PASSIVE);
	ph = find_be(f.set, "ph");
	a = find_srv(f.p, "ph/a");
	b = find_srv(f.p, "ph/b");
	fully_up(f.p, a);
	fully_up(f.p, b);

	/* error_limit - 1 failures: counted, still UP, no event. */
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "failure 1");
	traffic_is(f.p, "ph", "a", 1, 1, "failure 1");
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "failure 2");
	traffic_is(f.p, "ph", "a", 2, 2, "failure 2");
	state_is(f.p, a, "UP", "after 2 failures");
	snap(f.p, &sn);
	ss = snap_srv(&sn, "ph", "a");
	ck_assert_msg(ss->takes && ss->up,
	              "2 failures: a still takes sessions");
	ck_assert_uint_eq(ss->connect_failures, 0);
	ck_assert_uint_eq(snap_be(&sn, "ph")->retries, 2);
	pool_snap_free(&sn);

	/* The error_limit-th: DOWN, exactly one event. */
	fake_now_ms = T0_MS + 4000;
	greeting_421(f.p, a, &w);
	expect_events(&w, "failure 3", 1, PEV_DOWN);
	expect_traffic_down(&w.events[0], a, 1, "greeting", 421,
	                    "421 4.7.0 busy", "", 3, "failure 3");
	ck_assert_msg(w.close == NULL, "on_marked_down none: nothing to close");
	ck_assert_ptr_null(w.grants);
	state_is(f.p, a, "DOWN", "after 3 failures");
	snap(f.p, &sn);
	ss = snap_srv(&sn, "ph", "a");
	ck_assert_int_eq(ss->state, SRV_STATE_DOWN);
	ck_assert_msg(!ss->takes && !ss->up && ss->checked, "a: DOWN");
	ck_assert_uint_eq(ss->traffic_errors, 3);
	ck_assert_uint_eq(ss->traffic_fails, 3);
	ck_assert_uint_eq(ss->last_change, (T0_MS + 4000) / 1000);
	/* Live traffic is not a health check. */
	ck_assert_uint_eq(ss->checks, 2);
	ck_assert_uint_eq(ss->check_failures[health_step_index("greeting")], 0);
	ck_assert_uint_eq(snap_be(&sn, "ph")->active, 1);
	ck_assert_uint_eq(snap_be(&sn, "ph")->takes, 1);
	pool_snap_free(&sn);
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_eq(pick_release(f.p, ph, "a DOWN"), b);

	/* Failures while DOWN: counted, no second event. */
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "failure while DOWN");
	traffic_is(f.p, "ph", "a", 4, 4, "failure while DOWN");

	/* rise passing checks: UP, the count starts over. */
	fake_now_ms = T0_MS + 14000;
	check_pass(f.p, a, &w);
	ck_assert_uint_eq(w.nevents, 0);
	state_is(f.p, a, "DOWN 1/2", "pass 1 of 2");
	check_pass(f.p, a, &w);
	expect_events(&w, "pass 2 of 2", 1, PEV_UP);
	expect_srv_event(&w.events[0], PEV_UP, a, 2, 0, "a up");
	ck_assert_uint_eq(w.events[0].downtime_s, 10);
	state_is(f.p, a, "UP", "up again");
	traffic_is(f.p, "ph", "a", 4, 0, "up again");
	for (int i = 0; i < 2; i++)
		a_picked |= pick_release(f.p, ph, "a UP again") == a;
	ck_assert_msg(a_picked, "a UP again takes sessions");

	/* A session that commits resets the count: 2, ok, then 3 more. */
	greeting_421(f.p, a, &w);
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "2 failures");
	traffic_is(f.p, "ph", "a", 6, 2, "2 failures");
	pool_session_ok(f.p, a);
	traffic_is(f.p, "ph", "a", 6, 0, "session committed");
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "failure 1 after commit");
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "failure 2 after commit");
	state_is(f.p, a, "UP", "2 failures after commit");
	greeting_421(f.p, a, &w);
	expect_events(&w, "failure 3 after commit", 1, PEV_DOWN);
	expect_traffic_down(&w.events[0], a, 1, "greeting", 421,
	                    "421 4.7.0 busy", "", 3, "failure 3 after commit");
	/* pool_session_ok without failures: nothing changes. */
	pool_session_ok(f.p, b);
	traffic_is(f.p, "ph", "b", 0, 0, "b committed");
	state_is(f.p, b, "UP", "b");
	fx_close(&f);
}
END_TEST

/* Connect failures count too, in the same run as greeting failures, and
 * also as connect_failures (greeting failures do not); the event carries
 * the reason. */
START_TEST(passive_connect_failures)
{
	struct fx f;
	struct server *a, *na;
	struct pool_work w;
	struct pool_snap sn;

	fx_open(&f, CFG_PASSIVE);
	a = find_srv(f.p, "ph/a");
	na = find_srv(f.p, "nochk/a");

	connect_refused(f.p, na, true, &w);
	expect_work_empty(&w, "nochk connect 1");
	connect_refused(f.p, na, false, &w);
	expect_work_empty(&w, "nochk connect 2");
	greeting_421(f.p, na, &w);
	expect_work_empty(&w, "nochk greeting");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "nochk", "a")->connect_failures, 2);
	ck_assert_uint_eq(snap_srv(&sn, "nochk", "a")->traffic_errors, 3);
	ck_assert_uint_eq(snap_srv(&sn, "nochk", "a")->traffic_fails, 3);
	ck_assert_uint_eq(snap_be(&sn, "nochk")->retries, 2);
	pool_snap_free(&sn);

	/* ph/a: connect, greeting, connect: DOWN at the third. */
	connect_refused(f.p, a, true, &w);
	expect_work_empty(&w, "ph connect 1");
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "ph greeting 2");
	traffic_fail(f.p, a, "connect", 0, NULL, "timeout", true, &w);
	expect_events(&w, "ph connect 3", 1, PEV_DOWN);
	expect_traffic_down(&w.events[0], a, 1, "connect", 0, "", "timeout", 3,
	                    "connect 3");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "ph", "a")->connect_failures, 2);
	ck_assert_uint_eq(snap_srv(&sn, "ph", "a")->traffic_errors, 3);
	ck_assert_int_eq(snap_srv(&sn, "ph", "a")->state, SRV_STATE_DOWN);
	pool_snap_free(&sn);
	fx_close(&f);
}
END_TEST

/* on_marked_down = shutdown-sessions: the work closes the server's
 * sessions; queued clients are handled as for a DOWN a check made: turned
 * away when no server is left, left waiting when another one is only
 * full. */
START_TEST(passive_down_shutdown_and_queue)
{
	struct fx f;
	struct backend *sd, *q2;
	struct server *a, *qa, *qb, *s = NULL;
	struct pool_waiter c1, c2, c3, w1, w2;
	struct pool_work w;

	fx_open(&f, CFG_PASSIVE);
	sd = find_be(f.set, "sd");
	q2 = find_be(f.set, "q2");
	a = find_srv(f.p, "sd/a");
	qa = find_srv(f.p, "q2/a");
	qb = find_srv(f.p, "q2/b");
	waiter(&c1);
	waiter(&w1);
	ck_assert_ptr_eq(take_ok(f.p, sd, &c1, "c1"), a);
	expect_pick(f.p, sd, &w1, true, POOL_QUEUED, "w1");

	greeting_421(f.p, a, &w);
	greeting_421(f.p, a, &w);
	expect_work_empty(&w, "sd/a 2 failures");
	ck_assert_int_eq(w1.state, WAITER_QUEUED);
	greeting_421(f.p, a, &w);
	expect_events(&w, "sd/a 3 failures", 2, PEV_DOWN, PEV_BACKEND_DOWN);
	expect_traffic_down(&w.events[0], a, 0, "greeting", 421,
	                    "421 4.7.0 busy", "", 3, "sd/a down");
	expect_be_event(&w.events[1], PEV_BACKEND_DOWN, sd, 0, 0, "sd down");
	ck_assert_msg(w.close == a,
	              "on_marked_down = shutdown-sessions: close a's sessions");
	expect_grants(&w, "sd/a down", 1, &w1, NULL);
	ck_assert_int_eq(pool_claim(f.p, &w1, &s), CLAIM_NO_SERVER);
	ck_assert_ptr_null(s);
	release(f.p, a, &w); /* the caller closes c1's session */
	expect_work_empty(&w, "c1 closed");
	check_pass(f.p, a, &w);
	check_pass(f.p, a, &w);
	expect_events(&w, "sd/a up", 2, PEV_UP, PEV_BACKEND_UP);
	ck_assert_ptr_null(w.close);
	traffic_is(f.p, "sd", "a", 3, 0, "sd/a up");

	/* q2: b is only full, the waiter keeps waiting for it. */
	waiter(&c2);
	waiter(&c3);
	waiter(&w2);
	ck_assert_ptr_eq(take_ok(f.p, q2, &c2, "c2"), qa);
	ck_assert_ptr_eq(take_ok(f.p, q2, &c3, "c3"), qb);
	expect_pick(f.p, q2, &w2, true, POOL_QUEUED, "w2");
	greeting_421(f.p, qa, &w);
	greeting_421(f.p, qa, &w);
	greeting_421(f.p, qa, &w);
	expect_events(&w, "q2/a down", 1, PEV_DOWN);
	ck_assert_ptr_null(w.close);
	ck_assert_ptr_null(w.grants);
	ck_assert_int_eq(w2.state, WAITER_QUEUED);
	release(f.p, qa, &w); /* c2 ends: a is DOWN, nothing to give */
	expect_work_empty(&w, "c2 ends");
	release(f.p, qb, &w); /* c3 ends: its slot goes to w2 */
	expect_grants(&w, "c3 ends", 1, &w2, qb);
	ck_assert_int_eq(pool_claim(f.p, &w2, &s), CLAIM_SERVER);
	ck_assert_ptr_eq(s, qb);
	release(f.p, qb, &w);
	fx_close(&f);
}
END_TEST

/* Servers without checks (no health_check; check = false): failures are
 * only counted. */
START_TEST(passive_unchecked_only_counts)
{
	static const char *const specs[][2] = {{"nochk", "a"}, {"off", "a"}};
	struct fx f;

	fx_open(&f, CFG_PASSIVE);
	for (size_t i = 0; i < ARRAY_SIZE(specs); i++) {
		char spec[32], ctx[64];
		struct backend *be = find_be(f.set, specs[i][0]);
		struct server *a;
		struct pool_work w;
		struct pool_snap sn;
		const struct pool_snap_server *ss;
		bool a_picked = false;

		snprintf(spec, sizeof(spec), "%s/%s", specs[i][0], specs[i][1]);
		a = find_srv(f.p, spec);
		ck_assert_msg(!server_checked(a), "%s is not checked", spec);
		for (unsigned k = 1; k <= 10; k++) {
			snprintf(ctx, sizeof(ctx), "%s failure %u", spec, k);
			if (k % 2)
				greeting_421(f.p, a, &w);
			else
				connect_refused(f.p, a, true, &w);
			expect_work_empty(&w, ctx);
		}
		snap(f.p, &sn);
		ss = snap_srv(&sn, specs[i][0], specs[i][1]);
		ck_assert_msg(ss->takes && ss->up, "%s: still takes sessions",
		              spec);
		ck_assert_int_eq(ss->state, SRV_STATE_UP);
		ck_assert_uint_eq(ss->traffic_errors, 10);
		ck_assert_uint_eq(ss->traffic_fails, 10);
		ck_assert_uint_eq(ss->connect_failures, 5);
		pool_snap_free(&sn);
		state_is(f.p, a, "UP", spec);
		for (int k = 0; k < 2; k++)
			a_picked |= pick_release(f.p, be, spec) == a;
		ck_assert_msg(a_picked, "%s still takes sessions", spec);
		pool_session_ok(f.p, a);
		traffic_is(f.p, specs[i][0], specs[i][1], 10, 0, spec);
	}
	fx_close(&f);
}
END_TEST

/* error_limit = 0: never DOWN by traffic; error_limit = 1: at the first
 * failure. */
START_TEST(passive_error_limit_zero_and_one)
{
	struct fx f;
	struct server *z, *o;
	struct pool_work w;

	fx_open(&f, CFG_PASSIVE);
	z = find_srv(f.p, "zero/a");
	o = find_srv(f.p, "one/a");
	fully_up(f.p, z);
	for (int k = 0; k < 20; k++) {
		greeting_421(f.p, z, &w);
		expect_work_empty(&w, "error_limit 0");
	}
	state_is(f.p, z, "UP", "error_limit 0");
	traffic_is(f.p, "zero", "a", 20, 20, "error_limit 0");

	connect_refused(f.p, o, true, &w);
	expect_events(&w, "error_limit 1", 1, PEV_DOWN);
	expect_traffic_down(&w.events[0], o, 1, "connect", 0, "",
	                    "connection refused", 1, "error_limit 1");
	state_is(f.p, o, "DOWN", "error_limit 1");
	fx_close(&f);
}
END_TEST

/* res NULL: the balancer's own failure (no descriptor, ...): only the
 * backend's retries move; it neither counts against the server nor
 * breaks its run of failures. */
START_TEST(passive_own_failure_not_counted)
{
	struct fx f;
	struct server *a;
	struct pool_work w;
	struct pool_snap sn;

	fx_open(&f, CFG_PASSIVE);
	a = find_srv(f.p, "ph/a");
	pool_work_init(&w);
	pool_session_failed(f.p, a, NULL, true, &w);
	expect_work_empty(&w, "own failure, retry");
	pool_work_init(&w);
	pool_session_failed(f.p, a, NULL, false, &w);
	expect_work_empty(&w, "own failure, no retry");
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "ph")->retries, 1);
	ck_assert_uint_eq(snap_srv(&sn, "ph", "a")->traffic_errors, 0);
	ck_assert_uint_eq(snap_srv(&sn, "ph", "a")->traffic_fails, 0);
	ck_assert_uint_eq(snap_srv(&sn, "ph", "a")->connect_failures, 0);
	pool_snap_free(&sn);

	/* failure, failure, own failures, failure: DOWN at the third. */
	greeting_421(f.p, a, &w);
	greeting_421(f.p, a, &w);
	for (int k = 0; k < 5; k++) {
		pool_work_init(&w);
		pool_session_failed(f.p, a, NULL, true, &w);
		expect_work_empty(&w, "own failure between");
	}
	traffic_is(f.p, "ph", "a", 2, 2, "own failures between");
	greeting_421(f.p, a, &w);
	expect_events(&w, "third failure", 1, PEV_DOWN);
	snap(f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "ph")->retries, 9);
	pool_snap_free(&sn);
	fx_close(&f);
}
END_TEST

/* An operator's maintenance is not overridden by traffic, and a server a
 * check made DOWN is not made DOWN again. */
START_TEST(passive_maint_and_down_untouched)
{
	struct fx f;
	struct server *a, *b;
	struct pool_work w;

	fx_open(&f, CFG_PASSIVE);
	a = find_srv(f.p, "ph/a");
	b = find_srv(f.p, "ph/b");
	set_admin(f.p, a, SRV_MAINT, &w);
	for (int k = 0; k < 5; k++) {
		greeting_421(f.p, a, &w);
		expect_work_empty(&w, "failure in maintenance");
	}
	state_is(f.p, a, "MAINT", "maint");
	traffic_is(f.p, "ph", "a", 5, 5, "maint");

	check_fail(f.p, b, &w); /* unconfirmed: DOWN at once */
	expect_events(&w, "b check down", 2, PEV_DOWN, PEV_BACKEND_DOWN);
	ck_assert_msg(w.events[0].by == NULL,
	              "a check's DOWN is not by=traffic (by \"%s\")",
	              w.events[0].by);
	for (int k = 0; k < 5; k++) {
		greeting_421(f.p, b, &w);
		expect_work_empty(&w, "failure while DOWN");
	}
	state_is(f.p, b, "DOWN", "b");
	traffic_is(f.p, "ph", "b", 5, 5, "b DOWN");
	fx_close(&f);
}
END_TEST

/* Through the objects a reload replaced: counted on the successor, which
 * goes DOWN; a commit through the old object resets the successor's
 * count. */
START_TEST(passive_after_reload)
{
	struct fx2 x;
	struct pool_work w;
	struct backend *nph;
	struct server *oa, *na, *nb;
	struct pool_snap sn;

	fx_open(&x.f, CFG_PASSIVE);
	oa = find_srv(x.f.p, "ph/a");
	greeting_421(x.f.p, oa, &w);
	reload(&x, CFG_PASSIVE, &w);
	expect_work_empty(&w, "reload");
	nph = find_be(x.set2, "ph");
	na = backend_find_server(nph, "a");
	nb = backend_find_server(nph, "b");
	ck_assert_ptr_eq(server_successor(oa), na);
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_srv(&sn, "ph", "a")->traffic_errors, 1);
	pool_snap_free(&sn);

	/* A session still on the old a commits, two on the new a fail:
	 * the commit came first, the count is 2. */
	pool_session_ok(x.f.p, oa);
	greeting_421(x.f.p, na, &w);
	greeting_421(x.f.p, oa, &w);
	expect_work_empty(&w, "2 failures after reload");
	traffic_is(x.f.p, "ph", "a", 3, 2, "2 failures after reload");
	snap(x.f.p, &sn);
	ck_assert_uint_eq(snap_be(&sn, "ph")->retries, 3);
	pool_snap_free(&sn);

	/* The third, through the old object: the new a goes DOWN. */
	greeting_421(x.f.p, oa, &w);
	expect_events(&w, "3rd failure, old a", 1, PEV_DOWN);
	expect_traffic_down(&w.events[0], na, 1, "greeting", 421,
	                    "421 4.7.0 busy", "", 3, "new a down");
	state_is(x.f.p, na, "DOWN", "new a");
	ck_assert_ptr_eq(pick_release(x.f.p, nph, "new a DOWN"), nb);
	ck_assert_ptr_eq(pick_release(x.f.p, nph, "new a DOWN"), nb);
	check_pass(x.f.p, na, &w);
	check_pass(x.f.p, na, &w);
	expect_events(&w, "new a up", 1, PEV_UP);
	traffic_is(x.f.p, "ph", "a", 4, 0, "new a up");

	/* Two failures on the new a, then a session that was still on the
	 * old a commits: the run is broken. */
	greeting_421(x.f.p, na, &w);
	greeting_421(x.f.p, na, &w);
	pool_session_ok(x.f.p, oa);
	traffic_is(x.f.p, "ph", "a", 6, 0, "commit through the old a");
	greeting_421(x.f.p, na, &w);
	expect_work_empty(&w, "1 failure after the commit");
	state_is(x.f.p, na, "UP", "1 failure after the commit");
	fx2_close(&x);
}
END_TEST

/* --- 10. avoided servers (pool_waiter_avoid) ----------------------------- */

START_TEST(avoid_skips_failed_servers)
{
	struct fx f;
	struct backend *abc, *full;
	struct server *a, *b, *c, *fa, *fb, *fc, *s = NULL;
	struct pool_waiter wt, c1, w1;
	struct pool_work w;
	bool seen[3] = {false, false, false};

	fx_open(&f, CFG_AVOID);
	abc = find_be(f.set, "abc");
	full = find_be(f.set, "full");
	a = find_srv(f.p, "abc/a");
	b = find_srv(f.p, "abc/b");
	c = find_srv(f.p, "abc/c");
	fa = find_srv(f.p, "full/a");
	fb = find_srv(f.p, "full/b");
	fc = find_srv(f.p, "full/c");

	waiter(&wt);
	ck_assert_uint_eq(wt.navoid, 0);
	pool_waiter_avoid(&wt, a);
	pool_waiter_avoid(&wt, b);
	pool_waiter_avoid(&wt, a); /* already avoided */
	pool_waiter_avoid(&wt, NULL);
	ck_assert_uint_eq(wt.navoid, 2);
	for (int k = 0; k < 6; k++) {
		s = take_ok(f.p, abc, &wt, "a and b avoided");
		ck_assert_msg(s == c, "a and b avoided: pick %d is %s, want c",
		              k, name_of(s));
		release(f.p, s, &w);
	}
	/* All avoided: one of them all the same. */
	pool_waiter_avoid(&wt, c);
	ck_assert_uint_eq(wt.navoid, 3);
	for (int k = 0; k < 6; k++) {
		s = take_ok(f.p, abc, &wt, "all avoided");
		seen[0] |= s == a;
		seen[1] |= s == b;
		seen[2] |= s == c;
		release(f.p, s, &w);
	}
	ck_assert_msg(seen[0] || seen[1] || seen[2], "all avoided: no pick");

	/* The one left is only full: wait for it, rather than take an
	 * avoided server with room. */
	waiter(&c1);
	pool_waiter_avoid(&c1, fa);
	pool_waiter_avoid(&c1, fb);
	ck_assert_ptr_eq(take_ok(f.p, full, &c1, "c1"), fc);
	waiter(&w1);
	pool_waiter_avoid(&w1, fa);
	pool_waiter_avoid(&w1, fb);
	expect_pick(f.p, full, &w1, false, POOL_FULL, "w1, no queue");
	expect_pick(f.p, full, &w1, true, POOL_QUEUED, "w1");
	release(f.p, fc, &w);
	expect_grants(&w, "c1 ends", 1, &w1, fc);
	ck_assert_int_eq(pool_claim(f.p, &w1, &s), CLAIM_SERVER);
	ck_assert_ptr_eq(s, fc);
	release(f.p, fc, &w);
	fx_close(&f);
}
END_TEST

/* Only the last POOL_AVOID avoided servers are kept (the oldest go). */
START_TEST(avoid_keeps_the_last_ones)
{
	struct fx f;
	struct backend *ten;
	struct server *sv[10];
	struct pool_waiter wt;
	struct pool_work w;
	bool seen0 = false, seen1 = false;

	ck_assert_int_eq(POOL_AVOID, 8);
	fx_open(&f, CFG_AVOID);
	ten = find_be(f.set, "ten");
	ck_assert_uint_eq(backend_nservers(ten), 10);
	waiter(&wt);
	for (size_t i = 0; i < 10; i++) {
		sv[i] = backend_server(ten, i);
		pool_waiter_avoid(&wt, sv[i]);
		ck_assert_uint_eq(wt.navoid,
		                  i + 1 < POOL_AVOID ? i + 1 : POOL_AVOID);
	}
	for (size_t i = 0; i < POOL_AVOID; i++)
		ck_assert_msg(wt.avoid[i] == sv[i + 2],
		              "avoid[%zu] is %s, want s%zu", i,
		              name_of(wt.avoid[i]), i + 2);
	/* s0 and s1 were forgotten: they are the candidates. */
	for (int k = 0; k < 8; k++) {
		struct server *s = take_ok(f.p, ten, &wt, "ten");

		ck_assert_msg(s == sv[0] || s == sv[1],
		              "pick %d is %s, want s0 or s1", k, name_of(s));
		seen0 |= s == sv[0];
		seen1 |= s == sv[1];
		release(f.p, s, &w);
	}
	ck_assert_msg(seen0 && seen1, "roundrobin over s0 and s1");
	fx_close(&f);
}
END_TEST

/* A reload: the avoided servers of a waiting client become their
 * successors (a removed one is forgotten). */
START_TEST(avoid_follows_reload)
{
	struct fx2 x;
	struct pool_work w;
	struct backend *ofull, *nfull;
	struct server *oa, *ob, *oc, *nb, *nc, *s = NULL;
	struct pool_waiter c1, w1;

	fx_open(&x.f, CFG_AVOID);
	ofull = find_be(x.f.set, "full");
	oa = find_srv(x.f.p, "full/a");
	ob = find_srv(x.f.p, "full/b");
	oc = find_srv(x.f.p, "full/c");
	waiter(&c1);
	waiter(&w1);
	pool_waiter_avoid(&c1, oa);
	pool_waiter_avoid(&c1, ob);
	ck_assert_ptr_eq(take_ok(x.f.p, ofull, &c1, "c1"), oc);
	pool_waiter_avoid(&w1, oa);
	pool_waiter_avoid(&w1, ob);
	expect_pick(x.f.p, ofull, &w1, true, POOL_QUEUED, "w1");

	/* The same names again. */
	reload(&x, CFG_AVOID, &w);
	expect_work_empty(&w, "reload: c is still full");
	nfull = find_be(x.set2, "full");
	nb = backend_find_server(nfull, "b");
	nc = backend_find_server(nfull, "c");
	ck_assert_ptr_eq(w1.be, nfull);
	ck_assert_uint_eq(w1.navoid, 2);
	ck_assert_ptr_eq(w1.avoid[0], backend_find_server(nfull, "a"));
	ck_assert_ptr_eq(w1.avoid[1], nb);
	release(x.f.p, oc, &w); /* c1 ends, through the old c */
	expect_grants(&w, "c1 ends", 1, &w1, nc);
	ck_assert_int_eq(pool_claim(x.f.p, &w1, &s), CLAIM_SERVER);
	ck_assert_ptr_eq(s, nc);
	release(x.f.p, nc, &w);
	fx2_close(&x);

	/* a removed, d added: a is forgotten, and w1 gets d at once. */
	fx_open(&x.f, CFG_AVOID);
	ofull = find_be(x.f.set, "full");
	oa = find_srv(x.f.p, "full/a");
	ob = find_srv(x.f.p, "full/b");
	oc = find_srv(x.f.p, "full/c");
	waiter(&c1);
	waiter(&w1);
	pool_waiter_avoid(&c1, oa);
	pool_waiter_avoid(&c1, ob);
	ck_assert_ptr_eq(take_ok(x.f.p, ofull, &c1, "c1"), oc);
	pool_waiter_avoid(&w1, oa);
	pool_waiter_avoid(&w1, ob);
	expect_pick(x.f.p, ofull, &w1, true, POOL_QUEUED, "w1");
	reload(&x, CFG_AVOID2, &w);
	nfull = find_be(x.set2, "full");
	expect_grants(&w, "reload: d has room", 1, &w1,
	              backend_find_server(nfull, "d"));
	ck_assert_uint_eq(w1.navoid, 1);
	ck_assert_ptr_eq(w1.avoid[0], backend_find_server(nfull, "b"));
	ck_assert_int_eq(pool_claim(x.f.p, &w1, &s), CLAIM_SERVER);
	release(x.f.p, s, &w);
	release(x.f.p, oc, &w);
	fx2_close(&x);
}
END_TEST

/* A client that is not waiting when the reload comes (its connect failed
 * and it is about to choose again: pool_assign gives POOL_MOVED, it moves
 * to the backend's successor) still avoids the servers that failed it:
 * their successors. */
START_TEST(avoid_idle_waiter_after_reload)
{
	struct fx2 x;
	struct pool_work w;
	struct backend *oabc, *nabc;
	struct server *oa, *ob, *nc, *s = NULL;
	struct pool_waiter wt;

	fx_open(&x.f, CFG_AVOID);
	oabc = find_be(x.f.set, "abc");
	oa = find_srv(x.f.p, "abc/a");
	ob = find_srv(x.f.p, "abc/b");
	waiter(&wt);
	pool_waiter_avoid(&wt, oa);
	pool_waiter_avoid(&wt, ob);
	reload(&x, CFG_AVOID, &w);
	nabc = find_be(x.set2, "abc");
	nc = backend_find_server(nabc, "c");
	expect_pick(x.f.p, oabc, &wt, true, POOL_MOVED, "old backend");
	ck_assert_ptr_eq(backend_successor(oabc), nabc);
	for (int k = 0; k < 6; k++) {
		s = take_ok(x.f.p, nabc, &wt, "after reload");
		ck_assert_msg(s == nc,
		              "a and b avoided before the reload: pick %d "
		              "after it is %s, want c",
		              k, name_of(s));
		release(x.f.p, s, &w);
	}
	fx2_close(&x);
}
END_TEST

/* --- regressions ------------------------------------------------------- */

/* Regression (pool_set_admin, pool_set_weight): the queue used to run
 * only when a server became READY (or got a weight above 0).  Draining
 * (or disabling, or weight 0 for) the last active server makes the backup
 * servers take sessions (load-balancer.conf(5), BALANCING: "backup
 * servers take sessions only when no other server is usable"), and the clients
 * already waiting must get them first: "new clients wait in the backend's queue
 * (first come, first served)". */
START_TEST(drain_lets_backup_serve_the_queue)
{
	struct fx f;
	struct backend *fb;
	struct server *a, *k, *s = NULL, *s2 = NULL;
	struct pool_waiter c1, c2, w1;
	struct pool_work w;
	enum pool_pick r;
	bool granted;

	fx_open(&f, CFG_BACKUP);
	fb = find_be(f.set, "fb");
	a = find_srv(f.p, "fb/a");
	k = find_srv(f.p, "fb/k");
	waiter(&c1);
	waiter(&w1);
	ck_assert_ptr_eq(take_ok(f.p, fb, &c1, "c1"), a);
	/* a is full, k is a backup: w1 waits for a. */
	expect_pick(f.p, fb, &w1, true, POOL_QUEUED, "w1");

	set_admin(f.p, a, SRV_DRAIN, &w);
	expect_events(&w, "drain a", 1, PEV_DRAIN);
	/* Now k takes sessions: the oldest waiter must get it, and a client
	 * arriving after that finds k full. */
	granted = w.grants == &w1 && w1.next == NULL && w1.granted == k;
	waiter(&c2);
	r = pool_assign(f.p, fb, &c2, false, &s2);
	if (r == POOL_OK)
		pool_untake(f.p, s2);
	ck_assert_msg(granted && r == POOL_FULL,
	              "after draining the last active server, w1 "
	              "(queued before) is %s, and a new client c2 gets %s "
	              "(want: w1 granted k, c2 POOL_FULL)",
	              granted ? "granted k" : "still queued, not granted k",
	              r == POOL_OK ? name_of(s2) : pick_name(r));
	ck_assert_msg(pool_claim(f.p, &w1, &s) && s == k, "w1 claims k");
	release(f.p, k, &w);
	release(f.p, a, &w);
	fx_close(&f);
}
END_TEST

/* An operator's drain (or disable, or weight 0) of the only server does
 * not turn the waiting clients away, as DOWN does: they wait for their
 * timeout_queue (the drain may be undone), and get the server when it is
 * back. */
START_TEST(drain_keeps_waiters_waiting)
{
	struct fx f;
	struct backend *be;
	struct server *a, *s = NULL;
	struct pool_waiter c1, w1;
	struct pool_work w;

	fx_open(&f, CFG_TWO);
	be = find_be(f.set, "be");
	a = find_srv(f.p, "be/a");
	set_admin(f.p, find_srv(f.p, "be/b"), SRV_MAINT, &w);
	waiter(&c1);
	waiter(&w1);
	ck_assert_ptr_eq(take_ok(f.p, be, &c1, "c1"), a);
	expect_pick(f.p, be, &w1, true, POOL_QUEUED, "w1");
	set_admin(f.p, a, SRV_DRAIN, &w);
	ck_assert_msg(w.grants == NULL && w1.state == WAITER_QUEUED,
	              "drain: w1 still waits (granted %p, state %d)",
	              (void *)w.grants, (int)w1.state);
	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, a, 0, &w), 1);
	ck_assert_msg(w.grants == NULL && w1.state == WAITER_QUEUED,
	              "weight 0: w1 still waits");
	pool_work_init(&w);
	pool_set_weight(f.p, a, 1, &w);
	set_admin(f.p, a, SRV_READY, &w);
	ck_assert_msg(w.grants == NULL, "a is full: nothing to give yet");
	release(f.p, a, &w);
	expect_grants(&w, "c1 leaves", 1, &w1, a);
	ck_assert_msg(pool_claim(f.p, &w1, &s) && s == a, "w1 claims a");
	release(f.p, a, &w);
	fx_close(&f);
}
END_TEST

/* --- slow start, agent, operator state -----------------------------------
 *
 * load-balancer.conf(5), SLOW START, AGENT CHECK and OPERATOR STATE. */

/* clang-format off */
#define HC11 "health_check = { type = \"tcp\"; rise = 1; fall = 1; };"
#define AGENT "agent = { port = 5555; };"
#define W100(n, port) SRV(n, port, "weight = 100;")

/* slowstart 10s, checks rise 1 fall 1, two servers of weight 100 (each
 * balance), and two of weight 1. */
static const char CFG_SLOW[] =
    "backends = (\n"
    " { name = \"rr\"; slowstart = \"10s\"; " HC11 " servers = (\n"
    "  " W100("a", "10001") ", " W100("b", "10002") " ); },\n"
    " { name = \"lc\"; balance = \"leastconn\"; slowstart = \"10s\"; "
    HC11 " servers = (\n"
    "  " W100("a", "10011") ", " W100("b", "10012") " ); },\n"
    " { name = \"src\"; balance = \"source\"; slowstart = \"10s\"; "
    HC11 " servers = (\n"
    "  " W100("a", "10021") ", " W100("b", "10022") " ); },\n"
    " { name = \"w1\"; slowstart = \"10s\"; " HC11 " servers = (\n"
    "  " SRV("a", "10031", "") ", " SRV("b", "10032", "") " ); }\n"
    ");\n";

/* Agent checks: with health checks (rise 2, fall 3), without, one server
 * alone, and with a slow start. */
static const char CFG_AGENT[] =
    "backends = (\n"
    " { name = \"ag\"; " AGENT " " HCHECK " servers = (\n"
    "  " W100("a", "10001") ", " W100("b", "10002") " ); },\n"
    " { name = \"nochk\"; " AGENT " servers = (\n"
    "  " W100("a", "10011") ", " W100("b", "10012") " ); },\n"
    " { name = \"one\"; " AGENT " servers = ( " W100("s", "10021") " ); },\n"
    " { name = \"ss\"; slowstart = \"10s\"; " AGENT " " HC11 " servers = (\n"
    "  " W100("a", "10031") ", " W100("b", "10032") " ); }\n"
    ");\n";

/* Reload with agents: b moves to another address. */
static const char CFG_AGENT_R1[] =
    "backends = ( { name = \"rl\"; " AGENT " " HCHECK " servers = (\n"
    "  " W100("a", "10001") ", " W100("b", "10002") ", "
    W100("c", "10003") " ); } );\n";
static const char CFG_AGENT_R2[] =
    "backends = ( { name = \"rl\"; " AGENT " " HCHECK " servers = (\n"
    "  " W100("a", "10001") ", " W100("b", "10012") ", "
    W100("c", "10003") " ); } );\n";

/* Operator state: four checked servers with agents; the second file
 * changes a's and b's weight and disables c. */
static const char CFG_OP1[] =
    "backends = ( { name = \"op\"; " AGENT " " HCHECK " servers = (\n"
    "  " W100("a", "10001") ", " W100("b", "10002") ",\n"
    "  " W100("c", "10003") ", " W100("d", "10004") " ); } );\n";
static const char CFG_OP2[] =
    "backends = ( { name = \"op\"; " AGENT " " HCHECK " servers = (\n"
    "  " SRV("a", "10001", "weight = 200;") ", "
    SRV("b", "10002", "weight = 200;") ",\n"
    "  " SRV("c", "10003", "weight = 100; disabled = true;") ", "
    W100("d", "10004") " ); } );\n";
/* clang-format on */

/* The expected share of a server ramping at 1/16 of the weight of its
 * peer of the same weight, elapsed/slowstart into the ramp: the factor is
 * 1/16 + 15/16 x elapsed/slowstart. */
static double
ramp_share(double elapsed_frac)
{
	double f = 1.0 / 16 + 15.0 / 16 * elapsed_frac;

	if (f > 1)
		f = 1;
	return f / (f + 1);
}

/* One server's row of a snapshot (its conf stays valid with the
 * configuration). */
static struct pool_snap_server
row(struct pool *p, const char *be, const char *name)
{
	struct pool_snap sn;
	struct pool_snap_server r;

	snap(p, &sn);
	r = *snap_srv(&sn, be, name);
	pool_snap_free(&sn);
	return r;
}

/* The weight shown for BE/NAME at time t (ms). */
static int
weight_at(struct pool *p, const char *be, const char *name, uint64_t t)
{
	fake_now_ms = t;
	return row(p, be, name).weight;
}

static void
expect_weight(struct pool *p, const char *be, const char *name, uint64_t t,
              int want, bool ramping, const char *ctx)
{
	struct pool_snap_server r;

	fake_now_ms = t;
	r = row(p, be, name);
	ck_assert_msg(r.weight == want && r.ramping == ramping,
	              "%s: %s/%s shows weight %d%s, want %d%s", ctx, be, name,
	              r.weight, r.ramping ? " (ramping)" : "", want,
	              ramping ? " (ramping)" : "");
}

/* s (checks rise 1, fall 1; another server of its backend stays UP)
 * goes DOWN, and comes back UP a second later: returns when. */
static uint64_t
bounce(struct pool *p, struct server *s)
{
	struct pool_work w;

	check_fail(p, s, &w);
	expect_events(&w, "bounce: check failed", 1, PEV_DOWN);
	fake_now_ms += 1000;
	check_pass(p, s, &w);
	expect_events(&w, "bounce: check passed", 1, PEV_UP);
	ck_assert_msg(w.events[0].by == NULL, "bounce: up by %s",
	              w.events[0].by);
	return fake_now_ms;
}

/* n choices at time t, each slot given back at once: how many went to s. */
static unsigned
rr_picks(struct pool *p, struct backend *be, struct server *s, unsigned n,
         uint64_t t)
{
	unsigned k = 0;

	fake_now_ms = t;
	for (unsigned i = 0; i < n; i++)
		k += pick_release(p, be, "rr_picks") == s;
	return k;
}

/* n sessions held together at time t (leastconn): how many went to s.
 * They all end afterwards. */
#define HELD_MAX 512
static unsigned
held_picks(struct pool *p, struct backend *be, struct server *s, unsigned n,
           uint64_t t)
{
	struct server *got[HELD_MAX];
	struct pool_waiter wt;
	struct pool_work w;
	unsigned k = 0;

	ck_assert_uint_le(n, HELD_MAX);
	fake_now_ms = t;
	for (unsigned i = 0; i < n; i++) {
		waiter(&wt);
		got[i] = take_ok(p, be, &wt, "held_picks");
		k += got[i] == s;
	}
	for (unsigned i = 0; i < n; i++)
		release(p, got[i], &w);
	return k;
}

/* n clients 10.0.x.y at time t (source hashing), each slot given back at
 * once: how many went to s. */
static unsigned
client_picks(struct pool *p, struct backend *be, struct server *s, unsigned n,
             uint64_t t)
{
	struct sockaddr_in sin;
	struct pool_waiter wt;
	struct pool_work w;
	unsigned k = 0;

	fake_now_ms = t;
	for (unsigned i = 0; i < n; i++) {
		struct server *got;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(0x0A000000u | i);
		pool_waiter_init(&wt, (const struct sockaddr *)&sin);
		got = take_ok(p, be, &wt, "client_picks");
		k += got == s;
		release(p, got, &w);
	}
	return k;
}

static void
expect_share(unsigned got, unsigned n, double share, double tol,
             const char *ctx)
{
	double want = n * share;

	ck_assert_msg(got >= want - tol && got <= want + tol,
	              "%s: %u of %u picks, want %.1f (+-%.0f)", ctx, got, n,
	              want, tol);
}

/* No work at all, the agent's included. */
static void
expect_no_work(const struct pool_work *w, const char *ctx)
{
	expect_work_empty(w, ctx);
	ck_assert_msg(!w->agent_stop && !w->agent_now,
	              "%s: unexpected agent work (stop %d now %d)", ctx,
	              w->agent_stop, w->agent_now);
}

/* The first event of this kind in the work (there must be one). */
static const struct pool_event *
event_of(const struct pool_work *w, enum pool_event_kind k, const char *ctx)
{
	for (size_t i = 0; i < w->nevents; i++)
		if (w->events[i].kind == k)
			return &w->events[i];
	ck_abort_msg("%s: no %s event in [%s]", ctx, kind_name(k),
	             kinds_text(w));
	return NULL;
}

/* The same, which must have this by (NULL: a check's or an
 * operator's). */
static const struct pool_event *
event_by(const struct pool_work *w, enum pool_event_kind k, const char *by,
         const char *ctx)
{
	const struct pool_event *ev = event_of(w, k, ctx);

	ck_assert_msg(by == NULL ? ev->by == NULL
	                         : ev->by != NULL && strcmp(ev->by, by) == 0,
	              "%s: %s event by=%s, want by=%s", ctx, kind_name(k),
	              ev->by != NULL ? ev->by : "(none)",
	              by != NULL ? by : "(none)");
	return ev;
}

/* An agent's reply as agent_parse makes it; -1 / NONE: not said. */
static struct agent_reply
agent_words(int pct, int maxconn, enum agent_admin admin,
            enum agent_health health, const char *reason)
{
	struct agent_reply r;

	memset(&r, 0, sizeof(r));
	r.pct = pct;
	r.maxconn = maxconn;
	r.admin = admin;
	r.health = health;
	snprintf(r.reason, sizeof(r.reason), "%s",
	         reason != NULL ? reason : "");
	return r;
}

/* The agent of s answered *r (the caller keeps *r while it reads the
 * events: they point into it); r NULL: it failed. */
static void
agent_says(struct pool *p, struct server *s, const struct agent_reply *r,
           struct pool_work *w)
{
	pool_work_init(w);
	pool_agent_result(p, s, r, r == NULL ? "connection refused" : NULL, 1,
	                  w);
}

/* The agent says only this word. */
static void
agent_pct(struct pool *p, struct server *s, int pct, struct agent_reply *r,
          struct pool_work *w)
{
	*r = agent_words(pct, -1, AGENT_ADMIN_NONE, AGENT_HEALTH_NONE, NULL);
	agent_says(p, s, r, w);
}

static void
agent_admin(struct pool *p, struct server *s, enum agent_admin a,
            struct agent_reply *r, struct pool_work *w)
{
	*r = agent_words(-1, -1, a, AGENT_HEALTH_NONE, NULL);
	agent_says(p, s, r, w);
}

static void
agent_health(struct pool *p, struct server *s, enum agent_health h,
             const char *reason, struct agent_reply *r, struct pool_work *w)
{
	*r = agent_words(-1, -1, AGENT_ADMIN_NONE, h, reason);
	agent_says(p, s, r, w);
}

/* --- slowstart ----------------------------------------------------------- */

/* DOWN -> UP: 1/16 of the weight at once (shown rounded up: 100 -> 7),
 * about half at 5 s, the full weight from 10 s on.  No ramp at start,
 * nor after a first check that passes. */
START_TEST(slowstart_ramp_weights)
{
	struct fx f;
	struct pool_work w;
	struct server *a;
	uint64_t up;

	fx_open(&f, CFG_SLOW);
	a = find_srv(f.p, "rr/a");
	expect_weight(f.p, "rr", "a", T0_MS, 100, false, "fresh set");
	check_pass(f.p, a, &w);
	expect_events(&w, "first check passes", 0);
	expect_weight(f.p, "rr", "a", T0_MS, 100, false, "first check passed");

	fake_now_ms = T0_MS + 60000;
	up = bounce(f.p, a);
	expect_weight(f.p, "rr", "a", up, 7, true, "at UP");
	expect_weight(f.p, "rr", "b", up, 100, false, "its peer");
	ck_assert_msg(row(f.p, "rr", "a").takes, "a ramping takes sessions");
	ck_assert_int_eq(row(f.p, "rr", "a").base_weight, 100);
	/* 100 x (1/16 + 15/16 x 1/2) = 53.1, shown 54. */
	expect_weight(f.p, "rr", "a", up + 5000, 54, true, "at 5 s");
	ck_assert_int_le(weight_at(f.p, "rr", "a", up + 9999), 100);
	ck_assert_int_ge(weight_at(f.p, "rr", "a", up + 9999), 99);
	expect_weight(f.p, "rr", "a", up + 10000, 100, false, "at 10 s");
	expect_weight(f.p, "rr", "a", up + 60000, 100, false, "after");
	fx_close(&f);
}
END_TEST

/* A point of a ramp: ms after the server came back UP (-1: at start,
 * before it went DOWN: such points come first), how far into the ramp
 * that is (1: done), and how many picks the count may be off. */
struct ramp_point {
	long long after_ms;
	double elapsed;
	double tol;
	const char *what;
};

typedef unsigned (*picks_fn)(struct pool *p, struct backend *be,
                             struct server *s, unsigned n, uint64_t t);

/* BE/a of CFG_SLOW goes DOWN and UP; at each point, n picks counted by
 * picks: a's share must follow the ramp. */
static void
share_follows_ramp(const char *be_name, picks_fn picks, unsigned n,
                   const struct ramp_point *pt, size_t npt)
{
	struct fx f;
	struct backend *be;
	struct server *a;
	char spec[64];
	uint64_t up = 0;

	fx_open(&f, CFG_SLOW);
	be = find_be(f.set, be_name);
	snprintf(spec, sizeof(spec), "%s/a", be_name);
	a = find_srv(f.p, spec);
	for (size_t i = 0; i < npt; i++) {
		uint64_t t = T0_MS;

		if (pt[i].after_ms >= 0) {
			if (up == 0)
				up = bounce(f.p, a);
			t = up + (uint64_t)pt[i].after_ms;
		}
		expect_share(picks(f.p, be, a, n, t), n,
		             ramp_share(pt[i].elapsed), pt[i].tol, pt[i].what);
	}
	fx_close(&f);
}

/* roundrobin: the share of the picks follows the ramp. */
START_TEST(slowstart_roundrobin_share)
{
	static const struct ramp_point pt[] = {
	    {-1, 1, 2, "no ramp at start"},
	    {0, 0, 8, "right after UP (1/17)"},
	    {5000, 0.5, 10, "at 5 s"},
	    {10000, 1, 2, "at 10 s"},
	};

	share_follows_ramp("rr", rr_picks, 1600, pt, ARRAY_SIZE(pt));
}
END_TEST

/* leastconn: with sessions held, the ramping server gets its weight's
 * share of them. */
START_TEST(slowstart_leastconn_share)
{
	static const struct ramp_point pt[] = {
	    {-1, 1, 1, "no ramp at start"},
	    {0, 0, 3, "right after UP (1/17)"},
	    {5000, 0.5, 4, "at 5 s"},
	    {10000, 1, 1, "at 10 s"},
	};

	share_follows_ramp("lc", held_picks, 340, pt, ARRAY_SIZE(pt));
}
END_TEST

/* source: the ramping server gets its weight's share of the clients.
 * Binomial spreads: 4000 x 1/17 +- 4 x 14.4; 4000 x 1/2 +- 4 x 32. */
START_TEST(slowstart_source_share)
{
	static const struct ramp_point pt[] = {
	    {-1, 1, 130, "no ramp at start"},
	    {0, 0, 60, "right after UP (1/17)"},
	    {10000, 1, 130, "at 10 s"},
	    {30000, 1, 130, "at 30 s"},
	};

	share_follows_ramp("src", client_picks, 4000, pt, ARRAY_SIZE(pt));
}
END_TEST

/* Weight 1: 1/16 of it still shows 1 and takes sessions. */
START_TEST(slowstart_weight_one_never_zero)
{
	struct fx f;
	struct server *a;
	uint64_t up;

	fx_open(&f, CFG_SLOW);
	a = find_srv(f.p, "w1/a");
	up = bounce(f.p, a);
	for (uint64_t t = 0; t <= 10000; t += 250) {
		struct pool_snap_server r;

		fake_now_ms = up + t;
		r = row(f.p, "w1", "a");
		ck_assert_msg(r.weight == 1 && r.takes,
		              "%llu ms into the ramp: weight %d takes %d, "
		              "want 1, 1",
		              (unsigned long long)t, r.weight, r.takes);
	}
	ck_assert_uint_gt(rr_picks(f.p, find_be(f.set, "w1"), a, 170, up), 0);
	fx_close(&f);
}
END_TEST

/* A reload starts no ramp, and a ramp in progress goes on with the
 * successor. */
START_TEST(slowstart_reload)
{
	struct fx2 x;
	struct pool_work w;
	uint64_t up;

	fx_open(&x.f, CFG_SLOW);
	up = bounce(x.f.p, find_srv(x.f.p, "rr/a"));
	fake_now_ms = up + 5000;
	reload(&x, CFG_SLOW, &w);
	expect_work_empty(&w, "reload");
	ck_assert_ptr_eq(server_backend(find_srv(x.f.p, "rr/a")),
	                 find_be(x.set2, "rr"));
	expect_weight(x.f.p, "rr", "a", up + 5000, 54, true,
	              "successor at 5 s");
	expect_weight(x.f.p, "rr", "b", up + 5000, 100, false,
	              "reloaded, not ramping");
	expect_weight(x.f.p, "lc", "a", up + 5000, 100, false,
	              "reloaded, never down");
	expect_weight(x.f.p, "rr", "a", up + 10000, 100, false,
	              "successor at 10 s");
	fx2_close(&x);
}
END_TEST

/* lbctl enable after a drain or a maintenance starts no ramp. */
START_TEST(slowstart_not_at_enable)
{
	struct fx f;
	struct pool_work w;
	struct server *a, *b;

	fx_open(&f, CFG_SLOW);
	a = find_srv(f.p, "rr/a");
	b = find_srv(f.p, "rr/b");
	fake_now_ms = T0_MS + 1000;
	set_admin(f.p, a, SRV_DRAIN, &w);
	fake_now_ms += 20000;
	set_admin(f.p, a, SRV_READY, &w);
	expect_events(&w, "enable from drain", 1, PEV_READY);
	expect_weight(f.p, "rr", "a", fake_now_ms, 100, false,
	              "enable from drain");

	set_admin(f.p, b, SRV_MAINT, &w);
	fake_now_ms += 20000;
	set_admin(f.p, b, SRV_READY, &w);
	ck_assert_msg(w.check == b && w.check_now, "enable: b checked now");
	expect_weight(f.p, "rr", "b", fake_now_ms, 100, false,
	              "enable from maint");
	/* Its first check afterwards passes: still no ramp. */
	check_pass(f.p, b, &w);
	expect_events(&w, "check after enable", 0);
	expect_weight(f.p, "rr", "b", fake_now_ms, 100, false,
	              "checked after enable");
	fx_close(&f);
}
END_TEST

/* --- agent --------------------------------------------------------------- */

/* NN%: the weight in force, a weight event by the agent when it changes;
 * 0 % takes no sessions but stays UP. */
START_TEST(agent_weight_percent)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct pool_snap_server s;
	const struct pool_event *ev;
	struct backend *be;
	struct server *a;

	fx_open(&f, CFG_AGENT);
	be = find_be(f.set, "ag");
	a = find_srv(f.p, "ag/a");
	s = row(f.p, "ag", "a");
	ck_assert_msg(s.has_agent, "ag/a has an agent");
	ck_assert_str_eq(s.agent_last, "not checked yet");

	agent_pct(f.p, a, 50, &r, &w);
	expect_events(&w, "50%", 1, PEV_WEIGHT);
	ev = event_by(&w, PEV_WEIGHT, "agent", "50%");
	expect_srv_event(ev, PEV_WEIGHT, a, 2, 0, "50%");
	ck_assert_int_eq(ev->weight, 50);
	s = row(f.p, "ag", "a");
	ck_assert_int_eq(s.weight, 50);
	ck_assert_int_eq(s.base_weight, 100);
	ck_assert_uint_eq(s.agent_checks, 1);
	ck_assert_uint_eq(s.agent_failures, 0);
	ck_assert_msg(strncmp(s.agent_last, "50%", 3) == 0,
	              "agent_last \"%s\", want \"50%% ...\"", s.agent_last);
	/* Weights 50:100 in the smooth round robin: a 1 of 3. */
	ck_assert_uint_eq(rr_picks(f.p, be, a, 300, T0_MS), 100);

	agent_pct(f.p, a, 50, &r, &w);
	expect_no_work(&w, "50% again");

	agent_pct(f.p, a, 0, &r, &w);
	ev = event_by(&w, PEV_WEIGHT, "agent", "0%");
	ck_assert_int_eq(ev->weight, 0);
	s = row(f.p, "ag", "a");
	ck_assert_int_eq(s.weight, 0);
	ck_assert_msg(!s.takes, "0%% takes sessions");
	ck_assert_int_eq(s.state, SRV_STATE_UP);
	ck_assert_uint_eq(rr_picks(f.p, be, a, 20, T0_MS), 0);
	ck_assert_int_eq(row(f.p, "ag", "b").weight, 100);

	agent_pct(f.p, a, 100, &r, &w);
	ck_assert_int_eq(event_by(&w, PEV_WEIGHT, "agent", "100%")->weight,
	                 100);
	ck_assert_int_eq(row(f.p, "ag", "a").weight, 100);
	fx_close(&f);
}
END_TEST

/* maxconn:N is the server's limit (0: none); no health event. */
START_TEST(agent_maxconn)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct pool_waiter c1, c2;
	struct backend *be;
	struct server *s;

	fx_open(&f, CFG_AGENT);
	be = find_be(f.set, "one");
	s = find_srv(f.p, "one/s");
	ck_assert_uint_eq(row(f.p, "one", "s").limit, 0);
	r = agent_words(-1, 1, AGENT_ADMIN_NONE, AGENT_HEALTH_NONE, NULL);
	agent_says(f.p, s, &r, &w);
	/* Logged on a weight event (every change the agent makes is in
	 * the health log); the same answer again: nothing. */
	expect_events(&w, "maxconn:1", 1, PEV_WEIGHT);
	ck_assert_str_eq(w.events[0].by, "agent");
	ck_assert_int_eq(w.events[0].weight, 100);
	ck_assert(w.events[0].has_maxconn);
	ck_assert_int_eq(w.events[0].maxconn, 1);
	agent_says(f.p, s, &r, &w);
	ck_assert_msg(w.nevents == 0, "maxconn again: events [%s]",
	              kinds_text(&w));
	ck_assert_uint_eq(row(f.p, "one", "s").limit, 1);
	waiter(&c1);
	ck_assert_ptr_eq(take_ok(f.p, be, &c1, "first"), s);
	waiter(&c2);
	expect_pick(f.p, be, &c2, false, POOL_FULL, "over maxconn:1");

	r = agent_words(-1, 0, AGENT_ADMIN_NONE, AGENT_HEALTH_NONE, NULL);
	agent_says(f.p, s, &r, &w);
	expect_events(&w, "maxconn:0", 1, PEV_WEIGHT);
	ck_assert_int_eq(w.events[0].maxconn, 0);
	ck_assert_uint_eq(row(f.p, "one", "s").limit, 0);
	ck_assert_ptr_eq(take_ok(f.p, be, &c2, "maxconn:0"), s);
	release(f.p, s, &w);
	release(f.p, s, &w);
	fx_close(&f);
}
END_TEST

/* drain, maint, ready: the agent's state, events by the agent; its maint
 * stops the health checks (not the agent), its ready runs them now. */
START_TEST(agent_admin_words)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct backend *be;
	struct server *a;

	fx_open(&f, CFG_AGENT);
	be = find_be(f.set, "ag");
	a = find_srv(f.p, "ag/a");

	agent_admin(f.p, a, AGENT_DRAIN, &r, &w);
	expect_events(&w, "agent drain", 1, PEV_DRAIN);
	expect_srv_event(event_by(&w, PEV_DRAIN, "agent", "agent drain"),
	                 PEV_DRAIN, a, 2, 0, "agent drain");
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_DRAIN);
	ck_assert_int_eq(row(f.p, "ag", "a").admin, SRV_READY);
	ck_assert_msg(!row(f.p, "ag", "a").op_admin, "not the operator's");
	ck_assert_uint_eq(rr_picks(f.p, be, a, 10, T0_MS), 0);
	agent_admin(f.p, a, AGENT_DRAIN, &r, &w);
	expect_no_work(&w, "drain again");

	agent_admin(f.p, a, AGENT_MAINT, &r, &w);
	expect_events(&w, "agent maint", 1, PEV_MAINT);
	expect_srv_event(event_by(&w, PEV_MAINT, "agent", "agent maint"),
	                 PEV_MAINT, a, 1, 0, "agent maint");
	ck_assert_msg(w.check == a && w.check_stop && !w.check_now,
	              "agent maint: a's health check stops");
	ck_assert_msg(!w.agent_stop, "agent maint: the agent goes on");
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_MAINT);
	ck_assert_msg(pool_in_maint(f.p, a), "in maintenance");
	ck_assert_msg(!pool_agent_paused(f.p, a), "the agent is not paused");

	agent_admin(f.p, a, AGENT_READY, &r, &w);
	expect_events(&w, "agent ready", 1, PEV_READY);
	expect_srv_event(event_by(&w, PEV_READY, "agent", "agent ready"),
	                 PEV_READY, a, 2, 0, "agent ready");
	ck_assert_msg(w.check == a && w.check_now && !w.check_stop,
	              "agent ready: a checked now");
	ck_assert_msg(!w.agent_now && !w.agent_stop, "agent ready: agent");
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_UP);
	ck_assert_msg(row(f.p, "ag", "a").takes, "ready takes sessions");
	agent_admin(f.p, a, AGENT_READY, &r, &w);
	expect_no_work(&w, "ready again");
	fx_close(&f);
}
END_TEST

/* down#reason: DOWN at once, by the agent, and passing checks do not
 * bring it back; up: UP at once when its checks pass, else when they
 * rise. */
START_TEST(agent_down_up)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	const struct pool_event *ev;
	struct server *a;

	fx_open(&f, CFG_AGENT);
	a = find_srv(f.p, "ag/a");
	agent_health(f.p, a, AGENT_DOWN, "disk full", &r, &w);
	expect_events(&w, "agent down", 1, PEV_DOWN);
	ev = event_by(&w, PEV_DOWN, "agent", "agent down");
	expect_srv_event(ev, PEV_DOWN, a, 1, 0, "agent down");
	ck_assert_str_eq(ev->reason, "disk full");
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_DOWN);
	ck_assert_msg(!row(f.p, "ag", "a").takes, "DOWN takes");
	state_is(f.p, a, "DOWN", "agent down");
	agent_health(f.p, a, AGENT_DOWN, "disk full", &r, &w);
	expect_no_work(&w, "down again");

	check_pass(f.p, a, &w);
	expect_events(&w, "check passes while the agent says down", 0);
	check_pass(f.p, a, &w);
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_DOWN);
	state_is(f.p, a, "DOWN", "checks pass, agent down");

	agent_health(f.p, a, AGENT_UP, NULL, &r, &w);
	expect_events(&w, "agent up", 1, PEV_UP);
	expect_srv_event(event_by(&w, PEV_UP, "agent", "agent up"), PEV_UP, a,
	                 2, 0, "agent up");
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_UP);
	agent_health(f.p, a, AGENT_UP, NULL, &r, &w);
	expect_no_work(&w, "up again");

	/* stopped, no reason: the word is the reason. */
	agent_health(f.p, a, AGENT_STOPPED, NULL, &r, &w);
	ev = event_by(&w, PEV_DOWN, "agent", "agent stopped");
	ck_assert_str_eq(ev->reason, "stopped");
	/* Its checks fall and rise meanwhile: still DOWN. */
	for (int i = 0; i < 3; i++)
		check_fail(f.p, a, &w);
	check_pass(f.p, a, &w);
	check_pass(f.p, a, &w);
	expect_events(&w, "checks rise while the agent says down", 0);
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_DOWN);
	/* They fall again: up leaves it DOWN until they rise. */
	for (int i = 0; i < 3; i++)
		check_fail(f.p, a, &w);
	agent_health(f.p, a, AGENT_UP, NULL, &r, &w);
	ck_assert_msg(w.nevents == 0, "up, checks down: events [%s]",
	              kinds_text(&w));
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_DOWN);
	check_pass(f.p, a, &w);
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_DOWN);
	check_pass(f.p, a, &w);
	expect_events(&w, "checks rise", 1, PEV_UP);
	event_by(&w, PEV_UP, NULL, "checks rise");
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_UP);

	/* fail works as down. */
	agent_health(f.p, a, AGENT_FAIL, NULL, &r, &w);
	ck_assert_str_eq(event_by(&w, PEV_DOWN, "agent", "fail")->reason,
	                 "fail");
	fx_close(&f);
}
END_TEST

/* Without a health_check: down and up alone. */
START_TEST(agent_down_up_without_check)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct server *a;

	fx_open(&f, CFG_AGENT);
	a = find_srv(f.p, "nochk/a");
	agent_health(f.p, a, AGENT_DOWN, "overload", &r, &w);
	expect_events(&w, "down", 1, PEV_DOWN);
	ck_assert_str_eq(event_by(&w, PEV_DOWN, "agent", "down")->reason,
	                 "overload");
	ck_assert_int_eq(row(f.p, "nochk", "a").state, SRV_STATE_DOWN);
	ck_assert_msg(!row(f.p, "nochk", "a").takes, "DOWN takes");
	state_is(f.p, a, "DOWN", "no check, agent down");
	agent_health(f.p, a, AGENT_UP, NULL, &r, &w);
	expect_events(&w, "up", 1, PEV_UP);
	expect_srv_event(event_by(&w, PEV_UP, "agent", "up"), PEV_UP, a, 2, 0,
	                 "up");
	ck_assert_int_eq(row(f.p, "nochk", "a").state, SRV_STATE_UP);
	state_is(f.p, a, "UP", "no check, agent up");
	fx_close(&f);
}
END_TEST

/* The agent's up after its down is a DOWN -> UP: a slow start. */
START_TEST(agent_up_starts_ramp)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct server *a;

	fx_open(&f, CFG_AGENT);
	a = find_srv(f.p, "ss/a");
	agent_health(f.p, a, AGENT_DOWN, NULL, &r, &w);
	fake_now_ms += 3000;
	agent_health(f.p, a, AGENT_UP, NULL, &r, &w);
	expect_events(&w, "up", 1, PEV_UP);
	expect_weight(f.p, "ss", "a", fake_now_ms, 7, true, "agent up");
	expect_weight(f.p, "ss", "a", fake_now_ms + 10000, 100, false,
	              "10 s later");
	fx_close(&f);
}
END_TEST

/* A failed agent check is counted and shown; nothing else changes. */
START_TEST(agent_failure_changes_nothing)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct pool_snap_server s;
	struct server *a, *b;

	fx_open(&f, CFG_AGENT);
	a = find_srv(f.p, "ag/a");
	b = find_srv(f.p, "ag/b");
	agent_pct(f.p, a, 50, &r, &w);
	agent_says(f.p, a, NULL, &w);
	expect_no_work(&w, "failure");
	s = row(f.p, "ag", "a");
	ck_assert_uint_eq(s.agent_checks, 2);
	ck_assert_uint_eq(s.agent_failures, 1);
	ck_assert_int_eq(s.weight, 50);
	ck_assert_int_eq(s.state, SRV_STATE_UP);
	ck_assert_msg(strstr(s.agent_last, "failed: connection refused") !=
	                  NULL,
	              "agent_last \"%s\"", s.agent_last);

	agent_health(f.p, b, AGENT_DOWN, NULL, &r, &w);
	agent_says(f.p, b, NULL, &w);
	agent_says(f.p, b, NULL, &w);
	expect_no_work(&w, "failure while down");
	s = row(f.p, "ag", "b");
	ck_assert_uint_eq(s.agent_failures, 2);
	ck_assert_int_eq(s.state, SRV_STATE_DOWN);
	ck_assert_int_eq(s.weight, 100);
	fx_close(&f);
}
END_TEST

/* An operator's drain and weight win over the agent until enable, which
 * puts the agent's last words in force at once. */
START_TEST(agent_operator_wins)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct pool_snap_server s;
	struct server *a;

	fx_open(&f, CFG_AGENT);
	a = find_srv(f.p, "ag/a");
	set_admin(f.p, a, SRV_DRAIN, &w);
	event_by(&w, PEV_DRAIN, NULL, "operator drain");
	agent_admin(f.p, a, AGENT_READY, &r, &w);
	expect_no_work(&w, "agent ready under the operator's drain");
	ck_assert_int_eq(row(f.p, "ag", "a").state, SRV_STATE_DRAIN);
	agent_admin(f.p, a, AGENT_DRAIN, &r, &w);
	expect_no_work(&w, "agent drain under the operator's drain");

	pool_work_init(&w);
	ck_assert_int_eq(pool_set_weight(f.p, a, 5, &w), 100);
	expect_events(&w, "set weight 5", 1, PEV_WEIGHT);
	ck_assert_int_eq(event_by(&w, PEV_WEIGHT, NULL, "set weight")->weight,
	                 5);
	agent_pct(f.p, a, 50, &r, &w);
	expect_no_work(&w, "agent 50% under the operator's weight");
	ck_assert_int_eq(row(f.p, "ag", "a").weight, 5);

	set_admin(f.p, a, SRV_READY, &w);
	s = row(f.p, "ag", "a");
	ck_assert_msg(!s.op_admin && !s.op_weight,
	              "enable ends the operator's overrides");
	ck_assert_int_eq(s.base_weight, 100);
	ck_assert_int_eq(s.weight, 50);
	ck_assert_int_eq(event_of(&w, PEV_WEIGHT, "enable")->weight, 50);
	ck_assert_int_eq(s.state, SRV_STATE_DRAIN);
	event_by(&w, PEV_DRAIN, "agent", "enable: the agent's drain");
	fx_close(&f);
}
END_TEST

/* The operator's maintenance stops the agent, enable runs it now; the
 * agent's drain said meanwhile is in force after enable. */
START_TEST(agent_operator_maint)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct server *b;

	fx_open(&f, CFG_AGENT);
	b = find_srv(f.p, "ag/b");
	set_admin(f.p, b, SRV_MAINT, &w);
	ck_assert_msg(w.check == b && w.agent_stop && w.check_stop &&
	                  !w.agent_now,
	              "operator maint: health and agent checks stop");
	ck_assert_msg(pool_agent_paused(f.p, b), "agent paused");
	agent_admin(f.p, b, AGENT_DRAIN, &r, &w);
	expect_no_work(&w, "agent drain under the operator's maint");
	ck_assert_int_eq(row(f.p, "ag", "b").state, SRV_STATE_MAINT);

	set_admin(f.p, b, SRV_READY, &w);
	ck_assert_msg(w.check == b && w.agent_now && w.check_now &&
	                  !w.agent_stop,
	              "enable: health and agent checks now");
	ck_assert_msg(!pool_agent_paused(f.p, b), "agent runs");
	ck_assert_int_eq(row(f.p, "ag", "b").state, SRV_STATE_DRAIN);
	event_by(&w, PEV_DRAIN, "agent", "enable from maint");
	fx_close(&f);
}
END_TEST

/* A set that a reload retired ignores its agents' late answers. */
START_TEST(agent_retired_set)
{
	struct fx2 x;
	struct agent_reply r;
	struct pool_work w;
	struct server *oa;

	fx_open(&x.f, CFG_AGENT);
	oa = find_srv(x.f.p, "ag/a");
	reload(&x, CFG_AGENT, &w);
	agent_pct(x.f.p, oa, 10, &r, &w);
	expect_no_work(&w, "late answer");
	agent_health(x.f.p, oa, AGENT_DOWN, NULL, &r, &w);
	expect_no_work(&w, "late down");
	ck_assert_int_eq(row(x.f.p, "ag", "a").weight, 100);
	ck_assert_int_eq(row(x.f.p, "ag", "a").state, SRV_STATE_UP);
	ck_assert_uint_eq(row(x.f.p, "ag", "a").agent_checks, 0);
	fx2_close(&x);
}
END_TEST

/* Regression (review of the agent check): a reload that takes the
 * agent away also takes its last words away; nothing else could. */
START_TEST(agent_words_go_with_the_agent)
{
	static const char no_agent[] =
	    "backends = ( { name = \"rl\"; " HCHECK " servers = (\n"
	    "  " W100("a", "10001") ", " W100("b", "10002") ", " W100(
	        "c", "10003") " ); } );\n";
	struct fx2 x;
	struct agent_reply r;
	struct pool_work w;

	fx_open(&x.f, CFG_AGENT_R1);
	agent_admin(x.f.p, find_srv(x.f.p, "rl/a"), AGENT_MAINT, &r, &w);
	agent_health(x.f.p, find_srv(x.f.p, "rl/b"), AGENT_DOWN, "disk full",
	             &r, &w);
	agent_pct(x.f.p, find_srv(x.f.p, "rl/c"), 0, &r, &w);
	ck_assert_int_eq(row(x.f.p, "rl", "a").state, SRV_STATE_MAINT);
	ck_assert_int_eq(row(x.f.p, "rl", "b").state, SRV_STATE_DOWN);
	ck_assert(!row(x.f.p, "rl", "c").takes);
	reload(&x, no_agent, &w);
	ck_assert_int_eq(row(x.f.p, "rl", "a").state, SRV_STATE_UP);
	ck_assert_int_eq(row(x.f.p, "rl", "b").state, SRV_STATE_UP);
	ck_assert(row(x.f.p, "rl", "c").takes);
	ck_assert_int_eq(row(x.f.p, "rl", "c").weight, 100);
	ck_assert_msg(!pool_in_maint(x.f.p, find_srv(x.f.p, "rl/a")),
	              "a's health check must run again");
	fx2_close(&x);
}
END_TEST

/* Regression (review): lbctl enable of a server the file disables is
 * the operator's state, kept (admin=ready) and restored. */
START_TEST(enable_of_disabled_server_is_kept)
{
	static const char cfg[] =
	    "backends = ( { name = \"d\"; servers = (\n"
	    "  " SRV("a", "10001", "disabled = true;") ", " SRV(
	        "b", "10002", "") " ); } );\n";
	struct fx f, g;
	struct pool_work w;
	struct pool_snap_server s;

	fx_open(&f, cfg);
	pool_work_init(&w);
	pool_set_admin(f.p, find_srv(f.p, "d/a"), SRV_READY, NULL, 0, &w);
	s = row(f.p, "d", "a");
	ck_assert_int_eq(s.state, SRV_STATE_UP);
	ck_assert_msg(s.op_admin && s.admin == SRV_READY,
	              "enable of a disabled server: op_admin with READY");
	/* b is not disabled: its enable is no state to keep. */
	pool_work_init(&w);
	pool_set_admin(f.p, find_srv(f.p, "d/b"), SRV_READY, NULL, 0, &w);
	ck_assert_msg(!row(f.p, "d", "b").op_admin, "b: nothing to keep");
	fx_close(&f);
	/* A restart: the state file's admin=ready enables it again, with
	 * the agent started and no maintenance left. */
	fx_open(&g, cfg);
	ck_assert_int_eq(row(g.p, "d", "a").state, SRV_STATE_MAINT);
	pool_work_init(&w);
	pool_restore(g.p, find_srv(g.p, "d/a"), SRV_READY, -1, &w);
	ck_assert_int_eq(row(g.p, "d", "a").state, SRV_STATE_UP);
	ck_assert_msg(w.agent_now, "leaving maintenance starts the agent");
	fx_close(&g);
}
END_TEST

/* server_inherited: false at start and for a server a reload adds. */
START_TEST(inherited_after_reload)
{
	static const char more[] =
	    "backends = ( { name = \"rl\"; " AGENT " " HCHECK " servers = (\n"
	    "  " W100("a", "10001") ", " W100("z", "10009") " ); } );\n";
	struct fx2 x;
	struct pool_work w;

	fx_open(&x.f, CFG_AGENT_R1);
	ck_assert(!server_inherited(find_srv(x.f.p, "rl/a")));
	reload(&x, more, &w);
	ck_assert(server_inherited(find_srv(x.f.p, "rl/a")));
	ck_assert(!server_inherited(find_srv(x.f.p, "rl/z")));
	fx2_close(&x);
}
END_TEST

/* --- operator state ------------------------------------------------------ */

/* The state file's drain and weight, with events only for changes. */
START_TEST(restore_sets_operator_state)
{
	struct fx f;
	struct agent_reply r;
	struct pool_work w;
	struct pool_snap_server s;
	const struct pool_event *ev;
	struct server *a, *b, *c, *d;

	fx_open(&f, CFG_OP1);
	a = find_srv(f.p, "op/a");
	b = find_srv(f.p, "op/b");
	c = find_srv(f.p, "op/c");
	d = find_srv(f.p, "op/d");

	pool_work_init(&w);
	pool_restore(f.p, a, SRV_DRAIN, 50, &w);
	ck_assert_msg(w.nevents == 2, "restore a: events [%s]", kinds_text(&w));
	expect_srv_event(event_by(&w, PEV_DRAIN, NULL, "restore a"), PEV_DRAIN,
	                 a, 4, 0, "restore a");
	ev = event_by(&w, PEV_WEIGHT, NULL, "restore a");
	ck_assert_int_eq(ev->weight, 50);
	s = row(f.p, "op", "a");
	ck_assert_msg(s.op_admin && s.op_weight, "restored a: op flags");
	ck_assert_int_eq(s.admin, SRV_DRAIN);
	ck_assert_int_eq(s.state, SRV_STATE_DRAIN);
	ck_assert_int_eq(s.base_weight, 50);
	ck_assert_int_eq(s.weight, 50);
	pool_work_init(&w);
	pool_restore(f.p, a, SRV_DRAIN, 50, &w);
	expect_no_work(&w, "restore a again");

	pool_work_init(&w);
	pool_restore(f.p, b, -1, -1, &w);
	expect_no_work(&w, "restore nothing");
	s = row(f.p, "op", "b");
	ck_assert_msg(!s.op_admin && !s.op_weight, "b: no operator state");

	/* The configured weight: the operator's now, but no change. */
	pool_work_init(&w);
	pool_restore(f.p, c, -1, 100, &w);
	expect_no_work(&w, "restore c's own weight");
	s = row(f.p, "op", "c");
	ck_assert_msg(!s.op_admin && s.op_weight, "c: operator's weight");
	ck_assert_int_eq(s.base_weight, 100);

	/* An operator's weight wins over the agent's percentage. */
	agent_pct(f.p, d, 50, &r, &w);
	pool_work_init(&w);
	pool_restore(f.p, d, -1, 30, &w);
	expect_events(&w, "restore d's weight", 1, PEV_WEIGHT);
	ck_assert_int_eq(event_by(&w, PEV_WEIGHT, NULL, "restore d")->weight,
	                 30);
	ck_assert_int_eq(row(f.p, "op", "d").weight, 30);
	fx_close(&f);
}
END_TEST

/* A restored maintenance stops the health and agent checks. */
START_TEST(restore_maint)
{
	struct fx f;
	struct pool_work w;
	struct server *a;

	fx_open(&f, CFG_OP1);
	a = find_srv(f.p, "op/a");
	pool_work_init(&w);
	pool_restore(f.p, a, SRV_MAINT, -1, &w);
	expect_events(&w, "restore maint", 1, PEV_MAINT);
	event_by(&w, PEV_MAINT, NULL, "restore maint");
	ck_assert_msg(w.check == a && w.check_stop && w.agent_stop,
	              "restore maint: checks stop (check %s stop %d agent "
	              "stop %d)",
	              name_of(w.check), w.check_stop, w.agent_stop);
	ck_assert_int_eq(row(f.p, "op", "a").state, SRV_STATE_MAINT);
	ck_assert_msg(row(f.p, "op", "a").op_admin, "op_admin");
	ck_assert_msg(pool_agent_paused(f.p, a), "agent paused");
	fx_close(&f);
}
END_TEST

/* A reload keeps the operator's drain and weight even where the file
 * changed the weight or disabled the server; without an operator's
 * weight the file's new weight applies. */
START_TEST(reload_keeps_operator_state)
{
	struct fx2 x;
	struct pool_work w;
	struct pool_snap_server s;

	fx_open(&x.f, CFG_OP1);
	set_admin(x.f.p, find_srv(x.f.p, "op/a"), SRV_DRAIN, &w);
	pool_work_init(&w);
	pool_set_weight(x.f.p, find_srv(x.f.p, "op/a"), 30, &w);
	set_admin(x.f.p, find_srv(x.f.p, "op/c"), SRV_DRAIN, &w);
	pool_work_init(&w);
	pool_set_weight(x.f.p, find_srv(x.f.p, "op/d"), 40, &w);
	reload(&x, CFG_OP2, &w);
	expect_no_work(&w, "reload");

	s = row(x.f.p, "op", "a");
	ck_assert_msg(s.op_admin && s.op_weight, "a: operator's state kept");
	ck_assert_int_eq(s.state, SRV_STATE_DRAIN);
	ck_assert_int_eq(s.base_weight, 30);
	ck_assert_int_eq(s.weight, 30);
	s = row(x.f.p, "op", "b");
	ck_assert_msg(!s.op_weight, "b: no operator's weight");
	ck_assert_int_eq(s.base_weight, 200);
	ck_assert_int_eq(s.weight, 200);
	s = row(x.f.p, "op", "c");
	ck_assert_msg(s.op_admin, "c: operator's drain kept");
	ck_assert_int_eq(s.state, SRV_STATE_DRAIN);
	s = row(x.f.p, "op", "d");
	ck_assert_int_eq(s.base_weight, 40);

	/* enable: the new file's weight. */
	set_admin(x.f.p, find_srv(x.f.p, "op/a"), SRV_READY, &w);
	s = row(x.f.p, "op", "a");
	ck_assert_int_eq(s.state, SRV_STATE_UP);
	ck_assert_int_eq(s.base_weight, 200);
	ck_assert_int_eq(s.weight, 200);
	fx2_close(&x);
}
END_TEST

/* A reload keeps the agent's last words for a server at the same address
 * (its down too) and forgets them for one that moved. */
START_TEST(reload_agent_state)
{
	struct fx2 x;
	struct agent_reply r;
	struct pool_work w;
	struct pool_snap_server s;
	char last[sizeof(s.agent_last)];

	fx_open(&x.f, CFG_AGENT_R1);
	r = agent_words(50, 3, AGENT_DRAIN, AGENT_HEALTH_NONE, NULL);
	agent_says(x.f.p, find_srv(x.f.p, "rl/a"), &r, &w);
	agent_says(x.f.p, find_srv(x.f.p, "rl/b"), &r, &w);
	agent_health(x.f.p, find_srv(x.f.p, "rl/c"), AGENT_DOWN, NULL, &r, &w);
	snprintf(last, sizeof(last), "%s", row(x.f.p, "rl", "a").agent_last);
	reload(&x, CFG_AGENT_R2, &w);
	expect_no_work(&w, "reload");

	s = row(x.f.p, "rl", "a");
	ck_assert_int_eq(s.weight, 50);
	ck_assert_int_eq(s.state, SRV_STATE_DRAIN);
	ck_assert_uint_eq(s.limit, 3);
	ck_assert_str_eq(s.agent_last, last);
	ck_assert_uint_eq(s.agent_checks, 1);
	s = row(x.f.p, "rl", "b");
	ck_assert_int_eq(s.weight, 100);
	ck_assert_int_eq(s.state, SRV_STATE_UP);
	ck_assert_uint_eq(s.limit, 0);
	ck_assert_str_eq(s.agent_last, "not checked yet");
	s = row(x.f.p, "rl", "c");
	ck_assert_int_eq(s.state, SRV_STATE_DOWN);
	/* Still the agent's down: passing checks do not bring it UP. */
	check_pass(x.f.p, find_srv(x.f.p, "rl/c"), &w);
	ck_assert_int_eq(row(x.f.p, "rl", "c").state, SRV_STATE_DOWN);
	fx2_close(&x);
}
END_TEST

/* --- suite ---------------------------------------------------------------- */

static Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc;

	tc = tcase_create("queue");
	tcase_add_test(tc, queue_oldest_first_and_timeout);
	tcase_add_test(tc, queue_source_hash_keeps_place);
	suite_add_tcase(s, tc);

	tc = tcase_create("slots");
	tcase_add_test(tc, release_hands_on_the_slot);
	suite_add_tcase(s, tc);

	tc = tcase_create("operators");
	tcase_add_test(tc, drain_stops_new_picks);
	tcase_add_test(tc, maint_and_back);
	tcase_add_test(tc, weight_and_roundrobin);
	tcase_add_test(tc, state_texts);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_test(tc, health_first_check_down);
	tcase_add_test(tc, health_fall_and_rise);
	tcase_add_test(tc, health_shutdown_sessions);
	tcase_add_test(tc, health_cert_expiry);
	suite_add_tcase(s, tc);

	tc = tcase_create("backup");
	tcase_add_test(tc, backup_servers);
	tcase_add_test(tc, ready_reports_backends);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, minconn_fullconn);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_add_test(tc, reload_carries_states);
	tcase_add_test(tc, reload_successors);
	tcase_add_test(tc, reload_moves_slots);
	tcase_add_test(tc, reload_moves_waiters);
	tcase_add_test(tc, reload_keeps_granted_on_kept_server);
	tcase_add_test(tc, reload_carries_counters);
	suite_add_tcase(s, tc);

	tc = tcase_create("find");
	tcase_add_test(tc, find_server);
	suite_add_tcase(s, tc);

	tc = tcase_create("passive");
	tcase_add_test(tc, passive_down_after_error_limit);
	tcase_add_test(tc, passive_connect_failures);
	tcase_add_test(tc, passive_down_shutdown_and_queue);
	tcase_add_test(tc, passive_unchecked_only_counts);
	tcase_add_test(tc, passive_error_limit_zero_and_one);
	tcase_add_test(tc, passive_own_failure_not_counted);
	tcase_add_test(tc, passive_maint_and_down_untouched);
	tcase_add_test(tc, passive_after_reload);
	suite_add_tcase(s, tc);

	tc = tcase_create("avoid");
	tcase_add_test(tc, avoid_skips_failed_servers);
	tcase_add_test(tc, avoid_keeps_the_last_ones);
	tcase_add_test(tc, avoid_follows_reload);
	tcase_add_test(tc, avoid_idle_waiter_after_reload);
	suite_add_tcase(s, tc);

	/* Defects these tests found, fixed in pool.c. */
	tc = tcase_create("regressions");
	tcase_add_test(tc, drain_lets_backup_serve_the_queue);
	tcase_add_test(tc, drain_keeps_waiters_waiting);
	tcase_add_test(tc, reload_retry_on_removed_server);
	suite_add_tcase(s, tc);

	tc = tcase_create("slowstart");
	tcase_add_test(tc, slowstart_ramp_weights);
	tcase_add_test(tc, slowstart_roundrobin_share);
	tcase_add_test(tc, slowstart_leastconn_share);
	tcase_add_test(tc, slowstart_source_share);
	tcase_add_test(tc, slowstart_weight_one_never_zero);
	tcase_add_test(tc, slowstart_reload);
	tcase_add_test(tc, slowstart_not_at_enable);
	suite_add_tcase(s, tc);

	tc = tcase_create("agent");
	tcase_add_test(tc, agent_weight_percent);
	tcase_add_test(tc, agent_maxconn);
	tcase_add_test(tc, agent_admin_words);
	tcase_add_test(tc, agent_down_up);
	tcase_add_test(tc, agent_down_up_without_check);
	tcase_add_test(tc, agent_up_starts_ramp);
	tcase_add_test(tc, agent_failure_changes_nothing);
	tcase_add_test(tc, agent_operator_wins);
	tcase_add_test(tc, agent_operator_maint);
	tcase_add_test(tc, agent_retired_set);
	tcase_add_test(tc, agent_words_go_with_the_agent);
	tcase_add_test(tc, enable_of_disabled_server_is_kept);
	tcase_add_test(tc, inherited_after_reload);
	suite_add_tcase(s, tc);

	tc = tcase_create("operator state");
	tcase_add_test(tc, restore_sets_operator_state);
	tcase_add_test(tc, restore_maint);
	tcase_add_test(tc, reload_keeps_operator_state);
	tcase_add_test(tc, reload_agent_state);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pool_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
