/* SPDX-License-Identifier: MIT */
/*
 * What a hot call costs per call when there is room to spare, from THREADS
 * threads at once: each thread has a cache of its own (a registered
 * shrinker) and calls CALL in a loop for MS milliseconds, reporting 64
 * bytes of growth each time.  Prints "ns_per_call=<ns of a core per call>"
 * (the run's wall time times the cores the threads can use, min(THREADS,
 * CPUs), over all the calls: with more threads than cores they take turns,
 * which is no cost of the call), the figure bench/calls.sh compares between
 * 1 and more threads and between two builds of the library.
 *
 * CALL is one of may_grow (shrinker_may_grow()), may_grow_cache
 * (shrinker_may_grow_cache() on the thread's cache), set_size
 * (shrinker_set_size() of the thread's cache, one entry larger each time)
 * and account (shrinker_account(64, 0)).  The budget is SHRINKER_LIMIT (the
 * script sets 1 TiB: the room never runs out).
 *
 * Usage: callbench CALL THREADS MS
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shrinker.h"

enum call { MAY_GROW, MAY_GROW_CACHE, SET_SIZE, ACCOUNT };

static enum call call;
static atomic_bool go, stop;
static _Atomic unsigned long long total;

static size_t shrink(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	return target;
}

static void *work(void *arg)
{
	struct shrinker *s = NULL;
	unsigned long long n = 0;
	size_t size = 0;
	char name[32];
	unsigned i;

	snprintf(name, sizeof(name), "bench-%u", (unsigned)(uintptr_t)arg);
	if (shrinker_register(&s, name, shrink, NULL, 0) < 0) {
		fprintf(stderr, "callbench: shrinker_register failed\n");
		exit(1);
	}
	while (!atomic_load_explicit(&go, memory_order_acquire))
		;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (i = 0; i < 256; i++) {
			switch (call) {
			case MAY_GROW:
				if (!shrinker_may_grow(64))
					abort();
				break;
			case MAY_GROW_CACHE:
				if (!shrinker_may_grow_cache(s, 64))
					abort();
				break;
			case SET_SIZE:
				size += 64;
				shrinker_set_size(s, size);
				break;
			case ACCOUNT:
				shrinker_account(64, 0);
				break;
			}
		}
		n += 256;
	}
	atomic_fetch_add(&total, n);
	shrinker_unregister(s);
	return NULL;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const char *names[] = { "may_grow", "may_grow_cache", "set_size", "account" };
	struct shrinker_memory mem;
	pthread_t th[64];
	unsigned threads, i, c;
	struct timespec d;
	double t0, t1;
	long ms, cores;

	if (argc != 4 || (threads = (unsigned)atoi(argv[2])) < 1 || threads > 64 ||
	    (ms = atol(argv[3])) < 1) {
		fprintf(stderr, "usage: callbench may_grow|may_grow_cache|set_size|account "
				"THREADS MS\n");
		return 2;
	}
	for (c = 0; c < 4 && strcmp(argv[1], names[c]); c++)
		;
	if (c == 4) {
		fprintf(stderr, "callbench: unknown call %s\n", argv[1]);
		return 2;
	}
	call = (enum call)c;
	for (i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, work, (void *)(uintptr_t)i);
	/* Measured once before the clock starts: the room is known. */
	if (shrinker_get_memory(&mem) < 0) {
		fprintf(stderr, "callbench: no limit measured (set SHRINKER_LIMIT)\n");
		return 1;
	}
	t0 = now_ns();
	atomic_store_explicit(&go, true, memory_order_release);
	d.tv_sec = ms / 1000;
	d.tv_nsec = ms % 1000 * 1000000;
	nanosleep(&d, NULL);
	atomic_store(&stop, true);
	t1 = now_ns();
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 1 || cores > (long)threads)
		cores = (long)threads;
	printf("call=%s threads=%u ns_per_call=%.1f\n", names[c], threads,
	       (t1 - t0) * (double)cores / (double)atomic_load(&total));
	return 0;
}
