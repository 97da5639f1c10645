/* The HTML status page (see page.c). */
#ifndef LB_PAGE_H
#define LB_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "render.h"
#include "snapshot.h"

#define PAGE_REFRESH_S 10 /* the page's auto-refresh */

/* The page for s; svg (may be NULL: out of memory) is the health timeline
 * of the last since_ms. */
void page_render(struct out *o, const struct snapshot *s, int64_t since_ms,
                 const char *svg, size_t svglen);

#endif
