/* load-balancer.conf(5) and the configuration parser must name the same
 * keys, group by group, both ways: a key the parser accepts that the page
 * does not document fails, and so does a key the page documents that the
 * parser rejects as unknown.
 *
 * The page's convention (stated in a comment at its top as well): the
 * keys of one group are the items of one list, each written
 *     .It Ic KEY
 * (one key per item, nothing else on the line), and that list's .Bl line
 * follows a comment line
 *     .\" keys: GROUP
 * where GROUP is the name cfg_keysets() gives the group ("global",
 * "backends.health_check"...).  A list without that comment (the values
 * of a key, a nested explanation) holds no keys, even when nested in a
 * key list; every item of a key list must be an `.It Ic KEY` line.
 *
 * The parser's side is cfg_keysets() (include/cfg.h): the arrays that
 * cfg.c's unknown-key check uses; the last test proves that by loading a
 * file with each key in its group. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "cfg.h"

#define PAGE "man/load-balancer.conf.5"
#define PAGE_MAX (1024 * 1024) /* bytes read from the page at most */
#define LINE_MAX_LEN 4096      /* one line of the page */
#define GROUPS_MAX 32
#define KEYS_MAX 64
#define NAME_MAX_LEN 64
#define DEPTH_MAX 16 /* nested lists */
#define MSGS_MAX 8192

struct page_group {
	char name[NAME_MAX_LEN];
	int marker_line; /* the line of its '.\" keys:' comment */
	int bl_line;     /* the line of its .Bl */
	size_t nkeys;
	char keys[KEYS_MAX][NAME_MAX_LEN];
	int key_lines[KEYS_MAX];
};

struct page {
	size_t ngroups;
	struct page_group groups[GROUPS_MAX];
	char err[512];
};

/* Differences found by compare(), one per line. */
struct msgs {
	size_t n;
	size_t len;
	char text[MSGS_MAX];
};

static void __attribute__((format(printf, 2, 3)))
msg_add(struct msgs *m, const char *fmt, ...)
{
	va_list ap;
	int r;

	m->n++;
	if (m->len >= sizeof(m->text) - 1)
		return;
	va_start(ap, fmt);
	r = vsnprintf(m->text + m->len, sizeof(m->text) - m->len, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	m->len += (size_t)r;
	if (m->len >= sizeof(m->text) - 1)
		m->len = sizeof(m->text) - 1;
	else
		m->text[m->len++] = '\n';
	m->text[m->len] = '\0';
}

/* --- the page ------------------------------------------------------------ */

static const char *
srcdir(void)
{
	const char *d = getenv("LB_SRCDIR");

	return d != NULL && d[0] != '\0' ? d : TEST_SRCDIR;
}

/* The whole page, NUL-terminated (free it). */
static char *
read_page(void)
{
	char path[4096];
	FILE *fp;
	char *buf;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", srcdir(), PAGE);
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "cannot open %s: %s", path, strerror(errno));
	buf = malloc(PAGE_MAX + 1);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, PAGE_MAX + 1, fp);
	ck_assert_msg(!ferror(fp), "cannot read %s", path);
	ck_assert_msg(n <= PAGE_MAX, "%s is larger than %d bytes", path,
	              PAGE_MAX);
	fclose(fp);
	buf[n] = '\0';
	return buf;
}

static int __attribute__((format(printf, 2, 3)))
page_fail(struct page *pg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pg->err, sizeof(pg->err), fmt, ap);
	va_end(ap);
	return -1;
}

static bool
is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* One line (no newline) of the page at line number ln. */
static int
parse_line(struct page *pg, const char *line, int ln, int *stack, size_t *depth,
           char *pending, int *pending_line)
{
	static const char marker[] = ".\\\" keys: ";

	if (strncmp(line, marker, sizeof(marker) - 1) == 0) {
		const char *g = line + sizeof(marker) - 1;
		size_t n = strlen(g);

		while (n > 0 && g[n - 1] == ' ')
			n--;
		if (pending[0] != '\0')
			return page_fail(pg,
			                 "line %d: marker for '%s' is not "
			                 "followed by a .Bl list",
			                 *pending_line, pending);
		if (n == 0 || n >= NAME_MAX_LEN)
			return page_fail(pg, "line %d: bad group name", ln);
		memcpy(pending, g, n);
		pending[n] = '\0';
		*pending_line = ln;
		return 0;
	}
	if (strncmp(line, ".Bl", 3) == 0 &&
	    (line[3] == ' ' || line[3] == '\0')) {
		int gi = -1;

		if (*depth == DEPTH_MAX)
			return page_fail(pg, "line %d: lists nested too deep",
			                 ln);
		if (pending[0] != '\0') {
			for (size_t i = 0; i < pg->ngroups; i++)
				if (strcmp(pg->groups[i].name, pending) == 0)
					return page_fail(
					    pg,
					    "line %d: group '%s' has a second "
					    "key list (the first at line %d)",
					    ln, pending, pg->groups[i].bl_line);
			if (pg->ngroups == GROUPS_MAX)
				return page_fail(pg, "line %d: too many groups",
				                 ln);
			gi = (int)pg->ngroups++;
			snprintf(pg->groups[gi].name,
			         sizeof(pg->groups[gi].name), "%s", pending);
			pg->groups[gi].marker_line = *pending_line;
			pg->groups[gi].bl_line = ln;
			pending[0] = '\0';
		}
		stack[(*depth)++] = gi;
		return 0;
	}
	if (strncmp(line, ".El", 3) == 0 &&
	    (line[3] == ' ' || line[3] == '\0')) {
		if (*depth == 0)
			return page_fail(pg, "line %d: .El without .Bl", ln);
		(*depth)--;
		return 0;
	}
	if (strncmp(line, ".It", 3) == 0 && *depth > 0 &&
	    stack[*depth - 1] >= 0) {
		struct page_group *grp = &pg->groups[stack[*depth - 1]];
		const char *p = line + 3, *k;
		size_t n;

		if (strncmp(p, " Ic ", 4) != 0)
			return page_fail(pg,
			                 "line %d: an item of the key list of "
			                 "'%s' is not '.It Ic KEY': %s",
			                 ln, grp->name, line);
		k = p + 4;
		for (n = 0; is_key_char(k[n]); n++)
			;
		if (n == 0 || k[n] != '\0' || n >= NAME_MAX_LEN)
			return page_fail(pg,
			                 "line %d: an item of the key list of "
			                 "'%s' is not '.It Ic KEY': %s",
			                 ln, grp->name, line);
		for (size_t i = 0; i < grp->nkeys; i++)
			if (strlen(grp->keys[i]) == n &&
			    strncmp(grp->keys[i], k, n) == 0)
				return page_fail(pg,
				                 "line %d: key '%.*s' listed "
				                 "twice in '%s' (also line %d)",
				                 ln, (int)n, k, grp->name,
				                 grp->key_lines[i]);
		if (grp->nkeys == KEYS_MAX)
			return page_fail(pg, "line %d: too many keys in '%s'",
			                 ln, grp->name);
		memcpy(grp->keys[grp->nkeys], k, n);
		grp->keys[grp->nkeys][n] = '\0';
		grp->key_lines[grp->nkeys] = ln;
		grp->nkeys++;
	}
	return 0;
}

/* The key lists of the page text.  Returns 0, or -1 with pg->err. */
static int
parse_page(const char *text, struct page *pg)
{
	int stack[DEPTH_MAX];
	size_t depth = 0;
	char pending[NAME_MAX_LEN] = "";
	int pending_line = 0, ln = 0;
	char line[LINE_MAX_LEN];

	memset(pg, 0, sizeof(*pg));
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

		ln++;
		if (n >= sizeof(line))
			return page_fail(pg, "line %d: longer than %d bytes",
			                 ln, LINE_MAX_LEN - 1);
		memcpy(line, p, n);
		line[n] = '\0';
		if (parse_line(pg, line, ln, stack, &depth, pending,
		               &pending_line) < 0)
			return -1;
		p += n + (nl != NULL ? 1 : 0);
	}
	if (pending[0] != '\0')
		return page_fail(pg,
		                 "line %d: marker for '%s' is not followed by "
		                 "a .Bl list",
		                 pending_line, pending);
	if (depth != 0)
		return page_fail(pg, "%zu lists not closed with .El at the end",
		                 depth);
	return 0;
}

/* --- the comparison ------------------------------------------------------ */

static const struct page_group *
page_group(const struct page *pg, const char *name)
{
	for (size_t i = 0; i < pg->ngroups; i++)
		if (strcmp(pg->groups[i].name, name) == 0)
			return &pg->groups[i];
	return NULL;
}

static bool
page_has(const struct page_group *g, const char *key)
{
	for (size_t i = 0; i < g->nkeys; i++)
		if (strcmp(g->keys[i], key) == 0)
			return true;
	return false;
}

static const struct cfg_keyset *
parser_group(const char *name)
{
	for (const struct cfg_keyset *ks = cfg_keysets(); ks->group != NULL;
	     ks++)
		if (strcmp(ks->group, name) == 0)
			return ks;
	return NULL;
}

static bool
parser_has(const struct cfg_keyset *ks, const char *key)
{
	for (size_t i = 0; ks->keys[i] != NULL; i++)
		if (strcmp(ks->keys[i], key) == 0)
			return true;
	return false;
}

/* Every difference between the page and the parser into m; *nkeys gets
 * the number of parser keys compared. */
static void
compare(const struct page *pg, struct msgs *m, size_t *nkeys)
{
	*nkeys = 0;
	memset(m, 0, sizeof(*m));
	for (const struct cfg_keyset *ks = cfg_keysets(); ks->group != NULL;
	     ks++) {
		const struct page_group *g = page_group(pg, ks->group);

		if (g == NULL)
			msg_add(m,
			        "group '%s': the parser accepts it but " PAGE
			        " has no key list for it (a list after "
			        "'.\\\" keys: %s')",
			        ks->group, ks->group);
		for (size_t i = 0; ks->keys[i] != NULL; i++) {
			(*nkeys)++;
			if (g != NULL && !page_has(g, ks->keys[i]))
				msg_add(m,
				        "key '%s' in group '%s': the parser "
				        "accepts it but " PAGE
				        " does not document it",
				        ks->keys[i], ks->group);
		}
	}
	for (size_t i = 0; i < pg->ngroups; i++) {
		const struct page_group *g = &pg->groups[i];
		const struct cfg_keyset *ks = parser_group(g->name);

		if (ks == NULL) {
			msg_add(m,
			        "group '%s': " PAGE " documents it (line %d) "
			        "but the parser has no such group",
			        g->name, g->bl_line);
			continue;
		}
		for (size_t k = 0; k < g->nkeys; k++)
			if (!parser_has(ks, g->keys[k]))
				msg_add(
				    m,
				    "key '%s' in group '%s': " PAGE
				    " documents it (line %d) but the parser "
				    "rejects it as unknown",
				    g->keys[k], g->name, g->key_lines[k]);
	}
}

/* text without its line number ln (1-based); free it. */
static char *
without_line(const char *text, int ln)
{
	size_t len = strlen(text);
	char *out = malloc(len + 1);
	const char *p = text;
	char *o = out;

	ck_assert_ptr_nonnull(out);
	for (int i = 1; *p != '\0'; i++) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);

		if (i != ln) {
			memcpy(o, p, n);
			o += n;
		}
		p += n;
	}
	*o = '\0';
	return out;
}

/* text with extra inserted after line number ln; free it. */
static char *
with_line_after(const char *text, int ln, const char *extra)
{
	size_t len = strlen(text), elen = strlen(extra);
	char *out = malloc(len + elen + 2);
	const char *p = text;
	char *o = out;

	ck_assert_ptr_nonnull(out);
	for (int i = 1; *p != '\0'; i++) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);

		memcpy(o, p, n);
		o += n;
		p += n;
		if (i == ln) {
			memcpy(o, extra, elen);
			o += elen;
			*o++ = '\n';
		}
	}
	*o = '\0';
	return out;
}

/* --- tests ---------------------------------------------------------------- */

/* The mutation tests' start: the page read and parsed into *pg, an empty
 * *mut for the mutated copies, an empty *m for the differences. */
static void
open_fixture(char **text, struct page **pg, struct page **mut, struct msgs **m)
{
	*text = read_page();
	*pg = calloc(1, sizeof(**pg));
	*mut = calloc(1, sizeof(**mut));
	*m = calloc(1, sizeof(**m));
	ck_assert_ptr_nonnull(*pg);
	ck_assert_ptr_nonnull(*mut);
	ck_assert_ptr_nonnull(*m);
	ck_assert_msg(parse_page(*text, *pg) == 0, PAGE ": %s", (*pg)->err);
}

static void
close_fixture(char *text, struct page *pg, struct page *mut, struct msgs *m)
{
	free(m);
	free(mut);
	free(pg);
	free(text);
}

START_TEST(page_documents_exactly_the_parsers_keys)
{
	char *text = read_page();
	struct page *pg = calloc(1, sizeof(*pg));
	struct msgs *m = calloc(1, sizeof(*m));
	size_t nkeys = 0, ngroups = 0, npage = 0;

	ck_assert_ptr_nonnull(pg);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(parse_page(text, pg) == 0, PAGE ": %s", pg->err);
	compare(pg, m, &nkeys);
	for (const struct cfg_keyset *ks = cfg_keysets(); ks->group != NULL;
	     ks++)
		ngroups++;
	for (size_t i = 0; i < pg->ngroups; i++)
		npage += pg->groups[i].nkeys;
	printf("check_cfgkeys: parser %zu keys in %zu groups, " PAGE
	       " %zu keys in %zu groups, %zu differences\n",
	       nkeys, ngroups, npage, pg->ngroups, m->n);
	ck_assert_msg(m->n == 0,
	              "%zu differences between " PAGE " and the parser:\n%s",
	              m->n, m->text);
	/* Not an empty comparison. */
	ck_assert_uint_gt(nkeys, 50);
	ck_assert_uint_eq(npage, nkeys);
	free(m);
	free(pg);
	free(text);
}
END_TEST

/* Removing any one key's item from the page is caught, by key and group. */
START_TEST(each_missing_key_is_caught)
{
	char *text;
	struct page *pg, *mut;
	struct msgs *m;
	size_t nkeys, tried = 0;

	open_fixture(&text, &pg, &mut, &m);
	for (size_t gi = 0; gi < pg->ngroups; gi++) {
		const struct page_group *g = &pg->groups[gi];

		for (size_t k = 0; k < g->nkeys; k++) {
			char *t = without_line(text, g->key_lines[k]);
			char want[3 * NAME_MAX_LEN];

			ck_assert_msg(parse_page(t, mut) == 0, "%s", mut->err);
			compare(mut, m, &nkeys);
			snprintf(want, sizeof(want),
			         "key '%s' in group '%s': the parser accepts "
			         "it but " PAGE " does not document it",
			         g->keys[k], g->name);
			ck_assert_msg(m->n == 1 && strstr(m->text, want),
			              "without line %d (%s.%s): want one "
			              "difference \"%s\", got %zu:\n%s",
			              g->key_lines[k], g->name, g->keys[k],
			              want, m->n, m->text);
			free(t);
			tried++;
		}
	}
	ck_assert_uint_gt(tried, 50);
	close_fixture(text, pg, mut, m);
}
END_TEST

/* A key the parser does not know, added to any group's list, is caught. */
START_TEST(an_unknown_key_is_caught_in_every_group)
{
	char *text;
	struct page *pg, *mut;
	struct msgs *m;
	size_t nkeys;

	open_fixture(&text, &pg, &mut, &m);
	ck_assert_uint_gt(pg->ngroups, 0);
	for (size_t gi = 0; gi < pg->ngroups; gi++) {
		const struct page_group *g = &pg->groups[gi];
		char *t =
		    with_line_after(text, g->bl_line, ".It Ic no_such_key");
		char want[3 * NAME_MAX_LEN];

		ck_assert_msg(parse_page(t, mut) == 0, "%s", mut->err);
		compare(mut, m, &nkeys);
		snprintf(want, sizeof(want),
		         "key 'no_such_key' in group '%s': " PAGE
		         " documents it (line %d) but the parser rejects it",
		         g->name, g->bl_line + 1);
		ck_assert_msg(m->n == 1 && strstr(m->text, want),
		              "want one difference \"%s\", got %zu:\n%s", want,
		              m->n, m->text);
		free(t);
	}
	close_fixture(text, pg, mut, m);
}
END_TEST

/* A group's marker removed: the parser's group is reported missing. */
START_TEST(a_missing_group_is_caught)
{
	char *text;
	struct page *pg, *mut;
	struct msgs *m;
	size_t nkeys;

	open_fixture(&text, &pg, &mut, &m);
	for (size_t gi = 0; gi < pg->ngroups; gi++) {
		char *t = without_line(text, pg->groups[gi].marker_line);
		char want[3 * NAME_MAX_LEN];

		ck_assert_msg(parse_page(t, mut) == 0, "%s", mut->err);
		compare(mut, m, &nkeys);
		snprintf(want, sizeof(want),
		         "group '%s': the parser accepts it but " PAGE
		         " has no key list",
		         pg->groups[gi].name);
		ck_assert_msg(m->n == 1 && strstr(m->text, want),
		              "want one difference \"%s\", got %zu:\n%s", want,
		              m->n, m->text);
		free(t);
	}
	close_fixture(text, pg, mut, m);
}
END_TEST

/* The convention is enforced: what breaks it is an error, not ignored. */
START_TEST(malformed_key_lists_are_errors)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
	    {".\\\" keys: global\n.Pp\n", "not followed by a .Bl"},
	    {".\\\" keys: global\n.Bl -tag\n.It Cm maxconn\n.El\n",
	     "is not '.It Ic KEY'"},
	    {".\\\" keys: global\n.Bl -tag\n.It Ic maxconn Ns = Ns Ar N\n.El\n",
	     "is not '.It Ic KEY'"},
	    {".\\\" keys: global\n.Bl -tag\n.It Ic a\n.It Ic a\n.El\n",
	     "listed twice"},
	    {".\\\" keys: g\n.Bl -tag\n.El\n.\\\" keys: g\n.Bl -tag\n.El\n",
	     "second key list"},
	    {".\\\" keys: global\n.Bl -tag\n.It Ic a\n", "not closed"},
	    {".El\n", ".El without .Bl"},
	    {".\\\" keys: global\n", "not followed by a .Bl"},
	};
	struct page *pg = calloc(1, sizeof(*pg));

	ck_assert_ptr_nonnull(pg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(parse_page(cases[i].text, pg) < 0,
		              "case %zu parsed", i);
		ck_assert_msg(strstr(pg->err, cases[i].err) != NULL,
		              "case %zu: '%s' lacks '%s'", i, pg->err,
		              cases[i].err);
	}
	/* Items of a nested list without a marker are no keys; the key
	 * list goes on after it. */
	ck_assert_int_eq(parse_page(".\\\" keys: g\n.Bl -tag\n.It Ic a\n"
	                            ".Bl -tag\n.It Cm v1\n.It Ic v2\n.El\n"
	                            ".It Ic b\n.El\n.Bl -tag\n.It Ic c\n.El\n",
	                            pg),
	                 0);
	ck_assert_uint_eq(pg->ngroups, 1);
	ck_assert_uint_eq(pg->groups[0].nkeys, 2);
	ck_assert_str_eq(pg->groups[0].keys[0], "a");
	ck_assert_str_eq(pg->groups[0].keys[1], "b");
	free(pg);
}
END_TEST

/* A file holding key K in group G, as the parser reads that group: the
 * text before K, then " = 0; ", then the text after. */
static const struct {
	const char *group, *before, *after;
} templates[] = {
    {"top level", "", ""},
    {"global", "global = { ", "};"},
    {"global.log", "global = { log = { ", "}; };"},
    {"frontends", "frontends = ( { ", "} );"},
    {"frontends.client_limits",
     "frontends = ( { name = \"f\"; client_limits = { ", "}; } );"},
    {"backends", "backends = ( { ", "} );"},
    {"backends.agent", "backends = ( { name = \"b\"; agent = { ", "}; } );"},
    {"backends.health_check", "backends = ( { name = \"b\"; health_check = { ",
     "}; } );"},
    {"backends.servers", "backends = ( { name = \"b\"; servers = ( { ",
     "} ); } );"},
};

/* Does loading text report key as unknown? */
static bool
unknown(const char *text, const char *key)
{
	struct cfg_diag d;
	struct cfg *cfg;
	char want[NAME_MAX_LEN + 32];
	bool found = false;

	snprintf(want, sizeof(want), "unknown key '%s'", key);
	cfg_diag_init(&d);
	cfg = cfg_load_string(text, "keys.conf", &d);
	for (size_t i = 0; i < d.n; i++)
		if (strstr(d.msgs[i], want) != NULL)
			found = true;
	cfg_free(cfg);
	cfg_diag_free(&d);
	return found;
}

/* cfg_keysets() is what the parser accepts: every key of a group is taken
 * in that group, and a key of no group is refused there. */
START_TEST(keysets_are_the_parsers)
{
	size_t n = 0;

	for (const struct cfg_keyset *ks = cfg_keysets(); ks->group != NULL;
	     ks++) {
		int t = -1;
		char text[512];

		for (size_t k = 0; k < sizeof(templates) / sizeof(templates[0]);
		     k++)
			if (strcmp(templates[k].group, ks->group) == 0)
				t = (int)k;
		ck_assert_msg(t >= 0,
		              "group '%s' has no template in this test: add "
		              "one",
		              ks->group);
		for (size_t i = 0; ks->keys[i] != NULL; i++, n++) {
			snprintf(text, sizeof(text), "%s%s = 0; %s\n",
			         templates[t].before, ks->keys[i],
			         templates[t].after);
			ck_assert_msg(
			    !unknown(text, ks->keys[i]),
			    "group '%s': key '%s' is in cfg_keysets() "
			    "but the parser refuses it:\n%s",
			    ks->group, ks->keys[i], text);
		}
		snprintf(text, sizeof(text), "%sno_such_key = 0; %s\n",
		         templates[t].before, templates[t].after);
		ck_assert_msg(unknown(text, "no_such_key"),
		              "group '%s': an unknown key is not refused:\n%s",
		              ks->group, text);
	}
	ck_assert_uint_gt(n, 50);
}
END_TEST

static Suite *
cfgkeys_suite(void)
{
	Suite *s = suite_create("cfgkeys");
	TCase *tc = tcase_create("keys");

	tcase_add_test(tc, page_documents_exactly_the_parsers_keys);
	tcase_add_test(tc, each_missing_key_is_caught);
	tcase_add_test(tc, an_unknown_key_is_caught_in_every_group);
	tcase_add_test(tc, a_missing_group_is_caught);
	tcase_add_test(tc, malformed_key_lists_are_errors);
	tcase_add_test(tc, keysets_are_the_parsers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cfgkeys_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
