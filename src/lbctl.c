/* lbctl: control-socket client and health-log report (lbctl(8)). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "report.h"
#include "timeline.h"

#define PROG "lbctl"
#define DEFAULT_SOCKET "/run/load-balancer.sock"
#define DEFAULT_HEALTH_LOG "/var/log/load-balancer/health.log"
/* The daemon's default configuration (load-balancer -f, src/main.c). */
#define DEFAULT_CONFIG SYSCONFDIR "/load-balancer.conf"
#define SVG_DEFAULT_WINDOW_MS (24LL * 3600 * 1000) /* as /timeline */

#define EXIT_ERROR 1   /* an `error:` reply; health log unreadable */
#define EXIT_CONNECT 2 /* cannot connect, timeout, incomplete reply */
#define EXIT_USAGE 2

#define CTL_TIMEOUT_MS 10000         /* the whole exchange */
#define CMD_MAX 4096                 /* one command line */
#define REPLY_MAX (16 * 1024 * 1024) /* `show health` is ~2 MB at most */

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: lbctl [-s SOCKET] show servers | show info | show "
	        "health [N]\n"
	        "       lbctl [-s SOCKET] drain|disable|enable "
	        "BACKEND/SERVER\n"
	        "       lbctl [-s SOCKET] set weight BACKEND/SERVER N\n"
	        "       lbctl [-s SOCKET] shutdown sessions BACKEND/SERVER\n"
	        "       lbctl [-s SOCKET] reload\n"
	        "       lbctl [-s SOCKET] check\n"
	        "       lbctl [-s SOCKET] show clients [N]\n"
	        "       lbctl health-report [-f FILE] [--since DURATION] "
	        "[--log FILE]\n"
	        "                           [--format text|json|svg]\n"
	        "       lbctl -h | -V\n"
	        "\n"
	        "  -s SOCKET   control socket (default %s)\n"
	        "  -h          print this help and exit\n"
	        "  -V          print the version and exit\n"
	        "\n"
	        "health-report reads the health log and the configuration "
	        "(no daemon needed):\n"
	        "  -f FILE, --config FILE  (default %s, unless --log is "
	        "given)\n"
	        "                    the configuration: every server in it "
	        "is listed, one\n"
	        "                    without events as UP throughout "
	        "(MAINT when disabled\n"
	        "                    there); when it cannot be read, one "
	        "line on stderr says\n"
	        "                    why and only the servers named in the "
	        "log are listed\n"
	        "  --since DURATION  only the last DURATION (30m, 24h, 7d, "
	        "1500ms; a bare\n"
	        "                    number is milliseconds); default: the "
	        "whole log\n"
	        "  --log FILE        the health log (default: the "
	        "configuration's\n"
	        "                    health_log, else %s)\n"
	        "  --format FORMAT   text (default), json, or svg: the health "
	        "timeline\n"
	        "                    picture (one lane per server; default "
	        "window 24h),\n"
	        "                    e.g. --format svg > timeline.svg\n"
	        "It shows per server the availability (time not DOWN / "
	        "window), DOWN events,\n"
	        "downtime, longest outage, flaps (outages that began less "
	        "than 10m after the\n"
	        "previous one ended), maintenance time (drain/disable: not "
	        "downtime), the last\n"
	        "failure and the certificate expiry; per backend the time "
	        "with no server UP.\n"
	        "\n"
	        "Exit status: 0 ok, 1 error reply (or unreadable log), 2 "
	        "cannot connect or\n"
	        "usage error.\n",
	        DEFAULT_SOCKET, DEFAULT_CONFIG, DEFAULT_HEALTH_LOG);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0; /* cannot fail with CLOCK_MONOTONIC on Linux */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes.  Returns 1
 * ready, 0 timeout, -1 error (errno set). */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		return n > 0 ? 1 : 0;
	}
}

/* Command words joined by single spaces, plus "\n". */
static int
build_command(int argc, char **argv, char *buf, size_t len)
{
	size_t n = 0, w;

	for (int i = 0; i < argc; i++) {
		if (strpbrk(argv[i], "\r\n") != NULL) {
			fprintf(stderr,
			        "%s: a command word cannot contain a line "
			        "break\n",
			        PROG);
			return -1;
		}
		w = strlen(argv[i]);
		if (n + w + 2 > len) {
			fprintf(stderr,
			        "%s: command too long (at most %zu "
			        "bytes)\n",
			        PROG, len - 2);
			return -1;
		}
		if (i > 0)
			buf[n++] = ' ';
		memcpy(buf + n, argv[i], w);
		n += w;
	}
	buf[n++] = '\n';
	buf[n] = '\0';
	return (int)n;
}

/* Index just past the reply's last line (before the empty line), or -1
 * while the empty line has not arrived. */
static long
reply_end(const char *buf, size_t len, size_t from)
{
	if (len > 0 && buf[0] == '\n')
		return 0; /* an empty reply */
	for (size_t i = from > 0 ? from - 1 : 0; i + 1 < len; i++)
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			return (long)i + 1;
	return -1;
}

static int
write_all(FILE *fp, const char *buf, size_t len)
{
	if (len > 0 && fwrite(buf, 1, len, fp) != len)
		return -1;
	return fflush(fp) == 0 ? 0 : -1;
}

static int
ctl_run(const char *path, int argc, char **argv)
{
	struct sockaddr_un sun;
	char cmd[CMD_MAX];
	struct timeval tv = {.tv_sec = CTL_TIMEOUT_MS / 1000};
	char *reply = NULL;
	size_t rlen = 0, rcap = 0, sent = 0;
	int64_t deadline;
	long end = -1;
	int fd, cmdlen, rc = -1, status = EXIT_CONNECT;
	ssize_t n;

	cmdlen = build_command(argc, argv, cmd, sizeof(cmd));
	if (cmdlen < 0)
		return EXIT_USAGE;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "%s: socket path too long: %s\n", PROG, path);
		return EXIT_CONNECT;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);

	deadline = mono_ms() + CTL_TIMEOUT_MS;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot create a socket: %s\n", PROG,
		        strerror(errno));
		return EXIT_CONNECT;
	}
	/* A full listen backlog makes connect() wait: bound it. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		fprintf(stderr, "%s: setsockopt(SO_SNDTIMEO): %s\n", PROG,
		        strerror(errno));
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EAGAIN || errno == EINPROGRESS)
			fprintf(stderr,
			        "%s: cannot connect to %s: timed out after "
			        "%ds\n",
			        PROG, path, CTL_TIMEOUT_MS / 1000);
		else
			fprintf(stderr,
			        "%s: cannot connect to %s: %s (is "
			        "load-balancer running?)\n",
			        PROG, path, strerror(errno));
		goto out;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		fprintf(stderr, "%s: fcntl(O_NONBLOCK): %s\n", PROG,
		        strerror(errno));
		goto out;
	}

	while (sent < (size_t)cmdlen) {
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc <= 0)
			goto io_error;
		n = send(fd, cmd + sent, (size_t)cmdlen - sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			goto io_error;
		sent += (size_t)n;
	}

	while (end < 0) {
		if (rlen + 4096 > rcap) {
			size_t ncap = rcap == 0 ? 8192 : rcap * 2;
			char *p;

			if (ncap > REPLY_MAX + 4096) {
				fprintf(stderr,
				        "%s: %s: reply longer than %d bytes\n",
				        PROG, path, REPLY_MAX);
				goto out;
			}
			p = realloc(reply, ncap);
			if (p == NULL) {
				fprintf(stderr, "%s: %s\n", PROG,
				        strerror(errno));
				goto out;
			}
			reply = p;
			rcap = ncap;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc <= 0)
			goto io_error;
		n = recv(fd, reply + rlen, rcap - rlen, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			goto io_error;
		if (n == 0) {
			fprintf(stderr,
			        "%s: %s: connection closed before the end of "
			        "the reply\n",
			        PROG, path);
			goto out;
		}
		rlen += (size_t)n;
		end = reply_end(reply, rlen, rlen - (size_t)n);
	}

	if (end >= 7 && strncmp(reply, "error: ", 7) == 0) {
		status = EXIT_ERROR;
		if (write_all(stderr, reply, (size_t)end) < 0)
			goto write_error;
	} else {
		status = 0;
		if (write_all(stdout, reply, (size_t)end) < 0)
			goto write_error;
	}
	goto out;

write_error:
	fprintf(stderr, "%s: cannot write the reply: %s\n", PROG,
	        strerror(errno));
	status = EXIT_ERROR;
	goto out;
io_error:
	if (rc == 0)
		fprintf(stderr, "%s: %s: no complete reply within %ds\n", PROG,
		        path, CTL_TIMEOUT_MS / 1000);
	else
		fprintf(stderr, "%s: %s: %s\n", PROG, path, strerror(errno));
	status = EXIT_CONNECT;
out:
	free(reply);
	if (close(fd) < 0 && status == 0) {
		fprintf(stderr, "%s: close: %s\n", PROG, strerror(errno));
		status = EXIT_CONNECT;
	}
	return status;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i. */
static int
long_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "%s: %s needs a value\n", PROG, name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

/* health-report's configuration, or NULL after one line on stderr
 * saying why it cannot be used: the report then lists the servers the
 * log names, and only them. */
static struct cfg *
load_config(const char *path)
{
	struct cfg_diag diag;
	struct cfg *cfg;
	const char *why = "invalid configuration";

	cfg_diag_init(&diag);
	cfg = cfg_load_file(path, &diag);
	if (cfg == NULL) {
		for (size_t i = 0; i < diag.n; i++)
			if (!diag.is_warning[i]) {
				why = diag.msgs[i]; /* "FILE:LINE: ..." */
				break;
			}
		fprintf(stderr,
		        "%s: health-report: cannot use the configuration: "
		        "%s%s; only the servers named in the health log are "
		        "listed\n",
		        PROG, why,
		        diag.nerrors > 1 ? " (and more errors)" : "");
	}
	cfg_diag_free(&diag);
	return cfg;
}

/* Every server of the configuration into the report or the timeline
 * (either may be NULL), so that those without events are listed too.
 * Returns 0, or -1 when out of memory. */
static int
declare_servers(const struct cfg *cfg, const char *path, struct report *r,
                struct timeline *tl)
{
	size_t skipped = 0;

	for (size_t b = 0; b < cfg->nbackends; b++) {
		const struct cfg_backend *be = &cfg->backends[b];

		for (size_t i = 0; i < be->nservers; i++) {
			const struct cfg_server *srv = &be->servers[i];
			enum report_admin admin =
			    srv->disabled ? RADMIN_MAINT : RADMIN_READY;

			if (r != NULL &&
			    report_declare_server(r, be->name, srv->name,
			                          srv->addr.text, admin) < 0) {
				if (errno == ENOMEM)
					return -1;
				skipped++; /* too long a name, too many */
			}
			if (tl != NULL &&
			    timeline_lane(tl, be->name, srv->name,
			                  srv->disabled ? TL_MAINT : TL_UP) < 0)
				return -1;
		}
	}
	if (skipped > 0)
		fprintf(stderr,
		        "%s: health-report: %zu server%s of %s not listed "
		        "without events (names of %d bytes or more, or more "
		        "than %d servers)\n",
		        PROG, skipped, skipped == 1 ? "" : "s", path,
		        REPORT_NAME_MAX, REPORT_SERVERS_MAX);
	return 0;
}

/* --format svg: the health timeline of [from, now], as the daemon's
 * /timeline draws it, with a lane for each server of cfg (may be NULL).
 * Closes fp. */
static int
svg_report(FILE *fp, const char *logfile, const struct cfg *cfg,
           const char *cfgfile, int64_t from, int64_t now)
{
	char buf[REPORT_LINE_MAX + 2];
	struct timeline *tl = timeline_new(from, now);
	bool skipping = false;
	char *svg = NULL;
	size_t len = 0;
	int status = EXIT_ERROR;

	if (tl == NULL ||
	    (cfg != NULL && declare_servers(cfg, cfgfile, NULL, tl) < 0)) {
		fprintf(stderr, "%s: %s\n", PROG, strerror(errno));
		timeline_free(tl);
		fclose(fp);
		return EXIT_ERROR;
	}
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		size_t n = strlen(buf);
		bool complete = n > 0 && buf[n - 1] == '\n';

		if (skipping || (!complete && n >= sizeof(buf) - 1)) {
			skipping = !complete; /* an over-long line: skipped */
			continue;
		}
		if (timeline_add_line(tl, buf) < 0) {
			fprintf(stderr, "%s: %s\n", PROG, strerror(errno));
			goto out;
		}
	}
	if (ferror(fp)) {
		fprintf(stderr, "%s: cannot read the health log %s: %s\n", PROG,
		        logfile, strerror(errno != 0 ? errno : EIO));
		goto out;
	}
	if ((svg = timeline_svg(tl, true, &len)) == NULL) {
		fprintf(stderr, "%s: %s\n", PROG, strerror(errno));
		goto out;
	}
	if (fwrite(svg, 1, len, stdout) != len || fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the picture: %s\n", PROG,
		        strerror(errno));
		goto out;
	}
	status = 0;
out:
	free(svg);
	timeline_free(tl);
	if (fclose(fp) != 0 && status == 0) {
		fprintf(stderr, "%s: cannot read the health log %s: %s\n", PROG,
		        logfile, strerror(errno));
		status = EXIT_ERROR;
	}
	return status;
}

static int
health_report(int argc, char **argv)
{
	const char *since = NULL, *logfile = NULL, *cfgfile = NULL;
	const char *format = "text", *err, *val;
	struct cfg *cfg;
	struct report r;
	struct timespec ts;
	int64_t since_ms = 0, now;
	FILE *fp;
	int rc, status;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if ((rc = long_opt(argc, argv, &i, "--since", &val)) != 0) {
			if (rc < 0)
				goto bad_usage;
			since = val;
		} else if ((rc = long_opt(argc, argv, &i, "--log", &val)) !=
		           0) {
			if (rc < 0)
				goto bad_usage;
			logfile = val;
		} else if ((rc = long_opt(argc, argv, &i, "--format", &val)) !=
		           0) {
			if (rc < 0)
				goto bad_usage;
			format = val;
		} else if ((rc = long_opt(argc, argv, &i, "-f", &val)) != 0 ||
		           (rc = long_opt(argc, argv, &i, "--config", &val)) !=
		               0) {
			if (rc < 0)
				goto bad_usage;
			cfgfile = val;
		} else {
			fprintf(stderr,
			        "%s: health-report: unknown argument "
			        "'%s'\n",
			        PROG, argv[i]);
			goto bad_usage;
		}
	}
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0 &&
	    strcmp(format, "svg") != 0) {
		fprintf(stderr,
		        "%s: unknown --format '%s' (text, json or svg)\n", PROG,
		        format);
		return EXIT_USAGE;
	}
	if (since != NULL &&
	    report_parse_duration(since, &since_ms, &err) < 0) {
		fprintf(stderr, "%s: --since '%s': %s\n", PROG, since, err);
		return EXIT_USAGE;
	}
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0) {
		fprintf(stderr, "%s: clock_gettime: %s\n", PROG,
		        strerror(errno));
		return EXIT_ERROR;
	}
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

	/* The servers without events come from the configuration; its
	 * health_log is the log unless --log says otherwise.  --log alone
	 * reads that log alone (it may come from another machine). */
	if (cfgfile == NULL && logfile == NULL)
		cfgfile = DEFAULT_CONFIG;
	cfg = cfgfile != NULL ? load_config(cfgfile) : NULL;
	if (logfile == NULL)
		logfile = cfg != NULL && cfg->global.health_log[0] != '\0'
		              ? cfg->global.health_log
		              : DEFAULT_HEALTH_LOG;
	fp = fopen(logfile, "re");
	if (fp == NULL) {
		fprintf(stderr, "%s: cannot read the health log %s: %s\n", PROG,
		        logfile, strerror(errno));
		cfg_free(cfg);
		return EXIT_ERROR;
	}
	if (strcmp(format, "svg") == 0) {
		status = svg_report(
		    fp, logfile, cfg, cfgfile,
		    now - (since != NULL ? since_ms : SVG_DEFAULT_WINDOW_MS),
		    now);
		cfg_free(cfg);
		return status;
	}
	status = EXIT_ERROR;
	report_init(&r, since != NULL ? now - since_ms : REPORT_FROM_FIRST,
	            now);
	if (cfg != NULL) {
		if (declare_servers(cfg, cfgfile, &r, NULL) < 0) {
			fprintf(stderr, "%s: %s\n", PROG, strerror(errno));
			fclose(fp);
			goto out;
		}
		r.config = cfgfile;
	}
	errno = 0;
	if (report_read(&r, fp) < 0) {
		fprintf(stderr, "%s: cannot read the health log %s: %s\n", PROG,
		        logfile, strerror(errno));
		fclose(fp);
		goto out;
	}
	if (fclose(fp) != 0) {
		fprintf(stderr, "%s: cannot read the health log %s: %s\n", PROG,
		        logfile, strerror(errno));
		goto out;
	}
	report_finish(&r);
	if (strcmp(format, "json") == 0)
		rc = report_print_json(&r, stdout);
	else
		rc = report_print_text(&r, logfile, stdout);
	if (rc < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the report: %s\n", PROG,
		        strerror(errno));
		goto out;
	}
	status = 0;
out:
	report_free(&r);
	cfg_free(cfg);
	return status;

bad_usage:
	usage(stderr);
	return EXIT_USAGE;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_SOCKET;
	int ch;

	/* '+': options stop at the first command word. */
	while ((ch = getopt_long(argc, argv, "+s:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s %s\n", PROG, PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: no command\n", PROG);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "health-report") == 0)
		return health_report(argc - optind - 1, argv + optind + 1);
	return ctl_run(path, argc - optind, argv + optind);
}
