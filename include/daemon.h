/* Running as a daemon: fork with a readiness handshake, and the pidfile
 * (created, locked for the process's lifetime, removed at exit). */
#ifndef LB_DAEMON_H
#define LB_DAEMON_H

#include <stddef.h>

#include "sock.h"

struct pidfile;

struct daemon_start;

/* Fork into the background.  The parent waits until the child calls
 * daemon_ready() and exits with the status it reports (0, or 3 when the
 * start failed: the child has said why on stderr), so an init script sees
 * the real outcome.  Returns, in the child, what daemon_ready needs; NULL
 * (logged, still in the one process) when the fork could not be set up. */
struct daemon_start *daemon_fork(void);
/* The child is serving (status 0) or gives up (non-zero): tell the
 * parent.  On success stdin, stdout and stderr go to /dev/null (opened by
 * daemon_fork, before any chroot).  NULL: nothing to do. */
void daemon_ready(struct daemon_start *ds, int status);

/* Create or take over path, lock it (flock) and write our pid.  A file
 * locked by a live process stops us: NULL after logging that process's
 * pid.  A stale file (not locked) is replaced. */
struct pidfile *pidfile_open(const char *path);
/* A takeover (load-balancer(8), RESTART).  The new daemon opens the
 * pidfile before it drops privileges (pidfile_prepare, not locked), and
 * once the old daemon has let go of it (pidfile_release: unlocked, not
 * removed; from any thread, once, before pidfile_close) locks it and
 * writes its pid (pidfile_claim: 0, or -1 after logging).  pidfile_close
 * of a released pidfile only frees. */
struct pidfile *pidfile_prepare(const char *path);
int pidfile_claim(struct pidfile *pf);
void pidfile_release(struct pidfile *pf);
/* Remove and unlock (at exit).  Silent when the file is out of reach
 * after a privilege drop or chroot. */
void pidfile_close(struct pidfile *pf);

/* The service manager's readiness notification (load-balancer(8),
 * SYSTEMD): the sd_notify datagram protocol, spoken here (no libsystemd).
 * daemon_notify_open connects a datagram socket to $NOTIFY_SOCKET (a path
 * or "@abstract") before any chroot; -1 when it is not set (nothing to
 * tell) or unusable (logged).  daemon_notify sends one message, e.g.
 * "READY=1\nSTATUS=...", best effort (a failure is logged once per
 * call); fd -1 does nothing. */
int daemon_notify_open(void);
void daemon_notify(int fd, const char *msg);

/* systemd's file descriptor store (load-balancer(8), SYSTEMD): with
 * FileDescriptorStoreMax= in the unit, systemd keeps the listening
 * sockets we give it (FDSTORE=1, named after their address) across a
 * restart and hands them back ($LISTEN_FDS): connections that arrive
 * while no process runs wait in their queues instead of being refused.
 * daemon_store_fd gives one (sock) to the store (systemd ignores one it
 * has already); daemon_unstore_addr takes the one bound to sa out of it. */
void daemon_store_fd(int nfd, int sock);
void daemon_unstore_addr(int nfd, const struct sockaddr *sa);
/* The sockets systemd passes us ($LISTEN_PID is our pid), added to inh;
 * the variables are removed from the environment.  Returns how many. */
size_t daemon_listen_fds(struct sock_inherit *inh);

#endif
