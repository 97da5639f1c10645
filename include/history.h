/* The health timeline of the status pages (see history.c). */
#ifndef LB_HISTORY_H
#define LB_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "healthlog.h"
#include "snapshot.h"
#include "timeline.h"

/* Health-log bytes read per picture (the file's tail). */
#define HISTORY_FILE_TAIL (1 << 20)

/* The timeline's state of a server's state. */
enum tl_state history_state(enum srv_state st);
/* The picture of the last since_ms (SVG, malloc'ed), one lane per server
 * of s; NULL when out of memory. */
char *history_timeline(const struct snapshot *s, struct healthlog *hl,
                       int64_t since_ms, bool standalone, size_t *len);

#endif
