/* Balancing algorithms (load-balancer.conf(5), BALANCING) over a plain
 * array, so they can be tested without servers or an event loop.  pool.c
 * fills the entries from its servers before each pick. */
#ifndef LB_LB_H
#define LB_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct lb_entry {
	uint64_t key;   /* stable hash of the server's name (lb_key) */
	int weight;     /* current weight; 0 = takes no new sessions */
	unsigned conns; /* current sessions (leastconn) */
	bool usable; /* may take new sessions at all (UP, ready, right tier) */
	bool room;   /* below its connection limit */
	int64_t current; /* smooth round robin state, kept between picks */
};

struct lb_state {
	size_t rr_next; /* leastconn tie-break rotation */
};

#define LB_PICK_NONE (-1) /* no usable server */
#define LB_PICK_FULL (-2) /* usable servers exist but none has room */

/* Returns the chosen index, LB_PICK_NONE or LB_PICK_FULL.  addr/addrlen
 * (the client's IP bytes) are used by LB_SOURCE only. */
int lb_pick(enum lb_algo algo, struct lb_entry *v, size_t n,
            struct lb_state *st, const void *addr, size_t addrlen);

/* Stable 64-bit key for a server name. */
uint64_t lb_key(const char *name);

#endif
