/* The health log (SPEC 5.1): file + syslog + the last lines in memory. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "healthlog.h"
#include "log.h"

struct healthlog {
	char *path; /* "" = syslog only */
	int fd;
	char *ring[HEALTHLOG_KEEP];
	size_t head; /* next slot */
	size_t count;
};

void
lf_init(struct lf *l)
{
	l->len = 0;
	l->buf[0] = '\0';
}

static bool
needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (; *v; v++)
		if (*v == ' ' || *v == '=' || *v == '"' || *v == '\\' ||
		    (unsigned char)*v < 0x20 || *v == 0x7f)
			return true;
	return false;
}

void
lf_add(struct lf *l, const char *key, const char *value)
{
	char tmp[HEALTHLOG_LINE_MAX];
	size_t n = 0;
	bool q = needs_quotes(value);

	/* Build the whole field first: one that does not fit is dropped
	 * rather than cut, so the line always stays parseable. */
	n = (size_t)snprintf(tmp, sizeof(tmp), " %s=%s", key, q ? "\"" : "");
	if (n >= sizeof(tmp))
		return;
	for (const char *v = value; *v; v++) {
		unsigned char c = (unsigned char)*v;
		size_t need = (c == '"' || c == '\\') ? 2 : 1;

		/* room for this, the closing quote if any and the NUL */
		if (n + need + (q ? 1 : 0) + 1 > sizeof(tmp))
			return; /* value too long for any line */
		if (need == 2)
			tmp[n++] = '\\';
		tmp[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	if (q)
		tmp[n++] = '"';
	tmp[n] = '\0';
	if (l->len + n >= sizeof(l->buf))
		return;
	memcpy(l->buf + l->len, tmp, n + 1);
	l->len += n;
}

void
lf_addf(struct lf *l, const char *key, const char *fmt, ...)
{
	char v[HEALTHLOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	lf_add(l, key, v);
}

void
format_rfc3339_ms(const struct timeval *tv, char *buf, size_t len)
{
	struct tm tm;
	time_t t = tv->tv_sec;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (long)(tv->tv_usec / 1000));
}

static int
open_file(const char *path, char *err, size_t errlen)
{
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT) {
		/* Create the log directory itself (one level), as a package
		 * would: /var/log/load-balancer. */
		char dir[4096];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0750) == 0 || errno == EEXIST)
				fd = open(path,
				          O_WRONLY | O_APPEND | O_CREAT |
				              O_CLOEXEC,
				          0640);
			else
				errno = ENOENT;
		}
	}
	if (fd < 0)
		snprintf(err, errlen, "cannot open health log %s: %s", path,
		         strerror(errno));
	return fd;
}

struct healthlog *
healthlog_open(const char *path, char *err, size_t errlen)
{
	struct healthlog *hl;

	if ((hl = calloc(1, sizeof(*hl))) == NULL ||
	    (hl->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "health log: %s", strerror(errno));
		free(hl);
		return NULL;
	}
	hl->fd = -1;
	if (path[0] != '\0' && (hl->fd = open_file(path, err, errlen)) < 0) {
		free(hl->path);
		free(hl);
		return NULL;
	}
	return hl;
}

int
healthlog_reopen(struct healthlog *hl)
{
	char err[512];
	int fd;

	if (hl == NULL || hl->path[0] == '\0')
		return 0;
	if ((fd = open_file(hl->path, err, sizeof(err))) < 0) {
		log_warnx("%s (still writing to the old file)", err);
		return -1;
	}
	if (hl->fd >= 0)
		close(hl->fd);
	hl->fd = fd;
	return 0;
}

void
healthlog_write(struct healthlog *hl, const struct lf *l)
{
	char line[HEALTHLOG_LINE_MAX + 32];
	struct timeval tv;
	int n;

	gettimeofday(&tv, NULL);
	format_rfc3339_ms(&tv, line, sizeof(line));
	n = snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n",
	             l->buf);
	if (n < 0)
		return;
	n = (int)strlen(line);
	if (hl->fd >= 0 && write(hl->fd, line, (size_t)n) != n)
		log_warn("health log %s: write", hl->path);
	/* syslog gets the fields; it stamps its own time. */
	log_event(strstr(l->buf, "event=down") != NULL ||
	                  strstr(l->buf, "event=backend_down") != NULL
	              ? LOG_WARNING
	              : LOG_NOTICE,
	          "%s", l->buf + (l->buf[0] == ' '));
	free(hl->ring[hl->head]);
	hl->ring[hl->head] = strdup(line);
	hl->head = (hl->head + 1) % HEALTHLOG_KEEP;
	if (hl->count < HEALTHLOG_KEEP)
		hl->count++;
}

size_t
healthlog_tail(const struct healthlog *hl, size_t n,
               void (*emit)(const char *line, void *arg), void *arg)
{
	size_t start, i, k = 0;

	if (n == 0 || n > hl->count)
		n = hl->count;
	start = (hl->head + HEALTHLOG_KEEP - n) % HEALTHLOG_KEEP;
	for (i = 0; i < n; i++) {
		const char *line = hl->ring[(start + i) % HEALTHLOG_KEEP];
		if (line != NULL) {
			emit(line, arg);
			k++;
		}
	}
	return k;
}

void
healthlog_close(struct healthlog *hl)
{
	if (hl == NULL)
		return;
	if (hl->fd >= 0)
		close(hl->fd);
	for (size_t i = 0; i < HEALTHLOG_KEEP; i++)
		free(hl->ring[i]);
	free(hl->path);
	free(hl);
}
