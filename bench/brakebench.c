/* SPDX-License-Identifier: MIT */
/*
 * What the malloc brake costs when nothing is short: THREADS threads do
 * malloc() of 16 B to 4 KiB and free() of an older block, from a ring of
 * 1024 per thread, for MS milliseconds, and the program prints the total
 * operations per second.  bench/brake.sh runs it with and without
 * LD_PRELOAD=libshrinker-brake.so, interleaved, and reports the ratio.
 * A shrinker is registered, so the library is armed as in a real program.
 *
 * Usage: brakebench THREADS MS
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "shrinker.h"

#define RING 1024

static atomic_bool stop;
static _Atomic unsigned long long total;

static size_t shrink(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	return target;
}

static void *work(void *arg)
{
	void *ring[RING] = { 0 };
	unsigned long long n = 0, x = (unsigned long long)(uintptr_t)arg * 2654435761u + 1;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned i;

		for (i = 0; i < 256; i++) {
			unsigned slot = (unsigned)(x >> 20) % RING;
			size_t size;

			x = x * 6364136223846793005ull + 1442695040888963407ull;
			size = 16 + (size_t)((x >> 33) % 4080);
			free(ring[slot]);
			ring[slot] = malloc(size);
			if (ring[slot])
				*(volatile char *)ring[slot] = 1;
		}
		n += 256;
	}
	for (unsigned i = 0; i < RING; i++)
		free(ring[i]);
	atomic_fetch_add(&total, n);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 2, i;
	unsigned ms = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	pthread_t t[64];
	struct shrinker *s;

	if (threads < 1 || threads > 64 || shrinker_register(&s, "bench", shrink, NULL, 0) < 0)
		return 2;
	for (i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1));
	nanosleep(&ts, NULL);
	atomic_store(&stop, true);
	for (i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("%.0f\n", (double)atomic_load(&total) * 1000.0 / ms);
	shrinker_unregister(s);
	return 0;
}
