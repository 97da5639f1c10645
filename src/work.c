/* Carrying out a pool_work (see work.h). */
#include "config.h"

#include "events.h"
#include "session.h"
#include "work.h"

void
work_apply(const struct work_env *env, struct pool_work *w)
{
	events_write_work(env->hlog, w);
	if (w->close != NULL && env->workers != NULL)
		(void)workers_close_server(env->workers, w->close,
		                           END_SERVER_DOWN);
	session_deliver_grants(w);
}
