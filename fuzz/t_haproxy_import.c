/* The HAProxy importer (src/haproxy_import.c): HAProxy configuration text
 * in, libconfig text out.  Whatever the input: the status is 0 or 1, every
 * diagnostic line is "fuzz.cfg:LINE: ..." (or the program's own prefix),
 * and when a translation is written (status 0) libconfig can parse it: a
 * name or value with quotes, backslashes or control characters in the
 * HAProxy file must not break the output's syntax. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "fuzz.h"
#include "haproxy_import.h"

int
fuzz_haproxy_import(const uint8_t *data, size_t size)
{
	char *out = NULL, *diag = NULL;
	size_t outlen = 0, diaglen = 0;
	FILE *in, *fo, *fd;
	int rc;

	fuzz_quiet();
	/* fmemopen wants a non-empty buffer. */
	in = size > 0 ? fmemopen((void *)(uintptr_t)data, size, "r")
	              : fopen("/dev/null", "r");
	fo = open_memstream(&out, &outlen);
	fd = open_memstream(&diag, &diaglen);
	FUZZ_ASSERT(in != NULL && fo != NULL && fd != NULL);
	rc = haproxy_import(in, "fuzz.cfg", fo, fd);
	fclose(in);
	fclose(fo);
	fclose(fd);
	FUZZ_ASSERT(rc == 0 || rc == 1);
	for (char *l = diag; l != NULL && *l != '\0';) {
		char *nl = strchr(l, '\n');
		FUZZ_ASSERT(nl != NULL); /* whole lines */
		FUZZ_ASSERT(strncmp(l, "fuzz.cfg:", 9) == 0 ||
		            strncmp(l, "load-balancer: ", 15) == 0);
		l = nl + 1;
	}
	if (rc == 0) {
		config_t lc;

		FUZZ_ASSERT(outlen > 0);
		FUZZ_ASSERT(strlen(out) == outlen); /* no NUL written */
		config_init(&lc);
		if (config_read_string(&lc, out) != CONFIG_TRUE) {
			fprintf(stderr,
			        "libconfig: line %d: %s\n--- output\n%s",
			        config_error_line(&lc), config_error_text(&lc),
			        out);
			FUZZ_ASSERT(!"the translation is valid libconfig");
		}
		config_destroy(&lc);
	}
	free(out);
	free(diag);
	return 0;
}
