/* OpenSSL client side of the STARTTLS check. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

SSL_CTX *
tls_client_ctx(const struct cfg_check *c, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		snprintf(err, errlen, "SSL_CTX_new: %s",
		         ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (c->tls_verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (c->tls_ca_file[0] != '\0') {
			if (SSL_CTX_load_verify_locations(ctx, c->tls_ca_file,
			                                  NULL) != 1) {
				snprintf(
				    err, errlen,
				    "tls_ca_file %s: cannot load: %s",
				    c->tls_ca_file,
				    ERR_reason_error_string(ERR_get_error()));
				ERR_clear_error();
				SSL_CTX_free(ctx);
				return NULL;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			snprintf(err, errlen,
			         "cannot load the system certificate store");
			ERR_clear_error();
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

SSL *
tls_client_ssl(SSL_CTX *ctx, const struct cfg_check *c, const char *host,
               char *err, size_t errlen)
{
	const char *name =
	    c->tls_servername[0] != '\0' ? c->tls_servername : host;
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, name, ip) == 1 ||
	             inet_pton(AF_INET6, name, ip) == 1;
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL) {
		snprintf(err, errlen, "SSL_new: %s",
		         ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	/* SNI carries host names only, never IP literals (RFC 6066). */
	if (!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1) {
		snprintf(err, errlen, "cannot set SNI %s", name);
		SSL_free(ssl);
		return NULL;
	}
	if (c->tls_verify) {
		X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
		int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, name)
		               : X509_VERIFY_PARAM_set1_host(p, name, 0);
		if (ok != 1) {
			snprintf(err, errlen, "cannot verify against %s", name);
			SSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}

void
tls_error_text(SSL *ssl, unsigned long e, char *buf, size_t len)
{
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (v != X509_V_OK)
		snprintf(buf, len, "certificate verify failed: %s",
		         X509_verify_cert_error_string(v));
	else if (e != 0) {
		const char *r = ERR_reason_error_string(e);
		snprintf(buf, len, "%s", r != NULL ? r : "TLS error");
	} else {
		unsigned long q = ERR_peek_error();
		const char *r = q != 0 ? ERR_reason_error_string(q) : NULL;
		snprintf(buf, len, "%s",
		         r != NULL ? r : "TLS handshake failed");
	}
	ERR_clear_error();
}

bool
tls_peer_expiry(SSL *ssl, time_t *not_after, char *subject, size_t subjlen)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	const ASN1_TIME *na;
	struct tm tm;

	if (cert == NULL)
		return false;
	na = X509_get0_notAfter(cert);
	if (na == NULL || ASN1_TIME_to_tm(na, &tm) != 1) {
		X509_free(cert);
		return false;
	}
	*not_after = timegm(&tm);
	X509_NAME_oneline(X509_get_subject_name(cert), subject, (int)subjlen);
	X509_free(cert);
	return true;
}
