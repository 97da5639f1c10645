/* Daemon start-up: fork with a readiness pipe, locked pidfile. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

#define EXIT_STARTUP 3

struct pidfile {
	char *path;
	int fd;
};

struct daemon_start {
	int pipe;    /* to the waiting parent */
	int devnull; /* opened before any chroot */
};

/* The parent: exit with the child's verdict. */
static void __attribute__((noreturn)) wait_for_child(pid_t pid, int fd)
{
	char status;
	ssize_t n;
	int ws;

	do
		n = read(fd, &status, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit((unsigned char)status);
	/* The child died before saying anything. */
	if (waitpid(pid, &ws, 0) == pid && WIFSIGNALED(ws))
		fprintf(stderr,
		        "load-balancer: the daemon was killed by signal "
		        "%d while starting\n",
		        WTERMSIG(ws));
	_exit(EXIT_STARTUP);
}

struct daemon_start *
daemon_fork(void)
{
	struct daemon_start *ds;
	int p[2];
	pid_t pid;

	if ((ds = calloc(1, sizeof(*ds))) == NULL) {
		log_warn("cannot run in the background");
		return NULL;
	}
	/* Now: after a chroot there may be no /dev/null. */
	if ((ds->devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		log_warn("cannot run in the background: /dev/null");
		free(ds);
		return NULL;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_warn("cannot run in the background: pipe");
		close(ds->devnull);
		free(ds);
		return NULL;
	}
	if ((pid = fork()) < 0) {
		log_warn("cannot run in the background: fork");
		close(p[0]);
		close(p[1]);
		close(ds->devnull);
		free(ds);
		return NULL;
	}
	if (pid > 0) {
		close(p[1]);
		wait_for_child(pid, p[0]);
	}
	close(p[0]);
	ds->pipe = p[1];
	if (setsid() < 0)
		log_warn("setsid");
	if (chdir("/") < 0)
		log_warn("chdir /");
	return ds;
}

void
daemon_ready(struct daemon_start *ds, int status)
{
	char c = (char)status;

	if (ds == NULL)
		return;
	if (status == 0 && (dup2(ds->devnull, STDIN_FILENO) < 0 ||
	                    dup2(ds->devnull, STDOUT_FILENO) < 0 ||
	                    dup2(ds->devnull, STDERR_FILENO) < 0))
		log_warn("cannot detach from the terminal: dup2");
	close(ds->devnull);
	if (write(ds->pipe, &c, 1) != 1)
		log_warn("cannot tell the parent process");
	close(ds->pipe);
	free(ds);
}

/* The pid written in an existing pidfile, or 0. */
static long
read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

struct pidfile *
pidfile_open(const char *path)
{
	struct pidfile *pf;
	char buf[32];
	int fd, n;

	for (int tries = 0;; tries++) {
		struct stat a, b;

		fd =
		    open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0) {
			log_warn("cannot open pidfile %s", path);
			return NULL;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK)
				log_warnx("pidfile %s is held by running "
				          "process %ld: already running",
				          path, read_pid(fd));
			else
				log_warn("cannot lock pidfile %s", path);
			close(fd);
			return NULL;
		}
		/* A daemon that was exiting may have removed the file
		 * between our open and our lock: then lock the new one. */
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			break;
		close(fd);
		if (tries == 10) {
			log_warnx("pidfile %s keeps changing", path);
			return NULL;
		}
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		log_warn("cannot write pidfile %s", path);
		close(fd);
		return NULL;
	}
	if ((pf = calloc(1, sizeof(*pf))) == NULL ||
	    (pf->path = strdup(path)) == NULL) {
		log_warn("pidfile");
		free(pf);
		close(fd);
		return NULL;
	}
	pf->fd = fd;
	return pf;
}

void
pidfile_close(struct pidfile *pf)
{
	if (pf == NULL)
		return;
	if (unlink(pf->path) < 0 && errno != ENOENT && errno != EACCES &&
	    errno != EPERM)
		log_warn("cannot remove pidfile %s", pf->path);
	close(pf->fd);
	free(pf->path);
	free(pf);
}
