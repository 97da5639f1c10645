/* Balancing algorithms (load-balancer.conf(5), BALANCING).
 *
 * roundrobin: smooth weighted round robin (as nginx): every pick adds each
 *   candidate's weight to its running score, takes the highest and subtracts
 *   the total weight from it.  Weights 3:1:1 give A B A C A; a weight change
 *   applies from the next pick.
 * leastconn: fewest (sessions + 1) / weight (HAProxy's key), ties broken
 *   by a rotating start position, i.e. round robin.
 * source: weighted rendezvous hashing of the client address: each server
 *   scores weight / -ln(h(server, client)), the highest wins.  The same
 *   client keeps its server while it is usable, and when a server leaves
 *   only the clients it had move (to their second-best server).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "lb.h"

static uint64_t
mix64(uint64_t x)
{
	/* splitmix64 finalizer */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t
fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t
lb_key(const char *name)
{
	return mix64(fnv1a(name, strlen(name)));
}

static bool
candidate(const struct lb_entry *e)
{
	return e->usable && e->weight > 0;
}

static int
pick_roundrobin(struct lb_entry *v, size_t n)
{
	int64_t total = 0;
	int best = -1;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		if (!candidate(&v[i]))
			continue;
		any = true;
		if (!v[i].room)
			continue;
		v[i].current += v[i].weight;
		total += v[i].weight;
		if (best < 0 || v[i].current > v[best].current)
			best = (int)i;
	}
	if (best < 0)
		return any ? LB_PICK_FULL : LB_PICK_NONE;
	v[best].current -= total;
	return best;
}

static int
pick_leastconn(struct lb_entry *v, size_t n, struct lb_state *st)
{
	int best = -1;
	bool any = false;

	if (n == 0)
		return LB_PICK_NONE;
	for (size_t k = 0; k < n; k++) {
		size_t i = (st->rr_next + k) % n;
		if (!candidate(&v[i]))
			continue;
		any = true;
		if (!v[i].room)
			continue;
		if (best < 0) {
			best = (int)i;
			continue;
		}
		/* (c_i + 1) / w_i < (c_b + 1) / w_b */
		if ((uint64_t)(v[i].conns + 1ULL) * (uint64_t)v[best].weight <
		    (uint64_t)(v[best].conns + 1ULL) * (uint64_t)v[i].weight)
			best = (int)i;
	}
	if (best < 0)
		return any ? LB_PICK_FULL : LB_PICK_NONE;
	st->rr_next = (size_t)best + 1;
	return best;
}

static int
pick_source(struct lb_entry *v, size_t n, const void *addr, size_t addrlen)
{
	uint64_t h = fnv1a(addr, addrlen);
	double best_score = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		uint64_t x;
		double u, score;

		if (!candidate(&v[i]))
			continue;
		x = mix64(h ^ v[i].key);
		/* u in (0, 1): 53 random bits, never 0 nor 1 */
		u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
		score = (double)v[i].weight / -log(u);
		if (best < 0 || score > best_score ||
		    (score == best_score && v[i].key > v[best].key)) {
			best = (int)i;
			best_score = score;
		}
	}
	if (best < 0)
		return LB_PICK_NONE;
	if (!v[best].room)
		return LB_PICK_FULL;
	return best;
}

int
lb_pick(enum lb_algo algo, struct lb_entry *v, size_t n, struct lb_state *st,
        const void *addr, size_t addrlen)
{
	switch (algo) {
	case LB_ROUNDROBIN:
		return pick_roundrobin(v, n);
	case LB_LEASTCONN:
		return pick_leastconn(v, n, st);
	case LB_SOURCE:
		return pick_source(v, n, addr, addrlen);
	}
	return LB_PICK_NONE;
}
