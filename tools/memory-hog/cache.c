/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the caches memory-hog fills.  Each is a chained hash table with an
 * LRU list, protected by its own mutex, which the shrinker callback takes
 * like any other user of the cache (OSv's rule: every cache a shrinker frees
 * from has its own lock).  Memory is counted as the allocator really hands it
 * out: malloc_usable_size() of each block plus the 8-byte chunk header glibc
 * puts in front of it, so the bytes a shrink reports are the bytes that went
 * back to malloc, not a guess.  Before a cache grows it asks
 * shrinker_may_grow(); when the answer is no it replaces its least recently
 * used entries instead, as many as make room for the new one, as a full
 * cache does.  An entry is one block, its header and value together: a
 * header of its own in the heap, between other entries' values, kept pages
 * resident after a shrink freed everything else on them.  The OSv mode
 * cannot ask, and relies on its shrinker alone.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "shrinker.h"

struct entry {
	struct entry *lru_prev, *lru_next;
	struct entry *hash_next;
	uint64_t key;
	size_t charge;         /* bytes counted for this entry */
	size_t value_size;
	unsigned char value[]; /* in the same block: one chunk per entry */
};

/* glibc's chunk header, in front of every block it hands out. */
#define CHUNK_HEADER sizeof(size_t)

static size_t charge_of(void *p)
{
	return malloc_usable_size(p) + CHUNK_HEADER;
}

/* What malloc(n) will take, as charge_of() will count it: a page-rounded
 * mapping from CACHE_MMAP_BYTES on (cache_tune_allocator()), else a
 * 16-byte-aligned heap chunk of at least 32 bytes.  Asking for less than
 * that would let every replacement grow the cache unasked. */
static size_t cost_of(size_t n)
{
	static size_t page;

	if (!page)
		page = (size_t)sysconf(_SC_PAGESIZE);
	if (n >= CACHE_MMAP_BYTES)
		return (n + CHUNK_HEADER + page - 1) / page * page;
	n = (n + CHUNK_HEADER + 15) & ~(size_t)15;
	return n < 32 ? 32 : n;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

void cache_tune_allocator(void)
{
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, CACHE_MMAP_BYTES);
}

bool cache_init(struct cache *c, const char *name, size_t min_value,
		size_t max_value, uint64_t keys, bool ask_before_growing)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->min_value = min_value;
	c->max_value = max_value;
	c->keys = keys;
	c->ask_before_growing = ask_before_growing;
	c->nbuckets = 1u << 16;
	c->buckets = calloc(c->nbuckets, sizeof(struct entry *));
	pthread_mutex_init(&c->lock, NULL);
	return c->buckets != NULL;
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct cache *c, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = e;
	else
		c->lru_tail = e;
	c->lru_head = e;
}

static struct entry **bucket(struct cache *c, uint64_t key)
{
	return &c->buckets[mix(key) & (c->nbuckets - 1)];
}

/* Remove e from the table and the LRU list and free it (lock held).
 * Returns the bytes it held. */
static size_t drop(struct cache *c, struct entry *e)
{
	struct entry **pp = bucket(c, e->key);
	size_t charge = e->charge;

	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	lru_unlink(c, e);
	free(e);
	c->bytes -= charge;
	c->entries--;
	return charge;
}

/* Make room for need bytes within the cache's own memory (lock held): what
 * replacements evicted beyond their needs (the credit) first, then the
 * least recently used entries, as many as it takes (one small victim for a
 * large entry would grow the cache unasked).  False if even an empty cache
 * falls short; the credit then holds what was evicted. */
static bool make_room(struct cache *c, size_t need)
{
	while (c->credit < need && c->lru_tail)
		c->credit += drop(c, c->lru_tail);
	if (c->credit < need)
		return false;
	c->credit -= need;
	return true;
}

static void fill(unsigned char *p, size_t n, uint64_t key)
{
	/* Touch every page, so the memory is really resident. */
	size_t i;

	for (i = 0; i < n; i += 4096)
		p[i] = (unsigned char)(key + i);
	if (n)
		p[n - 1] = (unsigned char)key;
}

bool cache_get(struct cache *c, uint64_t key)
{
	size_t size = c->min_value +
		      (size_t)(mix(key ^ 0x5bd1e995) % (c->max_value - c->min_value + 1));
	struct entry *e;
	bool replacing = false;
	size_t estimate;

	pthread_mutex_lock(&c->lock);
	for (e = *bucket(c, key); e; e = e->hash_next)
		if (e->key == key)
			break;
	if (e) {
		/* A hit: touch it and move it to the front. */
		volatile unsigned char sink = e->value[0];

		(void)sink;
		lru_unlink(c, e);
		lru_push_head(c, e);
		c->hits++;
		pthread_mutex_unlock(&c->lock);
		return true;
	}
	c->misses++;
	estimate = cost_of(sizeof(*e) + size);
	if ((c->cap && c->bytes + estimate > c->cap) ||
	    (c->ask_before_growing && !shrinker_may_grow(estimate))) {
		/* No room: the new entry replaces least recently used ones,
		 * and an empty cache does without.  What earlier replacements
		 * evicted beyond what they needed is this cache's own memory
		 * still: used first, or every replacement would shrink the
		 * cache by its overshoot until nothing is left. */
		if (!make_room(c, estimate)) {
			pthread_mutex_unlock(&c->lock);
			return false;
		}
		c->replaced++;
		replacing = true;
	}
	pthread_mutex_unlock(&c->lock);

	/* Allocate and fill outside the lock: the shrinker may need it. */
	e = malloc(sizeof(*e) + size);
	if (!e)
		return false;
	e->key = key;
	e->value_size = size;
	fill(e->value, size, key);
	e->charge = charge_of(e);

	pthread_mutex_lock(&c->lock);
	/* An entry that came out larger than its estimate takes the
	 * difference from the cache's own memory too. */
	if (e->charge > estimate && (replacing || c->cap) &&
	    !make_room(c, e->charge - estimate))
		c->credit = 0;
	e->hash_next = *bucket(c, key);
	*bucket(c, key) = e;
	lru_push_head(c, e);
	c->bytes += e->charge;
	c->entries++;
	if (c->bytes > c->peak_bytes)
		c->peak_bytes = c->bytes;
	if (c->shrinker)
		shrinker_set_size(c->shrinker, c->bytes);
	pthread_mutex_unlock(&c->lock);
	return false;
}

size_t cache_shrink(struct cache *c, size_t target, bool hard)
{
	size_t freed = 0, before;

	pthread_mutex_lock(&c->lock);
	if (!c->first_shrink_ns) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		c->first_shrink_ns = (uint64_t)ts.tv_sec * 1000000000u +
				     (uint64_t)ts.tv_nsec;
	}
	before = c->bytes;
	c->credit = 0; /* what was evicted and not reused is given back now */
	/* drop() unlinks the tail before freeing it; the analyzer does not
	 * follow that invariant of the list. */
	while (freed < target && c->lru_tail)
		freed += drop(c, c->lru_tail); /* NOLINT(clang-analyzer-unix.Malloc) */
	c->shrink_calls++;
	c->shrink_hard_calls += hard;
	c->shrink_asked += target;
	c->shrink_freed += freed;
	c->shrink_dropped += before - c->bytes;
	if (c->shrinker)
		shrinker_set_size(c->shrinker, c->bytes);
	pthread_mutex_unlock(&c->lock);
	return freed;
}

void cache_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = (struct cache_stats){
		.bytes = c->bytes, .entries = c->entries, .peak_bytes = c->peak_bytes,
		.hits = c->hits, .misses = c->misses, .replaced = c->replaced,
		.shrink_calls = c->shrink_calls,
		.shrink_hard_calls = c->shrink_hard_calls,
		.shrink_asked = c->shrink_asked, .shrink_freed = c->shrink_freed,
		.shrink_dropped = c->shrink_dropped,
		.first_shrink_ns = c->first_shrink_ns,
	};
	c->first_shrink_ns = 0;
	pthread_mutex_unlock(&c->lock);
}

void cache_destroy(struct cache *c)
{
	struct entry *e, *next;
	size_t i;

	/* Free by bucket: every entry is in exactly one chain. */
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = next) {
			next = e->hash_next;
			free(e);
		}
	c->lru_head = c->lru_tail = NULL;
	c->bytes = 0;
	c->entries = 0;
	pthread_mutex_unlock(&c->lock);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
}
