/* RFC 3339 timestamps: the one formatter and parser (UTC). */
#ifndef LB_RFC3339_H
#define LB_RFC3339_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "2026-11-23T18:40:01.123Z" and its NUL. */
#define RFC3339_MAX 32

/* RFC 3339 date-time ("2026-11-23T18:40:01.123Z", any fraction, "Z" or
 * "+hh:mm"/"-hh:mm") to milliseconds since the epoch.  The whole string
 * must match.  Returns 0, or -1. */
int rfc3339_parse(const char *text, int64_t *ms);
/* ms to "2026-11-23T18:40:01.123Z" (with_ms) or "2026-11-23T18:40:01Z";
 * never writes past len, always terminated. */
void rfc3339_format(int64_t ms, bool with_ms, char *buf, size_t len);
/* ms to "2026-11-23 18:40:01" (text reports and pages; they say UTC). */
void rfc3339_format_text(int64_t ms, char *buf, size_t len);
/* Whole days in ms, rounded down (negative spans too). */
int64_t rfc3339_days(int64_t ms);

#endif
