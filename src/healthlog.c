/* The health log (load-balancer.conf(5), LOGS): file + syslog + the last
 * lines in memory.
 *
 * Written from several threads (checks and lbctl on the control thread,
 * the start event on the main one): its own small lock orders the lines
 * in the file and guards the ring of last lines.  Nothing else is done
 * under it: syslog and the readers' work happen outside. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "rfc3339.h"

struct healthlog {
	pthread_mutex_t lock;
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
	if (pthread_mutex_init(&hl->lock, NULL) != 0) {
		snprintf(err, errlen, "health log: cannot create its lock");
		if (hl->fd >= 0)
			close(hl->fd);
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
	pthread_mutex_lock(&hl->lock);
	if (hl->fd >= 0)
		close(hl->fd);
	hl->fd = fd;
	pthread_mutex_unlock(&hl->lock);
	return 0;
}

void
healthlog_write(struct healthlog *hl, const struct lf *l)
{
	char line[HEALTHLOG_LINE_MAX + 32];
	struct timeval tv;
	char *copy, *old;
	int n;

	gettimeofday(&tv, NULL);
	rfc3339_format((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, true,
	               line, sizeof(line));
	n = snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n",
	             l->buf);
	if (n < 0)
		return;
	n = (int)strlen(line);
	copy = strdup(line);
	pthread_mutex_lock(&hl->lock);
	if (hl->fd >= 0 && write(hl->fd, line, (size_t)n) != n) {
		int e = errno;

		pthread_mutex_unlock(&hl->lock);
		errno = e;
		log_warn("health log %s: write", hl->path);
		pthread_mutex_lock(&hl->lock);
	}
	old = hl->ring[hl->head];
	hl->ring[hl->head] = copy;
	hl->head = (hl->head + 1) % HEALTHLOG_KEEP;
	if (hl->count < HEALTHLOG_KEEP)
		hl->count++;
	pthread_mutex_unlock(&hl->lock);
	free(old);
	/* syslog gets the fields; it stamps its own time. */
	log_event(strstr(l->buf, "event=down") != NULL ||
	                  strstr(l->buf, "event=backend_down") != NULL
	              ? LOG_WARNING
	              : LOG_NOTICE,
	          "%s", l->buf + (l->buf[0] == ' '));
}

size_t
healthlog_tail(struct healthlog *hl, size_t n,
               void (*emit)(const char *line, void *arg), void *arg)
{
	size_t start, i, k = 0;
	char **copy;

	/* Copied under the lock, handed out after it. */
	pthread_mutex_lock(&hl->lock);
	if (n == 0 || n > hl->count)
		n = hl->count;
	if ((copy = calloc(n ? n : 1, sizeof(*copy))) == NULL) {
		pthread_mutex_unlock(&hl->lock);
		return 0;
	}
	start = (hl->head + HEALTHLOG_KEEP - n) % HEALTHLOG_KEEP;
	for (i = 0; i < n; i++) {
		const char *line = hl->ring[(start + i) % HEALTHLOG_KEEP];

		if (line != NULL && (copy[k] = strdup(line)) != NULL)
			k++;
	}
	pthread_mutex_unlock(&hl->lock);
	for (i = 0; i < k; i++) {
		emit(copy[i], arg);
		free(copy[i]);
	}
	free(copy);
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
	pthread_mutex_destroy(&hl->lock);
	free(hl->path);
	free(hl);
}
