/* Client limits (load-balancer.conf(5), CLIENT LIMITS): CIDR
 * prefixes for the allow, deny and exempt lists, and the table of client
 * networks that counts, per network, its current sessions and its new
 * sessions in a sliding window.
 *
 * Pure: no event loop, no socket I/O, no logging.  Addresses are read and
 * written with libevent's evutil (evutil_inet_pton, evutil_inet_ntop);
 * cidr_parse checks their syntax first, since libevent 2.1's parser is lax
 * ("4294967297.0.0.0" is 1.0.0.0 to it): it takes what the C library's
 * inet_pton takes.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, the way a dual-stack listener on [::]
 * reports an IPv4 client) is IPv4 everywhere in this module: such a client
 * matches IPv4 CIDRs (and no IPv6 one), is cut to prefix4 bits and counted
 * with the native IPv4 clients of its network; a CIDR written in that
 * form with a prefix of 96 bits or more ("::ffff:192.0.2.0/120") is read
 * as the IPv4 CIDR it stands for ("192.0.2.0/24"). */
#ifndef LB_CLIMIT_H
#define LB_CLIMIT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* --- CIDR prefixes (allow, deny, exempt) --------------------------------- */

struct cidr {
	uint8_t family;   /* AF_INET or AF_INET6 */
	uint8_t bits;     /* prefix length: 0..32 or 0..128 */
	uint8_t addr[16]; /* masked to bits; IPv4 in the first 4 bytes, the
	                   * rest 0 */
};

/* The longest text cidr_format writes, NUL included
 * ("ffff:...:ffff/128"). */
#define CIDR_STRLEN (INET6_ADDRSTRLEN + 5)

/* "192.0.2.0/24", "2001:db8::/32", or a bare address: a single host (/32,
 * /128).  Returns 0, or -1 with *err a static English message that does
 * not repeat the text (the caller quotes it): "empty CIDR", "bad IPv4
 * address", "prefix length must be 0..32", ...; *out is then untouched.
 * Refused: white space anywhere, an empty address or prefix ("", "/24",
 * "10.0.0.0/"), a sign or more than 3 digits in the prefix, anything after
 * it.  *host_bits (may be NULL) is set true when bits below the prefix were
 * set in the text ("10.1.2.3/8"): the value is masked (10.0.0.0/8) and the
 * caller may warn.  err may be NULL. */
int cidr_parse(const char *text, struct cidr *out, bool *host_bits,
               const char **err);
/* sa (AF_INET or AF_INET6; any other family never matches) is inside c. */
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);

struct cidr_list {
	struct cidr *v;
	size_t n;
};
/* sa is inside one of l's prefixes (an empty list matches nothing). */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* "192.0.2.0/24", "2001:db8::/32" into buf (always with the prefix
 * length; truncated to len - 1 characters, NUL-terminated when len > 0).
 * CIDR_STRLEN bytes are always enough.  cidr_parse reads it back to the
 * same struct cidr. */
void cidr_format(const struct cidr *c, char *buf, size_t len);

/* --- the table of client networks ------------------------------------------
 *
 * load-balancer.conf(5), CLIENT LIMITS.
 *
 * Per client network (the client's address cut to prefix4 or prefix6
 * bits): its current sessions, its new sessions in the last period_ms (a
 * sliding window) and the connections it was refused.
 *
 * Thread-safe and exact: each function takes the table's one mutex and
 * holds it for a hash lookup (climit_top: for one pass over the table),
 * so counts are exact whatever thread admits or releases.
 *
 * Bounded: at most table_size networks.  The entry array and the hash
 * index are allocated once, by climit_new (calloc: pages never touched
 * cost no memory); nothing is allocated afterwards.  When the table is
 * full and a new network arrives, the network idle the longest (the least
 * recently admitted, refused or released) among those without a current
 * session is evicted; a network holding sessions only when every network
 * of the table holds one.  An evicted
 * network that comes back starts from zero, and the tickets of its
 * sessions become stale (releasing one does nothing): keep table_size
 * well above the number of networks that hold sessions at once (the
 * global maxconn bounds that) so that maxconn stays exact.
 *
 * The window: 16 buckets of ceil(period_ms / 16) ms each.  The count "in
 * the last period" is the sum of the buckets that started within
 * (now - period_ms, now]: a session is never counted for longer than
 * period_ms, and may be forgotten up to period_ms / 16 early.  period_ms
 * 0: nothing is ever in the window (a rate never refuses).
 *
 * Time is the caller's now_ms (any clock in milliseconds, tests pass a
 * fake one), and never goes backwards for a table: a now_ms below the
 * latest one seen counts as that latest one (no time passed).
 *
 * The hash of a network is keyed with a random per-table seed
 * (getrandom(2)), so that clients cannot pick addresses that collide. */

/* Upper bound of table_size. */
#define CLIMIT_TABLE_MAX (1U << 24)

struct climit;

/* A table with one reference.  NULL with errno EINVAL when table_size is
 * not 1..CLIMIT_TABLE_MAX, prefix4 not 0..32 or prefix6 not 0..128, or
 * ENOMEM (the allocation: about 100 bytes per entry). */
struct climit *climit_new(size_t table_size, unsigned prefix4, unsigned prefix6,
                          uint64_t period_ms);
void climit_ref(struct climit *t);   /* atomic reference count */
void climit_unref(struct climit *t); /* frees at 0; NULL: nothing */
/* A table made with these parameters would be the same one: a reload
 * keeps the table, and its counts, when true.  NULL: false. */
bool climit_same(const struct climit *t, size_t table_size, unsigned prefix4,
                 unsigned prefix6, uint64_t period_ms);

enum climit_verdict { CLIMIT_ADMIT, CLIMIT_MAXCONN, CLIMIT_RATE };

/* What an admitted session gives back at its end (climit_release). */
struct climit_ticket {
	uint32_t slot; /* UINT32_MAX: nothing to give back */
	uint32_t epoch;
};

/* A new connection from client.  maxconn, rate: 0 = that limit off.
 * maxconn is checked first (the network already holds maxconn sessions:
 * CLIMIT_MAXCONN), then rate (it opened rate sessions in the last period:
 * CLIMIT_RATE).  CLIMIT_ADMIT: the network's current count and window
 * count go up by one, and *tk is what the session gives back at its end.
 * Refused: the network's refused count goes up, nothing else (refusals do
 * not count toward the rate), and *tk is a ticket that gives back nothing.
 * A client of another family than IPv4 and IPv6 (AF_UNIX) is admitted and
 * not counted (*tk gives back nothing).  One lock, one hash lookup, no
 * formatting. */
enum climit_verdict climit_admit(struct climit *t,
                                 const struct sockaddr *client,
                                 unsigned maxconn, unsigned rate,
                                 uint64_t now_ms, struct climit_ticket *tk);
/* The session of an admitted ticket ended: its network's current count
 * goes down by one, unless the network was evicted in the meantime (the
 * ticket is then stale and nothing happens).  Give each ticket back once. */
void climit_release(struct climit *t, const struct climit_ticket *tk,
                    uint64_t now_ms);

struct climit_row {
	char net[CIDR_STRLEN]; /* "192.0.2.0/24", "2001:db8:1:2::/64" */
	unsigned cur;          /* current sessions */
	unsigned in_period;    /* new sessions in the last period */
	uint64_t refused;      /* connections refused since tracked */
};
/* lbctl show clients: the n busiest networks into rows, busiest first
 * (current sessions, then sessions in the period, then refused, all
 * descending; then by address); returns how many (at most n and
 * climit_size).  The selection is made under the lock (one pass over
 * the table, no allocation), the sort and the formatting after it. */
size_t climit_top(struct climit *t, struct climit_row *rows, size_t n,
                  uint64_t now_ms);
/* How many networks the table tracks now. */
/* qsort(3) order of formatted rows: the busiest first (as climit_top),
 * ties by network text (rows of several tables merged). */
int climit_row_cmp(const void *a, const void *b);
size_t climit_size(struct climit *t);

#endif
