/* Running as a daemon: fork with a readiness handshake, and the pidfile
 * (created, locked for the process's lifetime, removed at exit). */
#ifndef LB_DAEMON_H
#define LB_DAEMON_H

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
/* Remove and unlock (at exit).  Silent when the file is out of reach
 * after a privilege drop or chroot. */
void pidfile_close(struct pidfile *pf);

#endif
