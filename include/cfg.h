/* The configuration (load-balancer.conf(5)): libconfig file -> const
 * struct cfg.  cfg.c validates everything and never touches libevent or sockets
 * (host names are resolved with getaddrinfo). */
#ifndef LB_CFG_H
#define LB_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "climit.h"

enum lb_algo { LB_ROUNDROBIN, LB_LEASTCONN, LB_SOURCE };
enum proxy_proto { PP_NONE, PP_V1, PP_V2 };
enum marked_down { MD_NONE, MD_SHUTDOWN_SESSIONS };
enum check_type { CHECK_TCP, CHECK_SMTP };
enum source_mode { SRC_DEFAULT, SRC_CLIENTIP, SRC_ADDR };

/* global.stats_listen when the file does not say (load-balancer.conf(5),
 * GLOBAL). */
#define LB_STATS_LISTEN_DEFAULT "127.0.0.1:8404"

struct cfg_addr {
	char *text; /* as written, e.g. "127.0.0.1:2525" */
	struct sockaddr_storage ss;
	socklen_t len;
};

struct cfg_check {
	enum check_type type;
	char *helo;
	bool ehlo;
	bool starttls;
	bool tls_verify;
	char *tls_ca_file;
	char *tls_servername;
	uint64_t cert_expiry_warn_ms;
	uint64_t interval_ms;
	uint64_t fastinter_ms;
	uint64_t downinter_ms;
	uint64_t timeout_ms;
	int rise;
	int fall;
	int line;
};

/* backends[].agent (load-balancer.conf(5), AGENT CHECK). */
struct cfg_agent {
	int port; /* 0 = off (a server may set its own agent_port) */
	uint64_t interval_ms;
	char *send; /* bytes sent before reading the answer; "" = none */
	size_t send_len;
	uint64_t timeout_ms;
	int line;
};

struct cfg_server {
	char *name;
	struct cfg_addr addr;
	/* The agent check: agent_port as written (0 = the backend's), and
	 * the address it connects to (the server's host on the effective
	 * port; agent_addr.len 0 = no agent check). */
	int agent_port;
	struct cfg_addr agent_addr;
	int weight;
	int maxconn; /* 0 = unlimited */
	int minconn; /* 0 = off */
	bool check;
	bool backup;
	bool disabled;
	enum proxy_proto proxy_protocol;
	int line;
};

struct cfg_backend {
	char *name;
	enum lb_algo balance;
	uint64_t timeout_connect_ms;
	uint64_t timeout_server_ms;
	uint64_t timeout_queue_ms;
	int retries;
	int fullconn; /* effective value: computed when 0 in the file */
	char *source; /* "" | ADDR | "clientip" */
	enum source_mode source_mode;
	struct sockaddr_storage source_ss; /* SRC_ADDR, port 0 */
	socklen_t source_len;
	enum proxy_proto proxy_protocol;
	enum marked_down on_marked_down;
	bool greeting_gate; /* load-balancer.conf(5), GREETING GATE */
	uint64_t timeout_greeting_ms;
	int error_limit;       /* consecutive live failures -> DOWN; 0 = off */
	uint64_t slowstart_ms; /* SLOW START; 0 = off */
	struct cfg_agent agent;
	bool has_agent; /* some server has an agent check */
	bool has_check;
	struct cfg_check check;
	struct cfg_server *servers;
	size_t nservers;
	int line;
};

/* frontends[].client_limits (load-balancer.conf(5), CLIENT LIMITS). */
struct cfg_client_limits {
	int maxconn; /* concurrent sessions per client network; 0 = off */
	int rate;    /* new sessions per client network per period; 0 = off */
	uint64_t period_ms;
	int prefix4, prefix6;
	char *reply; /* without CRLF; "" = just close */
	struct cidr_list exempt;
	int table_size;
};

struct cfg_frontend {
	char *name;
	struct cfg_addr *binds;
	size_t nbinds;
	bool transparent;
	char *backend_name;
	size_t backend; /* index into cfg.backends */
	uint64_t timeout_client_ms;
	int maxconn; /* 0 = only the global limit */
	int backlog;
	char *unavailable_reply; /* without CRLF; "" = just close */
	struct cfg_client_limits limits;
	struct cidr_list allow; /* empty: every address not denied */
	struct cidr_list deny;
	char *deny_reply; /* without CRLF; "" = just close */
	int line;
};

struct cfg_log {
	bool syslog;
	int facility; /* LOG_LOCAL0 ... */
	char *ident;
	int level; /* LOG_INFO ... */
	bool sessions;
};

struct cfg_global {
	int maxconn;
	bool daemon;
	char *pidfile;
	char *user;
	char *group;
	char *chroot;
	int workers;
	uint64_t grace_ms;
	char *control_socket;    /* "" = none */
	bool control_socket_set; /* written in the file (else the default) */
	struct cfg_log log;
	char *health_log; /* "" = syslog only */
	bool health_log_set;
	char *stats_listen;         /* "" = no HTTP status server */
	bool stats_listen_set;      /* written in the file (else the default) */
	struct cfg_addr stats_addr; /* stats_listen resolved (len 0: none) */
	char *stats_auth;           /* "" or "user:password" */
	char *state_file;           /* OPERATOR STATE; "" = none */
	bool state_file_set;
};

struct cfg {
	char *file;
	struct cfg_global global;
	struct cfg_frontend *frontends;
	size_t nfrontends;
	struct cfg_backend *backends;
	size_t nbackends;
};

/* Errors and warnings, each already formatted as "FILE:LINE: message"
 * (warnings as "FILE:LINE: warning: message"). */
struct cfg_diag {
	char **msgs;
	bool *is_warning;
	int *lines; /* for sorting: messages are listed in line order */
	size_t n;
	size_t nerrors;
	size_t nwarnings;
};

/* Load and validate.  Returns NULL when there is at least one error; every
 * problem found is in diag either way.  name is used in messages when the
 * text does not come from a file. */
struct cfg *cfg_load_file(const char *path, struct cfg_diag *diag);
struct cfg *cfg_load_string(const char *text, const char *name,
                            struct cfg_diag *diag);
void cfg_free(struct cfg *cfg);

void cfg_diag_init(struct cfg_diag *diag);
void cfg_diag_free(struct cfg_diag *diag);

const char *cfg_algo_name(enum lb_algo algo);
/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 (stats_listen without
 * stats_auth). */
bool cfg_is_loopback(const struct sockaddr_storage *ss);
const struct cfg_backend *cfg_find_backend(const struct cfg *cfg,
                                           const char *name);

/* The keys the parser accepts in one group of the file, the very arrays
 * its unknown-key check uses.  group is a path: "top level", "global",
 * "global.log", "frontends", "frontends.client_limits", "backends",
 * "backends.agent", "backends.health_check", "backends.servers"; keys is
 * NULL-terminated.  tests/unit/check_cfgkeys.c compares them with
 * load-balancer.conf(5). */
struct cfg_keyset {
	const char *group;
	const char *const *keys;
};

/* Every group; the array ends with an entry whose group is NULL. */
const struct cfg_keyset *cfg_keysets(void);

#endif
