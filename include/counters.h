/* The session counts and flags that every thread reads and writes: atomics,
 * so that no lock is needed for them.  One instance, in struct rt. */
#ifndef LB_COUNTERS_H
#define LB_COUNTERS_H

#include <stdatomic.h>
#include <time.h>

struct counters {
	atomic_uint cur_sess;     /* client sessions open */
	atomic_ullong total_sess; /* accepted since start */
	atomic_uint max_sess;     /* effective global maxconn */
	atomic_bool stopping;     /* SIGTERM/SIGINT: draining */
	atomic_bool fd_warned;    /* said "no descriptor for a server socket" */
	/* Listeners held off by a limit (maxconn, descriptor pause): a
	 * session that ends wakes the main thread to look again. */
	atomic_uint listeners_off;
	atomic_uint reloads;
	atomic_ullong grace_ms;  /* global.grace of the running configuration */
	atomic_bool closing_all; /* end of grace, SIGINT: no session starts */
	time_t started;
};

#endif
