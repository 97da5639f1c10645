/* Health timeline: health-log events in, an SVG picture out (the
 * daemon's /timeline and status page, `lbctl health-report --format
 * svg`).
 *
 * Pure: no clock, no I/O, no globals.  One lane per server over a window
 * [from, to]; each lane is cut into bands by state (UP, DOWN, DRAIN,
 * MAINT, or "no data" where the log says nothing), a DOWN band's hover
 * title names the failure (step, code and reply, or reason).
 *
 * What a lane shows before its first event: after a daemon `start` line,
 * UP (servers start UP); otherwise what the first event implies (a
 * `down`, `fail`, `drain` or `maint` follows an UP time, an `up` a DOWN
 * time of its downtime_s), from the first event of the input on.  The
 * daemon may declare its servers first with their current state: a lane
 * without events since the last `start` then shows that state from the
 * start on (a server disabled in the file starts in MAINT without an
 * event). */
#ifndef LB_TIMELINE_H
#define LB_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

/* Lanes drawn at most (more servers are counted and mentioned). */
#define TIMELINE_LANES_MAX 500
/* State changes kept over all lanes; later ones are counted, not drawn. */
#define TIMELINE_CHANGES_MAX 1000000
/* The picture stops adding lanes past this size (bytes). */
#define TIMELINE_SVG_MAX (16 * 1024 * 1024)
/* Geometry: the plot is TIMELINE_PLOT_W pixels wide, one pixel column
 * per (to - from) / TIMELINE_PLOT_W; a column shows the worst state in
 * it (DOWN, MAINT, DRAIN, UP, no data), so no outage is too short to
 * see and the picture's size does not grow with the number of events. */
#define TIMELINE_WIDTH 1000
#define TIMELINE_PLOT_W 740

enum tl_state { TL_NODATA, TL_UP, TL_DOWN, TL_DRAIN, TL_MAINT };

struct timeline;

/* A timeline for the window [from_ms, to_ms] (to_ms > from_ms).  NULL
 * when out of memory. */
struct timeline *timeline_new(int64_t from_ms, int64_t to_ms);
void timeline_free(struct timeline *tl);

/* Declare a lane (before any event) with the server's current state;
 * declared lanes come first, in declaration order, the others after them
 * sorted by backend and server.  Returns 0, or -1 when out of memory. */
int timeline_lane(struct timeline *tl, const char *backend, const char *server,
                  enum tl_state now);
/* Feed one event (in log order; out-of-order ones count as simultaneous
 * with the lane's previous event; events after to_ms are ignored).
 * Returns 0, or -1 when out of memory (errno set). */
int timeline_add(struct timeline *tl, const struct report_event *ev);
/* Parse and feed one health-log line; malformed lines are counted and
 * skipped.  Returns 0, or -1 when out of memory. */
int timeline_add_line(struct timeline *tl, const char *line);

/* The picture, NUL-terminated, malloc'd (the caller frees it); *len (may
 * be NULL) gets its length.  standalone adds the XML declaration (an .svg
 * file); without it the text can be put inline in HTML.  NULL when out of
 * memory. */
char *timeline_svg(struct timeline *tl, bool standalone, size_t *len);

/* "UP" "DOWN" "DRAIN" "MAINT" "NO DATA". */
const char *timeline_state_name(enum tl_state st);

/* Length of the valid UTF-8 character at p (XML characters only: not
 * U+FFFE, U+FFFF), 1 for ASCII, 0 when invalid. */
size_t timeline_utf8_len(const char *p);

/* s escaped for HTML and XML text and attribute values, passed to put in
 * pieces: & < > " ' as entities, control characters as spaces, invalid
 * UTF-8 as U+FFFD. */
void timeline_escape(const char *s,
                     void (*put)(void *arg, const char *p, size_t n),
                     void *arg);

#endif
