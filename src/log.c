/* Logging to syslog and/or stderr (relayd style). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <event2/event.h>

#include "common.h"
#include "log.h"

/* The one piece of process-wide mutable state outside struct rt: like
 * syslog's own openlog() state, it is set at start-up and on reload. */
static struct {
	const char *progname;
	bool use_syslog;
	int stderr_max; /* echo to stderr up to this priority; -1 = never */
	int level;
	char ident[128]; /* openlog() keeps the pointer: our own copy */
} lg = {.progname = LB_PROGRAM,
        .stderr_max = LOG_DEBUG,
        .level = LOG_INFO,
        .ident = LB_PROGRAM};

/* While set, the warnings of the thread that set it are also handed to
 * tap (a reload's details for lbctl): per thread, so that a worker
 * thread's relay warning never lands in the main thread's reply. */
static _Thread_local struct {
	void (*fn)(const char *line, void *arg);
	void *arg;
} lg_tap;

void
log_init(const char *progname)
{
	lg.progname = progname;
	lg.use_syslog = false;
	lg.stderr_max = LOG_DEBUG;
	lg.level = LOG_INFO;
}

void
log_configure(bool use_syslog, int facility, const char *ident, int level,
              bool to_stderr)
{
	/* openlog() on an open connection only changes ident and facility:
	 * no closelog(), which inside a chroot could not reconnect. */
	if (lg.use_syslog && !use_syslog)
		closelog();
	lg.use_syslog = use_syslog;
	lg.stderr_max = to_stderr ? LOG_DEBUG : -1;
	lg.level = level;
	snprintf(lg.ident, sizeof(lg.ident), "%s", ident);
	if (use_syslog)
		openlog(lg.ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_stderr_max(int prio)
{
	lg.stderr_max = prio;
}

void
log_close(void)
{
	if (lg.use_syslog)
		closelog();
	lg.use_syslog = false;
}

/* errnum != 0 appends ": strerror(errnum)". */
static void vlog(int prio, bool prefix, int errnum, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void
vlog(int prio, bool prefix, int errnum, const char *fmt, va_list ap)
{
	char buf[2048];
	int n;

	if (prio > lg.level)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if (errnum != 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s",
		         strerror(errnum));
	if (prio <= lg.stderr_max) {
		if (prefix)
			fprintf(stderr, "%s: %s\n", lg.progname, buf);
		else
			fprintf(stderr, "%s\n", buf);
		fflush(stderr);
	}
	if (lg.use_syslog)
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
