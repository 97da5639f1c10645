/* Socket options shared by listeners, the relay and checks: transparent
 * proxying (IP_TRANSPARENT) and outgoing sockets bound to a source. */
#ifndef LB_SOCK_H
#define LB_SOCK_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

/* IP_TRANSPARENT (IPv4) or IPV6_TRANSPARENT (IPv6) on fd: needs
 * CAP_NET_ADMIN.  Returns 0, or -1 with errno set. */
int sock_set_transparent(int fd, int family);

/* A non-blocking, close-on-exec TCP socket of family, bound to src (port
 * 0 picks a free one at connect time) when src is not NULL, with
 * IP_TRANSPARENT first when transparent is set (src need not be a local
 * address then).  Returns the socket, or -1 with errno set and *what
 * naming the step that failed ("socket", "IP_TRANSPARENT", "bind"). */
int sock_outgoing(int family, const struct sockaddr *src, socklen_t srclen,
                  bool transparent, const char **what);

/* src with its port set to 0 (the kernel picks one), into out; returns
 * the length, or 0 when src is neither IPv4 nor IPv6. */
socklen_t sock_addr_anyport(const struct sockaddr *src,
                            struct sockaddr_storage *out);

/* TCP_NODELAY, best effort. */
void sock_set_nodelay(int fd);
/* Read away (and drop) up to 2 KiB the peer sent, without waiting, so
 * that a close right after is a FIN and not a reset for unread data. */
void sock_discard_input(int fd);

/* Listening sockets handed over by a running daemon (load-balancer(8),
 * RESTART): each bind takes the one with its address, if any, instead of
 * binding anew.  At most SOCK_INHERIT_MAX. */
#define SOCK_INHERIT_MAX 256
struct sock_inherit {
	int fd[SOCK_INHERIT_MAX];
	struct sockaddr_storage addr[SOCK_INHERIT_MAX];
	size_t n;
};

/* Add fd (a listening TCP socket) with its own address; a socket that is
 * not one (or over the limit) is closed.  Returns 0 or -1. */
int sock_inherit_add(struct sock_inherit *inh, int fd);
/* The inherited socket bound to sa, removed from inh; -1 when none (or
 * inh is NULL). */
int sock_inherit_take(struct sock_inherit *inh, const struct sockaddr *sa);
/* Close the ones nobody took; returns how many. */
size_t sock_inherit_close(struct sock_inherit *inh);
/* Write all n bytes of p to fd (retried on EINTR and short writes; the
 * daemon ignores SIGPIPE).  Returns 0, or -1 with errno set. */
int sock_write_all(int fd, const void *p, size_t n);

/* Send len bytes of buf on the Unix socket s with the descriptor fd
 * attached (SCM_RIGHTS), in one sendmsg (retried on EINTR).  Returns what
 * sendmsg returns. */
ssize_t sock_send_fd(int s, const void *buf, size_t len, int fd);

/* Receive one byte on the Unix socket s and the descriptor it carries
 * (close-on-exec).  Returns it, or -1 with errno set (EBADMSG: no
 * descriptor came with the byte). */
int sock_recv_fd(int s);

/* Same address and port (IPv4 or IPv6)? */
bool sock_same_addr(const struct sockaddr *x, const struct sockaddr *y);

#endif
