/* The health timeline's history (global.stats_listen;
 * load-balancer.conf(5), GLOBAL): the lines the health log keeps in memory
 * that are older than the file's (a rotated log), then the file's tail
 * (read here, with no lock held), drawn on one lane per server of a
 * snapshot. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "history.h"
#include "report.h"
#include "rfc3339.h"
#include "timeline.h"

/* The last HISTORY_FILE_TAIL bytes of the health log, from a line start;
 * NULL when it cannot be read (syslog only, chroot, removed). */
static char *
read_tail(const char *path, size_t *len)
{
	struct stat sb;
	char *buf = NULL, *nl;
	off_t off;
	size_t want, got = 0;
	int fd;

	if (path[0] == '\0')
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		goto fail;
	off =
	    sb.st_size > HISTORY_FILE_TAIL ? sb.st_size - HISTORY_FILE_TAIL : 0;
	want = (size_t)(sb.st_size - off);
	if ((buf = malloc(want + 1)) == NULL)
		goto fail;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break; /* truncated meanwhile */
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (off > 0) {
		/* Started mid-line: skip to the next one. */
		if ((nl = memchr(buf, '\n', got)) == NULL)
			got = 0;
		else {
			got -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, got);
		}
		buf[got] = '\0';
	}
	*len = got;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* Time of a log line (its first field), or INT64_MAX. */
static int64_t
line_time(const char *line)
{
	char ts[REPORT_TIME_MAX];
	size_t n = strcspn(line, " \t\r\n");
	int64_t t;

	if (n == 0 || n >= sizeof(ts))
		return INT64_MAX;
	memcpy(ts, line, n);
	ts[n] = '\0';
	return rfc3339_parse(ts, &t) == 0 ? t : INT64_MAX;
}

struct ring_feed {
	struct timeline *tl;
	int64_t before; /* only lines older than the file's first */
	bool err;
};

static void
ring_line(const char *line, void *arg)
{
	struct ring_feed *f = arg;

	if (!f->err && line_time(line) < f->before &&
	    timeline_add_line(f->tl, line) < 0)
		f->err = true;
}

/* Feed the health history: lines kept in memory that are older than the
 * file's (a rotated log), then the file's tail.  Returns 0 or -1. */
static int
feed_history(const char *path, struct healthlog *hl, struct timeline *tl)
{
	struct ring_feed f = {tl, INT64_MAX, false};
	size_t len = 0;
	char *buf = read_tail(path, &len);
	char *p, *end;

	if (buf != NULL) {
		for (p = buf; p < buf + len && f.before == INT64_MAX;) {
			f.before = line_time(p);
			if ((end = strchr(p, '\n')) == NULL)
				break;
			p = end + 1;
		}
	}
	if (hl != NULL)
		healthlog_tail(hl, 0, ring_line, &f);
	for (p = buf; !f.err && p != NULL && p < buf + len; p = end + 1) {
		if ((end = strchr(p, '\n')) == NULL)
			end = buf + len;
		*end = '\0';
		if (timeline_add_line(tl, p) < 0)
			f.err = true;
	}
	free(buf);
	return f.err ? -1 : 0;
}

enum tl_state
history_state(enum srv_state st)
{
	switch (st) {
	case SRV_STATE_MAINT:
		return TL_MAINT;
	case SRV_STATE_DOWN:
		return TL_DOWN;
	case SRV_STATE_DRAIN:
		return TL_DRAIN;
	case SRV_STATE_UP:
		break;
	}
	return TL_UP;
}

static int64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

char *
history_timeline(const struct snapshot *s, struct healthlog *hl,
                 int64_t since_ms, bool standalone, size_t *len)
{
	int64_t now = wall_ms();
	struct timeline *tl = timeline_new(now - since_ms, now);
	char *svg = NULL;

	if (tl == NULL)
		return NULL;
	for (size_t b = 0; b < s->pool.nbackends; b++) {
		const struct pool_snap_backend *be = &s->pool.backends[b];

		for (size_t i = 0; i < be->nservers; i++)
			if (timeline_lane(
			        tl, be->conf->name, be->servers[i].conf->name,
			        history_state(be->servers[i].state)) < 0)
				goto out;
	}
	if (feed_history(s->cfg->global.health_log, hl, tl) == 0)
		svg = timeline_svg(tl, standalone, len);
out:
	timeline_free(tl);
	return svg;
}
