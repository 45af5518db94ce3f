/* SPDX-License-Identifier: MIT */
/*
 * The cache container's private structures (include/shrinker-cache.h),
 * shared by the files of layer 8: segment.c (mappings, segments and their
 * queues, external values, holding and letting go), index.c (the shards' hash tables and
 * ghosts), evict.c (the queues, eviction, the shrinker), container.c (the
 * public calls) and load.c (compute once).  The container is a user of the
 * library like any program: it calls the public API of layer 7 and the
 * services of layer 1, never the layers between.
 *
 * Locks (src/internal.h gives their place in the library's order):
 *  shard_lock   one per shard: its table, its ghosts, its open and spare
 *               segments, its loads, the entries in its segments (every
 *               field of every entry, and a segment's used and live) and
 *               its counters.
 *  queue_lock   one per cache, taken inside a shard_lock or alone: the two
 *               queues (each segment's prev, next, queue, and the counts)
 *               and the pool (its list and pool_bytes) and the free
 *               segments.
 *  No lock of the cache is held while the library is called (but for
 *  shrinker_set_size(), an atomic store) or while a destroy or load
 *  function runs; at most one shard_lock is held at a time.
 *
 * Invariants:
 *  - An entry is live (not ENT_DEAD) if and only if it is in its shard's
 *    table (the new one or, while a resize moves chains, the old); a live
 *    entry is in a segment of its own shard.
 *  - A segment is in exactly one queue from the moment it becomes a shard's
 *    open segment until eviction pops it; then no entry of it is live, and
 *    its pin word gets PIN_DRAIN: whoever sees the holders reach zero with
 *    PIN_DRAIN set (the evictor, or the last release) unmaps it.  External
 *    values have the same word: PIN_DRAIN set when their entry dies.
 *  - bytes (the cache's size) == the pages counted of every segment not
 *    yet unmapped (those written, or more when counted in advance under a
 *    maximum: its counted) + every external value's charge not yet freed
 *    (those in the pool included) + the tables.
 *  - The pool holds only large values' mappings that no entry points to and
 *    no one holds, at most pool_room() bytes of them when each went in
 *    (segment.c: a share of the cache's size, within POOL_MIN-POOL_MAX).
 *  - A shard's pins - released == the values of that shard held now.
 */
#ifndef SHRINKER_CACHE_PRIVATE_H
#define SHRINKER_CACHE_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "shrinker-cache.h"

#define SEG_BYTES (256u << 10)    /* a segment's mapping */
#define SEG_HDR 64u               /* its header, before the first entry */
#define INLINE_MAX (SEG_BYTES / 16) /* larger entries are external */
/* A segment also fills up with the external values its entries point
 * to: evicting it frees them all, so at most about this much (KiB). */
#define SEG_WEIGHT_KIB 1024u
/* The pool: mappings of large values that replacements evicted, kept with
 * their pages for the next large values (segment.c), up to a 16th of the
 * cache's size, within these bounds: the more mappings it holds, the
 * likelier one fits the next value without a fault or a trim. */
#define POOL_MIN ((size_t)2 << 20)
#define POOL_MAX ((size_t)64 << 20)
#define POOL_SHARE 16u
/* Segments whose pages went back, their address space kept for new ones
 * (segment.c), up to this many. */
#define FREE_SEGS_MAX 256u
#define FREQ_MAX 3u
#define GHOST_BITS 10u
#define GHOSTS (1u << GHOST_BITS)  /* fingerprints per shard */
#define SHARDS_MAX 64u
#define QUEUES 2u
enum { Q_SMALL, Q_MAIN };

/* The word that counts a segment's or an external value's holders. */
#define PIN_DRAIN (UINT64_C(1) << 63)
#define PIN_COUNT (PIN_DRAIN - 1)
enum pin_kind { PIN_SEG, PIN_LARGE, PIN_OBJECT };
struct pin {
	_Atomic uint64_t word;    /* holders | PIN_DRAIN */
	uint32_t kind;            /* enum pin_kind */
	uint32_t shard;
};

struct seg {
	struct pin pin;
	struct seg *prev, *next;  /* queue_lock; next also links graves */
	uint32_t used;            /* shard_lock: offset of the first free byte */
	uint32_t live;            /* shard_lock: bytes of live entries */
	uint32_t weight;          /* shard_lock: external charge appended, KiB */
	uint32_t counted;         /* shard_lock: its bytes in the cache's size,
				     the pages written (kept when reused) */
	uint8_t queue;            /* set before linking, then never changed */
	uint8_t queued;           /* queue_lock: in a queue */
};

/* A value outside the segments: bytes in a mapping of their own (the
 * data at EXT_HDR), or a program's object. */
#define EXT_HDR 64u
struct ext {
	struct pin pin;
	size_t charge;            /* counted in the cache's bytes */
	size_t len;               /* bytes: the value's; object: its cost */
	void *object;
	struct ext *next;         /* graves */
};

#define EXT_PTR_BYTES 8u /* an entry's pointer to its external value */
_Static_assert(sizeof(void *) <= EXT_PTR_BYTES, "pointers fit");
#define ENT_EXT 1u
#define ENT_DEAD 2u
struct ent {
	struct ent *next;         /* hash chain */
	uint64_t expire_ns;       /* 0: never */
	uint32_t hash;            /* the key's hash, low half */
	uint32_t vlen;            /* inline value bytes (0 for ENT_EXT) */
	uint16_t klen;
	uint8_t flags;
	uint8_t freq;             /* 0..FREQ_MAX, hits since it came round */
	unsigned char key[];
};

struct load;

struct shard {
	pthread_mutex_t shard_lock;
	struct ent **buckets;
	size_t nbuckets;          /* a power of 2 */
	/* The table being left while a resize moves its chains (index.c):
	 * those below moved are empty. */
	struct ent **old_buckets;
	size_t old_nbuckets, moved;
	size_t entries;
	size_t data_bytes;
	struct seg *open[QUEUES];
	struct seg *spare;        /* mapped, nothing written, not queued */
	uint32_t *ghosts;
	struct load *loads;
	uint64_t hits, misses, inserts, evicted[2], expired, removed;
	uint64_t evicted_bytes;   /* keys and values the shrinker evicted */
	uint64_t pins;            /* values held, ever */
	uint64_t waits;
	/* Written by releases, without the lock: a line of its own. */
	_Alignas(64) _Atomic uint64_t released;
	char pad[56];
};

struct shrinker_cache {
	struct shrinker_cache_options opt;
	struct shrinker *shrinker;
	uint64_t seed;            /* of the hash, at random */
	unsigned nshards, shard_shift;
	struct shard *shards;
	pthread_mutex_t queue_lock;
	struct seg *head[QUEUES], *tail[QUEUES]; /* head: newest */
	size_t nsegs[QUEUES];
	struct ext *pool;         /* queue_lock: mappings kept for reuse */
	size_t pool_bytes;        /* queue_lock: their charges */
	struct seg *free_segs[FREE_SEGS_MAX]; /* queue_lock: no page resident */
	unsigned nfree_segs;      /* queue_lock */
	_Atomic size_t seg_pages;  /* bytes a segment writes until full, on
				     average: what a new one asks for */
	_Atomic size_t bytes;
	_Atomic size_t credit;    /* evicted by replacements beyond their
				     need, not yet used again (evict.c) */
	_Atomic uint64_t given_back, loads;
	_Atomic bool closing;
	_Atomic unsigned callbacks; /* destroy and load functions running */
	_Atomic uint64_t shrink_last_ns, shrink_began_ns; /* evict.c */
	char name[SHRINKER_NAME_MAX + 1];
};

/* What a critical section let go of, freed after the lock: segments to
 * unmap, external values to unmap or destroy; with pool set, large values'
 * mappings go to the pool while it has room. */
struct graves {
	struct seg *segs;
	struct ext *exts;
	bool pool;
};

/* Eviction modes (evict.c). */
enum evict_why { EVICT_PRESSURE, EVICT_REPLACE, EVICT_CLEAR, EVICT_HARD };

/* Built with ThreadSanitizer (gcc's macro, clang's feature): 1 or 0. */
#if defined(__SANITIZE_THREAD__)
#define SHRINKER_CACHE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHRINKER_CACHE_TSAN 1
#endif
#endif
#ifndef SHRINKER_CACHE_TSAN
#define SHRINKER_CACHE_TSAN 0
#endif

/* Holder counts for the lock assertions (internal.h's habit). */
extern _Thread_local unsigned shrinker__shard_held, shrinker__queue_held;
#ifdef NDEBUG
#define SHRINKER__ASSERT_SHARD_HELD() ((void)0)
#define SHRINKER__ASSERT_QUEUE_HELD() ((void)0)
#else
#define SHRINKER__ASSERT_SHARD_HELD() assert(shrinker__shard_held > 0)
#define SHRINKER__ASSERT_QUEUE_HELD() assert(shrinker__queue_held > 0)
#endif

static inline size_t cont_round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}
static inline size_t ent_voff(size_t klen)
{
	return cont_round8(offsetof(struct ent, key) + klen);
}
static inline size_t ent_size(const struct ent *e)
{
	return cont_round8(ent_voff(e->klen) +
			   ((e->flags & ENT_EXT) ? EXT_PTR_BYTES : e->vlen));
}
static inline unsigned char *ent_value(struct ent *e)
{
	return (unsigned char *)e + ent_voff(e->klen);
}
static inline struct ext *ent_ext(struct ent *e)
{
	struct ext *x;
	__builtin_memcpy(&x, ent_value(e), sizeof(void *));
	return x;
}
static inline struct seg *ent_seg(const struct ent *e)
{
	return (struct seg *)((uintptr_t)e & ~(uintptr_t)(SEG_BYTES - 1));
}

/* segment.c */
void shrinker__shard_lock(struct shard *sh);
void shrinker__shard_unlock(struct shard *sh);
void shrinker__queue_lock(struct shrinker_cache *c);
void shrinker__queue_unlock(struct shrinker_cache *c);
size_t shrinker__page_round(size_t n);
void *shrinker__map(size_t len);
void shrinker__unmap(void *p, size_t len);
/* A segment for shard, from the free ones or a new mapping; NULL if the
 * kernel has no room. */
struct seg *shrinker__seg_map(struct shrinker_cache *c, unsigned shard);
/* Unmap the free segments (the cache is being freed). */
void shrinker__free_segs_unmap(struct shrinker_cache *c);
/* Append an entry of n bytes pointing to an external value of charge
 * bytes (0: none) to the shard's open segment of queue q, opening its
 * spare if the open one is full (in bytes, or in the external values its
 * entries point to: SEG_WEIGHT_KIB); NULL when no segment has room (no
 * spare).  *grew adds the pages newly written. */
struct ent *shrinker__seg_append_locked(struct shrinker_cache *c,
					struct shard *sh, unsigned q, size_t n,
					size_t charge, size_t *grew);
/* Kill a live entry: out of nothing but its segment's live count; an
 * external value is let go (into g if no one holds it). */
void shrinker__ent_kill_locked(struct shrinker_cache *c, struct ent *e,
			       struct graves *g);
/* Whether an entry's time is up (*now: the clock, read once if 0). */
bool shrinker__expired(const struct ent *e, uint64_t *now);
/* Let go of a pinned thing whose entry died or segment was evicted: set
 * PIN_DRAIN; returns true when no one holds it (the caller frees it). */
bool shrinker__pin_drain(struct pin *p);
/* Free (or pool) what g holds; returns the bytes that went to the pool. */
size_t shrinker__graves_flush(struct shrinker_cache *c, struct graves *g);
/* Make an evicted segment no one holds the spare of shard sh, pages and
 * all (what a replacement evicted, reused: no unmapping, no faults). */
void shrinker__seg_reuse_locked(struct shrinker_cache *c, struct shard *sh,
				struct seg *s);
/* A mapping of the pool for a large value of total bytes (header and
 * value, page-rounded), pages and all, trimmed to at most a quarter more;
 * with any, the largest if none is as large; NULL if none. */
struct ext *shrinker__pool_take(struct shrinker_cache *c, size_t total, bool any);
/* x's mapping grown to total bytes (the caller made room for the growth),
 * maybe moved; NULL (x untouched) if the kernel refuses. */
struct ext *shrinker__ext_grow(struct shrinker_cache *c, struct ext *x, size_t total);
/* Back into the pool (or unmapped, if it is full): x, taken from it. */
void shrinker__pool_return(struct shrinker_cache *c, struct ext *x);
/* Unmap mappings of the pool until at_least bytes went (SIZE_MAX: all of
 * them); returns their bytes. */
size_t shrinker__pool_drain(struct shrinker_cache *c, size_t at_least);
struct ext *shrinker__ext_object(void *object, size_t cost);
void shrinker__ext_free(struct shrinker_cache *c, struct ext *x);
/* Call the destroy function (counted in callbacks). */
void shrinker__destroy(struct shrinker_cache *c, void *object);
/* The cache whose shrinker runs on this thread, or NULL (evict.c). */
extern _Thread_local struct shrinker_cache *shrinker__shrinking;
void shrinker__size_report(struct shrinker_cache *c);
/* Take n bytes off the cache's size (0: nothing). */
void shrinker__bytes_sub(struct shrinker_cache *c, size_t n);
/* Link s at the head (the newest end) of queue q. */
void shrinker__queue_add_locked(struct shrinker_cache *c, struct seg *s,
				unsigned q);

/* index.c */
uint64_t shrinker__key_hash(uint64_t seed, const void *key, size_t len);
struct shard *shrinker__shard_of(struct shrinker_cache *c, uint64_t h);
/* Start loading the key's chain head before the shard's lock is taken
 * (no lock needed; a hint). */
void shrinker__bucket_prefetch(struct shard *sh, uint64_t h);
/* The slot that points to the key's entry, or (none) a slot holding NULL;
 * valid until the next call of this file. */
struct ent **shrinker__find_locked(struct shrinker_cache *c, struct shard *sh,
				   uint64_t h, const void *key, size_t klen);
void shrinker__link_locked(struct shrinker_cache *c, struct shard *sh,
			   struct ent *e);
struct ent **shrinker__slot_of_locked(struct shard *sh, struct ent *e);
/* The head of the chain that e is in (for a prefetch). */
struct ent **shrinker__bucket_locked(struct shard *sh, const struct ent *e);
bool shrinker__ghost_take_locked(struct shard *sh, uint64_t h);
void shrinker__index_shrunk_locked(struct shrinker_cache *c, struct shard *sh);
void shrinker__ghost_add_locked(struct shard *sh, struct ent *e);
int shrinker__index_init(struct shrinker_cache *c, struct shard *sh);
void shrinker__index_fini(struct shrinker_cache *c, struct shard *sh);

/* evict.c */
/* Evict until target bytes went back (or, EVICT_CLEAR, everything);
 * with keep, the first victim no one holds is handed over in *keep
 * instead of unmapped (counted as freed); with pooled, large values'
 * mappings go to the pool, their bytes added to *pooled (not freed, but
 * counted towards the target). */
size_t shrinker__evict(struct shrinker_cache *c, size_t target,
		       enum evict_why why, struct seg **keep, size_t *pooled);
size_t shrinker__cache_shrink(size_t target, bool hard, void *userdata);
/* Room for n bytes more: asks the library (and the maximum), evicting
 * when refused (a segment evicted may be handed over in *keep, as
 * shrinker__evict()).  With prepaid, under a maximum and with no segment
 * handed over, the n bytes may be counted in the cache's size at once
 * (*prepaid = n, else 0): the caller counts them as its new segment's
 * pages.  0, or -E2BIG / -ENOMEM for a value that cannot fit. */
int shrinker__make_room(struct shrinker_cache *c, size_t n, struct seg **keep,
			size_t *prepaid);
/* A large value of len bytes, copied into a mapping from the pool or a new
 * one (room made for it, which may fill the pool); counted in the cache's
 * size.  0 with *ret, or make_room's errors, or -ENOMEM. */
int shrinker__large_make(struct shrinker_cache *c, const void *data, size_t len,
			 struct ext **ret);

/* container.c */
/* Insert under the key: an inline value (data, len) or x; pin: hold the
 * new value once for the caller (for get_or_load).  Called without
 * locks. */
int shrinker__insert(struct shrinker_cache *c, uint64_t h, const void *key,
		     size_t klen, const void *data, size_t len, struct ext *x,
		     uint64_t ttl_ns, struct shrinker_cache_value *pin);
void shrinker__value_fill_locked(struct shard *sh, struct ent *e,
				 struct shrinker_cache_value *v);
/* The checks common to the calls that take a key, and its place: 0 with
 * *h and *sh, or -EINVAL, too_long (a key over SHRINKER_CACHE_KEY_MAX),
 * -ESHUTDOWN. */
int shrinker__locate(struct shrinker_cache *c, const void *key, size_t klen,
		     int too_long, uint64_t *h, struct shard **sh);
/* Find a live, unexpired entry and count the hit or miss; an expired one
 * is removed (into g). */
struct ent *shrinker__lookup_locked(struct shrinker_cache *c, struct shard *sh,
				    uint64_t h, const void *key, size_t klen,
				    struct graves *g);
/* What a load function produced, stored and held once in *pin. */
int shrinker__store_loaded(struct shrinker_cache *c, const void *key,
			   size_t klen, const struct shrinker_cache_loaded *l,
			   struct shrinker_cache_value *pin);

#endif
