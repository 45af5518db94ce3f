/* SPDX-License-Identifier: MIT */
/*
 * The cache container (include/shrinker-cache.h): its operations, the two
 * kinds of values, holding a value through the hardest shrink, compute
 * once, expiry, the eviction order against a scan, memory that really goes
 * back (RSS against what the shrinker reports), misuse with the results
 * the header defines, a random-operation run against a simple model, and
 * threads (run it under make check SANITIZE=thread).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../src/internal.h"
#include "helpers.h"
#include "shrinker-cache.h"
#include "tap.h"

static void key_of(char *k, unsigned i)
{
	snprintf(k, 32, "key-%08u", i);
}

/* A value that says which key and version it is, checkable anywhere. */
static size_t value_of(unsigned char *v, size_t len, unsigned key, unsigned ver)
{
	for (size_t i = 0; i < len; i++)
		v[i] = (unsigned char)(key * 31 + ver * 7 + i);
	return len;
}

static bool value_is(const unsigned char *v, size_t len, unsigned key, unsigned ver)
{
	for (size_t i = 0; i < len; i++)
		if (v[i] != (unsigned char)(key * 31 + ver * 7 + i))
			return false;
	return true;
}

/* Valgrind keeps its own copy of memory and runs 50 times slower: RSS
 * figures, the library's timing and the eviction order's statistics mean
 * nothing under it, and its runs check memory errors with less work. */
static bool under_valgrind(void)
{
	return getenv("VALGRIND") != NULL;
}

/* RSS under a sanitizer or valgrind counts their shadow memory and
 * quarantines too. */
static bool rss_meaningless(void)
{
	return under_valgrind() || (getenv("SANITIZE") && *getenv("SANITIZE"));
}

static struct shrinker_cache *make(size_t max, unsigned flags,
				   shrinker_cache_destroy_fn destroy, void *ud)
{
	struct shrinker_cache_options o = {
		.size = sizeof(o), .max_bytes = max, .flags = flags,
		.destroy = destroy, .userdata = ud,
	};
	struct shrinker_cache *c = NULL;
	return shrinker_cache_new(&c, "test", &o) == 0 ? c : NULL;
}

static int test_basic(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	struct shrinker_cache_value v;
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	static unsigned char big[200000], buf[300000];
	char out[16];
	int r = TAP_FAIL;

	CHECK(c);
	CHECK(shrinker_cache_set(c, "a", 1, "hello", 5, 0) == 0);
	CHECK(shrinker_cache_get(c, "a", 1, &v) == 0);
	CHECK(v.len == 5 && memcmp(v.data, "hello", 5) == 0 && !v.object);
	CHECK(((uintptr_t)v.data & 7) == 0);
	CHECK(shrinker_cache_release(c, &v) == 0);
	CHECK(shrinker_cache_copy(c, "a", 1, out, sizeof(out)) == 5);
	CHECK(memcmp(out, "hello", 5) == 0);
	CHECK(shrinker_cache_copy(c, "a", 1, out, 2) == 5); /* cut, told the length */
	CHECK(shrinker_cache_set(c, "a", 1, "bye", 3, 0) == 0);
	CHECK(shrinker_cache_copy(c, "a", 1, out, sizeof(out)) == 3 && memcmp(out, "bye", 3) == 0);
	CHECK(shrinker_cache_set(c, "empty", 5, NULL, 0, 0) == 0);
	CHECK(shrinker_cache_get(c, "empty", 5, &v) == 0 && v.len == 0);
	CHECK(shrinker_cache_release(c, &v) == 0);
	/* A value larger than a segment: a mapping of its own. */
	value_of(big, sizeof(big), 7, 1);
	CHECK(shrinker_cache_set(c, "big", 3, big, sizeof(big), 0) == 0);
	CHECK(shrinker_cache_copy(c, "big", 3, buf, sizeof(buf)) == (ssize_t)sizeof(big));
	CHECK(value_is(buf, sizeof(big), 7, 1));
	CHECK(shrinker_cache_get(c, "big", 3, &v) == 0 && v.len == sizeof(big));
	CHECK(value_is(v.data, v.len, 7, 1));
	CHECK(shrinker_cache_release(c, &v) == 0);
	CHECK(shrinker_cache_remove(c, "a", 1) == 0);
	CHECK(shrinker_cache_remove(c, "a", 1) == -ENOENT);
	CHECK(shrinker_cache_get(c, "a", 1, &v) == -ENOENT);
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("entries %llu bytes %llu data %llu hits %llu misses %llu",
		 (unsigned long long)st.entries, (unsigned long long)st.bytes,
		 (unsigned long long)st.data_bytes, (unsigned long long)st.hits,
		 (unsigned long long)st.misses);
	CHECK(st.entries == 2 && st.inserts == 4 && st.removed == 1);
	CHECK(st.data_bytes == 5 + 3 + sizeof(big));
	CHECK(st.bytes >= st.data_bytes && st.held == 0);
	CHECK(st.hits == 7 && st.misses == 1);
	CHECK(shrinker_get_stats(shrinker_cache_get_shrinker(c), &(struct shrinker_stats){ 0 }) == 0);
	CHECK(shrinker_cache_clear(c) == 0);
	CHECK(shrinker_cache_get(c, "big", 3, &v) == -ENOENT);
	CHECK(shrinker_cache_get_stats(c, &st) == 0 && st.entries == 0 && st.data_bytes == 0);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

static int test_arguments(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL), *d = NULL;
	struct shrinker_cache_value v = { 0 };
	struct shrinker_cache_stats st = { .size = 8 };
	char name[SHRINKER_NAME_MAX + 2], key[SHRINKER_CACHE_KEY_MAX + 1];
	struct { struct shrinker_cache_options o; uint64_t more; } future = {
		.o = { .size = sizeof(future) }, .more = 1 };
	int r = TAP_FAIL;

	CHECK(c);
	CHECK(shrinker_cache_new(NULL, "x", NULL) == -EINVAL);
	CHECK(shrinker_cache_new(&d, NULL, NULL) == -EINVAL);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK(shrinker_cache_new(&d, name, NULL) == -ENAMETOOLONG);
	CHECK(shrinker_cache_new(&d, "x", &(struct shrinker_cache_options){ .size = 0 }) == -EINVAL);
	CHECK(shrinker_cache_new(&d, "x", &future.o) == -EINVAL); /* unknown field set */
	future.more = 0;
	CHECK(shrinker_cache_new(&d, "x", &future.o) == 0);
	CHECK(shrinker_cache_free(d) == 0);
	CHECK(shrinker_cache_new(&d, "x", &(struct shrinker_cache_options){
		.size = sizeof(struct shrinker_cache_options), .flags = 8 }) == -EINVAL);
	CHECK(shrinker_cache_free(NULL) == 0);
	CHECK(shrinker_cache_set(NULL, "k", 1, "v", 1, 0) == -EINVAL);
	CHECK(shrinker_cache_set(c, NULL, 1, "v", 1, 0) == -EINVAL);
	CHECK(shrinker_cache_set(c, "k", 0, "v", 1, 0) == -EINVAL);
	CHECK(shrinker_cache_set(c, "k", 1, NULL, 1, 0) == -EINVAL);
	memset(key, 'k', sizeof(key));
	CHECK(shrinker_cache_set(c, key, sizeof(key), "v", 1, 0) == -E2BIG);
	CHECK(shrinker_cache_set(c, key, sizeof(key) - 1, "v", 1, 0) == 0);
	CHECK(shrinker_cache_get(c, key, sizeof(key) - 1, &v) == 0);
	CHECK(shrinker_cache_release(c, &v) == 0);
	CHECK(shrinker_cache_release(c, &v) == -EINVAL); /* twice */
	CHECK(shrinker_cache_release(c, NULL) == -EINVAL);
	CHECK(shrinker_cache_get(c, "", 0, &v) == -EINVAL);
	CHECK(shrinker_cache_get(c, "k", 1, NULL) == -EINVAL);
	CHECK(shrinker_cache_copy(c, "k", 1, NULL, 4) == -EINVAL);
	CHECK(shrinker_cache_set_object(c, "o", 1, NULL, 4, 0) == -EINVAL);
	CHECK(shrinker_cache_remove(c, NULL, 1) == -EINVAL);
	CHECK(shrinker_cache_clear(NULL) == -EINVAL);
	CHECK(shrinker_cache_get_or_load(c, "k", 1, NULL, NULL, &v) == -EINVAL);
	CHECK(shrinker_cache_get_stats(c, &st) == -EINVAL);
	CHECK(shrinker_cache_get_stats(NULL, &st) == -EINVAL);
	st.size = offsetof(struct shrinker_cache_stats, entries);
	st.bytes = 12345;
	CHECK(shrinker_cache_get_stats(c, &st) == 0 && st.bytes != 12345);
	CHECK(shrinker_cache_get_shrinker(NULL) == NULL);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* Object values: destroyed once, when they leave and no one holds them. */
struct objs {
	atomic_int destroyed;
	struct shrinker_cache *c; /* to call back into */
	int callback_result;
	bool call_back;
};

static void destroy_obj(void *o, void *ud)
{
	struct objs *s = ud;
	free(o);
	atomic_fetch_add(&s->destroyed, 1);
	if (s->call_back) {
		/* A destroy function may use the cache. */
		s->callback_result = shrinker_cache_set(s->c, "from-destroy", 12, "x", 1, 0);
		if (s->callback_result == 0) {
			struct shrinker_cache_value v;
			s->callback_result = shrinker_cache_get(s->c, "from-destroy", 12, &v);
			if (s->callback_result == 0)
				s->callback_result = shrinker_cache_release(s->c, &v);
		}
	}
}

static int test_objects(void)
{
	struct objs s = { 0 };
	struct shrinker_cache *c = make(0, 0, destroy_obj, &s);
	struct shrinker_cache_value v, w;
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	int r = TAP_FAIL;

	CHECK(c);
	s.c = c;
	CHECK(shrinker_cache_set_object(c, "o", 1, strdup("one"), 1000, 0) == 0);
	CHECK(shrinker_cache_get(c, "o", 1, &v) == 0);
	CHECK(v.object && strcmp(v.object, "one") == 0 && v.cost == 1000 && !v.data);
	CHECK(shrinker_cache_copy(c, "o", 1, NULL, 0) == -EMEDIUMTYPE);
	/* Replaced while held: destroyed at the release, not before. */
	CHECK(shrinker_cache_set_object(c, "o", 1, strdup("two"), 2000, 0) == 0);
	CHECK(atomic_load(&s.destroyed) == 0);
	CHECK(strcmp(v.object, "one") == 0);
	CHECK(shrinker_cache_get_stats(c, &st) == 0 && st.held == 1);
	CHECK(shrinker_cache_release(c, &v) == 0);
	CHECK(atomic_load(&s.destroyed) == 1);
	/* Removed, unheld: at once; a destroy that calls back into the cache. */
	s.call_back = true;
	CHECK(shrinker_cache_get(c, "o", 1, &w) == 0 && strcmp(w.object, "two") == 0);
	CHECK(shrinker_cache_release(c, &w) == 0);
	CHECK(shrinker_cache_remove(c, "o", 1) == 0);
	CHECK(atomic_load(&s.destroyed) == 2);
	CHECK(s.callback_result == 0);
	CHECK(shrinker_cache_copy(c, "from-destroy", 12, NULL, 0) == 1);
	s.call_back = false;
	/* Freeing the cache destroys what it holds. */
	for (unsigned i = 0; i < 100; i++) {
		char k[32];
		key_of(k, i);
		CHECK(shrinker_cache_set_object(c, k, strlen(k), malloc(16), 16, 0) == 0);
	}
	s.call_back = true; /* now calls into a cache being freed */
	CHECK(shrinker_cache_free(c) == 0);
	c = NULL;
	CHECK(atomic_load(&s.destroyed) == 102);
	CHECK(s.callback_result == -ESHUTDOWN);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* Misuse: freeing a cache with a value held; a value too large. */
static int test_misuse(void)
{
	struct shrinker_cache *c = make(4 * MiB, 0, NULL, NULL);
	struct shrinker_cache_value v;
	static unsigned char big[5 * 1024 * 1024];
	int r = TAP_FAIL;

	CHECK(c);
	CHECK(shrinker_cache_set(c, "k", 1, "v", 1, 0) == 0);
	CHECK(shrinker_cache_get(c, "k", 1, &v) == 0);
	CHECK(shrinker_cache_free(c) == -EBUSY);
	/* Still usable. */
	CHECK(shrinker_cache_set(c, "k2", 2, "w", 1, 0) == 0);
	CHECK(*(const char *)v.data == 'v');
	CHECK(shrinker_cache_release(c, &v) == 0);
	/* Larger than the cache's maximum. */
	CHECK(shrinker_cache_set(c, "big", 3, big, sizeof(big), 0) == -E2BIG);
	CHECK(shrinker_cache_set_object(c, "obj", 3, big, sizeof(big), 0) == -E2BIG);
	CHECK(shrinker_cache_copy(c, "k2", 2, NULL, 0) == 1);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* Take a budget off, and let the reclaimer finish what it asked under it,
 * so that the next test starts with no pressure. */
static void budget_off(void)
{
	struct shrinker_memory m;
	shrinker_set_limit(0);
	shrinker_get_memory(&m);
	sleep_ms(300);
}

/* A value larger than the memory limit (a budget set for the test). */
static int test_too_large(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	static unsigned char big[5 * 1024 * 1024];
	struct shrinker_memory m;
	int r = TAP_FAIL;

	CHECK(c);
	CHECK(shrinker_set_limit(4 * MiB) == 0);
	CHECK(shrinker_get_memory(&m) == 0);
	tap_diag("limit %llu (%s)", (unsigned long long)m.limit, m.limit_source);
	CHECK(shrinker_cache_set(c, "big", 3, big, sizeof(big), 0) == -E2BIG);
	CHECK(shrinker_cache_set_object(c, "obj", 3, big, sizeof(big), 0) == -E2BIG);
	r = TAP_PASS;
fail:
	budget_off();
	shrinker_cache_free(c);
	return r;
}

static unsigned loads_made;
static atomic_uint load_calls;

static int load_slow(const void *key, size_t klen, struct shrinker_cache_loaded *out, void *ud)
{
	static unsigned char val[100];
	atomic_fetch_add(&load_calls, 1);
	usleep(100 * 1000); /* long enough for the others to come */
	value_of(val, sizeof(val), 42, 1);
	out->data = val;
	out->len = sizeof(val);
	return 0;
}

static int load_fail(const void *key, size_t klen, struct shrinker_cache_loaded *out, void *ud)
{
	atomic_fetch_add(&load_calls, 1);
	usleep(50 * 1000);
	return -EIO;
}

static int load_self(const void *key, size_t klen, struct shrinker_cache_loaded *out, void *ud)
{
	struct shrinker_cache_value v;
	int *result = ud;
	*result = shrinker_cache_get_or_load(*(struct shrinker_cache **)((char *)ud + sizeof(int) * 2),
					     key, klen, load_self, ud, &v);
	out->data = "x";
	out->len = 1;
	return 0;
}

struct loader {
	struct shrinker_cache *c;
	shrinker_cache_load_fn fn;
	int result;
	const void *data;
	bool ok;
	pthread_t t;
};

static void *load_thread(void *arg)
{
	struct loader *l = arg;
	struct shrinker_cache_value v;
	l->result = shrinker_cache_get_or_load(l->c, "lk", 2, l->fn, NULL, &v);
	if (l->result == 0) {
		l->data = v.data;
		l->ok = v.len == 100 && value_is(v.data, v.len, 42, 1);
		shrinker_cache_release(l->c, &v);
	}
	return NULL;
}

static int test_load_once(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	struct loader l[8];
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	int r = TAP_FAIL;
	struct { int result; int pad; struct shrinker_cache *c; } self = { 0 };

	CHECK(c);
	(void)loads_made;
	atomic_store(&load_calls, 0);
	for (unsigned i = 0; i < 8; i++) {
		l[i] = (struct loader){ .c = c, .fn = load_slow };
		CHECK(pthread_create(&l[i].t, NULL, load_thread, &l[i]) == 0);
	}
	for (unsigned i = 0; i < 8; i++)
		pthread_join(l[i].t, NULL);
	CHECK(atomic_load(&load_calls) == 1);
	for (unsigned i = 0; i < 8; i++)
		CHECK(l[i].result == 0 && l[i].ok && l[i].data == l[0].data);
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("loads %llu waits %llu", (unsigned long long)st.loads,
		 (unsigned long long)st.load_waits);
	CHECK(st.loads == 1 && st.held == 0);
	/* An error reaches every caller; nothing is cached. */
	CHECK(shrinker_cache_remove(c, "lk", 2) == 0);
	atomic_store(&load_calls, 0);
	for (unsigned i = 0; i < 4; i++) {
		l[i] = (struct loader){ .c = c, .fn = load_fail };
		CHECK(pthread_create(&l[i].t, NULL, load_thread, &l[i]) == 0);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(l[i].t, NULL);
	for (unsigned i = 0; i < 4; i++)
		CHECK(l[i].result == -EIO);
	CHECK(atomic_load(&load_calls) >= 1 && atomic_load(&load_calls) <= 4);
	CHECK(shrinker_cache_copy(c, "lk", 2, NULL, 0) == -ENOENT);
	/* A load of the key from its own load function. */
	self.c = c;
	struct shrinker_cache_value v;
	CHECK(shrinker_cache_get_or_load(c, "self", 4, load_self, &self, &v) == 0);
	CHECK(self.result == -EDEADLK);
	CHECK(shrinker_cache_release(c, &v) == 0);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

static int test_expiry(void)
{
	struct shrinker_cache_options o = { .size = sizeof(o), .ttl_ns = 10ull * 1000000000 };
	struct shrinker_cache *c = NULL;
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	int r = TAP_FAIL;

	CHECK(shrinker_cache_new(&c, "ttl", &o) == 0);
	CHECK(shrinker_cache_set(c, "short", 5, "s", 1, 1000000000ull) == 0);
	CHECK(shrinker_cache_set(c, "default", 7, "d", 1, 0) == 0);
	CHECK(shrinker_cache_set(c, "never", 5, "n", 1, SHRINKER_CACHE_TTL_NEVER) == 0);
	CHECK(shrinker_cache_copy(c, "short", 5, NULL, 0) == 1);
	/* The library's clock, moved ahead (the tests' way of waiting). */
	atomic_fetch_add(&shrinker__clock_ahead_ns, 2000000000ull);
	CHECK(shrinker_cache_copy(c, "short", 5, NULL, 0) == -ENOENT);
	CHECK(shrinker_cache_copy(c, "default", 7, NULL, 0) == 1);
	atomic_fetch_add(&shrinker__clock_ahead_ns, 10000000000ull);
	CHECK(shrinker_cache_copy(c, "default", 7, NULL, 0) == -ENOENT);
	CHECK(shrinker_cache_copy(c, "never", 5, NULL, 0) == 1);
	CHECK(shrinker_cache_get_stats(c, &st) == 0 && st.expired == 2 && st.entries == 1);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* A value held survives the hardest shrink, which empties the cache. */
static int test_held_through_shrink(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	struct shrinker_cache_value v, big;
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	static unsigned char b[1 << 20], val[200];
	size_t freed = 0;
	int r = TAP_FAIL;

	unsigned n = under_valgrind() ? 1000 : 5000;

	CHECK(c);
	for (unsigned i = 0; i < n; i++) {
		char k[32];
		key_of(k, i);
		value_of(val, sizeof(val), i, 0);
		CHECK(shrinker_cache_set(c, k, strlen(k), val, sizeof(val), 0) == 0);
	}
	value_of(b, sizeof(b), 9, 9);
	CHECK(shrinker_cache_set(c, "big", 3, b, sizeof(b), 0) == 0);
	CHECK(shrinker_cache_get(c, "key-00000010", 12, &v) == 0);
	CHECK(shrinker_cache_get(c, "big", 3, &big) == 0);
	CHECK(shrinker_request_reclaim(64 * MiB, SHRINKER_HARD | SHRINKER_WAIT, &freed) == 0);
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("freed %zu, entries %llu, bytes %llu, held %llu", freed,
		 (unsigned long long)st.entries, (unsigned long long)st.bytes,
		 (unsigned long long)st.held);
	CHECK(st.entries == 0 && st.evicted_pressure >= n && st.held == 2);
	CHECK(shrinker_cache_copy(c, "key-00000010", 12, NULL, 0) == -ENOENT);
	/* Still there, unchanged, while held. */
	CHECK(v.len == sizeof(val) && value_is(v.data, v.len, 10, 0));
	CHECK(big.len == sizeof(b) && value_is(big.data, big.len, 9, 9));
	uint64_t before = st.bytes;
	CHECK(shrinker_cache_release(c, &v) == 0);
	CHECK(shrinker_cache_release(c, &big) == 0);
	CHECK(shrinker_cache_get_stats(c, &st) == 0 && st.held == 0);
	tap_diag("bytes after the releases %llu (before %llu)",
		 (unsigned long long)st.bytes, (unsigned long long)before);
	CHECK(st.bytes + (1 << 20) <= before);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* S3-FIFO: a scan of one-time keys, as many as the cache holds, leaves the
 * keys read often in it. */
static int test_scan(void)
{
	struct shrinker_cache *c = make(4 * MiB, 0, NULL, NULL);
	static unsigned char val[100];
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	unsigned hot = 5000, kept = 0;
	char k[32];
	int r = TAP_FAIL;

	if (under_valgrind()) {
		r = tap_skip_why("the eviction order under valgrind: 60000 operations for no memory error more");
		goto fail;
	}
	CHECK(c);
	for (unsigned round = 0; round < 3; round++)
		for (unsigned i = 0; i < hot; i++) {
			key_of(k, i);
			if (shrinker_cache_copy(c, k, strlen(k), val, sizeof(val)) < 0)
				CHECK(shrinker_cache_set(c, k, strlen(k), val, sizeof(val), 0) == 0);
		}
	/* The scan: 4 MiB of keys seen once (about 28000 entries). */
	for (unsigned i = 0; i < 40000; i++) {
		key_of(k, 1000000 + i);
		CHECK(shrinker_cache_set(c, k, strlen(k), val, sizeof(val), 0) == 0);
	}
	for (unsigned i = 0; i < hot; i++) {
		key_of(k, i);
		kept += shrinker_cache_copy(c, k, strlen(k), NULL, 0) == sizeof(val);
	}
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("%u of %u hot keys kept through the scan; %llu bytes, %llu entries",
		 kept, hot, (unsigned long long)st.bytes, (unsigned long long)st.entries);
	CHECK(st.bytes <= 4 * MiB + 64 * 1024); /* within a segment */
	CHECK(kept >= hot * 9 / 10);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

static uint64_t rss_now(void)
{
	return rss_bytes();
}


/* What the shrinker reports freed leaves the resident set: small values
 * and large ones, against RSS. */
static int giveback(size_t vlen, unsigned n)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	unsigned char *val = malloc(vlen);
	size_t freed = 0;
	int r = TAP_FAIL;

	if (rss_meaningless()) {
		r = tap_skip_why("RSS figures are meaningless under a sanitizer or valgrind");
		goto fail;
	}
	CHECK(c && val);
	for (unsigned i = 0; i < n; i++) {
		char k[32];
		key_of(k, i);
		value_of(val, vlen, i, 0);
		CHECK(shrinker_cache_set(c, k, strlen(k), val, vlen, 0) == 0);
	}
	/* Read a third, so that some entries are hot and move. */
	for (unsigned i = 0; i < n; i += 3) {
		char k[32];
		key_of(k, i);
		shrinker_cache_copy(c, k, strlen(k), NULL, 0);
	}
	uint64_t before = rss_now();
	CHECK(shrinker_request_reclaim((size_t)n * vlen / 2, SHRINKER_WAIT, &freed) == 0);
	uint64_t after = rss_now();
	tap_diag("%zu-byte values: the shrinker freed %zu bytes, RSS fell by %lld (%.1f %%)",
		 vlen, freed, (long long)(before - after),
		 freed ? 100.0 * ((double)before - (double)after) / (double)freed : 0.0);
	CHECK(freed >= (size_t)n * vlen / 4);
	CHECK((double)before - (double)after >= 0.95 * (double)freed);
	r = TAP_PASS;
fail:
	free(val);
	shrinker_cache_free(c);
	return r;
}

static int test_giveback_small(void)
{
	return giveback(100, 400000);
}

static int test_giveback_large(void)
{
	return giveback(200 * 1024, 300);
}

/* A shrink frees about what it is asked for, not whole queues: a segment
 * also counts the large values its entries point to. */
static int test_shrink_bounded(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	static unsigned char val[200 * 1024];
	struct shrinker_cache_stats st0 = { .size = sizeof(st0) }, st1 = st0;
	size_t freed = 0;
	int r = TAP_FAIL;

	/* Under a sanitizer RSS counts its shadow memory, so the share of
	 * what is freed that leaves RSS, by which the library scales what it
	 * asks of a cache, is meaningless too. */
	if (rss_meaningless()) {
		r = tap_skip_why("memory figures are meaningless under a sanitizer or valgrind");
		goto fail;
	}
	CHECK(c);
	for (unsigned i = 0; i < 200; i++) {
		char k[32];
		key_of(k, i);
		CHECK(shrinker_cache_set(c, k, strlen(k), val, sizeof(val), 0) == 0);
	}
	CHECK(shrinker_cache_get_stats(c, &st0) == 0);
	CHECK(shrinker_request_reclaim(1 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(shrinker_cache_get_stats(c, &st1) == 0);
	tap_diag("asked 1 MiB of %llu: freed %zu, %llu entries of 200 left",
		 (unsigned long long)st0.bytes, freed, (unsigned long long)st1.entries);
	/* A segment's worth: five values (1 MiB) and its page; without
	 * the weight, a segment of 200 of them gave 2.3 MiB, 11 values. */
	CHECK(freed >= 1 * MiB && freed <= 2 * MiB);
	CHECK(st1.entries >= 190);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* Random operations against a model: what the cache returns is always the
 * value last set for the key, and a key removed or never set is absent;
 * shrinks (any time) may only make keys absent. */
#define MODEL_KEYS 3000u
static int test_model(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	static unsigned ver[MODEL_KEYS];   /* 0: absent */
	static size_t len[MODEL_KEYS];
	static unsigned char buf[80000];
	unsigned seed = 12345, ops = under_valgrind() ? 10000 : 200000, bad = 0, found = 0;
	int r = TAP_FAIL;

	CHECK(c);
	for (unsigned op = 0; op < ops; op++) {
		unsigned k = (unsigned)rand_r(&seed) % MODEL_KEYS, what = (unsigned)rand_r(&seed) % 100;
		char key[32];
		key_of(key, k);
		size_t kl = strlen(key);
		if (what < 40) {
			size_t l = (unsigned)rand_r(&seed) % 20 == 0 ? (unsigned)rand_r(&seed) % 70000
								: (unsigned)rand_r(&seed) % 300;
			unsigned v = op + 1;
			value_of(buf, l, k, v);
			if (shrinker_cache_set(c, key, kl, buf, l, 0) != 0)
				bad++;
			ver[k] = v;
			len[k] = l;
		} else if (what < 80) {
			struct shrinker_cache_value v;
			int g = shrinker_cache_get(c, key, kl, &v);
			if (g == 0) {
				found++;
				if (!ver[k] || v.len != len[k] || !value_is(v.data, v.len, k, ver[k]))
					bad++;
				shrinker_cache_release(c, &v);
			} else if (g != -ENOENT) {
				bad++;
			}
		} else if (what < 90) {
			ssize_t n = shrinker_cache_copy(c, key, kl, buf, sizeof(buf));
			if (n >= 0 && (!ver[k] || (size_t)n != len[k] || !value_is(buf, len[k], k, ver[k])))
				bad++;
		} else if (what < 97) {
			int rm = shrinker_cache_remove(c, key, kl);
			if (rm == 0 && !ver[k])
				bad++;
			ver[k] = 0;
		} else if (what < 99) {
			if (op % 8 == 0) {
				size_t freed;
				shrinker_request_reclaim(1 + (unsigned)rand_r(&seed) % (256 << 10),
							 (op & 16 ? SHRINKER_HARD : 0) | SHRINKER_WAIT, &freed);
			}
		} else if (op % 50 == 0) {
			shrinker_cache_clear(c);
			memset(ver, 0, sizeof(ver));
		}
	}
	/* The counters agree with what a lookup of every key finds. */
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	unsigned present = 0;
	uint64_t data = 0;
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	for (unsigned k = 0; k < MODEL_KEYS; k++) {
		char key[32];
		key_of(key, k);
		ssize_t n = shrinker_cache_copy(c, key, strlen(key), buf, sizeof(buf));
		if (n >= 0) {
			present++;
			data += strlen(key) + (size_t)n;
		}
	}
	tap_diag("%u operations, %u found, %u wrong; %u present, entries %llu, data %llu/%llu",
		 ops, found, bad, present, (unsigned long long)st.entries,
		 (unsigned long long)data, (unsigned long long)st.data_bytes);
	CHECK(bad == 0);
	CHECK(present == st.entries && data == st.data_bytes && st.held == 0);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* Threads setting, getting, removing the same keys while the shrinker
 * runs: values are always whole and of their key. */
struct worker {
	struct shrinker_cache *c;
	unsigned seed, bad, gets;
	bool large;          /* every value 17-77 KB: in mappings, pooled */
	pthread_t t;
};
static atomic_bool stop_workers;

static void *worker(void *arg)
{
	struct worker *w = arg;
	static _Thread_local unsigned char buf[80000];
	while (!atomic_load(&stop_workers)) {
		unsigned k = (unsigned)rand_r(&w->seed) % (w->large ? 200 : 5000);
		unsigned what = (unsigned)rand_r(&w->seed) % 10;
		char key[32];
		key_of(key, k);
		size_t kl = strlen(key);
		if (what < 4) {
			size_t l = w->large ? 17000 + (unsigned)rand_r(&w->seed) % 60000 :
				   8 + (unsigned)rand_r(&w->seed) % (k % 50 == 0 ? 20000 : 400);
			unsigned v = (unsigned)rand_r(&w->seed) % 1000;
			value_of(buf, l, k, v);
			memcpy(buf, &v, sizeof(v)); /* the version, in the value */
			shrinker_cache_set(w->c, key, kl, buf, l, 0);
		} else if (what < 9) {
			struct shrinker_cache_value v;
			if (shrinker_cache_get(w->c, key, kl, &v) == 0) {
				unsigned ver;
				memcpy(&ver, v.data, sizeof(ver));
				unsigned char *copy = malloc(v.len);
				value_of(copy, v.len, k, ver);
				memcpy(copy, &ver, sizeof(ver));
				w->bad += v.len < 8 || memcmp(copy, v.data, v.len) != 0;
				free(copy);
				shrinker_cache_release(w->c, &v);
				w->gets++;
			}
		} else {
			shrinker_cache_remove(w->c, key, kl);
		}
	}
	return NULL;
}

static int run_threads(size_t max, bool large)
{
	struct shrinker_cache *c = make(max, 0, NULL, NULL);
	struct worker w[4];
	unsigned bad = 0, gets = 0;
	int r = TAP_FAIL;

	/* Under valgrind, whose threads take turns in long slices, busy
	 * workers starve the main thread's requests: fewer of both. */
	unsigned nw = under_valgrind() ? 2 : 4, rounds = under_valgrind() ? 3 : 20;

	CHECK(c);
	atomic_store(&stop_workers, false);
	for (unsigned i = 0; i < nw; i++) {
		w[i] = (struct worker){ .c = c, .seed = i + 1, .large = large };
		CHECK(pthread_create(&w[i].t, NULL, worker, &w[i]) == 0);
	}
	for (unsigned i = 0; i < rounds; i++) {
		size_t freed;
		sleep_ms(50);
		shrinker_request_reclaim(2 * MiB, (i & 1 ? SHRINKER_HARD : 0) | SHRINKER_WAIT, &freed);
	}
	atomic_store(&stop_workers, true);
	for (unsigned i = 0; i < nw; i++) {
		pthread_join(w[i].t, NULL);
		bad += w[i].bad;
		gets += w[i].gets;
	}
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("%u gets, %u wrong; evicted %llu by pressure", gets, bad,
		 (unsigned long long)st.evicted_pressure);
	CHECK(bad == 0 && gets > 0 && st.held == 0);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

static int test_threads(void)
{
	return run_threads(0, false);
}

/* The same with large values replacing each other under a maximum: the
 * pool's mappings taken, grown, trimmed and put back by four threads at
 * once while the shrinker empties it (TSan and ASan in make check). */
static int test_threads_large(void)
{
	return run_threads(4 * MiB, true);
}

/* A deferred cache frees in shrinker_dispatch(), on the caller's thread. */
static int test_deferred(void)
{
	struct shrinker_cache *c = make(0, SHRINKER_CACHE_DEFERRED, NULL, NULL);
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	static unsigned char val[1000];
	size_t freed;
	int r = TAP_FAIL;

	CHECK(c);
	for (unsigned i = 0; i < 4000; i++) {
		char k[32];
		key_of(k, i);
		CHECK(shrinker_cache_set(c, k, strlen(k), val, sizeof(val), 0) == 0);
	}
	CHECK(shrinker_request_reclaim(2 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(shrinker_cache_get_stats(c, &st) == 0 && st.evicted_pressure == 0);
	CHECK(shrinker_dispatch() >= 1);
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("after dispatch: %llu evicted, %llu given back",
		 (unsigned long long)st.evicted_pressure, (unsigned long long)st.given_back);
	CHECK(st.evicted_pressure > 0 && st.given_back >= 2 * MiB);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* Refused room, the cache replaces its own entries instead of growing. */
static int test_replaces_when_refused(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL);
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	static unsigned char val[1000];
	int r = TAP_FAIL;

	if (rss_meaningless()) {
		r = tap_skip_why("RSS figures are meaningless under a sanitizer or valgrind");
		goto fail;
	}
	CHECK(c);
	/* A budget the cache fills: RSS of the test plus 16 MiB. */
	CHECK(shrinker_set_limit(rss_now() + 48 * MiB) == 0);
	for (unsigned i = 0; i < 100000; i++) {
		char k[32];
		key_of(k, i);
		CHECK(shrinker_cache_set(c, k, strlen(k), val, sizeof(val), 0) == 0);
	}
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("100 MB set under a 48 MiB budget: %llu bytes held, %llu evicted by replacement, %llu by pressure",
		 (unsigned long long)st.bytes, (unsigned long long)st.evicted_replacement,
		 (unsigned long long)st.evicted_pressure);
	CHECK(st.bytes < 48 * MiB);
	CHECK(st.evicted_replacement > 0);
	r = TAP_PASS;
fail:
	budget_off();
	shrinker_cache_free(c);
	return r;
}

/* A replacement of large values copies the new ones into the mappings of
 * those it evicted, pages and all: no fresh pages faulted in for each
 * value (a new mapping faults in every page of it), and every value whole. */
static int test_large_reuse(void)
{
	struct shrinker_cache *c = make(8 * MiB, 0, NULL, NULL);
	static unsigned char val[256 * 1024];
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	struct rusage ru0, ru1;
	size_t pages = 0;
	int r = TAP_FAIL;

	if (rss_meaningless()) {
		r = tap_skip_why("page faults are meaningless under a sanitizer or valgrind");
		goto fail;
	}
	CHECK(c);
	memset(val, 1, sizeof(val)); /* resident before counting */
	for (unsigned i = 0; i < 400; i++) {
		char k[32];
		/* 150-250 KiB: the pool's mappings are trimmed and grown. */
		size_t len = (150 + (i * 37) % 101) * 1024;
		if (i == 100)
			CHECK(getrusage(RUSAGE_SELF, &ru0) == 0);
		if (i >= 100)
			pages += (len + 4095) / 4096;
		key_of(k, i);
		value_of(val, len, i, 1);
		CHECK(shrinker_cache_set(c, k, strlen(k), val, len, 0) == 0);
	}
	CHECK(getrusage(RUSAGE_SELF, &ru1) == 0);
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("300 values replacing others in an 8 MiB cache: %ld page faults for %zu pages "
		 "written; %llu bytes held, %llu entries, %llu evicted by replacement",
		 ru1.ru_minflt - ru0.ru_minflt, pages, (unsigned long long)st.bytes,
		 (unsigned long long)st.entries, (unsigned long long)st.evicted_replacement);
	CHECK(st.bytes <= 8 * MiB);
	CHECK((size_t)(ru1.ru_minflt - ru0.ru_minflt) * 4 < pages);
	/* The values still there are whole: the cache holds 30-50 of them. */
	unsigned present = 0;
	for (unsigned i = 0; i < 400; i++) {
		char k[32];
		size_t len = (150 + (i * 37) % 101) * 1024;
		struct shrinker_cache_value v;
		key_of(k, i);
		if (shrinker_cache_get(c, k, strlen(k), &v) != 0)
			continue;
		bool whole = v.len == len && value_is(v.data, len, i, 1);
		shrinker_cache_release(c, &v);
		CHECK(whole);
		present++;
	}
	CHECK(present >= 20);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* Two threads inserting under a maximum into a cache large enough that
 * replacements reuse the segments they evict, pages and all: the pages
 * written are not faulted in again for each insert.  (Two threads granted
 * room at once used to pass the maximum as they wrote; the eviction that
 * followed dropped a segment's pages, and the next segment faulted them in
 * again: about a fault per 4 KiB value.) */
struct inserter {
	struct shrinker_cache *c;
	unsigned first, count, failed;
	pthread_t t;
};

static void *inserter(void *arg)
{
	struct inserter *in = arg;
	static _Thread_local unsigned char buf[4096];
	for (unsigned i = in->first; i < in->first + in->count; i++) {
		char k[32];
		key_of(k, i);
		value_of(buf, sizeof(buf), i, 2);
		in->failed += shrinker_cache_set(in->c, k, strlen(k), buf, sizeof(buf), 0) != 0;
	}
	return NULL;
}

static int test_threads_replace_reuse(void)
{
	/* The cache holds 16 times its open segments (two per shard, eight
	 * shards per CPU up to 64, 256 KiB each): segments are reused. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t shards = cpus > 0 && cpus < 8 ? 8 * (size_t)cpus : 64;
	size_t max = shards * 10 * MiB, pages = 0;
	struct shrinker_cache *c = NULL;
	struct inserter in[2];
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	struct rusage ru0, ru1;
	static unsigned char buf[4096];
	int r = TAP_FAIL;

	if (rss_meaningless())
		return tap_skip_why("page faults are meaningless under a sanitizer or valgrind");
	if (max > 256 * MiB)
		return tap_skip_why("this many CPUs would need a cache of more than 256 MiB");
	c = make(max, 0, NULL, NULL);
	CHECK(c);
	unsigned n = 0;
	do {
		char k[32];
		key_of(k, n);
		value_of(buf, sizeof(buf), n, 2);
		CHECK(shrinker_cache_set(c, k, strlen(k), buf, sizeof(buf), 0) == 0);
		n++;
		CHECK(shrinker_cache_get_stats(c, &st) == 0);
	} while (st.bytes < max - max / 16);
	/* As many again, from two threads: the cache turns over once. */
	unsigned each = n / 2;
	CHECK(getrusage(RUSAGE_SELF, &ru0) == 0);
	for (unsigned i = 0; i < 2; i++) {
		in[i] = (struct inserter){ .c = c, .first = n + i * each, .count = each };
		CHECK(pthread_create(&in[i].t, NULL, inserter, &in[i]) == 0);
	}
	for (unsigned i = 0; i < 2; i++)
		pthread_join(in[i].t, NULL);
	CHECK(getrusage(RUSAGE_SELF, &ru1) == 0);
	pages = 2 * (size_t)each * (sizeof(buf) + 64) / 4096;
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("%u values of 4 KiB from two threads into a cache of %zu MiB: %ld page faults "
		 "for %zu pages written; %llu bytes held, %llu evicted by replacement",
		 2 * each, (size_t)(max / MiB), ru1.ru_minflt - ru0.ru_minflt, pages,
		 (unsigned long long)st.bytes, (unsigned long long)st.evicted_replacement);
	CHECK(in[0].failed == 0 && in[1].failed == 0);
	CHECK(st.bytes <= max);
	CHECK((size_t)(ru1.ru_minflt - ru0.ru_minflt) * 4 < pages);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	return r;
}

/* The shards' tables double as entries come and halve as they go, a few
 * chains at a time (the old table looked in until it is empty): every key
 * is found while they move, and once the cache is empty again its tables
 * are back to their first size, counted as such. */
static int test_tables_resize(void)
{
	struct shrinker_cache *c = make(0, 0, NULL, NULL), *fresh = make(0, 0, NULL, NULL);
	struct shrinker_cache_stats st = { .size = sizeof(st) }, st0 = { .size = sizeof(st0) };
	const unsigned n = under_valgrind() ? 40000 : 300000;
	unsigned bad = 0;
	int r = TAP_FAIL;

	CHECK(c && fresh);
	CHECK(shrinker_cache_get_stats(fresh, &st0) == 0);
	for (unsigned i = 0; i < n; i++) {
		char k[32];
		key_of(k, i);
		CHECK(shrinker_cache_set(c, k, strlen(k), &i, sizeof(i), 0) == 0);
		/* Now and then, keys set before: found, with their value. */
		if (i % 97 == 0) {
			for (unsigned j = i % 13; j <= i; j += 1 + i / 50) {
				unsigned v = ~0u;
				key_of(k, j);
				bad += shrinker_cache_copy(c, k, strlen(k), &v, sizeof(v)) != sizeof(v) || v != j;
			}
		}
	}
	/* Replace a third, remove nine tenths, checking as the tables halve. */
	for (unsigned i = 0; i < n; i += 3) {
		char k[32];
		unsigned v = i + 1;
		key_of(k, i);
		CHECK(shrinker_cache_set(c, k, strlen(k), &v, sizeof(v), 0) == 0);
	}
	for (unsigned i = 0; i < n; i++) {
		char k[32];
		key_of(k, i);
		if (i % 10)
			CHECK(shrinker_cache_remove(c, k, strlen(k)) == 0);
		if (i % 1001 == 0) {
			for (unsigned j = 0; j < n; j += 1 + n / 100) {
				unsigned v = ~0u;
				ssize_t got;
				key_of(k, j);
				got = shrinker_cache_copy(c, k, strlen(k), &v, sizeof(v));
				if (j % 10 && j <= i)
					bad += got != -ENOENT;
				else
					bad += got != sizeof(v) || v != (j % 3 ? j : j + 1);
			}
		}
	}
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("%u keys set, 9 in 10 removed: %llu entries, %u found wrong", n,
		 (unsigned long long)st.entries, bad);
	CHECK(bad == 0 && st.entries == n / 10);
	/* Emptied, then one key set and removed again and again: each removal
	 * moves chains and halves what is mostly empty. */
	CHECK(shrinker_cache_clear(c) == 0);
	for (unsigned i = 0; i < 5000; i++) {
		char k[32];
		key_of(k, i);
		CHECK(shrinker_cache_set(c, k, strlen(k), &i, sizeof(i), 0) == 0);
		CHECK(shrinker_cache_remove(c, k, strlen(k)) == 0);
	}
	CHECK(shrinker_cache_clear(c) == 0);
	CHECK(shrinker_cache_get_stats(c, &st) == 0);
	tap_diag("empty again: %llu bytes counted; an empty cache made afresh: %llu",
		 (unsigned long long)st.bytes, (unsigned long long)st0.bytes);
	CHECK(st.entries == 0 && st.bytes == st0.bytes);
	r = TAP_PASS;
fail:
	shrinker_cache_free(c);
	shrinker_cache_free(fresh);
	return r;
}

static const struct tap_test tests[] = {
	{ "set, get, copy, replace, remove, clear, large values, counters", test_basic },
	{ "bad arguments get the errors the header gives", test_arguments },
	{ "objects: destroyed once when they leave and are not held; destroy may call the cache", test_objects },
	{ "misuse: free with a value held, values larger than the maximum", test_misuse },
	{ "get_or_load: one load for concurrent callers, errors to all, -EDEADLK on itself", test_load_once },
	{ "expiry: per entry, the default, never", test_expiry },
	{ "a held value survives a hard shrink that empties the cache", test_held_through_shrink },
	{ "a scan of one-time keys leaves the hot keys in the cache", test_scan },
	{ "small values: RSS falls by at least 95 % of what the shrinker freed", test_giveback_small },
	{ "large values: RSS falls by at least 95 % of what the shrinker freed", test_giveback_large },
	{ "a shrink of large values frees about what it is asked for", test_shrink_bounded },
	{ "random operations against a model, with shrinks", test_model },
	{ "threads and the shrinker: values always whole", test_threads },
	{ "a deferred cache frees in shrinker_dispatch()", test_deferred },
	{ "refused room, the cache replaces its own entries", test_replaces_when_refused },
	{ "a value larger than the memory limit is refused", test_too_large },
	{ "replacing large values reuses the evicted ones' pages", test_large_reuse },
	{ "threads replacing large values under a maximum, and the shrinker: values always whole", test_threads_large },
	{ "two threads replacing under a maximum reuse the evicted segments' pages", test_threads_replace_reuse },
	{ "tables grow and shrink a few chains at a time: every key found, the size counted", test_tables_resize },
};

TAP_MAIN(tests)
