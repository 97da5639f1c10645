/* Unit tests for agent.c: the agent check's reply words (include/agent.h
 * is the contract; load-balancer.conf(5), AGENT CHECK gives the semantics,
 * those of HAProxy's agent-check).  Every word, separators, case, "#reason",
 * line endings, control bytes, limits, unknown words, and the text
 * agent_format prints back. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "agent.h"

/* A literal with its length (vectors may hold a NUL byte). */
#define BYTES(s) s, sizeof(s) - 1

/* Fields not given. */
#define NO -1
#define ADMIN_NONE AGENT_ADMIN_NONE
#define HEALTH_NONE AGENT_HEALTH_NONE

/* --- helpers -------------------------------------------------------------- */

/* agent_parse must take line (len bytes) and give these fields. */
static void
good_n(const char *line, size_t len, int pct, int maxconn,
       enum agent_admin admin, enum agent_health health, const char *reason)
{
	struct agent_reply r;
	char err[128] = "";

	memset(&r, 0x5a, sizeof(r));
	ck_assert_msg(agent_parse(line, len, &r, err, sizeof(err)) == 0,
	              "'%.*s': %s", (int)len, line, err);
	ck_assert_msg(r.pct == pct, "'%.*s': pct %d, not %d", (int)len, line,
	              r.pct, pct);
	ck_assert_msg(r.maxconn == maxconn, "'%.*s': maxconn %d, not %d",
	              (int)len, line, r.maxconn, maxconn);
	ck_assert_msg(r.admin == admin, "'%.*s': admin %d, not %d", (int)len,
	              line, (int)r.admin, (int)admin);
	ck_assert_msg(r.health == health, "'%.*s': health %d, not %d", (int)len,
	              line, (int)r.health, (int)health);
	ck_assert_msg(memchr(r.reason, '\0', sizeof(r.reason)) != NULL,
	              "'%.*s': reason not NUL-terminated", (int)len, line);
	ck_assert_msg(strcmp(r.reason, reason) == 0,
	              "'%.*s': reason '%s', not '%s'", (int)len, line, r.reason,
	              reason);
}

static void
good(const char *line, int pct, int maxconn, enum agent_admin admin,
     enum agent_health health, const char *reason)
{
	good_n(line, strlen(line), pct, maxconn, admin, health, reason);
}

/* Vectors of replies taken. */
struct vec {
	const char *line;
	int pct, maxconn;
	enum agent_admin admin;
	enum agent_health health;
	const char *reason;
};

/* agent_parse must refuse line with the message want, out untouched. */
static void
bad_n(const char *line, size_t len, const char *want)
{
	struct agent_reply r, before;
	char err[128] = "";

	memset(&r, 0x5a, sizeof(r));
	before = r;
	ck_assert_msg(agent_parse(line, len, &r, err, sizeof(err)) == -1,
	              "'%.*s' parsed", (int)len, line);
	ck_assert_msg(strcmp(err, want) == 0, "'%.*s': '%s', not '%s'",
	              (int)len, line, err, want);
	ck_assert_msg(memcmp(&r, &before, sizeof(r)) == 0,
	              "'%.*s': output touched", (int)len, line);
}

static void
bad(const char *line, const char *want)
{
	bad_n(line, strlen(line), want);
}

/* agent_format of the reply of line must be want. */
static void
formats(const char *line, const char *want)
{
	struct agent_reply r;
	char err[128] = "", buf[256];

	ck_assert_msg(agent_parse(line, strlen(line), &r, err, sizeof(err)) ==
	                  0,
	              "'%s': %s", line, err);
	memset(buf, 'x', sizeof(buf));
	agent_format(&r, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, want) == 0, "'%s' formats as '%s', not '%s'",
	              line, buf, want);
}

static void
same_reply(const struct agent_reply *a, const struct agent_reply *b,
           const char *ctx)
{
	ck_assert_msg(a->pct == b->pct && a->maxconn == b->maxconn &&
	                  a->admin == b->admin && a->health == b->health &&
	                  strcmp(a->reason, b->reason) == 0,
	              "%s: replies differ", ctx);
}

/* --- words ---------------------------------------------------------------- */

/* Replies taken, and what they say. */
static const struct vec taken[] = {
    /* every word */
    {"50%", 50, NO, ADMIN_NONE, HEALTH_NONE, ""},
    {"0%", 0, NO, ADMIN_NONE, HEALTH_NONE, ""},
    {"100%", 100, NO, ADMIN_NONE, HEALTH_NONE, ""},
    {"007%", 7, NO, ADMIN_NONE, HEALTH_NONE, ""},
    {"maxconn:10", NO, 10, ADMIN_NONE, HEALTH_NONE, ""},
    {"maxconn:0", NO, 0, ADMIN_NONE, HEALTH_NONE, ""},
    {"maxconn:1000000", NO, 1000000, ADMIN_NONE, HEALTH_NONE, ""},
    {"maxconn:0000001", NO, 1, ADMIN_NONE, HEALTH_NONE, ""},
    {"ready", NO, NO, AGENT_READY, HEALTH_NONE, ""},
    {"drain", NO, NO, AGENT_DRAIN, HEALTH_NONE, ""},
    {"maint", NO, NO, AGENT_MAINT, HEALTH_NONE, ""},
    {"up", NO, NO, ADMIN_NONE, AGENT_UP, ""},
    {"down", NO, NO, ADMIN_NONE, AGENT_DOWN, ""},
    {"stopped", NO, NO, ADMIN_NONE, AGENT_STOPPED, ""},
    {"fail", NO, NO, ADMIN_NONE, AGENT_FAIL, ""},
    {"maxconn:10 ready 75%", 75, 10, AGENT_READY, HEALTH_NONE, ""},
    {"up 100% maxconn:200 drain", 100, 200, AGENT_DRAIN, AGENT_UP, ""},
    /* separators: spaces, tabs, commas, several */
    {"50% drain", 50, NO, AGENT_DRAIN, HEALTH_NONE, ""},
    {"50%\tdrain", 50, NO, AGENT_DRAIN, HEALTH_NONE, ""},
    {"50%,drain", 50, NO, AGENT_DRAIN, HEALTH_NONE, ""},
    {" ,\t50% , ,\tdrain\t, ", 50, NO, AGENT_DRAIN, HEALTH_NONE, ""},
    {"up,maxconn:5,\t75%", 75, 5, ADMIN_NONE, AGENT_UP, ""},
    /* any case */
    {"DRAIN", NO, NO, AGENT_DRAIN, HEALTH_NONE, ""},
    {"Ready", NO, NO, AGENT_READY, HEALTH_NONE, ""},
    {"mAiNt", NO, NO, AGENT_MAINT, HEALTH_NONE, ""},
    {"UP", NO, NO, ADMIN_NONE, AGENT_UP, ""},
    {"Down#Disk Full", NO, NO, ADMIN_NONE, AGENT_DOWN, "Disk Full"},
    {"STOPPED", NO, NO, ADMIN_NONE, AGENT_STOPPED, ""},
    {"Fail", NO, NO, ADMIN_NONE, AGENT_FAIL, ""},
    {"MAXCONN:7", NO, 7, ADMIN_NONE, HEALTH_NONE, ""},
    {"MaxConn:7", NO, 7, ADMIN_NONE, HEALTH_NONE, ""},
    /* several of one kind: the last wins */
    {"drain ready", NO, NO, AGENT_READY, HEALTH_NONE, ""},
    {"ready maint drain", NO, NO, AGENT_DRAIN, HEALTH_NONE, ""},
    {"down up", NO, NO, ADMIN_NONE, AGENT_UP, ""},
    {"up fail stopped", NO, NO, ADMIN_NONE, AGENT_STOPPED, ""},
    {"50% 60%", 60, NO, ADMIN_NONE, HEALTH_NONE, ""},
    {"maxconn:1 maxconn:2", NO, 2, ADMIN_NONE, HEALTH_NONE, ""},
    /* an admin word and a health word are two kinds: both kept */
    {"drain down", NO, NO, AGENT_DRAIN, AGENT_DOWN, ""},
    /* "#reason" */
    {"down#disk full", NO, NO, ADMIN_NONE, AGENT_DOWN, "disk full"},
    {"down #  disk full  ", NO, NO, ADMIN_NONE, AGENT_DOWN, "disk full"},
    {"down#\tdisk\tfull\t", NO, NO, ADMIN_NONE, AGENT_DOWN, "disk full"},
    /* words after "#" are the reason, not words */
    {"stopped#drain, 50%, up", NO, NO, ADMIN_NONE, AGENT_STOPPED,
     "drain, 50%, up"},
    {"fail##x#", NO, NO, ADMIN_NONE, AGENT_FAIL, "#x#"},
    {"down#", NO, NO, ADMIN_NONE, AGENT_DOWN, ""},
    {"down#   ", NO, NO, ADMIN_NONE, AGENT_DOWN, ""},
    {"up#back", NO, NO, ADMIN_NONE, AGENT_UP, "back"},
    /* a reason without a health word is kept */
    {"50% #busy", 50, NO, ADMIN_NONE, HEALTH_NONE, "busy"},
    {"drain#going away", NO, NO, AGENT_DRAIN, HEALTH_NONE, "going away"},
    /* bytes beyond ASCII are shown as '?' */
    {"down#d\xc3\xa9j\xc3\xa0", NO, NO, ADMIN_NONE, AGENT_DOWN, "d?\?j?\?"},
};

START_TEST(replies_taken)
{
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
		good(taken[i].line, taken[i].pct, taken[i].maxconn,
		     taken[i].admin, taken[i].health, taken[i].reason);
}
END_TEST

START_TEST(words_not_separated)
{
	/* no separator: one word, unknown */
	bad("50%drain", "bad reply: '50%drain'");
	bad("drainup", "bad reply: 'drainup'");
	/* other characters are not separators */
	bad("drain;up", "bad reply: 'drain;up'");
}
END_TEST

START_TEST(reason_without_word)
{
	/* no known word before "#": a failure */
	bad("#disk full", "empty reply");
	bad("  #disk full", "empty reply");
	bad("foo#disk full", "bad reply: 'foo'");
}
END_TEST

START_TEST(reason_cut)
{
	char line[AGENT_LINE_MAX + 1], want[AGENT_REASON_MAX];

	/* "down#" + 300 letters: cut to AGENT_REASON_MAX - 1 */
	memcpy(line, "down#", 5);
	for (size_t i = 0; i < 300; i++)
		line[5 + i] = (char)('a' + i % 26);
	line[305] = '\0';
	memcpy(want, line + 5, AGENT_REASON_MAX - 1);
	want[AGENT_REASON_MAX - 1] = '\0';
	good(line, NO, NO, ADMIN_NONE, AGENT_DOWN, want);

	/* a space where the cut falls is trimmed too */
	memset(line, 'r', sizeof(line));
	memcpy(line, "down#", 5);
	line[5 + AGENT_REASON_MAX - 2] = ' ';
	line[5 + 300] = '\0';
	memset(want, 'r', AGENT_REASON_MAX - 2);
	want[AGENT_REASON_MAX - 2] = '\0';
	good(line, NO, NO, ADMIN_NONE, AGENT_DOWN, want);
}
END_TEST

/* --- line endings, control bytes, length ---------------------------------- */

START_TEST(line_endings)
{
	good("drain\n", NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	good("drain\r\n", NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	good("down#disk full\r\n", NO, NO, ADMIN_NONE, AGENT_DOWN, "disk full");
	good("50%\n", 50, NO, ADMIN_NONE, HEALTH_NONE, "");
	/* only one ending, at the end */
	bad("drain\r", "bad reply");
	bad("drain\r\r\n", "bad reply");
	bad("drain\n\n", "bad reply");
	bad("drain\nup", "bad reply");
	bad("drain\n\r", "bad reply");
	bad("\n", "empty reply");
	bad("\r\n", "empty reply");
}
END_TEST

START_TEST(control_bytes)
{
	char line[16];

	for (int c = 0; c < 0x80; c++) {
		if (c >= 0x20 && c != 0x7f)
			continue;
		if (c == '\t')
			continue;
		for (int where = 0; where < 3; where++) {
			size_t n;

			if (where == 0) /* first */
				n = (size_t)snprintf(line, sizeof(line),
				                     "?drain");
			else if (where == 1) /* inside the words */
				n = (size_t)snprintf(line, sizeof(line),
				                     "drain ? up");
			else /* inside the reason */
				n = (size_t)snprintf(line, sizeof(line),
				                     "down#a?b");
			*strchr(line, '?') = (char)c;
			bad_n(line, n, "bad reply");
		}
	}
	/* a NUL inside the length */
	bad_n(BYTES("drain\0"), "bad reply");
	bad_n(BYTES("\0"), "bad reply");
	/* the length, not the NUL, ends the line */
	good_n("drainXXX", 5, NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
}
END_TEST

START_TEST(length_limit)
{
	char *line = malloc(AGENT_LINE_MAX + 3);

	ck_assert_ptr_nonnull(line);
	/* AGENT_LINE_MAX bytes: taken, with or without a line ending */
	memset(line, ' ', AGENT_LINE_MAX);
	memcpy(line + AGENT_LINE_MAX - 5, "drain", 5);
	good_n(line, AGENT_LINE_MAX, NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	memcpy(line + AGENT_LINE_MAX, "\r\n", 2);
	good_n(line, AGENT_LINE_MAX + 2, NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	line[AGENT_LINE_MAX] = '\n';
	good_n(line, AGENT_LINE_MAX + 1, NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	/* one more: too long, whatever it holds */
	memset(line, ' ', AGENT_LINE_MAX + 1);
	memcpy(line + AGENT_LINE_MAX + 1 - 5, "drain", 5);
	bad_n(line, AGENT_LINE_MAX + 1, "reply too long");
	line[AGENT_LINE_MAX + 1] = '\n';
	bad_n(line, AGENT_LINE_MAX + 2, "reply too long");
	line[0] = '\0';
	bad_n(line, AGENT_LINE_MAX + 1, "reply too long");
	free(line);
}
END_TEST

/* --- numbers -------------------------------------------------------------- */

START_TEST(weight_limits)
{
	bad("101%", "weight above 100%");
	bad("999%", "weight above 100%");
	bad("1000%", "weight above 100%");
	bad("99999999999999999999%", "weight above 100%");
	bad("drain 150% up", "weight above 100%");
	bad("0050%", "bad weight: '0050%'");
	bad("%", "bad weight: '%'");
	bad("-5%", "bad weight: '-5%'");
	bad("+5%", "bad weight: '+5%'");
	bad("5.5%", "bad weight: '5.5%'");
	bad("abc%", "bad weight: 'abc%'");
	bad("50%%", "bad weight: '50%%'");
	bad(" 5 % drain", "bad weight: '%'");
	bad("0x10%", "bad weight: '0x10%'");
	/* a bad number fails the line even after good words */
	bad("drain up 1.5%", "bad weight: '1.5%'");
}
END_TEST

START_TEST(maxconn_limits)
{
	bad("maxconn:1000001", "maxconn above 1000000");
	bad("maxconn:99999999999999999999", "maxconn above 1000000");
	bad("maxconn:", "bad maxconn: 'maxconn:'");
	bad("maxconn:-1", "bad maxconn: 'maxconn:-1'");
	bad("maxconn:+1", "bad maxconn: 'maxconn:+1'");
	bad("maxconn:1x", "bad maxconn: 'maxconn:1x'");
	bad("maxconn:00000001", "bad maxconn: 'maxconn:00000001'");
	bad("drain maxconn:ten", "bad maxconn: 'maxconn:ten'");
	/* not "maxconn:": an unknown word */
	good("maxconn drain", NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	good("maxconn=5 drain", NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
}
END_TEST

/* --- unknown words, empty lines ------------------------------------------- */

START_TEST(unknown_words)
{
	char line[256];

	good("foo drain bar", NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	good("weight 50% now", 50, NO, ADMIN_NONE, HEALTH_NONE, "");
	good("readyish up", NO, NO, ADMIN_NONE, AGENT_UP, "");
	good("d\xc3\xa9j\xc3\xa0 drain", NO, NO, AGENT_DRAIN, HEALTH_NONE, "");
	bad("foo", "bad reply: 'foo'");
	bad("foo bar", "bad reply: 'foo'");
	bad(" ,foo,bar", "bad reply: 'foo'");
	bad("HTTP/1.1 200 OK", "bad reply: 'HTTP/1.1'");
	bad("d\xc3\xa9j\xc3\xa0", "bad reply: 'd?\?j?\?'");
	bad("it's", "bad reply: 'it's'");
	/* the quoted word is cut to 32 bytes */
	memset(line, 'x', 100);
	line[100] = '\0';
	bad(line, "bad reply: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'");
}
END_TEST

START_TEST(empty_replies)
{
	bad("", "empty reply");
	bad_n(NULL, 0, "empty reply");
	bad(" ", "empty reply");
	bad(" \t , ,", "empty reply");
	bad("  \r\n", "empty reply");
	bad("#", "empty reply");
}
END_TEST

START_TEST(error_buffer)
{
	struct agent_reply r;
	char err[8];

	/* cut and NUL-terminated */
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(agent_parse(BYTES("foo"), &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "bad rep");
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(agent_parse(BYTES("200%"), &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "weight ");
	/* no buffer at all */
	ck_assert_int_eq(agent_parse(BYTES("foo"), &r, NULL, 0), -1);
	ck_assert_int_eq(agent_parse(BYTES("1000001%"), &r, err, 0), -1);
	ck_assert_int_eq(agent_parse(BYTES("drain"), &r, NULL, 0), 0);
	ck_assert_int_eq(r.admin, AGENT_DRAIN);
}
END_TEST

/* --- agent_format --------------------------------------------------------- */

START_TEST(format_vectors)
{
	formats("50% drain", "50% drain");
	formats("drain 50%", "50% drain");
	formats("down#disk full", "down#disk full");
	formats("DOWN  #  disk full \r\n", "down#disk full");
	formats("maxconn:10 ready", "maxconn:10 ready");
	formats("up drain maxconn:0 0%", "0% maxconn:0 drain up");
	formats("foo,maint,bar", "maint");
	formats("75% #busy", "75% #busy");
	formats("ready,up#all fine", "ready up#all fine");
	formats("fail stopped", "stopped");
	formats("007%", "7%");
	formats("maxconn:0001000", "maxconn:1000");
}
END_TEST

START_TEST(format_nothing)
{
	struct agent_reply r;
	char buf[16];

	memset(&r, 0, sizeof(r));
	r.pct = -1;
	r.maxconn = -1;
	memset(buf, 'x', sizeof(buf));
	agent_format(&r, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	/* len 0: nothing written */
	buf[0] = 'x';
	agent_format(&r, buf, 0);
	ck_assert_int_eq(buf[0], 'x');
}
END_TEST

START_TEST(format_cut)
{
	struct agent_reply r;
	char full[256], buf[256];
	size_t n;

	ck_assert_int_eq(
	    agent_parse(BYTES("50% maxconn:10 drain down#disk"), &r, NULL, 0),
	    0);
	agent_format(&r, full, sizeof(full));
	ck_assert_str_eq(full, "50% maxconn:10 drain down#disk");
	n = strlen(full);
	/* every shorter buffer: the same text cut, NUL-terminated, nothing
	 * written past the buffer */
	for (size_t len = 1; len <= n + 1; len++) {
		memset(buf, 'Z', sizeof(buf));
		agent_format(&r, buf, len);
		ck_assert_msg(strlen(buf) == len - 1, "len %zu: '%s'", len,
		              buf);
		ck_assert_msg(memcmp(buf, full, len - 1) == 0, "len %zu: '%s'",
		              len, buf);
		ck_assert_msg(buf[len] == 'Z', "len %zu: written past", len);
	}
}
END_TEST

/* r printed and read back is r. */
static void
round_trip(const struct agent_reply *r)
{
	struct agent_reply r2;
	char buf[256], err[128] = "";

	agent_format(r, buf, sizeof(buf));
	ck_assert_msg(agent_parse(buf, strlen(buf), &r2, err, sizeof(err)) == 0,
	              "'%s': %s", buf, err);
	same_reply(r, &r2, buf);
}

/* Every combination of fields with at least one word prints to a line
 * that reads back the same. */
START_TEST(format_round_trip)
{
	static const int pcts[] = {-1, 0, 1, 50, 99, 100};
	static const int maxconns[] = {-1, 0, 1, 10, 999999, 1000000};
	static const char *const reasons[] = {"", "disk full", "#x", "a,b c",
	                                      "50% drain up"};
	unsigned count = 0;

	for (unsigned i = 0; i < 6 * 6 * 4 * 5 * 5; i++) {
		struct agent_reply r;
		unsigned k = i;

		memset(&r, 0, sizeof(r));
		r.pct = pcts[k % 6];
		k /= 6;
		r.maxconn = maxconns[k % 6];
		k /= 6;
		r.admin = (enum agent_admin)(k % 4);
		k /= 4;
		r.health = (enum agent_health)(k % 5);
		k /= 5;
		strcpy(r.reason, reasons[k % 5]);
		if (r.pct < 0 && r.maxconn < 0 && r.admin == ADMIN_NONE &&
		    r.health == HEALTH_NONE)
			continue; /* no word: not what a parse gives */
		round_trip(&r);
		count++;
	}
	ck_assert_uint_eq(count, 6 * 6 * 4 * 5 * 5 - 5);
}
END_TEST

START_TEST(format_long_reason)
{
	struct agent_reply r;
	char buf[512];

	memset(&r, 0, sizeof(r));
	r.pct = 100;
	r.maxconn = 1000000;
	r.admin = AGENT_MAINT;
	r.health = AGENT_STOPPED;
	memset(r.reason, 'w', sizeof(r.reason) - 1);
	r.reason[sizeof(r.reason) - 1] = '\0';
	agent_format(&r, buf, sizeof(buf));
	ck_assert_uint_eq(strlen(buf), strlen("100% maxconn:1000000 maint "
	                                      "stopped#") +
	                                   AGENT_REASON_MAX - 1);
	round_trip(&r);
}
END_TEST

static Suite *
agent_suite(void)
{
	Suite *s = suite_create("agent");
	TCase *tc;

	tc = tcase_create("words");
	tcase_add_test(tc, replies_taken);
	tcase_add_test(tc, words_not_separated);
	tcase_add_test(tc, reason_without_word);
	tcase_add_test(tc, reason_cut);
	suite_add_tcase(s, tc);

	tc = tcase_create("line");
	tcase_add_test(tc, line_endings);
	tcase_add_test(tc, control_bytes);
	tcase_add_test(tc, length_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_add_test(tc, weight_limits);
	tcase_add_test(tc, maxconn_limits);
	tcase_add_test(tc, unknown_words);
	tcase_add_test(tc, empty_replies);
	tcase_add_test(tc, error_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, format_vectors);
	tcase_add_test(tc, format_nothing);
	tcase_add_test(tc, format_cut);
	tcase_add_test(tc, format_round_trip);
	tcase_add_test(tc, format_long_reason);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(agent_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
