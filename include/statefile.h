/* The operator state file (load-balancer.conf(5), OPERATOR STATE;
 * global.state_file): the drains, maintenances and weights set with
 * lbctl, one line per server, written whole to a temporary file and
 * renamed over the old one at every change, read at start and after a
 * reload.
 *
 *   # load-balancer operator state: written by the daemon at every
 *   # lbctl drain, disable, enable and set weight; lbctl enable clears
 *   # a server's line.
 *   server backend="TO-FILTER-CLUSTER" name=filter2 admin=drain
 *   server backend="TO-FILTER-CLUSTER" name=filter3 weight=50
 *   server backend=b name=c admin=maint weight=0
 *
 * Values are logfmt: quoted with "..." when they hold a space, a quote,
 * "=" or nothing, with \" and \\ inside quotes, and a control byte as
 * \xHH (a name may hold one; \x00 is refused).  admin is ready, drain or
 * maint; weight 0..256; at least one of the two.  Blank lines and lines
 * starting with "#" are ignored.  A bad line is skipped with a warning
 * that names its line; the good ones are used.
 *
 * Reading and writing go through a descriptor of the file's directory,
 * opened once at start (before any chroot and privilege drop), so that
 * both work from inside a chroot. */
#ifndef LB_STATEFILE_H
#define LB_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>

#define STATEFILE_NAME_MAX 256

enum statefile_admin {
	STATEFILE_ADMIN_NONE, /* not set by the operator */
	STATEFILE_READY,
	STATEFILE_DRAIN,
	STATEFILE_MAINT
};

struct statefile_entry {
	char backend[STATEFILE_NAME_MAX];
	char server[STATEFILE_NAME_MAX];
	enum statefile_admin admin;
	int weight; /* 0..256, -1 = not set */
};

struct statefile_list {
	struct statefile_entry *v;
	size_t n, cap;
};

void statefile_list_init(struct statefile_list *l);
void statefile_list_free(struct statefile_list *l);
/* Append a copy; -1 when out of memory. */
int statefile_list_add(struct statefile_list *l,
                       const struct statefile_entry *e);

/* Parse text (len bytes) into l (appended).  Each problem is passed to
 * warn as "LINE: message" (name is not added: the caller prefixes the
 * file).  Returns the number of entries added, or -1 when out of
 * memory. */
long statefile_parse(const char *text, size_t len, struct statefile_list *l,
                     void (*warn)(void *arg, const char *msg), void *arg);

/* The file's text for l, in l's order, into buf (NUL-terminated).
 * Returns the length, or -1 when it does not fit. */
long statefile_format(const struct statefile_list *l, char *buf, size_t len);

/* A state file: path, the descriptor of its directory. */
struct statefile {
	char *path;       /* absolute, as configured */
	const char *base; /* its last component, inside path */
	int dirfd;        /* -1 when the directory could not be opened */
};

/* Open the directory of path (it is not created).  Returns 0, or -1
 * with the reason in err (the caller warns: never fatal). */
int statefile_open(struct statefile *sf, const char *path, char *err,
                   size_t errlen);
void statefile_close(struct statefile *sf);

/* Read and parse the file (relative to the directory descriptor).  A
 * missing file is 0 entries and no warning.  Returns the number of
 * entries, or -1 with err (unreadable, larger than 16 MiB, out of
 * memory); bad lines go to warn as for statefile_parse. */
long statefile_load(const struct statefile *sf, struct statefile_list *l,
                    void (*warn)(void *arg, const char *msg), void *arg,
                    char *err, size_t errlen);

/* Write l: a temporary file in the same directory (BASE.tmp), written
 * in full, fsync'ed, renamed over the file, the directory fsync'ed.
 * Returns 0, or -1 with err (errno text); the old file stays whole. */
int statefile_save(const struct statefile *sf, const struct statefile_list *l,
                   char *err, size_t errlen);

#endif
