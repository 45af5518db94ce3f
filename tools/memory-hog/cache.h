/* SPDX-License-Identifier: MIT */
/*
 * A cache the way real programs keep one: a hash table of entries with an
 * LRU order, under the cache's own lock, and a shrinker that frees least
 * recently used entries when the library asks.
 */
#ifndef HOG_CACHE_H
#define HOG_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "release.h"
#include "slab.h"

struct shrinker;
struct shrinker_cache;
struct entry;

/* Size classes of a cache of small entries (cache.c, slab.c): blocks
 * CACHE_CLASS_STEP bytes apart, up to CACHE_CLASSES steps. */
#define CACHE_CLASS_STEP 256u
#define CACHE_CLASSES 32u

struct cache {
	const char *name;
	size_t min_value, max_value;  /* value sizes, bytes */
	uint64_t keys;                /* keys are 0 .. keys - 1 */
	bool ask_before_growing;      /* use shrinker_may_grow() */
	size_t cap;                   /* a fixed size, for the benchmarks'
					 baselines; 0 (memory-hog): none */
	bool map_large;               /* entries of CACHE_MMAP_BYTES and more
					 in mappings the cache makes (true
					 from cache_init()); false: from
					 malloc(), where a malloc brake sees
					 them (memory-hog --osv) */

	pthread_mutex_t lock;         /* everything below */
	struct entry **buckets;
	size_t nbuckets;
	struct entry *lru_head, *lru_tail; /* head: most recently used */
	size_t bytes;                 /* memory the entries hold, malloc overhead included */
	size_t credit;                /* evicted by replacements beyond what
					 they needed, not yet reused */
	/* Caches of small entries only (the largest below CACHE_MMAP_BYTES
	 * and CACHE_CLASSES classes): their blocks, in slabs (cache.c,
	 * "Slabs"). */
	bool classed;
	struct slab_pool slabs;
	size_t entries;
	size_t peak_bytes;
	uint64_t hits, misses, replaced;
	uint64_t reused;              /* new values put in a victim's mapping */
	uint64_t shrink_calls, shrink_hard_calls;
	uint64_t shrink_asked, shrink_freed; /* as returned to the library */
	uint64_t shrink_dropped;      /* charges of the entries shrinks evicted */
	uint64_t first_shrink_ns;     /* CLOCK_MONOTONIC of the first shrink
					 since cache_stats() took it, or 0 */
	struct shrinker *shrinker;
	/* What a shrink unmaps, given back at its end in one batch. */
	struct release_batch release;
	/* memory-hog's native and deferred modes: the library's cache
	 * container holds the entries (container.c), with its own shrinker;
	 * the table, the list and the slabs above stay empty. */
	struct shrinker_cache *container;
	uint64_t container_calls;     /* its shrinker's calls at the last
					 cache_stats() */
	uint64_t container_seen_ns;   /* the run of calls seen then */
};

/* Allocator settings for caches that many threads fill and other threads
 * empty: glibc gives each thread an arena of its own, and memory an entry
 * held goes back to the arena it came from, whichever thread frees it; with
 * eight threads most freed memory sat in arenas the allocating threads did
 * not use, so the heap grew while the cache did not (and a 64 MiB cgroup was
 * outgrown).  Two arenas keep what one thread frees usable by the others.
 * Values of CACHE_MMAP_BYTES and more get a mapping of their own (the
 * cache maps them itself, release.h; M_MMAP_THRESHOLD, fixed, does the
 * same for the program's other large blocks): freeing one gives it back
 * to the kernel at once.  In the heap (glibc's default raises the
 * threshold to the largest block freed, so 64-256 KiB values ended up
 * there) replacing values of random sizes left 31 MiB free but resident
 * next to a 197 MiB cache (mallinfo2(), cachebench's samples), which crept
 * over the watermark and was shrunk away about once a second: the
 * saw-tooth.
 * Call once, before any thread starts. */
#define CACHE_MMAP_BYTES (64u << 10)
void cache_tune_allocator(void);

/* Set up an empty cache; false on allocation failure. */
bool cache_init(struct cache *c, const char *name, size_t min_value,
		size_t max_value, uint64_t keys, bool ask_before_growing);
void cache_destroy(struct cache *c);

/* Hand the cache's entries to the library's cache container
 * (shrinker-cache.h, container.c): it grows when the library grants room
 * and frees in a shrinker of its own (deferred: in shrinker_dispatch()),
 * so the program registers none for it.  False if it cannot be made. */
bool cache_use_container(struct cache *c, bool deferred);
/* container.c: cache_get(), cache_stats() and cache_destroy() of a cache
 * in a container. */
bool container_get(struct cache *c, uint64_t key, size_t size);
struct cache_stats;
void container_stats(struct cache *c, struct cache_stats *st);
void container_destroy(struct cache *c);

/* Look key up; on a miss, insert a value for it (its size depends on the
 * key).  Returns true on a hit. */
bool cache_get(struct cache *c, uint64_t key);

/* Give back at least target bytes of what the cache holds (its entries and
 * its slabs' free blocks): free blocks first, then least recently used
 * entries, until it has or the cache is empty; returns the bytes by which
 * what it holds fell, which went back to the kernel (to malloc, for
 * entries that are neither in slabs nor mapped by the cache).  The
 * shrinker callback. */
size_t cache_shrink(struct cache *c, size_t target, bool hard);

/* Whether the table, the LRU list, the counters and every value are as
 * cache_get() left them, after whatever moved entries (the tests' check;
 * takes the lock and walks everything).  Caches of the hand-written kind
 * only (not cache_use_container()). */
bool cache_consistent(struct cache *c);

/* A consistent copy of the counters; also restarts first_shrink_ns. */
struct cache_stats {
	size_t bytes, entries, peak_bytes;
	uint64_t hits, misses, replaced, reused, shrink_calls, shrink_hard_calls;
	uint64_t shrink_asked, shrink_freed, shrink_dropped;
	uint64_t first_shrink_ns; /* since the previous cache_stats(), or 0 */
};
void cache_stats(struct cache *c, struct cache_stats *st);

#endif
