/* Listening sockets handed from a running daemon to its successor (see
 * takeover.h). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "takeover.h"

#define LINE_MAX_LEN 512

/* One line (without its "\n") from the blocking socket s, read a byte at
 * a time so that nothing after it (a descriptor's byte) is consumed. */
static int
read_line(int s, char *buf, size_t len)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = recv(s, &c, 1, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (c == '\n')
			break;
		if (n + 1 >= len) {
			errno = EMSGSIZE;
			return -1;
		}
		buf[n++] = c;
	}
	buf[n] = '\0';
	return 0;
}

int
takeover_fetch(const char *path, struct sock_inherit *inh, char *err,
               size_t errlen)
{
	struct timeval tv = {TAKEOVER_TIMEOUT_S, 0};
	struct sockaddr_un sun;
	char line[LINE_MAX_LEN];
	unsigned long n;
	char *end;
	int s;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		snprintf(err, errlen, "control socket %s: timeouts: %s", path,
		         strerror(errno));
		close(s);
		return -1;
	}
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(err, errlen,
		         "no daemon answers on the control socket %s: %s", path,
		         strerror(errno));
		close(s);
		return -1;
	}
	if (sock_write_all(s, "_getsocks\n", 10) < 0 ||
	    read_line(s, line, sizeof(line)) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path,
		         strerror(errno));
		close(s);
		return -1;
	}
	if (strncmp(line, "fds ", 4) != 0 ||
	    (n = strtoul(line + 4, &end, 10), *end != '\0') ||
	    n > SOCK_INHERIT_MAX) {
		snprintf(err, errlen, "the running daemon says: %s", line);
		close(s);
		return -1;
	}
	for (unsigned long i = 0; i < n; i++) {
		int fd = sock_recv_fd(s);

		if (fd < 0) {
			snprintf(err, errlen,
			         "control socket %s: socket %lu of %lu: %s",
			         path, i + 1, n, strerror(errno));
			sock_inherit_close(inh);
			close(s);
			return -1;
		}
		/* Not a listening TCP socket: closed, not used. */
		(void)sock_inherit_add(inh, fd);
	}
	return s;
}

int
takeover_finish(int conn, char *err, size_t errlen)
{
	char line[LINE_MAX_LEN];
	int rc = 0;

	if (sock_write_all(conn, "_takeover_done\n", 15) < 0 ||
	    read_line(conn, line, sizeof(line)) < 0) {
		snprintf(err, errlen, "the running daemon did not answer: %s",
		         strerror(errno));
		rc = -1;
	} else if (strncmp(line, "ok", 2) != 0) {
		snprintf(err, errlen, "the running daemon says: %s", line);
		rc = -1;
	}
	close(conn);
	return rc;
}

int
takeover_send(int sock, const int *fds, size_t n)
{
	char head[32];
	int len = snprintf(head, sizeof(head), "fds %zu\n", n);

	if (sock_write_all(sock, head, (size_t)len) < 0)
		return -1;
	for (size_t i = 0; i < n;) {
		ssize_t w = sock_send_fd(sock, "S", 1, fds[i]);

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The peer does not read: wait a little for room. */
			struct pollfd p = {.fd = sock, .events = POLLOUT};

			if (poll(&p, 1, 1000) == 1)
				continue;
			errno = ETIMEDOUT;
			return -1;
		}
		if (w != 1)
			return -1;
		i++;
	}
	return 0;
}

pid_t
takeover_peer_pid(int sock)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return 0;
	return cr.pid;
}
