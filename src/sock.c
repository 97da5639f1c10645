/* Socket options: transparent proxying and source binding. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"

int
sock_set_transparent(int fd, int family)
{
	int one = 1;

	if (family == AF_INET6)
		return setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one,
		                  sizeof(one));
	return setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
}

int
sock_outgoing(int family, const struct sockaddr *src, socklen_t srclen,
              bool transparent, const char **what)
{
	int fd, one = 1, err;

	*what = "socket";
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (transparent && sock_set_transparent(fd, family) < 0) {
		*what =
		    family == AF_INET6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT";
		goto fail;
	}
	if (src != NULL) {
		/* The port is chosen at connect(), per destination, so a
		 * busy source address does not run out of ports as fast. */
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		                 sizeof(one));
		if (bind(fd, src, srclen) < 0) {
			*what = "bind";
			goto fail;
		}
	}
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

socklen_t
sock_addr_anyport(const struct sockaddr *src, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (src->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
		memcpy(in, src, sizeof(*in));
		in->sin_port = 0;
		return sizeof(*in);
	}
	if (src->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;
		memcpy(in6, src, sizeof(*in6));
		in6->sin6_port = 0;
		return sizeof(*in6);
	}
	return 0;
}

void
sock_set_nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		                 sizeof(one));
}

void
sock_discard_input(int fd)
{
	char sink[512];

	for (int i = 0; i < 4; i++)
		if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
}

bool
sock_same_addr(const struct sockaddr *x, const struct sockaddr *y)
{
	if (x->sa_family != y->sa_family)
		return false;
	if (x->sa_family == AF_INET) {
		const struct sockaddr_in *p = (const void *)x,
		                         *q = (const void *)y;
		return p->sin_port == q->sin_port &&
		       p->sin_addr.s_addr == q->sin_addr.s_addr;
	}
	if (x->sa_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const void *)x,
		                          *q = (const void *)y;
		return p->sin6_port == q->sin6_port &&
		       memcmp(&p->sin6_addr, &q->sin6_addr,
		              sizeof(p->sin6_addr)) == 0;
	}
	return false;
}

int
sock_inherit_add(struct sock_inherit *inh, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0, listening = 0;
	socklen_t tl = sizeof(type), ll = sizeof(listening);

	memset(&ss, 0, sizeof(ss));
	if (inh->n >= SOCK_INHERIT_MAX ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 ||
	    !listening) {
		close(fd);
		return -1;
	}
	/* A socket from a .socket unit may be blocking: accept must not
	 * block the event loop. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		close(fd);
		return -1;
	}
	inh->fd[inh->n] = fd;
	inh->addr[inh->n] = ss;
	inh->n++;
	return 0;
}

int
sock_inherit_take(struct sock_inherit *inh, const struct sockaddr *sa)
{
	if (inh == NULL)
		return -1;
	for (size_t i = 0; i < inh->n; i++) {
		int fd = inh->fd[i];

		if (!sock_same_addr((const struct sockaddr *)&inh->addr[i], sa))
			continue;
		inh->n--;
		inh->fd[i] = inh->fd[inh->n];
		inh->addr[i] = inh->addr[inh->n];
		return fd;
	}
	return -1;
}

size_t
sock_inherit_close(struct sock_inherit *inh)
{
	size_t n = inh->n;

	for (size_t i = 0; i < inh->n; i++)
		close(inh->fd[i]);
	inh->n = 0;
	return n;
}

ssize_t
sock_send_fd(int s, const void *buf, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;
	ssize_t w;

	memset(&msg, 0, sizeof(msg));
	memset(&u, 0, sizeof(u));
	iov.iov_base = (void *)(uintptr_t)buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		w = sendmsg(s, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w;
}

int
sock_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sock_recv_fd(int s)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;
	char byte;
	ssize_t r;
	int fd = -1;

	memset(&msg, 0, sizeof(msg));
	memset(&u, 0, sizeof(u));
	iov.iov_base = &byte;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do
		r = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		if (r == 0)
			errno = ECONNRESET;
		return -1;
	}
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (fd < 0 || (msg.msg_flags & MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		errno = EBADMSG;
		return -1;
	}
	return fd;
}
