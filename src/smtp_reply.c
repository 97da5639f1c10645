/* Incremental SMTP reply parser (RFC 5321 4.2). */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp_reply.h"

void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

static enum smtp_parse
bad(struct smtp_reply *r, const char *why)
{
	r->error = why;
	return SMTP_ERR_BAD;
}

/* One complete line (without CRLF) in r->line.  Returns SMTP_DONE for the
 * last line of the reply, SMTP_NEED_MORE for a continuation. */
static enum smtp_parse
end_of_line(struct smtp_reply *r)
{
	const char *l = r->line;
	size_t n = r->linelen;
	const char *text;
	int code;

	if (n < 3 || !isdigit((unsigned char)l[0]) ||
	    !isdigit((unsigned char)l[1]) || !isdigit((unsigned char)l[2]))
		return bad(r, "non-numeric reply code");
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (code < 100 || code > 599)
		return bad(r, "reply code out of range");
	if (n > 3 && l[3] != ' ' && l[3] != '-')
		return bad(r, "no space or '-' after the reply code");
	if (r->nlines > 0 && code != r->code)
		return bad(r, "reply lines with different codes");
	r->code = code;
	r->nlines++;
	text = n > 4 ? l + 4 : "";
	/* EHLO keyword: the first word of the line's text. */
	if (strncasecmp(text, "STARTTLS", 8) == 0 &&
	    (text[8] == '\0' || text[8] == ' '))
		r->starttls = true;
	if (n > 3 && l[3] == '-') {
		r->linelen = 0;
		return SMTP_NEED_MORE;
	}
	strncpy(r->text, text, sizeof(r->text) - 1);
	r->text[sizeof(r->text) - 1] = '\0';
	r->linelen = 0;
	return SMTP_DONE;
}

enum smtp_parse
smtp_reply_feed(struct smtp_reply *r, const char *data, size_t len,
                size_t *used)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (++r->total > SMTP_REPLY_MAX) {
			*used = i + 1;
			r->error = "reply longer than 4096 bytes";
			return SMTP_ERR_LONG;
		}
		if (c == '\n') {
			enum smtp_parse p;

			if (r->linelen == 0 ||
			    r->line[r->linelen - 1] != '\r') {
				*used = i + 1;
				return bad(r, "line without CRLF");
			}
			r->linelen--; /* drop the CR */
			r->line[r->linelen] = '\0';
			p = end_of_line(r);
			if (p != SMTP_NEED_MORE) {
				*used = i + 1;
				return p;
			}
			continue;
		}
		if (r->linelen > 0 && r->line[r->linelen - 1] == '\r') {
			*used = i + 1;
			return bad(r, "CR not followed by LF");
		}
		if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
			*used = i + 1;
			return bad(r, "control character in reply");
		}
		r->line[r->linelen++] = (char)c;
	}
	*used = len;
	return SMTP_NEED_MORE;
}
