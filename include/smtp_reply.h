/* Incremental SMTP reply parser (RFC 5321 4.2), for health checks.  Pure:
 * tested without sockets. */
#ifndef LB_SMTP_REPLY_H
#define LB_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_MAX 4096 /* a longer reply fails the check */

enum smtp_parse {
	SMTP_NEED_MORE, /* no complete reply yet */
	SMTP_DONE,      /* a complete reply: code, text, keywords are set */
	SMTP_ERR_LONG,  /* reply longer than SMTP_REPLY_MAX: "reply too long" */
	SMTP_ERR_BAD,   /* no CRLF, non-numeric or mixed codes: "bad reply" */
};

struct smtp_reply {
	int code;          /* 100..599 once DONE */
	char text[512];    /* last line's text after "NNN " (truncated) */
	unsigned nlines;   /* lines in the reply */
	bool starttls;     /* some line announced STARTTLS (EHLO keyword) */
	const char *error; /* static detail once an ERR_ result is returned */
	/* internal */
	size_t total;
	size_t linelen;
	char line[SMTP_REPLY_MAX + 1];
};

void smtp_reply_init(struct smtp_reply *r);
/* Feed len bytes.  *used is set to the bytes consumed: on SMTP_DONE it
 * stops right after the final line's CRLF, so the caller can tell whether
 * bytes follow the reply.  Call smtp_reply_init() before the next reply. */
enum smtp_parse smtp_reply_feed(struct smtp_reply *r, const char *data,
                                size_t len, size_t *used);

#endif
