/* The control socket and its commands (see ctl.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "common.h"
#include "ctl.h"
#include "log.h"
#include "takeover.h"
#include "xmalloc.h"

#define CTL_IDLE_MS 60000
#define CTL_REPLY_MAX (1024 * 1024) /* stop reading while this is queued */
#define CTL_ACCEPT_PAUSE_MS 1000    /* after EMFILE and the like */
#define CTL_WORDS 8

struct ctl_client;
LIST_HEAD(ctl_clients, ctl_client);

struct ctl {
	const struct ctl_env *env;
	struct ctl_clients clients;
	char *path;
	char *tmp;    /* a takeover's socket file until ctl_commit */
	bool handing; /* a client has our sockets (one at a time) */
	bool handed;  /* and said it serves: we stop */
	dev_t dev;    /* the socket file we made: removed at exit if still */
	ino_t ino;    /* there (a takeover's successor makes its own) */
	int fd;
	struct evconnlistener *evl;
	struct event *resume; /* re-enables evl after an accept pause */
	bool paused;
	unsigned nclients;
};

struct ctl_client {
	LIST_ENTRY(ctl_client) entry;
	struct ctl *ctl;
	struct bufferevent *bev;
	bool closing;
	bool pending;            /* a reply comes later (reload) */
	bool starting;           /* in reload_request: an answer now is
	                          * written by the caller's loop */
	struct evbuffer *detail; /* its reload's messages */
	bool took_socks;         /* a new daemon has our sockets */
};

/* A command's answer: now, or later (reload: the connection waits). */
enum ctl_answer { CTL_DONE, CTL_PENDING };

struct ctl_call {
	const struct ctl_env *env;
	char **args; /* the words after the command's own */
	struct evbuffer *out;
	struct ctl_client *client; /* NULL: ctl_execute */
};

/* --- commands --------------------------------------------------------- */

static struct server *
find_server(const struct ctl_call *c, const char *spec)
{
	char err[600];
	struct server *srv =
	    pool_find_server(c->env->pool, spec, err, sizeof(err));

	if (srv == NULL)
		evbuffer_add_printf(c->out, "error: %s\n", err);
	return srv;
}

static enum ctl_answer
cmd_show_servers(const struct ctl_call *c)
{
	static const char *const hdr[] = {"BACKEND", "SERVER", "ADDRESS",
	                                  "STATE",   "WEIGHT", "CUR",
	                                  "TOTAL",   "ERRORS", "LAST CHECK"};
	struct pool_snap snap;
	size_t w[9];
	char num[4][24];

	if (pool_snapshot(c->env->pool, &snap) < 0) {
		evbuffer_add_printf(c->out, "error: out of memory\n");
		return CTL_DONE;
	}
	for (size_t k = 0; k < 9; k++)
		w[k] = strlen(hdr[k]);
	for (size_t b = 0; b < snap.nbackends; b++) {
		const struct pool_snap_backend *be = &snap.backends[b];

		for (size_t i = 0; i < be->nservers; i++) {
			const struct pool_snap_server *s = &be->servers[i];
			size_t l;

			if ((l = strlen(be->conf->name)) > w[0])
				w[0] = l;
			if ((l = strlen(s->conf->name)) > w[1])
				w[1] = l;
			if ((l = strlen(s->conf->addr.text)) > w[2])
				w[2] = l;
			if ((l = strlen(s->state_text)) > w[3])
				w[3] = l;
		}
	}
	w[4] = 6;
	w[5] = 6;
	w[6] = 8;
	w[7] = 6;
	evbuffer_add_printf(
	    c->out, "%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n",
	    (int)w[0], hdr[0], (int)w[1], hdr[1], (int)w[2], hdr[2], (int)w[3],
	    hdr[3], (int)w[4], hdr[4], (int)w[5], hdr[5], (int)w[6], hdr[6],
	    (int)w[7], hdr[7], hdr[8]);
	for (size_t b = 0; b < snap.nbackends; b++) {
		const struct pool_snap_backend *be = &snap.backends[b];

		for (size_t i = 0; i < be->nservers; i++) {
			const struct pool_snap_server *s = &be->servers[i];

			snprintf(num[0], sizeof(num[0]), "%d", s->weight);
			snprintf(num[1], sizeof(num[1]), "%u", s->cur);
			snprintf(num[2], sizeof(num[2]), "%llu",
			         (unsigned long long)s->total);
			snprintf(num[3], sizeof(num[3]), "%llu",
			         (unsigned long long)s->traffic_errors);
			evbuffer_add_printf(
			    c->out,
			    "%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  "
			    "%s",
			    (int)w[0], be->conf->name, (int)w[1], s->conf->name,
			    (int)w[2], s->conf->addr.text, (int)w[3],
			    s->state_text, (int)w[4], num[0], (int)w[5], num[1],
			    (int)w[6], num[2], (int)w[7], num[3],
			    s->last_check);
			/* lbctl(8), COMMANDS: its last answer, its
			 * failures. */
			if (s->has_agent)
				evbuffer_add_printf(
				    c->out, "; agent: %s, %llu failed",
				    s->agent_last,
				    (unsigned long long)s->agent_failures);
			evbuffer_add_printf(c->out, "%s\n",
			                    s->conf->backup ? " [backup]" : "");
		}
	}
	pool_snap_free(&snap);
	return CTL_DONE;
}

static enum ctl_answer
cmd_show_info(const struct ctl_call *c)
{
	const struct ctl_env *env = c->env;
	const struct gen *g = *env->cur;
	struct pool_snap snap;
	unsigned up = 0, total = 0;

	if (pool_snapshot(env->pool, &snap) < 0) {
		evbuffer_add_printf(c->out, "error: out of memory\n");
		return CTL_DONE;
	}
	for (size_t b = 0; b < snap.nbackends; b++) {
		total += (unsigned)snap.backends[b].nservers;
		up += snap.backends[b].active + snap.backends[b].backup;
	}
	pool_snap_free(&snap);
	evbuffer_add_printf(
	    c->out,
	    "name: %s\nversion: %s\npid: %ld\nuptime_s: %lld\n"
	    "config: %s\nsessions_current: %u\n"
	    "sessions_total: %llu\nmaxconn: %u\nworkers: %u\n"
	    "frontends: %zu\nbackends: %zu\n"
	    "servers_up: %u/%u\nstopping: %s\n",
	    LB_PROGRAM, PACKAGE_VERSION, (long)getpid(),
	    (long long)(time(NULL) - env->cnt->started), g->cfg->file,
	    atomic_load(&env->cnt->cur_sess),
	    (unsigned long long)atomic_load(&env->cnt->total_sess),
	    atomic_load(&env->cnt->max_sess),
	    env->workers != NULL ? env->workers->n : 1, g->nfrontends,
	    g->cfg->nbackends, up, total,
	    atomic_load(&env->cnt->stopping) ? "yes" : "no");
	return CTL_DONE;
}

#define CLIENTS_MAX 1000

/* A row of show clients, with its frontend. */
struct client_row {
	struct climit_row row; /* first: climit_row_cmp sorts these */
	const char *frontend;
};

/* show clients [N]: the N busiest client networks of every frontend with
 * client limits (load-balancer.conf(5), CLIENT LIMITS). */
static enum ctl_answer
cmd_show_clients(const struct ctl_call *c)
{
	const struct gen *g = *c->env->cur;
	size_t n = 0, k = 20, nf = g->nfrontends ? g->nfrontends : 1;
	struct climit_row *tmp;
	struct client_row *rows;
	struct timespec ts;

	if (c->args[0] != NULL) {
		char *end;
		long v;

		errno = 0;
		v = strtol(c->args[0], &end, 10);
		if (errno != 0 || *end != '\0' || v < 1 || v > CLIENTS_MAX) {
			evbuffer_add_printf(c->out, "error: N must be 1..%d\n",
			                    CLIENTS_MAX);
			return CTL_DONE;
		}
		k = (size_t)v;
	}
	tmp = calloc(k, sizeof(*tmp));
	rows = calloc(k * nf, sizeof(*rows));
	if (tmp == NULL || rows == NULL) {
		free(tmp);
		free(rows);
		evbuffer_add_printf(c->out, "error: out of memory\n");
		return CTL_DONE;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (size_t f = 0; f < g->nfrontends; f++) {
		const struct frontend *fe = &g->frontends[f];
		size_t got;

		if (fe->climit == NULL)
			continue;
		got = climit_top(fe->climit, tmp, k,
		                 (uint64_t)ts.tv_sec * 1000 +
		                     (uint64_t)ts.tv_nsec / 1000000);
		for (size_t i = 0; i < got; i++, n++) {
			rows[n].row = tmp[i];
			rows[n].frontend = fe->conf->name;
		}
	}
	qsort(rows, n, sizeof(*rows), climit_row_cmp);
	evbuffer_add_printf(c->out, "%-43s  %6s  %6s  %8s  %s\n", "NETWORK",
	                    "CUR", "PERIOD", "REFUSED", "FRONTEND");
	for (size_t i = 0; i < n && i < k; i++)
		evbuffer_add_printf(
		    c->out, "%-43s  %6u  %6u  %8llu  %s\n", rows[i].row.net,
		    rows[i].row.cur, rows[i].row.in_period,
		    (unsigned long long)rows[i].row.refused, rows[i].frontend);
	free(tmp);
	free(rows);
	return CTL_DONE;
}

static void
emit_line(const char *line, void *arg)
{
	evbuffer_add(arg, line, strlen(line));
}

static enum ctl_answer
cmd_show_health(const struct ctl_call *c)
{
	long k = 20;
	char *end;

	if (c->args[0] != NULL) {
		errno = 0;
		k = strtol(c->args[0], &end, 10);
		if (errno != 0 || *end != '\0' || k < 1 || k > HEALTHLOG_KEEP) {
			evbuffer_add_printf(c->out, "error: N must be 1..%d\n",
			                    HEALTHLOG_KEEP);
			return CTL_DONE;
		}
	}
	if (c->env->hlog != NULL)
		healthlog_tail(c->env->hlog, (size_t)k, emit_line, c->out);
	return CTL_DONE;
}

/* The pool's consequences: events, grants, sessions to close, checks. */
static void
apply(const struct ctl_call *c, struct pool_work *w)
{
	work_apply(c->env->wenv, w);
	if (c->env->mon != NULL && *c->env->mon != NULL)
		monitor_work(*c->env->mon, w);
}

/* The operator's state to the state file, at once
 * (load-balancer.conf(5), OPERATOR STATE). */
static void
save_state(const struct ctl_call *c)
{
	if (c->env->state != NULL)
		opstate_save(c->env->state, c->env->pool);
}

static enum ctl_answer
set_admin(const struct ctl_call *c, enum srv_admin admin)
{
	struct server *srv = find_server(c, c->args[0]);
	struct pool_work w;
	char state[32];

	if (srv == NULL)
		return CTL_DONE;
	pool_work_init(&w);
	pool_set_admin(c->env->pool, srv, admin, state, sizeof(state), &w);
	apply(c, &w);
	save_state(c);
	evbuffer_add_printf(c->out, "ok: %s/%s is %s\n",
	                    backend_conf(server_backend(srv))->name,
	                    server_conf(srv)->name,
	                    admin == SRV_READY ? "READY" : state);
	return CTL_DONE;
}

static enum ctl_answer
cmd_drain(const struct ctl_call *c)
{
	return set_admin(c, SRV_DRAIN);
}

static enum ctl_answer
cmd_disable(const struct ctl_call *c)
{
	return set_admin(c, SRV_MAINT);
}

static enum ctl_answer
cmd_enable(const struct ctl_call *c)
{
	return set_admin(c, SRV_READY);
}

static enum ctl_answer
cmd_set_weight(const struct ctl_call *c)
{
	struct server *srv;
	struct pool_work w;
	char *end;
	long v;
	int old;

	errno = 0;
	v = strtol(c->args[1], &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > LB_WEIGHT_MAX) {
		evbuffer_add_printf(c->out,
		                    "error: weight must be 0..%d, not '%s'\n",
		                    LB_WEIGHT_MAX, c->args[1]);
		return CTL_DONE;
	}
	if ((srv = find_server(c, c->args[0])) == NULL)
		return CTL_DONE;
	pool_work_init(&w);
	old = pool_set_weight(c->env->pool, srv, (int)v, &w);
	apply(c, &w);
	save_state(c);
	evbuffer_add_printf(c->out, "ok: %s/%s weight %ld (was %d)\n",
	                    backend_conf(server_backend(srv))->name,
	                    server_conf(srv)->name, v, old);
	return CTL_DONE;
}

static enum ctl_answer
cmd_shutdown_sessions(const struct ctl_call *c)
{
	struct server *srv = find_server(c, c->args[0]);
	struct pool_snap snap;
	unsigned k = 0;

	if (srv == NULL)
		return CTL_DONE;
	/* The sessions holding a slot of it now: every worker closes its
	 * own (one pass over its list), after this reply is written. */
	if (pool_snapshot(c->env->pool, &snap) == 0) {
		const struct pool_snap_backend *be =
		    &snap.backends[backend_index(server_backend(srv))];

		k = be->servers[server_index(srv)].cur;
		pool_snap_free(&snap);
	}
	if (c->env->workers != NULL &&
	    workers_close_server(c->env->workers, srv, END_SHUTDOWN) < 0) {
		evbuffer_add_printf(c->out, "error: out of memory\n");
		return CTL_DONE;
	}
	evbuffer_add_printf(c->out, "ok: closed %u sessions of %s/%s\n", k,
	                    backend_conf(server_backend(srv))->name,
	                    server_conf(srv)->name);
	return CTL_DONE;
}

static void reload_done(void *arg, int rc, const char *msg);

static enum ctl_answer
cmd_reload(const struct ctl_call *c)
{
	struct ctl_client *cl = c->client;

	if (c->env->reload == NULL || cl == NULL) {
		evbuffer_add_printf(c->out,
		                    "error: reload failed: not available "
		                    "here\n");
		return CTL_DONE;
	}
	if ((cl->detail = evbuffer_new()) == NULL) {
		evbuffer_add_printf(c->out, "error: out of memory\n");
		return CTL_DONE;
	}
	cl->pending = true;
	cl->starting = true;
	reload_request(c->env->reload, cl->detail, reload_done, cl);
	cl->starting = false;
	return cl->pending ? CTL_PENDING : CTL_DONE;
}

static void
ready_problem(void *arg, const struct cfg_backend *be)
{
	evbuffer_add_printf(arg, "error: backend %s has no server UP\n",
	                    be->name);
}

static enum ctl_answer
cmd_check(const struct ctl_call *c)
{
	size_t problems = 0;

	/* The same rule as /health: not stopping, and every backend has a
	 * server that takes sessions. */
	if (atomic_load(&c->env->cnt->stopping)) {
		evbuffer_add_printf(c->out, "error: the daemon is stopping\n");
		problems++;
	}
	problems += pool_ready(c->env->pool, ready_problem, c->out);
	if (problems == 0)
		evbuffer_add_printf(c->out, "ok\n");
	return CTL_DONE;
}

static enum ctl_answer cmd_help(const struct ctl_call *c);

/* The commands: their fixed words, how many arguments follow (min..max),
 * the usage and the help text. */
static const struct ctl_cmd {
	const char *words[2];
	int min_args, max_args;
	const char *usage, *help;
	enum ctl_answer (*run)(const struct ctl_call *c);
} commands[] = {
    {{"show", "servers"},
     0,
     0,
     "show servers",
     "one row per server",
     cmd_show_servers},
    {{"show", "info"},
     0,
     0,
     "show info",
     "process and session counters",
     cmd_show_info},
    {{"show", "health"},
     0,
     1,
     "show health [N]",
     "the last N health events (default 20)",
     cmd_show_health},
    {{"show", "clients"},
     0,
     1,
     "show clients [N]",
     "the N busiest client networks (default 20)",
     cmd_show_clients},
    {{"drain", NULL},
     1,
     1,
     "drain BACKEND/SERVER",
     "no new sessions, checks go on",
     cmd_drain},
    {{"disable", NULL},
     1,
     1,
     "disable BACKEND/SERVER",
     "maintenance: no sessions, no checks",
     cmd_disable},
    {{"enable", NULL},
     1,
     1,
     "enable BACKEND/SERVER",
     "back to normal",
     cmd_enable},
    {{"set", "weight"},
     2,
     2,
     "set weight BACKEND/SERVER N",
     "weight 0..256",
     cmd_set_weight},
    {{"shutdown", "sessions"},
     1,
     1,
     "shutdown sessions BACKEND/SERVER",
     "close the server's sessions",
     cmd_shutdown_sessions},
    {{"reload", NULL}, 0, 0, "reload", "re-read the configuration", cmd_reload},
    {{"check", NULL},
     0,
     0,
     "check",
     "ok when every backend has a server UP",
     cmd_check},
    {{"help", NULL}, 0, 0, NULL, NULL, cmd_help},
};

static enum ctl_answer
cmd_help(const struct ctl_call *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].usage != NULL)
			evbuffer_add_printf(c->out, "%-35s%s\n",
			                    commands[i].usage,
			                    commands[i].help);
	return CTL_DONE;
}

/* Split line into at most CTL_WORDS words (modified in place). */
static int
split(char *line, char **w, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t\r", &save); t != NULL;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return -1;
		w[n++] = t;
	}
	return n;
}

static enum ctl_answer
execute(const struct ctl_env *env, char *line, struct evbuffer *out,
        struct ctl_client *client)
{
	char *w[CTL_WORDS + 1];
	int n = split(line, w, CTL_WORDS);

	if (n < 0) {
		evbuffer_add_printf(out, "error: too many words\n");
		return CTL_DONE;
	}
	if (n == 0) {
		evbuffer_add_printf(out, "error: empty command (try help)\n");
		return CTL_DONE;
	}
	w[n] = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct ctl_cmd *cmd = &commands[i];
		int fixed = cmd->words[1] != NULL ? 2 : 1;
		struct ctl_call call = {env, w + fixed, out, client};

		if (n < fixed || n - fixed < cmd->min_args ||
		    n - fixed > cmd->max_args ||
		    strcmp(w[0], cmd->words[0]) != 0 ||
		    (fixed == 2 && strcmp(w[1], cmd->words[1]) != 0))
			continue;
		return cmd->run(&call);
	}
	evbuffer_add_printf(out, "error: unknown command '%s' (try help)\n",
	                    w[0]);
	return CTL_DONE;
}

void
ctl_execute(const struct ctl_env *env, const char *line, struct evbuffer *out)
{
	char buf[CTL_LINE_MAX + 1];

	snprintf(buf, sizeof(buf), "%s", line);
	(void)execute(env, buf, out, NULL);
	evbuffer_add(out, "\n", 1);
}

/* --- connections -------------------------------------------------------- */

static void client_read_cb(struct bufferevent *bev, void *arg);

static void
client_free(struct ctl_client *c)
{
	if (c->took_socks) {
		log_warnx("takeover: the new daemon went away without "
		          "serving; we go on serving");
		c->ctl->handing = false;
	}
	if (c->pending && c->ctl->env->reload != NULL)
		reload_forget(c->ctl->env->reload, c);
	if (c->detail != NULL)
		evbuffer_free(c->detail);
	c->ctl->nclients--;
	LIST_REMOVE(c, entry);
	bufferevent_free(c->bev);
	free(c);
}

/* The reload's answer: the summary first (lbctl reads "error: " there),
 * then each configuration message; then the commands that waited. */
static void
reload_done(void *arg, int rc, const char *msg)
{
	struct ctl_client *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "%s: %s\n", rc == 0 ? "ok" : "error", msg);
	if (c->detail != NULL) {
		evbuffer_add_buffer(out, c->detail);
		evbuffer_free(c->detail);
		c->detail = NULL;
	}
	c->pending = false;
	if (c->starting)
		return; /* answered at once: the command loop goes on */
	evbuffer_add(out, "\n", 1);
	if (!c->closing) {
		bufferevent_enable(c->bev, EV_READ);
		client_read_cb(c->bev, c);
	}
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;

	if (c->closing && !c->pending) {
		client_free(c);
		return;
	}
	if (!c->pending && !c->closing)
		bufferevent_enable(bev, EV_READ);
}

/* "_getsocks": a new daemon takes our listening sockets (takeover.h).
 * Written straight to the socket: the descriptors cannot go through the
 * bufferevent, so nothing may be queued before them. */
static void
give_socks(struct ctl_client *c)
{
	const struct ctl_env *env = c->ctl->env;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct gen *g = *env->cur;
	int fds[SOCK_INHERIT_MAX];
	size_t n = 0;
	pid_t pid = takeover_peer_pid(bufferevent_getfd(c->bev));

	if (env->pidfile == NULL || atomic_load(&env->cnt->stopping) ||
	    c->ctl->handing || c->ctl->handed) {
		evbuffer_add_printf(
		    out, "error: %s\n\n",
		    env->pidfile == NULL ? "takeover not available here"
		    : c->ctl->handing    ? "another takeover is in progress"
		                         : "the daemon is stopping");
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		evbuffer_add_printf(out, "error: _getsocks must come alone, "
		                         "after every reply was read\n\n");
		return;
	}
	for (size_t i = 0; i < g->nfrontends; i++)
		for (size_t j = 0; j < g->frontends[i].nlisteners; j++) {
			int fd = g->frontends[i].listeners[j].sock;

			if (fd >= 0 && n < SOCK_INHERIT_MAX)
				fds[n++] = fd;
		}
	if (env->stats_sock >= 0 && n < SOCK_INHERIT_MAX)
		fds[n++] = env->stats_sock;
	if (takeover_send(bufferevent_getfd(c->bev), fds, n) < 0) {
		log_warn("takeover: cannot send the listening sockets to pid "
		         "%ld",
		         (long)pid);
		/* Its EOF ends the connection (client_event_cb). */
		(void)shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
		return;
	}
	c->took_socks = true;
	c->ctl->handing = true;
	log_info("takeover: pid %ld has our %zu listening sockets; we serve "
	         "until it says it does",
	         (long)pid, n);
}

/* "_takeover_done": the new daemon serves; we stop as on SIGTERM. */
static void
hand_over(struct ctl_client *c)
{
	const struct ctl_env *env = c->ctl->env;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	pid_t pid = takeover_peer_pid(bufferevent_getfd(c->bev));

	char b;

	if (!c->took_socks) {
		evbuffer_add_printf(out, "error: _getsocks first\n\n");
		return;
	}
	c->took_socks = false;
	c->ctl->handing = false;
	/* A new daemon that gave up waiting for our answer has closed the
	 * connection and exited: then we go on serving. */
	if (recv(bufferevent_getfd(c->bev), &b, 1, MSG_PEEK | MSG_DONTWAIT) ==
	    0) {
		log_warnx("takeover: pid %ld went away before our answer; we "
		          "go on serving",
		          (long)pid);
		return;
	}
	/* The pidfile is the new daemon's from now on; we stop as on
	 * SIGTERM, and the main thread does the rest (our copies of the
	 * sockets close, the new daemon's stay). */
	c->ctl->handed = true;
	log_info("takeover: pid %ld serves now; stopping", (long)pid);
	pidfile_release(atomic_load(env->pidfile));
	if (kill(getpid(), SIGTERM) < 0)
		log_warn("takeover: kill(SIGTERM)");
	evbuffer_add_printf(out, "ok: pid %ld stops accepting\n\n",
	                    (long)getpid());
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line;
	size_t n;

	while (!c->pending &&
	       (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		if (n > CTL_LINE_MAX)
			evbuffer_add_printf(out,
			                    "error: command longer than %d "
			                    "bytes\n\n",
			                    CTL_LINE_MAX);
		else if (memchr(line, '\0', n) != NULL)
			evbuffer_add_printf(out,
			                    "error: NUL byte in command\n\n");
		else if (strcmp(line, "_getsocks") == 0)
			give_socks(c);
		else if (strcmp(line, "_takeover_done") == 0)
			hand_over(c);
		else if (execute(c->ctl->env, line, out, c) == CTL_PENDING) {
			/* Nothing more until its answer (replies stay in
			 * order). */
			free(line);
			bufferevent_disable(bev, EV_READ);
			return;
		} else
			evbuffer_add(out, "\n", 1);
		free(line);
		if (evbuffer_get_length(out) > CTL_REPLY_MAX) {
			/* The client does not read: wait for the output. */
			bufferevent_disable(bev, EV_READ);
			return;
		}
	}
	if (!c->pending && evbuffer_get_length(in) > CTL_LINE_MAX) {
		evbuffer_add_printf(out,
		                    "error: command longer than %d bytes\n\n",
		                    CTL_LINE_MAX);
		c->closing = true;
		bufferevent_disable(bev, EV_READ);
	}
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    (evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
	     c->pending)) {
		/* Half-closed after its command: reply, then close. */
		c->closing = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		client_free(c);
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct ctl *ctl = arg;
	struct ctl_client *c;
	struct timeval idle = {CTL_IDLE_MS / 1000, 0};

	(void)sa;
	(void)salen;
	ctl->paused = false;
	if (ctl->nclients >= CTL_CLIENTS_MAX ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("control socket: too many clients, refusing one");
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->bev = bufferevent_socket_new(evconnlistener_get_base(evl), fd,
	                                BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warn("control socket: bufferevent");
		close(fd);
		free(c);
		return;
	}
	ctl->nclients++;
	LIST_INSERT_HEAD(&ctl->clients, c, entry);
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	                  client_event_cb, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *ctl = arg;

	(void)fd;
	(void)what;
	/* paused stays set until an accept works: one warning a pause. */
	evconnlistener_enable(ctl->evl);
}

/* Without this, libevent warns and retries at once: a level-triggered
 * listener out of descriptors spins at 100% CPU and floods the log. */
static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct ctl *ctl = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {CTL_ACCEPT_PAUSE_MS / 1000, 0};

	errno = err;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		log_warn("control socket %s: accept", ctl->path);
		return;
	}
	if (!ctl->paused)
		log_warn("control socket %s: accept, pausing for %d ms",
		         ctl->path, CTL_ACCEPT_PAUSE_MS);
	ctl->paused = true;
	evconnlistener_disable(evl);
	evtimer_add(ctl->resume, &tv);
}

/* Bind the control socket at path (checked for a live daemon first unless
 * replace).  NULL after logging. */
static struct ctl *
bind_at(const char *path, bool replace)
{
	struct sockaddr_un sun;
	struct stat st;
	struct ctl *ctl;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket %s: path too long", path);
		return NULL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                 0)) < 0) {
		log_warn("control socket %s: socket", path);
		return NULL;
	}
	/* A socket file left by a dead daemon is replaced; a live one
	 * means another daemon uses this path. */
	if (!replace &&
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		log_warnx("control socket %s: another daemon is answering "
		          "there",
		          path);
		close(fd);
		return NULL;
	}
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_warn("control socket %s: cannot remove the old file", path);
		return NULL;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                 0)) < 0) {
		log_warn("control socket %s: socket", path);
		return NULL;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		log_warn("control socket %s: bind", path);
		close(fd);
		return NULL;
	}
	umask(old);
	if (chmod(sun.sun_path, 0600) < 0) {
		log_warn("control socket %s: chmod", sun.sun_path);
		close(fd);
		unlink(sun.sun_path);
		return NULL;
	}
	if (listen(fd, 16) < 0) {
		log_warn("control socket %s: listen", sun.sun_path);
		close(fd);
		unlink(sun.sun_path);
		return NULL;
	}
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL ||
	    (ctl->path = strdup(path)) == NULL) {
		log_warn("control socket");
		free(ctl);
		close(fd);
		unlink(path);
		return NULL;
	}
	ctl->fd = fd;
	if (stat(path, &st) == 0) {
		ctl->dev = st.st_dev;
		ctl->ino = st.st_ino;
	}
	LIST_INIT(&ctl->clients);
	return ctl;
}

struct ctl *
ctl_bind(const char *path, bool replace)
{
	struct ctl *ctl;
	char *tmp;

	if (!replace)
		return bind_at(path, false);
	/* A takeover: the running daemon keeps its socket file until we
	 * serve (ctl_commit), so that a start that fails leaves it
	 * reachable. */
	if (asprintf(&tmp, "%s.new", path) < 0) {
		log_warn("control socket %s", path);
		return NULL;
	}
	if ((ctl = bind_at(tmp, false)) == NULL) {
		free(tmp);
		return NULL;
	}
	free(ctl->path);
	ctl->path = xstrdup(path);
	ctl->tmp = tmp;
	return ctl;
}

int
ctl_commit(struct ctl *ctl)
{
	struct stat st;

	if (ctl == NULL || ctl->tmp == NULL)
		return 0;
	if (rename(ctl->tmp, ctl->path) < 0) {
		log_warn("control socket %s: rename %s", ctl->path, ctl->tmp);
		return -1;
	}
	free(ctl->tmp);
	ctl->tmp = NULL;
	if (stat(ctl->path, &st) == 0) {
		ctl->dev = st.st_dev;
		ctl->ino = st.st_ino;
	}
	return 0;
}

int
ctl_start(struct ctl *ctl, struct event_base *base, const struct ctl_env *env)
{
	ctl->env = env;
	ctl->evl = evconnlistener_new(
	    base, accept_cb, ctl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    0, ctl->fd);
	if (ctl->evl == NULL) {
		log_warn("control socket %s", ctl->path);
		return -1;
	}
	ctl->fd = -1;
	if ((ctl->resume = evtimer_new(base, resume_cb, ctl)) == NULL) {
		log_warnx("control socket %s: cannot create a timer",
		          ctl->path);
		return -1;
	}
	evconnlistener_set_error_cb(ctl->evl, accept_error_cb);
	return 0;
}

void
ctl_free(struct ctl *ctl)
{
	struct ctl_client *c;
	struct stat st;

	if (ctl == NULL)
		return;
	/* Connected clients go too (a reload they wait for forgets them). */
	while ((c = LIST_FIRST(&ctl->clients)) != NULL)
		client_free(c);
	if (ctl->evl != NULL)
		evconnlistener_free(ctl->evl);
	if (ctl->resume != NULL)
		event_free(ctl->resume);
	if (ctl->fd >= 0)
		close(ctl->fd);
	/* After a privilege drop or chroot the file may be out of reach:
	 * the next start replaces it.  After a takeover it is the new
	 * daemon's: left alone. */
	if (ctl->tmp != NULL) {
		/* A takeover that did not finish: the old file stays. */
		if (unlink(ctl->tmp) < 0 && errno != ENOENT)
			log_warn("control socket %s: unlink", ctl->tmp);
		free(ctl->tmp);
	} else if (stat(ctl->path, &st) == 0 && st.st_dev == ctl->dev &&
	           st.st_ino == ctl->ino && unlink(ctl->path) < 0 &&
	           errno != ENOENT && errno != EACCES && errno != EPERM)
		log_warn("control socket %s: unlink", ctl->path);
	free(ctl->path);
	free(ctl);
}
