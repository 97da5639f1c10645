/* Health-log report (lbctl(8), HEALTH REPORT; the log format:
 * load-balancer.conf(5), LOGS).
 *
 * Pure functions: parse one log line into an event, feed events to a
 * report for a window [from, to], then print it as text or JSON.  No
 * clock, no globals: the caller passes `now` (the window end). */
#ifndef LB_REPORT_H
#define LB_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest log line read; longer lines are skipped and counted. */
#define REPORT_LINE_MAX 4096
/* Field sizes (with the NUL).  Longer backend, server, address or step
 * values make the line malformed; longer texts are cut with "...". */
#define REPORT_NAME_MAX 128
#define REPORT_STEP_MAX 32
#define REPORT_TEXT_MAX 512
#define REPORT_TIME_MAX 40
/* A flap: an outage that began less than this after the previous
 * outage of the same server ended (with an `up` event). */
#define REPORT_FLAP_GAP_MS (10LL * 60 * 1000)
/* Outages kept per server for the listing (the oldest are dropped and
 * counted; the statistics always cover all of them). */
#define REPORT_OUTAGES_KEEP 200
/* Distinct servers and backends; lines naming more are skipped. */
#define REPORT_SERVERS_MAX 10000
/* Window start meaning "the first event of the log". */
#define REPORT_FROM_FIRST INT64_MIN
/* Largest --since: 365 days, as the daemon's durations. */
#define REPORT_DURATION_MAX_MS (365LL * 24 * 3600 * 1000)

enum report_event_type {
	REV_OTHER = 0, /* unknown event name: tolerated, ignored */
	REV_UP,
	REV_DOWN,
	REV_FAIL,
	REV_DRAIN,
	REV_MAINT,
	REV_READY,
	REV_BACKEND_DOWN,
	REV_BACKEND_UP,
	REV_CERT_EXPIRY,
	REV_START, /* daemon (re)start: every server back to UP/ready */
};

/* One parsed health-log line.  Absent texts are "", absent numbers -1
 * (has_days_left tells whether days_left was given). */
struct report_event {
	int64_t t_ms; /* milliseconds since the epoch, UTC */
	enum report_event_type type;
	char name[REPORT_NAME_MAX]; /* the event= value as written */
	char backend[REPORT_NAME_MAX];
	char server[REPORT_NAME_MAX];
	char addr[REPORT_NAME_MAX];
	char step[REPORT_STEP_MAX];
	int code; /* SMTP reply code 100..599, or -1 */
	char reply[REPORT_TEXT_MAX];
	char reason[REPORT_TEXT_MAX];
	int64_t downtime_s;              /* up: how long it was down, or -1 */
	char not_after[REPORT_TIME_MAX]; /* cert_expiry, as written */
	int64_t not_after_ms;            /* parsed, or REPORT_FROM_FIRST */
	long days_left;
	bool has_days_left;
};

/* "250ms" "5s" "30m" "24h" "7d" or a bare number of milliseconds, at
 * most 365d (the daemon's duration syntax).  Returns 0, or -1 with *err
 * set to a static message. */
int report_parse_duration(const char *text, int64_t *ms, const char **err);
/* Human duration: "0s" "850ms" "45s" "1m06s" "2h03m" "3d04h". */
void report_format_duration(int64_t ms, char *buf, size_t len);

/* Parse one log line (without or with its trailing newline).  Returns 0
 * with *ev filled, or -1 with *err set to a static message for a
 * malformed line (bad timestamp, unterminated quote, no event, missing
 * backend/server, over-long name...).  Unknown events and keys are
 * accepted (ev->type REV_OTHER, keys ignored). */
int report_parse_line(const char *line, struct report_event *ev,
                      const char **err);

/* A failure as logged: step + code + reply, or step + reason. */
struct report_failure {
	int64_t t_ms;
	char step[REPORT_STEP_MAX];
	int code; /* -1 when none */
	char reply[REPORT_TEXT_MAX];
	char reason[REPORT_TEXT_MAX];
};

struct report_outage {
	int64_t start_ms;  /* when the server went DOWN (may precede the
	                      window) */
	int64_t end_ms;    /* -1: ongoing at the window end */
	int64_t window_ms; /* the part inside the window (set when closed or
	                      by report_finish) */
	bool after_maint;  /* still DOWN when maintenance ended */
	struct report_failure why;
};

enum report_admin { RADMIN_READY, RADMIN_DRAIN, RADMIN_MAINT };

struct report_server {
	char backend[REPORT_NAME_MAX];
	char server[REPORT_NAME_MAX];
	char addr[REPORT_NAME_MAX];
	bool configured;              /* declared by report_declare_server */
	enum report_admin conf_admin; /* its state at a daemon start */
	bool has_events;              /* an event of its own was read */
	/* state as events are replayed; after report_finish: at the end */
	bool down;
	enum report_admin admin;
	int64_t mark_ms;    /* time accounted up to */
	bool seen_down;     /* a `down` event was read for this server */
	int64_t last_up_ms; /* end of the previous outage (flaps), or -1 */
	struct report_failure down_why; /* reason of the current DOWN */
	/* statistics over the window */
	unsigned long down_events;
	unsigned long flaps;
	int64_t downtime_ms;
	int64_t longest_ms;
	int64_t maint_ms;
	bool has_failure;
	struct report_failure last_failure;
	bool has_cert;
	char cert_not_after[REPORT_TIME_MAX];
	int64_t cert_not_after_ms; /* REPORT_FROM_FIRST when unparsable */
	long cert_days_left;       /* logged value; see report_cert_days */
	bool cert_has_days;
	/* outages (ring of the last REPORT_OUTAGES_KEEP) */
	struct report_outage *outages;
	size_t n_outages; /* kept */
	size_t first;     /* ring index of the oldest kept */
	size_t cap;       /* allocated */
	unsigned long outages_total;
	bool in_outage; /* the newest kept outage is open */
};

struct report_backend {
	char name[REPORT_NAME_MAX];
	bool down; /* no server left */
	int64_t down_since;
	int64_t mark_ms;
	unsigned long down_events;
	int64_t no_server_ms;
	int64_t longest_ms;
	int64_t cur_ms; /* the current period's part inside the window */
};

struct report {
	int64_t from_ms; /* REPORT_FROM_FIRST until the first event */
	int64_t to_ms;
	bool finished;
	unsigned long lines;     /* lines read */
	unsigned long events;    /* events used */
	unsigned long malformed; /* malformed lines skipped */
	unsigned long too_long;  /* over-long lines skipped */
	unsigned long future;    /* events after the window end, ignored */
	unsigned long overflow;  /* lines for servers past REPORT_SERVERS_MAX */
	struct report_server *servers;
	size_t n_servers, cap_servers;
	struct report_backend *backends;
	size_t n_backends, cap_backends;
	size_t n_configured; /* servers declared from the configuration */
	/* The configuration they come from, named in the output (the
	 * caller's string, set before printing; NULL: none was read). */
	const char *config;
};

/* from_ms: window start, or REPORT_FROM_FIRST (first event); to_ms: end
 * (now). */
void report_init(struct report *r, int64_t from_ms, int64_t to_ms);
void report_free(struct report *r);
/* Declare a server of the configuration, before the first event, so
 * that it is listed even when no line of the log names it: then it was
 * UP throughout, in the admin state given (RADMIN_MAINT for a server
 * disabled in the file, else RADMIN_READY) from the window start on and
 * again after each daemon `start`.  Its backend is listed too.  A
 * server declared twice keeps the first declaration.  Returns 0, or -1
 * with errno ENOMEM, ENOSPC (past REPORT_SERVERS_MAX) or ENAMETOOLONG (a
 * name of REPORT_NAME_MAX bytes or more: the log's lines naming it are
 * malformed too). */
int report_declare_server(struct report *r, const char *backend,
                          const char *server, const char *addr,
                          enum report_admin admin);
/* Feed one event (events in log order).  Returns 0, or -1 when out of
 * memory (errno set). */
int report_add(struct report *r, const struct report_event *ev);
/* Parse and feed one line; malformed lines are counted, not fatal.
 * Returns 0, or -1 when out of memory. */
int report_add_line(struct report *r, const char *line);
/* Read a whole log with bounded lines (over-long ones skipped and
 * counted).  Returns 0, or -1 on a read error or out of memory (errno
 * set). */
int report_read(struct report *r, FILE *fp);
/* Close the window: account up to to_ms, sort servers by backend then
 * server name and backends by name.  Call once, before printing. */
void report_finish(struct report *r);

/* Lookups (NULL when unknown). */
const struct report_server *report_find_server(const struct report *r,
                                               const char *backend,
                                               const char *server);
const struct report_backend *report_find_backend(const struct report *r,
                                                 const char *name);
/* The i-th kept outage, oldest first (i < s->n_outages). */
const struct report_outage *report_outage(const struct report_server *s,
                                          size_t i);
/* Availability over the window in percent: time not DOWN (maintenance
 * counts as not DOWN) / window length. */
double report_availability(const struct report *r,
                           const struct report_server *s);
/* Days from the window end to the certificate's not_after (floor), else
 * the logged days_left; returns false when there is no expiry. */
bool report_cert_days(const struct report *r, const struct report_server *s,
                      long *days);
/* "helo: 421 4.7.0 try again later", "connect: connection refused". */
void report_format_failure(const struct report_failure *f, char *buf,
                           size_t len);

/* Print a finished report.  source names the log in the text header
 * (may be NULL).  Return 0, or -1 on a write error (errno set). */
int report_print_text(const struct report *r, const char *source, FILE *fp);
int report_print_json(const struct report *r, FILE *fp);
/* A JSON string literal with its quotes: '"', '\\' and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD. */
void report_json_string(FILE *fp, const char *s);

#endif
