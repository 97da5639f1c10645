/* Unit tests for health.c: HAProxy's health counter (load-balancer.conf(5),
 * HEALTH CHECKS), fed fake check results and a fake clock. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "health.h"

static const char *
change_name(enum health_change c)
{
	switch (c) {
	case HEALTH_SAME:
		return "SAME";
	case HEALTH_WENT_UP:
		return "WENT_UP";
	case HEALTH_WENT_DOWN:
		return "WENT_DOWN";
	}
	return "?";
}

static void
state_is(const struct health *h, const char *want, const char *ctx)
{
	char buf[64];

	memset(buf, 'Z', sizeof(buf));
	health_state_text(h, buf, sizeof(buf));
	ck_assert_msg(memchr(buf, '\0', sizeof(buf)) != NULL,
	              "%s: state text not NUL-terminated", ctx);
	ck_assert_msg(strcmp(buf, want) == 0,
	              "%s: state \"%s\", want \"%s\" (counter %d)", ctx, buf,
	              want, h->counter);
	ck_assert_msg(health_is_up(h) == (strncmp(want, "UP", 2) == 0),
	              "%s: health_is_up %d with state \"%s\"", ctx,
	              (int)health_is_up(h), buf);
}

/* One step of a scripted sequence: a result, and what must follow. */
struct step {
	bool pass;
	enum health_change change;
	const char *state;
};

struct script {
	int rise, fall;
	const char *initial;
	const struct step *steps;
	size_t nsteps;
};

#define P(c, s)                                                                \
	{                                                                      \
		true, HEALTH_##c, s                                            \
	}
#define F(c, s)                                                                \
	{                                                                      \
		false, HEALTH_##c, s                                           \
	}
#define SCRIPT(r, f, init, steps)                                              \
	{                                                                      \
		r, f, init, steps, sizeof(steps) / sizeof(steps[0])            \
	}

/* rise 1, fall 1: every result flips the state at once */
static const struct step s11[] = {
    P(SAME, "UP"),    P(SAME, "UP"),    F(WENT_DOWN, "DOWN"),
    F(SAME, "DOWN"),  P(WENT_UP, "UP"), F(WENT_DOWN, "DOWN"),
    P(WENT_UP, "UP"), P(SAME, "UP"),
};
/* rise 1, fall 1, first check fails */
static const struct step s11f[] = {
    F(WENT_DOWN, "DOWN"),
    P(WENT_UP, "UP"),
};
/* rise 2, fall 3, the first check fails: DOWN at once */
static const struct step s23_first_fail[] = {
    F(WENT_DOWN, "DOWN"), F(SAME, "DOWN"),     P(SAME, "DOWN 1/2"),
    F(SAME, "DOWN"),      P(SAME, "DOWN 1/2"), P(WENT_UP, "UP"),
    P(SAME, "UP"),
};
/* rise 2, fall 3: confirmed UP, then fall failures make it DOWN */
static const struct step s23[] = {
    P(SAME, "UP 2/3"),    P(SAME, "UP"),     P(SAME, "UP"),
    F(SAME, "UP 2/3"),    F(SAME, "UP 1/3"), P(SAME, "UP 2/3"),
    P(SAME, "UP"),        F(SAME, "UP 2/3"), F(SAME, "UP 1/3"),
    F(WENT_DOWN, "DOWN"), F(SAME, "DOWN"),   F(SAME, "DOWN"),
    P(SAME, "DOWN 1/2"),  P(WENT_UP, "UP"),  F(SAME, "UP 2/3"),
    P(SAME, "UP"),
};
/* rise 3, fall 5: a failure on the way up goes back to 0 (HAProxy) */
static const struct step s35[] = {
    P(SAME, "UP 2/5"),    P(SAME, "UP 3/5"),   P(SAME, "UP 4/5"),
    P(SAME, "UP"),        P(SAME, "UP"),       F(SAME, "UP 4/5"),
    F(SAME, "UP 3/5"),    F(SAME, "UP 2/5"),   F(SAME, "UP 1/5"),
    F(WENT_DOWN, "DOWN"), P(SAME, "DOWN 1/3"), P(SAME, "DOWN 2/3"),
    F(SAME, "DOWN"),      F(SAME, "DOWN"),     P(SAME, "DOWN 1/3"),
    P(SAME, "DOWN 2/3"),  P(WENT_UP, "UP"),    F(SAME, "UP 4/5"),
};
/* rise 3, fall 5, first check fails */
static const struct step s35f[] = {
    F(WENT_DOWN, "DOWN"),
    P(SAME, "DOWN 1/3"),
    P(SAME, "DOWN 2/3"),
    P(WENT_UP, "UP"),
};
/* rise 1, fall 3 */
static const struct step s13[] = {
    P(SAME, "UP 2/3"),    P(SAME, "UP"),   F(SAME, "UP 2/3"), F(SAME, "UP 1/3"),
    F(WENT_DOWN, "DOWN"), F(SAME, "DOWN"), P(WENT_UP, "UP"),
};
/* rise 4, fall 1 */
static const struct step s41[] = {
    P(SAME, "UP"),        F(WENT_DOWN, "DOWN"), P(SAME, "DOWN 1/4"),
    P(SAME, "DOWN 2/4"),  P(SAME, "DOWN 3/4"),  P(WENT_UP, "UP"),
    F(WENT_DOWN, "DOWN"),
};

static const struct script scripts[] = {
    SCRIPT(1, 1, "UP", s11),
    SCRIPT(1, 1, "UP", s11f),
    SCRIPT(2, 3, "UP 1/3", s23_first_fail),
    SCRIPT(2, 3, "UP 1/3", s23),
    SCRIPT(3, 5, "UP 1/5", s35),
    SCRIPT(3, 5, "UP 1/5", s35f),
    SCRIPT(1, 3, "UP 1/3", s13),
    SCRIPT(4, 1, "UP", s41),
};

START_TEST(scripted_sequences)
{
	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		const struct script *sc = &scripts[i];
		struct health h;
		char ctx[96];

		health_init(&h, sc->rise, sc->fall);
		snprintf(ctx, sizeof(ctx), "rise %d fall %d script %zu, start",
		         sc->rise, sc->fall, i);
		ck_assert_msg(h.rise == sc->rise && h.fall == sc->fall,
		              "%s: rise/fall not stored", ctx);
		ck_assert_msg(h.counter == sc->rise, "%s: counter %d, want %d",
		              ctx, h.counter, sc->rise);
		state_is(&h, sc->initial, ctx);
		for (size_t k = 0; k < sc->nsteps; k++) {
			const struct step *st = &sc->steps[k];
			enum health_change c;

			snprintf(ctx, sizeof(ctx),
			         "rise %d fall %d script %zu, step %zu (%s)",
			         sc->rise, sc->fall, i, k,
			         st->pass ? "pass" : "fail");
			c = health_result(&h, st->pass);
			ck_assert_msg(c == st->change, "%s: %s, want %s", ctx,
			              change_name(c), change_name(st->change));
			state_is(&h, st->state, ctx);
		}
	}
}
END_TEST

/* The rules, restated: a reference for random sequences. */
struct model {
	int rise, fall, counter;
	unsigned fails, passes;
};

static enum health_change
model_result(struct model *m, bool pass)
{
	int top = m->rise + m->fall - 1;

	if (pass) {
		m->passes++;
		m->fails = 0;
		if (m->counter < top) {
			m->counter++;
			if (m->counter == m->rise) {
				m->counter = top;
				return HEALTH_WENT_UP;
			}
		}
		return HEALTH_SAME;
	}
	m->fails++;
	m->passes = 0;
	if (m->counter > 0) {
		bool was_up = m->counter >= m->rise;

		m->counter--;
		if (m->counter < m->rise) {
			m->counter = 0;
			if (was_up)
				return HEALTH_WENT_DOWN;
		}
	}
	return HEALTH_SAME;
}

static void
model_text(const struct model *m, char *buf, size_t len)
{
	int top = m->rise + m->fall - 1;

	if (m->counter == top && m->counter >= m->rise)
		snprintf(buf, len, "UP");
	else if (m->counter >= m->rise)
		snprintf(buf, len, "UP %d/%d", m->counter - m->rise + 1,
		         m->fall);
	else if (m->counter == 0)
		snprintf(buf, len, "DOWN");
	else
		snprintf(buf, len, "DOWN %d/%d", m->counter, m->rise);
}

static uint32_t
rnd(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 16;
}

START_TEST(random_sequences_follow_rules)
{
	static const int rf[][2] = {{1, 1}, {1, 2}, {2, 1},   {2, 3},
	                            {3, 5}, {5, 3}, {10, 10}, {1, 7}};
	uint32_t seed = 42;

	for (size_t i = 0; i < sizeof(rf) / sizeof(rf[0]); i++) {
		for (int run = 0; run < 50; run++) {
			struct health h;
			struct model m = {rf[i][0], rf[i][1], rf[i][0], 0, 0};
			/* runs of the same result, to reach every state */
			int bias = run % 5;

			health_init(&h, m.rise, m.fall);
			for (int k = 0; k < 200; k++) {
				bool pass = (int)(rnd(&seed) % 6) > bias;
				enum health_change want =
				    model_result(&m, pass);
				enum health_change got =
				    health_result(&h, pass);
				char wtext[32], gtext[32];

				model_text(&m, wtext, sizeof(wtext));
				health_state_text(&h, gtext, sizeof(gtext));
				ck_assert_msg(
				    got == want && h.counter == m.counter &&
				        strcmp(gtext, wtext) == 0,
				    "rise %d fall %d run %d step %d "
				    "(%s): %s counter %d \"%s\", want "
				    "%s counter %d \"%s\"",
				    m.rise, m.fall, run, k,
				    pass ? "pass" : "fail", change_name(got),
				    h.counter, gtext, change_name(want),
				    m.counter, wtext);
				ck_assert_msg(
				    h.fails == m.fails && h.passes == m.passes,
				    "rise %d fall %d step %d: fails %u "
				    "passes %u, want %u %u",
				    m.rise, m.fall, k, h.fails, h.passes,
				    m.fails, m.passes);
				ck_assert(health_is_up(&h) ==
				          (m.counter >= m.rise));
				ck_assert(h.counter >= 0 &&
				          h.counter <= m.rise + m.fall - 1);
			}
		}
	}
}
END_TEST

/* From fully UP exactly fall failures in a row make it DOWN, from DOWN
 * exactly rise passes make it UP, for many rise/fall pairs. */
START_TEST(fall_and_rise_counts)
{
	for (int rise = 1; rise <= 8; rise++) {
		for (int fall = 1; fall <= 8; fall++) {
			struct health h;

			health_init(&h, rise, fall);
			for (int k = 0; k < fall + 2; k++)
				health_result(&h, true);
			ck_assert_int_eq(h.counter, rise + fall - 1);
			for (int k = 1; k < fall; k++) {
				ck_assert_msg(
				    health_result(&h, false) == HEALTH_SAME,
				    "rise %d fall %d: failure %d of %d "
				    "changed the state",
				    rise, fall, k, fall);
				ck_assert(health_is_up(&h));
				ck_assert_uint_eq(h.fails, (unsigned)k);
			}
			ck_assert_msg(health_result(&h, false) ==
			                  HEALTH_WENT_DOWN,
			              "rise %d fall %d: failure %d not DOWN",
			              rise, fall, fall);
			ck_assert(!health_is_up(&h));
			ck_assert_int_eq(h.counter, 0);
			ck_assert_uint_eq(h.fails, (unsigned)fall);
			ck_assert_uint_eq(h.passes, 0);
			for (int k = 1; k < rise; k++) {
				ck_assert_msg(health_result(&h, true) ==
				                  HEALTH_SAME,
				              "rise %d fall %d: pass %d of %d "
				              "changed the state",
				              rise, fall, k, rise);
				ck_assert(!health_is_up(&h));
				ck_assert_uint_eq(h.passes, (unsigned)k);
			}
			ck_assert_msg(health_result(&h, true) == HEALTH_WENT_UP,
			              "rise %d fall %d: pass %d not UP", rise,
			              fall, rise);
			ck_assert(health_is_up(&h));
			ck_assert_int_eq(h.counter, rise + fall - 1);
			ck_assert_uint_eq(h.passes, (unsigned)rise);
			ck_assert_uint_eq(h.fails, 0);
		}
	}
}
END_TEST

START_TEST(first_failure_is_down)
{
	for (int rise = 1; rise <= 8; rise++) {
		for (int fall = 1; fall <= 8; fall++) {
			struct health h;

			health_init(&h, rise, fall);
			ck_assert(health_is_up(&h));
			ck_assert_uint_eq(h.fails, 0);
			ck_assert_uint_eq(h.passes, 0);
			ck_assert_msg(health_result(&h, false) ==
			                  HEALTH_WENT_DOWN,
			              "rise %d fall %d: first failure not DOWN",
			              rise, fall);
			ck_assert(!health_is_up(&h));
			ck_assert_int_eq(h.counter, 0);
			state_is(&h, "DOWN", "first failure");
		}
	}
}
END_TEST

/* A pass on the way down starts the way down over. */
START_TEST(pass_resets_the_way_down)
{
	struct health h;

	health_init(&h, 2, 3);
	health_result(&h, true);
	health_result(&h, true); /* fully UP */
	for (int round = 0; round < 5; round++) {
		ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
		ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
		ck_assert_uint_eq(h.fails, 2);
		ck_assert_int_eq(health_result(&h, true), HEALTH_SAME);
		ck_assert_uint_eq(h.fails, 0);
		ck_assert_uint_eq(h.passes, 1);
		ck_assert(health_is_up(&h));
		state_is(&h, "UP 2/3", "after fail fail pass");
		ck_assert_int_eq(health_result(&h, true), HEALTH_SAME);
		state_is(&h, "UP", "after fail fail pass pass");
	}
	/* one pass between failures is not enough to stay up forever:
	 * fail fail pass fail fail -> counter 4 3 2 3 2 1->0 */
	ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
	ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
	ck_assert_int_eq(health_result(&h, true), HEALTH_SAME);
	ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
	ck_assert_int_eq(health_result(&h, false), HEALTH_WENT_DOWN);

	/* a failure on the way up starts the way up over */
	ck_assert_int_eq(health_result(&h, true), HEALTH_SAME);
	state_is(&h, "DOWN 1/2", "way up");
	ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
	state_is(&h, "DOWN", "way up interrupted");
	ck_assert_int_eq(health_result(&h, true), HEALTH_SAME);
	ck_assert_int_eq(health_result(&h, true), HEALTH_WENT_UP);
}
END_TEST

/* Counters saturate: long runs neither underflow nor overflow. */
START_TEST(counter_saturates)
{
	struct health h;

	health_init(&h, 3, 4);
	for (int k = 0; k < 1000; k++)
		ck_assert_int_ne(health_result(&h, true), HEALTH_WENT_DOWN);
	ck_assert_int_eq(h.counter, 6);
	ck_assert_uint_eq(h.passes, 1000);
	state_is(&h, "UP", "after 1000 passes");
	for (int k = 0; k < 1000; k++)
		ck_assert_int_ne(health_result(&h, false), HEALTH_WENT_UP);
	ck_assert_int_eq(h.counter, 0);
	ck_assert_uint_eq(h.fails, 1000);
	ck_assert_uint_eq(h.passes, 0);
	state_is(&h, "DOWN", "after 1000 failures");
}
END_TEST

/* Passive health (load-balancer.conf(5), GREETING GATE):
 * health_force_down makes any state DOWN at once; it says whether the
 * server was UP (the caller's event); rise passes bring it back. */
START_TEST(force_down)
{
	for (int rise = 1; rise <= 6; rise++) {
		for (int fall = 1; fall <= 6; fall++) {
			struct health h;
			char ctx[64];

			snprintf(ctx, sizeof(ctx), "rise %d fall %d", rise,
			         fall);
			/* Fully UP. */
			health_init(&h, rise, fall);
			for (int k = 0; k < fall + 2; k++)
				health_result(&h, true);
			ck_assert_int_eq(h.counter, rise + fall - 1);
			ck_assert_msg(health_force_down(&h),
			              "%s: fully UP, force_down not true", ctx);
			ck_assert_int_eq(h.counter, 0);
			ck_assert_uint_eq(h.passes, 0);
			state_is(&h, "DOWN", ctx);
			/* DOWN already: false, still DOWN. */
			ck_assert_msg(!health_force_down(&h),
			              "%s: DOWN, force_down not false", ctx);
			state_is(&h, "DOWN", ctx);
			/* A failed check now is no second DOWN. */
			ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
			state_is(&h, "DOWN", ctx);
			/* rise passes: UP, fully. */
			for (int k = 1; k < rise; k++) {
				ck_assert_msg(health_result(&h, true) ==
				                  HEALTH_SAME,
				              "%s: pass %d of %d changed the "
				              "state",
				              ctx, k, rise);
				ck_assert(!health_is_up(&h));
			}
			ck_assert_msg(health_result(&h, true) == HEALTH_WENT_UP,
			              "%s: pass %d not UP", ctx, rise);
			ck_assert_int_eq(h.counter, rise + fall - 1);
			state_is(&h, "UP", ctx);

			/* Unconfirmed UP (as at start): true. */
			health_init(&h, rise, fall);
			ck_assert_msg(health_force_down(&h),
			              "%s: unconfirmed UP, force_down not true",
			              ctx);
			state_is(&h, "DOWN", ctx);
		}
	}
}
END_TEST

/* On the way down ("UP 1/3") it is still UP: true.  On the way up ("DOWN
 * 1/2") it is DOWN: false, and the way up starts over. */
START_TEST(force_down_half_way)
{
	struct health h;

	health_init(&h, 2, 3);
	health_result(&h, true);
	health_result(&h, true);
	health_result(&h, false);
	health_result(&h, false);
	state_is(&h, "UP 1/3", "going down");
	ck_assert(health_force_down(&h));
	state_is(&h, "DOWN", "forced from UP 1/3");

	health_result(&h, true);
	state_is(&h, "DOWN 1/2", "going up");
	ck_assert(!health_force_down(&h));
	state_is(&h, "DOWN", "forced from DOWN 1/2");
	ck_assert_uint_eq(h.passes, 0);
	ck_assert_int_eq(health_result(&h, true), HEALTH_SAME);
	state_is(&h, "DOWN 1/2", "way up again");
	ck_assert_int_eq(health_result(&h, true), HEALTH_WENT_UP);
	state_is(&h, "UP", "up");
	/* Checks after it: fall failures in a row make it DOWN, as
	 * always. */
	ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
	ck_assert_int_eq(health_result(&h, false), HEALTH_SAME);
	ck_assert_int_eq(health_result(&h, false), HEALTH_WENT_DOWN);
}
END_TEST

START_TEST(state_text_small_buffer)
{
	struct health h;
	char buf[16];

	health_init(&h, 2, 3);
	health_result(&h, true);
	health_result(&h, true);
	health_result(&h, false); /* "UP 2/3" */
	for (size_t len = 1; len < 8; len++) {
		memset(buf, 'Z', sizeof(buf));
		health_state_text(&h, buf, len);
		ck_assert_msg(memchr(buf, '\0', len) != NULL,
		              "len %zu: not NUL-terminated", len);
		ck_assert_msg(strncmp(buf, "UP 2/3", strlen(buf)) == 0,
		              "len %zu: \"%s\"", len, buf);
		for (size_t k = len; k < sizeof(buf); k++)
			ck_assert_msg(buf[k] == 'Z', "len %zu: wrote byte %zu",
			              len, k);
	}
}
END_TEST

START_TEST(next_interval_rules)
{
	struct health h;

	health_init(&h, 2, 3); /* counter 2: UP, not fully */
	ck_assert_uint_eq(health_next_interval(&h, 2000, 500, 10000), 500);
	ck_assert_uint_eq(health_next_interval(&h, 2000, 0, 10000), 2000);
	health_result(&h, true);
	health_result(&h, true); /* fully UP */
	ck_assert_uint_eq(health_next_interval(&h, 2000, 500, 10000), 2000);
	ck_assert_uint_eq(health_next_interval(&h, 2000, 0, 0), 2000);
	health_result(&h, false); /* going down */
	ck_assert_uint_eq(health_next_interval(&h, 2000, 500, 10000), 500);
	ck_assert_uint_eq(health_next_interval(&h, 2000, 0, 10000), 2000);
	health_result(&h, false);
	health_result(&h, false); /* DOWN */
	ck_assert_int_eq(h.counter, 0);
	ck_assert_uint_eq(health_next_interval(&h, 2000, 500, 10000), 10000);
	ck_assert_uint_eq(health_next_interval(&h, 2000, 500, 0), 2000);
	health_result(&h, true); /* going up */
	ck_assert_uint_eq(health_next_interval(&h, 2000, 500, 10000), 500);
	ck_assert_uint_eq(health_next_interval(&h, 2000, 0, 10000), 2000);
	health_result(&h, true); /* fully UP again */
	ck_assert_uint_eq(health_next_interval(&h, 2000, 500, 10000), 2000);

	/* rise 1 fall 1: only fully UP and DOWN exist */
	health_init(&h, 1, 1);
	ck_assert_uint_eq(health_next_interval(&h, 3000, 100, 9000), 3000);
	health_result(&h, false);
	ck_assert_uint_eq(health_next_interval(&h, 3000, 100, 9000), 9000);
	health_result(&h, true);
	ck_assert_uint_eq(health_next_interval(&h, 3000, 100, 9000), 3000);

	/* large values pass through */
	health_init(&h, 1, 1);
	ck_assert_uint_eq(health_next_interval(&h, UINT64_C(31536000000), 1, 2),
	                  UINT64_C(31536000000));
}
END_TEST

/* A scheduler on a fake clock: each check ends when it starts (duration 0)
 * and the next one follows health_next_interval(). */
struct tick {
	uint64_t t;                /* when the check runs (ms) */
	bool pass;                 /* its result */
	enum health_change change; /* what health_result says */
	const char *state;         /* the state after it */
	uint64_t next;             /* the delay chosen for the next check */
};

static void
run_timeline(int rise, int fall, uint64_t interval, uint64_t fastinter,
             uint64_t downinter, const struct tick *ticks, size_t n)
{
	struct health h;
	uint64_t now = 0;

	health_init(&h, rise, fall);
	for (size_t k = 0; k < n; k++) {
		const struct tick *tk = &ticks[k];
		enum health_change c;
		uint64_t delay;
		char ctx[64];

		snprintf(ctx, sizeof(ctx), "t=%llums (%s)",
		         (unsigned long long)now, tk->pass ? "pass" : "fail");
		ck_assert_msg(
		    now == tk->t, "check %zu at t=%llums, want %llums", k,
		    (unsigned long long)now, (unsigned long long)tk->t);
		c = health_result(&h, tk->pass);
		ck_assert_msg(c == tk->change, "%s: %s, want %s", ctx,
		              change_name(c), change_name(tk->change));
		state_is(&h, tk->state, ctx);
		delay =
		    health_next_interval(&h, interval, fastinter, downinter);
		ck_assert_msg(delay == tk->next,
		              "%s: next check in %llums, "
		              "want %llums",
		              ctx, (unsigned long long)delay,
		              (unsigned long long)tk->next);
		now += delay;
	}
}

/* interval 2s, fastinter 500ms, downinter 5s, rise 2, fall 3.  The server
 * fails from t=10s to t=20s: the first failed check is at 10.5s, so it is
 * DOWN at 10.5s + (fall-1) * fastinter = 11.5s. */
START_TEST(timeline_fastinter_downinter)
{
	static const struct tick ticks[] = {
	    {0, true, HEALTH_SAME, "UP 2/3", 500},
	    {500, true, HEALTH_SAME, "UP", 2000},
	    {2500, true, HEALTH_SAME, "UP", 2000},
	    {4500, true, HEALTH_SAME, "UP", 2000},
	    {6500, true, HEALTH_SAME, "UP", 2000},
	    {8500, true, HEALTH_SAME, "UP", 2000},
	    {10500, false, HEALTH_SAME, "UP 2/3", 500},
	    {11000, false, HEALTH_SAME, "UP 1/3", 500},
	    {11500, false, HEALTH_WENT_DOWN, "DOWN", 5000},
	    {16500, false, HEALTH_SAME, "DOWN", 5000},
	    {21500, true, HEALTH_SAME, "DOWN 1/2", 500},
	    {22000, true, HEALTH_WENT_UP, "UP", 2000},
	    {24000, true, HEALTH_SAME, "UP", 2000},
	    {26000, false, HEALTH_SAME, "UP 2/3", 500},
	    {26500, true, HEALTH_SAME, "UP", 2000},
	    {28500, true, HEALTH_SAME, "UP", 2000},
	};

	run_timeline(2, 3, 2000, 500, 5000, ticks,
	             sizeof(ticks) / sizeof(ticks[0]));
}
END_TEST

/* fastinter and downinter unset (0): everything follows interval 500ms. */
START_TEST(timeline_interval_only)
{
	static const struct tick ticks[] = {
	    {0, false, HEALTH_WENT_DOWN, "DOWN", 500},
	    {500, true, HEALTH_SAME, "DOWN 1/2", 500},
	    {1000, true, HEALTH_WENT_UP, "UP", 500},
	    {1500, false, HEALTH_SAME, "UP 2/3", 500},
	    {2000, false, HEALTH_SAME, "UP 1/3", 500},
	    {2500, false, HEALTH_WENT_DOWN, "DOWN", 500},
	    {3000, false, HEALTH_SAME, "DOWN", 500},
	};

	run_timeline(2, 3, 500, 0, 0, ticks, sizeof(ticks) / sizeof(ticks[0]));
}
END_TEST

/* Generic: for any rise/fall, a server failing from time T is DOWN at the
 * first check at or after T plus (fall-1) * fastinter, and back UP
 * (rise-1) * fastinter after its first good check. */
START_TEST(timeline_down_and_up_delays)
{
	const uint64_t interval = 500, fastinter = 100, downinter = 3000;

	for (int rise = 1; rise <= 5; rise++) {
		for (int fall = 1; fall <= 5; fall++) {
			struct health h;
			uint64_t now = 0, first_fail = 0, went_down = 0;
			uint64_t first_pass = 0, went_up = 0;
			const uint64_t fail_from = 10000, fail_until = 30000;

			health_init(&h, rise, fall);
			while (went_up == 0 && now < 100000) {
				bool pass =
				    now < fail_from || now >= fail_until;
				bool was_down = went_down != 0;
				enum health_change c = health_result(&h, pass);

				if (!pass && first_fail == 0)
					first_fail = now;
				if (pass && now >= fail_until &&
				    first_pass == 0)
					first_pass = now;
				if (c == HEALTH_WENT_DOWN)
					went_down = now;
				if (c == HEALTH_WENT_UP)
					went_up = now;
				if (!pass && !was_down)
					ck_assert_uint_eq(
					    health_next_interval(&h, interval,
					                         fastinter,
					                         downinter),
					    c == HEALTH_WENT_DOWN ? downinter
					                          : fastinter);
				now += health_next_interval(
				    &h, interval, fastinter, downinter);
			}
			ck_assert_msg(
			    went_down ==
			        first_fail + (uint64_t)(fall - 1) * fastinter,
			    "rise %d fall %d: first failure at %llu, "
			    "DOWN at %llu",
			    rise, fall, (unsigned long long)first_fail,
			    (unsigned long long)went_down);
			ck_assert_msg(
			    went_up ==
			        first_pass + (uint64_t)(rise - 1) * fastinter,
			    "rise %d fall %d: first pass at %llu, UP at "
			    "%llu",
			    rise, fall, (unsigned long long)first_pass,
			    (unsigned long long)went_up);
			ck_assert_uint_eq(health_next_interval(&h, interval,
			                                       fastinter,
			                                       downinter),
			                  interval);
		}
	}
}
END_TEST

static Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc;

	tc = tcase_create("counter");
	tcase_add_test(tc, scripted_sequences);
	tcase_add_test(tc, random_sequences_follow_rules);
	tcase_add_test(tc, fall_and_rise_counts);
	tcase_add_test(tc, first_failure_is_down);
	tcase_add_test(tc, pass_resets_the_way_down);
	tcase_add_test(tc, counter_saturates);
	tcase_add_test(tc, state_text_small_buffer);
	tcase_add_test(tc, force_down);
	tcase_add_test(tc, force_down_half_way);
	suite_add_tcase(s, tc);

	tc = tcase_create("schedule");
	tcase_add_test(tc, next_interval_rules);
	tcase_add_test(tc, timeline_fastinter_downinter);
	tcase_add_test(tc, timeline_interval_only);
	tcase_add_test(tc, timeline_down_and_up_delays);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(health_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
