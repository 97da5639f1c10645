/* The agent check's reply (load-balancer.conf(5), AGENT CHECK), compatible
 * with HAProxy's agent-check: one line of at most AGENT_LINE_MAX bytes, words
 * separated by spaces, tabs or commas, in any order, case-insensitive:
 *
 *   NN%          the weight becomes NN % of the configured one (0..100)
 *   maxconn:N    the server's maxconn becomes N (0 = unlimited)
 *   ready drain maint          the agent's operator state
 *   up down stopped fail       the agent's health word ("#reason" after it)
 *
 * "#" starts a description that runs to the end of the line: it is the
 * reason of a down, stopped or fail word ("down#disk full").  Words the
 * parser does not know are ignored, like HAProxy does, as long as one
 * known word is there; a line with none (garbage, an empty line), a
 * percentage above 100 or a malformed number is a failed agent check
 * that changes nothing.  Pure: no I/O, no allocation. */
#ifndef LB_AGENT_H
#define LB_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#define AGENT_LINE_MAX 1024
#define AGENT_REASON_MAX 128

enum agent_admin { AGENT_ADMIN_NONE, AGENT_READY, AGENT_DRAIN, AGENT_MAINT };
enum agent_health {
	AGENT_HEALTH_NONE,
	AGENT_UP,
	AGENT_DOWN,
	AGENT_STOPPED,
	AGENT_FAIL
};

struct agent_reply {
	int pct;     /* 0..100, -1 = not given */
	int maxconn; /* >= 0, -1 = not given */
	enum agent_admin admin;
	enum agent_health health;
	/* The text after "#", trimmed, cut to fit; "" when none. */
	char reason[AGENT_REASON_MAX];
};

/* Parse one line (len bytes; a trailing "\r\n" or "\n" is allowed, no
 * other control character is).  Returns 0, or -1 with a short reason in
 * err ("empty reply", "bad reply: 'xyz'", "weight above 100%", ...). */
int agent_parse(const char *line, size_t len, struct agent_reply *out,
                char *err, size_t errlen);

/* The words of a reply back as text, for the status views: "50% drain",
 * "down#disk full", "maxconn:10 ready". */
void agent_format(const struct agent_reply *r, char *buf, size_t len);

#endif
