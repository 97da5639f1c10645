/* Unit tests for relay.c: the busy loop's pause, and the byte relay itself
 * between two real loopback TCP connections (what the client and the
 * server see, and what the relay sends on the wire). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_segs_out */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "relay.h"

/* --- the pause of a busy event loop --------------------------------- */

START_TEST(pause_off_or_idle)
{
	/* A pass that relayed nothing: back to a blocking wait. */
	ck_assert_uint_eq(relay_pause_us(0, 0, 300), 0);
	/* Coalescing off (LB_COALESCE_US=0). */
	ck_assert_uint_eq(relay_pause_us(1, 0, 0), 0);
	ck_assert_uint_eq(relay_pause_us(1000, 0, 0), 0);
}
END_TEST

START_TEST(pause_grows_with_the_pass)
{
	/* One read: the shortest pause; then RELAY_PAUSE_STEP_US per read
	 * of the previous pass, up to the maximum. */
	ck_assert_uint_eq(relay_pause_us(1, 0, 300), RELAY_PAUSE_MIN_US);
	ck_assert_uint_eq(relay_pause_us(2, 0, 300), RELAY_PAUSE_MIN_US);
	ck_assert_uint_eq(relay_pause_us(4, 0, 300), 4 * RELAY_PAUSE_STEP_US);
	ck_assert_uint_eq(relay_pause_us(10, 0, 300), 10 * RELAY_PAUSE_STEP_US);
	ck_assert_uint_eq(relay_pause_us(12, 0, 300), 300);
	ck_assert_uint_eq(relay_pause_us(100000, 0, 300), 300);
	/* A maximum below the minimum is the pause. */
	ck_assert_uint_eq(relay_pause_us(1, 0, 20), 20);
	ck_assert_uint_eq(relay_pause_us(50, 0, 20), 20);
}
END_TEST

START_TEST(pause_short_for_bulk)
{
	/* A transfer that streams: any bulk read keeps the pause short, so
	 * that a megabyte message is not held up pass after pass. */
	ck_assert_uint_eq(relay_pause_us(100, 1, 300), RELAY_PAUSE_MIN_US);
	ck_assert_uint_eq(relay_pause_us(1, 1, 300), RELAY_PAUSE_MIN_US);
	ck_assert_uint_eq(relay_pause_us(100, 1, 20), 20);
}
END_TEST

/* --- the relay over real sockets ------------------------------------ */

/* A connected loopback TCP pair: *a connected, *b accepted.  rcvbuf > 0
 * shrinks a's receive buffer (a slow client). */
static void
tcp_pair(int *a, int *b, int rcvbuf)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(l, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(*a, 0);
	if (rcvbuf > 0)
		ck_assert_int_eq(setsockopt(*a, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		                            sizeof(rcvbuf)),
		                 0);
	ck_assert_int_eq(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept(l, NULL, NULL);
	ck_assert_int_ge(*b, 0);
	close(l);
	ck_assert_int_eq(fcntl(*a, F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(*b, F_SETFL, O_NONBLOCK), 0);
}

struct seen {
	struct relay *r;
	bool eof[2]; /* [0] from the client, [1] from the server */
	int ended;
	enum relay_end why;
	size_t moved[2];
};

static void
t_moved(void *arg, bool c2s, size_t n, int line)
{
	struct seen *s = arg;

	(void)line;
	s->moved[c2s ? 0 : 1] += n;
}

static void
t_eof(void *arg, bool c2s)
{
	struct seen *s = arg;

	s->eof[c2s ? 0 : 1] = true;
}

static void
t_end(void *arg, enum relay_end why)
{
	struct seen *s = arg;

	s->ended++;
	s->why = why;
	relay_free(s->r); /* as the session does */
	s->r = NULL;
}

static const struct relay_cbs t_cbs = {
    .moved = t_moved, .eof = t_eof, .end = t_end};

static unsigned
segs_out(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	/* Linux 4.2 and later fill it in. */
	ck_assert_uint_ge(len, offsetof(struct tcp_info, tcpi_segs_out) +
	                           sizeof(ti.tcpi_segs_out));
	return ti.tcpi_segs_out;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
nap(void)
{
	struct timespec ts = {0, 1000000};

	nanosleep(&ts, NULL);
}

/* Runs the relay until it ends (at most 2 s); it must end cleanly. */
static void
until_end(struct event_base *base, struct seen *s)
{
	for (int i = 0; i < 2000 && s->ended == 0; i++) {
		ck_assert_int_ge(event_base_loop(base, EVLOOP_NONBLOCK), 0);
		if (s->ended == 0)
			nap();
	}
	ck_assert_int_eq(s->ended, 1);
	ck_assert_int_eq(s->why, RELAY_DONE);
}

/* The end of an SMTP session: the server's last reply and its FIN reach
 * the balancer together.  The client gets the reply and the EOF, in one
 * segment; then it closes too and the relay ends cleanly. */
START_TEST(reply_and_fin_one_segment)
{
	static const char bye[] = "221 2.0.0 Bye\r\n";
	struct relay_ctx *ctx = relay_ctx_new(false, 1);
	struct event_base *base = event_base_new();
	struct seen s = {0};
	int cpeer, clb, speer, slb;
	unsigned before;
	char buf[64];
	size_t got = 0;
	bool eof = false;
	struct pollfd pfd;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_nonnull(base);
	tcp_pair(&cpeer, &clb, 0);
	tcp_pair(&speer, &slb, 0);
	s.r = relay_new(ctx, base, clb, slb, &t_cbs, &s);
	ck_assert_ptr_nonnull(s.r);
	ck_assert_int_eq(relay_start(s.r), 0);
	ck_assert_int_eq(send(speer, bye, strlen(bye), MSG_NOSIGNAL),
	                 (ssize_t)strlen(bye));
	ck_assert_int_eq(shutdown(speer, SHUT_WR), 0);
	/* Both are in the balancer's socket before it looks. */
	pfd.fd = slb;
	pfd.events = POLLRDHUP;
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert(pfd.revents & POLLRDHUP);
	before = segs_out(clb);
	for (int i = 0; i < 2000 && !eof; i++) {
		ssize_t n;

		ck_assert_int_ge(event_base_loop(base, EVLOOP_NONBLOCK), 0);
		n = recv(cpeer, buf + got, sizeof(buf) - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			eof = true;
		else {
			ck_assert_int_eq(errno, EAGAIN);
			nap();
		}
	}
	ck_assert(eof);
	ck_assert_uint_eq(got, strlen(bye));
	ck_assert_mem_eq(buf, bye, got);
	ck_assert(s.eof[1]);
	ck_assert_uint_eq(s.moved[1], strlen(bye));
	/* The reply and the FIN: one segment, not two. */
	ck_assert_uint_eq(segs_out(clb) - before, 1);
	ck_assert_int_eq(s.ended, 0);
	/* The client closes: both directions are done. */
	close(cpeer);
	until_end(base, &s);
	ck_assert(s.eof[0]);
	/* The server was told: it reads the EOF. */
	for (int i = 0; i < 2000; i++) {
		ssize_t n = recv(speer, buf, sizeof(buf), 0);

		if (n == 0)
			break;
		ck_assert_int_lt(n, 0);
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert_int_lt(i, 1999);
		nap();
	}
	close(speer);
	event_base_free(base);
	relay_ctx_free(ctx);
}
END_TEST

/* A large reply (1 MiB) and the FIN, towards a client that reads slowly:
 * every byte arrives, in order, before the EOF.  The last read, known to
 * be the last, usually does not fit in the client's window at once: the
 * bytes kept and the EOF read again must still come out in order (this
 * passes without the one-segment ending too; it guards its slow path). */
static void
slow_client(bool splice)
{
	enum { TOTAL = 1 << 20 };
	struct relay_ctx *ctx = relay_ctx_new(splice, 1);
	struct event_base *base = event_base_new();
	struct seen s = {0};
	int cpeer, clb, speer, slb;
	char *out = malloc(TOTAL), buf[4096];
	size_t sent = 0, got = 0;
	bool shut = false, eof = false;
	double deadline = now_s() + 30;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < TOTAL; i++)
		out[i] = (char)(i * 7 + i / 4093);
	tcp_pair(&cpeer, &clb, 8192);
	tcp_pair(&speer, &slb, 0);
	s.r = relay_new(ctx, base, clb, slb, &t_cbs, &s);
	ck_assert_ptr_nonnull(s.r);
	ck_assert_int_eq(relay_start(s.r), 0);
	for (int i = 0; !eof; i++) {
		ssize_t n;

		ck_assert_msg(now_s() < deadline, "no EOF after %zu bytes",
		              got);
		if (sent < TOTAL) {
			n = send(speer, out + sent, TOTAL - sent,
			         MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		} else if (!shut) {
			ck_assert_int_eq(shutdown(speer, SHUT_WR), 0);
			shut = true;
		}
		ck_assert_int_ge(event_base_loop(base, EVLOOP_NONBLOCK), 0);
		/* Slowly: a small read per turn. */
		n = recv(cpeer, buf, i % 3 == 0 ? sizeof(buf) : 512, 0);
		if (n > 0) {
			ck_assert_uint_le(got + (size_t)n, TOTAL);
			ck_assert_mem_eq(buf, out + got, (size_t)n);
			got += (size_t)n;
		} else if (n == 0)
			eof = true;
		else {
			struct pollfd pfd = {.fd = cpeer, .events = POLLIN};

			ck_assert_int_eq(errno, EAGAIN);
			(void)poll(&pfd, 1, 1);
		}
	}
	ck_assert(eof);
	ck_assert_uint_eq(got, TOTAL);
	ck_assert(s.eof[1]);
	ck_assert_int_eq(s.ended, 0);
	close(cpeer);
	until_end(base, &s);
	close(speer);
	free(out);
	event_base_free(base);
	relay_ctx_free(ctx);
}

START_TEST(slow_client_copy)
{
	slow_client(false);
}
END_TEST

START_TEST(slow_client_splice)
{
	slow_client(true);
}
END_TEST

static Suite *
relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc = tcase_create("pause");

	tcase_add_test(tc, pause_off_or_idle);
	tcase_add_test(tc, pause_grows_with_the_pass);
	tcase_add_test(tc, pause_short_for_bulk);
	suite_add_tcase(s, tc);
	tc = tcase_create("sockets");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reply_and_fin_one_segment);
	tcase_add_test(tc, slow_client_copy);
	tcase_add_test(tc, slow_client_splice);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(relay_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
