/* Daemon start-up: fork with a readiness pipe, locked pidfile. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
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

/* Our pid, alone in the file: 0, or -1 after logging. */
static int
write_pid(int fd, const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		log_warn("cannot write pidfile %s", path);
		return -1;
	}
	return 0;
}

static struct pidfile *
pidfile_new(const char *path, int fd)
{
	struct pidfile *pf;

	if ((pf = calloc(1, sizeof(*pf))) == NULL ||
	    (pf->path = strdup(path)) == NULL) {
		log_warn("pidfile");
		free(pf);
		return NULL;
	}
	pf->fd = fd;
	return pf;
}

struct pidfile *
pidfile_open(const char *path)
{
	struct pidfile *pf;
	int fd;

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
	if (write_pid(fd, path) < 0 || (pf = pidfile_new(path, fd)) == NULL) {
		close(fd);
		return NULL;
	}
	return pf;
}

struct pidfile *
pidfile_prepare(const char *path)
{
	struct pidfile *pf;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0) {
		log_warn("cannot open pidfile %s", path);
		return NULL;
	}
	if ((pf = pidfile_new(path, fd)) == NULL)
		close(fd);
	return pf;
}

int
pidfile_claim(struct pidfile *pf)
{
	/* The old daemon lets go of its lock when it answers; a moment
	 * more for a slow one. */
	for (int tries = 0; flock(pf->fd, LOCK_EX | LOCK_NB) < 0; tries++) {
		if (errno != EWOULDBLOCK || tries == 50) {
			log_warn("cannot lock pidfile %s", pf->path);
			return -1;
		}
		usleep(100 * 1000);
	}
	return write_pid(pf->fd, pf->path);
}

void
pidfile_release(struct pidfile *pf)
{
	if (pf == NULL || pf->fd < 0)
		return;
	/* Not removed: the new daemon has it open already (and after a
	 * privilege drop we could not). */
	close(pf->fd);
	pf->fd = -1;
}

void
pidfile_close(struct pidfile *pf)
{
	if (pf == NULL)
		return;
	if (pf->fd < 0) {
		/* Released: the file is another process's now. */
		free(pf->path);
		free(pf);
		return;
	}
	if (unlink(pf->path) < 0 && errno != ENOENT && errno != EACCES &&
	    errno != EPERM)
		log_warn("cannot remove pidfile %s", pf->path);
	close(pf->fd);
	free(pf->path);
	free(pf);
}

int
daemon_notify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;
	int fd;

	if (path == NULL || path[0] == '\0')
		return -1;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET=%s: not a socket path; the service "
		          "manager will not hear from us",
		          path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* the abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                  (path[0] == '@' ? 0 : 1));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		log_warn("NOTIFY_SOCKET: socket");
		return -1;
	}
	/* Connected now: after a chroot the path is out of reach. */
	if (connect(fd, (struct sockaddr *)&sun, len) < 0) {
		log_warn("NOTIFY_SOCKET=%s: connect", path);
		close(fd);
		return -1;
	}
	return fd;
}

void
daemon_notify(int fd, const char *msg)
{
	if (fd < 0)
		return;
	if (send(fd, msg, strlen(msg), MSG_NOSIGNAL) < 0)
		log_warn("NOTIFY_SOCKET: cannot tell the service manager");
}

/* A store name for an address: "127.0.0.1_25" or "__1_25" ("::1"):
 * systemd's names may not hold ':'. */
static int
store_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	const void *a;
	unsigned port;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		a = &in->sin_addr;
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		a = &in6->sin6_addr;
		port = ntohs(in6->sin6_port);
	} else
		return -1;
	if (inet_ntop(sa->sa_family, a, host, sizeof(host)) == NULL)
		return -1;
	for (char *p = host; *p != '\0'; p++)
		if (*p == ':')
			*p = '_';
	snprintf(buf, len, "%s_%u", host, port);
	return 0;
}

static int
sock_store_name(int sock, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(sock, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	return store_name((const struct sockaddr *)&ss, buf, len);
}

void
daemon_store_fd(int nfd, int sock)
{
	char name[96], text[160];
	int n;

	if (nfd < 0 || sock < 0 ||
	    sock_store_name(sock, name, sizeof(name)) < 0)
		return;
	n = snprintf(text, sizeof(text), "FDSTORE=1\nFDNAME=%s", name);
	if (sock_send_fd(nfd, text, (size_t)n, sock) < 0)
		log_warn("NOTIFY_SOCKET: cannot store listening socket %s",
		         name);
}

void
daemon_unstore_addr(int nfd, const struct sockaddr *sa)
{
	char name[96], text[160];

	if (nfd < 0 || store_name(sa, name, sizeof(name)) < 0)
		return;
	snprintf(text, sizeof(text), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	daemon_notify(nfd, text);
}

size_t
daemon_listen_fds(struct sock_inherit *inh)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	unsigned long n;
	size_t got = 0;
	char *end;

	if (pid == NULL || fds == NULL ||
	    strtol(pid, &end, 10) != (long)getpid() || *end != '\0')
		return 0;
	n = strtoul(fds, &end, 10);
	if (*end != '\0' || n > SOCK_INHERIT_MAX)
		n = 0;
	for (unsigned long i = 0; i < n; i++) {
		int fd = 3 + (int)i;

		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			continue;
		if (sock_inherit_add(inh, fd) == 0)
			got++;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return got;
}
