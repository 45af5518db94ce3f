/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: where the container finds a key.  A key's 64-bit hash (seeded at
 * random per cache, so that a program's keys cannot be chosen to fall in
 * one chain) picks its shard by its top bits and its chain in the shard's
 * table by its low half, which the entry keeps; a table doubles when it
 * holds more entries than chains and halves when it holds fewer than an
 * eighth, so chains stay short whatever the size, and the cost of a lookup
 * does not grow with the entries.  A table is resized a few chains at a
 * time, as Redis's dict is: the new table takes every new entry, each
 * insert moves four chains of the old one and each eviction's walk 1024
 * (most of them empty by then), and a lookup looks in both while the old
 * one has chains left; no insert pays for the whole table (moving a
 * million entries at once held the shard's lock for milliseconds).
 * Tables are mappings, counted in the cache's size, so that a table that
 * halves gives its pages back.  The
 * ghosts are S3-FIFO's memory of keys evicted from the small queue: a
 * direct-mapped array of fingerprints per shard, where a newer key takes
 * an older one's place (the ghost queue's age, for free).  Everything
 * here runs under the shard's lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "8-cache/private.h"

static inline uint64_t mix(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t read64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A multiply-and-fold hash, 16 bytes a step. */
uint64_t shrinker__key_hash(uint64_t seed, const void *key, size_t len)
{
	const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull;
	const uint64_t k2 = 0x8ebc6af09c88c6e3ull, k3 = 0x589965cc75374cc3ull;
	const unsigned char *p = key;
	uint64_t h = seed ^ mix(len ^ k0, k1);
	size_t n = len;
	while (n >= 16) {
		h = mix(read64(p) ^ k1 ^ h, read64(p + 8) ^ k2);
		p += 16;
		n -= 16;
	}
	uint64_t a = 0, b = 0;
	if (n >= 8) {
		a = read64(p);
		if (n > 8)
			b = read64(p + n - 8) >> (8 * (16 - n));
	} else if (n) {
		unsigned char t[8] = { 0 };
		memcpy(t, p, n);
		a = read64(t);
	}
	h = mix(a ^ k2 ^ h, b ^ k3);
	return mix(h ^ k0, (uint64_t)len ^ k3);
}

struct shard *shrinker__shard_of(struct shrinker_cache *c, uint64_t h)
{
	return &c->shards[c->shard_shift >= 64 ? 0 : h >> c->shard_shift];
}

/* Reads the table's place without the lock, for a prefetch alone (which
 * does not fault, and a table being replaced meanwhile costs a wasted
 * one); not under ThreadSanitizer, which would call the read a race. */
#define PREFETCH_UNLOCKED (!SHRINKER_CACHE_TSAN)

void shrinker__bucket_prefetch(struct shard *sh, uint64_t h)
{
#if PREFETCH_UNLOCKED
	struct ent **b = *(struct ent **volatile *)&sh->buckets;
	size_t n = *(volatile size_t *)&sh->nbuckets;
	if (b && n)
		__builtin_prefetch(&b[(uint32_t)h & (n - 1)]);
#else
	(void)sh;
	(void)h;
#endif
}

/* Chains of the old table moved by each insert, each lookup and each
 * look after entries died.  Inserts alone move all of it before the new
 * table holds twice as many entries as it has chains, when the next
 * doubling begins. */
#define MOVE_ON_INSERT 4u
#define MOVE_ON_FIND 1u
#define MOVE_ON_SHRUNK 1024u

static size_t table_bytes(size_t n)
{
	return shrinker__page_round(n * sizeof(struct ent *));
}

/* Move up to k chains of the old table into the new one; the old table
 * goes when it has none left. */
static void migrate_locked(struct shrinker_cache *c, struct shard *sh, size_t k)
{
	SHRINKER__ASSERT_SHARD_HELD();
	if (!sh->old_buckets)
		return;
	for (; k && sh->moved < sh->old_nbuckets; k--, sh->moved++) {
		struct ent *e = sh->old_buckets[sh->moved];
		sh->old_buckets[sh->moved] = NULL;
		while (e) {
			struct ent *next = e->next;
			struct ent **pp = &sh->buckets[e->hash & (sh->nbuckets - 1)];
			e->next = *pp;
			*pp = e;
			e = next;
		}
	}
	if (sh->moved < sh->old_nbuckets)
		return;
	size_t len = table_bytes(sh->old_nbuckets);
	shrinker__unmap(sh->old_buckets, len);
	sh->old_buckets = NULL;
	sh->old_nbuckets = 0;
	sh->moved = 0;
	atomic_fetch_sub_explicit(&c->bytes, len, memory_order_relaxed);
}

static bool ent_is(const struct ent *e, uint32_t lo, const void *key, size_t klen)
{
	return e->hash == lo && e->klen == klen && memcmp(e->key, key, klen) == 0;
}

struct ent **shrinker__find_locked(struct shrinker_cache *c, struct shard *sh,
				   uint64_t h, const void *key, size_t klen)
{
	SHRINKER__ASSERT_SHARD_HELD();
	/* A cache that stopped growing finishes its move on its reads. */
	migrate_locked(c, sh, MOVE_ON_FIND);
	uint32_t lo = (uint32_t)h;
	struct ent **pp = &sh->buckets[lo & (sh->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next)
		if (ent_is(*pp, lo, key, klen))
			return pp;
	if (sh->old_buckets) {
		size_t i = lo & (sh->old_nbuckets - 1);
		if (i >= sh->moved)
			for (struct ent **op = &sh->old_buckets[i]; *op; op = &(*op)->next)
				if (ent_is(*op, lo, key, klen))
					return op;
	}
	return pp;
}

struct ent **shrinker__bucket_locked(struct shard *sh, const struct ent *e)
{
	SHRINKER__ASSERT_SHARD_HELD();
	return &sh->buckets[e->hash & (sh->nbuckets - 1)];
}

struct ent **shrinker__slot_of_locked(struct shard *sh, struct ent *e)
{
	SHRINKER__ASSERT_SHARD_HELD();
	struct ent **pp = shrinker__bucket_locked(sh, e);
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (!*pp && sh->old_buckets) {
		size_t i = e->hash & (sh->old_nbuckets - 1);
		if (i >= sh->moved) {
			struct ent **op = &sh->old_buckets[i];
			while (*op && *op != e)
				op = &(*op)->next;
			if (*op)
				return op;
		}
	}
	return pp;
}

/* Begin moving to a table of n chains (not while a move is under way). */
static void resize_locked(struct shrinker_cache *c, struct shard *sh, size_t n)
{
	SHRINKER__ASSERT_SHARD_HELD();
	if (sh->old_buckets)
		return;
	size_t len = table_bytes(n);
	struct ent **b = shrinker__map(len);
	if (!b)
		return; /* longer chains, still correct */
	atomic_fetch_add_explicit(&c->bytes, len, memory_order_relaxed);
	sh->old_buckets = sh->buckets;
	sh->old_nbuckets = sh->nbuckets;
	sh->moved = 0;
	sh->buckets = b;
	sh->nbuckets = n;
}

#define MIN_BUCKETS 512u

void shrinker__link_locked(struct shrinker_cache *c, struct shard *sh,
			   struct ent *e)
{
	SHRINKER__ASSERT_SHARD_HELD();
	struct ent **pp = &sh->buckets[e->hash & (sh->nbuckets - 1)];
	e->next = *pp;
	*pp = e;
	migrate_locked(c, sh, MOVE_ON_INSERT);
	if (++sh->entries > sh->nbuckets)
		resize_locked(c, sh, sh->nbuckets * 2);
}

/* After entries died: go on with a move, or halve a table that is mostly
 * empty. */
void shrinker__index_shrunk_locked(struct shrinker_cache *c, struct shard *sh)
{
	SHRINKER__ASSERT_SHARD_HELD();
	migrate_locked(c, sh, MOVE_ON_SHRUNK);
	if (sh->nbuckets > MIN_BUCKETS && sh->entries < sh->nbuckets / 8)
		resize_locked(c, sh, sh->nbuckets / 2);
}

/* A ghost is the low half of the key's hash, which the entry keeps: its
 * slot from a multiplicative hash of it, its fingerprint the rest. */
static uint32_t *ghost_slot(struct shard *sh, uint32_t lo)
{
	return &sh->ghosts[(uint32_t)(lo * 2654435769u) >> (32 - GHOST_BITS)];
}

bool shrinker__ghost_take_locked(struct shard *sh, uint64_t h)
{
	SHRINKER__ASSERT_SHARD_HELD();
	uint32_t lo = (uint32_t)h;
	uint32_t *g = ghost_slot(sh, lo);
	if (*g != (lo | 1u))
		return false;
	*g = 0;
	return true;
}

void shrinker__ghost_add_locked(struct shard *sh, struct ent *e)
{
	SHRINKER__ASSERT_SHARD_HELD();
	*ghost_slot(sh, e->hash) = e->hash | 1u;
}

int shrinker__index_init(struct shrinker_cache *c, struct shard *sh)
{
	size_t len = table_bytes(MIN_BUCKETS);
	sh->buckets = shrinker__map(len);
	sh->ghosts = shrinker__map(GHOSTS * sizeof(uint32_t));
	if (!sh->buckets || !sh->ghosts) {
		if (sh->buckets)
			shrinker__unmap(sh->buckets, len);
		if (sh->ghosts)
			shrinker__unmap(sh->ghosts, GHOSTS * sizeof(uint32_t));
		return -ENOMEM;
	}
	sh->nbuckets = MIN_BUCKETS;
	atomic_fetch_add_explicit(&c->bytes, len + GHOSTS * sizeof(uint32_t),
				  memory_order_relaxed);
	return 0;
}

void shrinker__index_fini(struct shrinker_cache *c, struct shard *sh)
{
	size_t len = table_bytes(sh->nbuckets);
	if (sh->old_buckets) {
		size_t old = table_bytes(sh->old_nbuckets);
		shrinker__unmap(sh->old_buckets, old);
		atomic_fetch_sub_explicit(&c->bytes, old, memory_order_relaxed);
		sh->old_buckets = NULL;
	}
	if (sh->buckets)
		shrinker__unmap(sh->buckets, len);
	if (sh->ghosts)
		shrinker__unmap(sh->ghosts, GHOSTS * sizeof(uint32_t));
	atomic_fetch_sub_explicit(&c->bytes, len + GHOSTS * sizeof(uint32_t),
				  memory_order_relaxed);
}
