/* load-balancer: command line (load-balancer(8)) and start-up order. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfg.h"
#include "common.h"
#include "daemon.h"
#include "haproxy_import.h"
#include "log.h"
#include "rt.h"
#include "takeover.h"

#define EXIT_CONFIG 1
#define EXIT_USAGE 2
#define EXIT_STARTUP 3

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/load-balancer.conf"

static void
usage(FILE *fp)
{
	fprintf(
	    fp,
	    "usage: load-balancer [-f FILE] [-F] [-c] [-p PIDFILE] [-x] [-V] "
	    "[-h]\n"
	    "       load-balancer --import-haproxy HAPROXY.CFG\n"
	    "\n"
	    "  -f FILE     configuration file (default %s)\n"
	    "  -F          stay in the foreground and log to stderr too\n"
	    "  -c          check the configuration and exit\n"
	    "  -p PIDFILE  write the process id there (overrides "
	    "global.pidfile)\n"
	    "  -x          take the listening sockets over from the daemon "
	    "running on\n"
	    "              global.control_socket, which then stops "
	    "(--takeover)\n"
	    "  -V          print the version and exit\n"
	    "  -h          print this help and exit\n"
	    "\n"
	    "Exit status: 0 ok, 1 configuration error, 2 usage error, "
	    "3 start-up failure.\n",
	    DEFAULT_CONFIG);
}

static void
print_diag(const struct cfg_diag *diag)
{
	for (size_t i = 0; i < diag->n; i++)
		fprintf(stderr, "%s\n", diag->msgs[i]);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"import-haproxy", required_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"takeover", no_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_CONFIG, *pidfile = NULL, *import = NULL;
	bool foreground = false, check_only = false, daemonize,
	     takeover = false;
	struct sock_inherit inh = {.n = 0};
	char *ctl_path = NULL, err[600];
	int conn = -1;
	struct cfg_diag diag;
	struct cfg *cfg;
	struct rt *rt;
	struct pidfile *pf = NULL;
	struct daemon_start *ds = NULL;
	int ch, status, noptions = 0;

	log_init(LB_PROGRAM);
	while ((ch = getopt_long(argc, argv, "f:Fcp:xVh", longopts, NULL)) !=
	       -1) {
		noptions++;
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		case 'F':
			foreground = true;
			break;
		case 'c':
			check_only = true;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 'x':
			takeover = true;
			break;
		case 'V':
			printf("%s %s\n", LB_PROGRAM, PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'I':
			import = optarg;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", LB_PROGRAM,
		        argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (import != NULL) {
		/* load-balancer(8), OPTIONS: the translation on stdout, exit 0
		 * or 1. */
		if (noptions > 1) {
			fprintf(stderr,
			        "%s: --import-haproxy takes no other option\n",
			        LB_PROGRAM);
			usage(stderr);
			return EXIT_USAGE;
		}
		return haproxy_import_file(import, stdout, stderr);
	}

	cfg_diag_init(&diag);
	cfg = cfg_load_file(file, &diag);
	print_diag(&diag);
	cfg_diag_free(&diag);
	if (cfg == NULL)
		return EXIT_CONFIG;
	if (check_only) {
		printf("configuration OK\n");
		cfg_free(cfg);
		return 0;
	}

	/* A process that stays attached logs to stderr too; a daemon does
	 * until it is ready, so that whoever started it sees why a start
	 * failed. */
	daemonize = cfg->global.daemon && !foreground;
	if (pidfile == NULL && daemonize)
		pidfile = cfg->global.pidfile;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("signal(SIGPIPE)");
	log_hook_libevent();
	log_configure(cfg->global.log.syslog, cfg->global.log.facility,
	              cfg->global.log.ident, cfg->global.log.level, true);

	if (daemonize)
		/* Until it is ready: its problems, not its chatter. */
		log_stderr_max(LOG_WARNING);
	if (takeover && cfg->global.control_socket[0] == '\0') {
		fprintf(stderr,
		        "%s: -x: no global.control_socket to find the running "
		        "daemon on\n",
		        LB_PROGRAM);
		cfg_free(cfg);
		return EXIT_STARTUP;
	}
	if (takeover &&
	    (ctl_path = strdup(cfg->global.control_socket)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", LB_PROGRAM);
		cfg_free(cfg);
		return EXIT_STARTUP;
	}
	/* Owns cfg from here on. */
	if ((rt = rt_new(cfg, !daemonize)) == NULL) {
		free(ctl_path);
		return EXIT_STARTUP;
	}
	if (daemonize && (ds = daemon_fork()) == NULL)
		goto fail;
	if (takeover) {
		/* load-balancer(8), RESTART: the running daemon's sockets;
		 * its pidfile once we serve. */
		if ((conn = takeover_fetch(ctl_path, &inh, err, sizeof(err))) <
		    0) {
			log_warnx("takeover: %s", err);
			goto fail;
		}
		log_info("takeover: %zu listening sockets received from the "
		         "daemon on %s",
		         inh.n, ctl_path);
		/* Opened now, while we may; locked once the old one lets
		 * go of it. */
		if (pidfile != NULL && (pf = pidfile_prepare(pidfile)) == NULL)
			goto fail;
	} else if (pidfile != NULL && (pf = pidfile_open(pidfile)) == NULL)
		/* The pidfile lock first: a second start stops here, before
		 * it tries the addresses the first one holds. */
		goto fail;
	if (!takeover)
		rt_set_pidfile(rt, pf);
	if (rt_bind(rt, &inh, takeover) < 0 || rt_start(rt) < 0)
		goto fail;
	if (takeover) {
		/* Once "_takeover_done" is sent the old daemon may stop at
		 * any moment: whatever it answers, we serve from here on. */
		if (takeover_finish(conn, err, sizeof(err)) < 0)
			log_warnx("takeover: %s; serving anyway", err);
		conn = -1;
		/* Without the pidfile the init script would not find us,
		 * but we serve: say so. */
		if (pf != NULL && pidfile_claim(pf) < 0) {
			log_warnx("takeover: serving without the pidfile %s",
			          pidfile);
			pidfile_release(pf); /* not ours: left alone */
		} else
			rt_set_pidfile(rt, pf);
	}
	if (daemonize) {
		daemon_ready(ds, 0);
		log_stderr_max(-1);
	}
	rt_ready(rt);
	free(ctl_path);
	status = rt_run(rt);
	log_info("stopped");
	rt_free(rt);
	pidfile_close(pf);
	log_close();
	return status;

fail:
	/* Free the addresses and the pidfile first: a retry right after
	 * the parent exits must not find them taken.  A takeover that did
	 * not finish leaves the old daemon serving (it sees us go). */
	if (conn >= 0)
		close(conn);
	if (takeover)
		pidfile_release(pf); /* the old daemon's: left alone */
	sock_inherit_close(&inh);
	rt_free(rt);
	pidfile_close(pf);
	free(ctl_path);
	daemon_ready(ds, EXIT_STARTUP);
	return EXIT_STARTUP;
}
