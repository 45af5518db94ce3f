/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the container's public calls (include/shrinker-cache.h) but for
 * release (segment.c) and get_or_load (load.c): argument checks first,
 * then one shard's lock for the time a lookup or an insert takes.  An
 * insert appends to its shard's open segment of the queue the key belongs
 * in (the main queue for a key it replaces there or a ghost, else the
 * small one); when that segment is full it opens the shard's spare, and
 * when there is no spare it lets go of the lock, asks for room (evict.c's
 * make_room, which may evict from any shard, this one included), maps a
 * segment as the new spare and starts again.  Large values are copied
 * into their mapping, and room asked for them, before the lock is taken.
 * What a call lets go of (a replaced large value, an object to destroy) is
 * freed after the lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "8-cache/private.h"

static bool closing(struct shrinker_cache *c)
{
	return atomic_load_explicit(&c->closing, memory_order_acquire);
}

static bool key_ok(const void *key, size_t klen)
{
	return key && klen > 0;
}

int shrinker__locate(struct shrinker_cache *c, const void *key, size_t klen,
		     int too_long, uint64_t *h, struct shard **sh)
{
	if (!c || !key_ok(key, klen))
		return -EINVAL;
	if (klen > SHRINKER_CACHE_KEY_MAX)
		return too_long;
	if (closing(c))
		return -ESHUTDOWN;
	*h = shrinker__key_hash(c->seed, key, klen);
	*sh = shrinker__shard_of(c, *h);
	shrinker__bucket_prefetch(*sh, *h);
	return 0;
}

void shrinker__value_fill_locked(struct shard *sh, struct ent *e,
				 struct shrinker_cache_value *v)
{
	SHRINKER__ASSERT_SHARD_HELD();
	struct pin *p;
	memset(v, 0, sizeof(*v));
	if (e->flags & ENT_EXT) {
		struct ext *x = ent_ext(e);
		p = &x->pin;
		if (x->pin.kind == PIN_LARGE) {
			v->data = (unsigned char *)x + EXT_HDR;
			v->len = x->len;
		} else {
			v->object = x->object;
			v->cost = x->len;
		}
	} else {
		p = &ent_seg(e)->pin;
		v->data = ent_value(e);
		v->len = e->vlen;
	}
	atomic_fetch_add_explicit(&p->word, 1, memory_order_relaxed);
	sh->pins++;
	v->priv[0] = p;
	v->priv[1] = sh;
}

static uint64_t expiry(struct shrinker_cache *c, uint64_t ttl_ns)
{
	if (!ttl_ns)
		ttl_ns = c->opt.ttl_ns;
	if (!ttl_ns || ttl_ns == SHRINKER_CACHE_TTL_NEVER)
		return 0;
	uint64_t now = shrinker__now_ns();
	return ttl_ns > UINT64_MAX - now ? UINT64_MAX : now + ttl_ns;
}

/* Whether a replacement should reuse the segment it evicts, pages and all,
 * rather than unmap it and fault a new one in: a shard's open segments
 * then keep up to a segment's pages each while they fill, which is worth
 * it (no unmapping, no faults at each new segment) only in a cache that
 * holds sixteen times that.  Such a cache under a maximum also counts a
 * new segment's pages when it is granted (make_room's prepaid), as it
 * counts a reused one's. */
static bool reuse_pays(struct shrinker_cache *c)
{
	size_t idle = (size_t)QUEUES * c->nshards * SEG_BYTES;
	return atomic_load_explicit(&c->bytes, memory_order_relaxed) / 16 >= idle;
}

/* The room a new segment asks for: what segments wrote until full, on
 * average, and a page; all of it at first.  A segment of large values'
 * entries is full by their weight with a page or two written, and asking
 * for all 256 KiB of each took ten times what the cache grew from the
 * room until the next measurement, refused to everyone. */
static size_t segment_ask(struct shrinker_cache *c)
{
	size_t avg = atomic_load_explicit(&c->seg_pages, memory_order_relaxed);
	size_t ask = shrinker__page_round(avg + 1);
	return ask < SEG_BYTES ? ask : SEG_BYTES;
}

int shrinker__insert(struct shrinker_cache *c, uint64_t h, const void *key,
		     size_t klen, const void *data, size_t len, struct ext *x,
		     uint64_t ttl_ns, struct shrinker_cache_value *pin)
{
	struct shard *sh = shrinker__shard_of(c, h);
	size_t voff = ent_voff(klen);
	size_t n = cont_round8(voff + (x ? EXT_PTR_BYTES : len));
	uint64_t expire = expiry(c, ttl_ns);
	bool ghost = false;
	for (;;) {
		struct graves g = { 0 };
		size_t grew = 0;
		shrinker__shard_lock(sh);
		if (closing(c)) {
			shrinker__shard_unlock(sh);
			return -ESHUTDOWN;
		}
		struct ent **pp = shrinker__find_locked(c, sh, h, key, klen);
		struct ent *old = *pp;
		if (!old && !ghost)
			ghost = shrinker__ghost_take_locked(sh, h);
		unsigned q = old ? ent_seg(old)->queue : ghost ? Q_MAIN : Q_SMALL;
		struct ent *e = shrinker__seg_append_locked(c, sh, q, n, x ? x->charge : 0, &grew);
		if (!e) {
			shrinker__shard_unlock(sh);
			struct seg *s = NULL;
			size_t paid = 0;
			bool reuse = reuse_pays(c);
			int r = shrinker__make_room(c, segment_ask(c), reuse ? &s : NULL,
						    reuse ? &paid : NULL);
			if (r < 0) {
				if (s) {
					s->next = NULL;
					g.segs = s;
					shrinker__graves_flush(c, &g);
				}
				return r;
			}
			if (!s) {
				s = shrinker__seg_map(c, (unsigned)(sh - c->shards));
				if (!s) {
					shrinker__bytes_sub(c, paid); /* counted in advance */
					return -ENOMEM;
				}
				s->counted = (uint32_t)paid; /* nothing of it written */
			}
			shrinker__shard_lock(sh);
			if (!sh->spare) {
				shrinker__seg_reuse_locked(c, sh, s);
				s = NULL;
			}
			shrinker__shard_unlock(sh);
			if (s) {
				/* Another thread made the spare meanwhile. */
				shrinker__bytes_sub(c, paid); /* counted in advance */
				s->counted -= (uint32_t)paid;
				s->next = NULL;
				g.segs = s;
				shrinker__graves_flush(c, &g);
			}
			continue;
		}
		/* Appending touches no table: pp still points at old's place. */
		memset(e, 0, offsetof(struct ent, key));
		e->expire_ns = expire;
		e->hash = (uint32_t)h;
		e->klen = (uint16_t)klen;
		memcpy(e->key, key, klen);
		if (x) {
			e->flags = ENT_EXT;
			memcpy(ent_value(e), &x, sizeof(void *));
			sh->data_bytes += klen + x->len;
		} else {
			e->vlen = (uint32_t)len;
			if (len)
				memcpy(ent_value(e), data, len);
			sh->data_bytes += klen + len;
		}
		sh->inserts++;
		if (old) {
			e->freq = old->freq;
			e->next = old->next;
			*pp = e;
			shrinker__ent_kill_locked(c, old, &g);
			sh->entries++; /* kill counted the old one out */
		} else {
			shrinker__link_locked(c, sh, e);
		}
		if (pin)
			shrinker__value_fill_locked(sh, e, pin);
		shrinker__shard_unlock(sh);
		shrinker__graves_flush(c, &g);
		if (grew || x)
			shrinker__size_report(c); /* an external value counts too */
		/* Segments are asked for whole, and filled a page at a time:
		 * a maximum smaller than the open segments can hold is kept
		 * here. */
		size_t now = atomic_load_explicit(&c->bytes, memory_order_relaxed);
		if (grew && c->opt.max_bytes && now > c->opt.max_bytes)
			shrinker__evict(c, now - c->opt.max_bytes, EVICT_REPLACE, NULL, NULL);
		return 0;
	}
}

/* What stores a value: inline, or an external one made (and room asked
 * for it) before any lock. */
static int store(struct shrinker_cache *c, const void *key, size_t klen,
		 const void *data, size_t len, void *object, size_t cost,
		 uint64_t ttl_ns, struct shrinker_cache_value *pin)
{
	if (klen > SHRINKER_CACHE_KEY_MAX)
		return -E2BIG;
	if (closing(c))
		return -ESHUTDOWN;
	uint64_t h = shrinker__key_hash(c->seed, key, klen);
	struct ext *x = NULL;
	if (object) {
		if (cost > SIZE_MAX / 2)
			return -E2BIG;
		int r = shrinker__make_room(c, cost + 64, NULL, NULL);
		if (r < 0)
			return r;
		x = shrinker__ext_object(object, cost);
		if (!x)
			return -ENOMEM;
	} else if (len > INLINE_MAX - ent_voff(klen) - 8) {
		if (len > SIZE_MAX / 2)
			return -E2BIG;
		int r = shrinker__large_make(c, data, len, &x);
		if (r < 0)
			return r;
	}
	if (object)
		atomic_fetch_add_explicit(&c->bytes, x->charge, memory_order_relaxed);
	int r = shrinker__insert(c, h, key, klen, data, len, x, ttl_ns, pin);
	if (r < 0 && x) {
		if (object) {
			/* Still the caller's: free the record alone. */
			atomic_fetch_sub_explicit(&c->bytes, x->charge, memory_order_relaxed);
			free(x);
		} else {
			shrinker__ext_free(c, x);
		}
	}
	return r;
}

SHRINKER_EXPORT int shrinker_cache_set(struct shrinker_cache *c, const void *key,
				       size_t klen, const void *data, size_t len,
				       uint64_t ttl_ns)
{
	if (!c || !key_ok(key, klen) || (!data && len))
		return -EINVAL;
	return store(c, key, klen, data, len, NULL, 0, ttl_ns, NULL);
}

SHRINKER_EXPORT int shrinker_cache_set_object(struct shrinker_cache *c,
					      const void *key, size_t klen,
					      void *object, size_t cost,
					      uint64_t ttl_ns)
{
	if (!c || !key_ok(key, klen) || !object)
		return -EINVAL;
	return store(c, key, klen, NULL, 0, object, cost, ttl_ns, NULL);
}

int shrinker__store_loaded(struct shrinker_cache *c, const void *key,
			   size_t klen, const struct shrinker_cache_loaded *l,
			   struct shrinker_cache_value *pin)
{
	return store(c, key, klen, l->data, l->len, l->object, l->cost,
		     l->ttl_ns, pin);
}

struct ent *shrinker__lookup_locked(struct shrinker_cache *c, struct shard *sh,
				    uint64_t h, const void *key, size_t klen,
				    struct graves *g)
{
	SHRINKER__ASSERT_SHARD_HELD();
	struct ent **pp = shrinker__find_locked(c, sh, h, key, klen);
	struct ent *e = *pp;
	uint64_t now = 0;
	if (e && shrinker__expired(e, &now)) {
		*pp = e->next;
		shrinker__ent_kill_locked(c, e, g);
		sh->expired++;
		e = NULL;
	}
	if (e) {
		if (e->freq < FREQ_MAX)
			e->freq++;
		sh->hits++;
	} else {
		sh->misses++;
	}
	return e;
}

SHRINKER_EXPORT int shrinker_cache_get(struct shrinker_cache *c, const void *key,
				       size_t klen, struct shrinker_cache_value *ret)
{
	uint64_t h;
	struct shard *sh;
	int r = ret ? shrinker__locate(c, key, klen, -ENOENT, &h, &sh) : -EINVAL;
	if (r < 0)
		return r;
	struct graves g = { 0 };
	shrinker__shard_lock(sh);
	struct ent *e = shrinker__lookup_locked(c, sh, h, key, klen, &g);
	if (e)
		shrinker__value_fill_locked(sh, e, ret);
	shrinker__shard_unlock(sh);
	shrinker__graves_flush(c, &g);
	return e ? 0 : -ENOENT;
}

SHRINKER_EXPORT ssize_t shrinker_cache_copy(struct shrinker_cache *c,
					    const void *key, size_t klen,
					    void *buf, size_t size)
{
	uint64_t h;
	struct shard *sh;
	ssize_t r = !buf && size ? -EINVAL : shrinker__locate(c, key, klen, -ENOENT, &h, &sh);
	if (r < 0)
		return r;
	struct graves g = { 0 };
	r = -ENOENT;
	shrinker__shard_lock(sh);
	struct ent *e = shrinker__lookup_locked(c, sh, h, key, klen, &g);
	if (e && !(e->flags & ENT_EXT)) {
		if (size && e->vlen)
			memcpy(buf, ent_value(e), size < e->vlen ? size : e->vlen);
		r = e->vlen;
	} else if (e && ent_ext(e)->pin.kind == PIN_OBJECT) {
		r = -EMEDIUMTYPE;
	} else if (e) {
		/* A large value: hold it and copy outside the lock. */
		struct shrinker_cache_value v;
		shrinker__value_fill_locked(sh, e, &v);
		shrinker__shard_unlock(sh);
		if (size && v.data)
			memcpy(buf, v.data, size < v.len ? size : v.len);
		r = (ssize_t)v.len;
		shrinker_cache_release(c, &v);
		shrinker__graves_flush(c, &g);
		return r;
	}
	shrinker__shard_unlock(sh);
	shrinker__graves_flush(c, &g);
	return r;
}

SHRINKER_EXPORT int shrinker_cache_remove(struct shrinker_cache *c,
					  const void *key, size_t klen)
{
	uint64_t h;
	struct shard *sh;
	int r = shrinker__locate(c, key, klen, -ENOENT, &h, &sh);
	if (r < 0)
		return r;
	struct graves g = { 0 };
	shrinker__shard_lock(sh);
	struct ent **pp = shrinker__find_locked(c, sh, h, key, klen);
	struct ent *e = *pp;
	if (e) {
		*pp = e->next;
		shrinker__ent_kill_locked(c, e, &g);
		sh->removed++;
		shrinker__index_shrunk_locked(c, sh);
	}
	shrinker__shard_unlock(sh);
	shrinker__graves_flush(c, &g);
	return e ? 0 : -ENOENT;
}

SHRINKER_EXPORT int shrinker_cache_clear(struct shrinker_cache *c)
{
	if (!c)
		return -EINVAL;
	if (closing(c))
		return -ESHUTDOWN;
	shrinker__evict(c, SIZE_MAX, EVICT_CLEAR, NULL, NULL);
	return 0;
}

static unsigned shard_count(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want = cpus > 0 && cpus < SHARDS_MAX ? (unsigned)cpus * 8 : SHARDS_MAX;
	unsigned n = 1;
	while (n < want && n < SHARDS_MAX)
		n *= 2;
	return n;
}

static void teardown(struct shrinker_cache *c)
{
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *sh = &c->shards[i];
		if (sh->spare)
			shrinker__unmap(sh->spare, SEG_BYTES);
		shrinker__index_fini(c, sh);
		pthread_mutex_destroy(&sh->shard_lock);
	}
	shrinker__free_segs_unmap(c);
	pthread_mutex_destroy(&c->queue_lock);
	free(c->shards);
	free(c);
}

SHRINKER_EXPORT int shrinker_cache_new(struct shrinker_cache **ret,
				       const char *name,
				       const struct shrinker_cache_options *opt)
{
	struct shrinker_cache_options o = { 0 };
	if (!ret || !name)
		return -EINVAL;
	if (strlen(name) > SHRINKER_NAME_MAX)
		return -ENAMETOOLONG;
	if (opt) {
		if (!opt->size)
			return -EINVAL;
		/* Fields past ours must be zero: we would ignore them. */
		for (size_t i = sizeof(o); i < opt->size; i++)
			if (((const unsigned char *)opt)[i])
				return -EINVAL;
		memcpy(&o, opt, opt->size < sizeof(o) ? opt->size : sizeof(o));
		if (o.flags & ~(unsigned)SHRINKER_CACHE_DEFERRED)
			return -EINVAL;
		if (o.max_bytes && o.max_bytes < SHRINKER_CACHE_MAX_MIN)
			o.max_bytes = SHRINKER_CACHE_MAX_MIN;
	}
	o.size = sizeof(o);
	struct shrinker_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->opt = o;
	atomic_store(&c->seg_pages, SEG_BYTES);
	memcpy(c->name, name, strlen(name) + 1); /* fits: checked above */
	c->nshards = shard_count();
	unsigned bits = 0;
	while ((1u << bits) < c->nshards)
		bits++;
	c->shard_shift = 64 - bits;
	c->shards = aligned_alloc(64, c->nshards * sizeof(struct shard));
	if (!c->shards) {
		free(c);
		return -ENOMEM;
	}
	memset(c->shards, 0, c->nshards * sizeof(struct shard));
	pthread_mutex_init(&c->queue_lock, NULL);
	unsigned made = 0;
	/* Adaptive: a thread that finds the lock taken spins a while before
	 * it sleeps, as the holder keeps it for a lookup's time only (a futex
	 * sleep and wake-up cost more than the lookup). */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	for (; made < c->nshards; made++) {
		pthread_mutex_init(&c->shards[made].shard_lock, &attr);
		if (shrinker__index_init(c, &c->shards[made]) < 0)
			break;
	}
	pthread_mutexattr_destroy(&attr);
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != sizeof(c->seed))
		c->seed = shrinker__now_ns() ^ (uint64_t)(uintptr_t)c;
	int r = made < c->nshards ? -ENOMEM : 0;
	if (r == 0)
		r = shrinker_register(&c->shrinker, name, shrinker__cache_shrink, c,
				      (o.flags & SHRINKER_CACHE_DEFERRED) ? SHRINKER_DEFERRED : 0);
	if (r < 0) {
		c->nshards = made;
		teardown(c);
		return r;
	}
	shrinker__size_report(c);
	*ret = c;
	return 0;
}

static uint64_t values_held(struct shrinker_cache *c)
{
	uint64_t pins = 0, released = 0;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *sh = &c->shards[i];
		shrinker__shard_lock(sh);
		pins += sh->pins;
		shrinker__shard_unlock(sh);
		released += atomic_load_explicit(&sh->released, memory_order_acquire);
	}
	return pins - released;
}

static bool loads_running(struct shrinker_cache *c)
{
	bool any = false;
	for (unsigned i = 0; i < c->nshards && !any; i++) {
		shrinker__shard_lock(&c->shards[i]);
		any = c->shards[i].loads != NULL;
		shrinker__shard_unlock(&c->shards[i]);
	}
	return any;
}

SHRINKER_EXPORT int shrinker_cache_free(struct shrinker_cache *c)
{
	if (!c)
		return 0;
	if (shrinker__shrinking == c)
		return -EDEADLK; /* from a destroy function its shrinker called */
	bool no = false;
	if (!atomic_compare_exchange_strong(&c->closing, &no, true))
		return -ESHUTDOWN;
	if (values_held(c) || atomic_load(&c->callbacks) || loads_running(c)) {
		atomic_store(&c->closing, false);
		return -EBUSY;
	}
	/* No callback runs after this; then everything goes, objects
	 * destroyed (a destroy that calls the cache gets -ESHUTDOWN). */
	shrinker_unregister(c->shrinker);
	c->shrinker = NULL; /* shrinker_set_size(NULL) is a no-op */
	shrinker__evict(c, SIZE_MAX, EVICT_CLEAR, NULL, NULL);
	teardown(c);
	return 0;
}

SHRINKER_EXPORT int shrinker_cache_get_stats(struct shrinker_cache *c,
					     struct shrinker_cache_stats *ret)
{
	if (!c || !ret || ret->size < offsetof(struct shrinker_cache_stats, entries))
		return -EINVAL;
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	uint64_t released = 0, pins = 0;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *sh = &c->shards[i];
		shrinker__shard_lock(sh);
		st.entries += sh->entries;
		st.data_bytes += sh->data_bytes;
		st.hits += sh->hits;
		st.misses += sh->misses;
		st.inserts += sh->inserts;
		st.evicted_pressure += sh->evicted[0];
		st.evicted_replacement += sh->evicted[1];
		st.expired += sh->expired;
		st.removed += sh->removed;
		st.load_waits += sh->waits;
		st.evicted_bytes += sh->evicted_bytes;
		pins += sh->pins;
		shrinker__shard_unlock(sh);
		released += atomic_load_explicit(&sh->released, memory_order_acquire);
	}
	st.held = pins - released;
	st.bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	st.given_back = atomic_load_explicit(&c->given_back, memory_order_relaxed);
	st.loads = atomic_load_explicit(&c->loads, memory_order_relaxed);
	st.shrink_began_ns = atomic_load(&c->shrink_began_ns);
	size_t n = ret->size < sizeof(st) ? ret->size : sizeof(st);
	st.size = ret->size;
	memcpy(ret, &st, n);
	return 0;
}

SHRINKER_EXPORT struct shrinker *shrinker_cache_get_shrinker(struct shrinker_cache *c)
{
	return c ? c->shrinker : NULL;
}
