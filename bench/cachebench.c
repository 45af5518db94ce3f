/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the benchmarks' cache program.  It is memory-hog's two caches and
 * workers (the same object files), and only the strategy that keeps them
 * within the limit changes:
 *  - libshrinker: a native shrinker per cache, growth checked with
 *    shrinker_may_grow(); the library's defaults.
 *  - container: the library's cache container (shrinker-cache.h) holds
 *    the entries, as in memory-hog's native mode; its shrinkers' calls
 *    are read from their statistics at each sample ("shrink" lines, at
 *    the first call of a run begun since the last sample).
 *  - fixed:P: a size setting, P % of the limit (what a configuration file
 *    gives), no pressure handling.
 *  - poll:MS: a thread measures the cgroup's usage every MS; at 90 % of the
 *    limit it frees a quarter of the caches, at 95 % all of them, then holds
 *    off 1 s (WebKit's Linux MemoryPressureHandler: a poller, non-critical
 *    and critical thresholds, critical releases everything, 1 s hold-off).
 *  - psi:systemd: a PSI trigger "some 200000 2000000" (systemd's default
 *    MEMORY_PRESSURE_WRITE); each event frees a quarter of the caches.
 *  - psi:glib: triggers at 70 ms and 100 ms per 2 s, one signal per level per
 *    15 s; at the second level the caches are dropped (GLib's documented
 *    example drops caches above the low level).
 * The caches of the non-library strategies never ask before growing.
 *
 * Output, JSON lines on stdout: "sample" every 50 ms (the caches' bytes;
 * the resident set; malloc's free bytes, in its heaps and at their tops,
 * from mallinfo2() every 500 ms; its mmapped bytes), "shrink"
 * for each shrink with its CLOCK_MONOTONIC time, and "summary" with the
 * library's own reaction times (libshrinker: from the wake-up that found
 * the pressure to the first callback, p50 and p99) and the
 * strategy thread's wake-ups and CPU time over the idle window (from
 * --idle-after MS, when the workers stop, to the end).  --cap-percent P
 * caps the caches of any strategy at P % of the limit (the idle scenario);
 * --threads N and --rate R set the workers (the threaded scenarios).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tools/memory-hog/cache.h"
#include "../tools/memory-hog/workers.h"
#include "shrinker-cache.h"
#include "shrinker.h"

#define NCACHES 2
static struct cache caches[NCACHES];
static uint64_t limit;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stopping;
static _Atomic uint64_t wakeups, shrinks, freed_total;
static pid_t strategy_tid;
static bool container;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static uint64_t cache_total(void)
{
	struct cache_stats st;
	uint64_t total = 0;
	unsigned i;

	for (i = 0; i < NCACHES; i++) {
		cache_stats(&caches[i], &st);
		total += st.bytes;
	}
	return total;
}

static void report_shrink(size_t freed, bool hard)
{
	pthread_mutex_lock(&out_lock);
	printf("{\"type\":\"shrink\",\"mono\":%.6f,\"freed\":%zu,\"hard\":%d}\n",
	       mono(), freed, hard);
	pthread_mutex_unlock(&out_lock);
	atomic_fetch_add(&shrinks, 1);
	atomic_fetch_add(&freed_total, freed);
}

/* Free the given fraction of every cache. */
static void free_fraction(double fraction, bool hard)
{
	size_t freed = 0;
	unsigned i;

	for (i = 0; i < NCACHES; i++) {
		struct cache_stats st;

		cache_stats(&caches[i], &st);
		freed += cache_shrink(&caches[i], (size_t)((double)st.bytes * fraction) + 1, hard);
	}
	report_shrink(freed, hard);
}

static size_t lib_shrink(size_t target, bool hard, void *ud)
{
	size_t freed = cache_shrink(ud, target, hard);

	report_shrink(freed, hard);
	return freed;
}

static void *poll_thread(void *arg)
{
	double interval = (double)(uintptr_t)arg / 1000.0, hold_until = 0;

	strategy_tid = gettid();
	while (!atomic_load(&stopping)) {
		struct shrinker_memory mem;

		sleep_s(interval);
		atomic_fetch_add(&wakeups, 1);
		if (mono() < hold_until || shrinker_get_memory(&mem) != 0)
			continue;
		if (mem.working_set >= limit / 100 * 95) {
			free_fraction(1.0, true);
			hold_until = mono() + 1;
		} else if (mem.working_set >= limit / 100 * 90) {
			free_fraction(0.25, false);
			hold_until = mono() + 1;
		}
	}
	return NULL;
}

static int psi_trigger(const char *trigger)
{
	int fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, trigger, strlen(trigger) + 1) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool glib;

static void *psi_thread(void *arg)
{
	struct pollfd fds[2];
	double last[2] = { -1e9, -1e9 };
	int n = 1;

	(void)arg;
	strategy_tid = gettid();
	if (glib) {
		fds[0] = (struct pollfd){ .fd = psi_trigger("some 70000 2000000"), .events = POLLPRI };
		fds[1] = (struct pollfd){ .fd = psi_trigger("some 100000 2000000"), .events = POLLPRI };
		n = 2;
	} else {
		fds[0] = (struct pollfd){ .fd = psi_trigger("some 200000 2000000"), .events = POLLPRI };
	}
	if (fds[0].fd < 0) {
		fprintf(stderr, "cachebench: no PSI trigger: %s\n", strerror(errno));
		return NULL;
	}
	while (!atomic_load(&stopping)) {
		int i;

		if (poll(fds, (nfds_t)n, 200) <= 0)
			continue;
		atomic_fetch_add(&wakeups, 1);
		for (i = 0; i < n; i++) {
			if (!(fds[i].revents & POLLPRI))
				continue;
			if (!glib) {
				free_fraction(0.25, false);
			} else if (mono() - last[i] >= 15) {
				/* One signal per level per 15 s. */
				last[i] = mono();
				if (i == 1)
					free_fraction(1.0, true);
			}
		}
	}
	return NULL;
}

/* utime + stime of a thread of ours, in ms. */
static double thread_cpu_ms(pid_t tid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	int i;

	if (!tid)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return 0;
	/* Fields after the name: state is 3; utime 14 and stime 15. */
	for (i = 3; i < 14 && p; i++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	ut = strtoull(p + 1, &p, 10);
	st = strtoull(p + 1, NULL, 10);
	return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* The library's thread is named "shrinker". */
static pid_t find_library_thread(void)
{
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");
	pid_t tid = 0;

	if (!dir)
		return 0;
	while ((d = readdir(dir))) {
		char path[300], name[32] = "";
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strcmp(name, "shrinker\n"))
			tid = (pid_t)atoi(d->d_name);
		fclose(f);
	}
	closedir(dir);
	return tid;
}

static uint64_t library_wakeups(void)
{
	struct shrinker_global_stats g;

	return shrinker_get_global_stats(&g) == 0 ? g.wakeups : 0;
}

/* Resident bytes, from /proc/self/statm (0 if unreadable). */
static unsigned long long rss_now(void)
{
	unsigned long long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%llu %llu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (unsigned long long)sysconf(_SC_PAGESIZE);
}

/* Where the memory is: the caches, the resident set, and what malloc holds
 * free (fordblks: in its heaps' free lists, keepcost: at the top of the
 * main heap, which a trim can give back) or has mmapped (hblkhd). */
static void sample(void)
{
	static struct mallinfo2 mi;
	static unsigned n;
	unsigned long long cache = cache_total();

	/* mallinfo2() locks every arena and walks every bin: every tenth. */
	if (n++ % 10 == 0)
		mi = mallinfo2();
	/* The containers' shrinks, from their shrinkers' counters: the time
	 * of the last call since the previous sample. */
	for (unsigned i = 0; container && i < NCACHES; i++) {
		static uint64_t calls[NCACHES], freed[NCACHES], asked[NCACHES], began[NCACHES];
		struct shrinker_stats ss = { 0 };
		struct shrinker_cache_stats cs = { .size = sizeof(cs) };

		shrinker_get_stats(shrinker_cache_get_shrinker(caches[i].container), &ss);
		shrinker_cache_get_stats(caches[i].container, &cs);
		if (ss.calls == calls[i])
			continue;
		/* A run of calls begun since the last sample: its first call;
		 * else the last call of a run that goes on. */
		uint64_t at = cs.shrink_began_ns > began[i] ? cs.shrink_began_ns : ss.last_call_ns;
		began[i] = cs.shrink_began_ns;
		pthread_mutex_lock(&out_lock);
		printf("{\"type\":\"shrink\",\"mono\":%.6f,\"freed\":%llu,\"asked\":%llu,"
		       "\"cache\":%u,\"calls\":%llu}\n",
		       (double)at / 1e9,
		       (unsigned long long)(ss.bytes_freed - freed[i]),
		       (unsigned long long)(ss.bytes_asked - asked[i]), i,
		       (unsigned long long)(ss.calls - calls[i]));
		pthread_mutex_unlock(&out_lock);
		atomic_fetch_add(&shrinks, ss.calls - calls[i]);
		atomic_fetch_add(&freed_total, ss.bytes_freed - freed[i]);
		calls[i] = ss.calls;
		freed[i] = ss.bytes_freed;
		asked[i] = ss.bytes_asked;
	}

	pthread_mutex_lock(&out_lock);
	printf("{\"type\":\"sample\",\"mono\":%.6f,\"cache\":%llu,\"rss\":%llu,"
	       "\"heap_free\":%zu,\"heap_top\":%zu,\"mmapped\":%zu}\n", mono(), cache,
	       (unsigned long long)rss_now(), mi.fordblks, mi.keepcost, mi.hblkhd);
	pthread_mutex_unlock(&out_lock);
}

int main(int argc, char **argv)
{
	const char *strategy = "libshrinker";
	unsigned duration = 10000, idle_after = 0, rate = 8000, threads = 2, fixed = 0;
	unsigned poll_ms = 0, cap = 0;
	bool lib = false;
	struct shrinker_memory mem;
	double start, next, idle_t = 0, idle_cpu = 0;
	uint64_t idle_wake = 0;
	pthread_t t;
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--strategy"))
			strategy = argv[i + 1];
		else if (!strcmp(argv[i], "--duration"))
			duration = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--idle-after"))
			idle_after = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rate"))
			rate = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--cap-percent"))
			cap = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads"))
			threads = (unsigned)atoi(argv[i + 1]);
	}
	if (threads < 1 || threads > 64)
		threads = 2;
	if (shrinker_get_memory(&mem) != 0) {
		fprintf(stderr, "cachebench: cannot measure the limit\n");
		return 1;
	}
	limit = mem.limit;
	container = !strcmp(strategy, "container");
	lib = !strcmp(strategy, "libshrinker") || container;
	if (!strncmp(strategy, "fixed:", 6))
		fixed = (unsigned)atoi(strategy + 6);
	if (!strncmp(strategy, "poll:", 5))
		poll_ms = (unsigned)atoi(strategy + 5);
	glib = !strcmp(strategy, "psi:glib");
	if (!lib && !fixed && !poll_ms && strcmp(strategy, "psi:systemd") && !glib) {
		fprintf(stderr, "cachebench: unknown strategy %s\n", strategy);
		return 2;
	}
	/* Same allocator settings and key spaces as memory-hog. */
	cache_tune_allocator();
	cache_init(&caches[0], "blobs", 64 << 10, 256 << 10, 1u << 13, lib);
	cache_init(&caches[1], "records", 256, 4096, 1u << 19, lib);
	if (cap && !fixed)
		fixed = cap; /* the idle scenario: a full cache, 30 % below */
	if (fixed) {
		/* The blobs hold about nine tenths in memory-hog's mix. */
		caches[0].cap = (size_t)(limit / 100 * fixed / 10 * 9);
		caches[1].cap = (size_t)(limit / 100 * fixed / 10);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (container) {
		for (i = 0; i < NCACHES; i++)
			if (!cache_use_container(&caches[i], false))
				return 1;
		strategy_tid = find_library_thread();
	} else if (lib) {
		for (i = 0; i < NCACHES; i++)
			if (shrinker_register(&caches[i].shrinker, caches[i].name,
					      lib_shrink, &caches[i], 0) < 0)
				return 1;
		strategy_tid = find_library_thread();
	} else if (poll_ms) {
		pthread_create(&t, NULL, poll_thread, (void *)(uintptr_t)poll_ms);
	} else if (!fixed) {
		pthread_create(&t, NULL, psi_thread, NULL);
	}
	if (!workers_start(caches, NCACHES, threads, rate, 1))
		return 1;
	start = mono();
	next = start;
	printf("{\"type\":\"start\",\"mono\":%.6f,\"limit\":%llu,\"strategy\":\"%s\"}\n",
	       start, (unsigned long long)limit, strategy);
	while (mono() - start < duration / 1000.0) {
		next += 0.05;
		sleep_s(next - mono() > 0 ? next - mono() : 0);
		if (idle_after && !idle_t && mono() - start >= idle_after / 1000.0) {
			workers_stop();
			idle_t = mono();
			idle_wake = lib ? library_wakeups() : atomic_load(&wakeups);
			idle_cpu = thread_cpu_ms(strategy_tid);
		}
		sample();
	}
	{
		struct shrinker_global_stats g = { 0 };
		double span = idle_t ? mono() - idle_t : 0;
		uint64_t wake = lib ? library_wakeups() : atomic_load(&wakeups);

		if (lib)
			shrinker_get_global_stats(&g);
		printf("{\"type\":\"summary\",\"shrinks\":%llu,\"freed\":%llu,"
		       "\"rss_released\":%llu,\"lib_freed\":%llu,\"idle_s\":%.3f,"
		       "\"idle_wakeups\":%llu,\"idle_cpu_ms\":%.1f,"
		       "\"reactions\":%llu,\"reaction_p50_ms\":%.2f,"
		       "\"reaction_p99_ms\":%.2f}\n",
		       (unsigned long long)atomic_load(&shrinks),
		       (unsigned long long)atomic_load(&freed_total),
		       (unsigned long long)g.rss_released,
		       (unsigned long long)g.bytes_freed, span,
		       (unsigned long long)(idle_t ? wake - idle_wake : 0),
		       idle_t ? thread_cpu_ms(strategy_tid) - idle_cpu : 0.0,
		       (unsigned long long)g.reactions,
		       (double)g.reaction_first_p50_ns / 1e6,
		       (double)g.reaction_first_p99_ns / 1e6);
	}
	atomic_store(&stopping, true);
	if (!idle_t)
		workers_stop();
	_exit(0); /* no teardown races with the strategy threads */
}
