/* The health counter (HAProxy's model); see health.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "health.h"

const char *const health_steps[HEALTH_STEPS] = {
    "connect", "greeting", "helo", "starttls", "tls", "ehlo", "quit"};

int
health_step_index(const char *step)
{
	for (int i = 0; step != NULL && i < HEALTH_STEPS; i++)
		if (strcmp(step, health_steps[i]) == 0)
			return i;
	return -1;
}

void
health_init(struct health *h, int rise, int fall)
{
	h->rise = rise > 0 ? rise : 1;
	h->fall = fall > 0 ? fall : 1;
	h->counter = h->rise; /* UP, unconfirmed */
	h->fails = h->passes = 0;
}

bool
health_is_up(const struct health *h)
{
	return h->counter >= h->rise;
}

enum health_change
health_result(struct health *h, bool pass)
{
	int max = h->rise + h->fall - 1;

	if (pass) {
		h->passes++;
		h->fails = 0;
		if (h->counter >= max)
			return HEALTH_SAME;
		h->counter++;
		if (h->counter == h->rise) {
			h->counter = max;
			return HEALTH_WENT_UP;
		}
		return HEALTH_SAME;
	}
	h->fails++;
	h->passes = 0;
	if (h->counter < h->rise) {
		/* DOWN, perhaps on the way up: start over. */
		h->counter = 0;
		return HEALTH_SAME;
	}
	h->counter--;
	if (h->counter < h->rise) {
		h->counter = 0;
		return HEALTH_WENT_DOWN;
	}
	return HEALTH_SAME;
}

bool
health_force_down(struct health *h)
{
	bool was_up = health_is_up(h);

	h->counter = 0;
	h->passes = 0;
	return was_up;
}

void
health_state_text(const struct health *h, char *buf, size_t len)
{
	int max = h->rise + h->fall - 1;

	if (h->counter >= max)
		snprintf(buf, len, "UP");
	else if (h->counter >= h->rise)
		snprintf(buf, len, "UP %d/%d", h->counter - h->rise + 1,
		         h->fall);
	else if (h->counter == 0)
		snprintf(buf, len, "DOWN");
	else
		snprintf(buf, len, "DOWN %d/%d", h->counter, h->rise);
}

uint64_t
health_next_interval(const struct health *h, uint64_t interval,
                     uint64_t fastinter, uint64_t downinter)
{
	if (h->counter >= h->rise + h->fall - 1)
		return interval;
	if (h->counter == 0)
		return downinter != 0 ? downinter : interval;
	return fastinter != 0 ? fastinter : interval;
}
