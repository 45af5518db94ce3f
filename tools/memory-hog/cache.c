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
 *
 * Spare blocks: in a cache whose values live in malloc's heap (below
 * CACHE_MMAP_BYTES), blocks come in size classes CACHE_SPARE_STEP apart,
 * and the block of an entry that a replacement evicts is kept, up to
 * SPARE_MAX a class, for the next entry of its class.  Freed to malloc, it
 * joined the free chunks around it, which the library's last trim had
 * given back to the kernel, and the next entry was carved from those,
 * faulting fresh pages in, while the evicted ones left holes in pages that
 * stay resident: after a squeeze, memory-hog's records heap grew 6 MiB a
 * half second over its entries, crossed the watermark and was shrunk by
 * 5 MiB, again and again: the saw-tooth of issue #15.  (With two threads
 * each allocates from an arena of its own and frees the other's entries
 * into the other's.)  A kept block is reused as it is, resident, by
 * whichever thread needs one, and nothing is carved.  The price: a block
 * rounds up to its class, 128 bytes on average, and the spares, about
 * 0.6 MiB for the records, sit unused; they count in the size the
 * shrinker reports, and a hard shrink frees them first.  After a hard
 * shrink the replacements free what they evict, as before, until the
 * cache is granted growth again or a quarter second passed without one:
 * spares refilled during a squeeze were growth that nobody asked for,
 * taking back what each shrink had just freed.
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

/* Spare blocks kept a class (see DESIGN): a class's count goes up with
 * its evicted entries and down with its new ones, a random walk that this
 * bounds; malloc sees only the walks that leave 0 .. SPARE_MAX, a few in a
 * hundred replacements. */
#define SPARE_MAX 32u
/* After a hard shrink no spare is kept for this long, unless the cache is
 * granted growth first: a squeeze's requests come tens of milliseconds
 * apart, and spares kept between them would take back what each freed; a
 * cache that sits at its watermark (never granted growth) must get them
 * back, or its heap creeps into the next shrink.  Soft shrinks leave the
 * spares alone: when each freed them and turned them off, the heap crept
 * by more than the band while the pool was rebuilt, into the next soft
 * shrink, and the saw-tooth went on (1 demo run in 5). */
#define SPARE_QUIET_NS 250000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A chunk of n bytes rounded up to a whole number of classes. */
static size_t class_round(size_t n)
{
	return (n + CACHE_SPARE_STEP - 1) / CACHE_SPARE_STEP * CACHE_SPARE_STEP;
}

/* What to ask malloc for an entry with a value of size bytes: in a classed
 * cache, a request whose chunk is a whole number of classes (cost_of() of
 * it is that number). */
static size_t request_of(const struct cache *c, size_t size)
{
	size_t n = sizeof(struct entry) + size;

	return c->classed ? class_round(n + CHUNK_HEADER) - CHUNK_HEADER : n;
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
	/* Size classes where every block is in the heap and has a class. */
	most = class_round(sizeof(struct entry) + max_value + CHUNK_HEADER);
	c->classed = most < CACHE_MMAP_BYTES &&
		     most / CACHE_SPARE_STEP < CACHE_SPARE_CLASSES;
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

/* What the cache holds, spare blocks included: the size its shrinker
 * reports (lock held). */
static void report_size(struct cache *c)
{
	if (c->shrinker)
		shrinker_set_size(c->shrinker, c->bytes + c->spare_bytes);
}

/* Remove e from the table and the LRU list (lock held); keep: for the next
 * entry of its class if there is room among the spares (a replacement),
 * else freed.  Returns the bytes it held. */
static size_t drop(struct cache *c, struct entry *e, bool keep)
{
	struct entry **pp = bucket(c, e->key);
	size_t charge = e->charge, k = charge / CACHE_SPARE_STEP;

	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	lru_unlink(c, e);
	c->bytes -= charge;
	c->entries--;
	if (keep && c->classed && !c->spare_on_ns && charge % CACHE_SPARE_STEP == 0 &&
	    k < CACHE_SPARE_CLASSES && c->nspare[k] < SPARE_MAX) {
		e->lru_next = c->spare[k];
		c->spare[k] = e;
		c->nspare[k]++;
		c->spare_bytes += charge;
	} else {
		free(e);
	}
	return charge;
}

/* A spare block for a chunk of charge bytes, or NULL (lock held). */
static struct entry *take_spare(struct cache *c, size_t charge)
{
	size_t k = charge / CACHE_SPARE_STEP;
	struct entry *e;

	if (!c->classed || k >= CACHE_SPARE_CLASSES || !c->spare[k])
		return NULL;
	e = c->spare[k];
	c->spare[k] = e->lru_next;
	c->nspare[k]--;
	c->spare_bytes -= charge;
	return e;
}

/* Free every spare block (lock held); returns the bytes they held. */
static size_t free_spares(struct cache *c)
{
	size_t freed = c->spare_bytes, k;

	for (k = 0; k < CACHE_SPARE_CLASSES; k++) {
		while (c->spare[k]) {
			struct entry *e = c->spare[k];

			c->spare[k] = e->lru_next;
			free(e);
		}
		c->nspare[k] = 0;
	}
	c->spare_bytes = 0;
	return freed;
}

/* Make room for need bytes within the cache's own memory (lock held): what
 * replacements evicted beyond their needs (the credit) first, then the
 * least recently used entries, as many as it takes (one small victim for a
 * large entry would grow the cache unasked).  False if even an empty cache
 * falls short; the credit then holds what was evicted. */
static bool make_room(struct cache *c, size_t need)
{
	while (c->credit < need && c->lru_tail)
		c->credit += drop(c, c->lru_tail, true);
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
	size_t estimate, request = request_of(c, size);

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
	estimate = cost_of(request);
	if ((c->cap && c->bytes + c->spare_bytes + estimate > c->cap) ||
	    (c->ask_before_growing && !shrinker_may_grow(estimate))) {
		/* No room: the new entry replaces least recently used ones,
		 * and an empty cache does without.  What earlier replacements
		 * evicted beyond what they needed is this cache's own memory
		 * still: used first, or every replacement would shrink the
		 * cache by its overshoot until nothing is left. */
		if (c->spare_on_ns && now_ns() >= c->spare_on_ns)
			c->spare_on_ns = 0; /* no hard shrink lately */
		if (!make_room(c, estimate)) {
			pthread_mutex_unlock(&c->lock);
			return false;
		}
		c->replaced++;
		replacing = true;
	} else {
		c->spare_on_ns = 0; /* the pressure is over */
	}
	e = take_spare(c, estimate);
	pthread_mutex_unlock(&c->lock);

	/* Allocate and fill outside the lock: the shrinker may need it. */
	if (!e)
		e = malloc(request);
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
	report_size(c);
	pthread_mutex_unlock(&c->lock);
	return false;
}

size_t cache_shrink(struct cache *c, size_t target, bool hard)
{
	size_t freed = 0, before;

	pthread_mutex_lock(&c->lock);
	if (!c->first_shrink_ns)
		c->first_shrink_ns = now_ns();
	before = c->bytes + c->spare_bytes;
	c->credit = 0; /* what was evicted and not reused is given back now */
	/* A hard call frees the spare blocks first: they hold no entry.
	 * Until the cache may grow again, or SPARE_QUIET_NS passed without
	 * one, replacements then free what they evict: spares kept anew
	 * would take back, unasked, what this call says it freed.  A soft
	 * call leaves them: freed at every soft shrink, they were taken back
	 * after each, and the heap crept into the next (see SPARE_QUIET_NS). */
	if (hard) {
		freed = free_spares(c);
		c->spare_on_ns = now_ns() + SPARE_QUIET_NS;
	}
	/* drop() unlinks the tail before freeing it; the analyzer does not
	 * follow that invariant of the list. */
	while (freed < target && c->lru_tail)
		freed += drop(c, c->lru_tail, false); /* NOLINT(clang-analyzer-unix.Malloc) */
	c->shrink_calls++;
	c->shrink_hard_calls += hard;
	c->shrink_asked += target;
	c->shrink_freed += freed;
	c->shrink_dropped += before - (c->bytes + c->spare_bytes);
	report_size(c);
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
	free_spares(c);
	c->lru_head = c->lru_tail = NULL;
	c->bytes = 0;
	c->entries = 0;
	pthread_mutex_unlock(&c->lock);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
}
