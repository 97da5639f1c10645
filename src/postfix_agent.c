/* lb-postfix-agent: answers the agent check (HAProxy's agent-check
 * protocol) of a mail filter host with a weight taken from the depth of its
 * Postfix queue (lb-postfix-agent(8)).  The C library only: it runs on the
 * filters, where the balancer's libraries are not installed. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PROG "lb-postfix-agent"
#define EXIT_USAGE 2
#define EXIT_FAIL 1

#define DEFAULT_QUEUE_DIR "/var/spool/postfix"
#define DEFAULT_QUEUES "incoming,active,deferred"
#define POSTCONF "/usr/sbin/postconf"
#define POSTCONF_TIMEOUT_MS 5000

#define MARK_MAX 1000000000UL   /* LOW, HIGH, DRAIN */
#define CACHE_MAX_MS 86400000UL /* -c */
#define LINGER_MS 500           /* reading what the peer sent, per connection */
#define HASH_DEPTH 2            /* Postfix's hash_queue_depth, at most */
#define ACCEPT_PAUSE_MS 100     /* after EMFILE and the like */
#define ANSWER_MAX 32           /* "ready 100%\n" */
/* Non-blocking: a connection reset between poll and accept must not
 * block the accept. */
#define LISTEN_SOCK_TYPE (SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)
#define REASON_MAX (PATH_MAX + 256) /* a path, an errno text */

/* The queues the agent may count, as Postfix names their directories. */
static const char *const queue_names[] = {"incoming", "active", "deferred",
                                          "hold", "maildrop"};
#define N_QUEUES (sizeof(queue_names) / sizeof(queue_names[0]))

struct agent_cfg {
	const char *listen; /* -l, NULL: inetd mode */
	char queue_dir[PATH_MAX];
	unsigned queues; /* bit i: queue_names[i] */
	unsigned long low, high, drain, floor_pct, cache_ms;
	const char *pidfile;
};

/* Messages that repeat are logged once: the last one is kept until
 * another one (or a recovery) replaces it. */
struct reporter {
	bool to_stderr, to_syslog;
	char last[REASON_MAX];
};

/* The last answer and when it was computed (-c). */
struct answer {
	bool valid; /* computed at least once */
	bool ok;    /* the queue was read: line holds the answer */
	char line[ANSWER_MAX];
	char reason[REASON_MAX]; /* why not, when !ok */
	unsigned long depth;
	long long at; /* now_ms() */
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: " PROG " [-l [ADDR:]PORT] [-q QUEUE_DIR] [-L LOW] "
	        "[-H HIGH]\n"
	        "       [-D DRAIN] [-m FLOOR] [-Q QUEUES] [-c CACHE_MS] "
	        "[-p PIDFILE] [-V] [-h]\n"
	        "\n"
	        "Answers the balancer's agent check (HAProxy's agent-check "
	        "protocol) with\n"
	        "one line, \"ready NN%%\" or \"drain\", derived from the "
	        "number of messages in\n"
	        "the local Postfix queues.\n"
	        "\n"
	        "  -l [ADDR:]PORT  serve on this TCP port (ADDR: an IPv4 "
	        "address or [IPv6];\n"
	        "                  none: every address); without -l, write "
	        "one answer on\n"
	        "                  stdout and exit (inetd, systemd "
	        "Accept=yes, by hand)\n"
	        "  -q QUEUE_DIR    Postfix's queue directory (default: "
	        "`postconf -h\n"
	        "                  queue_directory`, else %s)\n"
	        "  -L LOW          up to LOW messages: ready 100%% "
	        "(default 100)\n"
	        "  -H HIGH         from LOW to HIGH the weight falls "
	        "linearly to FLOOR\n"
	        "                  (default 1000)\n"
	        "  -D DRAIN        from DRAIN messages on: drain "
	        "(default 5000);\n"
	        "                  LOW < HIGH <= DRAIN\n"
	        "  -m FLOOR        the lowest weight in percent, 1..100 "
	        "(default 10)\n"
	        "  -Q QUEUES       the queues counted, a comma list of "
	        "incoming active\n"
	        "                  deferred hold maildrop (default %s)\n"
	        "  -c CACHE_MS     with -l, reuse a count for that long "
	        "(default 1000)\n"
	        "  -p PIDFILE      with -l, write the process id there\n"
	        "  -V              print the version and exit\n"
	        "  -h              print this help and exit\n"
	        "\n"
	        "When the queue cannot be read the connection is closed "
	        "without an answer\n"
	        "(the balancer counts an agent failure and changes nothing) "
	        "and the reason is\n"
	        "logged once per reason: on stderr, and with -l in syslog "
	        "too (on syslog\n"
	        "alone when stderr is a socket, as under inetd).\n"
	        "\n"
	        "Exit status: 0 ok (with -l: SIGTERM or SIGINT), 1 the "
	        "queue cannot be read\n"
	        "(without -l) or start-up failure, 2 usage error.\n",
	        DEFAULT_QUEUE_DIR, DEFAULT_QUEUES);
}

/* ---------------------------------------------------------------------
 * Logging */

static void reporter_say(struct reporter *r, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
reporter_say(struct reporter *r, int prio, const char *fmt, ...)
{
	char msg[REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->to_stderr)
		fprintf(stderr, "%s: %s\n", PROG, msg);
	if (r->to_syslog)
		syslog(prio, "%s", msg);
}

/* Logs reason once, until another reason or a recovery. */
static void
reporter_fail(struct reporter *r, const char *reason)
{
	if (strcmp(r->last, reason) == 0)
		return;
	snprintf(r->last, sizeof(r->last), "%s", reason);
	reporter_say(r, LOG_ERR, "%s", reason);
}

static void
reporter_recover(struct reporter *r, const char *what)
{
	if (r->last[0] == '\0')
		return;
	r->last[0] = '\0';
	reporter_say(r, LOG_NOTICE, "%s", what);
}

static bool
is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* ---------------------------------------------------------------------
 * Options */

static bool
parse_ulong(const char *s, unsigned long lo, unsigned long hi,
            unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool
parse_queues(const char *s, unsigned *mask)
{
	unsigned m = 0;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		size_t i;

		for (i = 0; i < N_QUEUES; i++)
			if (strlen(queue_names[i]) == len &&
			    strncmp(s, queue_names[i], len) == 0)
				break;
		if (i == N_QUEUES)
			return false;
		m |= 1U << i;
		s += len;
		if (*s == ',' && *++s == '\0')
			return false;
	}
	*mask = m;
	return m != 0;
}

static void
queues_text(unsigned mask, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_QUEUES; i++) {
		if (!(mask & (1U << i)))
			continue;
		int n = snprintf(buf + used, size - used, "%s%s",
		                 used > 0 ? "," : "", queue_names[i]);
		if (n < 0 || (size_t)n >= size - used)
			return;
		used += (size_t)n;
	}
}

/* Milliseconds on the monotonic clock; -1 when it cannot be read. */
static long long
now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return -1;
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is readable or deadline (now_ms() time) has passed:
 * 1 readable, 0 time is up (or the clock fails), -1 error. */
static int
wait_readable(int fd, long long deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long long now = now_ms();

		if (now < 0 || now >= deadline)
			return 0;
		int n = poll(&pfd, 1, (int)(deadline - now));
		if (n >= 0)
			return n > 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Postfix's queue_directory from `postconf -h queue_directory` (which
 * follows MAIL_CONFIG), else the default.  Bounded in time and size. */
static void
queue_dir_default(char *buf, size_t size)
{
	int fds[2];
	pid_t pid;
	size_t got = 0;
	int status;
	long long deadline = now_ms() + POSTCONF_TIMEOUT_MS;

	snprintf(buf, size, "%s", DEFAULT_QUEUE_DIR);
	if (pipe2(fds, O_CLOEXEC) != 0)
		return;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null < 0 || dup2(null, 0) < 0 || dup2(fds[1], 1) < 0 ||
		    dup2(null, 2) < 0)
			_exit(127);
		execl(POSTCONF, "postconf", "-h", "queue_directory",
		      (char *)NULL);
		execlp("postconf", "postconf", "-h", "queue_directory",
		       (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char out[PATH_MAX + 2];
	for (;;) {
		if (wait_readable(fds[0], deadline) <= 0) {
			/* Hung, or the pipe failed: give up on it. */
			(void)kill(pid, SIGKILL);
			got = 0;
			break;
		}
		ssize_t n = read(fds[0], out + got, sizeof(out) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (got += (size_t)n) == sizeof(out) - 1)
			break;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got == 0)
		return;
	out[got] = '\0';
	if (out[got - 1] != '\n')
		return; /* cut short: too long */
	out[got - 1] = '\0';
	size_t len = strlen(out);
	if (out[0] == '/' && strchr(out, '\n') == NULL && len < size)
		memcpy(buf, out, len + 1);
}

/* ---------------------------------------------------------------------
 * The queue and the answer */

/* Counts the regular files under fd (closed here), going down into
 * subdirectories while levels > 0, never through a symbolic link.  Stops
 * once *count reaches limit.  Returns 0 or an errno value. */
static int
count_files(int fd, int levels, unsigned long limit, unsigned long *count)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	int err = 0;

	if (d == NULL) {
		err = errno;
		close(fd);
		return err;
	}
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (e == NULL) {
			err = errno;
			break;
		}
		if (e->d_name[0] == '.' &&
		    (e->d_name[1] == '\0' ||
		     (e->d_name[1] == '.' && e->d_name[2] == '\0')))
			continue;
		unsigned char type = e->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd(d), e->d_name, &st,
			            AT_SYMLINK_NOFOLLOW) != 0) {
				if (errno == ENOENT)
					continue; /* delivered meanwhile */
				err = errno;
				break;
			}
			type = S_ISREG(st.st_mode)   ? DT_REG
			       : S_ISDIR(st.st_mode) ? DT_DIR
			                             : DT_UNKNOWN;
		}
		if (type == DT_REG) {
			if (++*count >= limit)
				break;
		} else if (type == DT_DIR && levels > 0) {
			int sub = openat(dirfd(d), e->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                     O_CLOEXEC);
			if (sub < 0) {
				if (errno == ENOENT)
					continue;
				err = errno;
				break;
			}
			err = count_files(sub, levels - 1, limit, count);
			if (err != 0 || *count >= limit)
				break;
		}
	}
	closedir(d);
	return err;
}

/* The number of messages in the chosen queues, counted up to cfg->drain
 * (beyond it the answer is drain whatever the number).  Returns false
 * with reason set when a queue cannot be read. */
static bool
queue_depth(const struct agent_cfg *cfg, unsigned long *depth, char *reason,
            size_t size)
{
	int top = open(cfg->queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*depth = 0;
	if (top < 0) {
		snprintf(reason, size, "cannot read the queue: %s: %s",
		         cfg->queue_dir, strerror(errno));
		return false;
	}
	for (size_t i = 0; i < N_QUEUES && *depth < cfg->drain; i++) {
		if (!(cfg->queues & (1U << i)))
			continue;
		int err,
		    q = openat(top, queue_names[i],
		               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = q < 0 ? errno
		            : count_files(q, HASH_DEPTH, cfg->drain, depth);
		if (err != 0) {
			snprintf(reason, size,
			         "cannot read the queue: %s/%s: %s",
			         cfg->queue_dir, queue_names[i], strerror(err));
			close(top);
			return false;
		}
	}
	close(top);
	return true;
}

/* The answer line for a queue of depth messages. */
static void
answer_line(const struct agent_cfg *cfg, unsigned long depth, char *buf,
            size_t size)
{
	unsigned long pct;

	if (depth >= cfg->drain) {
		snprintf(buf, size, "drain\n");
		return;
	}
	if (depth <= cfg->low) {
		pct = 100;
	} else if (depth >= cfg->high) {
		pct = cfg->floor_pct;
	} else {
		/* 100 - (100 - FLOOR) x (depth - LOW) / (HIGH - LOW),
		 * rounded down: the fall is rounded up. */
		unsigned long long fall =
		    (unsigned long long)(100 - cfg->floor_pct) *
		    (depth - cfg->low);
		unsigned long long span = cfg->high - cfg->low;

		pct = 100 - (unsigned long)((fall + span - 1) / span);
		if (pct < cfg->floor_pct)
			pct = cfg->floor_pct;
	}
	snprintf(buf, size, "ready %lu%%\n", pct);
}

/* The current answer: the cached one while it is younger than cache_ms,
 * else counted again.  Failures are logged once per reason. */
static const struct answer *
answer_get(const struct agent_cfg *cfg, struct answer *a, struct reporter *r)
{
	long long now = now_ms();

	if (a->valid && now >= 0 && now - a->at < (long long)cfg->cache_ms)
		return a;
	a->valid = true;
	a->at = now;
	a->ok = queue_depth(cfg, &a->depth, a->reason, sizeof(a->reason));
	if (!a->ok) {
		a->line[0] = '\0';
		reporter_fail(r, a->reason);
		return a;
	}
	answer_line(cfg, a->depth, a->line, sizeof(a->line));
	if (r->last[0] != '\0') {
		char msg[REASON_MAX];

		snprintf(msg, sizeof(msg),
		         "the queue is readable again: %lu messages", a->depth);
		reporter_recover(r, msg);
	}
	return a;
}

/* ---------------------------------------------------------------------
 * Connections */

/* After the answer: shut the write side, then read what the peer sent
 * (agent.send) until its EOF or LINGER_MS, so that the close does not
 * reset a connection with unread bytes; then close. */
static void
finish_conn(int wfd, int rfd)
{
	long long deadline = now_ms() + LINGER_MS;
	char sink[512];

	if (shutdown(wfd, SHUT_WR) != 0 || !is_socket(rfd))
		return;
	while (wait_readable(rfd, deadline) > 0) {
		ssize_t got = recv(rfd, sink, sizeof(sink), MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

/* Writes the whole line (a few bytes) on fd; false on failure. */
static bool
write_line(int fd, const char *line)
{
	size_t len = strlen(line), done = 0;

	while (done < len) {
		ssize_t n = is_socket(fd) ? send(fd, line + done, len - done,
		                                 MSG_NOSIGNAL | MSG_DONTWAIT)
		                          : write(fd, line + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* inetd mode: one answer on stdout; stdin is the peer when it is a
 * socket (inetd, systemd Accept=yes). */
static int
run_once(const struct agent_cfg *cfg)
{
	struct reporter r = {.to_stderr = !is_socket(2)};
	struct answer a = {.valid = false};

	r.to_syslog = !r.to_stderr;
	if (r.to_syslog)
		openlog(PROG, LOG_PID, LOG_DAEMON);
	answer_get(cfg, &a, &r);
	if (a.ok && !write_line(1, a.line)) {
		reporter_say(&r, LOG_ERR, "cannot write the answer: %s",
		             strerror(errno));
		return EXIT_FAIL;
	}
	if (is_socket(1))
		finish_conn(1, 0);
	return a.ok ? 0 : EXIT_FAIL;
}

/* [ADDR:]PORT to a listening socket; -1 with the reason said. */
static int
listen_on(const char *spec, struct reporter *r)
{
	char host[256] = "";
	const char *h = spec, *port = spec;
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST |
	                                     AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	unsigned long pnum;
	int fd = -1, one = 1, rc;

	if (colon != NULL) {
		size_t hl = (size_t)(colon - spec);

		port = colon + 1;
		if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
			h++;
			hl -= 2;
		} else if (memchr(spec, ':', hl) != NULL || spec[0] == '[') {
			hl = sizeof(host); /* bare IPv6: ambiguous */
		}
		if (hl == 0 || hl >= sizeof(host)) {
			reporter_say(
			    r, LOG_ERR,
			    "-l %s: want PORT, ADDR:PORT or [IPv6]:PORT", spec);
			return -1;
		}
		memcpy(host, h, hl);
		host[hl] = '\0';
	}
	if (!parse_ulong(port, 1, 65535, &pnum)) {
		reporter_say(r, LOG_ERR, "-l: bad port '%s' (1..65535)", port);
		return -1;
	}
	if (host[0] == '\0') {
		/* Every address: IPv6 and IPv4 on one socket, or IPv4 alone
		 * on a host without IPv6. */
		hints.ai_family = AF_INET6;
		rc = getaddrinfo(NULL, port, &hints, &res);
		if (rc == 0) {
			fd = socket(AF_INET6, LISTEN_SOCK_TYPE, 0);
			if (fd < 0 && errno == EAFNOSUPPORT) {
				freeaddrinfo(res);
				res = NULL;
			}
		}
		if (res == NULL) {
			hints.ai_family = AF_INET;
			rc = getaddrinfo(NULL, port, &hints, &res);
		}
	} else {
		rc = getaddrinfo(host, port, &hints, &res);
	}
	if (rc != 0) {
		reporter_say(r, LOG_ERR, "-l %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	if (fd < 0)
		fd = socket(res->ai_family, LISTEN_SOCK_TYPE, 0);
	if (fd < 0) {
		reporter_say(r, LOG_ERR, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	int zero = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (res->ai_family == AF_INET6 && host[0] == '\0' &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) !=
	         0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, SOMAXCONN) != 0) {
		reporter_say(r, LOG_ERR, "cannot listen on %s: %s", spec,
		             strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static bool
write_pidfile(const char *path, struct reporter *r)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd) != 0) {
		reporter_say(r, LOG_ERR, "pidfile %s: %s", path,
		             strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	return true;
}

/* Standalone mode: one thread, one connection at a time, each bounded
 * by LINGER_MS; SIGTERM and SIGINT arrive through a signalfd. */
static int
run_listener(const struct agent_cfg *cfg)
{
	struct reporter r = {.to_stderr = true, .to_syslog = true};
	struct reporter accept_r = r;
	struct answer a = {.valid = false};
	sigset_t stop;
	int lfd, sfd, rc = 0;
	char qs[64];

	openlog(PROG, LOG_PID, LOG_DAEMON);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0 ||
	    (sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		reporter_say(&r, LOG_ERR, "signals: %s", strerror(errno));
		return EXIT_FAIL;
	}
	lfd = listen_on(cfg->listen, &r);
	if (lfd < 0) {
		close(sfd);
		return EXIT_FAIL;
	}
	if (cfg->pidfile != NULL && !write_pidfile(cfg->pidfile, &r)) {
		close(lfd);
		close(sfd);
		return EXIT_FAIL;
	}
	queues_text(cfg->queues, qs, sizeof(qs));
	reporter_say(&r, LOG_INFO,
	             "%s listening on %s: queue %s (%s), low %lu, high %lu, "
	             "drain %lu, floor %lu%%, cache %lums",
	             PACKAGE_VERSION, cfg->listen, cfg->queue_dir, qs, cfg->low,
	             cfg->high, cfg->drain, cfg->floor_pct, cfg->cache_ms);
	for (;;) {
		struct pollfd pfd[2] = {{.fd = lfd, .events = POLLIN},
		                        {.fd = sfd, .events = POLLIN}};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			reporter_say(&r, LOG_ERR, "poll: %s", strerror(errno));
			rc = EXIT_FAIL;
			break;
		}
		if (pfd[1].revents != 0) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				reporter_say(&r, LOG_INFO, "signal %u: exiting",
				             si.ssi_signo);
				break;
			}
		}
		if (pfd[0].revents == 0)
			continue;
		int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == ECONNABORTED)
				continue;
			char why[REASON_MAX];
			snprintf(why, sizeof(why), "accept: %s",
			         strerror(errno));
			reporter_fail(&accept_r, why);
			/* Out of descriptors or memory: let it pass. */
			(void)poll(NULL, 0, ACCEPT_PAUSE_MS);
			continue;
		}
		reporter_recover(&accept_r, "accept works again");
		const struct answer *ans = answer_get(cfg, &a, &r);
		/* A peer gone before its answer needs no more than the
		 * close. */
		if (ans->ok)
			(void)write_line(c, ans->line);
		finish_conn(c, c);
		close(c);
	}
	close(lfd);
	close(sfd);
	if (cfg->pidfile != NULL && unlink(cfg->pidfile) != 0)
		reporter_say(&r, LOG_WARNING, "pidfile %s: %s", cfg->pidfile,
		             strerror(errno));
	return rc;
}

/* ---------------------------------------------------------------------
 * main */

static bool
parse_option(struct agent_cfg *cfg, int opt, const char *arg)
{
	switch (opt) {
	case 'l':
		cfg->listen = arg;
		return true;
	case 'q':
		if (arg[0] == '\0' || strlen(arg) >= sizeof(cfg->queue_dir))
			return false;
		snprintf(cfg->queue_dir, sizeof(cfg->queue_dir), "%s", arg);
		return true;
	case 'L':
		return parse_ulong(arg, 0, MARK_MAX, &cfg->low);
	case 'H':
		return parse_ulong(arg, 0, MARK_MAX, &cfg->high);
	case 'D':
		return parse_ulong(arg, 0, MARK_MAX, &cfg->drain);
	case 'm':
		return parse_ulong(arg, 1, 100, &cfg->floor_pct);
	case 'Q':
		return parse_queues(arg, &cfg->queues);
	case 'c':
		return parse_ulong(arg, 0, CACHE_MAX_MS, &cfg->cache_ms);
	case 'p':
		cfg->pidfile = arg;
		return arg[0] != '\0';
	default:
		return false;
	}
}

int
main(int argc, char **argv)
{
	struct agent_cfg cfg = {.low = 100,
	                        .high = 1000,
	                        .drain = 5000,
	                        .floor_pct = 10,
	                        .cache_ms = 1000};
	int opt;

	if (!parse_queues(DEFAULT_QUEUES, &cfg.queues))
		return EXIT_FAIL;
	opterr = 0;
	while ((opt = getopt(argc, argv, ":l:q:L:H:D:m:Q:c:p:Vh")) != -1) {
		if (opt == 'V') {
			printf("%s %s\n", PROG, PACKAGE_VERSION);
			return 0;
		}
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == '?' || opt == ':') {
			fprintf(stderr, "%s: %s -%c\n", PROG,
			        opt == ':' ? "missing argument to"
			                   : "unknown option",
			        optopt);
			usage(stderr);
			return EXIT_USAGE;
		}
		if (!parse_option(&cfg, opt, optarg)) {
			fprintf(stderr, "%s: bad value for -%c: '%s'\n", PROG,
			        opt, optarg);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", PROG,
		        argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!(cfg.low < cfg.high && cfg.high <= cfg.drain)) {
		fprintf(stderr,
		        "%s: want LOW < HIGH <= DRAIN (got %lu, %lu, %lu)\n",
		        PROG, cfg.low, cfg.high, cfg.drain);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cfg.pidfile != NULL && cfg.listen == NULL) {
		fprintf(stderr, "%s: -p needs -l\n", PROG);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "%s: SIGPIPE: %s\n", PROG, strerror(errno));
		return EXIT_FAIL;
	}
	if (cfg.queue_dir[0] == '\0')
		queue_dir_default(cfg.queue_dir, sizeof(cfg.queue_dir));
	return cfg.listen != NULL ? run_listener(&cfg) : run_once(&cfg);
}
