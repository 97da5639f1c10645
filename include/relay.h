/* Moving the bytes of one established session between its two sockets:
 * a read is written on at once (no copy kept when the peer takes it all,
 * so an idle session holds no buffer), back-pressure stops reading while
 * a direction has bytes the peer has not taken, half-closes are passed
 * on, and bulk transfers go through a pipe with splice(2) (zero-copy,
 * as HAProxy's splice-auto). */
#ifndef LB_RELAY_H
#define LB_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

/* The shared part: one read buffer for every session of an event loop,
 * and a pool of spare pipes.  One per worker (struct worker); share is
 * the number of workers, which split the pipe budget. */
struct relay_ctx;

/* Per direction: bytes in flight at most this much (back-pressure). */
#define RELAY_BUF 65536

#define RELAY_LINE_PENDING (-2)

enum relay_end {
	RELAY_DONE,         /* both directions closed cleanly */
	RELAY_CLIENT_ERROR, /* reset or error on the client socket */
	RELAY_SERVER_ERROR, /* reset or error on the server socket */
};

struct relay_cbs {
	/* n bytes moved from the client (c2s) or from the server; line:
	 * 1 when the last byte ended a line, 0 when not, -1 unknown
	 * (spliced bytes are never seen), RELAY_LINE_PENDING (n = 0): bytes
	 * wait for the receiver, or it took some of them. */
	void (*moved)(void *arg, bool c2s, size_t n, int line);
	/* Read EOF from the client (c2s) or from the server. */
	void (*eof)(void *arg, bool c2s);
	/* The relay is over: the session closes (relay_free). */
	void (*end)(void *arg, enum relay_end why);
};

struct relay_ctx *relay_ctx_new(bool splice, unsigned share);
void relay_ctx_free(struct relay_ctx *ctx);
/* Read events its relays handled so far (the event loop's measure of
 * being busy, see rt.c's worker_loop). */
unsigned long relay_ctx_reads(const struct relay_ctx *ctx);
/* Of those, the reads of bulk data (RELAY_BULK_READ bytes or more, or
 * spliced): a transfer that streams. */
unsigned long relay_ctx_bulk(const struct relay_ctx *ctx);

/* A busy event loop pauses between passes (rt.c's worker_loop): after a
 * pass of `reads` read events, `bulk` of them bulk, this many
 * microseconds; 0: the pass relayed nothing (block until the next event),
 * or max_us is 0 (coalescing off).  The pause grows with the pass, by
 * RELAY_PAUSE_STEP_US per read, from RELAY_PAUSE_MIN_US to max_us; a pass
 * with a bulk read pauses RELAY_PAUSE_MIN_US (a streaming transfer would
 * otherwise wait max_us per buffer). */
#define RELAY_PAUSE_MIN_US 50
#define RELAY_PAUSE_STEP_US 25
#define RELAY_BULK_READ 8192
unsigned relay_pause_us(unsigned long reads, unsigned long bulk,
                        unsigned max_us);

struct relay;

/* Take over both sockets (closed by relay_free).  NULL: out of memory. */
struct relay *relay_new(struct relay_ctx *ctx, struct event_base *base, int cfd,
                        int sfd, const struct relay_cbs *cbs, void *arg);
/* Before relay_start: bytes to send first (PROXY header, what the client
 * sent before the server was connected).  Returns 0 or -1. */
int relay_queue(struct relay *r, bool c2s, const void *data, size_t len);
/* Start moving bytes.  Returns 0 or -1 (events could not be added). */
int relay_start(struct relay *r);
/* Stop and free; closes both sockets. */
void relay_free(struct relay *r);

#endif
