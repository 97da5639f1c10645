/* A configuration generation: the configuration and the objects built
 * from it (frontends, the pool's backends and servers), with a reference
 * count.  The current generation holds a reference for being current;
 * every session holds one on the generation of its frontend and one on
 * that of its backend (so that a reload never frees what a session still
 * uses); a retired generation holds one on the generation that replaced
 * it (its objects' successors live there).  The last gen_unref frees it,
 * on whichever thread that happens: its listeners are closed by then (the
 * main thread closes them when it stops accepting on them). */
#ifndef LB_GEN_H
#define LB_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"
#include "listener.h"
#include "pool.h"

struct gen {
	struct cfg *cfg;
	struct pool_set *pool;
	struct frontend *frontends;
	size_t nfrontends;
	atomic_uint refs;
	atomic_bool retired; /* a newer generation is current */
	struct gen *next;    /* that generation (a reference) */
};

/* The objects of cfg, which the generation owns from now on; nothing is
 * bound.  One reference, the caller's.  NULL when out of memory (logged;
 * cfg is freed). */
struct gen *gen_new(struct cfg *cfg);
void gen_ref(struct gen *g);
void gen_unref(struct gen *g);
/* old is replaced by next: each frontend gets its successor (the one of
 * the same name) and its counters move there, old holds next, and old is
 * marked retired.  Before the threads that use old are told (their
 * mailboxes). */
void gen_retire(struct gen *old, struct gen *next);
/* Once every thread has been told: what was counted on old's frontends
 * meanwhile moves to their successors too. */
void gen_settle(struct gen *old);

struct frontend *gen_find_frontend(struct gen *g, const char *name);
/* The generation a backend belongs to. */
struct gen *gen_of_backend(const struct backend *be);
size_t gen_nservers(const struct gen *g);
/* Can this process connect to the servers from each backend's source
 * ("clientip" needs IP_TRANSPARENT, "ADDR" must bind)?  Returns 0, or -1
 * after logging one line saying what and why. */
int gen_probe_sources(const struct gen *g);

#endif
