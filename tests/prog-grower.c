/* SPDX-License-Identifier: MIT */
/*
 * A cache that grows at full speed, for the end-to-end tests: blocks of
 * --block bytes in FIFO order under one lock, inserted as fast as the CPU
 * allows until --total bytes have been inserted and at least --duration ms
 * have passed.  In the native mode an insert that shrinker_may_grow() refuses
 * overwrites the oldest block in place (a cache at capacity replaces entries;
 * evicting and allocating anew would fault in memory that malloc_trim() had
 * just given back); in
 * --osv mode nothing is asked, the shrinker registered through
 * osv_register_shrinker() is all that keeps it alive; in --deferred mode the
 * shrinker only records its target and this loop frees.
 *
 * Prints "t=<ms> cache=<bytes>" every 20 ms and a last line
 * "peak=<bytes> allocated=<bytes> calls=<n> freed=<bytes>".
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "osv/shrinker.h"
#include "shrinker.h"

struct block {
	struct block *next;
	size_t size;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *head, *tail;
static size_t cache_bytes, peak_bytes, freed_total;
static unsigned long calls;
static struct shrinker *me;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Lock held.  Bytes really given back to malloc, overhead included. */
static size_t evict_oldest(void)
{
	struct block *b = head;
	size_t n;

	if (!b)
		return 0;
	head = b->next;
	if (!head)
		tail = NULL;
	n = b->size;
	cache_bytes -= n;
	free(b);
	return n;
}

static size_t shrink_locked(size_t target)
{
	size_t freed = 0;

	while (freed < target && head)
		freed += evict_oldest();
	freed_total += freed;
	calls++;
	if (me)
		shrinker_set_size(me, cache_bytes);
	return freed;
}

static size_t native_shrink(size_t target, bool hard, void *ud)
{
	size_t freed;

	(void)hard;
	(void)ud;
	pthread_mutex_lock(&lock);
	freed = shrink_locked(target);
	pthread_mutex_unlock(&lock);
	return freed;
}

static size_t osv_shrink(size_t target, bool hard)
{
	return native_shrink(target, hard, NULL);
}

static void insert(size_t size)
{
	struct block *b = malloc(size);

	if (!b)
		return;
	memset(b, 0xa5, size);
	b->size = malloc_usable_size(b);
	b->next = NULL;
	pthread_mutex_lock(&lock);
	if (tail)
		tail->next = b;
	else
		head = b;
	tail = b;
	cache_bytes += b->size;
	if (cache_bytes > peak_bytes)
		peak_bytes = cache_bytes;
	if (me)
		shrinker_set_size(me, cache_bytes);
	pthread_mutex_unlock(&lock);
}

/* Overwrite the oldest block with new data and make it the newest. */
static bool replace_oldest(void)
{
	struct block *b;

	pthread_mutex_lock(&lock);
	b = head;
	if (!b) {
		pthread_mutex_unlock(&lock);
		return false;
	}
	if (b->next) {
		head = b->next;
		tail->next = b;
		tail = b;
		b->next = NULL;
	}
	memset(b + 1, 0x5a, b->size - sizeof(*b));
	pthread_mutex_unlock(&lock);
	return true;
}

int main(int argc, char **argv)
{
	size_t block = 1 << 20, total = 0, allocated = 0;
	unsigned duration = 0, idle = 0;
	const char *mode = "native";
	uint64_t start, next_sample = 0;
	int fd = -1, i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mode"))
			mode = argv[i + 1];
		else if (!strcmp(argv[i], "--total"))
			total = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--block"))
			block = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--duration"))
			duration = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--idle"))
			idle = (unsigned)strtoul(argv[i + 1], NULL, 0);
	}
	if (!strcmp(mode, "osv")) {
		if (!osv_register_shrinker("grower", osv_shrink))
			return 2;
	} else if (!strcmp(mode, "deferred")) {
		if (shrinker_register(&me, "grower", native_shrink, NULL,
				      SHRINKER_DEFERRED) < 0)
			return 2;
		fd = shrinker_get_fd();
	} else if (shrinker_register(&me, "grower", native_shrink, NULL, 0) < 0) {
		return 2;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	start = now_ms();
	while (allocated < total || now_ms() - start < duration) {
		uint64_t t = now_ms() - start;

		if (t >= next_sample) {
			pthread_mutex_lock(&lock);
			printf("t=%llu cache=%zu\n", (unsigned long long)t, cache_bytes);
			pthread_mutex_unlock(&lock);
			next_sample = t + 20;
		}
		if (fd >= 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, 0) == 1)
				shrinker_dispatch();
		}
		if (strcmp(mode, "osv") != 0 && !shrinker_may_grow(block)) {
			/* At capacity: the new entry takes the place of the
			 * oldest one, in its memory, as a real cache does. */
			bool replaced = replace_oldest();

			/* At most a thousand replacements a second: a
			 * cache at capacity is not a memory bandwidth test. */
			usleep(1000);
			if (!replaced)
				continue;
		} else {
			insert(block);
		}
		allocated += block;
	}
	if (idle) {
		/* Sit still: the library should not wake up at all. */
		struct shrinker_global_stats g0, g1;

		shrinker_get_global_stats(&g0);
		usleep(idle * 1000u);
		shrinker_get_global_stats(&g1);
		printf("idle_wakeups=%llu measurements=%llu\n",
		       (unsigned long long)(g1.wakeups - g0.wakeups),
		       (unsigned long long)(g1.measurements - g0.measurements));
	}
	pthread_mutex_lock(&lock);
	printf("peak=%zu allocated=%zu calls=%lu freed=%zu\n", peak_bytes,
	       allocated, calls, freed_total);
	pthread_mutex_unlock(&lock);
	return 0;
}
