/* load-balancer: command line (SPEC section 2) and start-up order. */
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
	fprintf(fp,
	        "usage: load-balancer [-f FILE] [-F] [-c] [-p PIDFILE] [-V] "
	        "[-h]\n"
	        "       load-balancer --import-haproxy HAPROXY.CFG\n"
	        "\n"
	        "  -f FILE     configuration file (default %s)\n"
	        "  -F          stay in the foreground and log to stderr too\n"
	        "  -c          check the configuration and exit\n"
	        "  -p PIDFILE  write the process id there (overrides "
	        "global.pidfile)\n"
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
	    {NULL, 0, NULL, 0},
	};
	const char *file = DEFAULT_CONFIG, *pidfile = NULL, *import = NULL;
	bool foreground = false, check_only = false, daemonize;
	struct cfg_diag diag;
	struct cfg *cfg;
	struct rt *rt;
	struct pidfile *pf = NULL;
	struct daemon_start *ds = NULL;
	int ch, status, noptions = 0;

	log_init(LB_PROGRAM);
	while ((ch = getopt_long(argc, argv, "f:Fcp:Vh", longopts, NULL)) !=
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
		/* SPEC 2: the translation on stdout, exit 0 or 1. */
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
	/* Owns cfg from here on. */
	if ((rt = rt_new(cfg, !daemonize)) == NULL)
		return EXIT_STARTUP;
	if (daemonize && (ds = daemon_fork()) == NULL) {
		rt_free(rt);
		return EXIT_STARTUP;
	}
	/* The pidfile lock first: a second start stops here, before it
	 * tries the addresses the first one holds. */
	if ((pidfile != NULL && (pf = pidfile_open(pidfile)) == NULL) ||
	    rt_bind(rt) < 0 || rt_start(rt) < 0) {
		/* Free the addresses and the pidfile first: a retry right
		 * after the parent exits must not find them taken. */
		rt_free(rt);
		pidfile_close(pf);
		daemon_ready(ds, EXIT_STARTUP);
		return EXIT_STARTUP;
	}
	if (daemonize) {
		daemon_ready(ds, 0);
		log_stderr_max(-1);
	}
	status = rt_run(rt);
	log_info("stopped");
	rt_free(rt);
	pidfile_close(pf);
	log_close();
	return status;
}
