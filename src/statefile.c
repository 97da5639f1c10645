/* The operator state file (load-balancer.conf(5), OPERATOR STATE):
 * logfmt lines to a list of entries and back, and the file read, and
 * replaced whole, through a descriptor of its directory.
 *
 * A value is written bare when it can be, else quoted; inside quotes \"
 * and \\ stand for a quote and a backslash, and \xHH for a control
 * character, so that any name (even one with a newline, which a
 * configuration may hold) reads back the same.  The reader is strict:
 * what it refuses it names, with the line, and skips. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "sock.h"
#include "statefile.h"

#define STATEFILE_SIZE_MAX (16L * 1024 * 1024)
#define QUOTE_MAX 32 /* bytes of a word quoted in a warning */
#define WARN_MAX 256

static const char header[] =
    "# load-balancer operator state: written by the daemon at every\n"
    "# lbctl drain, disable, enable and set weight; lbctl enable clears\n"
    "# a server's line.\n";

/* Indexed by enum statefile_admin; [0] is "not set". */
static const char *const admin_words[] = {NULL, "ready", "drain", "maint"};

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t';
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* --- the list ------------------------------------------------------------ */

void
statefile_list_init(struct statefile_list *l)
{
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
}

void
statefile_list_free(struct statefile_list *l)
{
	free(l->v);
	statefile_list_init(l);
}

int
statefile_list_add(struct statefile_list *l, const struct statefile_entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap > 0 ? l->cap * 2 : 16;
		struct statefile_entry *v;

		if (cap < l->cap || cap > SIZE_MAX / sizeof(*v))
			return -1;
		if ((v = realloc(l->v, cap * sizeof(*v))) == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *e;
	return 0;
}

/* --- an index of the list by backend and server -------------------------- */

/* Open addressing; a slot holds an entry's position + 1, 0 when free. */
struct index {
	size_t *slot;
	size_t mask;
};

static size_t
hash_entry(const struct statefile_entry *e)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (const char *p = e->backend; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xffu) * 1099511628211ULL; /* a byte no name holds */
	for (const char *p = e->server; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32));
}

static bool
same_server(const struct statefile_entry *a, const struct statefile_entry *b)
{
	return strcmp(a->backend, b->backend) == 0 &&
	       strcmp(a->server, b->server) == 0;
}

/* The slot of e's backend and server: the one that holds it, or the free
 * one where it goes. */
static size_t *
index_find(const struct index *ix, const struct statefile_list *l,
           const struct statefile_entry *e)
{
	size_t i = hash_entry(e) & ix->mask;

	while (ix->slot[i] != 0 && !same_server(&l->v[ix->slot[i] - 1], e))
		i = (i + 1) & ix->mask;
	return &ix->slot[i];
}

/* Room in ix for one more entry than l has, at most half full; every
 * entry of l indexed (the first of two alike).  -1 when out of memory. */
static int
index_reserve(struct index *ix, const struct statefile_list *l)
{
	size_t size = ix->slot != NULL ? ix->mask + 1 : 0, want = 64;
	size_t *slot;

	if (l->n + 1 <= size / 2)
		return 0;
	while (want / 2 < l->n + 1) {
		if (want > SIZE_MAX / 2 / sizeof(*slot))
			return -1;
		want *= 2;
	}
	if ((slot = calloc(want, sizeof(*slot))) == NULL)
		return -1;
	free(ix->slot);
	ix->slot = slot;
	ix->mask = want - 1;
	for (size_t i = 0; i < l->n; i++) {
		size_t *s = index_find(ix, l, &l->v[i]);
		if (*s == 0)
			*s = i + 1;
	}
	return 0;
}

/* --- reading ------------------------------------------------------------- */

/* One line being read: its number and where warnings go. */
struct reader {
	unsigned long line;
	void (*warn)(void *arg, const char *msg);
	void *arg;
};

/* "LINE: message" to the reader's warn.  Returns -1. */
static int warnf(const struct reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
warnf(const struct reader *rd, const char *fmt, ...)
{
	char msg[WARN_MAX];
	va_list ap;
	int n;

	if (rd->warn == NULL)
		return -1;
	n = snprintf(msg, sizeof(msg), "%lu: ", rd->line);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	rd->warn(rd->arg, msg);
	return -1;
}

/* s (n bytes) for a warning: its first QUOTE_MAX bytes, other bytes than
 * printable ASCII as '?', "..." when cut. */
static const char *
quote(char *q, const char *s, size_t n)
{
	size_t k = n < QUOTE_MAX ? n : QUOTE_MAX;

	for (size_t i = 0; i < k; i++)
		q[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	strcpy(q + k, n > k ? "..." : "");
	return q;
}

static int
hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The value at *p (before end) into v (STATEFILE_NAME_MAX bytes): bare up
 * to a space, or quoted.  *p moves past it.  -1 (warned) when it is bad
 * or too long. */
static int
read_value(const struct reader *rd, const char **p, const char *end,
           const char *key, char *v)
{
	const char *s = *p;
	size_t n = 0;

	if (s < end && *s == '"') {
		for (s++;; s++) {
			char c;

			if (s == end)
				return warnf(rd, "'%s': no closing quote", key);
			if (*s == '"')
				break;
			c = *s;
			if (c == '\\') {
				int h, l;

				if (end - s >= 2 &&
				    (s[1] == '"' || s[1] == '\\'))
					c = *++s;
				else if (end - s >= 4 && s[1] == 'x' &&
				         (h = hex(s[2])) >= 0 &&
				         (l = hex(s[3])) >= 0 && h + l > 0) {
					c = (char)(h * 16 + l);
					s += 3;
				} else {
					return warnf(rd, "'%s': bad escape",
					             key);
				}
			}
			if (n == STATEFILE_NAME_MAX - 1)
				return warnf(rd, "'%s': value too long", key);
			v[n++] = c;
		}
		s++;
		if (s < end && !is_space(*s))
			return warnf(rd, "'%s': text after the closing quote",
			             key);
	} else {
		for (; s < end && !is_space(*s); s++) {
			if (*s == '"' || *s == '=')
				return warnf(rd,
				             "'%s': a value with '%c' must be "
				             "quoted",
				             key, *s);
			if (n == STATEFILE_NAME_MAX - 1)
				return warnf(rd, "'%s': value too long", key);
			v[n++] = *s;
		}
	}
	v[n] = '\0';
	*p = s;
	return 0;
}

enum key { K_BACKEND, K_NAME, K_ADMIN, K_WEIGHT, K_COUNT };
static const char *const keys[K_COUNT] = {"backend", "name", "admin", "weight"};

/* What a key's value says, into e.  -1 (warned) when it is bad. */
static int
set_value(const struct reader *rd, enum key k, const char *v,
          struct statefile_entry *e)
{
	char q[QUOTE_MAX + 4];
	size_t n = strlen(v);
	int w = 0;

	switch (k) {
	case K_BACKEND:
	case K_NAME:
		if (n == 0)
			return warnf(rd, "empty %s", keys[k]);
		memcpy(k == K_BACKEND ? e->backend : e->server, v, n + 1);
		return 0;
	case K_ADMIN:
		for (size_t i = 1; i < ARRAY_SIZE(admin_words); i++) {
			size_t j = 0;

			while (v[j] != '\0' && lower(v[j]) == admin_words[i][j])
				j++;
			if (v[j] == '\0' && admin_words[i][j] == '\0') {
				e->admin = (enum statefile_admin)i;
				return 0;
			}
		}
		return warnf(rd, "bad admin '%s' (ready, drain or maint)",
		             quote(q, v, n));
	default:
		for (size_t i = 0; i < n && w <= LB_WEIGHT_MAX; i++) {
			if (v[i] < '0' || v[i] > '9')
				break;
			w = w * 10 + (v[i] - '0');
			if (i + 1 == n && w <= LB_WEIGHT_MAX) {
				e->weight = w;
				return 0;
			}
		}
		return warnf(rd, "bad weight '%s' (0..%d)", quote(q, v, n),
		             LB_WEIGHT_MAX);
	}
}

/* The line p..end (no line ending) into e: 1 when it holds an entry, 0
 * when it is blank or a comment, -1 (warned) when it is bad. */
static int
read_line(const struct reader *rd, const char *p, const char *end,
          struct statefile_entry *e)
{
	char v[STATEFILE_NAME_MAX], q[QUOTE_MAX + 4];
	bool seen[K_COUNT] = {false};

	if (p < end && end[-1] == '\r')
		end--;
	while (p < end && is_space(*p))
		p++;
	if (p == end || *p == '#')
		return 0;
	for (const char *s = p; s < end; s++)
		if (*s != '\t' && is_ctl((unsigned char)*s))
			return warnf(rd, "control character (code %u)",
			             (unsigned char)*s);
	if (end - p < 6 || memcmp(p, "server", 6) != 0 ||
	    (end - p > 6 && !is_space(p[6])))
		return warnf(rd, "expected 'server ...'");
	memset(e, 0, sizeof(*e));
	e->admin = STATEFILE_ADMIN_NONE;
	e->weight = -1;
	p += 6;
	for (;;) {
		const char *k;
		size_t klen;
		enum key i;

		while (p < end && is_space(*p))
			p++;
		if (p == end)
			break;
		for (k = p; p < end && *p != '=' && !is_space(*p); p++)
			;
		klen = (size_t)(p - k);
		if (p == end || *p != '=' || klen == 0) {
			while (p < end && !is_space(*p))
				p++;
			return warnf(rd, "expected key=value, not '%s'",
			             quote(q, k, (size_t)(p - k)));
		}
		for (i = 0; i < K_COUNT; i++)
			if (strlen(keys[i]) == klen &&
			    memcmp(keys[i], k, klen) == 0)
				break;
		if (i == K_COUNT)
			return warnf(rd, "unknown key '%s'", quote(q, k, klen));
		if (seen[i])
			return warnf(rd, "key '%s' given twice", keys[i]);
		seen[i] = true;
		p++;
		if (read_value(rd, &p, end, keys[i], v) < 0 ||
		    set_value(rd, i, v, e) < 0)
			return -1;
	}
	if (!seen[K_BACKEND])
		return warnf(rd, "missing backend");
	if (!seen[K_NAME])
		return warnf(rd, "missing name");
	if (!seen[K_ADMIN] && !seen[K_WEIGHT])
		return warnf(rd, "neither admin nor weight");
	return 1;
}

long
statefile_parse(const char *text, size_t len, struct statefile_list *l,
                void (*warn)(void *arg, const char *msg), void *arg)
{
	struct reader rd = {0, warn, arg};
	struct index ix = {NULL, 0};
	size_t first = l->n, off = 0;

	while (off < len) {
		const char *p = text + off, *nl = memchr(p, '\n', len - off);
		const char *end = nl != NULL ? nl : text + len;
		struct statefile_entry e;
		size_t *slot;

		off = (size_t)(end - text) + (nl != NULL);
		rd.line++;
		if (read_line(&rd, p, end, &e) <= 0)
			continue;
		if (index_reserve(&ix, l) < 0)
			goto oom;
		slot = index_find(&ix, l, &e);
		if (*slot != 0) {
			char qb[QUOTE_MAX + 4], qs[QUOTE_MAX + 4];

			warnf(&rd,
			      "backend '%s' server '%s' again: this line "
			      "replaces the earlier one",
			      quote(qb, e.backend, strlen(e.backend)),
			      quote(qs, e.server, strlen(e.server)));
			l->v[*slot - 1] = e;
			continue;
		}
		if (statefile_list_add(l, &e) < 0)
			goto oom;
		*slot = l->n;
	}
	free(ix.slot);
	return (long)(l->n - first);
oom:
	free(ix.slot);
	return -1;
}

/* --- writing ------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, used;
	bool full;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || n >= o->len - o->used) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->used, s, n);
	o->used += n;
}

/* A value, quoted when it must be (see the top of the file). */
static void
put_value(struct out *o, const char *v)
{
	bool q = v[0] == '\0';

	for (const char *s = v; *s != '\0' && !q; s++)
		q = *s == ' ' || *s == '"' || *s == '=' || *s == '\\' ||
		    is_ctl((unsigned char)*s);
	if (!q) {
		put(o, v, strlen(v));
		return;
	}
	put(o, "\"", 1);
	for (const char *s = v; *s != '\0'; s++) {
		char esc[5];

		if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = *s;
			put(o, esc, 2);
		} else if (is_ctl((unsigned char)*s)) {
			snprintf(esc, sizeof(esc), "\\x%02x",
			         (unsigned char)*s);
			put(o, esc, 4);
		} else {
			put(o, s, 1);
		}
	}
	put(o, "\"", 1);
}

/* e as the reader would take it: names set and not cut, admin or weight
 * set (an entry with neither is the same as no line). */
static bool
writable(const struct statefile_entry *e)
{
	size_t nb = strnlen(e->backend, STATEFILE_NAME_MAX);
	size_t ns = strnlen(e->server, STATEFILE_NAME_MAX);
	bool admin =
	    e->admin > STATEFILE_ADMIN_NONE && e->admin <= STATEFILE_MAINT;
	bool weight = e->weight >= 0 && e->weight <= LB_WEIGHT_MAX;

	return nb > 0 && nb < STATEFILE_NAME_MAX && ns > 0 &&
	       ns < STATEFILE_NAME_MAX && (admin || weight);
}

long
statefile_format(const struct statefile_list *l, char *buf, size_t len)
{
	struct out o = {buf, len, 0, len == 0};

	put(&o, header, sizeof(header) - 1);
	for (size_t i = 0; i < l->n; i++) {
		const struct statefile_entry *e = &l->v[i];
		char w[32];

		if (!writable(e))
			continue;
		put(&o, "server backend=", 15);
		put_value(&o, e->backend);
		put(&o, " name=", 6);
		put_value(&o, e->server);
		if (e->admin > STATEFILE_ADMIN_NONE &&
		    e->admin <= STATEFILE_MAINT) {
			put(&o, " admin=", 7);
			put(&o, admin_words[e->admin],
			    strlen(admin_words[e->admin]));
		}
		if (e->weight >= 0 && e->weight <= LB_WEIGHT_MAX) {
			int n = snprintf(w, sizeof(w), " weight=%d", e->weight);
			put(&o, w, (size_t)n);
		}
		put(&o, "\n", 1);
	}
	if (o.full)
		return -1;
	buf[o.used] = '\0';
	return (long)o.used;
}

/* --- the file ------------------------------------------------------------ */

static int seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* err = the message.  Returns -1. */
static int
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
statefile_open(struct statefile *sf, const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash;
	size_t dlen;

	sf->path = NULL;
	sf->base = NULL;
	sf->dirfd = -1;
	if (path == NULL || path[0] != '/')
		return seterr(err, errlen,
		              "state file '%s': not an absolute "
		              "path",
		              path != NULL ? path : "");
	slash = strrchr(path, '/');
	if (slash[1] == '\0' || strcmp(slash + 1, ".") == 0 ||
	    strcmp(slash + 1, "..") == 0)
		return seterr(err, errlen, "state file '%s': no file name",
		              path);
	dlen = slash > path ? (size_t)(slash - path) : 1;
	if (dlen >= sizeof(dir))
		return seterr(err, errlen, "state file '%s': %s", path,
		              strerror(ENAMETOOLONG));
	if ((sf->path = strdup(path)) == NULL)
		return seterr(err, errlen, "state file '%s': %s", path,
		              strerror(errno));
	sf->base = sf->path + (slash + 1 - path);
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	sf->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sf->dirfd < 0)
		return seterr(err, errlen, "open directory %s: %s", dir,
		              strerror(errno));
	return 0;
}

void
statefile_close(struct statefile *sf)
{
	if (sf->dirfd >= 0)
		close(sf->dirfd);
	free(sf->path);
	sf->path = NULL;
	sf->base = NULL;
	sf->dirfd = -1;
}

/* The whole file behind fd into *buf (malloc'ed), at most
 * STATEFILE_SIZE_MAX bytes.  Returns its length, -1 (errno) when it
 * cannot be read, -2 when it is too large. */
static long
read_all(int fd, size_t hint, char **buf)
{
	size_t cap = hint + 1, n = 0;
	char *b = NULL;

	for (;;) {
		ssize_t r;

		if (b == NULL || n == cap) {
			char *nb;

			if (b != NULL)
				cap = cap * 2;
			if (cap > (size_t)STATEFILE_SIZE_MAX + 1)
				cap = (size_t)STATEFILE_SIZE_MAX + 1;
			if (n == cap) {
				free(b);
				return -2;
			}
			if ((nb = realloc(b, cap)) == NULL) {
				free(b);
				errno = ENOMEM;
				return -1;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(b);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = b;
	return (long)n;
}

long
statefile_load(const struct statefile *sf, struct statefile_list *l,
               void (*warn)(void *arg, const char *msg), void *arg, char *err,
               size_t errlen)
{
	struct stat st;
	char *buf;
	long n;
	int fd;

	if (sf->dirfd < 0 || sf->base == NULL)
		return seterr(err, errlen, "state file: directory not open");
	/* O_NONBLOCK: a FIFO put there must not hang the daemon */
	fd = openat(sf->dirfd, sf->base,
	            O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return seterr(err, errlen, "open %s: %s", sf->base,
		              strerror(errno));
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return seterr(err, errlen, "stat %s: %s", sf->base,
		              strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return seterr(err, errlen, "%s: not a regular file", sf->base);
	}
	if (st.st_size > STATEFILE_SIZE_MAX)
		n = -2;
	else
		n = read_all(fd, (size_t)st.st_size, &buf);
	if (n == -1) {
		int e = errno;
		close(fd);
		return seterr(err, errlen, "read %s: %s", sf->base,
		              strerror(e));
	}
	close(fd);
	if (n == -2)
		return seterr(err, errlen, "%s: larger than 16 MiB", sf->base);
	n = statefile_parse(buf, (size_t)n, l, warn, arg);
	free(buf);
	if (n < 0)
		return seterr(err, errlen, "%s: %s", sf->base,
		              strerror(ENOMEM));
	return n;
}

/* l's text into *buf (malloc'ed, grown as needed).  Returns its length,
 * -1 when out of memory, -2 when larger than STATEFILE_SIZE_MAX. */
static long
format_all(const struct statefile_list *l, char **buf)
{
	size_t cap = 4096;
	char *b = NULL;

	for (;;) {
		char *nb;
		long n;

		if ((nb = realloc(b, cap)) == NULL) {
			free(b);
			return -1;
		}
		b = nb;
		if ((n = statefile_format(l, b, cap)) >= 0) {
			*buf = b;
			return n;
		}
		if (cap > (size_t)STATEFILE_SIZE_MAX) {
			free(b);
			return -2;
		}
		cap *= 2;
		if (cap > (size_t)STATEFILE_SIZE_MAX + 1)
			cap = (size_t)STATEFILE_SIZE_MAX + 1;
	}
}

int
statefile_save(const struct statefile *sf, const struct statefile_list *l,
               char *err, size_t errlen)
{
	char tmp[PATH_MAX], *buf = NULL;
	const char *what;
	long n;
	int fd, e;

	if (sf->dirfd < 0 || sf->base == NULL)
		return seterr(err, errlen, "state file: directory not open");
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", sf->base) >=
	    sizeof(tmp))
		return seterr(err, errlen, "write %s.tmp: %s", sf->base,
		              strerror(ENAMETOOLONG));
	if ((n = format_all(l, &buf)) < 0)
		return seterr(err, errlen, "write %s: %s", tmp,
		              n == -1 ? strerror(ENOMEM)
		                      : "state larger than 16 MiB");
	/* O_NOFOLLOW: never write through a link someone left there */
	fd =
	    openat(sf->dirfd, tmp,
	           O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		e = errno;
		free(buf);
		return seterr(err, errlen, "open %s: %s", tmp, strerror(e));
	}
	what = "write";
	if (sock_write_all(fd, buf, (size_t)n) < 0)
		goto fail;
	what = "fsync";
	if (fsync(fd) < 0)
		goto fail;
	what = "close";
	e = close(fd);
	fd = -1;
	if (e < 0)
		goto fail;
	what = "rename";
	if (renameat(sf->dirfd, tmp, sf->dirfd, sf->base) < 0)
		goto fail;
	free(buf);
	if (fsync(sf->dirfd) < 0)
		return seterr(err, errlen, "fsync directory of %s: %s",
		              sf->base, strerror(errno));
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(sf->dirfd, tmp, 0);
	free(buf);
	return seterr(err, errlen, "%s %s: %s", what, tmp, strerror(e));
}
