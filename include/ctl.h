/* The control socket (SPEC section 2): a Unix stream socket, one text
 * command per line, a text reply ended by an empty line, errors begin
 * with "error: ".  Commands read views and call server_set_admin(),
 * server_set_weight() and session_close_server(); nothing is freed here. */
#ifndef LB_CTL_H
#define LB_CTL_H

#include <event2/buffer.h>
#include <event2/event.h>

#include "common.h"

#define CTL_LINE_MAX 1024 /* a longer command line is refused */
#define CTL_CLIENTS_MAX 16

struct ctl;

/* Create the socket (mode 0600) before daemonizing.  A stale socket file
 * is replaced; a live one (another daemon answers) is an error.  Returns
 * NULL after logging what failed. */
struct ctl *ctl_bind(struct rt *rt, const char *path);
int ctl_start(struct ctl *ctl, struct event_base *base);
/* Close, unlink the socket file and free. */
void ctl_free(struct ctl *ctl);

/* Run one command line and append the reply, with its final empty line. */
void ctl_execute(struct rt *rt, const char *line, struct evbuffer *out);

#endif
