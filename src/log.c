/* Logging to syslog and/or stderr (relayd style). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <event2/event.h>

#include "common.h"
#include "log.h"

/* The one piece of process-wide mutable state outside struct rt: like
 * syslog's own openlog() state, it is set at start-up and on reload (by
 * the main thread) while every thread logs: the settings are atomics, and
 * the ident handed to openlog() alternates between two buffers, so that
 * a syslog() call running on another thread never sees it change (glibc
 * holds its own lock across openlog() and syslog()). */
static struct {
	const char *progname;
	atomic_bool use_syslog;
	atomic_int
	    stderr_max; /* echo to stderr up to this priority; -1 never */
	atomic_int level;
	char ident[2][128]; /* openlog() keeps the pointer: our own copies */
	int cur;            /* the ident in use */
} lg = {.progname = LB_PROGRAM,
        .stderr_max = LOG_DEBUG,
        .level = LOG_INFO,
        .ident = {LB_PROGRAM, LB_PROGRAM}};

/* While set, the warnings of the thread that set it are also handed to
 * tap (a reload's details for lbctl): per thread, so that a worker
 * thread's relay warning never lands in the control thread's reply. */
static _Thread_local struct {
	void (*fn)(const char *line, void *arg);
	void *arg;
} lg_tap;

void
log_init(const char *progname)
{
	lg.progname = progname;
	atomic_store(&lg.use_syslog, false);
	atomic_store(&lg.stderr_max, LOG_DEBUG);
	atomic_store(&lg.level, LOG_INFO);
}

void
log_configure(bool use_syslog, int facility, const char *ident, int level,
              bool to_stderr)
{
	int next = 1 - lg.cur;

	/* openlog() on an open connection only changes ident and facility:
	 * no closelog(), which inside a chroot could not reconnect. */
	if (atomic_load(&lg.use_syslog) && !use_syslog) {
		atomic_store(&lg.use_syslog, false);
		closelog();
	}
	atomic_store(&lg.stderr_max, to_stderr ? LOG_DEBUG : -1);
	atomic_store(&lg.level, level);
	snprintf(lg.ident[next], sizeof(lg.ident[next]), "%s", ident);
	lg.cur = next;
	if (use_syslog) {
		openlog(lg.ident[next], LOG_PID | LOG_NDELAY, facility);
		atomic_store(&lg.use_syslog, true);
	}
}

void
log_stderr_max(int prio)
{
	atomic_store(&lg.stderr_max, prio);
}

void
log_close(void)
{
	if (atomic_exchange(&lg.use_syslog, false))
		closelog();
}

/* errnum != 0 appends ": strerror(errnum)". */
static void vlog(int prio, bool prefix, int errnum, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void
vlog(int prio, bool prefix, int errnum, const char *fmt, va_list ap)
{
	char buf[2048];
	int n;

	if (prio > atomic_load_explicit(&lg.level, memory_order_relaxed))
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if (errnum != 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s",
		         strerror(errnum));
	if (prio <=
	    atomic_load_explicit(&lg.stderr_max, memory_order_relaxed)) {
		if (prefix)
			fprintf(stderr, "%s: %s\n", lg.progname, buf);
		else
			fprintf(stderr, "%s\n", buf);
		fflush(stderr);
	}
	if (atomic_load_explicit(&lg.use_syslog, memory_order_relaxed))
		syslog(prio, "%s", buf);
	if (lg_tap.fn != NULL && prio <= LOG_WARNING)
		lg_tap.fn(buf, lg_tap.arg);
}

void
log_set_tap(void (*tap)(const char *line, void *arg), void *arg)
{
	lg_tap.fn = tap;
	lg_tap.arg = arg;
}

#define LOG_FN(fn, prio, prefix, with_errno)                                   \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		int saved = errno;                                             \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(prio, prefix, with_errno ? saved : 0, fmt, ap);           \
		va_end(ap);                                                    \
		errno = saved;                                                 \
	}

LOG_FN(log_warn, LOG_WARNING, true, true)
LOG_FN(log_warnx, LOG_WARNING, true, false)
LOG_FN(log_info, LOG_INFO, true, false)
LOG_FN(log_debug, LOG_DEBUG, true, false)
LOG_FN(log_session, LOG_INFO, false, false)

void
log_event(int prio, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, false, 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, true, saved, fmt, ap);
	va_end(ap);
	exit(3);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, true, 0, fmt, ap);
	va_end(ap);
	exit(3);
}

static const struct {
	const char *name;
	int value;
} facilities[] = {
    {"kern", LOG_KERN},     {"user", LOG_USER},         {"mail", LOG_MAIL},
    {"daemon", LOG_DAEMON}, {"auth", LOG_AUTH},         {"syslog", LOG_SYSLOG},
    {"lpr", LOG_LPR},       {"news", LOG_NEWS},         {"uucp", LOG_UUCP},
    {"cron", LOG_CRON},     {"authpriv", LOG_AUTHPRIV}, {"ftp", LOG_FTP},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},     {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

static const struct {
	const char *name;
	int value;
} levels[] = {
    {"emerg", LOG_EMERG},   {"alert", LOG_ALERT}, {"crit", LOG_CRIT},
    {"err", LOG_ERR},       {"error", LOG_ERR},   {"warning", LOG_WARNING},
    {"notice", LOG_NOTICE}, {"info", LOG_INFO},   {"debug", LOG_DEBUG},
};

int
log_facility_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(facilities); i++)
		if (strcmp(facilities[i].name, name) == 0)
			return facilities[i].value;
	return -1;
}

int
log_level_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
		if (strcmp(levels[i].name, name) == 0)
			return levels[i].value;
	return -1;
}

static void
libevent_log_cb(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

static void
libevent_fatal_cb(int err)
{
	fatalx("libevent fatal error %d", err);
}

void
log_hook_libevent(void)
{
	event_set_log_callback(libevent_log_cb);
	event_set_fatal_callback(libevent_fatal_cb);
}
