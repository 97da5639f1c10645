/* The health counter of a server (HAProxy's model; load-balancer.conf(5),
 * HEALTH CHECKS).  Pure: the check scheduler feeds it results; tests feed
 * it a fake clock.
 *
 * counter runs 0 .. rise+fall-1.  UP when counter >= rise.  A server
 * starts at rise: UP but unconfirmed, so a failed first check makes it
 * DOWN at once.  A failure decrements (dropping below rise snaps to 0 =
 * DOWN); a pass increments (reaching rise snaps to rise+fall-1 = fully
 * UP).  So from fully UP, fall failures in a row make it DOWN, and from
 * DOWN, rise passes in a row make it UP. */
#ifndef LB_HEALTH_H
#define LB_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct health {
	int rise, fall;
	int counter;
	unsigned fails;  /* consecutive failures */
	unsigned passes; /* consecutive passes */
};

enum health_change { HEALTH_SAME, HEALTH_WENT_UP, HEALTH_WENT_DOWN };

/* What one health check found (check.c reports it, pool.c counts it). */
struct check_result {
	bool pass;
	const char *step;  /* where it failed: one of health_steps */
	int code;          /* SMTP reply code, 0 = none */
	const char *reply; /* reply text, with code; an agent's line */
	size_t reply_len;  /* strlen(reply), or the agent line's length */
	const char
	    *reason; /* without code: "timeout", "connection refused"... */
	uint64_t duration_ms;
};

/* The steps a check can fail at, in order, as the health log names them:
 * connect greeting helo starttls tls ehlo quit. */
#define HEALTH_STEPS 7
extern const char *const health_steps[HEALTH_STEPS];
/* Index of a step name in health_steps, -1 when unknown. */
int health_step_index(const char *step);

void health_init(struct health *h, int rise, int fall);
enum health_change health_result(struct health *h, bool pass);
bool health_is_up(const struct health *h);
/* DOWN at once, whatever the counter (passive health:
 * load-balancer.conf(5), GREETING GATE); rise passes bring it back.  Returns
 * true when it was UP. */
bool health_force_down(struct health *h);
/* "UP", "UP 2/3" (going down: counter - rise + 1 of fall), "DOWN",
 * "DOWN 1/2" (going up: counter of rise). */
void health_state_text(const struct health *h, char *buf, size_t len);
/* Delay before the next check, counted from the end of the previous one:
 * fully UP -> interval, fully DOWN -> downinter, in between -> fastinter
 * (0 = use interval). */
uint64_t health_next_interval(const struct health *h, uint64_t interval,
                              uint64_t fastinter, uint64_t downinter);

#endif
