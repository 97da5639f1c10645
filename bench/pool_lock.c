/* How long a session can wait for the pool's lock while the control
 * thread installs a reloaded configuration or takes a snapshot for the
 * status page: a thread asks the pool something trivial in a loop (as a
 * session does when it picks a server or gives a slot back) and keeps the
 * longest wait; the main thread builds two configurations of N servers
 * (parsing and building happen outside the lock, as in a reload), installs
 * the second over the first, then takes snapshots.
 *
 *   make bench/pool_lock && bench/pool_lock 2001 20001
 *
 * Not a test (timings depend on the machine); figures in bench/README.md. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "pool.h"

static struct {
	struct pool *pool;
	struct server *srv;
	atomic_bool stop;
	_Atomic double worst; /* ms, written by the probe only */
} b;

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static struct cfg *
config(int n, int weight, double *parse_ms)
{
	size_t cap = (size_t)n * 100 + 100, o = 0;
	char *t = malloc(cap);
	struct cfg_diag d;
	struct cfg *c;
	double t0;

	if (t == NULL)
		exit(1);
	o += (size_t)snprintf(t + o, cap - o,
	                      "backends = ( { name = \"big\"; servers = (\n");
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(
		    t + o, cap - o,
		    "{ name = \"s%d\"; address = \"127.0.%d.%d:%d\"; "
		    "weight = %d; }%s\n",
		    i, (i / 250) % 250, i % 250 + 1, 10000 + i % 50000, weight,
		    i + 1 < n ? "," : "");
	snprintf(t + o, cap - o, "); } );\n");
	cfg_diag_init(&d);
	t0 = now_ms();
	c = cfg_load_string(t, "bench", &d);
	*parse_ms = now_ms() - t0;
	for (size_t i = 0; c == NULL && i < d.n; i++)
		fprintf(stderr, "%s\n", d.msgs[i]);
	cfg_diag_free(&d);
	free(t);
	if (c == NULL)
		exit(1);
	return c;
}

static void *
probe(void *arg)
{
	char text[32];

	(void)arg;
	while (!atomic_load(&b.stop)) {
		double t0 = now_ms(), d;

		pool_state_text(b.pool, b.srv, text, sizeof(text));
		d = now_ms() - t0;
		if (d > atomic_load(&b.worst))
			atomic_store(&b.worst, d);
	}
	return NULL;
}

static double
take_worst(void)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	double w;

	nanosleep(&pause, NULL);
	w = atomic_load(&b.worst);
	atomic_store(&b.worst, 0);
	return w;
}

static void
run(int n)
{
	double parse1, parse2, idle, install, snaps, t0, build;
	struct cfg *c1 = config(n, 1, &parse1), *c2 = config(n, 2, &parse2);
	struct pool_set *s1, *s2;
	struct pool_snap snap;
	struct pool_work w;
	pthread_t th;

	b.pool = pool_new();
	s1 = pool_set_new(c1, NULL);
	t0 = now_ms();
	s2 = pool_set_new(c2, NULL);
	build = now_ms() - t0;
	if (b.pool == NULL || s1 == NULL || s2 == NULL)
		exit(1);
	pool_work_init(&w);
	pool_install(b.pool, s1, &w);
	b.srv = backend_server(pool_set_backend(s1, 0), 0);
	atomic_store(&b.stop, false);
	atomic_store(&b.worst, 0);
	if (pthread_create(&th, NULL, probe, NULL) != 0)
		exit(1);
	idle = take_worst();
	pool_work_init(&w);
	pool_install(b.pool, s2, &w);
	install = take_worst();
	for (int i = 0; i < 5; i++) {
		if (pool_snapshot(b.pool, &snap) < 0)
			exit(1);
		pool_snap_free(&snap);
	}
	snaps = take_worst();
	atomic_store(&b.stop, true);
	pthread_join(th, NULL);
	printf("%6d servers: parse %.1f ms, build %.1f ms (no lock); longest "
	       "wait for the lock: idle %.3f ms, during the install %.3f ms, "
	       "during 5 snapshots %.3f ms\n",
	       n, parse2, build, idle, install, snaps);
	pool_set_free(s1); /* retired: nothing refers to it */
	pool_free(b.pool);
	pool_set_free(s2);
	cfg_free(c1);
	cfg_free(c2);
}

int
main(int argc, char *argv[])
{
	if (argc < 2) {
		run(2001);
		run(20001);
	}
	for (int i = 1; i < argc; i++)
		run(atoi(argv[i]));
	return 0;
}
