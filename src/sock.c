/* Socket options: transparent proxying and source binding. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
