/* Health checks (load-balancer.conf(5), HEALTH CHECKS) and agent checks
 * (AGENT CHECK): one state machine per server and kind on
 * the event loop that owns it, tcp or smtp (greeting, HELO/EHLO, optional
 * STARTTLS + TLS + EHLO, QUIT).  Each check reports its result and the
 * certificate it saw to its owner's callbacks; the owner schedules the
 * next one. */
#ifndef LB_CHECK_H
#define LB_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "cfg.h"
#include "health.h"

struct check;

struct check_cbs {
	/* One check ended (res is valid during the call). */
	void (*result)(void *arg, const struct check_result *res);
	/* A STARTTLS check saw the server's certificate. */
	void (*cert)(void *arg, time_t not_after, const char *subject);
};

/* A check of server sc of backend bc on base; tls_ctx may be NULL when
 * the backend does not use STARTTLS.  NULL when out of memory. */
struct check *check_new(const struct cfg_backend *bc,
                        const struct cfg_server *sc, struct event_base *base,
                        SSL_CTX *tls_ctx, const struct check_cbs *cbs,
                        void *arg);
/* An agent check of server sc (load-balancer.conf(5), AGENT CHECK): connect to
 * its agent address, send agent.send, read one line; the result passes with the
 * line in reply (reply_len bytes) or fails with a reason.  NULL when out of
 * memory. */
struct check *check_new_agent(const struct cfg_backend *bc,
                              const struct cfg_server *sc,
                              struct event_base *base,
                              const struct check_cbs *cbs, void *arg);
/* Run the next check after delay_ms (not while one runs). */
void check_schedule(struct check *chk, uint64_t delay_ms);
/* Stop any running check and the schedule (maintenance, shutdown). */
void check_stop(struct check *chk);
void check_free(struct check *chk);

#endif
