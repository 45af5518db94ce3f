/*
 * The cache most C programs have: a hash table and an LRU list under one
 * lock, each entry one malloc() of a few KiB, evicted oldest first.  No
 * size setting: the entries are granted by shrinker_may_grow_cache() and
 * freed by the shrinker.  Its frees leave holes all over malloc's heap, so
 * the bytes it reports freed come back as resident memory only in part;
 * the library learns that share (stats.returned_permille) and asks such a
 * cache for correspondingly more.
 *
 * Build:
 *   cc lru.c $(pkg-config --cflags --libs libshrinker) -pthread
 * Run:
 *   ./lru [--threads N] [--seconds S] [--keys N] [--min-kib K] [--max-kib K]
 *         [--fixed-mib M]
 * Each thread looks up keys at random (uniform over --keys, 200000 by
 * default); a miss makes the value (K KiB, --min-kib to --max-kib, 1 to 8 by
 * default) and inserts it.  --fixed-mib M caps the cache at M MiB and
 * registers no shrinker (the usual way).  The last line is
 *   "ops=N per_s=N hits=N cache=BYTES rss=BYTES calls=N freed=N
 *    returned_permille=N rss_returned=BYTES mode=shrinker|fixed"
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shrinker.h>

struct entry {
	struct entry *hnext;        /* hash chain */
	struct entry *prev, *next;  /* LRU list, newest first */
	uint64_t key;
	size_t size;                /* bytes counted: header and value */
	char value[];
};

#define BUCKETS (1u << 18)

static struct {
	pthread_mutex_t lock;
	struct entry *table[BUCKETS];
	struct entry *newest, *oldest;
	size_t bytes;
	size_t cap;                 /* what it may hold: granted or fixed */
	struct shrinker *s;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned threads = 4, min_kib = 1, max_kib = 8;
static uint64_t keys = 200000;
static double seconds = 10;
static long long fixed_bytes = -1; /* -1: the library sizes the cache */
static atomic_ullong ops, hits, calls, freed_total;
static atomic_bool stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rss(void)
{
	unsigned long long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%llu %llu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static struct entry **slot(uint64_t key)
{
	return &cache.table[(key * 0x9e3779b97f4a7c15ull) >> 46];
}

static void lru_unlink(struct entry *e)
{
	*(e->prev ? &e->prev->next : &cache.newest) = e->next;
	*(e->next ? &e->next->prev : &cache.oldest) = e->prev;
}

static void lru_push(struct entry *e)
{
	e->prev = NULL;
	e->next = cache.newest;
	*(cache.newest ? &cache.newest->prev : &cache.oldest) = e;
	cache.newest = e;
}

/* Free the oldest entries until bytes are freed (lock held). */
static size_t evict_locked(size_t bytes)
{
	size_t freed = 0;

	while (freed < bytes && cache.oldest) {
		struct entry *e = cache.oldest, **p = slot(e->key);

		while (*p != e)
			p = &(*p)->hnext;
		*p = e->hnext;
		lru_unlink(e);
		freed += e->size;
		cache.bytes -= e->size;
		free(e);
	}
	return freed;
}

/* The shrinker: free the oldest entries, report the bytes. */
static size_t shrink(size_t target, bool hard, void *userdata)
{
	size_t freed;

	(void)hard;
	(void)userdata;
	pthread_mutex_lock(&cache.lock);
	freed = evict_locked(target);
	cache.cap = cache.bytes;
	shrinker_set_size(cache.s, cache.bytes);
	pthread_mutex_unlock(&cache.lock);
	atomic_fetch_add(&calls, 1);
	atomic_fetch_add(&freed_total, freed);
	return freed;
}

static void lookup(uint64_t key, unsigned *seed)
{
	size_t kib = min_kib + (key * 2654435761u >> 7) % (max_kib - min_kib + 1);
	size_t size = sizeof(struct entry) + kib * 1024 - 64;
	struct entry *e;

	pthread_mutex_lock(&cache.lock);
	for (e = *slot(key); e && e->key != key; e = e->hnext)
		;
	if (e) {
		lru_unlink(e);
		lru_push(e);
		pthread_mutex_unlock(&cache.lock);
		atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed);
		return;
	}
	pthread_mutex_unlock(&cache.lock);

	/* A miss: make the value (a real cache reads or computes it here). */
	e = malloc(size);
	if (!e)
		return;
	e->key = key;
	e->size = size;
	memset(e->value, (int)(key & 0xff) | (int)(*seed & 1), size - sizeof(*e));

	pthread_mutex_lock(&cache.lock);
	/* Room within what it may hold, or a grant to hold more; otherwise
	 * replace the oldest entries. */
	if (cache.bytes + size > cache.cap && fixed_bytes < 0 &&
	    shrinker_may_grow_cache(cache.s, cache.bytes + size - cache.cap))
		cache.cap = cache.bytes + size;
	if (cache.bytes + size > cache.cap)
		evict_locked(cache.bytes + size - cache.cap);
	e->hnext = *slot(key);
	*slot(key) = e;
	lru_push(e);
	cache.bytes += size;
	if (cache.s)
		shrinker_set_size(cache.s, cache.bytes);
	pthread_mutex_unlock(&cache.lock);
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 17u;
	unsigned long long n = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t key = ((uint64_t)rand_r(&seed) << 16 ^ (uint64_t)rand_r(&seed)) % keys;

		lookup(key, &seed);
		if (++n % 1024 == 0)
			atomic_fetch_add_explicit(&ops, 1024, memory_order_relaxed);
	}
	atomic_fetch_add(&ops, n % 1024);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tids[64];
	struct shrinker_stats st = { 0 };
	double t0, t1, next;
	unsigned i;

	/* Options come in pairs: a name and its value. */
	if (argc % 2 != 1)
		goto usage;
	for (i = 1; i + 1 < (unsigned)argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];

		if (!strcmp(a, "--threads"))
			threads = (unsigned)atoi(v);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(a, "--keys"))
			keys = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--min-kib"))
			min_kib = (unsigned)atoi(v);
		else if (!strcmp(a, "--max-kib"))
			max_kib = (unsigned)atoi(v);
		else if (!strcmp(a, "--fixed-mib"))
			fixed_bytes = atoll(v) << 20;
		else
			goto usage;
	}
	if (threads < 1 || threads > 64 || keys < 1 || min_kib < 1 || max_kib < min_kib)
		goto usage;
	if (fixed_bytes >= 0)
		cache.cap = (size_t)fixed_bytes;
	if (fixed_bytes < 0 && shrinker_register(&cache.s, "lru", shrink, NULL, 0) < 0) {
		fprintf(stderr, "lru: could not register the shrinker\n");
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < threads; i++)
		pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)i);
	for (next = t0 + 1; (t1 = now_s()) < t0 + seconds; next += 1) {
		double d = (next < t0 + seconds ? next : t0 + seconds) - t1;
		struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };

		if (d > 0)
			nanosleep(&ts, NULL);
		pthread_mutex_lock(&cache.lock);
		printf("t=%.0f cache=%.1f MiB rss=%.1f MiB\n", now_s() - t0,
		       cache.bytes / 1048576.0, rss() / 1048576.0);
		pthread_mutex_unlock(&cache.lock);
		fflush(stdout);
	}
	atomic_store(&stop, true);
	for (i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	t1 = now_s();
	if (cache.s)
		shrinker_get_stats(cache.s, &st);
	printf("ops=%llu per_s=%.0f hits=%llu cache=%zu rss=%llu calls=%llu "
	       "freed=%llu returned_permille=%llu rss_returned=%llu mode=%s\n",
	       (unsigned long long)ops, (double)ops / (t1 - t0),
	       (unsigned long long)hits, cache.bytes, (unsigned long long)rss(),
	       (unsigned long long)calls, (unsigned long long)freed_total,
	       (unsigned long long)st.returned_permille,
	       (unsigned long long)st.rss_returned,
	       fixed_bytes < 0 ? "shrinker" : "fixed");
	shrinker_unregister(cache.s);
	return 0;
usage:
	fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--keys N] "
		"[--min-kib K] [--max-kib K] [--fixed-mib M]\n", argv[0]);
	return 2;
}
