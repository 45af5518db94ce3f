/* SPDX-License-Identifier: MIT */
/*
 * Caches that grow at full speed, for the end-to-end tests: --threads N
 * caches (default 1), each a FIFO of --block byte blocks under its own lock
 * with its own shrinker and its own thread inserting as fast as the CPU
 * allows, until --total bytes have been inserted and at least --duration ms
 * have passed.  Modes:
 *  - native: an insert that shrinker_may_grow() refuses overwrites the
 *    oldest block in place (a cache at capacity replaces entries; evicting
 *    and allocating anew would fault in memory that malloc_trim() had just
 *    given back);
 *  - never: native shrinkers, but nothing is ever asked before growing;
 *  - osv: nothing is asked, and one shrinker registered through
 *    osv_register_shrinker() frees from every cache, as an OSv program has it;
 *  - deferred: the shrinkers only record their targets; the main thread
 *    runs shrinker_dispatch() when the library's fd is readable (with
 *    --threads 1 the inserting thread is the main thread and also asks
 *    shrinker_may_grow(); with more, the threads never ask).
 *
 * --idle MS then sits still for MS and reports the reclaimer thread's
 * wake-ups and CPU time over that time ("idle_wakeups=<n> measurements=<n>
 * idle_cpu_us=<us>"); --after-idle BYTES then starts the threads again, at
 * full speed, until that many more bytes are inserted.
 *
 * SIGUSR1 stops the inserting early, as if --total and --duration were met
 * (a test that waits for the caches to fill gives a long --duration and
 * stops them when it has seen what it needs).
 *
 * Prints "t=<ms> cache=<bytes> freed=<bytes> mono=<CLOCK_MONOTONIC ms>
 * soft=<bytes>" every 20 ms (freed: by the shrinkers so far; soft: with
 * --print-soft 1, the soft watermark by shrinker_get_memory(), which
 * measures; 0 otherwise) and last lines
 * "peak=<bytes> allocated=<bytes> calls=<n> freed=<bytes>" and
 * "brake_waits=<n> brake_ms=<ms> probes=<n> wakeups=<n>".
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "osv/shrinker.h"
#include "shrinker.h"

#define MAX_CACHES 64

struct block {
	struct block *next;
	size_t size;
};

struct cache {
	pthread_mutex_t lock;
	struct block *head, *tail;
	size_t bytes, freed;
	unsigned long calls;
	struct shrinker *me;
	pthread_t thread;
	size_t allocated;
};

static struct cache caches[MAX_CACHES];
static unsigned ncaches = 1;
static size_t block = 1 << 20, total, after_idle;
static unsigned duration;
static bool print_soft;
static const char *mode = "native";
static atomic_bool stop;
static uint64_t start;
/* All caches together, and the most they ever held. */
static _Atomic size_t sum_bytes, peak_bytes;
/* What the shrinkers freed, all caches together. */
static _Atomic size_t freed_bytes;

static void add_bytes(size_t n)
{
	size_t now = atomic_fetch_add(&sum_bytes, n) + n;
	size_t peak = atomic_load(&peak_bytes);

	while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now))
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Lock held.  Bytes really given back to malloc, overhead included. */
static size_t evict_oldest(struct cache *c)
{
	struct block *b = c->head;
	size_t n;

	if (!b)
		return 0;
	c->head = b->next;
	if (!c->head)
		c->tail = NULL;
	n = b->size;
	c->bytes -= n;
	atomic_fetch_sub(&sum_bytes, n);
	free(b);
	return n;
}

static size_t cache_shrink(struct cache *c, size_t target)
{
	size_t freed = 0;

	pthread_mutex_lock(&c->lock);
	while (freed < target && c->head)
		freed += evict_oldest(c);
	c->freed += freed;
	atomic_fetch_add(&freed_bytes, freed);
	c->calls++;
	if (c->me)
		shrinker_set_size(c->me, c->bytes);
	pthread_mutex_unlock(&c->lock);
	return freed;
}

static size_t native_shrink(size_t target, bool hard, void *ud)
{
	(void)hard;
	return cache_shrink(ud, target);
}

/* One OSv shrinker for every cache: its part to each, by size. */
static size_t osv_shrink(size_t target, bool hard)
{
	size_t sizes[MAX_CACHES], sum = 0, freed = 0;
	unsigned i;

	(void)hard;
	for (i = 0; i < ncaches; i++) {
		pthread_mutex_lock(&caches[i].lock);
		sizes[i] = caches[i].bytes;
		pthread_mutex_unlock(&caches[i].lock);
		sum += sizes[i];
	}
	for (i = 0; i < ncaches && sum; i++)
		freed += cache_shrink(&caches[i],
				      (size_t)((double)target * sizes[i] / sum) + 1);
	return freed;
}

static void insert(struct cache *c, size_t size)
{
	struct block *b = malloc(size);

	if (!b)
		return;
	memset(b, 0xa5, size);
	b->size = malloc_usable_size(b);
	b->next = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->tail)
		c->tail->next = b;
	else
		c->head = b;
	c->tail = b;
	c->bytes += b->size;
	add_bytes(b->size);
	if (c->me)
		shrinker_set_size(c->me, c->bytes);
	pthread_mutex_unlock(&c->lock);
}

/* Overwrite the oldest block with new data and make it the newest. */
static bool replace_oldest(struct cache *c)
{
	struct block *b;

	pthread_mutex_lock(&c->lock);
	b = c->head;
	if (!b) {
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	if (b->next) {
		c->head = b->next;
		c->tail->next = b;
		c->tail = b;
		b->next = NULL;
	}
	memset(b + 1, 0x5a, b->size - sizeof(*b));
	pthread_mutex_unlock(&c->lock);
	return true;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

static bool asks(void)
{
	return !strcmp(mode, "native") ||
	       (!strcmp(mode, "deferred") && ncaches == 1);
}

static bool done(struct cache *c)
{
	return atomic_load(&stop) ||
	       (c->allocated >= total / ncaches && now_ms() - start >= duration);
}

/* CPU time of this process's thread named name, in microseconds, from
 * /proc/self/task/TID/schedstat (exact, where stat has clock ticks); -1 if
 * there is none. */
static long long thread_cpu_us(const char *name)
{
	char path[64], buf[128];
	long long best = -1;
	unsigned tid;
	FILE *f;

	for (tid = (unsigned)getpid(); tid < (unsigned)getpid() + 4096; tid++) {
		unsigned long long ns;

		snprintf(path, sizeof(path), "/proc/self/task/%u/comm", tid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f) || strncmp(buf, name, strlen(name))) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%u/schedstat", tid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			best = (long long)(ns / 1000);
		fclose(f);
	}
	return best;
}

/* One step of the inserting loop of cache c. */
static void step(struct cache *c)
{
	if (asks() && !shrinker_may_grow(block)) {
		/* At capacity: the new entry takes the place of the oldest
		 * one, in its memory, as a real cache does.  At most a
		 * thousand replacements a second: a cache at capacity is not
		 * a memory bandwidth test. */
		bool replaced = replace_oldest(c);

		usleep(1000);
		if (!replaced)
			return;
	} else {
		insert(c, block);
	}
	c->allocated += block;
}

static void *inserter(void *arg)
{
	struct cache *c = arg;

	while (!done(c))
		step(c);
	return NULL;
}

static int register_all(void)
{
	unsigned i;
	char name[32];

	if (!strcmp(mode, "osv"))
		return osv_register_shrinker("grower", osv_shrink) ? 0 : -1;
	for (i = 0; i < ncaches; i++) {
		snprintf(name, sizeof(name), "grower-%u", i);
		if (shrinker_register(&caches[i].me, name, native_shrink, &caches[i],
				      !strcmp(mode, "deferred") ? SHRINKER_DEFERRED
								: 0) < 0)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct shrinker_global_stats g0, g1;
	uint64_t next_sample = 0;
	size_t allocated = 0, freed = 0;
	unsigned long calls = 0;
	unsigned idle = 0, i;
	int fd = -1;

	for (i = 1; i + 1 < (unsigned)argc; i += 2) {
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
		else if (!strcmp(argv[i], "--after-idle"))
			after_idle = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--threads"))
			ncaches = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--print-soft"))
			print_soft = strcmp(argv[i + 1], "0") != 0;
	}
	if (ncaches < 1 || ncaches > MAX_CACHES || block < sizeof(struct block))
		return 2;
	for (i = 0; i < ncaches; i++)
		pthread_mutex_init(&caches[i].lock, NULL);
	if (register_all() < 0)
		return 2;
	if (!strcmp(mode, "deferred"))
		fd = shrinker_get_fd();

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGUSR1, on_usr1);
	start = now_ms();
	/* With one cache the main thread inserts itself, as before. */
	for (i = 0; ncaches > 1 && i < ncaches; i++)
		if (pthread_create(&caches[i].thread, NULL, inserter, &caches[i]) != 0)
			return 2;
	for (;;) {
		uint64_t t = now_ms() - start;
		bool all_done = true;

		if (t >= next_sample) {
			struct timespec mono;

			struct shrinker_memory mem = { 0 };

			clock_gettime(CLOCK_MONOTONIC, &mono);
			if (print_soft && shrinker_get_memory(&mem) < 0)
				mem.soft_watermark = 0;
			printf("t=%llu cache=%zu freed=%zu mono=%llu soft=%llu\n",
			       (unsigned long long)t, atomic_load(&sum_bytes),
			       atomic_load(&freed_bytes),
			       (unsigned long long)mono.tv_sec * 1000 +
				       (unsigned long long)mono.tv_nsec / 1000000,
			       (unsigned long long)mem.soft_watermark);
			next_sample = t + 20;
		}
		if (fd >= 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, ncaches > 1 ? 1 : 0) == 1)
				shrinker_dispatch();
		}
		if (ncaches == 1) {
			if (done(&caches[0]))
				break;
			step(&caches[0]);
			continue;
		}
		for (i = 0; i < ncaches; i++)
			all_done &= done(&caches[i]);
		if (all_done)
			break;
		if (fd < 0)
			usleep(1000);
	}
	atomic_store(&stop, true);
	for (i = 0; ncaches > 1 && i < ncaches; i++)
		pthread_join(caches[i].thread, NULL);
	shrinker_get_global_stats(&g0);
	if (idle) {
		/* Sit still: the library should hardly wake up.  The window
		 * starts half a second after the threads stopped, once the
		 * work they caused is done. */
		long long cpu0, cpu1;

		usleep(500000);
		shrinker_get_global_stats(&g0);
		cpu0 = thread_cpu_us("shrinker");

		usleep(idle * 1000u);
		shrinker_get_global_stats(&g1);
		cpu1 = thread_cpu_us("shrinker");
		printf("idle_wakeups=%llu measurements=%llu idle_cpu_us=%lld\n",
		       (unsigned long long)(g1.wakeups - g0.wakeups),
		       (unsigned long long)(g1.measurements - g0.measurements),
		       cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1);
	}
	if (after_idle) {
		/* The threads start again, at full speed. */
		atomic_store(&stop, false);
		total = after_idle;
		duration = 0;
		start = now_ms();
		for (i = 0; i < ncaches; i++)
			caches[i].allocated = 0;
		for (i = 0; i < ncaches; i++)
			if (pthread_create(&caches[i].thread, NULL, inserter, &caches[i]) != 0)
				return 2;
		for (i = 0; i < ncaches; i++)
			pthread_join(caches[i].thread, NULL);
		printf("after_idle=%zu\n", after_idle);
		shrinker_get_global_stats(&g0);
	}
	for (i = 0; i < ncaches; i++) {
		allocated += caches[i].allocated;
		freed += caches[i].freed;
		calls += caches[i].calls;
	}
	printf("peak=%zu allocated=%zu calls=%lu freed=%zu\n",
	       atomic_load(&peak_bytes), allocated, calls, freed);
	printf("brake_waits=%llu brake_ms=%llu probes=%llu wakeups=%llu\n",
	       (unsigned long long)g0.brake_waits,
	       (unsigned long long)(g0.brake_wait_ns / 1000000),
	       (unsigned long long)g0.probes, (unsigned long long)g0.wakeups);
	return 0;
}
