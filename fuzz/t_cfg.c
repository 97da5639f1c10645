/* The configuration loader fed from memory (cfg_load_string: libconfig's
 * parser, then cfg.c's validation).  Whatever the text: either a
 * configuration and no error, or NULL and at least one error, every
 * message "NAME:LINE: ..."; a configuration that loads holds only values
 * load-balancer.conf(5) allows, and its references are in range. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cfg.h"
#include "common.h"
#include "fuzz.h"

#define NAME "fuzz.conf"

static void
check_addr(const struct cfg_addr *a)
{
	FUZZ_ASSERT(a->text != NULL && a->text[0] != '\0');
	FUZZ_ASSERT(a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6);
	FUZZ_ASSERT(a->len > 0 && a->len <= sizeof(a->ss));
}

static void
check_cfg(const struct cfg *c)
{
	const struct cfg_global *g = &c->global;

	FUZZ_ASSERT(c->file != NULL && strcmp(c->file, NAME) == 0);
	FUZZ_ASSERT(g->maxconn >= 1 && g->maxconn <= LB_MAXCONN_MAX);
	FUZZ_ASSERT(g->workers >= 0);
	FUZZ_ASSERT(g->pidfile != NULL && g->user != NULL && g->group != NULL &&
	            g->chroot != NULL && g->control_socket != NULL &&
	            g->health_log != NULL && g->log.ident != NULL);
	/* No frontend or no backend is a warning, not an error. */
	for (size_t i = 0; i < c->nfrontends; i++) {
		const struct cfg_frontend *fe = &c->frontends[i];

		FUZZ_ASSERT(fe->name != NULL && fe->name[0] != '\0');
		FUZZ_ASSERT(fe->nbinds >= 1);
		for (size_t j = 0; j < fe->nbinds; j++)
			check_addr(&fe->binds[j]);
		FUZZ_ASSERT(fe->backend < c->nbackends);
		FUZZ_ASSERT(strcmp(c->backends[fe->backend].name,
		                   fe->backend_name) == 0);
		FUZZ_ASSERT(fe->maxconn >= 0 && fe->backlog >= 0);
		FUZZ_ASSERT(fe->unavailable_reply != NULL);
		FUZZ_ASSERT(strpbrk(fe->unavailable_reply, "\r\n") == NULL);
		for (size_t k = 0; k < i; k++)
			FUZZ_ASSERT(strcmp(c->frontends[k].name, fe->name) !=
			            0);
	}
	for (size_t i = 0; i < c->nbackends; i++) {
		const struct cfg_backend *be = &c->backends[i];

		FUZZ_ASSERT(be->name != NULL && be->name[0] != '\0');
		FUZZ_ASSERT(cfg_find_backend(c, be->name) == be);
		FUZZ_ASSERT(be->retries >= 0 && be->retries <= LB_RETRIES_MAX);
		FUZZ_ASSERT(be->fullconn >= 0);
		if (be->has_check) {
			FUZZ_ASSERT(be->check.rise >= 1 && be->check.fall >= 1);
			FUZZ_ASSERT(be->check.interval_ms >= 100);
			FUZZ_ASSERT(be->check.helo != NULL);
		}
		for (size_t j = 0; j < be->nservers; j++) {
			const struct cfg_server *s = &be->servers[j];

			FUZZ_ASSERT(s->name != NULL && s->name[0] != '\0');
			check_addr(&s->addr);
			FUZZ_ASSERT(s->weight >= 0 &&
			            s->weight <= LB_WEIGHT_MAX);
			FUZZ_ASSERT(s->maxconn >= 0 && s->minconn >= 0);
			for (size_t k = 0; k < j; k++)
				FUZZ_ASSERT(
				    strcmp(be->servers[k].name, s->name) != 0);
		}
	}
}

int
fuzz_cfg(const uint8_t *data, size_t size)
{
	struct cfg_diag diag;
	struct cfg *c;
	char *text;

	fuzz_quiet();
	text = fuzz_cstr(data, size);
	/* @include reads files: out of scope (and /dev/zero never ends). */
	if (strstr(text, "@include") != NULL) {
		free(text);
		return 0;
	}
	cfg_diag_init(&diag);
	c = cfg_load_string(text, NAME, &diag);
	FUZZ_ASSERT(diag.nerrors + diag.nwarnings == diag.n);
	if (c == NULL)
		FUZZ_ASSERT(diag.nerrors >= 1);
	else {
		FUZZ_ASSERT(diag.nerrors == 0);
		check_cfg(c);
	}
	for (size_t i = 0; i < diag.n; i++) {
		FUZZ_ASSERT(diag.msgs[i] != NULL);
		FUZZ_ASSERT(strncmp(diag.msgs[i], NAME ":", sizeof(NAME)) == 0);
		FUZZ_ASSERT(strchr(diag.msgs[i], '\n') == NULL);
		if (i > 0)
			FUZZ_ASSERT(diag.lines[i - 1] <= diag.lines[i]);
	}
	cfg_free(c);
	cfg_diag_free(&diag);
	free(text);
	return 0;
}
