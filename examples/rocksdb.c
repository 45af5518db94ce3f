/*
 * RocksDB with no block cache size setting: one database read at random by
 * two threads, its block cache sized by libshrinker.  The block cache is a
 * capacity knob over blocks allocated with malloc(), so:
 *  - growing: when the cache's usage nears its capacity, a reader asks
 *    shrinker_may_grow_cache() for a step and raises the capacity by it;
 *  - shrinking: the callback sets the capacity to shrinker_get_capacity()
 *    (what the cache holds less the target), which makes RocksDB evict
 *    blocks down to it at once, and returns what the usage fell by.
 * The evicted blocks leave holes all over malloc's heap: the library learns
 * what share of the bytes comes back (stats.returned_permille) and asks for
 * correspondingly more.  One malloc arena (M_ARENA_MAX 1, set below) keeps
 * blocks freed by one thread from piling up in another thread's arena; see
 * README, "Caches that allocate with malloc()".
 *
 * Build (Debian: apt-get install librocksdb-dev):
 *   cc rocksdb.c $(pkg-config --cflags --libs libshrinker) -lrocksdb -pthread
 * Run:
 *   ./rocksdb --create DIR [--rows N]        (N 100-byte values, 3000000)
 *   ./rocksdb DIR [--seconds S] [--cache-mib N | --shrinker]
 * --cache-mib N gives the block cache a fixed capacity of N MiB and registers
 * no shrinker (the usual way).  The last line is
 *   "lookups=N per_s=N cache=BYTES calls=N freed=BYTES returned_permille=N
 *    rss_returned=BYTES mode=shrinker|fixed"
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>
#include <shrinker.h>

#define READERS 2
#define VALUE_BYTES 100

static rocksdb_t *db;
static rocksdb_cache_t *cache;
static struct shrinker *shrinker;
static pthread_mutex_t knob = PTHREAD_MUTEX_INITIALIZER; /* the capacity */
static long long rows = 3000000;
static double seconds = 10;
static long long fixed_mib = -1; /* -1: the library sizes the cache */
static atomic_ullong lookups, calls;
static atomic_bool stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void key_of(long long i, char key[24])
{
	snprintf(key, 24, "k%014lld", i);
}

/* The library's callback: set the capacity to the size it wants, report
 * what the usage really fell by. */
static size_t shrink(size_t target, bool hard, void *userdata)
{
	size_t before = rocksdb_cache_get_usage(cache), after;
	uint64_t cap;

	(void)target;
	(void)hard;
	(void)userdata;
	atomic_fetch_add(&calls, 1);
	if (shrinker_get_capacity(shrinker, &cap) < 0)
		return 0;
	pthread_mutex_lock(&knob);
	rocksdb_cache_set_capacity(cache, (size_t)cap);
	pthread_mutex_unlock(&knob);
	after = rocksdb_cache_get_usage(cache);
	shrinker_set_size(shrinker, after);
	return before > after ? before - after : 0;
}

/* Raise the capacity a step when the cache is nearly full and the library
 * says yes. */
static void maybe_grow(void)
{
	size_t used = rocksdb_cache_get_usage(cache), cap, step;

	shrinker_set_size(shrinker, used);
	pthread_mutex_lock(&knob);
	cap = rocksdb_cache_get_capacity(cache);
	step = cap / 8 < (1u << 20) ? 1u << 20 : cap / 8;
	if (used >= cap - cap / 10 && shrinker_may_grow_cache(shrinker, step))
		rocksdb_cache_set_capacity(cache, cap + step);
	pthread_mutex_unlock(&knob);
}

static void *reader(void *arg)
{
	unsigned seed = 1234u + (unsigned)(uintptr_t)arg;
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	unsigned long long n = 0;
	char key[24];

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		long long i = ((long long)rand_r(&seed) << 15 ^ rand_r(&seed)) % rows;
		char *err = NULL, *v;
		size_t len;

		key_of(i, key);
		v = rocksdb_get(db, ro, key, 15, &len, &err);
		if (err || !v) {
			fprintf(stderr, "get %s: %s\n", key, err ? err : "not found");
			exit(1);
		}
		rocksdb_free(v);
		if (++n % 256 == 0) {
			atomic_fetch_add_explicit(&lookups, 256, memory_order_relaxed);
			if (fixed_mib < 0)
				maybe_grow();
		}
	}
	rocksdb_readoptions_destroy(ro);
	return NULL;
}

static int create(const char *dir)
{
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	char key[24], value[VALUE_BYTES], *err = NULL;
	long long i;
	rocksdb_t *w;

	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_options_set_compression(o, rocksdb_no_compression);
	rocksdb_writeoptions_disable_WAL(wo, 1);
	w = rocksdb_open(o, dir, &err);
	if (err) {
		fprintf(stderr, "%s: %s\n", dir, err);
		return 1;
	}
	for (i = 0; i < rows && !err; i++) {
		key_of(i, key);
		memset(value, (int)(i & 0xff), sizeof(value));
		rocksdb_put(w, wo, key, 15, value, sizeof(value), &err);
	}
	if (!err)
		rocksdb_compact_range(w, NULL, 0, NULL, 0);
	rocksdb_close(w);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(o);
	if (err) {
		fprintf(stderr, "put: %s\n", err);
		return 1;
	}
	printf("created %s: %lld rows\n", dir, rows);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *make = NULL;
	rocksdb_block_based_table_options_t *t;
	struct shrinker_stats st = { 0 };
	pthread_t tids[READERS];
	rocksdb_options_t *o;
	char *err = NULL;
	double t0, t1, next;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--create") && i + 1 < argc)
			make = argv[++i];
		else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows = atoll(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--cache-mib") && i + 1 < argc)
			fixed_mib = atoll(argv[++i]);
		else if (!strcmp(argv[i], "--shrinker"))
			fixed_mib = -1;
		else
			dir = argv[i];
	}
	if (rows < 1 || (!make && !dir)) {
		fprintf(stderr, "usage: %s --create DIR [--rows N] | DIR [--rows N] "
			"[--seconds S] [--cache-mib N | --shrinker]\n", argv[0]);
		return 2;
	}
	if (make)
		return create(make);
	/* Blocks are freed by whichever thread evicts them: one arena, so
	 * that the frees come back (README, "Caches that allocate with
	 * malloc()"). */
	mallopt(M_ARENA_MAX, 1);
	cache = rocksdb_cache_create_lru(fixed_mib < 0 ? 1u << 20 : (size_t)fixed_mib << 20);
	t = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(t, cache);
	o = rocksdb_options_create();
	rocksdb_options_set_block_based_table_factory(o, t);
	db = rocksdb_open_for_read_only(o, dir, 0, &err);
	if (err) {
		fprintf(stderr, "%s: %s\n", dir, err);
		return 1;
	}
	if (fixed_mib < 0 &&
	    shrinker_register(&shrinker, "rocksdb-block-cache", shrink, NULL, 0) < 0) {
		fprintf(stderr, "could not register the shrinker\n");
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < READERS; i++)
		pthread_create(&tids[i], NULL, reader, (void *)(uintptr_t)i);
	for (next = t0 + 1; (t1 = now_s()) < t0 + seconds; next += 1) {
		double d = (next < t0 + seconds ? next : t0 + seconds) - t1;
		struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };

		if (d > 0)
			nanosleep(&ts, NULL);
		printf("t=%.0f cache=%.1f MiB\n", now_s() - t0,
		       rocksdb_cache_get_usage(cache) / 1048576.0);
		fflush(stdout);
	}
	atomic_store(&stop, true);
	for (i = 0; i < READERS; i++)
		pthread_join(tids[i], NULL);
	t1 = now_s();
	if (shrinker)
		shrinker_get_stats(shrinker, &st);
	printf("lookups=%llu per_s=%.0f cache=%zu calls=%llu freed=%llu "
	       "returned_permille=%llu rss_returned=%llu mode=%s\n",
	       (unsigned long long)lookups, (double)lookups / (t1 - t0),
	       rocksdb_cache_get_usage(cache), (unsigned long long)calls,
	       (unsigned long long)st.bytes_freed,
	       (unsigned long long)st.returned_permille,
	       (unsigned long long)st.rss_returned, fixed_mib < 0 ? "shrinker" : "fixed");
	shrinker_unregister(shrinker);
	rocksdb_close(db);
	rocksdb_options_destroy(o);
	rocksdb_block_based_options_destroy(t);
	rocksdb_cache_destroy(cache);
	return 0;
}
