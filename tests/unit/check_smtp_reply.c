/* Unit tests for smtp_reply.c: the incremental SMTP reply parser
 * (load-balancer.conf(5), HEALTH CHECKS).
 * Every vector is fed whole, split at every byte position, byte by byte and
 * in chunks of various sizes: the result must not depend on the split. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <check.h>

#include "smtp_reply.h"

/* A literal with its length (vectors may hold a NUL byte). */
#define BYTES(s) s, sizeof(s) - 1

struct vec {
	const char *in;
	size_t len;
	enum smtp_parse want;
	int code;         /* when DONE */
	const char *text; /* when DONE */
	unsigned nlines;  /* when DONE */
	bool starttls;    /* when DONE */
	size_t used;      /* when DONE; 0 = the whole input */
};

#define DONE(s, code, text, nlines, tls)                                       \
	{                                                                      \
		BYTES(s), SMTP_DONE, code, text, nlines, tls, 0                \
	}
#define DONE_AT(s, code, text, nlines, tls, used)                              \
	{                                                                      \
		BYTES(s), SMTP_DONE, code, text, nlines, tls, used             \
	}
#define BAD(s)                                                                 \
	{                                                                      \
		BYTES(s), SMTP_ERR_BAD, 0, NULL, 0, false, 0                   \
	}

static const struct vec vecs[] = {
    DONE("220 mx.example.com ESMTP\r\n", 220, "mx.example.com ESMTP", 1, false),
    /* postscreen's multi-line banner */
    DONE("220-mx.example.com ESMTP Postfix\r\n"
         "220-\r\n"
         "220-Please wait while we check you\r\n"
         "220 mx.example.com ESMTP Postfix\r\n",
         220, "mx.example.com ESMTP Postfix", 4, false),
    /* EHLO reply with many keywords */
    DONE("250-mx.example.com\r\n"
         "250-PIPELINING\r\n"
         "250-SIZE 10240000\r\n"
         "250-VRFY\r\n"
         "250-ETRN\r\n"
         "250-STARTTLS\r\n"
         "250-ENHANCEDSTATUSCODES\r\n"
         "250-8BITMIME\r\n"
         "250-DSN\r\n"
         "250-SMTPUTF8\r\n"
         "250 CHUNKING\r\n",
         250, "CHUNKING", 11, true),
    DONE("250-mx.example.com\r\n"
         "250-PIPELINING\r\n"
         "250-SIZE 10240000\r\n"
         "250-VRFY\r\n"
         "250-ETRN\r\n"
         "250-ENHANCEDSTATUSCODES\r\n"
         "250-8BITMIME\r\n"
         "250-DSN\r\n"
         "250-SMTPUTF8\r\n"
         "250 CHUNKING\r\n",
         250, "CHUNKING", 10, false),
    DONE("250-mx.example.com\r\n250 STARTTLS\r\n", 250, "STARTTLS", 2, true),
    DONE("250 STARTTLS\r\n", 250, "STARTTLS", 1, true),
    DONE("250-mx\r\n250-starttls\r\n250 HELP\r\n", 250, "HELP", 3, true),
    DONE("250-mx\r\n250-StartTLS\r\n250 HELP\r\n", 250, "HELP", 3, true),
    DONE("250-mx\r\n250-STARTTLS extra\r\n250 HELP\r\n", 250, "HELP", 3, true),
    DONE("250-mx\r\n250-STARTTLSX\r\n250-XSTARTTLS\r\n"
         "250-8BITMIME STARTTLS\r\n250-STARTTL\r\n250 HELP\r\n",
         250, "HELP", 6, false),
    /* code followed directly by CRLF: empty text */
    DONE("250\r\n", 250, "", 1, false),
    DONE("250 \r\n", 250, "", 1, false),
    DONE("250-\r\n250 ok\r\n", 250, "ok", 2, false),
    DONE("250-first\r\n250\r\n", 250, "", 2, false),
    DONE("221 2.0.0 Bye\r\n", 221, "2.0.0 Bye", 1, false),
    DONE("421-4.7.0 try again later\r\n421 4.7.0 closing channel\r\n", 421,
         "4.7.0 closing channel", 2, false),
    DONE("100 low\r\n", 100, "low", 1, false),
    DONE("599 high\r\n", 599, "high", 1, false),
    DONE("554 5.7.1 <x>: Relay access denied\r\n", 554,
         "5.7.1 <x>: Relay access denied", 1, false),
    /* TAB is the one control character allowed in a line */
    DONE("250 a\tb\r\n", 250, "a\tb", 1, false),
    /* trailing bytes after the reply are not consumed */
    DONE_AT("250 ok\r\nXYZ", 250, "ok", 1, false, 8),
    DONE_AT("250-a\r\n250 b\r\n250 c\r\n", 250, "b", 2, false, 14),
    DONE_AT("220 hi\r\n\n\0junk\x01", 220, "hi", 1, false, 8),
    DONE_AT("220-a\r\n220 b\r\nQUIT\r\n", 220, "b", 2, false, 14),
    /* a line without CRLF */
    BAD("250 ok\n"),
    BAD("\n"),
    BAD("250-a\r\n250 b\n"),
    BAD("250-a\n250 b\r\n"),
    /* non-numeric codes */
    BAD("25O ok\r\n"),
    BAD("2x0 ok\r\n"),
    BAD("abc def\r\n"),
    BAD(" 250 ok\r\n"),
    BAD("-250 ok\r\n"),
    /* codes out of range */
    BAD("000 x\r\n"),
    BAD("099 x\r\n"),
    BAD("600 x\r\n"),
    BAD("999 x\r\n"),
    /* bad separator after the code, short lines */
    BAD("2500 x\r\n"),
    BAD("250x\r\n"),
    BAD("250_x\r\n"),
    BAD("25\r\n"),
    BAD("2\r\n"),
    BAD("\r\n"),
    BAD("250-ok\r\n\r\n"),
    /* continuation with another code */
    BAD("250-a\r\n251 b\r\n"),
    BAD("220-a\r\n250 b\r\n"),
    BAD("220-a\r\n220-b\r\n221-c\r\n220 d\r\n"),
    /* NUL and control characters */
    BAD("250 a\0b\r\n"),
    BAD("250 a\x01"
        "b\r\n"),
    BAD("250 a\x1b[0m\r\n"),
    BAD("250 a\rb\r\n"),
    BAD("250-a\x07\r\n250 b\r\n"),
    BAD("2\x00"
        "0 x\r\n"),
};

static const char *
res_name(enum smtp_parse p)
{
	switch (p) {
	case SMTP_NEED_MORE:
		return "NEED_MORE";
	case SMTP_DONE:
		return "DONE";
	case SMTP_ERR_LONG:
		return "ERR_LONG";
	case SMTP_ERR_BAD:
		return "ERR_BAD";
	}
	return "?";
}

/* Printable rendering of a vector for failure messages. */
static const char *
show(const char *in, size_t len)
{
	static char out[512];
	size_t o = 0;

	for (size_t i = 0; i < len && o + 8 < sizeof(out); i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\r') {
			out[o++] = '\\';
			out[o++] = 'r';
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20 || c >= 0x7f || c == '\\') {
			static const char hex[] = "0123456789abcdef";

			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	if (len > 0 && o + 8 >= sizeof(out)) {
		out[o++] = '.';
		out[o++] = '.';
		out[o++] = '.';
	}
	out[o] = '\0';
	return out;
}

/* Feed in[0..len) in chunks ending at the cut positions (ascending, inside
 * (0, len)), stopping at the first result other than NEED_MORE.  *consumed
 * is the offset right after the last byte consumed. */
static enum smtp_parse
feed_cuts(struct smtp_reply *r, const char *in, size_t len, const size_t *cuts,
          size_t ncuts, size_t *consumed, const char *how)
{
	size_t start = 0;

	smtp_reply_init(r);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t used = (size_t)-1;
		enum smtp_parse res;

		res = smtp_reply_feed(r, in + start, end - start, &used);
		if (res != SMTP_NEED_MORE) {
			ck_assert_msg(used <= end - start || res != SMTP_DONE,
			              "\"%s\" (%s): DONE used %zu of %zu bytes",
			              show(in, len), how, used, end - start);
			*consumed = start + used;
			return res;
		}
		ck_assert_msg(used == end - start,
		              "\"%s\" (%s): NEED_MORE consumed %zu of %zu "
		              "bytes",
		              show(in, len), how, used, end - start);
		start = end;
	}
	*consumed = len;
	return SMTP_NEED_MORE;
}

/* Feed in chunks of size chunk. */
static enum smtp_parse
feed_chunked(struct smtp_reply *r, const char *in, size_t len, size_t chunk,
             size_t *consumed, const char *how)
{
	size_t ncuts = len > 0 ? (len - 1) / chunk : 0;
	size_t *cuts = calloc(ncuts + 1, sizeof(*cuts));
	enum smtp_parse res;

	ck_assert_ptr_nonnull(cuts);
	for (size_t k = 0; k < ncuts; k++)
		cuts[k] = (k + 1) * chunk;
	res = feed_cuts(r, in, len, cuts, ncuts, consumed, how);
	free(cuts);
	return res;
}

static void
check_vec(const struct vec *v, const struct smtp_reply *r, enum smtp_parse res,
          size_t consumed, const char *how)
{
	const char *in = show(v->in, v->len);

	ck_assert_msg(res == v->want, "\"%s\" (%s): got %s, want %s", in, how,
	              res_name(res), res_name(v->want));
	if (v->want != SMTP_DONE) {
		ck_assert_msg(r->error != NULL && r->error[0] != '\0',
		              "\"%s\" (%s): %s without an error detail", in,
		              how, res_name(res));
		return;
	}
	ck_assert_msg(r->code == v->code, "\"%s\" (%s): code %d, want %d", in,
	              how, r->code, v->code);
	ck_assert_msg(strcmp(r->text, v->text) == 0,
	              "\"%s\" (%s): text \"%s\", want \"%s\"", in, how, r->text,
	              v->text);
	ck_assert_msg(r->nlines == v->nlines, "\"%s\" (%s): nlines %u, want %u",
	              in, how, r->nlines, v->nlines);
	ck_assert_msg(r->starttls == v->starttls,
	              "\"%s\" (%s): starttls %d, want %d", in, how,
	              (int)r->starttls, (int)v->starttls);
	ck_assert_msg(consumed == (v->used ? v->used : v->len),
	              "\"%s\" (%s): used %zu bytes, want %zu", in, how,
	              consumed, v->used ? v->used : v->len);
}

static const size_t nvecs = sizeof(vecs) / sizeof(vecs[0]);

START_TEST(vectors_whole)
{
	for (size_t i = 0; i < nvecs; i++) {
		struct smtp_reply r;
		size_t consumed = 0;
		enum smtp_parse res;

		res = feed_cuts(&r, vecs[i].in, vecs[i].len, NULL, 0, &consumed,
		                "whole");
		check_vec(&vecs[i], &r, res, consumed, "whole");
	}
}
END_TEST

START_TEST(vectors_split_everywhere)
{
	for (size_t i = 0; i < nvecs; i++) {
		for (size_t cut = 1; cut < vecs[i].len; cut++) {
			struct smtp_reply r;
			size_t consumed = 0;
			enum smtp_parse res;
			char how[64];

			snprintf(how, sizeof(how), "split at %zu", cut);
			res = feed_cuts(&r, vecs[i].in, vecs[i].len, &cut, 1,
			                &consumed, how);
			check_vec(&vecs[i], &r, res, consumed, how);
		}
	}
}
END_TEST

START_TEST(vectors_split_twice)
{
	for (size_t i = 0; i < nvecs; i++) {
		if (vecs[i].len > 120)
			continue;
		for (size_t a = 1; a < vecs[i].len; a++) {
			for (size_t b = a + 1; b < vecs[i].len; b++) {
				size_t cuts[2] = {a, b};
				struct smtp_reply r;
				size_t consumed = 0;
				enum smtp_parse res;
				char how[64];

				snprintf(how, sizeof(how), "split at %zu,%zu",
				         a, b);
				res = feed_cuts(&r, vecs[i].in, vecs[i].len,
				                cuts, 2, &consumed, how);
				check_vec(&vecs[i], &r, res, consumed, how);
			}
		}
	}
}
END_TEST

START_TEST(vectors_bytewise_and_chunks)
{
	static const size_t chunks[] = {1, 2, 3, 5, 7, 13, 64};

	for (size_t i = 0; i < nvecs; i++) {
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]);
		     c++) {
			struct smtp_reply r;
			size_t consumed = 0;
			enum smtp_parse res;
			char how[64];

			snprintf(how, sizeof(how), "chunks of %zu", chunks[c]);
			res = feed_chunked(&r, vecs[i].in, vecs[i].len,
			                   chunks[c], &consumed, how);
			check_vec(&vecs[i], &r, res, consumed, how);
		}
	}
}
END_TEST

/* Every proper prefix of a complete reply needs more. */
START_TEST(prefixes_need_more)
{
	for (size_t i = 0; i < nvecs; i++) {
		size_t end;

		if (vecs[i].want != SMTP_DONE)
			continue;
		end = vecs[i].used ? vecs[i].used : vecs[i].len;
		for (size_t n = 0; n < end; n++) {
			struct smtp_reply r;
			size_t used = (size_t)-1;
			enum smtp_parse res;

			smtp_reply_init(&r);
			res = smtp_reply_feed(&r, vecs[i].in, n, &used);
			ck_assert_msg(res == SMTP_NEED_MORE,
			              "\"%s\": first %zu bytes gave %s, want "
			              "NEED_MORE",
			              show(vecs[i].in, vecs[i].len), n,
			              res_name(res));
			ck_assert_msg(used == n,
			              "\"%s\": first %zu bytes: used %zu",
			              show(vecs[i].in, vecs[i].len), n, used);
		}
	}
}
END_TEST

START_TEST(empty_feed_needs_more)
{
	struct smtp_reply r;
	size_t used = 99;

	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, "", 0, &used), SMTP_NEED_MORE);
	ck_assert_uint_eq(used, 0);
	ck_assert_int_eq(smtp_reply_feed(&r, BYTES("250 ok\r\n"), &used),
	                 SMTP_DONE);
	ck_assert_uint_eq(used, 8);
	ck_assert_int_eq(r.code, 250);
}
END_TEST

/* Replies that arrive in one chunk are parsed one after the other, with
 * smtp_reply_init() in between. */
START_TEST(reinit_parses_next_reply)
{
	static const char in[] = "220-banner\r\n220 mx ESMTP\r\n"
	                         "250-mx\r\n250 STARTTLS\r\n"
	                         "221 Bye\r\n";
	static const int codes[] = {220, 250, 221};
	static const unsigned lines[] = {2, 2, 1};
	static const bool tls[] = {false, true, false};
	size_t off = 0, len = sizeof(in) - 1;
	struct smtp_reply r;

	for (int k = 0; k < 3; k++) {
		size_t used = 0;

		smtp_reply_init(&r);
		ck_assert_int_eq(
		    smtp_reply_feed(&r, in + off, len - off, &used), SMTP_DONE);
		ck_assert_int_eq(r.code, codes[k]);
		ck_assert_uint_eq(r.nlines, lines[k]);
		ck_assert_int_eq(r.starttls, tls[k]);
		off += used;
	}
	ck_assert_uint_eq(off, len);
}
END_TEST

START_TEST(reinit_after_error)
{
	struct smtp_reply r;
	size_t used;

	smtp_reply_init(&r);
	ck_assert_int_eq(
	    smtp_reply_feed(&r, BYTES("250-a\r\n251 b\r\n"), &used),
	    SMTP_ERR_BAD);
	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, BYTES("251 b\r\n"), &used),
	                 SMTP_DONE);
	ck_assert_int_eq(r.code, 251);
	ck_assert_uint_eq(r.nlines, 1);
	ck_assert_str_eq(r.text, "b");
	ck_assert(!r.starttls);

	/* a STARTTLS seen before an error does not leak into the next one */
	smtp_reply_init(&r);
	ck_assert_int_eq(
	    smtp_reply_feed(&r, BYTES("250-STARTTLS\r\n251 x\r\n"), &used),
	    SMTP_ERR_BAD);
	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, BYTES("250 x\r\n"), &used),
	                 SMTP_DONE);
	ck_assert(!r.starttls);
}
END_TEST

START_TEST(bare_lf_detail)
{
	struct smtp_reply r;
	size_t used;

	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, BYTES("220 hi\n"), &used),
	                 SMTP_ERR_BAD);
	ck_assert_ptr_nonnull(r.error);
	ck_assert_msg(strstr(r.error, "CRLF") != NULL,
	              "bare LF: error \"%s\" does not mention CRLF", r.error);
}
END_TEST

/* The last line's text is truncated to fit r->text. */
START_TEST(text_truncated)
{
	char in[2000];
	size_t n = 0;
	struct smtp_reply r;
	size_t consumed;

	memcpy(in, "250-first\r\n250 ", 15);
	n = 15;
	for (size_t i = 0; i < 1500; i++)
		in[n++] = (char)('a' + i % 26);
	in[n++] = '\r';
	in[n++] = '\n';

	for (size_t chunk = 1; chunk <= 2000; chunk *= 7) {
		ck_assert_int_eq(
		    feed_chunked(&r, in, n, chunk, &consumed, "truncation"),
		    SMTP_DONE);
		ck_assert_uint_eq(consumed, n);
		ck_assert_int_eq(r.code, 250);
		ck_assert_uint_eq(r.nlines, 2);
		ck_assert_uint_eq(strlen(r.text), sizeof(r.text) - 1);
		ck_assert(memcmp(r.text, in + 15, sizeof(r.text) - 1) == 0);
	}
}
END_TEST

/* "250 " + fill + CRLF, total bytes in all. */
static size_t
one_line(char *buf, size_t total)
{
	memcpy(buf, "250 ", 4);
	memset(buf + 4, 'x', total - 6);
	buf[total - 2] = '\r';
	buf[total - 1] = '\n';
	return total;
}

START_TEST(max_size_exact_is_accepted)
{
	static char in[SMTP_REPLY_MAX + 16];
	size_t n = one_line(in, SMTP_REPLY_MAX);
	static const size_t chunks[] = {1, 100, 4095, 4096, 9999};
	struct smtp_reply r;
	size_t consumed;

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		ck_assert_msg(feed_chunked(&r, in, n, chunks[c], &consumed,
		                           "max") == SMTP_DONE,
		              "%d-byte reply rejected (chunks of %zu)",
		              SMTP_REPLY_MAX, chunks[c]);
		ck_assert_uint_eq(consumed, n);
		ck_assert_int_eq(r.code, 250);
	}
}
END_TEST

START_TEST(max_size_plus_one_is_too_long)
{
	static char in[SMTP_REPLY_MAX + 16];
	size_t n = one_line(in, SMTP_REPLY_MAX + 1);
	static const size_t chunks[] = {1, 100, 4095, 4096, 9999};
	struct smtp_reply r;
	size_t consumed;

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		enum smtp_parse res =
		    feed_chunked(&r, in, n, chunks[c], &consumed, "max+1");

		ck_assert_msg(res == SMTP_ERR_LONG,
		              "%d-byte reply: %s, want ERR_LONG (chunks of "
		              "%zu)",
		              SMTP_REPLY_MAX + 1, res_name(res), chunks[c]);
		ck_assert(r.error != NULL && r.error[0] != '\0');
	}
}
END_TEST

/* The limit counts the whole reply, CRLFs included, not one line. */
static size_t
many_lines(char *buf, size_t total)
{
	size_t n = 0;

	/* "250-xxxxxxxx\r\n" = 14 bytes */
	while (total - n > 14 + 14) {
		memcpy(buf + n, "250-xxxxxxxx\r\n", 14);
		n += 14;
	}
	return n + one_line(buf + n, total - n);
}

START_TEST(max_size_multiline)
{
	static char in[SMTP_REPLY_MAX + 16];
	struct smtp_reply r;
	size_t consumed, n;

	n = many_lines(in, SMTP_REPLY_MAX);
	ck_assert_uint_eq(n, SMTP_REPLY_MAX);
	ck_assert_int_eq(feed_chunked(&r, in, n, 1, &consumed, "multi"),
	                 SMTP_DONE);
	ck_assert_uint_eq(consumed, n);
	ck_assert_uint_gt(r.nlines, 250);
	ck_assert_int_eq(feed_chunked(&r, in, n, n, &consumed, "multi"),
	                 SMTP_DONE);

	n = many_lines(in, SMTP_REPLY_MAX + 1);
	ck_assert_uint_eq(n, SMTP_REPLY_MAX + 1);
	ck_assert_int_eq(feed_chunked(&r, in, n, 1, &consumed, "multi"),
	                 SMTP_ERR_LONG);
	ck_assert_int_eq(feed_chunked(&r, in, n, n, &consumed, "multi"),
	                 SMTP_ERR_LONG);
	ck_assert_int_eq(feed_chunked(&r, in, n, 1000, &consumed, "multi"),
	                 SMTP_ERR_LONG);
}
END_TEST

START_TEST(many_short_lines)
{
	static char in[4096];
	struct smtp_reply r;
	size_t n = 0, consumed;

	for (int i = 0; i < 400; i++) {
		memcpy(in + n, "250-a\r\n", 7);
		n += 7;
	}
	memcpy(in + n, "250 end\r\n", 9);
	n += 9;
	ck_assert_int_eq(feed_chunked(&r, in, n, 3, &consumed, "many"),
	                 SMTP_DONE);
	ck_assert_uint_eq(r.nlines, 401);
	ck_assert_str_eq(r.text, "end");
	ck_assert_uint_eq(consumed, n);
}
END_TEST

#define HUGE_LEN (1024 * 1024)

/* A 1 MB line without CRLF fails as soon as the limit is passed, whatever
 * the chunks: at the latest with byte SMTP_REPLY_MAX + 1. */
static void
check_fails_fast(const char *in, size_t len, size_t valid_prefix)
{
	struct smtp_reply r;
	size_t used, off;
	enum smtp_parse res = SMTP_NEED_MORE;

	/* one call with the whole megabyte */
	smtp_reply_init(&r);
	res = smtp_reply_feed(&r, in, len, &used);
	ck_assert_msg(res == SMTP_ERR_LONG, "1 MB in one call: %s",
	              res_name(res));

	/* byte by byte */
	smtp_reply_init(&r);
	for (off = 0; off < len; off++) {
		res = smtp_reply_feed(&r, in + off, 1, &used);
		if (res != SMTP_NEED_MORE)
			break;
	}
	ck_assert_msg(res == SMTP_ERR_LONG, "byte by byte: %s after %zu bytes",
	              res_name(res), off + 1);
	ck_assert_msg(off + 1 <= SMTP_REPLY_MAX + 1,
	              "byte by byte: ERR_LONG only after %zu bytes", off + 1);
	ck_assert_msg(off + 1 > valid_prefix,
	              "byte by byte: ERR_LONG after %zu bytes, though a valid "
	              "reply could still complete",
	              off + 1);

	/* 64 KiB chunks: the first chunk already fails */
	smtp_reply_init(&r);
	res = smtp_reply_feed(&r, in, 65536, &used);
	ck_assert_msg(res == SMTP_ERR_LONG, "first 64 KiB chunk: %s",
	              res_name(res));

	/* 1000-byte chunks: fails with the fifth */
	smtp_reply_init(&r);
	for (off = 0; off < len; off += 1000) {
		res = smtp_reply_feed(&r, in + off, 1000, &used);
		if (res != SMTP_NEED_MORE)
			break;
	}
	ck_assert_msg(res == SMTP_ERR_LONG && off == 4000,
	              "1000-byte chunks: %s at offset %zu, want ERR_LONG at "
	              "4000",
	              res_name(res), off);
}

START_TEST(huge_line_fails_fast)
{
	char *in = malloc(HUGE_LEN);

	ck_assert_ptr_nonnull(in);
	memcpy(in, "250 ", 4);
	memset(in + 4, 'a', HUGE_LEN - 4);
	/* "250 " + 4090 bytes + CRLF would still be a valid reply */
	check_fails_fast(in, HUGE_LEN, SMTP_REPLY_MAX - 2);
	free(in);
}
END_TEST

START_TEST(huge_multiline_fails_fast)
{
	char *in = malloc(HUGE_LEN);

	ck_assert_ptr_nonnull(in);
	for (size_t i = 0; i + 14 <= HUGE_LEN; i += 14)
		memcpy(in + i, "250-xxxxxxxx\r\n", 14);
	/* the prefix up to the last complete line that still fits */
	check_fails_fast(in, HUGE_LEN - HUGE_LEN % 14,
	                 (SMTP_REPLY_MAX / 14) * 14 - 14);
	free(in);
}
END_TEST

static Suite *
smtp_reply_suite(void)
{
	Suite *s = suite_create("smtp_reply");
	TCase *tc;

	tc = tcase_create("vectors");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, vectors_whole);
	tcase_add_test(tc, vectors_split_everywhere);
	tcase_add_test(tc, vectors_split_twice);
	tcase_add_test(tc, vectors_bytewise_and_chunks);
	tcase_add_test(tc, prefixes_need_more);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_add_test(tc, empty_feed_needs_more);
	tcase_add_test(tc, reinit_parses_next_reply);
	tcase_add_test(tc, reinit_after_error);
	tcase_add_test(tc, bare_lf_detail);
	tcase_add_test(tc, text_truncated);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, max_size_exact_is_accepted);
	tcase_add_test(tc, max_size_plus_one_is_too_long);
	tcase_add_test(tc, max_size_multiline);
	tcase_add_test(tc, many_short_lines);
	tcase_add_test(tc, huge_line_fails_fast);
	tcase_add_test(tc, huge_multiline_fails_fast);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
