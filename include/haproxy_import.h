/* load-balancer --import-haproxy (load-balancer(8), OPTIONS): an HAProxy
 * configuration in, the equivalent libconfig configuration
 * (load-balancer.conf(5)) out.  Pure: no sockets, no global state; text
 * in, text out, so that the unit tests can drive it with files and memory
 * streams. */
#ifndef LB_HAPROXY_IMPORT_H
#define LB_HAPROXY_IMPORT_H

#include <stdio.h>

/* Longest input line accepted, in bytes without the line end (HAProxy's own
 * limit is 2048).  A longer line is an error, not a silent cut. */
#define HAPROXY_LINE_MAX 4096

/* Most words on one line (HAProxy's own limit, MAX_LINE_ARGS). */
#define HAPROXY_WORDS_MAX 64

/* Translate the HAProxy configuration read from in.  name is the file name
 * used in the header comment and in the diagnostics written to diag:
 *   NAME:LINE: cannot translate: DIRECTIVE (why)
 *   NAME:LINE: warning: MESSAGE
 *   NAME:LINE: MESSAGE                     (an error: the input is invalid)
 * in line order.  The translation goes to out only when the input could be
 * read and parsed.  Returns 0 (written, with or without warnings) or 1 (the
 * input cannot be read or parsed, or out cannot be written). */
int haproxy_import(FILE *in, const char *name, FILE *out, FILE *diag);

/* The same for a file ("-" is standard input).  A file that cannot be
 * opened is reported as "load-balancer: cannot read PATH: REASON". */
int haproxy_import_file(const char *path, FILE *out, FILE *diag);

#endif
