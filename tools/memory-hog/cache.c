/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the caches memory-hog fills.  Each is a chained hash table with an
 * LRU list, protected by its own mutex, which the shrinker callback takes
 * like any other user of the cache (OSv's rule: every cache a shrinker frees
 * from has its own lock).  Memory is counted as it is really handed out: a
 * slab's block (below), the whole pages of a mapping of its own (an entry
 * of CACHE_MMAP_BYTES or more), or malloc_usable_size() of a block plus the
 * 8-byte chunk header glibc puts in front of it, so the bytes a shrink
 * reports are the bytes that went back, not a guess.  Before a cache grows
 * it asks shrinker_may_grow(); when the answer is no it replaces its
 * least recently used entries instead, as many as make room for the new
 * one, as a full cache does.  An entry is one block, its header and value
 * together: a header of its own in the heap, between other entries'
 * values, kept pages resident after a shrink freed everything else on
 * them.  The OSv mode cannot ask, and relies on its shrinker alone.
 *
 * Slabs: in a cache whose entries are small (memory-hog's records,
 * 256-4096 bytes), blocks come in size classes CACHE_CLASS_STEP apart, from
 * slabs of their own (slab.c), not from malloc's heap.  In the heap, a
 * shrink freed blocks all over it and the pages that kept one live entry
 * stayed resident: 9-14 MiB above the cache while `make demo`'s competitor
 * held its memory, which the caches could not use.  A slab's entries are
 * moved out when its class has a slab's worth of blocks free, and the slab
 * is unmapped: a shrink compacts every class, so what it reports freed is
 * what the process gave back, and a replacement compacts its victim's
 * class once two slabs' worth are free (the gap keeps a class at the
 * boundary from mapping and unmapping a slab with every entry).  The
 * cache's memory is its entries plus the free blocks of its slabs, at most
 * about 2 x 16 a class between shrinks: that is the size its shrinker
 * reports, and what a shrink frees first.  This replaces keeping evicted
 * blocks for reuse (the saw-tooth of issue #15: each of memory-hog's two
 * workers allocated from a malloc arena of its own and freed the other's
 * entries into the other's, so after each trim new entries faulted fresh
 * pages in while the evicted ones left holes), which stopped the creep but
 * not the holes.
 *
 * Giving back: an entry of CACHE_MMAP_BYTES or more (memory-hog's blobs) is
 * a mapping the cache makes itself, not malloc()'s (unless map_large is
 * off: memory-hog --osv, whose growth only the malloc brake sees), so
 * that a shrink can queue every mapping it empties, slabs included, and
 * give them back in one batch at its end (release.c: one TLB flush for the
 * batch instead of one per munmap(), a third of the CPU per MiB freed).  A
 * replacement gives its victims back the same way, after unlocking and
 * before it maps the new entry: with a munmap() under the lock, the
 * shrinker waited for it, and eight workers on two cores were OOM-killed
 * more often with batches in the shrink alone (4 of 30 rounds) than with
 * neither (3 of 85).
 *
 * Reuse: a replacement in a cache that maps its values looks at its
 * FIT_SCAN least recently used entries for one whose mapping fits the new
 * value (at least its size, at most an eighth more: the rest is resident
 * and counted as the new value's, so a looser fit holds less cache in the
 * same memory), and puts the new value there, pages and all.  A new
 * mapping faults each of its pages in (memory-hog's blobs, 64-256 KiB, at
 * 250-340 MiB/s here: half a millisecond each), and the victim's unmapping
 * flushes the TLBs again: `make demo`'s two workers, at 16000 operations a
 * second, kept both cores busy doing only that (perf: three quarters of
 * their time in page faults and TLB flushes), and a competitor beside them
 * took twice as long as alone.  With reuse one fits for 91 % of the misses
 * (test-cache) and the workers use 30 % of a core.  Keeping victims aside
 * for reuse instead (a pool of 32: 83 % fitted, 39 % of a core) held about
 * 5 MiB idle, 2-6 points of the caches' share under the bench's pressure;
 * the entries at the end of the LRU list are the same choice of sizes,
 * and they serve hits until they go.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "release.h"
#include "shrinker.h"

struct entry {
	struct entry *lru_prev, *lru_next;
	struct entry *hash_next;
	struct slab *slab;     /* its slab in a classed cache, else NULL */
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
	if (n >= CACHE_MMAP_BYTES)
		return mapped_size(n + CHUNK_HEADER);
	n = (n + CHUNK_HEADER + 15) & ~(size_t)15;
	return n < 32 ? 32 : n;
}

/* A replacement compacts its victim's class from this many free blocks
 * (see DESIGN), a shrink from one slab's worth. */
#define REPLACE_COMPACT ((size_t)2 * SLAB_SLOTS)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether an entry of n bytes, header included, is a mapping the cache
 * makes (mapped_alloc()) rather than a malloc() chunk; never in a classed
 * cache, whose entries are all below CACHE_MMAP_BYTES. */
static bool maps(const struct cache *c, size_t n)
{
	return c->map_large && n >= CACHE_MMAP_BYTES;
}

/* What an entry with a value of size bytes takes: a block of its class
 * in a classed cache, the whole pages of its own mapping, else a malloc()
 * chunk as cost_of() counts it. */
static size_t entry_cost(const struct cache *c, size_t size)
{
	size_t n = sizeof(struct entry) + size;

	return c->classed ? slab_block_size(&c->slabs, n) :
	       maps(c, n) ? mapped_size(n) : cost_of(n);
}

/* Free an entry's block, out of the table already: a mapping (its charge
 * is its length) into rb, to go back with the others, when rb is given
 * (else unmapped at once). */
static void entry_free(const struct cache *c, struct entry *e,
		       struct release_batch *rb)
{
	if (!maps(c, sizeof(struct entry) + e->value_size))
		free(e);
	else
		release_add(rb, e, e->charge);
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
	size_t most;

	memset(c, 0, sizeof(*c));
	c->name = name;
	c->min_value = min_value;
	c->max_value = max_value;
	c->keys = keys;
	c->ask_before_growing = ask_before_growing;
	c->map_large = true;
	/* Slabs where every entry is small enough for a class. */
	most = sizeof(struct entry) + max_value;
	c->classed = most < CACHE_MMAP_BYTES &&
		     most <= (size_t)CACHE_CLASSES * CACHE_CLASS_STEP;
	if (c->classed && !slab_pool_init(&c->slabs, CACHE_CLASS_STEP, CACHE_CLASSES))
		return false;
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

/* What the cache holds: its entries and its slabs' free blocks (lock
 * held).  The size its shrinker reports. */
static size_t held_bytes(const struct cache *c)
{
	return c->bytes + (c->classed ? c->slabs.free_bytes : 0);
}

static void report_size(struct cache *c)
{
	if (c->shrinker)
		shrinker_set_size(c->shrinker, held_bytes(c));
}

/* A compaction moved entry from to to, in slab s (lock held): point the
 * table and the LRU list at its new place. */
static void entry_moved(void *ctx, void *from, void *to, struct slab *s)
{
	struct cache *c = ctx;
	struct entry *e = to, **pp = bucket(c, e->key);

	e->slab = s;
	while (*pp != from)
		pp = &(*pp)->hash_next;
	*pp = e;
	if (e->lru_prev)
		e->lru_prev->lru_next = e;
	else
		c->lru_head = e;
	if (e->lru_next)
		e->lru_next->lru_prev = e;
	else
		c->lru_tail = e;
}

/* Compact every class from trigger free blocks on (lock held); the slabs
 * emptied go into rb when given. */
static void compact_all(struct cache *c, size_t trigger, struct release_batch *rb)
{
	unsigned k;

	for (k = 0; c->classed && k < c->slabs.nclasses; k++)
		slab_compact(&c->slabs, k, trigger, entry_moved, c, rb);
}

/* Remove e from the table and the LRU list (lock held).  Returns the
 * bytes it held. */
static size_t unlink_entry(struct cache *c, struct entry *e)
{
	struct entry **pp = bucket(c, e->key);

	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	lru_unlink(c, e);
	c->bytes -= e->charge;
	c->entries--;
	return e->charge;
}

/* Remove e as unlink_entry() does and free its block (lock held); a block
 * of a slab makes its class compact from trigger free blocks on (0: not
 * now).  What would be unmapped goes into rb, for the caller to give
 * back.  Returns the bytes it held. */
static size_t drop(struct cache *c, struct entry *e, size_t trigger,
		   struct release_batch *rb)
{
	struct slab *s = e->slab;
	size_t charge = unlink_entry(c, e);

	if (s) {
		unsigned k = s->cls;

		slab_free(&c->slabs, s, e, rb);
		if (trigger)
			slab_compact(&c->slabs, k, trigger, entry_moved, c, rb);
	} else {
		entry_free(c, e, rb);
	}
	return charge;
}

/* Make room for need bytes within the cache's own memory (lock held): what
 * replacements evicted beyond their needs (the credit) first, then the
 * least recently used entries, as many as it takes (one small victim for a
 * large entry would grow the cache unasked).  False if even an empty cache
 * falls short; the credit then holds what was evicted.  What the victims
 * leave to unmap goes into rb, for the caller to give back once it has
 * unlocked: a munmap() waits for the other CPUs to flush their TLBs, and
 * the cache's other users, its shrinker first, need not wait with it. */
static bool make_room(struct cache *c, size_t need, struct release_batch *rb)
{
	while (c->credit < need && c->lru_tail)
		c->credit += drop(c, c->lru_tail, REPLACE_COMPACT, rb);
	if (c->credit < need)
		return false;
	c->credit -= need;
	return true;
}

/* Entries a replacement looks at for a mapping to reuse (see DESIGN). */
#define FIT_SCAN 32

/* The least recently used of the cache's last FIT_SCAN entries whose
 * mapping fits need bytes (lock held; a cache that maps its values), or
 * NULL. */
static struct entry *fitting_victim(const struct cache *c, size_t need)
{
	struct entry *e = c->lru_tail;
	unsigned i;

	for (i = 0; e && i < FIT_SCAN; i++, e = e->lru_prev)
		if (maps(c, sizeof(struct entry) + e->value_size) &&
		    e->charge >= need && e->charge - need <= need / 8)
			return e;
	return NULL;
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

	if (c->container)
		return container_get(c, key, size);
	struct entry *e = NULL;
	struct slab *s = NULL;
	struct release_batch victims; /* only n is read before it is written */
	bool replacing = false, mapped = maps(c, sizeof(struct entry) + size);
	struct entry *reuse = NULL;
	size_t estimate;

	victims.n = 0;
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
	estimate = entry_cost(c, size);
	if ((c->cap && held_bytes(c) + estimate > c->cap) ||
	    (c->ask_before_growing && !shrinker_may_grow(estimate))) {
		/* No room: the new entry replaces least recently used ones,
		 * and an empty cache does without: the value goes into a
		 * victim's mapping where one fits, else what earlier
		 * replacements evicted beyond what they needed is used first
		 * (it is this cache's own memory still, or every replacement
		 * would shrink the cache by its overshoot until nothing is
		 * left). */
		reuse = mapped ? fitting_victim(c, estimate) : NULL;
		if (reuse) {
			estimate = unlink_entry(c, reuse);
			c->reused++;
		} else if (!make_room(c, estimate, &victims)) {
			pthread_mutex_unlock(&c->lock);
			release_flush(&victims);
			return false;
		}
		c->replaced++;
		replacing = true;
	}
	/* A slab's block is taken under the lock and pending until the entry
	 * is in the table: a compaction neither moves nor unmaps it. */
	if (c->classed)
		e = slab_alloc(&c->slabs, sizeof(struct entry) + size, &s);
	pthread_mutex_unlock(&c->lock);
	/* The victims go before the new entry comes. */
	release_flush(&victims);

	/* Allocate and fill outside the lock: the shrinker may need it.  A
	 * value of its own mapping can be given back in a batch with others
	 * (release.c). */
	if (reuse)
		e = reuse;
	else if (mapped)
		e = mapped_alloc(sizeof(struct entry) + size);
	else if (!c->classed)
		e = malloc(sizeof(struct entry) + size);
	if (!e)
		return false;
	e->key = key;
	e->value_size = size;
	e->slab = s;
	fill(e->value, size, key);
	e->charge = s || mapped ? estimate : charge_of(e);

	pthread_mutex_lock(&c->lock);
	/* An entry that came out larger than its estimate takes the
	 * difference from the cache's own memory too. */
	if (e->charge > estimate && (replacing || c->cap) &&
	    !make_room(c, e->charge - estimate, &victims))
		c->credit = 0;
	e->hash_next = *bucket(c, key);
	*bucket(c, key) = e;
	lru_push_head(c, e);
	if (s)
		slab_publish(s);
	c->bytes += e->charge;
	c->entries++;
	if (c->bytes > c->peak_bytes)
		c->peak_bytes = c->bytes;
	report_size(c);
	pthread_mutex_unlock(&c->lock);
	release_flush(&victims);
	return false;
}

size_t cache_shrink(struct cache *c, size_t target, bool hard)
{
	size_t before, freed;

	pthread_mutex_lock(&c->lock);
	if (!c->first_shrink_ns)
		c->first_shrink_ns = now_ns();
	before = held_bytes(c);
	c->credit = 0; /* what was evicted and not reused is given back now */
	/* Free blocks go first, a slab at a time; then the least recently
	 * used entries, a round of them for what is still missing, the
	 * classes compacted after each round (compacting after each entry
	 * would move entries that the same round evicts next).  What is
	 * returned is what the cache's memory fell by: less than a slab a
	 * class may stay free, counted as the cache's. */
	compact_all(c, SLAB_SLOTS, &c->release);
	while (before - held_bytes(c) < target && c->lru_tail) {
		size_t want = target - (before - held_bytes(c)), dropped = 0;

		/* drop() unlinks the tail before freeing it; the analyzer
		 * does not follow that invariant of the list. */
		while (dropped < want && c->lru_tail)
			dropped += drop(c, c->lru_tail, 0, &c->release); /* NOLINT(clang-analyzer-unix.Malloc) */
		c->shrink_dropped += dropped;
		compact_all(c, SLAB_SLOTS, &c->release);
	}
	/* What the shrink evicted goes back in one batch (release.c). */
	release_flush(&c->release);
	freed = before - held_bytes(c);
	c->shrink_calls++;
	c->shrink_hard_calls += hard;
	c->shrink_asked += target;
	c->shrink_freed += freed;
	report_size(c);
	pthread_mutex_unlock(&c->lock);
	return freed;
}

/* fill()'s pattern, where fill() wrote it. */
static bool filled(const struct entry *e)
{
	size_t i, n = e->value_size;

	for (i = 0; i < n; i += 4096)
		if (e->value[i] != (unsigned char)(e->key + i))
			return false;
	return !n || e->value[n - 1] == (unsigned char)e->key;
}

bool cache_consistent(struct cache *c)
{
	struct entry *e, *prev = NULL;
	size_t n = 0, in_table = 0, bytes = 0, i;
	bool ok = true;

	pthread_mutex_lock(&c->lock);
	for (e = c->lru_head; e && ok; prev = e, e = e->lru_next) {
		struct entry *t;

		for (t = *bucket(c, e->key); t && t != e; t = t->hash_next)
			;
		ok = e->lru_prev == prev && t == e && filled(e) &&
		     (e->slab != NULL) == c->classed;
		bytes += e->charge;
		n++;
	}
	ok = ok && c->lru_tail == prev;
	for (i = 0; ok && i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->hash_next)
			in_table++;
	ok = ok && n == c->entries && in_table == n && bytes == c->bytes;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

void cache_stats(struct cache *c, struct cache_stats *st)
{
	if (c->container) {
		container_stats(c, st);
		return;
	}
	pthread_mutex_lock(&c->lock);
	*st = (struct cache_stats){
		.bytes = c->bytes, .entries = c->entries, .peak_bytes = c->peak_bytes,
		.hits = c->hits, .misses = c->misses, .replaced = c->replaced,
		.reused = c->reused,
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

	if (c->container)
		container_destroy(c);
	/* Free by bucket: every entry is in exactly one chain; a slab's go
	 * with their slabs. */
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = next) {
			next = e->hash_next;
			if (!e->slab)
				entry_free(c, e, NULL);
		}
	if (c->classed)
		slab_pool_destroy(&c->slabs);
	c->lru_head = c->lru_tail = NULL;
	c->bytes = 0;
	c->entries = 0;
	pthread_mutex_unlock(&c->lock);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
}
