/*
 * SQLite with no cache size setting: two connections to one database, each
 * looked up at random by its own thread, each page cache sized by
 * libshrinker.  A connection's PRAGMA cache_size is a capacity knob, not a
 * list of entries, and SQLite frees nothing on demand when it is built
 * without SQLITE_ENABLE_MEMORY_MANAGEMENT (Debian's is), so:
 *  - growing: when a connection's cache is full (SQLITE_DBSTATUS_CACHE_USED
 *    near cache_size), its thread asks shrinker_may_grow_cache() for a step
 *    and raises cache_size by it; the library keeps the two connections
 *    fair (a connection below its share takes from the one above it);
 *  - shrinking: the callback sets cache_size to shrinker_get_capacity() (the
 *    size the library wants: what the cache holds less the target), which
 *    makes SQLite drop pages down to it at once, and returns what
 *    CACHE_USED really fell by.
 *
 * Build:
 *   cc sqlite.c $(pkg-config --cflags --libs libshrinker sqlite3) -pthread
 * Run:
 *   ./sqlite --create /var/tmp/example.db --rows 1500000
 *   ./sqlite /var/tmp/example.db [--seconds 10] [--late S]   (any row count)
 *            [--cache-kib N | --shrinker]
 * --cache-kib N sets a fixed cache_size of N KiB per connection and registers
 * no shrinker (the usual way, which a user has to get right); --shrinker (the
 * default) lets the library size the caches; --late S starts the second
 * connection's lookups S seconds after the first's.  The last line is
 *   "lookups=N per_s=N conn0=BYTES conn1=BYTES calls=N freed=BYTES
 *    returned_permille=N rss_returned=BYTES mode=..."
 * (freed: what the callbacks reported; returned_permille and rss_returned:
 * what the library learned came back of it, shrinker_get_global_stats()).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shrinker.h>
#include <sqlite3.h>

#define CONNS 2
#define ROW_BYTES 100

struct conn {
	sqlite3 *db;
	sqlite3_stmt *get;
	struct shrinker *s;
	pthread_t thread;
	unsigned long long lookups;
	unsigned seed;
	atomic_uint calls;
	pthread_mutex_t knob;      /* cap_kib and the PRAGMA that sets it */
	long long cap_kib;         /* the cache_size set last */
};

static struct conn conns[CONNS];
static long long rows = 1500000;
static double seconds = 10;
static double late; /* the second connection starts this much later */
static long long fixed_kib = -1; /* -1: the library sizes the caches */
static atomic_bool stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long cache_used(sqlite3 *db)
{
	int cur = 0, hi = 0;

	sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0);
	return cur;
}

/* PRAGMA cache_size in KiB (negative: KiB rather than pages). */
static void set_cache_kib(sqlite3 *db, long long kib)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA cache_size=%lld", -(kib < 1 ? 1 : kib));
	sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* The library's callback: set the knob to the size it wants, report what
 * SQLite really let go of.  The connection is opened in serialized mode,
 * so this may run while its thread is inside a lookup. */
static size_t shrink(size_t target, bool hard, void *userdata)
{
	struct conn *c = userdata;
	long long before = cache_used(c->db), after;
	uint64_t cap;

	(void)target;
	(void)hard;
	atomic_fetch_add(&c->calls, 1);
	if (shrinker_get_capacity(c->s, &cap) < 0 || before <= 0)
		return 0;
	/* cache_size and CACHE_USED differ by SQLite's per-page overhead
	 * (about 6 % with 4 KiB pages): scale the knob by the ratio the cache
	 * has now, from what it holds when it is not full (lowering a knob
	 * that is above what the cache holds frees nothing). */
	pthread_mutex_lock(&c->knob);
	if (c->cap_kib > before / 1024 * 16 / 17)
		c->cap_kib = before / 1024 * 16 / 17;
	c->cap_kib = (long long)((double)c->cap_kib * (double)cap / (double)before);
	set_cache_kib(c->db, c->cap_kib);
	pthread_mutex_unlock(&c->knob);
	after = cache_used(c->db);
	shrinker_set_size(c->s, (size_t)after);
	return before > after ? (size_t)(before - after) : 0;
}

/* Grow the cache a step when it is full and the library says yes. */
static void maybe_grow(struct conn *c)
{
	long long used = cache_used(c->db), cap, step;

	shrinker_set_size(c->s, (size_t)used);
	pthread_mutex_lock(&c->knob);
	cap = c->cap_kib;
	pthread_mutex_unlock(&c->knob);
	if (used < cap * 1024 * 9 / 10)
		return;
	step = cap / 8 < 1024 ? 1024 : cap / 8; /* 1 MiB at least */
	if (!shrinker_may_grow_cache(c->s, (size_t)step * 1024))
		return;
	pthread_mutex_lock(&c->knob);
	c->cap_kib += step;
	set_cache_kib(c->db, c->cap_kib);
	pthread_mutex_unlock(&c->knob);
}

static void *lookups(void *arg)
{
	struct conn *c = arg;

	if (c != &conns[0] && late > 0) {
		struct timespec ts = { (time_t)late,
				       (long)((late - (double)(time_t)late) * 1e9) };

		nanosleep(&ts, NULL);
	}
	if (fixed_kib < 0)
		set_cache_kib(c->db, c->cap_kib);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		long long id = (long long)(rand_r(&c->seed) % (unsigned)rows) + 1;

		sqlite3_bind_int64(c->get, 1, id);
		if (sqlite3_step(c->get) != SQLITE_ROW) {
			fprintf(stderr, "lookup of %lld: %s\n", id, sqlite3_errmsg(c->db));
			exit(1);
		}
		sqlite3_reset(c->get);
		if (++c->lookups % 256 == 0 && fixed_kib < 0)
			maybe_grow(c);
	}
	return NULL;
}

static int create(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *put;
	char row[ROW_BYTES];
	long long i;

	remove(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 1;
	sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
		     "PRAGMA cache_size=-4096; "
		     "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); BEGIN",
		     NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?, ?)", -1, &put, NULL);
	for (i = 1; i <= rows; i++) {
		memset(row, (int)(i & 0xff), sizeof(row));
		sqlite3_bind_int64(put, 1, i);
		sqlite3_bind_blob(put, 2, row, sizeof(row), SQLITE_STATIC);
		if (sqlite3_step(put) != SQLITE_DONE) {
			fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		sqlite3_reset(put);
	}
	sqlite3_finalize(put);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	printf("created %s: %lld rows\n", path, rows);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *make = NULL;
	struct shrinker_global_stats g = { 0 };
	unsigned long long total = 0;
	double t0, t1, next;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--create") && i + 1 < argc)
			make = argv[++i];
		else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows = atoll(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--late") && i + 1 < argc)
			late = atof(argv[++i]);
		else if (!strcmp(argv[i], "--cache-kib") && i + 1 < argc)
			fixed_kib = atoll(argv[++i]);
		else if (!strcmp(argv[i], "--shrinker"))
			fixed_kib = -1;
		else
			path = argv[i];
	}
	if (rows < 1 || (!make && !path)) {
		fprintf(stderr, "usage: %s --create DB [--rows N] | DB [--seconds S] "
			"[--late S] [--cache-kib N | --shrinker]\n", argv[0]);
		return 2;
	}
	if (make)
		return create(make);
	for (i = 0; i < CONNS; i++) {
		struct conn *c = &conns[i];
		char name[32];

		if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READONLY |
				    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(c->db, "SELECT v FROM t WHERE id = ?", -1,
				       &c->get, NULL) != SQLITE_OK) {
			fprintf(stderr, "%s: %s\n", path, sqlite3_errmsg(c->db));
			return 1;
		}
		if (i == 0) {
			/* Look up what the database holds, whatever --rows. */
			sqlite3_stmt *max;

			if (sqlite3_prepare_v2(c->db, "SELECT max(id) FROM t", -1,
					       &max, NULL) == SQLITE_OK &&
			    sqlite3_step(max) == SQLITE_ROW)
				rows = sqlite3_column_int64(max, 0);
			sqlite3_finalize(max);
			if (rows < 1) {
				fprintf(stderr, "%s: no rows\n", path);
				return 1;
			}
		}
		c->seed = 1234u + (unsigned)i;
		pthread_mutex_init(&c->knob, NULL);
		c->cap_kib = 1024;
		if (fixed_kib >= 0) {
			set_cache_kib(c->db, fixed_kib);
			continue;
		}
		snprintf(name, sizeof(name), "sqlite-conn%d", i);
		if (shrinker_register(&c->s, name, shrink, c, 0) < 0)
			return 1;
		shrinker_set_size(c->s, 0);
	}
	t0 = now_s();
	for (i = 0; i < CONNS; i++)
		pthread_create(&conns[i].thread, NULL, lookups, &conns[i]);
	for (next = t0 + 1; (t1 = now_s()) < t0 + seconds; next += 1) {
		struct timespec ts = { 0, 0 };
		double d = next - t1;

		if (d > 0) {
			ts.tv_sec = (time_t)d;
			ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
			nanosleep(&ts, NULL);
		}
		printf("t=%.0f conn0=%.1f MiB conn1=%.1f MiB\n", now_s() - t0,
		       cache_used(conns[0].db) / 1048576.0,
		       cache_used(conns[1].db) / 1048576.0);
		fflush(stdout);
	}
	atomic_store(&stop, true);
	for (i = 0; i < CONNS; i++) {
		pthread_join(conns[i].thread, NULL);
		total += conns[i].lookups;
	}
	t1 = now_s();
	shrinker_get_global_stats(&g);
	printf("lookups=%llu per_s=%.0f conn0=%lld conn1=%lld calls=%u freed=%llu "
	       "returned_permille=%llu rss_returned=%llu mode=%s\n",
	       total, (double)total / (t1 - t0), cache_used(conns[0].db),
	       cache_used(conns[1].db),
	       atomic_load(&conns[0].calls) + atomic_load(&conns[1].calls),
	       (unsigned long long)g.bytes_freed,
	       (unsigned long long)(fixed_kib < 0 ? g.returned_permille : 0),
	       (unsigned long long)g.rss_returned, fixed_kib < 0 ? "shrinker" : "fixed");
	for (i = 0; i < CONNS; i++) {
		shrinker_unregister(conns[i].s);
		sqlite3_finalize(conns[i].get);
		sqlite3_close(conns[i].db);
	}
	return 0;
}
