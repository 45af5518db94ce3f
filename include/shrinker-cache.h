/* SPDX-License-Identifier: MIT */
/*
 * shrinker-cache.h: a cache with no size to set, part of libshrinker.
 *
 * A concurrent key-value cache that grows only while the library grants it
 * room (shrinker_may_grow_cache(), fair between the caches of the process
 * and the processes of the cgroup) and frees its coldest entries when the
 * library asks (its own shrinker, registered under the cache's name).  The
 * program never picks a capacity; it may set a fixed maximum as well.
 *
 *	#include <shrinker-cache.h>
 *
 *	struct shrinker_cache *c;
 *	if (shrinker_cache_new(&c, "pages", NULL) < 0) ...
 *	shrinker_cache_set(c, key, klen, data, len, 0);
 *	struct shrinker_cache_value v;
 *	if (shrinker_cache_get(c, key, klen, &v) == 0) {
 *		use(v.data, v.len);          // never freed while held
 *		shrinker_cache_release(c, &v);
 *	}
 *	shrinker_cache_free(c);
 *
 * Values are of two kinds:
 *  - bytes the cache copies and owns (shrinker_cache_set()): it counts them
 *    exactly, and what it frees goes back to the kernel as whole pages;
 *  - objects the program owns (shrinker_cache_set_object()): a pointer, a
 *    cost in bytes the program declares, and the destroy function of the
 *    options, which the cache calls when the object leaves the cache and no
 *    one holds it.
 *
 * Memory.  Entries of up to 16 KiB (key, value and a 32-byte header) are
 * written one after the other into segments of 256 KiB, mappings of their
 * own; larger values get a mapping each, objects a small record.  Eviction
 * takes a whole segment at a time, the oldest, and unmaps it, so that
 * what the shrinker reports freed is pages the kernel got back, not holes
 * in a heap.  When the cache replaces its own entries (refused room, or
 * at its maximum), it first copies the victim's entries read since they
 * came in (from a main-queue segment at most half of what it holds) to
 * the newest segment; its shrinker copies nothing, so that memory goes back
 * fast when it is short.  A segment is also full at 1 MiB of the large values
 * its entries point to, so that a shrink frees about what it is asked.  The order is S3-FIFO's: new keys
 * go to a small queue (a tenth of the cache), and only those read there
 * move to the main queue, where an entry read since it last came round
 * goes round once more (up to three times); a one-time scan passes through
 * the small queue without displacing what is read often.  Keys evicted
 * from the small queue are remembered by a fingerprint, and come back
 * straight into the main queue.  What the cache counts as its size, and
 * reports with shrinker_set_size(), is the pages its segments have
 * written, its large values' mappings, the objects' costs and its tables:
 * about 45 bytes per entry beyond key and value.  When the library
 * refuses room, the cache evicts its own oldest segments instead of
 * growing (a large cache reuses the segment it evicted, pages and all,
 * and the mappings of the large values it evicted, up to 2 MiB of them,
 * are kept for the next large values, counted in its size, until they
 * are used or the shrinker frees them first).
 *
 * Threads.  Every function may be called from any thread.  Keys are spread
 * over shards (eight per CPU, up to 64), each with its own lock; a lookup
 * takes one shard's lock for the time it takes to find the entry.  The
 * cache's own shrinker runs on the library's reclaimer thread (or, for a
 * cache made with SHRINKER_CACHE_DEFERRED, in shrinker_dispatch() on the
 * program's thread).  No lock of the cache is held while it calls the
 * program (destroy and load functions), so they may call the cache.
 *
 * Errors are negative errno values, as in shrinker.h; out-parameters are
 * written only on success; errno is not touched.  After fork() the child
 * must not use a cache the parent made (its locks may be held by threads
 * that do not exist in the child).
 */
#ifndef SHRINKER_CACHE_H
#define SHRINKER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <shrinker.h>

#ifdef __cplusplus
extern "C" {
#endif

struct shrinker_cache;

/* The longest key, in bytes. */
#define SHRINKER_CACHE_KEY_MAX 4096u

/* The smallest maximum (struct shrinker_cache_options.max_bytes): a
 * smaller one counts as this. */
#define SHRINKER_CACHE_MAX_MIN (1u << 20)

/* A ttl_ns meaning "never expires", whatever the cache's default. */
#define SHRINKER_CACHE_TTL_NEVER UINT64_MAX

/*
 * Called when an object value (shrinker_cache_set_object()) leaves the
 * cache (evicted, replaced, removed, cleared, or the cache freed) and no
 * shrinker_cache_value holds it; if one does, when the last is released.
 * Runs on the thread that made it leave or released it last: a program's
 * thread, or the reclaimer thread when the shrinker evicted it.  No lock
 * of the cache is held: it may call the cache, but for the one being
 * freed, where calls fail with -ESHUTDOWN.  userdata: the options'.
 */
typedef void (*shrinker_cache_destroy_fn)(void *object, void *userdata);

/* Flags of struct shrinker_cache_options. */
enum {
	/* Free only in shrinker_dispatch(), on the program's thread (an event
	 * loop's): the cache's shrinker is registered SHRINKER_DEFERRED. */
	SHRINKER_CACHE_DEFERRED = 1u << 0,
};

/*
 * Options of shrinker_cache_new(); zero-initialise, then set size to
 * sizeof(struct shrinker_cache_options), so that a program built against
 * an older header keeps working when fields are added.
 */
struct shrinker_cache_options {
	size_t size;          /* sizeof(struct shrinker_cache_options) */
	unsigned flags;       /* SHRINKER_CACHE_DEFERRED, or 0 */
	size_t max_bytes;     /* a fixed maximum size as well, 0: none (at
				 least SHRINKER_CACHE_MAX_MIN) */
	uint64_t ttl_ns;      /* entries expire this long after they are set
				 unless the call says otherwise; 0: never */
	shrinker_cache_destroy_fn destroy; /* for object values; NULL: none */
	void *userdata;       /* passed to destroy */
};

/*
 * A value found, held (pinned) until shrinker_cache_release(): however hard
 * the pressure, its memory is not freed or reused while held, even if the
 * entry is evicted, replaced or removed meanwhile (a later lookup then
 * finds the new value or nothing).  Bytes: data and len (data is aligned to
 * 8 bytes); object: object and cost.  The rest is the library's.
 * Release each value once: a second release of the same struct fails with
 * -EINVAL; releasing a copy of a released struct is undefined.
 */
struct shrinker_cache_value {
	const void *data;     /* bytes: the value, NULL for an object */
	size_t len;           /* bytes: its length */
	void *object;         /* object: the pointer set, NULL for bytes */
	size_t cost;          /* object: the cost set */
	void *priv[2];        /* the library's: what holds the value */
};

/*
 * Make a cache.  name: for statistics (its shrinker's name), copied, at
 * most SHRINKER_NAME_MAX bytes.  opt: NULL for the defaults (no maximum, no
 * expiry, no destroy function).  Registers the cache's shrinker (which
 * starts the library's reclaimer thread, see shrinker_register()).
 * Returns 0 and the cache in *ret.
 * Errors: -EINVAL (ret or name NULL, opt->size 0 or larger than this
 * library knows with fields it does not know set, an unknown flag),
 * -ENAMETOOLONG, -ENOMEM, -EAGAIN (as shrinker_register()).
 */
int shrinker_cache_new(struct shrinker_cache **ret, const char *name,
		       const struct shrinker_cache_options *opt);

/*
 * Free a cache and everything in it (object values are destroyed), and
 * unregister its shrinker (which waits for a call that is running).
 * NULL is a no-op that returns 0.
 * Errors: -EBUSY (a value is still held: nothing was freed, the cache is
 * as it was), -ESHUTDOWN (called again, or from a destroy function, while
 * the cache is being freed).
 */
int shrinker_cache_free(struct shrinker_cache *c);

/*
 * Insert or replace: copy len bytes at data (len 0 is allowed) as the
 * value of the key (klen bytes at key).  ttl_ns: expire this long from
 * now; 0: the cache's default; SHRINKER_CACHE_TTL_NEVER: never.  A value
 * replaced is freed when no one holds it.  When the library refuses room to
 * grow, the cache evicts its own coldest entries to make room (counted as
 * evictions by replacement).
 * Errors: -EINVAL (c, key NULL, klen 0, data NULL with len > 0),
 * -E2BIG (klen > SHRINKER_CACHE_KEY_MAX; the value is larger than the
 * cache's maximum or than the effective memory limit), -ENOMEM (no
 * mapping could be made, or the value is larger than what the cache and
 * the headroom hold together: inserting it would outgrow the limit),
 * -ESHUTDOWN (the cache is being freed).
 */
int shrinker_cache_set(struct shrinker_cache *c, const void *key, size_t klen,
		       const void *data, size_t len, uint64_t ttl_ns);

/*
 * Insert or replace with an object the program owns: the cache holds the
 * pointer and counts cost bytes (what the object takes, as the program
 * reckons it) plus its own record; the options' destroy function is called
 * when it leaves.  On success the cache owns the object; on failure it is
 * still the caller's and nothing was called.  Errors: as
 * shrinker_cache_set() (-EINVAL also for object NULL).
 */
int shrinker_cache_set_object(struct shrinker_cache *c, const void *key,
			      size_t klen, void *object, size_t cost,
			      uint64_t ttl_ns);

/*
 * Look a key up.  Returns 0 and the value, held, in *ret: release it with
 * shrinker_cache_release().  A hit counts for the entry's place in the
 * eviction order.  Errors: -EINVAL (c, key or ret NULL, klen 0), -ENOENT
 * (no such key, or it expired), -ESHUTDOWN.
 */
int shrinker_cache_get(struct shrinker_cache *c, const void *key, size_t klen,
		       struct shrinker_cache_value *ret);

/*
 * Look a bytes value up and copy it into buf: at most size bytes, all of
 * it when size is at least its length.  Holds nothing afterwards.
 * Returns the value's length (which may exceed size: then only size bytes
 * were copied).  Errors: -EINVAL (c or key NULL, klen 0, buf NULL with
 * size > 0), -ENOENT, -EMEDIUMTYPE (the value is an object), -ESHUTDOWN.
 */
ssize_t shrinker_cache_copy(struct shrinker_cache *c, const void *key,
			    size_t klen, void *buf, size_t size);

/*
 * Let go of a value found by shrinker_cache_get() or
 * shrinker_cache_get_or_load(); clears *v.  If the value left the cache
 * meanwhile, its memory is freed now (an object destroyed, on this thread).
 * Errors: -EINVAL (c or v NULL, v not held: released already).
 */
int shrinker_cache_release(struct shrinker_cache *c,
			   struct shrinker_cache_value *v);

/*
 * Remove a key.  Errors: -EINVAL, -ENOENT (no such key), -ESHUTDOWN.
 */
int shrinker_cache_remove(struct shrinker_cache *c, const void *key,
			  size_t klen);

/*
 * Remove every entry (values held stay valid until released).
 * Errors: -EINVAL (c NULL), -ESHUTDOWN.
 */
int shrinker_cache_clear(struct shrinker_cache *c);

/*
 * What a load function produces: either bytes (data, len: copied by the
 * cache after the function returns, so they may be on its stack) or an
 * object (object, cost: owned by the cache from then on, destroyed if it
 * cannot be cached); ttl_ns as in shrinker_cache_set().  Zeroed before the
 * call.
 */
struct shrinker_cache_loaded {
	const void *data;
	size_t len;
	void *object;
	size_t cost;
	uint64_t ttl_ns;
};

/*
 * Compute a missing value.  Returns 0 with *out filled, or a negative
 * errno that shrinker_cache_get_or_load() returns to every caller waiting
 * for this key (nothing is cached).  Runs on the thread that called first,
 * with no lock of the cache held; it may use the cache, but must not load
 * the same key again (that call fails with -EDEADLK).
 */
typedef int (*shrinker_cache_load_fn)(const void *key, size_t klen,
				      struct shrinker_cache_loaded *out,
				      void *userdata);

/*
 * Look a key up and, if it is missing, compute it once: the first caller
 * calls load(), every other caller of the same key meanwhile waits for it
 * and gets the same value (or the same error): never two loads of a key at
 * once.  Returns 0 and the value, held, in *ret (release it).
 * Errors: -EINVAL (c, key, load or ret NULL, klen 0, a load that filled
 * neither or both kinds), -EDEADLK (load() of this key asked for it
 * again), what load() returned, what inserting the value returns
 * (shrinker_cache_set()), -ESHUTDOWN.
 */
int shrinker_cache_get_or_load(struct shrinker_cache *c, const void *key,
			       size_t klen, shrinker_cache_load_fn load,
			       void *userdata, struct shrinker_cache_value *ret);

/* Counters of a cache; set size before the call, as for the options. */
struct shrinker_cache_stats {
	size_t size;          /* sizeof(struct shrinker_cache_stats) */
	uint64_t bytes;       /* what the cache holds, as its shrinker reports */
	uint64_t entries;
	uint64_t data_bytes;  /* keys and values (objects' costs) of entries */
	uint64_t hits, misses;
	uint64_t inserts;     /* sets and loads that stored a value */
	uint64_t evicted_pressure;    /* entries the shrinker evicted */
	uint64_t evicted_replacement; /* evicted to make room, the library
					 refusing room or the maximum reached */
	uint64_t expired;     /* entries found expired, by lookups or eviction */
	uint64_t removed;     /* by shrinker_cache_remove() and clear */
	uint64_t given_back;  /* bytes unmapped or destroyed: memory returned */
	uint64_t loads;       /* load() calls */
	uint64_t load_waits;  /* callers that waited for another's load */
	uint64_t held;        /* values held now (not released) */
	uint64_t evicted_bytes; /* keys and values (costs) of the entries
				   the shrinker evicted */
	uint64_t shrink_began_ns; /* CLOCK_MONOTONIC of the first call of
				     the latest run of shrinker calls (the
				     first after 100 ms without one): when
				     the pressure last reached the cache;
				     0 if never called */
	uint64_t reserved[8];
};

/*
 * Copy the counters into *ret, which has ret->size set (the fields that fit
 * in it are written).  Errors: -EINVAL (c or ret NULL, ret->size too small
 * for the first two fields).
 */
int shrinker_cache_get_stats(struct shrinker_cache *c,
			     struct shrinker_cache_stats *ret);

/* The cache's shrinker, for shrinker_get_stats() and the like; NULL for a
 * NULL cache.  Do not unregister it. */
struct shrinker *shrinker_cache_get_shrinker(struct shrinker_cache *c);

#ifdef __cplusplus
}
#endif
#endif
