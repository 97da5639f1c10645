/* load-balancer: command line (SPEC section 2) and start-up order. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfg.h"
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

static int
write_pidfile(const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn("cannot write pidfile %s", path);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		log_warn("cannot write pidfile %s", path);
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		log_warn("cannot write pidfile %s", path);
		return -1;
	}
	return 0;
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
	const char *file = DEFAULT_CONFIG, *pidfile = NULL;
	bool foreground = false, check_only = false, daemonize;
	struct cfg_diag diag;
	struct cfg *cfg;
	struct rt *rt;
	int ch, status;

	log_init(LB_PROGRAM);
	while ((ch = getopt_long(argc, argv, "f:Fcp:Vh", longopts, NULL)) !=
	       -1) {
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
			fprintf(stderr,
			        "%s: --import-haproxy is not available in "
			        "this version\n",
			        LB_PROGRAM);
			return EXIT_USAGE;
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

	/* A process that stays attached logs to stderr too. */
	daemonize = cfg->global.daemon && !foreground;
	if (pidfile == NULL && daemonize)
		pidfile = cfg->global.pidfile;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("signal(SIGPIPE)");
	log_hook_libevent();
	log_configure(cfg->global.log.syslog, cfg->global.log.facility,
	              cfg->global.log.ident, cfg->global.log.level, !daemonize);

	rt = rt_new(cfg, !daemonize);
	if (rt_bind(rt) < 0) {
		rt_free(rt);
		cfg_free(cfg);
		return EXIT_STARTUP;
	}
	if (daemonize && daemon(0, 0) < 0) {
		log_warn("cannot run in the background");
		return EXIT_STARTUP;
	}
	if (pidfile != NULL && write_pidfile(pidfile) < 0) {
		rt_free(rt);
		cfg_free(cfg);
		return EXIT_STARTUP;
	}
	if (rt_start(rt) < 0) {
		rt_free(rt);
		cfg_free(cfg);
		return EXIT_STARTUP;
	}
	log_info("started: %zu frontends, %zu backends, maxconn %u",
	         rt->nfrontends, rt->nbackends, rt->max_sess);
	status = rt_run(rt);
	log_info("stopped");
	rt_free(rt);
	if (pidfile != NULL && unlink(pidfile) < 0 && errno != ENOENT)
		log_warn("cannot remove pidfile %s", pidfile);
	cfg_free(cfg);
	log_close();
	return status;
}
