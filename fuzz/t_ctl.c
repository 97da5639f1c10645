/* The control-socket commands (ctl_execute in src/ctl.c) on the objects
 * of a fixed configuration (a generation installed in a pool, an
 * in-memory health log), with no socket, thread or event loop: every
 * command that only reads or sets state runs for real (show
 * servers/info/health, drain, disable, enable, set weight, shutdown
 * sessions, check, help); reload answers that it is not available here.
 * Each input line is one command (the connection code cuts lines the same
 * way, and refuses longer ones and NULs before ctl_execute).  Every reply
 * ends with the empty line; errors start with "error: ".  Server states
 * are reset after each input. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cfg.h"
#include "counters.h"
#include "ctl.h"
#include "fuzz.h"
#include "gen.h"
#include "healthlog.h"
#include "pool.h"
#include "work.h"

/* The file name is that of the configuration reload would read again. */
#define CONF_NAME "/nonexistent/load-balancer-fuzz.conf"

static const char conf_text[] =
    "global = { maxconn = 100; daemon = false; control_socket = \"\";\n"
    "  health_log = \"\"; log = { syslog = false; }; };\n"
    "frontends = (\n"
    "  { name = \"FRONT-FACING\"; bind = \"127.0.0.1:2525\";\n"
    "    backend = \"TO-FILTER-CLUSTER\"; },\n"
    "  { name = \"second\"; bind = [ \"127.0.0.1:2526\", \"[::1]:2526\" ];\n"
    "    backend = \"b2\"; maxconn = 10; }\n"
    ");\n"
    "backends = (\n"
    "  { name = \"TO-FILTER-CLUSTER\"; balance = \"leastconn\";\n"
    "    health_check = { type = \"smtp\"; helo = \"noor.net\"; };\n"
    "    servers = (\n"
    "      { name = \"filter1\"; address = \"127.0.0.1:10025\"; weight = 100; "
    "},\n"
    "      { name = \"filter2\"; address = \"127.0.0.1:10026\"; maxconn = 5; "
    "},\n"
    "      { name = \"spare\"; address = \"[::1]:10027\"; backup = true; },\n"
    "      { name = \"off\"; address = \"127.0.0.1:10028\"; disabled = true; "
    "}\n"
    "    ); },\n"
    "  { name = \"b2\"; balance = \"source\";\n"
    "    servers = ( { name = \"s\"; address = \"127.0.0.1:10029\"; } ); }\n"
    ");\n";

struct fuzz_ctl {
	struct pool *pool;
	struct gen *gen;
	struct healthlog *hlog;
	struct counters cnt;
	struct work_env wenv;
	struct ctl_env env;
};

static struct fuzz_ctl *
runtime(void)
{
	static struct fuzz_ctl *f;
	struct cfg_diag diag;
	struct pool_work w;
	struct cfg *c;
	char err[256];

	if (f != NULL)
		return f;
	fuzz_quiet();
	f = calloc(1, sizeof(*f));
	FUZZ_ASSERT(f != NULL);
	cfg_diag_init(&diag);
	c = cfg_load_string(conf_text, CONF_NAME, &diag);
	FUZZ_ASSERT(c != NULL);
	cfg_diag_free(&diag);
	f->pool = pool_new();
	f->gen = gen_new(c);
	FUZZ_ASSERT(f->pool != NULL && f->gen != NULL);
	pool_work_init(&w);
	pool_install(f->pool, f->gen->pool, &w);
	/* In memory only: what `show health` prints. */
	f->hlog = healthlog_open("", err, sizeof(err));
	FUZZ_ASSERT(f->hlog != NULL);
	atomic_init(&f->cnt.max_sess, 100);
	f->wenv.hlog = f->hlog;
	f->env.pool = f->pool;
	f->env.hlog = f->hlog;
	f->env.cnt = &f->cnt;
	f->env.cur = &f->gen;
	f->env.wenv = &f->wenv;
	return f;
}

static void
reset(struct fuzz_ctl *f)
{
	for (size_t b = 0; b < pool_set_nbackends(f->gen->pool); b++) {
		struct backend *be = pool_set_backend(f->gen->pool, b);

		for (size_t i = 0; i < backend_nservers(be); i++) {
			struct server *srv = backend_server(be, i);
			struct pool_work w;

			pool_work_init(&w);
			pool_set_admin(f->pool, srv, SRV_READY, NULL, 0, &w);
			pool_set_weight(f->pool, srv, server_conf(srv)->weight,
			                &w);
		}
	}
}

int
fuzz_ctl(const uint8_t *data, size_t size)
{
	struct fuzz_ctl *f = runtime();
	struct evbuffer *out = evbuffer_new();
	char *text = malloc(size + 1), *line, *next;
	unsigned n = 0;

	FUZZ_ASSERT(out != NULL && text != NULL);
	if (size > 0)
		memcpy(text, data, size);
	text[size] = '\0';
	for (line = text; line != NULL && n < 64; line = next, n++) {
		size_t len, before = evbuffer_get_length(out), got;
		unsigned char *r;

		next = memchr(line, '\n', (size_t)(text + size - line));
		if (next != NULL)
			*next++ = '\0';
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len > CTL_LINE_MAX)
			continue; /* refused by the connection code */
		ctl_execute(&f->env, line, out);
		got = evbuffer_get_length(out) - before;
		FUZZ_ASSERT(got >= 1);
		r = evbuffer_pullup(out, -1) + before;
		FUZZ_ASSERT(r[got - 1] == '\n');
		/* Reply lines end with '\n', the reply with an empty line;
		 * no empty line inside the reply. */
		FUZZ_ASSERT(got == 1 || (got >= 3 && r[got - 2] == '\n' &&
		                         r[got - 3] != '\n'));
		for (size_t i = 0; i + 2 < got; i++)
			FUZZ_ASSERT(!(r[i] == '\n' && r[i + 1] == '\n'));
		FUZZ_ASSERT(memchr(r, '\0', got) == NULL);
		evbuffer_drain(out, evbuffer_get_length(out));
	}
	evbuffer_free(out);
	free(text);
	reset(f);
	return 0;
}
