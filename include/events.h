/* Health events (load-balancer.conf(5), LOGS): the pool's events as
 * logfmt lines in the health log. */
#ifndef LB_EVENTS_H
#define LB_EVENTS_H

#include "healthlog.h"
#include "pool.h"

/* One event; hl NULL: syslog only. */
void events_write(struct healthlog *hl, const struct pool_event *ev);
/* The events of a pool_work, in order. */
void events_write_work(struct healthlog *hl, const struct pool_work *w);

#endif
