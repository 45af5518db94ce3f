/* SPDX-License-Identifier: MIT */
/*
 * The cache container (include/shrinker-cache.h) against the cache most C
 * programs write: one mutex over a chained hash table and an LRU list of
 * malloc()ed entries, its capacity in bytes (malloc_usable_size() of each
 * entry plus glibc's 8-byte header).  One measurement per run, printed as
 * "key=value" on one line; bench/container.sh interleaves the runs.
 *
 *   containerbench gets IMPL THREADS VALUE SECONDS
 *	gets per second per thread: 16-byte keys, Zipf 0.99 over 10 million
 *	keys, the cache held at 256 MiB (a get that misses sets the value);
 *	each get copies the value out
 *   containerbench hits IMPL VALUE BYTES
 *	hit ratio of Zipf 0.99 gets at BYTES of cache, then the same with a
 *	scan of one-time keys (as many as the cache holds) passing through,
 *	one scan key after every Zipf get
 *   containerbench overhead VALUE ENTRIES
 *	the container's bytes per entry beyond its key and value
 *   containerbench size ENTRIES SECONDS
 *	gets per second, one thread, every key present, uniform over ENTRIES;
 *	and the longest insert of the fill that made them
 *
 * IMPL: container or lru.  Set SHRINKER_LIMIT=1T: the library then has a
 * limit it never reaches, and the container's size is its maximum.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shrinker-cache.h"

#define KEYS 10000000u
#define KLEN 16

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 16-byte key: the number and a mix of it. */
static void key_of(char *k, uint64_t i)
{
	uint64_t m = i * 0x9E3779B97F4A7C15ull;
	memcpy(k, &i, 8);
	memcpy(k + 8, &m, 8);
}

/* Samples drawn before the clock starts: the bench times the cache, not
 * pow(). */
#define SAMPLES (1u << 22)

/* Zipf 0.99 over n keys (Gray et al.'s method, YCSB's generator), the
 * popular keys scattered over the key space. */
struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta;
	uint64_t state;
};

static double zeta(uint64_t n, double theta)
{
	double s = 0;
	for (uint64_t i = 1; i <= n; i++)
		s += 1.0 / pow((double)i, theta);
	return s;
}

static double zetan_cache;
static uint64_t zetan_n;

static void zipf_init(struct zipf *z, uint64_t n, uint64_t seed)
{
	z->n = n;
	z->theta = 0.99;
	if (zetan_n != n) {
		zetan_cache = zeta(n, z->theta);
		zetan_n = n;
	}
	z->zetan = zetan_cache;
	double zeta2 = zeta(2, z->theta);
	z->alpha = 1.0 / (1.0 - z->theta);
	z->eta = (1 - pow(2.0 / (double)n, 1 - z->theta)) / (1 - zeta2 / z->zetan);
	z->state = seed * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t zipf_next(struct zipf *z)
{
	double u = (double)(rnd(&z->state) >> 11) / 9007199254740992.0;
	double uz = u * z->zetan;
	uint64_t rank;
	if (uz < 1.0)
		rank = 0;
	else if (uz < 1.0 + pow(0.5, z->theta))
		rank = 1;
	else
		rank = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1, z->alpha));
	if (rank >= z->n)
		rank = z->n - 1;
	/* Scatter: rank r is key (r * odd) mod n. */
	return (rank * 2654435761ull) % z->n;
}

/* The idiom: one mutex, a chained hash table, an LRU list. */
struct lru_ent {
	struct lru_ent *hnext, *prev, *next;
	uint32_t vlen;
	char key[KLEN];
	unsigned char value[];
};

struct lru {
	pthread_mutex_t lock;
	struct lru_ent **buckets;
	size_t nbuckets, bytes, cap;
	struct lru_ent *head, *tail;
};

static uint64_t fnv(const char *k)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < KLEN; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h;
}

static size_t lru_charge(struct lru_ent *e)
{
	return malloc_usable_size(e) + 8;
}

static void lru_unlink(struct lru *l, struct lru_ent *e)
{
	if (e->prev) e->prev->next = e->next; else l->head = e->next;
	if (e->next) e->next->prev = e->prev; else l->tail = e->prev;
}

static void lru_push(struct lru *l, struct lru_ent *e)
{
	e->prev = NULL;
	e->next = l->head;
	if (l->head) l->head->prev = e; else l->tail = e;
	l->head = e;
}

static struct lru_ent **lru_find(struct lru *l, const char *k)
{
	struct lru_ent **pp = &l->buckets[fnv(k) & (l->nbuckets - 1)];
	while (*pp && memcmp((*pp)->key, k, KLEN))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_init(struct lru *l, size_t cap, size_t nbuckets)
{
	pthread_mutex_init(&l->lock, NULL);
	l->nbuckets = nbuckets;
	l->buckets = calloc(nbuckets, sizeof(*l->buckets));
	l->cap = cap;
}

static ssize_t lru_copy(struct lru *l, const char *k, void *buf, size_t size)
{
	ssize_t r = -1;
	pthread_mutex_lock(&l->lock);
	struct lru_ent *e = *lru_find(l, k);
	if (e) {
		lru_unlink(l, e);
		lru_push(l, e);
		memcpy(buf, e->value, size < e->vlen ? size : e->vlen);
		r = e->vlen;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

static void lru_set(struct lru *l, const char *k, const void *v, size_t len)
{
	struct lru_ent *n = malloc(sizeof(*n) + len), *dead = NULL;
	memcpy(n->key, k, KLEN);
	n->vlen = (uint32_t)len;
	memcpy(n->value, v, len);
	pthread_mutex_lock(&l->lock);
	struct lru_ent **pp = lru_find(l, k);
	if (*pp) {
		struct lru_ent *o = *pp;
		*pp = o->hnext;
		lru_unlink(l, o);
		l->bytes -= lru_charge(o);
		o->hnext = dead;
		dead = o;
	}
	n->hnext = l->buckets[fnv(k) & (l->nbuckets - 1)];
	l->buckets[fnv(k) & (l->nbuckets - 1)] = n;
	lru_push(l, n);
	l->bytes += lru_charge(n);
	while (l->bytes > l->cap && l->tail) {
		struct lru_ent *t = l->tail;
		lru_unlink(l, t);
		struct lru_ent **tp = lru_find(l, t->key);
		*tp = t->hnext;
		l->bytes -= lru_charge(t);
		t->hnext = dead;
		dead = t;
	}
	pthread_mutex_unlock(&l->lock);
	while (dead) {
		struct lru_ent *d = dead;
		dead = d->hnext;
		free(d);
	}
}

/* One interface over both. */
struct impl {
	bool container;
	struct shrinker_cache *c;
	struct lru l;
};

static void impl_init(struct impl *im, const char *name, size_t bytes)
{
	im->container = strcmp(name, "container") == 0;
	if (im->container) {
		struct shrinker_cache_options o = { .size = sizeof(o), .max_bytes = bytes };
		if (shrinker_cache_new(&im->c, "bench", &o) < 0) {
			fprintf(stderr, "containerbench: cannot make the cache\n");
			exit(1);
		}
	} else {
		lru_init(&im->l, bytes, 1u << 22);
	}
}

static ssize_t impl_copy(struct impl *im, const char *k, void *buf, size_t size)
{
	if (im->container) {
		ssize_t r = shrinker_cache_copy(im->c, k, KLEN, buf, size);
		return r < 0 ? -1 : r;
	}
	return lru_copy(&im->l, k, buf, size);
}

static void impl_set(struct impl *im, const char *k, const void *v, size_t len)
{
	if (im->container)
		shrinker_cache_set(im->c, k, KLEN, v, len, 0);
	else
		lru_set(&im->l, k, v, len);
}

static size_t impl_bytes(struct impl *im)
{
	if (!im->container)
		return im->l.bytes;
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	shrinker_cache_get_stats(im->c, &st);
	return st.bytes;
}

/* A get that sets the value when it misses, as a cache is used: whether
 * it hit. */
static bool get_or_set(struct impl *im, const char *k, unsigned char *buf, size_t vlen)
{
	if (impl_copy(im, k, buf, vlen) >= 0)
		return true;
	impl_set(im, k, buf, vlen);
	return false;
}

/* gets */
struct gets_arg {
	struct impl *im;
	size_t vlen;
	double seconds;
	unsigned id;
	uint64_t gets;
	pthread_barrier_t *go;
};

static void *gets_thread(void *p)
{
	struct gets_arg *a = p;
	struct zipf z;
	unsigned char *buf = calloc(1, a->vlen);
	uint32_t *draw = malloc(SAMPLES * sizeof(*draw));
	char k[KLEN + 1];
	zipf_init(&z, KEYS, a->id + 1);
	for (unsigned i = 0; i < SAMPLES; i++)
		draw[i] = (uint32_t)zipf_next(&z);
	pthread_barrier_wait(a->go);
	double end = now_s() + a->seconds;
	uint64_t n = 0;
	while ((n & 1023) || now_s() < end) {
		key_of(k, draw[n & (SAMPLES - 1)]);
		get_or_set(a->im, k, buf, a->vlen);
		n++;
	}
	a->gets = n;
	free(buf);
	free(draw);
	return NULL;
}

static int cmd_gets(const char *impl, unsigned threads, size_t vlen, double seconds)
{
	struct impl im = { 0 };
	pthread_barrier_t go;
	impl_init(&im, impl, 256u << 20);
	/* Warm up to the steady size, from one thread. */
	struct zipf z;
	unsigned char *buf = calloc(1, vlen);
	char k[KLEN + 1];
	zipf_init(&z, KEYS, 99);
	for (uint64_t i = 0; impl_bytes(&im) < (250u << 20) && i < 50000000; i++) {
		key_of(k, zipf_next(&z));
		get_or_set(&im, k, buf, vlen);
	}
	free(buf);
	pthread_barrier_init(&go, NULL, threads + 1);
	struct gets_arg a[64];
	pthread_t t[64];
	for (unsigned i = 0; i < threads; i++) {
		a[i] = (struct gets_arg){ .im = &im, .vlen = vlen, .seconds = seconds, .id = i, .go = &go };
		pthread_create(&t[i], NULL, gets_thread, &a[i]);
	}
	pthread_barrier_wait(&go);
	double t0 = now_s();
	uint64_t total = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += a[i].gets;
	}
	double el = now_s() - t0;
	printf("impl=%s threads=%u value=%zu gets_per_s_per_thread=%.0f bytes=%zu\n",
	       impl, threads, vlen, (double)total / el / threads, impl_bytes(&im));
	return 0;
}

static int cmd_hits(const char *impl, size_t vlen, size_t bytes)
{
	struct impl im = { 0 };
	impl_init(&im, impl, bytes);
	struct zipf z;
	unsigned char *buf = calloc(1, vlen);
	char k[KLEN + 1];
	zipf_init(&z, KEYS, 7);
	uint64_t hits = 0, gets = 0, entries_est;
	/* Warm up: fill, then twice as many gets again. */
	uint64_t warm = 0;
	for (; impl_bytes(&im) < bytes * 95 / 100 && warm < 50000000; warm++) {
		key_of(k, zipf_next(&z));
		get_or_set(&im, k, buf, vlen);
	}
	for (uint64_t i = 0; i < 2 * warm; i++) {
		key_of(k, zipf_next(&z));
		get_or_set(&im, k, buf, vlen);
	}
	entries_est = bytes / (vlen + KLEN + 48);
	for (uint64_t i = 0; i < 2000000; i++) {
		key_of(k, zipf_next(&z));
		gets++;
		hits += get_or_set(&im, k, buf, vlen);
	}
	double plain = (double)hits / (double)gets;
	/* The scan: one-time keys (outside the Zipf key space), one after
	 * each Zipf get, as many as the cache holds. */
	hits = gets = 0;
	for (uint64_t i = 0; i < entries_est; i++) {
		key_of(k, zipf_next(&z));
		gets++;
		hits += get_or_set(&im, k, buf, vlen);
		key_of(k, KEYS + 1000 + i);
		get_or_set(&im, k, buf, vlen);
	}
	double scan = (double)hits / (double)gets;
	printf("impl=%s value=%zu bytes=%zu hit_ratio=%.4f hit_ratio_scan=%.4f\n",
	       impl, vlen, bytes, plain, scan);
	return 0;
}

static int cmd_overhead(size_t vlen, uint64_t entries)
{
	struct shrinker_cache *c;
	if (shrinker_cache_new(&c, "bench", NULL) < 0)
		return 1;
	unsigned char *buf = calloc(1, vlen);
	char k[KLEN + 1];
	for (uint64_t i = 0; i < entries; i++) {
		key_of(k, i);
		shrinker_cache_set(c, k, KLEN, buf, vlen, 0);
	}
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	shrinker_cache_get_stats(c, &st);
	printf("value=%zu entries=%llu bytes=%llu data=%llu overhead_per_entry=%.1f\n", vlen,
	       (unsigned long long)st.entries, (unsigned long long)st.bytes,
	       (unsigned long long)st.data_bytes,
	       st.entries ? (double)(st.bytes - st.data_bytes) / (double)st.entries : 0.0);
	return 0;
}

static int cmd_size(uint64_t entries, double seconds)
{
	struct shrinker_cache *c;
	if (shrinker_cache_new(&c, "bench", NULL) < 0)
		return 1;
	unsigned char buf[100] = { 0 };
	char k[KLEN + 1];
	/* The longest insert of the fill: one that rebuilt a table of all
	 * the shard's entries at once would show here. */
	double longest = 0;
	for (uint64_t i = 0; i < entries; i++) {
		key_of(k, i);
		double a = now_s();
		shrinker_cache_set(c, k, KLEN, buf, sizeof(buf), 0);
		double b = now_s();
		if (b - a > longest)
			longest = b - a;
	}
	uint64_t s = 12345, n = 0, miss = 0;
	uint32_t *draw = malloc(SAMPLES * sizeof(*draw));
	for (unsigned i = 0; i < SAMPLES; i++)
		draw[i] = (uint32_t)(rnd(&s) % entries);
	double t0 = now_s(), end = t0 + seconds;
	while ((n & 1023) || now_s() < end) {
		key_of(k, draw[n & (SAMPLES - 1)]);
		miss += shrinker_cache_copy(c, k, KLEN, buf, sizeof(buf)) < 0;
		n++;
	}
	printf("entries=%llu gets_per_s=%.0f misses=%llu longest_insert_us=%.0f\n",
	       (unsigned long long)entries, (double)n / (now_s() - t0),
	       (unsigned long long)miss, longest * 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "gets") == 0)
		return cmd_gets(argv[2], (unsigned)atoi(argv[3]), strtoul(argv[4], NULL, 10), atof(argv[5]));
	if (argc >= 5 && strcmp(argv[1], "hits") == 0)
		return cmd_hits(argv[2], strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
	if (argc >= 4 && strcmp(argv[1], "overhead") == 0)
		return cmd_overhead(strtoul(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
	if (argc >= 4 && strcmp(argv[1], "size") == 0)
		return cmd_size(strtoull(argv[2], NULL, 10), atof(argv[3]));
	fprintf(stderr, "usage: containerbench gets IMPL THREADS VALUE SECONDS | hits IMPL VALUE BYTES |"
		" overhead VALUE ENTRIES | size ENTRIES SECONDS\n");
	return 2;
}
