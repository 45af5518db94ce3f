/* SPDX-License-Identifier: MIT */
/*
 * memory-hog's cache (tools/memory-hog/cache.c), on its own: a cache whose
 * entries live in malloc's heap keeps the block of an entry a replacement
 * evicted for the next entry of its size class, so that after a shrink and
 * the trim that follows it, replacing entries does not carve fresh pages
 * out of the trimmed free space while the evicted ones leave holes that
 * stay resident (the saw-tooth of issue #15); and what it keeps counts in
 * what it holds and is freed first by a shrink.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "cache.h"
#include "helpers.h"
#include "tap.h"

static uint64_t next_key(uint64_t *s)
{
	/* xorshift64*, keys over the whole key space: nearly all misses */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

struct load {
	struct cache *c;
	uint64_t rng;
	size_t until;   /* fill to this size, or */
	unsigned ops;   /* this many lookups */
};

static void *run_load(void *arg)
{
	struct load *l = arg;
	unsigned i;

	if (l->until) {
		for (;;) {
			size_t bytes;

			pthread_mutex_lock(&l->c->lock);
			bytes = l->c->bytes;
			pthread_mutex_unlock(&l->c->lock);
			if (bytes >= l->until)
				break;
			cache_get(l->c, next_key(&l->rng) % l->c->keys);
		}
	}
	for (i = 0; i < l->ops; i++)
		cache_get(l->c, next_key(&l->rng) % l->c->keys);
	return NULL;
}

/* Two threads, as in memory-hog: each allocates from an arena of its own
 * and frees what the other allocated into the other's. */
static bool two_threads(struct cache *c, size_t until, unsigned ops)
{
	struct load l[2] = { { c, 0x9e3779b97f4a7c15ull, until, ops },
			     { c, 0x2545f4914f6cdd1dull, until, ops } };
	pthread_t t;

	if (pthread_create(&t, NULL, run_load, &l[1]) != 0)
		return false;
	run_load(&l[0]);
	return pthread_join(t, NULL) == 0;
}

/* Fill a records cache (as memory-hog's: 256-4096 bytes) to 48 MiB, shrink
 * it to a third, trim, and replace entries at a fixed size. */
static int replacements_after_a_shrink(void)
{
	struct cache c;
	double rss0, rss1, held, mib = (double)MiB;

	/* A sanitizer's allocator is not the one this is about. */
	if ((getenv("SANITIZE") && *getenv("SANITIZE")) || getenv("VALGRIND"))
		return tap_skip_why("glibc's allocator only; SANITIZE=%s",
				    getenv("SANITIZE") ? getenv("SANITIZE") : "");
	cache_tune_allocator();
	CHECK(cache_init(&c, "records", 256, 4096, 1u << 30, false));
	CHECK(two_threads(&c, 48 * MiB, 0));
	cache_shrink(&c, c.bytes / 3 * 2, false);
	malloc_trim(0);
	c.cap = c.bytes;
	/* The spare blocks' classes fill to where they come and go. */
	CHECK(two_threads(&c, 0, 10000));
	rss0 = (double)rss_bytes();
	CHECK(two_threads(&c, 0, 100000));
	rss1 = (double)rss_bytes();
	held = (double)(c.bytes + c.spare_bytes);
	tap_diag("cache %.1f MiB and %.2f MiB of spare blocks after 2 x 110000 "
		 "replacements at a size of %.1f MiB; RSS %.1f -> %.1f MiB over "
		 "the last 2 x 100000",
		 c.bytes / mib, c.spare_bytes / mib, c.cap / mib, rss0 / mib, rss1 / mib);
	CHECK(rss0 > 0 && rss1 > 0);
	/* The cache stays at its size, spare blocks included (they come and
	 * go with the classes' random walks: a MiB or so at most)... */
	CHECK(held <= (double)c.cap + 1.5 * mib);
	CHECK(held >= (double)c.cap - 1.5 * mib);
	/* ...and so does its memory: 0.7-1.3 MiB more here, where without the
	 * spare blocks it grew by 5-7 MiB (the trimmed free space of one
	 * thread's arena faulted back in while the entries it evicted left
	 * holes in the other's). */
	CHECK(rss1 - rss0 < 2.5 * mib);
	cache_destroy(&c);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

/* The spare blocks are the cache's memory: a hard shrink frees them first
 * and counts them, the accounting drops by what it returns, and none are
 * kept again until the cache may grow or a quarter second passed. */
static int shrink_frees_spares_first(void)
{
	struct cache c;
	struct cache_stats st;
	uint64_t rng = 12345;
	size_t spare, freed;
	uint64_t t0;
	unsigned i;

	CHECK(cache_init(&c, "records", 256, 4096, 1u << 30, false));
	while (c.bytes < 8 * MiB)
		cache_get(&c, next_key(&rng) % c.keys);
	c.cap = c.bytes;
	for (i = 0; i < 20000; i++)
		cache_get(&c, next_key(&rng) % c.keys);
	spare = c.spare_bytes;
	tap_diag("%.2f MiB of spare blocks", spare / (double)MiB);
	CHECK(spare > 0);
	/* A soft shrink leaves them: freed at every soft shrink, they were
	 * taken back after each, and the heap crept into the next. */
	freed = cache_shrink(&c, 64 << 10, false);
	CHECK(freed >= 64 << 10);
	CHECK(c.spare_bytes == spare);
	t0 = now_ms();
	freed = cache_shrink(&c, spare + 1, true);
	CHECK(freed >= spare + 1);
	CHECK(c.spare_bytes == 0);
	cache_stats(&c, &st);
	CHECK(st.shrink_freed == st.shrink_dropped);
	/* For a quarter second, unless the cache may grow, replacements keep
	 * nothing: what they kept would take back what the shrink freed. */
	c.cap = c.bytes / 2;
	for (i = 0; i < 2000; i++)
		cache_get(&c, next_key(&rng) % c.keys);
	if (now_ms() - t0 < 200)
		CHECK(c.spare_bytes == 0);
	/* Then they keep spares again, growth or not... */
	sleep_ms(300);
	for (i = 0; i < 20000; i++)
		cache_get(&c, next_key(&rng) % c.keys);
	CHECK(c.spare_bytes > 0);
	/* ...and at once when the cache may grow. */
	t0 = now_ms();
	cache_shrink(&c, 1, true);
	CHECK(c.spare_bytes == 0);
	c.cap = c.bytes + 4 * MiB;
	for (i = 0; i < 20000; i++)
		cache_get(&c, next_key(&rng) % c.keys);
	tap_diag("spare blocks again %llu ms after a shrink, the cache granted growth",
		 (unsigned long long)(now_ms() - t0));
	CHECK(c.spare_bytes > 0);
	cache_destroy(&c);
	/* A cache of values that get mappings of their own keeps none. */
	CHECK(cache_init(&c, "blobs", 64 << 10, 256 << 10, 1u << 13, false));
	CHECK(!c.classed);
	while (c.bytes < 8 * MiB)
		cache_get(&c, next_key(&rng) % c.keys);
	c.cap = c.bytes;
	for (i = 0; i < 500; i++)
		cache_get(&c, next_key(&rng) % c.keys);
	CHECK(c.spare_bytes == 0);
	cache_destroy(&c);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "after a shrink and a trim, replacements reuse evicted blocks: RSS stays", replacements_after_a_shrink },
	{ "spare blocks are freed first by a hard shrink, counted, and kept again once the cache may grow or after a quarter second", shrink_frees_spares_first },
};

TAP_MAIN(tests)
