/* Unit tests for statefile.c: the operator state file (include/statefile.h
 * is the contract; load-balancer.conf(5), OPERATOR STATE gives the
 * semantics).  The logfmt lines read and written back, every warning with
 * its line, and the file read and replaced through its directory's
 * descriptor in a temporary directory: missing, saved and loaded, a save
 * that fails (the old file stays whole), too large, not a file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "statefile.h"

/* A literal with its length (it may hold a NUL byte). */
#define BYTES(s) s, sizeof(s) - 1

#define HEADER                                                                 \
	"# load-balancer operator state: written by the daemon at every\n"     \
	"# lbctl drain, disable, enable and set weight; lbctl enable clears\n" \
	"# a server's line.\n"

/* --- helpers -------------------------------------------------------------- */

/* The warnings of one parse or load. */
struct warnings {
	char msg[64][256];
	size_t n;
};

static void
collect(void *arg, const char *msg)
{
	struct warnings *w = arg;

	ck_assert_msg(strchr(msg, '\n') == NULL, "warning on two lines: %s",
	              msg);
	if (w->n < 64)
		snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", msg);
	w->n++;
}

static struct statefile_entry
entry(const char *backend, const char *server, enum statefile_admin admin,
      int weight)
{
	struct statefile_entry e;

	memset(&e, 0, sizeof(e));
	snprintf(e.backend, sizeof(e.backend), "%s", backend);
	snprintf(e.server, sizeof(e.server), "%s", server);
	e.admin = admin;
	e.weight = weight;
	return e;
}

static void
add(struct statefile_list *l, const char *backend, const char *server,
    enum statefile_admin admin, int weight)
{
	struct statefile_entry e = entry(backend, server, admin, weight);

	ck_assert_int_eq(statefile_list_add(l, &e), 0);
}

static void
same_entry(const struct statefile_entry *a, const struct statefile_entry *b,
           size_t i)
{
	ck_assert_msg(strcmp(a->backend, b->backend) == 0,
	              "entry %zu: backend '%s', not '%s'", i, a->backend,
	              b->backend);
	ck_assert_msg(strcmp(a->server, b->server) == 0,
	              "entry %zu: server '%s', not '%s'", i, a->server,
	              b->server);
	ck_assert_msg(a->admin == b->admin, "entry %zu: admin %d, not %d", i,
	              (int)a->admin, (int)b->admin);
	ck_assert_msg(a->weight == b->weight, "entry %zu: weight %d, not %d", i,
	              a->weight, b->weight);
}

static void
same_list(const struct statefile_list *a, const struct statefile_list *b)
{
	ck_assert_uint_eq(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		same_entry(&a->v[i], &b->v[i], i);
}

/* l's text (malloc'ed). */
static char *
format(const struct statefile_list *l)
{
	size_t len = 4096 + l->n * 2200;
	char *buf = malloc(len);
	long n;

	ck_assert_ptr_nonnull(buf);
	n = statefile_format(l, buf, len);
	ck_assert_int_ge(n, 0);
	ck_assert_uint_eq(strlen(buf), (size_t)n);
	return buf;
}

/* text (len bytes) read into l, with its warnings in w (both set up
 * here): n entries. */
static void
read_text(const char *text, size_t len, struct statefile_list *l,
          struct warnings *w, long n)
{
	long got;

	statefile_list_init(l);
	w->n = 0;
	got = statefile_parse(text, len, l, collect, w);
	ck_assert_msg(got == n, "%ld entries, not %ld (%zu warnings: %s)", got,
	              n, w->n, w->n > 0 ? w->msg[0] : "");
	ck_assert_uint_eq(l->n, (size_t)n);
}

/* text read into l (set up here): n entries and no warning. */
static void
read_clean(const char *text, struct statefile_list *l, long n)
{
	struct warnings w;

	read_text(text, strlen(text), l, &w, n);
	ck_assert_msg(w.n == 0, "warning '%s'", w.msg[0]);
}

/* l printed and read back, with no warning, is l. */
static void
round_trip(const struct statefile_list *l)
{
	struct statefile_list back;
	struct warnings w = {.n = 0};
	char *text = format(l);

	read_text(text, strlen(text), &back, &w, (long)l->n);
	ck_assert_msg(w.n == 0, "'%s': %s", text, w.msg[0]);
	same_list(&back, l);
	statefile_list_free(&back);
	free(text);
}

/* text parses to n entries with exactly the warning want ("" = none). */
static void
parses(const char *text, long n, const char *want)
{
	struct statefile_list l;
	struct warnings w = {.n = 0};

	read_text(text, strlen(text), &l, &w, n);
	ck_assert_uint_eq(l.n, (size_t)n);
	if (want[0] == '\0')
		ck_assert_msg(w.n == 0, "'%s': warning '%s'", text, w.msg[0]);
	else {
		ck_assert_msg(w.n == 1, "'%s': %zu warnings", text, w.n);
		ck_assert_msg(strcmp(w.msg[0], want) == 0,
		              "'%s': '%s', not '%s'", text, w.msg[0], want);
	}
	statefile_list_free(&l);
}

/* --- the list ------------------------------------------------------------- */

START_TEST(list_grows)
{
	struct statefile_list l;
	char name[32];

	statefile_list_init(&l);
	ck_assert_ptr_null(l.v);
	ck_assert_uint_eq(l.n, 0);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		add(&l, "b", name, STATEFILE_DRAIN, i);
		ck_assert_uint_le(l.n, l.cap);
	}
	ck_assert_uint_eq(l.n, 100);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		ck_assert_str_eq(l.v[i].server, name);
		ck_assert_int_eq(l.v[i].weight, i);
	}
	statefile_list_free(&l);
	ck_assert_ptr_null(l.v);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_uint_eq(l.cap, 0);
	statefile_list_free(&l); /* twice: harmless */
}
END_TEST

/* --- reading -------------------------------------------------------------- */

START_TEST(parse_example)
{
	static const char text[] =
	    HEADER "server backend=\"TO-FILTER-CLUSTER\" name=filter2 "
	           "admin=drain\n"
	           "server backend=\"TO-FILTER-CLUSTER\" name=filter3 "
	           "weight=50\n"
	           "server backend=b name=c admin=maint weight=0\n";
	struct statefile_list l;

	read_clean(text, &l, 3);
	same_entry(&l.v[0],
	           &(struct statefile_entry){"TO-FILTER-CLUSTER", "filter2",
	                                     STATEFILE_DRAIN, -1},
	           0);
	same_entry(&l.v[1],
	           &(struct statefile_entry){"TO-FILTER-CLUSTER", "filter3",
	                                     STATEFILE_ADMIN_NONE, 50},
	           1);
	same_entry(&l.v[2],
	           &(struct statefile_entry){"b", "c", STATEFILE_MAINT, 0}, 2);
	statefile_list_free(&l);
}
END_TEST

START_TEST(parse_values)
{
	parses("server backend=b name=s admin=ready\n", 1, "");
	parses("server backend=b name=s admin=DRAIN\n", 1, "");
	parses("server backend=b name=s weight=256\n", 1, "");
	parses("server backend=b name=s weight=007\n", 1, "");
	/* any order, tabs, several spaces, CRLF, no final newline */
	parses("server weight=1 admin=maint name=s backend=b", 1, "");
	parses("  server\tbackend=b \t name=s  weight=1\t\r\n", 1, "");
	parses("server backend=\"\" name=s weight=1\n", 0, "1: empty backend");
	/* quoted values */
	parses("server backend=\"a b\" name=\"x\\\"y\\\\z=\" weight=1\n", 1,
	       "");
	parses("server backend=\"\\x0a\\x7F\" name=s weight=1\n", 1, "");
}
END_TEST

/* Each bad line is skipped with one warning that names its line; the
 * good lines around it are kept. */
START_TEST(parse_warnings)
{
	static const struct {
		const char *line, *warning;
	} cases[] = {
	    {"server backend=b name=s admin=drain color=red",
	     "unknown key 'color'"},
	    {"server backend=b name=s Admin=drain", "unknown key 'Admin'"},
	    {"server name=s admin=drain", "missing backend"},
	    {"server backend=b weight=1", "missing name"},
	    {"server backend=b name=s", "neither admin nor weight"},
	    {"server", "missing backend"},
	    {"server backend=b name=s admin=up",
	     "bad admin 'up' (ready, drain or maint)"},
	    {"server backend=b name=s admin=", "bad admin '' (ready, drain or "
	                                       "maint)"},
	    {"server backend=b name=s weight=257", "bad weight '257' (0..256)"},
	    {"server backend=b name=s weight=-1", "bad weight '-1' (0..256)"},
	    {"server backend=b name=s weight=1x", "bad weight '1x' (0..256)"},
	    {"server backend=b name=s weight=", "bad weight '' (0..256)"},
	    {"server backend=b name=s weight=99999999999999999999",
	     "bad weight '99999999999999999999' (0..256)"},
	    {"server backend=b name=s weight=\"\"", "bad weight '' (0..256)"},
	    {"servers backend=b name=s admin=drain", "expected 'server ...'"},
	    {"Server backend=b name=s admin=drain", "expected 'server ...'"},
	    {"backend=b name=s admin=drain", "expected 'server ...'"},
	    {"drain", "expected 'server ...'"},
	    {"server backend=b name=s admin=drain admin=maint",
	     "key 'admin' given twice"},
	    {"server backend=b backend=c name=s weight=1",
	     "key 'backend' given twice"},
	    {"server backend=b name=s drain",
	     "expected key=value, not 'drain'"},
	    {"server backend=b name=s =drain", "expected key=value, not "
	                                       "'=drain'"},
	    {"server backend=b name=\"s admin=drain",
	     "'name': no closing quote"},
	    {"server backend=b name=\"s\"x admin=drain",
	     "'name': text after the closing quote"},
	    {"server backend=b name=\"s\\n\" admin=drain",
	     "'name': bad escape"},
	    {"server backend=b name=\"s\\x00\" admin=drain",
	     "'name': bad escape"},
	    {"server backend=b name=\"s\\x4\" admin=drain",
	     "'name': bad escape"},
	    {"server backend=b name=\"s\\", "'name': bad escape"},
	    {"server backend=b name=a\"b admin=drain",
	     "'name': a value with '\"' must be quoted"},
	    {"server backend=b name=a=b admin=drain",
	     "'name': a value with '=' must be quoted"},
	    {"server backend=b name=\"\" admin=drain", "empty name"},
	    {"server backend=b name= admin=drain", "empty name"},
	    {"server backend=b\x01 name=s admin=drain",
	     "control character (code 1)"},
	    {"server backend=b name=s admin=drain\x7f",
	     "control character (code 127)"},
	    {"server backend=b\rx name=s admin=drain",
	     "control character (code 13)"},
	};
	char text[1024], want[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct statefile_list l;
		struct warnings w = {.n = 0};

		/* the bad line is line 4, between good ones */
		snprintf(text, sizeof(text),
		         "# comment\n"
		         "server backend=b name=before admin=drain\n"
		         "\n"
		         "%s\n"
		         "server backend=b name=after weight=3\n",
		         cases[i].line);
		snprintf(want, sizeof(want), "4: %s", cases[i].warning);
		read_text(text, strlen(text), &l, &w, 2);
		ck_assert_msg(w.n == 1, "'%s': %zu warnings", cases[i].line,
		              w.n);
		ck_assert_msg(strcmp(w.msg[0], want) == 0,
		              "'%s': '%s', not '%s'", cases[i].line, w.msg[0],
		              want);
		ck_assert_str_eq(l.v[0].server, "before");
		ck_assert_str_eq(l.v[1].server, "after");
		statefile_list_free(&l);
	}
}
END_TEST

START_TEST(parse_long_names)
{
	char name[STATEFILE_NAME_MAX + 1], text[4 * STATEFILE_NAME_MAX];
	char want[128];
	struct statefile_list l;
	struct warnings w = {.n = 0};

	/* STATEFILE_NAME_MAX - 1 bytes: taken, bare or quoted */
	memset(name, 'n', STATEFILE_NAME_MAX - 1);
	name[STATEFILE_NAME_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "server backend=%s name=%s weight=1\n",
	         name, name);
	parses(text, 1, "");
	name[0] = ' ';
	snprintf(text, sizeof(text),
	         "server backend=\"%s\" name=\"%s\" weight=1\n", name, name);
	parses(text, 1, "");
	/* one more: skipped */
	memset(name, 'n', STATEFILE_NAME_MAX);
	name[STATEFILE_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "server backend=b name=%s weight=1\n",
	         name);
	parses(text, 0, "1: 'name': value too long");
	snprintf(text, sizeof(text), "server backend=\"%s\" name=s weight=1\n",
	         name);
	parses(text, 0, "1: 'backend': value too long");
	/* an escape counts as the one byte it stands for */
	memset(name, 'n', STATEFILE_NAME_MAX - 2);
	strcpy(name + STATEFILE_NAME_MAX - 2, "\\\\");
	snprintf(text, sizeof(text), "server backend=b name=\"%s\" weight=1\n",
	         name);
	read_text(text, strlen(text), &l, &w, 1);
	ck_assert_uint_eq(w.n, 0);
	ck_assert_uint_eq(strlen(l.v[0].server), STATEFILE_NAME_MAX - 1);
	ck_assert_int_eq(l.v[0].server[STATEFILE_NAME_MAX - 2], '\\');
	statefile_list_free(&l);
	/* a long unknown key is quoted cut */
	memset(name, 'k', 100);
	name[100] = '\0';
	snprintf(text, sizeof(text), "server %s=1\n", name);
	snprintf(want, sizeof(want), "1: unknown key '%.32s...'", name);
	parses(text, 0, want);
}
END_TEST

START_TEST(parse_comments_blank)
{
	static const char text[] = "# a comment\n"
	                           "\n"
	                           "   \n"
	                           "\t\r\n"
	                           "   # indented comment with \x01 in it\n"
	                           "#server backend=b name=s admin=drain\n"
	                           "server backend=b name=s admin=drain\r\n"
	                           "\n";
	struct statefile_list l;

	read_clean(text, &l, 1);
	ck_assert_str_eq(l.v[0].server, "s");
	statefile_list_free(&l);
	parses("", 0, "");
	parses("\n\n\n", 0, "");
	parses(HEADER, 0, "");
}
END_TEST

START_TEST(parse_line_numbers)
{
	static const char text[] = "server backend=b name=a admin=drain\n"
	                           "bogus\n"
	                           "\n"
	                           "server backend=b name=c\n"
	                           "# ok\n"
	                           "server backend=b name=d weight=x"; /* 6 */
	struct statefile_list l;
	struct warnings w = {.n = 0};

	read_text(text, strlen(text), &l, &w, 1);
	ck_assert_uint_eq(w.n, 3);
	ck_assert_str_eq(w.msg[0], "2: expected 'server ...'");
	ck_assert_str_eq(w.msg[1], "4: neither admin nor weight");
	ck_assert_str_eq(w.msg[2], "6: bad weight 'x' (0..256)");
	/* no warn function: the same, silently */
	statefile_list_free(&l);
	ck_assert_int_eq(statefile_parse(text, strlen(text), &l, NULL, NULL),
	                 1);
	statefile_list_free(&l);
}
END_TEST

START_TEST(parse_duplicates)
{
	static const char text[] = "server backend=b name=s admin=drain\n"
	                           "server backend=b name=t weight=5\n"
	                           "server backend=c name=s admin=maint\n"
	                           "server backend=b name=s weight=7\n";
	struct statefile_list l;
	struct warnings w = {.n = 0};

	read_text(text, strlen(text), &l, &w, 3);
	ck_assert_uint_eq(w.n, 1);
	ck_assert_str_eq(w.msg[0], "4: backend 'b' server 's' again: this "
	                           "line replaces the earlier one");
	/* the later line, in the earlier one's place; all of it */
	same_entry(&l.v[0],
	           &(struct statefile_entry){"b", "s", STATEFILE_ADMIN_NONE, 7},
	           0);
	same_entry(&l.v[1],
	           &(struct statefile_entry){"b", "t", STATEFILE_ADMIN_NONE, 5},
	           1);
	same_entry(&l.v[2],
	           &(struct statefile_entry){"c", "s", STATEFILE_MAINT, -1}, 2);

	/* appended to a list that holds entries: they count as earlier */
	w.n = 0;
	ck_assert_int_eq(statefile_parse(BYTES("server backend=c name=s "
	                                       "weight=9\n"
	                                       "server backend=d name=s "
	                                       "weight=9\n"),
	                                 &l, collect, &w),
	                 1);
	ck_assert_uint_eq(l.n, 4);
	ck_assert_uint_eq(w.n, 1);
	ck_assert_int_eq(l.v[2].weight, 9);
	ck_assert_int_eq(l.v[2].admin, STATEFILE_ADMIN_NONE);
	ck_assert_str_eq(l.v[3].backend, "d");
	statefile_list_free(&l);
}
END_TEST

START_TEST(parse_many_duplicates)
{
	/* 20000 lines over 100 servers: the last line of each wins */
	size_t cap = 20000 * 64, n = 0;
	char *text = malloc(cap);
	struct statefile_list l;
	struct warnings w = {.n = 0};

	ck_assert_ptr_nonnull(text);
	for (int i = 0; i < 20000; i++)
		n += (size_t)snprintf(text + n, cap - n,
		                      "server backend=b%d name=s%d weight=%d\n",
		                      i % 10, i % 100, i % 257);
	read_text(text, n, &l, &w, 100);
	ck_assert_uint_eq(w.n, 20000 - 100);
	for (int i = 0; i < 100; i++) {
		char b[16], s[16];

		snprintf(b, sizeof(b), "b%d", i % 10);
		snprintf(s, sizeof(s), "s%d", i);
		ck_assert_str_eq(l.v[i].backend, b);
		ck_assert_str_eq(l.v[i].server, s);
		ck_assert_int_eq(l.v[i].weight, (19900 + i) % 257);
	}
	statefile_list_free(&l);
	free(text);
}
END_TEST

START_TEST(parse_garbage)
{
	unsigned char text[4096];
	struct statefile_list l;
	struct warnings w = {.n = 0};
	unsigned x = 12345;

	/* pseudo-random bytes, NULs included, with a few newlines and one
	 * good line in the middle */
	for (size_t i = 0; i < sizeof(text); i++) {
		x = x * 1103515245u + 12345u;
		text[i] = (unsigned char)(x >> 16);
		if (text[i] == '#')
			text[i] = 0;
	}
	memcpy(text + 2000, "\nserver backend=b name=s weight=1\n", 34);
	read_text((const char *)text, sizeof(text), &l, &w, 1);
	ck_assert_str_eq(l.v[0].server, "s");
	ck_assert_uint_gt(w.n, 2);
	statefile_list_free(&l);

	/* all NULs: one line, one warning */
	memset(text, 0, sizeof(text));
	read_text((const char *)text, sizeof(text), &l, &w, 0);
	ck_assert_uint_eq(w.n, 1);
	ck_assert_str_eq(w.msg[0], "1: control character (code 0)");
	/* a NUL inside a good line */
	read_text(BYTES("server backend=b\0 name=s weight=1\n"), &l, &w, 0);
	ck_assert_uint_eq(w.n, 1);
	ck_assert_str_eq(w.msg[0], "1: control character (code 0)");
}
END_TEST

/* --- writing -------------------------------------------------------------- */

START_TEST(format_text)
{
	struct statefile_list l;
	char *text;

	statefile_list_init(&l);
	text = format(&l);
	ck_assert_str_eq(text, HEADER);
	free(text);
	add(&l, "TO-FILTER-CLUSTER", "filter2", STATEFILE_DRAIN, -1);
	add(&l, "TO-FILTER-CLUSTER", "filter3", STATEFILE_ADMIN_NONE, 50);
	add(&l, "b", "c", STATEFILE_MAINT, 0);
	add(&l, "a b", "x\"y\\z=", STATEFILE_READY, 256);
	add(&l, "tab\there", "nl\nx\x7f", STATEFILE_READY, -1);
	add(&l, "caf\xc3\xa9", "#1", STATEFILE_ADMIN_NONE, 1);
	text = format(&l);
	ck_assert_str_eq(
	    text,
	    HEADER "server backend=TO-FILTER-CLUSTER name=filter2 "
	           "admin=drain\n"
	           "server backend=TO-FILTER-CLUSTER name=filter3 "
	           "weight=50\n"
	           "server backend=b name=c admin=maint weight=0\n"
	           "server backend=\"a b\" name=\"x\\\"y\\\\z=\" "
	           "admin=ready weight=256\n"
	           "server backend=\"tab\\x09here\" name=\"nl\\x0ax\\x7f\" "
	           "admin=ready\n"
	           "server backend=caf\xc3\xa9 name=#1 weight=1\n");
	free(text);
	statefile_list_free(&l);
}
END_TEST

START_TEST(format_skips_empty)
{
	struct statefile_list l;
	struct statefile_entry e;
	char *text;

	statefile_list_init(&l);
	add(&l, "b", "nothing", STATEFILE_ADMIN_NONE, -1);
	add(&l, "", "s", STATEFILE_DRAIN, -1);
	add(&l, "b", "", STATEFILE_DRAIN, -1);
	add(&l, "b", "bad", (enum statefile_admin)7, 300);
	e = entry("b", "x", STATEFILE_DRAIN, -1);
	memset(e.server, 'x', sizeof(e.server)); /* no NUL */
	ck_assert_int_eq(statefile_list_add(&l, &e), 0);
	add(&l, "b", "kept", STATEFILE_DRAIN, -1);
	text = format(&l);
	ck_assert_str_eq(text,
	                 HEADER "server backend=b name=kept admin=drain\n");
	free(text);
	statefile_list_free(&l);
}
END_TEST

START_TEST(format_buffer_size)
{
	struct statefile_list l;
	char *text, *buf;
	size_t n;

	statefile_list_init(&l);
	add(&l, "b", "s", STATEFILE_DRAIN, 10);
	text = format(&l);
	n = strlen(text);
	buf = malloc(n + 1);
	ck_assert_ptr_nonnull(buf);
	/* exactly enough, and every size below */
	ck_assert_int_eq(statefile_format(&l, buf, n + 1), (long)n);
	ck_assert_str_eq(buf, text);
	for (size_t len = 0; len <= n; len++)
		ck_assert_int_eq(statefile_format(&l, buf, len), -1);
	ck_assert_int_eq(statefile_format(&l, NULL, 0), -1);
	free(buf);
	free(text);
	statefile_list_free(&l);
}
END_TEST

START_TEST(round_trip_awkward)
{
	static const char *const names[] = {
	    "plain",        "with space",  " lead",     "trail ",
	    "\"quoted\"",   "back\\slash", "\\",        "\"",
	    "a=b",          "=",           "#hash",     "server",
	    "admin=drain",  "tab\tin",     "new\nline", "cr\r",
	    "\x01\x1f\x7f", "caf\xc3\xa9", "x\\x41",    "\\\"\\\"",
	    "''",           "a,b",         "%41",       "name=\"x\" weight=1",
	};
	struct statefile_list l;
	char long_name[STATEFILE_NAME_MAX];
	size_t k = 0;

	statefile_list_init(&l);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
			add(&l, names[i], names[j],
			    (enum statefile_admin)(k % 4), (int)(k % 258) - 1);
			k++;
		}
	/* admin none and weight -1 are not written: fix those */
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].admin == STATEFILE_ADMIN_NONE && l.v[i].weight < 0)
			l.v[i].weight = 0;
	/* the longest names, of the bytes that need the most room */
	memset(long_name, '"', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	add(&l, long_name, long_name, STATEFILE_MAINT, 256);
	memset(long_name, '\n', sizeof(long_name) - 1);
	add(&l, long_name, "s", STATEFILE_MAINT, 256);
	round_trip(&l);
	statefile_list_free(&l);
}
END_TEST

START_TEST(round_trip_1000)
{
	struct statefile_list l;
	char b[64], s[64];

	statefile_list_init(&l);
	for (int i = 0; i < 1000; i++) {
		snprintf(b, sizeof(b), "backend %d", i / 10);
		snprintf(s, sizeof(s), "filter-%d.example.com", i);
		add(&l, b, s, (enum statefile_admin)(1 + i % 3),
		    i % 2 ? -1 : i % 257);
	}
	round_trip(&l);
	statefile_list_free(&l);
}
END_TEST

/* --- the file ------------------------------------------------------------- */

/* Each test of the file runs in a fresh temporary directory (a checked
 * fixture, in the test's own process), with sf opened on its "state";
 * l and back are empty lists freed after the test. */
static char tmpdir[256], state[512], state_tmp[512];
static struct statefile sf;
static struct statefile_list l, back;
static struct warnings w;

static void
tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void
file_setup(void)
{
	const char *base = getenv("TMPDIR");
	char err[256] = "";

	snprintf(tmpdir, sizeof(tmpdir), "%s/check_statefile.XXXXXX",
	         base != NULL && *base != '\0' ? base : "/tmp");
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
	tmp_path(state, sizeof(state), "state");
	tmp_path(state_tmp, sizeof(state_tmp), "state.tmp");
	ck_assert_msg(statefile_open(&sf, state, err, sizeof(err)) == 0, "%s",
	              err);
	statefile_list_init(&l);
	statefile_list_init(&back);
	w.n = 0;
}

/* Remove what the tests leave in the directory, then the directory. */
static void
file_teardown(void)
{
	static const char *const names[] = {"state/state", "sub/state", "state",
	                                    "state.tmp",   "link",      "sub"};
	char p[512];

	statefile_close(&sf);
	statefile_list_free(&l);
	statefile_list_free(&back);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tmp_path(p, sizeof(p), names[i]);
		if (unlink(p) < 0 && errno != ENOENT)
			rmdir(p);
	}
	ck_assert_msg(rmdir(tmpdir) == 0, "rmdir %s: %s", tmpdir,
	              strerror(errno));
}

/* The text of a file (malloc'ed), NULL when there is none. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(1 << 20);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* statefile_load of sf into back (emptied first): n entries, or -1 with
 * the error want. */
static void
load(long n, const char *want)
{
	char err[256] = "";
	long got;

	statefile_list_free(&back);
	w.n = 0;
	got = statefile_load(&sf, &back, collect, &w, err, sizeof(err));
	ck_assert_msg(got == n, "load: %ld, not %ld (%s)", got, n, err);
	ck_assert_str_eq(err, want);
}

/* statefile_save of l: 0, or -1 with an error that starts with want. */
static void
save(int rc, const char *want)
{
	char err[256] = "";

	ck_assert_msg(statefile_save(&sf, &l, err, sizeof(err)) == rc,
	              "save: '%s'", err);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0 &&
	                  (want[0] != '\0' || err[0] == '\0'),
	              "save: '%s', not '%s...'", err, want);
}

START_TEST(open_paths)
{
	struct statefile o;
	char err[256] = "", path[512];

	ck_assert_int_eq(statefile_open(&o, "state", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "state file 'state': not an absolute path");
	ck_assert_int_eq(o.dirfd, -1);
	statefile_close(&o);
	ck_assert_int_eq(statefile_open(&o, "", err, sizeof(err)), -1);
	statefile_close(&o);
	ck_assert_int_eq(statefile_open(&o, "/", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "state file '/': no file name");
	statefile_close(&o);
	ck_assert_int_eq(statefile_open(&o, "/tmp/", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "state file '/tmp/': no file name");
	statefile_close(&o);
	ck_assert_int_eq(statefile_open(&o, "/tmp/..", err, sizeof(err)), -1);
	statefile_close(&o);

	/* a file at the root: the directory is "/" */
	ck_assert_int_eq(statefile_open(&o, "/lb-state", err, sizeof(err)), 0);
	ck_assert_int_ge(o.dirfd, 0);
	ck_assert_str_eq(o.path, "/lb-state");
	ck_assert_str_eq(o.base, "lb-state");
	statefile_close(&o);
	ck_assert_int_eq(o.dirfd, -1);
	statefile_close(&o); /* twice: harmless */

	/* the fixture's */
	ck_assert_int_ge(sf.dirfd, 0);
	ck_assert_str_eq(sf.path, state);
	ck_assert_str_eq(sf.base, "state");

	/* a directory that does not exist: the path is kept, no dirfd;
	 * load and save fail */
	tmp_path(path, sizeof(path), "nodir/state");
	ck_assert_int_eq(statefile_open(&o, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "No such file or directory") != NULL, "%s",
	              err);
	ck_assert_msg(strstr(err, "nodir") != NULL, "%s", err);
	ck_assert_int_eq(o.dirfd, -1);
	ck_assert_str_eq(o.path, path);
	ck_assert_str_eq(o.base, "state");
	ck_assert_int_eq(statefile_load(&o, &l, NULL, NULL, err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(err, "state file: directory not open");
	ck_assert_int_eq(statefile_save(&o, &l, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "state file: directory not open");
	statefile_close(&o);
}
END_TEST

START_TEST(load_missing)
{
	load(0, "");
	ck_assert_uint_eq(w.n, 0);
	ck_assert_uint_eq(back.n, 0);
}
END_TEST

START_TEST(save_load)
{
	char *text, *want;
	struct stat st;

	add(&l, "TO-FILTER-CLUSTER", "filter2", STATEFILE_DRAIN, -1);
	add(&l, "a b", "x\"y", STATEFILE_MAINT, 0);
	umask(022);
	save(0, "");
	text = slurp(state);
	want = format(&l);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, want);
	free(text);
	free(want);
	ck_assert_int_eq(stat(state, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0640);
	ck_assert_int_eq(access(state_tmp, F_OK), -1); /* renamed away */
	load(2, "");
	ck_assert_uint_eq(w.n, 0);
	same_list(&back, &l);

	/* saved again, shorter: the file is replaced */
	l.n = 1;
	save(0, "");
	load(1, "");
	same_list(&back, &l);

	/* an empty list: only the header */
	l.n = 0;
	save(0, "");
	text = slurp(state);
	ck_assert_str_eq(text, HEADER);
	free(text);
	load(0, "");
}
END_TEST

START_TEST(save_load_1000)
{
	char name[64];

	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "server \"%d\"", i);
		add(&l, i % 2 ? "odd" : "even", name,
		    (enum statefile_admin)(i % 4), i % 4 ? -1 : i % 257);
	}
	save(0, "");
	load(1000, "");
	ck_assert_uint_eq(w.n, 0);
	same_list(&back, &l);
}
END_TEST

START_TEST(load_warnings)
{
	static const char text[] =
	    HEADER "server backend=b name=s admin=drain\n"
	           "server backend=b name=t admin=off\n";

	write_file(state, text, strlen(text));
	load(1, "");
	ck_assert_uint_eq(w.n, 1);
	ck_assert_str_eq(w.msg[0],
	                 "5: bad admin 'off' (ready, drain or maint)");
	ck_assert_str_eq(back.v[0].server, "s");
}
END_TEST

START_TEST(load_garbage)
{
	unsigned char bytes[8192];
	unsigned x = 777;

	for (size_t i = 0; i < sizeof(bytes); i++) {
		x = x * 1103515245u + 12345u;
		bytes[i] = (unsigned char)(x >> 16);
	}
	write_file(state, (const char *)bytes, sizeof(bytes));
	load(0, "");
	ck_assert_uint_gt(w.n, 0);
}
END_TEST

START_TEST(load_not_a_file)
{
	char other[512], *text;
	struct stat st;
	int fd;

	/* a directory */
	ck_assert_int_eq(mkdir(state, 0700), 0);
	load(-1, "state: not a regular file");
	ck_assert_int_eq(rmdir(state), 0);

	/* a FIFO: refused, without waiting for a writer */
	ck_assert_int_eq(mkfifo(state, 0600), 0);
	load(-1, "state: not a regular file");
	ck_assert_int_eq(unlink(state), 0);

	/* larger than 16 MiB (sparse) */
	fd = open(state, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 16L * 1024 * 1024 + 1), 0);
	ck_assert_int_eq(close(fd), 0);
	load(-1, "state: larger than 16 MiB");
	/* 16 MiB exactly: read (NULs: one line, one warning) */
	ck_assert_int_eq(truncate(state, 16L * 1024 * 1024), 0);
	load(0, "");
	ck_assert_uint_eq(w.n, 1);
	ck_assert_int_eq(unlink(state), 0);

	/* unreadable: the error names it (not as root: root reads it) */
	if (geteuid() != 0) {
		write_file(state, "", 0);
		ck_assert_int_eq(chmod(state, 0), 0);
		load(-1, "open state: Permission denied");
		ck_assert_int_eq(unlink(state), 0);
	}

	/* a symbolic link is followed */
	tmp_path(other, sizeof(other), "link");
	write_file(other, "server backend=b name=s weight=2\n", 33);
	ck_assert_int_eq(symlink("link", state), 0);
	load(1, "");
	ck_assert_int_eq(back.v[0].weight, 2);
	/* and the save replaces the link, not its target */
	ck_assert_int_eq(statefile_list_add(&l, &back.v[0]), 0);
	l.v[0].weight = 3;
	save(0, "");
	ck_assert_int_eq(lstat(state, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	text = slurp(other);
	ck_assert_str_eq(text, "server backend=b name=s weight=2\n");
	free(text);
	load(1, "");
	ck_assert_int_eq(back.v[0].weight, 3);
}
END_TEST

/* A save that fails leaves the old file whole and no temporary file. */
START_TEST(save_fails)
{
	char err[256] = "", sub[512], *before, *after;

	add(&l, "b", "old", STATEFILE_DRAIN, -1);
	save(0, "");
	before = slurp(state);
	add(&l, "b", "new", STATEFILE_MAINT, -1);

	/* BASE.tmp is a directory: it cannot be opened for writing */
	ck_assert_int_eq(mkdir(state_tmp, 0700), 0);
	save(-1, "open state.tmp: Is a directory");
	after = slurp(state);
	ck_assert_str_eq(after, before);
	free(after);
	ck_assert_int_eq(rmdir(state_tmp), 0);

	/* BASE.tmp is a link: not followed */
	ck_assert_int_eq(symlink("state", state_tmp), 0);
	save(-1, "open state.tmp: ");
	after = slurp(state);
	ck_assert_str_eq(after, before);
	free(after);
	ck_assert_int_eq(unlink(state_tmp), 0);

	/* BASE is a directory with a file in it: the temporary file is
	 * written, the rename fails, the temporary file is removed */
	ck_assert_int_eq(unlink(state), 0);
	ck_assert_int_eq(mkdir(state, 0700), 0);
	tmp_path(sub, sizeof(sub), "state/state");
	write_file(sub, "x", 1);
	save(-1, "rename state.tmp: ");
	ck_assert_int_eq(access(state_tmp, F_OK), -1);
	ck_assert_int_eq(unlink(sub), 0);
	ck_assert_int_eq(rmdir(state), 0);

	/* all well again: the save goes through */
	write_file(state, before, strlen(before));
	save(0, "");
	load(2, "");
	same_list(&back, &l);
	free(before);

	/* the directory removed under the descriptor */
	statefile_close(&sf);
	tmp_path(sub, sizeof(sub), "sub");
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	tmp_path(sub, sizeof(sub), "sub/state");
	ck_assert_int_eq(statefile_open(&sf, sub, err, sizeof(err)), 0);
	tmp_path(sub, sizeof(sub), "sub");
	ck_assert_int_eq(rmdir(sub), 0);
	save(-1, "open state.tmp: No such file or directory");
	/* and loading from it: nothing there */
	load(0, "");
}
END_TEST

static Suite *
statefile_suite(void)
{
	Suite *s = suite_create("statefile");
	TCase *tc;

	tc = tcase_create("read");
	tcase_add_test(tc, list_grows);
	tcase_add_test(tc, parse_example);
	tcase_add_test(tc, parse_values);
	tcase_add_test(tc, parse_warnings);
	tcase_add_test(tc, parse_long_names);
	tcase_add_test(tc, parse_comments_blank);
	tcase_add_test(tc, parse_line_numbers);
	tcase_add_test(tc, parse_duplicates);
	tcase_add_test(tc, parse_many_duplicates);
	tcase_add_test(tc, parse_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_add_test(tc, format_text);
	tcase_add_test(tc, format_skips_empty);
	tcase_add_test(tc, format_buffer_size);
	tcase_add_test(tc, round_trip_awkward);
	tcase_add_test(tc, round_trip_1000);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, file_setup, file_teardown);
	tcase_add_test(tc, open_paths);
	tcase_add_test(tc, load_missing);
	tcase_add_test(tc, save_load);
	tcase_add_test(tc, save_load_1000);
	tcase_add_test(tc, load_warnings);
	tcase_add_test(tc, load_garbage);
	tcase_add_test(tc, load_not_a_file);
	tcase_add_test(tc, save_fails);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(statefile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
