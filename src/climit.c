/* Client limits: CIDR prefixes and the table of client networks
 * (include/climit.h is the contract).
 *
 * The table is an array of table_size entries, a hash index over it and
 * an LRU list through it, all of them slot numbers (uint32) allocated once
 * by climit_new:
 *  - index[h & mask] holds 1 + the slot of the first entry of its chain
 *    (0: none), entry.chain 1 + the next one; the index has a power of two
 *    of at least 2 x table_size chains, so chains stay short;
 *  - two LRU lists, linked by entry.prev / entry.next (NIL ends): busy,
 *    the networks with a current session, and idle, the others; each
 *    list's head is its most recently used entry, its tail the idlest.
 *    Eviction takes the idle list's tail, so a network holding sessions
 *    is evicted only when every network of the table holds one;
 *  - slots 0 .. used - 1 are in use; once used reaches table_size, a new
 *    network takes the slot of the one it evicts.
 * The hash is SipHash-1-3 of the network (family and masked address)
 * under a random per-table key. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/util.h>

#include "climit.h"

#define NIL UINT32_MAX
#define WIN_BUCKETS 16 /* sub-buckets of the sliding window */

/* --- CIDR ----------------------------------------------------------------- */

/* The IP address of sa into a (IPv4 in a[0..3], IPv4-mapped IPv6 as
 * IPv4); returns AF_INET, AF_INET6, or 0 for another family. */
static int
sa_ip(const struct sockaddr *sa, uint8_t a[16])
{
	memset(a, 0, 16);
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		memcpy(a, &in->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(a, in6->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(a, in6->sin6_addr.s6_addr, 16);
		return AF_INET6;
	}
	return 0;
}

/* Clear the bits of a (len bytes) below the first bits; true when one of
 * them was set. */
static bool
mask_bits(uint8_t *a, size_t len, unsigned bits)
{
	bool cleared = false;

	for (size_t i = 0; i < len; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8
		                : bits > 8 * i      ? bits - 8 * (unsigned)i
		                                    : 0;
		uint8_t m = (uint8_t)(0xff00u >> keep);

		if (a[i] & (uint8_t)~m)
			cleared = true;
		a[i] &= m;
	}
	return cleared;
}

/* The first bits of a and b are equal. */
static bool
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	size_t full = bits / 8;
	unsigned rem = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rem == 0)
		return true;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff00u >> rem)) == 0;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool
is_cidr_char(char c)
{
	return is_hex(c) || c == '.' || c == ':' || c == '/';
}

/* Addresses are checked here before evutil_inet_pton reads them: libevent
 * 2.1's own parser (it does not use the C library's inet_pton) is lax.  It
 * reads IPv4 numbers with sscanf("%u"), which takes "010" as 10 (where
 * inet_aton reads 8) and "4294967297" as 1, and takes an IPv6 address
 * ending with one ':' ("::ffff:", "1::2:").  What passes both is what the
 * C library's inet_pton takes (fuzz/t_cidr.c checks that). */

/* s[0..len) is a dotted quad: 4 decimal numbers 0..255 without leading
 * zeros. */
static bool
dotted_quad(const char *s, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t n = 0;

		if (part > 0 && (i >= len || s[i++] != '.'))
			return false;
		for (; i < len && is_digit(s[i]); i++, n++) {
			if (n == 3)
				return false;
			v = v * 10 + (unsigned)(s[i] - '0');
		}
		if (n == 0 || v > 255 || (n > 1 && s[i - n] == '0'))
			return false;
	}
	return i == len;
}

/* s is an IPv6 address as RFC 4291 2.2 writes it: 8 groups of 1 to 4 hex
 * digits separated by ':', the last two of them maybe a dotted quad, or
 * fewer groups with one "::" standing for the missing ones. */
static bool
ipv6_syntax(const char *s)
{
	size_t len = strlen(s), i = 0;
	unsigned groups = 0;
	bool gap = false;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		gap = true;
		i = 2;
	} else if (len > 0 && s[0] == ':') {
		return false;
	}
	while (i < len) {
		size_t start = i;

		while (i < len && is_hex(s[i]))
			i++;
		if (i < len && s[i] == '.') {
			if (!dotted_quad(s + start, len - start))
				return false;
			groups += 2;
			break;
		}
		if (i == start || i - start > 4)
			return false;
		groups++;
		if (i == len)
			break;
		if (s[i++] != ':' || i == len)
			return false; /* not a ':', or one at the end */
		if (s[i] == ':') {
			if (gap)
				return false;
			gap = true;
			i++;
		}
	}
	return gap ? groups <= 7 : groups == 8;
}

static int
fail(const char **err, const char *msg)
{
	if (err != NULL)
		*err = msg;
	return -1;
}

int
cidr_parse(const char *text, struct cidr *out, bool *host_bits,
           const char **err)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	char buf[INET6_ADDRSTRLEN];
	struct cidr c;
	const char *slash, *p;
	size_t alen;
	unsigned bits, max;
	bool v6, hb;

	if (text == NULL || *text == '\0')
		return fail(err, "empty CIDR");
	for (p = text; *p != '\0'; p++) {
		if (*p == ' ' || (*p >= '\t' && *p <= '\r'))
			return fail(err, "white space in CIDR");
		if (!is_cidr_char(*p))
			return fail(err, "bad character in CIDR");
	}
	slash = strchr(text, '/');
	alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (alen == 0)
		return fail(err, "no address before the '/'");
	v6 = memchr(text, ':', alen) != NULL;
	if (alen >= sizeof(buf))
		return fail(err, v6 ? "bad IPv6 address" : "bad IPv4 address");
	memcpy(buf, text, alen);
	buf[alen] = '\0';

	memset(&c, 0, sizeof(c));
	c.family = v6 ? AF_INET6 : AF_INET;
	if (!(v6 ? ipv6_syntax(buf) : dotted_quad(buf, alen)) ||
	    evutil_inet_pton(c.family, buf, c.addr) != 1)
		return fail(err, v6 ? "bad IPv6 address" : "bad IPv4 address");
	max = v6 ? 128 : 32;
	if (slash == NULL) {
		bits = max;
	} else {
		size_t ndigits = 0;

		if (slash[1] == '\0')
			return fail(err, "no prefix length after the '/'");
		bits = 0;
		for (p = slash + 1; *p != '\0'; p++) {
			if (!is_digit(*p))
				return fail(err,
				            "prefix length is not a number");
			if (++ndigits > 3)
				break;
			bits = bits * 10 + (unsigned)(*p - '0');
		}
		if (ndigits > 3 || bits > max)
			return fail(err, v6 ? "prefix length must be 0..128"
			                    : "prefix length must be 0..32");
	}
	/* ::ffff:a.b.c.d/96+ is the IPv4 prefix it stands for. */
	if (v6 && bits >= 96 && memcmp(c.addr, mapped, 12) == 0) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		bits -= 96;
	}
	c.bits = (uint8_t)bits;
	hb = mask_bits(c.addr, c.family == AF_INET ? 4 : 16, bits);
	*out = c;
	if (host_bits != NULL)
		*host_bits = hb;
	return 0;
}

bool
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	uint8_t a[16];
	int fam = sa_ip(sa, a);

	return fam != 0 && fam == c->family && prefix_eq(a, c->addr, c->bits);
}

bool
cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	uint8_t a[16];
	int fam;

	if (l == NULL || l->n == 0 || (fam = sa_ip(sa, a)) == 0)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const struct cidr *c = &l->v[i];
		if (c->family == fam && prefix_eq(a, c->addr, c->bits))
			return true;
	}
	return false;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if ((c->family != AF_INET && c->family != AF_INET6) ||
	    evutil_inet_ntop(c->family, c->addr, addr, sizeof(addr)) == NULL)
		snprintf(addr, sizeof(addr), "?");
	snprintf(buf, len, "%s/%u", addr, (unsigned)c->bits);
}

/* --- the table ------------------------------------------------------------ */

struct entry {
	uint8_t addr[16];    /* the network, masked */
	uint8_t family;      /* 0: slot not in use */
	uint32_t cur;        /* current sessions */
	uint32_t epoch;      /* bumped each time the slot takes a network */
	uint32_t prev, next; /* LRU: towards the head (newer), the tail */
	uint32_t chain;      /* 1 + the next slot of its hash chain, 0: end */
	uint16_t win[WIN_BUCKETS]; /* sessions per bucket, saturating */
	uint64_t head_no;          /* number (time / width) of the newest */
	uint64_t refused;
};

struct climit {
	atomic_uint refs;
	/* Set by climit_new, then read only. */
	size_t size;
	unsigned prefix4, prefix6;
	uint64_t period, width; /* ms; width = ceil(period / 16), >= 1 */
	uint64_t k0, k1;        /* the hash key */
	uint32_t mask;          /* chains - 1 */
	struct entry *ent;
	uint32_t *index;
	pthread_mutex_t lock;
	/* Under the lock. */
	uint32_t used;
	struct lru {
		uint32_t head, tail;
	} busy, idle;
	uint64_t now; /* the latest now_ms seen */
};

/* SipHash-1-3 (Aumasson, Bernstein) of a network: three words. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL(v1, 13);                                             \
		v1 ^= v0;                                                      \
		v0 = ROTL(v0, 32);                                             \
		v2 += v3;                                                      \
		v3 = ROTL(v3, 16);                                             \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ROTL(v3, 21);                                             \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ROTL(v1, 17);                                             \
		v1 ^= v2;                                                      \
		v2 = ROTL(v2, 32);                                             \
	} while (0)

static uint32_t
hash_net(const struct climit *t, int family, const uint8_t addr[16])
{
	uint64_t v0 = t->k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = t->k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = t->k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = t->k1 ^ 0x7465646279746573ULL;
	uint64_t m[3];

	memcpy(&m[0], addr, 8);
	memcpy(&m[1], addr + 8, 8);
	m[2] = (uint64_t)(family & 0xff) | (uint64_t)17 << 56;
	for (int i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIPROUND;
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (uint32_t)(v0 ^ v1 ^ v2 ^ v3);
}

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The hash key: from getrandom(2); when the kernel has none to give yet
 * (early boot) or no getrandom, from the clocks and the process (weaker,
 * but the table still works). */
static void
seed(struct climit *t)
{
	uint64_t k[2];
	ssize_t r;

	do
		r = getrandom(k, sizeof(k), GRND_NONBLOCK);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)sizeof(k)) {
		struct timespec a = {0, 0}, b = {0, 0};

		if (clock_gettime(CLOCK_REALTIME, &a) != 0)
			a.tv_sec = time(NULL);
		if (clock_gettime(CLOCK_MONOTONIC, &b) != 0)
			b.tv_nsec = 0;
		k[0] = mix64((uint64_t)a.tv_sec * 1000000000ULL +
		             (uint64_t)a.tv_nsec) ^
		       (uint64_t)getpid();
		k[1] = mix64((uint64_t)b.tv_sec * 1000000000ULL +
		             (uint64_t)b.tv_nsec) ^
		       mix64((uint64_t)(uintptr_t)t);
	}
	t->k0 = k[0];
	t->k1 = k[1];
}

struct climit *
climit_new(size_t table_size, unsigned prefix4, unsigned prefix6,
           uint64_t period_ms)
{
	struct climit *t;
	size_t chains = 2;

	if (table_size == 0 || table_size > CLIMIT_TABLE_MAX || prefix4 > 32 ||
	    prefix6 > 128) {
		errno = EINVAL;
		return NULL;
	}
	while (chains < 2 * table_size)
		chains *= 2;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->ent = calloc(table_size, sizeof(*t->ent));
	t->index = calloc(chains, sizeof(*t->index));
	if (t->ent == NULL || t->index == NULL) {
		free(t->ent);
		free(t->index);
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	if ((errno = pthread_mutex_init(&t->lock, NULL)) != 0) {
		free(t->ent);
		free(t->index);
		free(t);
		return NULL;
	}
	atomic_init(&t->refs, 1);
	t->size = table_size;
	t->prefix4 = prefix4;
	t->prefix6 = prefix6;
	t->period = period_ms;
	t->width = period_ms / WIN_BUCKETS + (period_ms % WIN_BUCKETS != 0);
	if (t->width == 0)
		t->width = 1;
	t->mask = (uint32_t)(chains - 1);
	t->busy.head = t->busy.tail = t->idle.head = t->idle.tail = NIL;
	seed(t);
	return t;
}

void
climit_ref(struct climit *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void
climit_unref(struct climit *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->ent);
	free(t->index);
	free(t);
}

bool
climit_same(const struct climit *t, size_t table_size, unsigned prefix4,
            unsigned prefix6, uint64_t period_ms)
{
	return t != NULL && t->size == table_size && t->prefix4 == prefix4 &&
	       t->prefix6 == prefix6 && t->period == period_ms;
}

/* Under the lock: now_ms, never below the latest one seen. */
static uint64_t
clock_at(struct climit *t, uint64_t now_ms)
{
	if (now_ms > t->now)
		t->now = now_ms;
	return t->now;
}

/* The list an entry belongs on: by whether it holds sessions. */
static struct lru *
list_of(struct climit *t, const struct entry *e)
{
	return e->cur > 0 ? &t->busy : &t->idle;
}

static void
lru_unlink(struct climit *t, uint32_t s)
{
	struct entry *e = &t->ent[s];
	struct lru *l = list_of(t, e);

	if (e->prev != NIL)
		t->ent[e->prev].next = e->next;
	else
		l->head = e->next;
	if (e->next != NIL)
		t->ent[e->next].prev = e->prev;
	else
		l->tail = e->prev;
}

static void
lru_push(struct climit *t, uint32_t s)
{
	struct entry *e = &t->ent[s];
	struct lru *l = list_of(t, e);

	e->prev = NIL;
	e->next = l->head;
	if (l->head != NIL)
		t->ent[l->head].prev = s;
	else
		l->tail = s;
	l->head = s;
}

/* Take a slot out of the index and its LRU list (eviction): the idlest
 * entry without sessions, else (every network holds one) the idlest. */
static uint32_t
evict(struct climit *t)
{
	uint32_t victim = t->idle.tail != NIL ? t->idle.tail : t->busy.tail;
	uint32_t *p;
	struct entry *e;

	e = &t->ent[victim];
	p = &t->index[hash_net(t, e->family, e->addr) & t->mask];
	while (*p != victim + 1)
		p = &t->ent[*p - 1].chain;
	*p = e->chain;
	lru_unlink(t, victim);
	return victim;
}

/* Move e's window to bucket number n (clearing the buckets in between). */
static void
win_advance(struct entry *e, uint64_t n)
{
	if (n <= e->head_no)
		return;
	if (n - e->head_no >= WIN_BUCKETS)
		memset(e->win, 0, sizeof(e->win));
	else
		for (uint64_t k = e->head_no + 1; k <= n; k++)
			e->win[k % WIN_BUCKETS] = 0;
	e->head_no = n;
}

/* e's sessions in the buckets that started within (now - period, now]. */
static unsigned
win_count(const struct climit *t, const struct entry *e, uint64_t now)
{
	unsigned sum = 0;

	for (uint64_t i = 0; i < WIN_BUCKETS && i <= e->head_no; i++) {
		uint64_t k = e->head_no - i;
		if (now - k * t->width >= t->period)
			break;
		sum += e->win[k % WIN_BUCKETS];
	}
	return sum;
}

/* The client's network (family 0: not IP). */
static int
client_net(const struct climit *t, const struct sockaddr *sa, uint8_t a[16])
{
	int fam = sa_ip(sa, a);

	if (fam == AF_INET)
		mask_bits(a, 4, t->prefix4);
	else if (fam == AF_INET6)
		mask_bits(a, 16, t->prefix6);
	return fam;
}

enum climit_verdict
climit_admit(struct climit *t, const struct sockaddr *client, unsigned maxconn,
             unsigned rate, uint64_t now_ms, struct climit_ticket *tk)
{
	enum climit_verdict v = CLIMIT_ADMIT;
	uint8_t a[16];
	int fam = client_net(t, client, a);
	uint32_t h, s;
	uint64_t now;
	struct entry *e;

	tk->slot = NIL;
	tk->epoch = 0;
	if (fam == 0)
		return CLIMIT_ADMIT;
	h = hash_net(t, fam, a) & t->mask;

	pthread_mutex_lock(&t->lock);
	now = clock_at(t, now_ms);
	for (s = t->index[h]; s != 0; s = t->ent[s - 1].chain)
		if (t->ent[s - 1].family == fam &&
		    memcmp(t->ent[s - 1].addr, a, 16) == 0)
			break;
	if (s != 0) {
		s--;
		e = &t->ent[s];
		lru_unlink(t, s);
		win_advance(e, now / t->width);
		if (maxconn != 0 && e->cur >= maxconn)
			v = CLIMIT_MAXCONN;
		else if (rate != 0 && win_count(t, e, now) >= rate)
			v = CLIMIT_RATE;
	} else {
		s = t->used < t->size ? t->used++ : evict(t);
		e = &t->ent[s];
		e->family = (uint8_t)fam;
		memcpy(e->addr, a, 16);
		e->cur = 0;
		e->epoch++;
		memset(e->win, 0, sizeof(e->win));
		e->head_no = now / t->width;
		e->refused = 0;
		e->chain = t->index[h];
		t->index[h] = s + 1;
	}
	if (v == CLIMIT_ADMIT) {
		e->cur++;
		if (e->win[e->head_no % WIN_BUCKETS] < UINT16_MAX)
			e->win[e->head_no % WIN_BUCKETS]++;
		tk->slot = s;
		tk->epoch = e->epoch;
	} else {
		e->refused++;
	}
	lru_push(t, s); /* on the list of its (new) count */
	pthread_mutex_unlock(&t->lock);
	return v;
}

void
climit_release(struct climit *t, const struct climit_ticket *tk,
               uint64_t now_ms)
{
	struct entry *e;

	if (tk->slot >= t->size)
		return;
	e = &t->ent[tk->slot];
	pthread_mutex_lock(&t->lock);
	clock_at(t, now_ms);
	if (tk->slot < t->used && e->epoch == tk->epoch && e->cur > 0) {
		lru_unlink(t, tk->slot);
		e->cur--;
		lru_push(t, tk->slot);
	}
	pthread_mutex_unlock(&t->lock);
}

/* While selecting, a row's net holds the raw network, formatted after the
 * lock is released. */
struct raw_net {
	uint8_t family;
	uint8_t addr[16];
};
_Static_assert(sizeof(struct raw_net) <= sizeof(((struct climit_row *)0)->net),
               "a row's net holds a raw network");

/* > 0 when a holds more (current sessions, then sessions in the period,
 * then refusals), < 0 when b does, 0 when they are level. */
static int
counts_cmp(const struct climit_row *a, const struct climit_row *b)
{
	if (a->cur != b->cur)
		return a->cur > b->cur ? 1 : -1;
	if (a->in_period != b->in_period)
		return a->in_period > b->in_period ? 1 : -1;
	if (a->refused != b->refused)
		return a->refused > b->refused ? 1 : -1;
	return 0;
}

/* > 0 when a is busier than b (ties: the lower address first). */
static int
busier(const struct climit_row *a, const struct climit_row *b)
{
	int c = counts_cmp(a, b);

	if (c != 0)
		return c;
	/* family, then address: lower first */
	return -memcmp(a->net, b->net, sizeof(struct raw_net));
}

int
climit_row_cmp(const void *pa, const void *pb)
{
	const struct climit_row *a = pa, *b = pb;
	int c = counts_cmp(a, b);

	return c != 0 ? -c : strcmp(a->net, b->net);
}

static int
cmp_rows(const void *a, const void *b)
{
	return busier(b, a);
}

/* rows[0..k) is a heap whose root is the least busy: sift rows[i] down. */
static void
sift_down(struct climit_row *rows, size_t k, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct climit_row tmp;

		if (l < k && busier(&rows[m], &rows[l]) > 0)
			m = l;
		if (r < k && busier(&rows[m], &rows[r]) > 0)
			m = r;
		if (m == i)
			return;
		tmp = rows[i];
		rows[i] = rows[m];
		rows[m] = tmp;
		i = m;
	}
}

static void
sift_up(struct climit_row *rows, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		struct climit_row tmp;

		if (busier(&rows[p], &rows[i]) <= 0)
			return;
		tmp = rows[i];
		rows[i] = rows[p];
		rows[p] = tmp;
		i = p;
	}
}

size_t
climit_top(struct climit *t, struct climit_row *rows, size_t n, uint64_t now_ms)
{
	size_t k = 0;
	uint64_t now;

	if (n == 0)
		return 0;
	pthread_mutex_lock(&t->lock);
	now = clock_at(t, now_ms);
	for (uint32_t s = 0; s < t->used; s++) {
		const struct entry *e = &t->ent[s];
		struct climit_row row;
		struct raw_net raw;

		memset(&row, 0, sizeof(row));
		raw.family = e->family;
		memcpy(raw.addr, e->addr, 16);
		memcpy(row.net, &raw, sizeof(raw));
		row.cur = e->cur;
		row.in_period = win_count(t, e, now);
		row.refused = e->refused;
		if (k < n) {
			rows[k] = row;
			sift_up(rows, k++);
		} else if (busier(&row, &rows[0]) > 0) {
			rows[0] = row;
			sift_down(rows, k, 0);
		}
	}
	pthread_mutex_unlock(&t->lock);

	qsort(rows, k, sizeof(*rows), cmp_rows);
	for (size_t i = 0; i < k; i++) {
		struct raw_net raw;
		struct cidr c;

		memcpy(&raw, rows[i].net, sizeof(raw));
		memset(&c, 0, sizeof(c));
		c.family = raw.family;
		c.bits =
		    (uint8_t)(raw.family == AF_INET ? t->prefix4 : t->prefix6);
		memcpy(c.addr, raw.addr, 16);
		cidr_format(&c, rows[i].net, sizeof(rows[i].net));
	}
	return k;
}

size_t
climit_size(struct climit *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->used;
	pthread_mutex_unlock(&t->lock);
	return n;
}
