/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: compute once (shrinker_cache_get_or_load()).  The first caller
 * to miss a key puts a load record, on its own stack, in the key's shard
 * and calls the program's load function with no lock held; callers of the
 * same key that miss meanwhile find the record and wait on its condition
 * variable (under the shard's lock).  The loader stores the value (held
 * once, for itself), then, under the lock, takes the record out of the
 * shard, holds the value once more for each waiter, wakes them, and waits
 * until each has copied its held value out of the record, which it may
 * then let go of.  An error reaches every waiter the same way, and nothing
 * is cached.  A loader that asks for its own key again would wait for
 * itself: that call fails with -EDEADLK.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "8-cache/private.h"

struct load {
	struct load *next;        /* in the shard's list */
	const void *key;
	size_t klen;
	uint64_t h;
	pthread_t loader;
	pthread_cond_t cond;      /* waiters wait, then the loader */
	unsigned waiters;         /* shard_lock: waiting or not yet served */
	bool done;
	int err;
	struct shrinker_cache_value v; /* held once for each waiter */
};

static struct load *find_load_locked(struct shard *sh, uint64_t h,
				     const void *key, size_t klen)
{
	SHRINKER__ASSERT_SHARD_HELD();
	for (struct load *l = sh->loads; l; l = l->next)
		if (l->h == h && l->klen == klen && memcmp(l->key, key, klen) == 0)
			return l;
	return NULL;
}

/* Wait for another thread's load of the key; the shard's lock is held and
 * still held on return. */
static int wait_locked(struct shard *sh, struct load *l,
		       struct shrinker_cache_value *ret)
{
	SHRINKER__ASSERT_SHARD_HELD();
	l->waiters++;
	sh->waits++;
	while (!l->done)
		pthread_cond_wait(&l->cond, &sh->shard_lock);
	int r = l->err;
	if (r == 0) {
		*ret = l->v; /* the loader held it once for us */
		sh->pins++;
	}
	if (--l->waiters == 0)
		pthread_cond_broadcast(&l->cond);
	return r;
}

/* One kind filled: an object (and no bytes), or bytes (data not NULL,
 * even for an empty value, and no cost). */
static int check_loaded(const struct shrinker_cache_loaded *out)
{
	if (out->object)
		return out->data || out->len ? -EINVAL : 0;
	return out->cost || !out->data ? -EINVAL : 0;
}

SHRINKER_EXPORT int shrinker_cache_get_or_load(struct shrinker_cache *c,
					       const void *key, size_t klen,
					       shrinker_cache_load_fn load,
					       void *userdata,
					       struct shrinker_cache_value *ret)
{
	uint64_t h;
	struct shard *sh;
	int r = load && ret ? shrinker__locate(c, key, klen, -E2BIG, &h, &sh) : -EINVAL;
	if (r < 0)
		return r;
	struct graves g = { 0 };
	shrinker__shard_lock(sh);
	struct ent *e = shrinker__lookup_locked(c, sh, h, key, klen, &g);
	if (e) {
		shrinker__value_fill_locked(sh, e, ret);
		shrinker__shard_unlock(sh);
		shrinker__graves_flush(c, &g);
		return 0;
	}
	struct load *other = find_load_locked(sh, h, key, klen);
	if (other) {
		r = pthread_equal(other->loader, pthread_self()) ? -EDEADLK
				: wait_locked(sh, other, ret);
		shrinker__shard_unlock(sh);
		shrinker__graves_flush(c, &g);
		return r;
	}
	struct load l = { .key = key, .klen = klen, .h = h, .loader = pthread_self() };
	pthread_cond_init(&l.cond, NULL);
	l.next = sh->loads;
	sh->loads = &l;
	shrinker__shard_unlock(sh);
	shrinker__graves_flush(c, &g);

	atomic_fetch_add_explicit(&c->loads, 1, memory_order_relaxed);
	struct shrinker_cache_loaded out = { 0 };
	struct shrinker_cache_value v = { 0 };
	atomic_fetch_add(&c->callbacks, 1);
	r = load(key, klen, &out, userdata);
	atomic_fetch_sub(&c->callbacks, 1);
	if (r > 0)
		r = -EINVAL; /* not what the contract allows */
	if (r == 0)
		r = check_loaded(&out);
	if (r == 0) {
		r = shrinker__store_loaded(c, key, klen, &out, &v);
		if (r < 0 && out.object)
			shrinker__destroy(c, out.object);
	} else if (out.object && check_loaded(&out) == 0) {
		shrinker__destroy(c, out.object);
	}

	shrinker__shard_lock(sh);
	struct load **pp = &sh->loads;
	while (*pp != &l)
		pp = &(*pp)->next;
	*pp = l.next;
	l.err = r;
	if (r == 0) {
		l.v = v;
		/* One more hold for each waiter, on what we hold already. */
		atomic_fetch_add_explicit(&((struct pin *)v.priv[0])->word,
					  l.waiters, memory_order_relaxed);
	}
	l.done = true;
	if (l.waiters) {
		pthread_cond_broadcast(&l.cond);
		while (l.waiters)
			pthread_cond_wait(&l.cond, &sh->shard_lock);
	}
	shrinker__shard_unlock(sh);
	pthread_cond_destroy(&l.cond);
	if (r == 0)
		*ret = v;
	return r;
}
