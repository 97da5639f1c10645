/* Health checks (SPEC 4.3): one state machine per server on the event
 * loop, tcp or smtp (greeting, HELO/EHLO, optional STARTTLS + TLS + EHLO,
 * QUIT).  Results go to server_check_result() only. */
#ifndef LB_CHECK_H
#define LB_CHECK_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "common.h"

struct check;

/* tls_ctx may be NULL when the backend does not use STARTTLS. */
struct check *check_new(struct server *srv, SSL_CTX *tls_ctx);
/* Schedule the first check after delay_ms (the start-up spread). */
void check_schedule(struct check *chk, uint64_t delay_ms);
/* Stop any running check and the schedule (maintenance, shutdown). */
void check_stop(struct check *chk);
void check_free(struct check *chk);

/* Names of the steps, as in the health log: connect greeting helo
 * starttls tls ehlo quit. */
const char *check_step_name(int step);

#endif
