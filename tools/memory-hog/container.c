/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: memory-hog's caches on the library's cache container
 * (include/shrinker-cache.h), as a program that wants a cache with no size
 * to set uses it: the container grows when the library grants room,
 * replaces its own entries when refused, and frees in its own shrinker;
 * memory-hog only looks keys up and sets the values it misses (workers.c)
 * and shows the counters (display.c).  Values are those of the
 * hand-written cache (cache.c): a size that depends on the key, a pattern
 * on every page, so that what the container holds is resident.  The
 * shrinker counters memory-hog shows come from the container's shrinker
 * (shrinker_get_stats()); the time of a shrink is when the latest run of
 * the container's shrinker calls began (shrink_began_ns), or, for calls
 * that go on from a run begun before the previous sample, that of the
 * last one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "shrinker-cache.h"

bool cache_use_container(struct cache *c, bool deferred)
{
	struct shrinker_cache_options o = {
		.size = sizeof(o),
		.flags = deferred ? SHRINKER_CACHE_DEFERRED : 0,
		.max_bytes = c->cap,
	};

	return shrinker_cache_new(&c->container, c->name, &o) == 0;
}

/* A value as cache.c's fill() writes it, in a buffer of each thread's,
 * freed when the thread exits. */
struct value_buf {
	unsigned char *p;
	size_t have;
};
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void buf_free(void *arg)
{
	struct value_buf *b = arg;

	free(b->p);
	free(b);
}

static void buf_key_make(void)
{
	pthread_key_create(&buf_key, buf_free);
}

static const unsigned char *value_of(const struct cache *c, uint64_t key, size_t size)
{
	struct value_buf *b;
	size_t i;

	pthread_once(&buf_once, buf_key_make);
	b = pthread_getspecific(buf_key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b || pthread_setspecific(buf_key, b) != 0) {
			free(b);
			return NULL;
		}
	}
	if (!b->p || b->have < size) {
		size_t want = size > c->max_value ? size : c->max_value;

		free(b->p);
		b->p = calloc(1, want ? want : 1);
		b->have = b->p ? want : 0;
		if (!b->p)
			return NULL;
	}
	for (i = 0; i < size; i += 4096)
		b->p[i] = (unsigned char)(key + i);
	if (size)
		b->p[size - 1] = (unsigned char)key;
	return b->p;
}

bool container_get(struct cache *c, uint64_t key, size_t size)
{
	struct shrinker_cache_value v;
	const unsigned char *val;

	if (shrinker_cache_get(c->container, &key, sizeof(key), &v) == 0) {
		volatile unsigned char sink = v.len ? ((const unsigned char *)v.data)[0] : 0;

		(void)sink;
		shrinker_cache_release(c->container, &v);
		return true;
	}
	val = value_of(c, key, size);
	if (val)
		shrinker_cache_set(c->container, &key, sizeof(key), val, size, 0);
	return false;
}

void container_stats(struct cache *c, struct cache_stats *st)
{
	struct shrinker_cache_stats cs = { .size = sizeof(cs) };
	struct shrinker_stats ss = { 0 };

	shrinker_cache_get_stats(c->container, &cs);
	shrinker_get_stats(shrinker_cache_get_shrinker(c->container), &ss);
	if (cs.bytes > c->peak_bytes)
		c->peak_bytes = cs.bytes;
	*st = (struct cache_stats){
		.bytes = cs.bytes, .entries = cs.entries, .peak_bytes = c->peak_bytes,
		.hits = cs.hits, .misses = cs.misses,
		.replaced = cs.evicted_replacement,
		.shrink_calls = ss.calls, .shrink_hard_calls = ss.hard_calls,
		.shrink_asked = ss.bytes_asked, .shrink_freed = ss.bytes_freed,
		.shrink_dropped = cs.evicted_bytes,
	};
	if (ss.calls != c->container_calls)
		st->first_shrink_ns = cs.shrink_began_ns > c->container_seen_ns ?
				      cs.shrink_began_ns : ss.last_call_ns;
	c->container_calls = ss.calls;
	c->container_seen_ns = cs.shrink_began_ns;
}

void container_destroy(struct cache *c)
{
	shrinker_cache_free(c->container);
	c->container = NULL;
}
