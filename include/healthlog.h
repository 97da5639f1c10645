/* The health log (load-balancer.conf(5), LOGS): logfmt lines appended to
 * global.health_log and sent to syslog; the last lines are kept for
 * `show health`. */
#ifndef LB_HEALTHLOG_H
#define LB_HEALTHLOG_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/time.h>

#define HEALTHLOG_LINE_MAX 2048
#define HEALTHLOG_KEEP 1000 /* lines kept in memory for `show health` */

/* A logfmt line under construction. */
struct lf {
	char buf[HEALTHLOG_LINE_MAX];
	size_t len;
};

void lf_init(struct lf *l);
/* " key=value"; the value is double-quoted when empty or when it holds a
 * space, '=', '"' or '\\' ("\"" and "\\\\" escaped; control characters
 * become spaces). */
void lf_add(struct lf *l, const char *key, const char *value);
void lf_addf(struct lf *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct healthlog;
/* path "" = syslog only.  Returns NULL with err filled when the file
 * cannot be opened. */
struct healthlog *healthlog_open(const char *path, char *err, size_t errlen);
/* SIGUSR1 (logrotate): reopen the file.  Returns 0 or -1 (logged). */
int healthlog_reopen(struct healthlog *hl);
/* Timestamp + l's fields, appended to the file and sent to syslog. */
void healthlog_write(struct healthlog *hl, const struct lf *l);
/* The last n lines (n = 0: all kept), oldest first, each with '\n'. */
size_t healthlog_tail(struct healthlog *hl, size_t n,
                      void (*emit)(const char *line, void *arg), void *arg);
void healthlog_close(struct healthlog *hl);

#endif
