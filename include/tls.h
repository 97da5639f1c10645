/* OpenSSL for STARTTLS health checks: one client context per backend,
 * SNI, optional chain and name verification, error texts, expiry. */
#ifndef LB_TLS_H
#define LB_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "cfg.h"

/* NULL with err filled when the CA file cannot be loaded. */
SSL_CTX *tls_client_ctx(const struct cfg_check *c, char *err, size_t errlen);
/* A client SSL for one check: SNI and, with tls_verify, the name to
 * verify (servername, or the server's host; an IP is checked as an IP). */
SSL *tls_client_ssl(SSL_CTX *ctx, const struct cfg_check *c, const char *host,
                    char *err, size_t errlen);
/* Why a handshake failed: the verification result when verification
 * failed, else the first queued OpenSSL error; drains the error queue. */
void tls_error_text(SSL *ssl, unsigned long err, char *buf, size_t len);
/* The peer certificate's notAfter and subject; false without one. */
bool tls_peer_expiry(SSL *ssl, time_t *not_after, char *subject,
                     size_t subjlen);

#endif
