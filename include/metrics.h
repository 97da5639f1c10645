/* /metrics (see metrics.c). */
#ifndef LB_METRICS_H
#define LB_METRICS_H

#include "render.h"
#include "snapshot.h"

void metrics_render(struct out *o, const struct snapshot *s);

#endif
