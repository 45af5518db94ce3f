/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the load.  Each worker thread does `rate` operations a second:
 * pick a cache (the first one a fifth of the time: few large blobs, many
 * small records), pick a key with a skewed distribution (popular keys are
 * looked up much more often, so a bigger cache gets a better hit rate and a
 * shrink shows up as misses), look it up, insert it on a miss.  Operations
 * are paced in batches against the clock, so a slow moment is caught up and
 * the rate holds on average.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cache.h"
#include "workers.h"

struct worker {
	pthread_t thread;
	uint64_t rng;
};

static struct worker *workers;
static unsigned nworkers, ops_rate, n_caches;
static struct cache *the_caches;
static atomic_bool stopping;

static uint64_t next_random(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	double start = now_s();
	uint64_t done = 0;

	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		uint64_t due = (uint64_t)((now_s() - start) * ops_rate);
		unsigned batch = 0;

		while (done < due && batch++ < 256) {
			uint64_t r = next_random(&w->rng);
			/* A fifth of the operations go to the first cache. */
			struct cache *c = &the_caches[(r & 0xff) < 52 || n_caches == 1 ? 0 : 1];
			/* u^3 for u uniform in [0, 1): skewed to small keys. */
			double u = (double)(r >> 11) / 9007199254740992.0;

			cache_get(c, (uint64_t)(u * u * u * (double)c->keys));
			done++;
		}
		if (done >= due) {
			struct timespec ts = { 0, 1000000 }; /* 1 ms */

			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

bool workers_start(struct cache *caches, unsigned ncaches, unsigned n,
		   unsigned rate, uint64_t seed)
{
	unsigned i;

	the_caches = caches;
	n_caches = ncaches;
	ops_rate = rate;
	workers = calloc(n, sizeof(*workers));
	if (!workers)
		return false;
	for (i = 0; i < n; i++) {
		workers[i].rng = seed * 0x9e3779b97f4a7c15ull + i + 1;
		if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0)
			break;
		nworkers++;
	}
	return nworkers == n;
}

void workers_stop(void)
{
	unsigned i;

	atomic_store(&stopping, true);
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
	free(workers);
	workers = NULL;
	nworkers = 0;
}
