/* Unit tests for lb.c: the balancing algorithms of load-balancer.conf(5),
 * BALANCING. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "common.h"
#include "lb.h"

#define NADDR 10000

/* Deterministic pseudo-random numbers (splitmix64), so that the
 * distribution tests give the same result on every run. */
static uint64_t
rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
rnd_bytes(uint64_t *s, unsigned char *buf, size_t len)
{
	size_t i;
	uint64_t r = 0;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			r = rnd_next(s);
		buf[i] = (unsigned char)(r >> (8 * (i % 8)));
	}
}

/* Fill v[0..n-1] as usable, with room, weight 1, no sessions, keys from
 * the names "filter1", "filter2", ... */
static void
entries_init(struct lb_entry *v, size_t n)
{
	char name[32];
	size_t i;

	memset(v, 0, n * sizeof(*v));
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "filter%zu", i + 1);
		v[i].key = lb_key(name);
		v[i].weight = 1;
		v[i].conns = 0;
		v[i].usable = true;
		v[i].room = true;
		v[i].current = 0;
	}
}

static int
pick(enum lb_algo algo, struct lb_entry *v, size_t n, struct lb_state *st)
{
	return lb_pick(algo, v, n, st, NULL, 0);
}

static const enum lb_algo all_algos[] = {LB_ROUNDROBIN, LB_LEASTCONN,
                                         LB_SOURCE};

static const unsigned char addr4[4] = {192, 0, 2, 10};

/* ---------------------------------------------------------------- */
/* Common: NONE and FULL for every algorithm. */

START_TEST(none_when_empty)
{
	struct lb_state st;
	struct lb_entry v[1];
	size_t a;

	for (a = 0; a < ARRAY_SIZE(all_algos); a++) {
		memset(&st, 0, sizeof(st));
		ck_assert_int_eq(lb_pick(all_algos[a], v, 0, &st, addr4, 4),
		                 LB_PICK_NONE);
	}
}
END_TEST

START_TEST(none_when_nothing_usable)
{
	struct lb_state st;
	struct lb_entry v[3];
	size_t a;

	for (a = 0; a < ARRAY_SIZE(all_algos); a++) {
		memset(&st, 0, sizeof(st));
		entries_init(v, 3);
		v[0].usable = v[1].usable = v[2].usable = false;
		ck_assert_msg(lb_pick(all_algos[a], v, 3, &st, addr4, 4) ==
		                  LB_PICK_NONE,
		              "algo %d: want LB_PICK_NONE", (int)all_algos[a]);
		/* Not usable and no room: still NONE, not FULL. */
		v[1].room = false;
		ck_assert_msg(lb_pick(all_algos[a], v, 3, &st, addr4, 4) ==
		                  LB_PICK_NONE,
		              "algo %d: want LB_PICK_NONE", (int)all_algos[a]);
	}
}
END_TEST

START_TEST(none_when_all_weight_zero)
{
	struct lb_state st;
	struct lb_entry v[3];
	size_t a;

	for (a = 0; a < ARRAY_SIZE(all_algos); a++) {
		memset(&st, 0, sizeof(st));
		entries_init(v, 3);
		v[0].weight = v[1].weight = v[2].weight = 0;
		ck_assert_msg(lb_pick(all_algos[a], v, 3, &st, addr4, 4) ==
		                  LB_PICK_NONE,
		              "algo %d: weight 0 everywhere, want LB_PICK_NONE",
		              (int)all_algos[a]);
	}
}
END_TEST

START_TEST(full_when_no_room)
{
	struct lb_state st;
	struct lb_entry v[3];
	size_t a;

	for (a = 0; a < ARRAY_SIZE(all_algos); a++) {
		memset(&st, 0, sizeof(st));
		entries_init(v, 3);
		v[0].room = v[1].room = v[2].room = false;
		ck_assert_msg(lb_pick(all_algos[a], v, 3, &st, addr4, 4) ==
		                  LB_PICK_FULL,
		              "algo %d: want LB_PICK_FULL", (int)all_algos[a]);
		/* One unusable, the others full: still FULL. */
		v[1].usable = false;
		ck_assert_msg(lb_pick(all_algos[a], v, 3, &st, addr4, 4) ==
		                  LB_PICK_FULL,
		              "algo %d: want LB_PICK_FULL", (int)all_algos[a]);
	}
}
END_TEST

START_TEST(single_entry)
{
	struct lb_state st;
	struct lb_entry v[1];
	size_t a;
	int i;

	for (a = 0; a < ARRAY_SIZE(all_algos); a++) {
		memset(&st, 0, sizeof(st));
		entries_init(v, 1);
		v[0].weight = 7;
		for (i = 0; i < 20; i++)
			ck_assert_int_eq(
			    lb_pick(all_algos[a], v, 1, &st, addr4, 4), 0);
	}
}
END_TEST

/* ---------------------------------------------------------------- */
/* Round robin. */

START_TEST(rr_equal_weights_cycle)
{
	struct lb_state st;
	struct lb_entry v[3];
	int i;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(pick(LB_ROUNDROBIN, v, 3, &st), i % 3);
}
END_TEST

START_TEST(rr_smooth_3_1_1)
{
	static const int want[5] = {0, 1, 0, 2, 0}; /* A B A C A */
	struct lb_state st;
	struct lb_entry v[3];
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	v[0].weight = 3;
	for (i = 0; i < 50; i++) {
		got = pick(LB_ROUNDROBIN, v, 3, &st);
		ck_assert_msg(got == want[i % 5],
		              "pick %d: got %d, want %d (A B A C A)", i, got,
		              want[i % 5]);
	}
}
END_TEST

START_TEST(rr_never_repeats_when_avoidable)
{
	/* 2:1: A B A A B A ...  never more than two A in a row, and
	 * 5:5:1 never the same server twice in a row. */
	struct lb_state st;
	struct lb_entry v[3];
	int i, got, prev = -1;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	v[0].weight = 5;
	v[1].weight = 5;
	v[2].weight = 1;
	for (i = 0; i < 1100; i++) {
		got = pick(LB_ROUNDROBIN, v, 3, &st);
		ck_assert_int_ge(got, 0);
		ck_assert_msg(got != prev, "pick %d: %d twice in a row", i,
		              got);
		prev = got;
	}
}
END_TEST

START_TEST(rr_exact_proportions)
{
	static const int weights[4] = {5, 3, 2, 0};
	struct lb_state st;
	struct lb_entry v[4];
	int count[4] = {0, 0, 0, 0};
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 4);
	for (i = 0; i < 4; i++)
		v[i].weight = weights[i];
	for (i = 0; i < 5000; i++) {
		got = pick(LB_ROUNDROBIN, v, 4, &st);
		ck_assert_int_ge(got, 0);
		ck_assert_int_lt(got, 4);
		count[got]++;
	}
	ck_assert_int_eq(count[0], 2500);
	ck_assert_int_eq(count[1], 1500);
	ck_assert_int_eq(count[2], 1000);
	ck_assert_int_eq(count[3], 0);
}
END_TEST

START_TEST(rr_exact_proportions_large_weights)
{
	struct lb_state st;
	struct lb_entry v[3];
	int count[3] = {0, 0, 0};
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	v[0].weight = 256;
	v[1].weight = 100;
	v[2].weight = 144;
	for (i = 0; i < 5000; i++) {
		got = pick(LB_ROUNDROBIN, v, 3, &st);
		ck_assert_int_ge(got, 0);
		count[got]++;
	}
	ck_assert_int_eq(count[0], 2560);
	ck_assert_int_eq(count[1], 1000);
	ck_assert_int_eq(count[2], 1440);
}
END_TEST

START_TEST(rr_skips_unusable_full_and_weight_zero)
{
	struct lb_state st;
	struct lb_entry v[5];
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 5);
	v[0].usable = false;
	v[2].room = false;
	v[3].weight = 0;
	for (i = 0; i < 40; i++) {
		got = pick(LB_ROUNDROBIN, v, 5, &st);
		ck_assert_msg(got == 1 || got == 4, "pick %d: got %d", i, got);
		ck_assert_int_eq(got, i % 2 == 0 ? 1 : 4);
	}
}
END_TEST

START_TEST(rr_weight_change_at_once)
{
	struct lb_state st;
	struct lb_entry v[3];
	int count[3] = {0, 0, 0};
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	for (i = 0; i < 7; i++)
		pick(LB_ROUNDROBIN, v, 3, &st);

	/* Weight 0: the very next picks avoid it. */
	v[1].weight = 0;
	for (i = 0; i < 20; i++) {
		got = pick(LB_ROUNDROBIN, v, 3, &st);
		ck_assert_msg(got == 0 || got == 2,
		              "pick %d after weight 0: got %d", i, got);
	}

	/* Back to weight 1: picked again within one round. */
	v[1].weight = 1;
	for (i = 0; i < 6; i++) {
		got = pick(LB_ROUNDROBIN, v, 3, &st);
		count[got]++;
	}
	ck_assert_msg(count[1] >= 1, "weight restored but not picked");

	/* New proportions 6:3:1 hold from then on. */
	v[0].weight = 6;
	v[1].weight = 3;
	v[2].weight = 1;
	count[0] = count[1] = count[2] = 0;
	for (i = 0; i < 1000; i++) {
		got = pick(LB_ROUNDROBIN, v, 3, &st);
		ck_assert_int_ge(got, 0);
		count[got]++;
	}
	ck_assert_msg(abs(count[0] - 600) <= 3 && abs(count[1] - 300) <= 3 &&
	                  abs(count[2] - 100) <= 3,
	              "after weight change 6:3:1 got %d:%d:%d over 1000",
	              count[0], count[1], count[2]);
}
END_TEST

START_TEST(rr_entry_returns_after_down)
{
	struct lb_state st;
	struct lb_entry v[3];
	int count[3] = {0, 0, 0};
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	v[2].usable = false;
	for (i = 0; i < 11; i++)
		ck_assert_int_ne(pick(LB_ROUNDROBIN, v, 3, &st), 2);
	v[2].usable = true;
	for (i = 0; i < 300; i++) {
		got = pick(LB_ROUNDROBIN, v, 3, &st);
		count[got]++;
	}
	ck_assert_msg(abs(count[0] - 100) <= 2 && abs(count[1] - 100) <= 2 &&
	                  abs(count[2] - 100) <= 2,
	              "after return got %d:%d:%d", count[0], count[1],
	              count[2]);
}
END_TEST

START_TEST(rr_full_then_room)
{
	struct lb_state st;
	struct lb_entry v[2];
	int i;

	memset(&st, 0, sizeof(st));
	entries_init(v, 2);
	v[0].room = false;
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(pick(LB_ROUNDROBIN, v, 2, &st), 1);
	v[1].room = false;
	ck_assert_int_eq(pick(LB_ROUNDROBIN, v, 2, &st), LB_PICK_FULL);
	v[0].room = true;
	ck_assert_int_eq(pick(LB_ROUNDROBIN, v, 2, &st), 0);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Least connections. */

START_TEST(lc_fewest_conns)
{
	struct lb_state st;
	struct lb_entry v[4];

	memset(&st, 0, sizeof(st));
	entries_init(v, 4);
	v[0].conns = 5;
	v[1].conns = 2;
	v[2].conns = 7;
	v[3].conns = 3;
	ck_assert_int_eq(pick(LB_LEASTCONN, v, 4, &st), 1);
	v[1].conns = 9;
	ck_assert_int_eq(pick(LB_LEASTCONN, v, 4, &st), 3);
}
END_TEST

START_TEST(lc_relative_to_weight)
{
	struct lb_state st;
	struct lb_entry v[2];

	memset(&st, 0, sizeof(st));
	entries_init(v, 2);
	/* (9+1)/10 = 1 < (1+1)/1 = 2 */
	v[0].weight = 10;
	v[0].conns = 9;
	v[1].weight = 1;
	v[1].conns = 1;
	ck_assert_int_eq(pick(LB_LEASTCONN, v, 2, &st), 0);
	/* (10+1)/10 = 1.1 > (0+1)/1 = 1 */
	v[0].conns = 10;
	v[1].conns = 0;
	ck_assert_int_eq(pick(LB_LEASTCONN, v, 2, &st), 1);
	/* (20+1)/3 = 7 > (5+1)/1 = 6: not conns/weight (6.67 < 5) */
	v[0].weight = 3;
	v[0].conns = 20;
	v[1].weight = 1;
	v[1].conns = 5;
	ck_assert_int_eq(pick(LB_LEASTCONN, v, 2, &st), 1);
}
END_TEST

START_TEST(lc_no_overflow_large_values)
{
	struct lb_state st;
	struct lb_entry v[2];

	memset(&st, 0, sizeof(st));
	entries_init(v, 2);
	v[0].weight = 256;
	v[0].conns = 4000000000u;
	v[1].weight = 255;
	v[1].conns = 4000000000u;
	/* 4000000001/256 < 4000000001/255 */
	ck_assert_int_eq(pick(LB_LEASTCONN, v, 2, &st), 0);
	v[0].weight = 1;
	ck_assert_int_eq(pick(LB_LEASTCONN, v, 2, &st), 1);
}
END_TEST

START_TEST(lc_ties_rotate)
{
	struct lb_state st;
	struct lb_entry v[4];
	int seen[4];
	int round, i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 4);
	for (i = 0; i < 4; i++)
		v[i].conns = 3;
	for (round = 0; round < 5; round++) {
		memset(seen, 0, sizeof(seen));
		for (i = 0; i < 4; i++) {
			got = pick(LB_LEASTCONN, v, 4, &st);
			ck_assert_int_ge(got, 0);
			ck_assert_int_lt(got, 4);
			ck_assert_msg(!seen[got],
			              "round %d: %d picked twice before all "
			              "tied entries had a turn",
			              round, got);
			seen[got] = 1;
		}
	}
}
END_TEST

START_TEST(lc_ties_rotate_among_best_only)
{
	struct lb_state st;
	struct lb_entry v[5];
	int count[5] = {0, 0, 0, 0, 0};
	int i, got, prev = -1;

	memset(&st, 0, sizeof(st));
	entries_init(v, 5);
	v[0].conns = 4;
	v[1].conns = 1;
	v[2].conns = 1;
	v[3].conns = 2;
	v[4].conns = 1;
	for (i = 0; i < 30; i++) {
		got = pick(LB_LEASTCONN, v, 5, &st);
		ck_assert_msg(got == 1 || got == 2 || got == 4,
		              "pick %d: got %d, not one of the least loaded", i,
		              got);
		ck_assert_msg(got != prev, "pick %d: %d twice in a row", i,
		              got);
		prev = got;
		count[got]++;
	}
	ck_assert_int_eq(count[1], 10);
	ck_assert_int_eq(count[2], 10);
	ck_assert_int_eq(count[4], 10);
}
END_TEST

START_TEST(lc_skips_unusable_full_and_weight_zero)
{
	struct lb_state st;
	struct lb_entry v[5];
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 5);
	v[4].conns = 50; /* the only eligible one, and the busiest */
	v[0].usable = false;
	v[1].room = false;
	v[2].weight = 0;
	v[3].usable = false;
	v[3].room = false;
	for (i = 0; i < 10; i++) {
		got = pick(LB_LEASTCONN, v, 5, &st);
		ck_assert_int_eq(got, 4);
	}
}
END_TEST

START_TEST(lc_fills_in_weight_proportion)
{
	/* The caller counts each pick as a new session: the sessions end
	 * up in proportion to the weights. */
	struct lb_state st;
	struct lb_entry v[3];
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	v[0].weight = 3;
	v[1].weight = 2;
	v[2].weight = 1;
	for (i = 0; i < 600; i++) {
		got = pick(LB_LEASTCONN, v, 3, &st);
		ck_assert_int_ge(got, 0);
		v[got].conns++;
	}
	ck_assert_int_eq(v[0].conns, 300);
	ck_assert_int_eq(v[1].conns, 200);
	ck_assert_int_eq(v[2].conns, 100);
}
END_TEST

START_TEST(lc_sessions_come_and_go)
{
	/* Equal weights, each pick opens a session that closes at once:
	 * the load spreads evenly over all servers. */
	struct lb_state st;
	struct lb_entry v[3];
	int count[3] = {0, 0, 0};
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	for (i = 0; i < 300; i++) {
		got = pick(LB_LEASTCONN, v, 3, &st);
		ck_assert_int_ge(got, 0);
		v[got].conns++;
		count[got]++;
		v[got].conns--;
	}
	ck_assert_int_eq(count[0], 100);
	ck_assert_int_eq(count[1], 100);
	ck_assert_int_eq(count[2], 100);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Source hashing. */

START_TEST(key_deterministic)
{
	ck_assert(lb_key("filter1") == lb_key("filter1"));
	ck_assert(lb_key("filter2") == lb_key("filter2"));
	ck_assert(lb_key("filter1") != lb_key("filter2"));
	ck_assert(lb_key("a") != lb_key("b"));
	ck_assert(lb_key("") == lb_key(""));
	ck_assert(lb_key("filter10") != lb_key("filter1"));
}
END_TEST

START_TEST(src_same_address_same_server)
{
	struct lb_state st;
	struct lb_entry v[4];
	unsigned char a4[4], a6[16];
	uint64_t seed = 1;
	int i, j, first, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 4);
	for (i = 0; i < 200; i++) {
		rnd_bytes(&seed, a4, sizeof(a4));
		rnd_bytes(&seed, a6, sizeof(a6));
		first = lb_pick(LB_SOURCE, v, 4, &st, a4, sizeof(a4));
		ck_assert_int_ge(first, 0);
		for (j = 0; j < 5; j++) {
			/* Other clients and other algorithms in between. */
			lb_pick(LB_SOURCE, v, 4, &st, a6, sizeof(a6));
			pick(LB_ROUNDROBIN, v, 4, &st);
			v[j % 4].conns += 3;
			got = lb_pick(LB_SOURCE, v, 4, &st, a4, sizeof(a4));
			ck_assert_int_eq(got, first);
		}
	}
}
END_TEST

START_TEST(src_address_bytes_matter)
{
	/* Different clients do not all land on one server. */
	struct lb_state st;
	struct lb_entry v[3];
	unsigned char a[4] = {10, 0, 0, 0};
	int seen[3] = {0, 0, 0};
	int i, got;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	for (i = 0; i < 256; i++) {
		a[3] = (unsigned char)i;
		got = lb_pick(LB_SOURCE, v, 3, &st, a, sizeof(a));
		ck_assert_int_ge(got, 0);
		seen[got]++;
	}
	ck_assert_int_gt(seen[0], 0);
	ck_assert_int_gt(seen[1], 0);
	ck_assert_int_gt(seen[2], 0);
}
END_TEST

/* Count, for NADDR random addresses of addrlen bytes, where each lands. */
static void
src_distribution(struct lb_entry *v, size_t n, size_t addrlen, int *count)
{
	struct lb_state st;
	unsigned char a[16];
	uint64_t seed = 42;
	int i, got;

	memset(&st, 0, sizeof(st));
	memset(count, 0, n * sizeof(*count));
	for (i = 0; i < NADDR; i++) {
		rnd_bytes(&seed, a, addrlen);
		got = lb_pick(LB_SOURCE, v, n, &st, a, addrlen);
		ck_assert_int_ge(got, 0);
		ck_assert_int_lt(got, (int)n);
		count[got]++;
	}
}

START_TEST(src_distribution_equal_weights)
{
	struct lb_entry v[3];
	int count[3];
	int i;

	entries_init(v, 3);
	src_distribution(v, 3, 4, count);
	for (i = 0; i < 3; i++)
		ck_assert_msg(abs(count[i] * 3 - NADDR) <= NADDR / 20,
		              "IPv4 1:1:1 gave %d:%d:%d of %d", count[0],
		              count[1], count[2], NADDR);
	src_distribution(v, 3, 16, count);
	for (i = 0; i < 3; i++)
		ck_assert_msg(abs(count[i] * 3 - NADDR) <= NADDR / 20,
		              "IPv6 1:1:1 gave %d:%d:%d of %d", count[0],
		              count[1], count[2], NADDR);
}
END_TEST

START_TEST(src_distribution_weighted)
{
	struct lb_entry v[3];
	int count[3];

	entries_init(v, 3);
	v[0].weight = 2;
	src_distribution(v, 3, 4, count);
	ck_assert_msg(abs(count[0] - NADDR / 2) <= NADDR / 20 &&
	                  abs(count[1] - NADDR / 4) <= NADDR / 20 &&
	                  abs(count[2] - NADDR / 4) <= NADDR / 20,
	              "IPv4 2:1:1 gave %d:%d:%d of %d (want about 50%%:25%%:"
	              "25%%)",
	              count[0], count[1], count[2], NADDR);

	/* The heavy one last, to rule out a position effect. */
	entries_init(v, 3);
	v[2].weight = 100;
	v[0].weight = 50;
	v[1].weight = 50;
	src_distribution(v, 3, 16, count);
	ck_assert_msg(abs(count[2] - NADDR / 2) <= NADDR / 20 &&
	                  abs(count[0] - NADDR / 4) <= NADDR / 20 &&
	                  abs(count[1] - NADDR / 4) <= NADDR / 20,
	              "IPv6 50:50:100 gave %d:%d:%d of %d (want about "
	              "25%%:25%%:50%%)",
	              count[0], count[1], count[2], NADDR);
}
END_TEST

START_TEST(src_weight_zero_never_picked)
{
	struct lb_entry v[3];
	int count[3];

	entries_init(v, 3);
	v[1].weight = 0;
	src_distribution(v, 3, 4, count);
	ck_assert_int_eq(count[1], 0);
	ck_assert_int_gt(count[0], NADDR / 3);
	ck_assert_int_gt(count[2], NADDR / 3);
}
END_TEST

/* Map NADDR addresses, take entry down out of service, map again: only
 * the addresses that were on it move, and they spread over the others;
 * bring it back: the first mapping returns exactly. */
static void
src_check_minimal_move(size_t addrlen, size_t down, bool by_weight)
{
	enum { N = 5 };
	struct lb_state st;
	struct lb_entry v[N];
	unsigned char a[16];
	static int before[NADDR];
	int moved_to[N] = {0, 0, 0, 0, 0};
	uint64_t seed;
	int i, got, on_down = 0, old_weight;

	memset(&st, 0, sizeof(st));
	entries_init(v, N);
	v[0].weight = 2;
	v[3].weight = 3;
	old_weight = v[down].weight;

	seed = 7;
	for (i = 0; i < NADDR; i++) {
		rnd_bytes(&seed, a, addrlen);
		before[i] = lb_pick(LB_SOURCE, v, N, &st, a, addrlen);
		ck_assert_int_ge(before[i], 0);
		if (before[i] == (int)down)
			on_down++;
	}
	ck_assert_int_gt(on_down, 0);

	if (by_weight)
		v[down].weight = 0;
	else
		v[down].usable = false;
	seed = 7;
	for (i = 0; i < NADDR; i++) {
		rnd_bytes(&seed, a, addrlen);
		got = lb_pick(LB_SOURCE, v, N, &st, a, addrlen);
		ck_assert_int_ge(got, 0);
		ck_assert_int_ne(got, (int)down);
		if (before[i] != (int)down)
			ck_assert_msg(got == before[i],
			              "addrlen %zu, address %d: was on %d, "
			              "moved to %d when %zu went down",
			              addrlen, i, before[i], got, down);
		else
			moved_to[got]++;
	}
	for (i = 0; i < N; i++)
		if (i != (int)down)
			ck_assert_msg(moved_to[i] > 0,
			              "addrlen %zu: none of the %d clients of "
			              "%zu moved to %d",
			              addrlen, on_down, down, i);

	if (by_weight)
		v[down].weight = old_weight;
	else
		v[down].usable = true;
	seed = 7;
	for (i = 0; i < NADDR; i++) {
		rnd_bytes(&seed, a, addrlen);
		got = lb_pick(LB_SOURCE, v, N, &st, a, addrlen);
		ck_assert_int_eq(got, before[i]);
	}
}

START_TEST(src_down_moves_only_its_clients_ipv4)
{
	src_check_minimal_move(4, 2, false);
	src_check_minimal_move(4, 0, false);
}
END_TEST

START_TEST(src_down_moves_only_its_clients_ipv6)
{
	src_check_minimal_move(16, 2, false);
	src_check_minimal_move(16, 3, false);
}
END_TEST

START_TEST(src_weight_zero_moves_only_its_clients)
{
	src_check_minimal_move(4, 1, true);
	src_check_minimal_move(16, 4, true);
}
END_TEST

START_TEST(src_order_independent)
{
	/* The choice follows the server (its key), not its position in the
	 * array: reordering servers on reload moves nobody. */
	struct lb_state st;
	struct lb_entry v[4], r[4];
	unsigned char a[16];
	uint64_t seed = 99;
	int i, got, rev;

	memset(&st, 0, sizeof(st));
	entries_init(v, 4);
	v[1].weight = 3;
	for (i = 0; i < 4; i++)
		r[i] = v[3 - i];
	for (i = 0; i < 2000; i++) {
		rnd_bytes(&seed, a, i % 2 ? 16 : 4);
		got = lb_pick(LB_SOURCE, v, 4, &st, a, i % 2 ? 16 : 4);
		rev = lb_pick(LB_SOURCE, r, 4, &st, a, i % 2 ? 16 : 4);
		ck_assert_int_ge(got, 0);
		ck_assert_int_eq(rev, 3 - got);
	}
}
END_TEST

START_TEST(src_full_when_hashed_server_has_no_room)
{
	struct lb_state st;
	struct lb_entry v[3];
	unsigned char a[4] = {198, 51, 100, 7};
	int home, i;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	home = lb_pick(LB_SOURCE, v, 3, &st, a, sizeof(a));
	ck_assert_int_ge(home, 0);
	v[home].room = false;
	for (i = 0; i < 3; i++)
		ck_assert_msg(lb_pick(LB_SOURCE, v, 3, &st, a, sizeof(a)) ==
		                  LB_PICK_FULL,
		              "hashed server full: want LB_PICK_FULL, not "
		              "another server");
	v[home].room = true;
	ck_assert_int_eq(lb_pick(LB_SOURCE, v, 3, &st, a, sizeof(a)), home);
}
END_TEST

START_TEST(src_ignores_conns)
{
	struct lb_state st;
	struct lb_entry v[3];
	unsigned char a[16];
	uint64_t seed = 5;
	int i, home;

	memset(&st, 0, sizeof(st));
	entries_init(v, 3);
	for (i = 0; i < 100; i++) {
		rnd_bytes(&seed, a, sizeof(a));
		home = lb_pick(LB_SOURCE, v, 3, &st, a, sizeof(a));
		ck_assert_int_ge(home, 0);
		v[home].conns += 1000;
		ck_assert_int_eq(lb_pick(LB_SOURCE, v, 3, &st, a, sizeof(a)),
		                 home);
	}
}
END_TEST

static Suite *
lb_suite(void)
{
	Suite *s = suite_create("lb");
	TCase *tc;

	tc = tcase_create("common");
	tcase_add_test(tc, none_when_empty);
	tcase_add_test(tc, none_when_nothing_usable);
	tcase_add_test(tc, none_when_all_weight_zero);
	tcase_add_test(tc, full_when_no_room);
	tcase_add_test(tc, single_entry);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundrobin");
	tcase_add_test(tc, rr_equal_weights_cycle);
	tcase_add_test(tc, rr_smooth_3_1_1);
	tcase_add_test(tc, rr_never_repeats_when_avoidable);
	tcase_add_test(tc, rr_exact_proportions);
	tcase_add_test(tc, rr_exact_proportions_large_weights);
	tcase_add_test(tc, rr_skips_unusable_full_and_weight_zero);
	tcase_add_test(tc, rr_weight_change_at_once);
	tcase_add_test(tc, rr_entry_returns_after_down);
	tcase_add_test(tc, rr_full_then_room);
	suite_add_tcase(s, tc);

	tc = tcase_create("leastconn");
	tcase_add_test(tc, lc_fewest_conns);
	tcase_add_test(tc, lc_relative_to_weight);
	tcase_add_test(tc, lc_no_overflow_large_values);
	tcase_add_test(tc, lc_ties_rotate);
	tcase_add_test(tc, lc_ties_rotate_among_best_only);
	tcase_add_test(tc, lc_skips_unusable_full_and_weight_zero);
	tcase_add_test(tc, lc_fills_in_weight_proportion);
	tcase_add_test(tc, lc_sessions_come_and_go);
	suite_add_tcase(s, tc);

	tc = tcase_create("source");
	tcase_add_test(tc, key_deterministic);
	tcase_add_test(tc, src_same_address_same_server);
	tcase_add_test(tc, src_address_bytes_matter);
	tcase_add_test(tc, src_distribution_equal_weights);
	tcase_add_test(tc, src_distribution_weighted);
	tcase_add_test(tc, src_weight_zero_never_picked);
	tcase_add_test(tc, src_down_moves_only_its_clients_ipv4);
	tcase_add_test(tc, src_down_moves_only_its_clients_ipv6);
	tcase_add_test(tc, src_weight_zero_moves_only_its_clients);
	tcase_add_test(tc, src_order_independent);
	tcase_add_test(tc, src_full_when_hashed_server_has_no_room);
	tcase_add_test(tc, src_ignores_conns);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(lb_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
