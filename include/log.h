/* Logging: syslog and/or stderr.  The log settings are the one piece of
 * process-wide state outside struct rt, as syslog itself is process-wide. */
#ifndef LB_LOG_H
#define LB_LOG_H

#include <stdbool.h>
#include <stdarg.h>

/* Before the configuration is read everything goes to stderr. */
void log_init(const char *progname);
/* Apply global.log; to_stderr is true in foreground (-F). */
void log_configure(bool use_syslog, int facility, const char *ident, int level,
                   bool to_stderr);
/* Echo to stderr only up to prio (LOG_WARNING: problems only); -1 never. */
void log_stderr_max(int prio);
void log_close(void);
/* Until called again with NULL, hand every warning of the calling thread
 * (the formatted line, without the program name) to tap as well: lets a
 * reload report why it failed to whoever asked for it. */
void log_set_tap(void (*tap)(const char *line, void *arg), void *arg);

/* Printf-style; log_warn appends ": strerror(errno)" and preserves errno. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A session line (load-balancer.conf(5), LOGS): syslog at info, and stderr
 * in foreground. */
void log_session(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A health event (load-balancer.conf(5), LOGS) to syslog at prio, and
 * stderr in foreground. */
void log_event(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Names <-> syslog numbers; -1 when unknown. */
int log_facility_from_name(const char *name);
int log_level_from_name(const char *name);

/* Route libevent's own warnings into our log. */
void log_hook_libevent(void);

#endif
