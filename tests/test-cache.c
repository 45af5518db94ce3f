/* SPDX-License-Identifier: MIT */
/*
 * memory-hog's cache (tools/memory-hog/cache.c), on its own: a cache of
 * small entries keeps them in slabs (tools/memory-hog/slab.c) and moves
 * them out of sparse ones, so that what a shrink reports freed is what the
 * process gives back, replacements at a steady size keep its memory flat
 * (the saw-tooth of issue #15), and no entry is lost or damaged by a move,
 * with other threads looking up and inserting meanwhile; a shrink of
 * values in mappings of their own gives them back in batches
 * (tools/memory-hog/release.c) as fully as one at a time.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

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

static bool no_other_allocator(void)
{
	return !(getenv("SANITIZE") && *getenv("SANITIZE")) && !getenv("VALGRIND");
}

/* The most a cache of records may hold in free blocks between shrinks:
 * fewer than two slabs' worth a class (cache.c, REPLACE_COMPACT). */
static size_t free_bound(void)
{
	size_t k, sum = 0;

	for (k = 1; k <= CACHE_CLASSES; k++)
		if (k * CACHE_CLASS_STEP <= 4096 + 2 * CACHE_CLASS_STEP)
			sum += k * CACHE_CLASS_STEP;
	return (2 * SLAB_SLOTS - 1) * sum;
}

/* Fill a records cache (as memory-hog's: 256-4096 bytes) to 48 MiB with
 * two threads and squeeze it in steps, each followed by the trim the
 * library does and by replacements at the new size, as a competitor's take
 * does: no holes are left resident.  Then one shrink of two thirds: the
 * memory goes back at once, before any trim. */
static int shrinks_give_memory_back(void)
{
	struct cache c;
	double rss0, rss1, above0, above1, mib = (double)MiB;
	size_t target, freed;
	int i;

	if (!no_other_allocator())
		return tap_skip_why("RSS with glibc's allocator only");
	cache_tune_allocator();
	CHECK(cache_init(&c, "records", 256, 4096, 1u << 30, false));
	CHECK(c.classed);
	CHECK(two_threads(&c, 48 * MiB, 0));
	malloc_trim(0);
	above0 = (double)rss_bytes() - (double)(c.bytes + c.slabs.free_bytes);
	for (i = 0; i < 30; i++) {
		cache_shrink(&c, (c.bytes + c.slabs.free_bytes) / 30, i % 3 == 0);
		malloc_trim(0);
		c.cap = c.bytes + c.slabs.free_bytes;
		CHECK(two_threads(&c, 0, 1000));
	}
	above1 = (double)rss_bytes() - (double)(c.bytes + c.slabs.free_bytes);
	tap_diag("RSS above what the cache holds: %.1f MiB full, %.1f MiB after 30 "
		 "steps down to %.1f MiB (with malloc's heap, 9 MiB: holes)",
		 above0 / mib, above1 / mib, c.bytes / mib);
	CHECK(above1 < above0 + 1.0 * mib);
	c.cap = 0;
	rss0 = (double)rss_bytes();
	target = c.bytes / 3 * 2;
	freed = cache_shrink(&c, target, false);
	rss1 = (double)rss_bytes();
	tap_diag("asked %.1f MiB, freed %.1f MiB, RSS %.1f -> %.1f MiB (%.0f %% of "
		 "what was freed, no trim), cache %.1f MiB + %.2f MiB of free blocks",
		 target / mib, freed / mib, rss0 / mib, rss1 / mib,
		 (rss0 - rss1) / (double)freed * 100, c.bytes / mib,
		 c.slabs.free_bytes / mib);
	CHECK(rss0 > 0 && rss1 > 0);
	CHECK(freed >= target);
	/* Less than a slab a class stays free. */
	CHECK(rss0 - rss1 >= 0.95 * (double)freed);
	CHECK(c.slabs.free_bytes < free_bound() / 2);
	CHECK(cache_consistent(&c));
	cache_destroy(&c);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

/* After a shrink, replace entries at a fixed size: the cache and its
 * memory stay where they are. */
static int replacements_keep_memory_flat(void)
{
	struct cache c;
	double rss0, rss1, held, mib = (double)MiB;

	if (!no_other_allocator())
		return tap_skip_why("RSS with glibc's allocator only");
	cache_tune_allocator();
	CHECK(cache_init(&c, "records", 256, 4096, 1u << 30, false));
	CHECK(two_threads(&c, 48 * MiB, 0));
	cache_shrink(&c, c.bytes / 3 * 2, false);
	malloc_trim(0);
	c.cap = c.bytes + c.slabs.free_bytes;
	/* The classes' free blocks settle where they come and go. */
	CHECK(two_threads(&c, 0, 10000));
	rss0 = (double)rss_bytes();
	CHECK(two_threads(&c, 0, 100000));
	rss1 = (double)rss_bytes();
	held = (double)(c.bytes + c.slabs.free_bytes);
	tap_diag("cache %.1f MiB and %.2f MiB of free blocks after 2 x 110000 "
		 "replacements at a size of %.1f MiB; RSS %.1f -> %.1f MiB over "
		 "the last 2 x 100000",
		 c.bytes / mib, c.slabs.free_bytes / mib, c.cap / mib, rss0 / mib, rss1 / mib);
	CHECK(rss0 > 0 && rss1 > 0);
	/* What it holds stays at its size, free blocks included... */
	CHECK(held <= (double)c.cap + 1.5 * mib);
	CHECK(held >= (double)c.cap - 1.5 * mib);
	CHECK(c.slabs.free_bytes <= free_bound());
	/* ...and so does its memory (with blocks freed to malloc's heap
	 * between two threads' arenas it grew by 5-7 MiB here). */
	CHECK(rss1 - rss0 < 1.5 * mib);
	CHECK(cache_consistent(&c));
	cache_destroy(&c);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

struct shrinking {
	struct cache *c;
	atomic_bool stop;
	unsigned rounds;
};

static void *shrink_loop(void *arg)
{
	struct shrinking *s = arg;
	uint64_t rng = 777;

	while (!atomic_load(&s->stop)) {
		size_t bytes;

		pthread_mutex_lock(&s->c->lock);
		bytes = s->c->bytes;
		pthread_mutex_unlock(&s->c->lock);
		cache_shrink(s->c, (size_t)(next_key(&rng) % (bytes / 4 + 1)),
			     next_key(&rng) & 1);
		s->rounds++;
		sleep_ms(1);
	}
	return NULL;
}

/* Entries moved out of sparse slabs keep their key, value and place in
 * the LRU order, with two threads inserting and a third shrinking. */
static int moves_keep_entries(void)
{
	struct cache c;
	struct shrinking s = { &c, false, 0 };
	uint64_t rng = 4242, keys[1000];
	pthread_t t;
	unsigned i, hits = 0;
	size_t freed, half;

	CHECK(cache_init(&c, "records", 256, 4096, 1u << 30, false));
	CHECK(two_threads(&c, 8 * MiB, 0));
	/* Shrinks while two threads fill and replace: blocks pending while
	 * a thread fills them are neither moved nor unmapped. */
	c.cap = 12 * MiB;
	CHECK(pthread_create(&t, NULL, shrink_loop, &s) == 0);
	CHECK(two_threads(&c, 0, 20000));
	atomic_store(&s.stop, true);
	pthread_join(t, NULL);
	tap_diag("%u shrinks beside 2 x 20000 lookups", s.rounds);
	CHECK(s.rounds > 0);
	CHECK(cache_consistent(&c));
	c.cap = 0;
	CHECK(two_threads(&c, 10 * MiB, 0));
	/* The thousand most recently used keys survive a shrink of half, moved or
	 * not, and are hits. */
	for (i = 0; i < 1000; i++) {
		keys[i] = next_key(&rng) % c.keys;
		cache_get(&c, keys[i]);
	}
	half = c.bytes / 2;
	freed = cache_shrink(&c, half, false);
	tap_diag("a shrink of %.1f MiB freed %.1f MiB, %.1f MiB left",
		 half / (double)MiB, freed / (double)MiB, c.bytes / (double)MiB);
	CHECK(freed >= half);
	CHECK(cache_consistent(&c));
	for (i = 0; i < 1000; i++)
		hits += cache_get(&c, keys[i]);
	CHECK(hits == 1000);
	/* Everything: nothing mapped is left. */
	cache_shrink(&c, SIZE_MAX, true);
	CHECK(c.entries == 0 && c.bytes == 0);
	CHECK(c.slabs.mapped_bytes == 0 && c.slabs.free_bytes == 0);
	CHECK(cache_consistent(&c));
	cache_destroy(&c);
	/* A cache of values that get mappings of their own has no slabs. */
	CHECK(cache_init(&c, "blobs", 64 << 10, 256 << 10, 1u << 13, false));
	CHECK(!c.classed);
	while (c.bytes < 8 * MiB)
		cache_get(&c, next_key(&rng) % c.keys);
	c.cap = c.bytes;
	for (i = 0; i < 500; i++)
		cache_get(&c, next_key(&rng) % c.keys);
	CHECK(cache_consistent(&c));
	cache_destroy(&c);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

/* A cache of values in mappings of their own (memory-hog's blobs, 64-256
 * KiB), filled and replaced by two threads, shrunk by two thirds: what the
 * shrink reports freed leaves RSS at once, in batches of RELEASE_BATCH
 * mappings (more than one here) and one munmap() at a time alike, and with
 * the values from malloc() (memory-hog --osv). */
static int shrinks_release_mappings(void)
{
	struct cache c;
	double mib = (double)MiB;
	int pass;

	if (!no_other_allocator())
		return tap_skip_why("RSS with glibc's allocator only");
	cache_tune_allocator();
	for (pass = 0; pass < 3; pass++) {
		bool batched = pass == 0, kernel_took;
		double rss0, rss1;
		size_t target, freed, n;

		release_batched(batched);
		CHECK(cache_init(&c, "blobs", 64 << 10, 256 << 10, 1u << 16, false));
		CHECK(!c.classed);
		c.map_large = pass < 2;
		CHECK(two_threads(&c, 128 * MiB, 0));
		c.cap = c.bytes;
		CHECK(two_threads(&c, 0, 500));
		c.cap = 0;
		n = c.entries;
		rss0 = (double)rss_bytes();
		target = c.bytes / 3 * 2;
		freed = cache_shrink(&c, target, pass == 1);
		rss1 = (double)rss_bytes();
		/* Whether the kernel took the batch: it refuses before 6.13. */
		kernel_took = release_batched(true);
		tap_diag("%s: %zu of %zu entries, asked %.1f MiB, freed %.1f MiB, RSS "
			 "%.1f -> %.1f MiB (%.1f %% of what was freed)%s",
			 batched ? "in batches" : c.map_large ?
			 "one munmap() at a time" : "from malloc()",
			 n - c.entries, n, target / mib, freed / mib, rss0 / mib,
			 rss1 / mib, (rss0 - rss1) / (double)freed * 100,
			 batched && !kernel_took ? "; this kernel refused "
			 "process_madvise(), munmap() did it" : "");
		CHECK(rss0 > 0 && rss1 > 0);
		CHECK(freed >= target);
		CHECK(n - c.entries > RELEASE_BATCH);
		CHECK(rss0 - rss1 >= 0.98 * (double)freed);
		CHECK(rss0 - rss1 <= 1.02 * (double)freed + 1.0 * mib);
		CHECK(c.release.n == 0);
		/* What is left is still there, value and all. */
		CHECK(cache_consistent(&c));
		cache_destroy(&c);
	}
	return TAP_PASS;
fail:
	release_batched(true);
	return TAP_FAIL;
}

/* A cache of values in mappings of their own, at a fixed size, replaced
 * by two threads: most new values go into a victim's mapping, so a
 * replacement faults few pages in, and the cache and its memory stay at
 * its size. */
static int replacements_reuse_mappings(void)
{
	struct cache c;
	struct cache_stats st0, st1;
	struct rusage ru0, ru1;
	double rss0, rss1, mib = (double)MiB, share, faults;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (!no_other_allocator())
		return tap_skip_why("RSS with glibc's allocator only");
	cache_tune_allocator();
	CHECK(cache_init(&c, "blobs", 64 << 10, 256 << 10, 1u << 16, false));
	CHECK(two_threads(&c, 64 * MiB, 0));
	c.cap = c.bytes;
	CHECK(two_threads(&c, 0, 500));
	cache_stats(&c, &st0);
	rss0 = (double)rss_bytes();
	getrusage(RUSAGE_SELF, &ru0);
	CHECK(two_threads(&c, 0, 5000));
	getrusage(RUSAGE_SELF, &ru1);
	rss1 = (double)rss_bytes();
	cache_stats(&c, &st1);
	share = (double)(st1.reused - st0.reused) / (double)(st1.misses - st0.misses);
	faults = (double)(ru1.ru_minflt - ru0.ru_minflt) / (double)(st1.misses - st0.misses);
	tap_diag("%.0f %% of %llu misses at %.1f MiB went into a victim's mapping; "
		 "%.1f page faults a miss (a new mapping: %zu on average); cache "
		 "%.1f MiB, RSS %.1f -> %.1f MiB",
		 share * 100, (unsigned long long)(st1.misses - st0.misses),
		 c.cap / mib, faults, (160u << 10) / page, c.bytes / mib,
		 rss0 / mib, rss1 / mib);
	CHECK(rss0 > 0 && rss1 > 0);
	CHECK(share >= 0.5);
	CHECK(faults < 0.5 * (double)((160u << 10) / page));
	/* Each thread may grow it by the value it fills meanwhile. */
	CHECK(c.bytes <= c.cap + 2 * (260u << 10));
	CHECK(c.bytes >= c.cap - 2 * (260u << 10));
	CHECK(rss1 - rss0 < 1.5 * mib);
	CHECK(cache_consistent(&c));
	cache_destroy(&c);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "a records cache squeezed in steps leaves no holes, and a shrink gives back what it reports freed at once", shrinks_give_memory_back },
	{ "after a shrink, replacements at a fixed size keep the cache and RSS flat", replacements_keep_memory_flat },
	{ "entries moved out of sparse slabs keep key, value and LRU place, beside inserting threads", moves_keep_entries },
	{ "a shrink of values in mappings of their own gives back what it reports, in batches or one by one", shrinks_release_mappings },
	{ "replacements put most new values in a victim's mapping, and the cache and RSS stay at its size", replacements_reuse_mappings },
};

TAP_MAIN(tests)
