/* SPDX-License-Identifier: MIT */
/*
 * The growth clock and the brake (src/growth.c), on a private copy of a
 * fixture tree whose memory.current the test rewrites to play the kernel:
 * growth reported through shrinker_account() is measured once per step, not
 * per call; a probe below the soft watermark wakes the reclaimer at once
 * (the poll alone would wait seconds); below the hard watermark a reporting
 * thread waits until the shrinkers made room, never longer than the bound,
 * and never inside a callback.  SHRINKER_SOURCES turns sources off by name.
 * The library times its reactions, and SHRINKER_DEBUG says so per request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../src/1-base/files.h"
#include "../src/3-model/growth.h"
#include "../src/internal.h"
#include "../src/4-monitor/monitor.h"
#include "../src/3-model/room.h"
#include "helpers.h"
#include "tap.h"

/* v2-nested: memory.max 512 MiB on /a/b, 80 MiB inactive file pages, so
 * the working set is memory.current - 80 MiB; soft watermark 51.2 MiB of
 * headroom, hard 25.6 MiB. */
#define LIMIT (512 * MiB)
#define INACTIVE (80 * MiB)
#define CURRENT "sys/fs/cgroup/a/b/c/memory.current"

static char tree[PATH_MAX];

/* Make the working set ws bytes.  Written in place, always 13 bytes, so
 * that a reader never sees the file cut short, as with a kernel file. */
static int set_ws(uint64_t ws)
{
	char path[PATH_MAX * 2], buf[32];
	int fd, n, r;

	snprintf(path, sizeof(path), "%s/%s", tree, CURRENT);
	n = snprintf(buf, sizeof(buf), "%012llu\n", (unsigned long long)(ws + INACTIVE));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = pwrite(fd, buf, (size_t)n, 0) == n ? 0 : -1;
	close(fd);
	return r;
}

static struct shrinker *sh;
static _Atomic unsigned calls;
static _Atomic uint64_t restore_ws;   /* the callback "frees" back to this */
static _Atomic int inner_account = 1; /* shrinker_account() inside it */
static atomic_bool account_inside = true;
static _Atomic unsigned frees_done;   /* callbacks that set restore_ws */

static size_t shrink(size_t target, bool hard, void *ud)
{
	uint64_t ws = atomic_load(&restore_ws);

	(void)hard;
	(void)ud;
	atomic_fetch_add(&calls, 1);
	/* Inside a callback the brake never holds the thread. */
	if (atomic_load(&account_inside))
		atomic_store(&inner_account,
			     shrinker_account(64 * MiB, SHRINKER_ACCOUNT_WAIT));
	if (ws) {
		sleep_ms(20); /* the time freeing takes */
		/* Counted before the memory "falls": whoever sees the fall
		 * sees the count. */
		atomic_fetch_add(&frees_done, 1);
		set_ws(ws);
	}
	return target;
}

static struct shrinker_global_stats stats(void)
{
	struct shrinker_global_stats g;

	shrinker_get_global_stats(&g);
	return g;
}

static bool called(void *arg)
{
	return atomic_load(&calls) > *(unsigned *)arg;
}

/* The shrinker test 1 registers, for a test run alone (TAP_ONLY=N). */
static int need_shrinker(void)
{
	return sh ? 0 : shrinker_register(&sh, "growth", shrink, NULL, 0);
}

static int test_sources_env(void)
{
	struct shrinker_source_info info;
	unsigned i, off = 0;
	int r = TAP_FAIL;

	/* Before the first registration: the sources open with it. */
	setenv("SHRINKER_SOURCES", "-psi-system,no-such-source, -psi-cgroup", 1);
	shrinker__monitor_forget();
	CHECK(set_ws(220 * MiB) == 0);
	CHECK(shrinker_register(&sh, "growth", shrink, NULL, 0) == 0);
	for (i = 0; shrinker_get_source(i, &info) == 0; i++) {
		bool named = !strcmp(info.name, "psi-system") ||
			     !strcmp(info.name, "psi-cgroup");

		if (strstr(info.detail, "turned off by SHRINKER_SOURCES")) {
			CHECK(named && !info.active);
			off++;
		}
	}
	CHECK(off == 2);
	r = TAP_PASS;
fail:
	unsetenv("SHRINKER_SOURCES");
	return r;
}

static int test_clock_steps(void)
{
	struct shrinker_memory mem;
	uint64_t p0, p1;
	unsigned i;

	CHECK(set_ws(220 * MiB) == 0);
	CHECK(shrinker_get_memory(&mem) == 0 && mem.headroom == 292 * MiB);
	/* The step is an eighth of the distance to the hard watermark, about
	 * 33 MiB here: 1 MiB reports are measured once per step. */
	p0 = stats().probes;
	for (i = 0; i < 30; i++)
		CHECK(shrinker_account(1 * MiB, 0) == 0);
	p1 = stats().probes;
	tap_diag("30 x 1 MiB: %llu probes", (unsigned long long)(p1 - p0));
	CHECK(p1 == p0);
	for (i = 0; i < 10; i++)
		CHECK(shrinker_account(1 * MiB, 0) == 0);
	CHECK(stats().probes == p0 + 1);
	/* Shrinkage and bad flags. */
	CHECK(shrinker_account(-5 * (int64_t)MiB, 0) == 0);
	CHECK(shrinker_account(1, 1u << 7) == -EINVAL);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_clock_wakes(void)
{
	unsigned before;
	uint64_t t0, probes;
	int i;

	CHECK(need_shrinker() == 0);
	/* Usage jumps below the soft watermark (51 MiB here: memory.max
	 * alone, no warning before the limit) behind the library's back (no
	 * kernel event in a fixture tree; the poll sleeps seconds).  Growth
	 * reported past one step probes, and the probe wakes the reclaimer. */
	CHECK(set_ws(220 * MiB) == 0);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	sleep_ms(300); /* let the reclaimer settle into its long poll */
	before = atomic_load(&calls);
	probes = stats().probes;
	atomic_store(&restore_ws, 220 * MiB);
	CHECK(set_ws(LIMIT - 12 * MiB) == 0);
	t0 = now_ms();
	for (i = 0; i < 40; i++)
		shrinker_account(1 * MiB, 0);
	/* The growth was probed...  (A probe is skipped while the reclaimer
	 * holds the probe lock for a measurement, and the next report tries
	 * again: on a loaded machine all 40 came while it held it once, in
	 * CI.  Growth goes on being reported, a millisecond apart, 100 at
	 * most.) */
	for (i = 0; i < 100 && stats().probes == probes; i++) {
		sleep_ms(1);
		shrinker_account(1 * MiB, 0);
	}
	CHECK(stats().probes > probes);
	/* ...and the probe, not the poll, woke the reclaimer: the call comes
	 * before the poll could have looked, SHRINKER__POLL_FLAT_MS after
	 * the last look at the latest (an order of events, not a speed:
	 * the probe's wake-up takes microseconds). */
	CHECK(wait_until(called, &before, SHRINKER__POLL_FLAT_MS - 300));
	tap_diag("shrinker called %llu ms after the growth was reported",
		 (unsigned long long)(now_ms() - t0));
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_brake_waits(void)
{
	uint64_t t0, took, w0 = stats().brake_waits;
	unsigned done;
	int r;

	CHECK(need_shrinker() == 0);
	/* Below the hard watermark: the thread waits until the shrinker has
	 * made room (its callback takes 20 ms), then goes on.  A step's worth
	 * of growth makes the library look. */
	atomic_store(&restore_ws, 220 * MiB);
	sleep_ms(50);
	CHECK(set_ws(LIMIT - 10 * MiB) == 0);
	done = atomic_load(&frees_done);
	t0 = now_ms();
	r = shrinker_account(40 * MiB, SHRINKER_ACCOUNT_WAIT);
	took = now_ms() - t0;
	tap_diag("held %llu ms, returned %d", (unsigned long long)took, r);
	/* Held (1), and let go because room was made, not at the bound
	 * (-ETIMEDOUT): after the callback had freed, by the order of
	 * events, however long each took here. */
	CHECK(r == 1);
	CHECK(atomic_load(&frees_done) > done);
	CHECK(stats().brake_waits == w0 + 1);
	/* The callback's own report was not held. */
	CHECK(atomic_load(&inner_account) == 0);
	/* Without the flag nothing waits. */
	CHECK(set_ws(LIMIT - 10 * MiB) == 0);
	sleep_ms(200);
	w0 = stats().brake_waits;
	CHECK(shrinker_account(300 * MiB, 0) == 0);
	CHECK(stats().brake_waits == w0);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_brake_bounded(void)
{
	uint64_t t0, took;
	int r;

	CHECK(need_shrinker() == 0);
	/* The shrinker says it freed, but nothing changes: the wait ends at
	 * its bound (100 ms) with -ETIMEDOUT. */
	atomic_store(&restore_ws, 0);
	sleep_ms(150);
	CHECK(set_ws(LIMIT - 10 * MiB) == 0);
	t0 = now_ms();
	r = shrinker_account(40 * MiB, SHRINKER_ACCOUNT_WAIT);
	took = now_ms() - t0;
	tap_diag("held %llu ms, returned %d", (unsigned long long)took, r);
	/* Let go at the bound: -ETIMEDOUT, and not before it (a wait is
	 * never shorter than asked, whatever the machine). */
	CHECK(r == -ETIMEDOUT);
	CHECK(took >= 95);
	CHECK(set_ws(220 * MiB) == 0);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_no_storm(void)
{
	unsigned before, during;

	CHECK(need_shrinker() == 0);
	/* Pressure that stays (nothing the shrinker says it frees changes
	 * usage): it is called less and less often, not 100 times a second
	 * for ever. */
	atomic_store(&restore_ws, 0);
	atomic_store(&account_inside, false); /* nothing grows meanwhile */
	CHECK(set_ws(LIMIT - 10 * MiB) == 0);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	shrinker_account(40 * MiB, 0); /* look now */
	before = atomic_load(&calls);
	sleep_ms(3000);
	during = atomic_load(&calls) - before;
	tap_diag("%u calls in 3 s of pressure that no call relieves", during);
	CHECK(during >= 1 && during <= 30);
	CHECK(set_ws(220 * MiB) == 0);
	return TAP_PASS;
fail:
	set_ws(220 * MiB);
	return TAP_FAIL;
}

static int test_reaction_stats(void)
{
	static struct shrinker__hist h;
	struct shrinker_global_stats g;
	static char log[64 * 1024];
	char path[PATH_MAX + 16];
	uint64_t v, p50, p99;
	unsigned i, before;
	char *line;
	ssize_t n;
	int fd = -1, err = -1;

	CHECK(need_shrinker() == 0);
	/* The histogram: 1..1000 us, each once. */
	for (v = 1; v <= 1000; v++)
		shrinker__hist_add(&h, v * 1000);
	p50 = shrinker__hist_pct(&h, 50);
	p99 = shrinker__hist_pct(&h, 99);
	tap_diag("p50 %llu ns, p99 %llu ns, max %llu ns", (unsigned long long)p50,
		 (unsigned long long)p99, (unsigned long long)h.max);
	CHECK(p50 >= 500000 && p50 <= 500000 * 1.2);
	CHECK(p99 >= 990000 && p99 <= 1000000);
	CHECK(h.max == 1000000 && h.n == 1000);
	for (i = 0; i < 4; i++)
		CHECK(shrinker__hist_pct(&(struct shrinker__hist){ 0 }, i * 33) == 0);
	/* SHRINKER_DEBUG says it for each request: one more, its lines (only
	 * these: a sanitizer's report must reach the terminal) read back. */
	snprintf(path, sizeof(path), "%s/debug.XXXXXX", tree);
	CHECK((fd = mkstemp(path)) >= 0);
	unlink(path);
	CHECK((err = dup(STDERR_FILENO)) >= 0);
	CHECK(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	shrinker__debug_set(1);
	CHECK(set_ws(220 * MiB) == 0);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	atomic_store(&account_inside, false);
	atomic_store(&restore_ws, 220 * MiB);
	before = atomic_load(&calls);
	CHECK(set_ws(LIMIT - 12 * MiB) == 0);
	for (i = 0; i < 40 && atomic_load(&calls) == before; i++)
		shrinker_account(1 * MiB, 0);
	/* After a pressure that nothing relieved (test_no_storm()), the next
	 * request may be held off for seconds. */
	CHECK(wait_until(called, &before, 8000));
	sleep_ms(300); /* the request's end, where the line is written */
	shrinker__debug_set(-1);
	dup2(err, STDERR_FILENO);
	close(err);
	err = -1;
	n = pread(fd, log, sizeof(log) - 1, 0);
	CHECK(n > 0);
	log[n] = '\0';
	line = strstr(log, "reaction: first callback");
	tap_diag("%.160s", line ? line : log);
	CHECK(line != NULL);
	/* The library's own: the requests pressure caused were timed (this
	 * one's at least, when the test runs alone). */
	CHECK(shrinker_get_global_stats(&g) == 0);
	tap_diag("%llu reactions: first callback p50 %.3f ms p99 %.3f ms max %.3f ms; "
		 "done p50 %.3f ms", (unsigned long long)g.reactions,
		 g.reaction_first_p50_ns / 1e6, g.reaction_first_p99_ns / 1e6,
		 g.reaction_first_max_ns / 1e6, g.reaction_done_p50_ns / 1e6);
	CHECK(g.reactions >= 1);
	CHECK(g.reaction_first_p50_ns > 0 && g.reaction_first_p50_ns <= g.reaction_first_p99_ns);
	CHECK(g.reaction_first_p99_ns <= g.reaction_first_max_ns);
	CHECK(g.reaction_done_p50_ns >= g.reaction_first_p50_ns);
	close(fd);
	return TAP_PASS;
fail:
	shrinker__debug_set(-1);
	if (err >= 0) {
		dup2(err, STDERR_FILENO);
		close(err);
	}
	if (fd >= 0)
		close(fd);
	return TAP_FAIL;
}

/* The caches' own refill, granted by shrinker_may_grow(), is not growth
 * by others: it does not raise the others' rate that sizes the watermark;
 * the same growth ungranted does. */
/* The others' growth rate, under the monitor's lock (the reclaimer thread
 * updates it); reset to 0 first when reset. */
static double others_rate(bool reset)
{
	double r;

	shrinker__mon_lock();
	if (reset)
		shrinker__mon.rate_others = 0;
	r = shrinker__mon.rate_others;
	shrinker__mon_unlock();
	return r;
}

static int test_refill_is_not_growth(void)
{
	double granted_rate, other_rate;

	atomic_store(&restore_ws, 0);
	CHECK(set_ws(220 * MiB) == 0);
	sleep_ms(1100); /* the rates of the tests before decay */
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	others_rate(true);
	sleep_ms(30);
	/* 64 MiB asked for and granted, then resident. */
	CHECK(shrinker_may_grow(64 * MiB));
	CHECK(set_ws(284 * MiB) == 0);
	sleep_ms(30);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	granted_rate = others_rate(false);
	/* 64 MiB more that nobody asked for. */
	sleep_ms(30);
	CHECK(set_ws(348 * MiB) == 0);
	sleep_ms(30);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	other_rate = others_rate(false);
	tap_diag("others' growth: %.1f MiB/s after a granted refill, %.1f MiB/s "
		 "after the same growth ungranted", granted_rate / MiB, other_rate / MiB);
	CHECK(granted_rate < 1.0 * MiB);
	CHECK(other_rate > 100.0 * MiB);
	CHECK(set_ws(220 * MiB) == 0);
	return TAP_PASS;
fail:
	set_ws(220 * MiB);
	return TAP_FAIL;
}

/* The per-CPU stocks (src/stock.c): grants from two threads on two CPUs,
 * 4 KiB at a time, are all counted as grants and as growth, whatever the
 * stocks hold; a measurement empties them; what they may hold together is a
 * quarter of the band above the soft watermark; and one thread on one CPU
 * is granted all the room there is, never more. */
static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *grant_4k(void *arg)
{
	unsigned i;

	pin((int)(uintptr_t)arg);
	for (i = 0; i < 1000; i++)
		if (!shrinker_may_grow(4096))
			return (void *)1;
	return NULL;
}

/* Room for the grants below, by a fresh measurement: a shrink of the test
 * before holds growth back for up to 300 ms. */
static bool room_for_grants(void *arg)
{
	struct shrinker_memory mem;

	(void)arg;
	return shrinker_get_memory(&mem) == 0 && shrinker__room_left() >= 64 * MiB;
}

static int test_stocks(void)
{
	struct shrinker_memory mem;
	uint64_t granted0, left, sum = 0, batch;
	int64_t grown0;
	cpu_set_t was;
	void *ret[2] = { (void *)1, (void *)1 };
	pthread_t th[2];
	unsigned i, ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	int r = TAP_FAIL;

	CHECK(sched_getaffinity(0, sizeof(was), &was) == 0);
	atomic_store(&restore_ws, 0);
	CHECK(set_ws(220 * MiB) == 0);
	CHECK(wait_until(room_for_grants, NULL, 5000));
	CHECK(shrinker_get_memory(&mem) == 0);
	batch = shrinker__room_batch();
	tap_diag("batch %llu KiB on each of %u CPUs, band %llu KiB",
		 (unsigned long long)batch >> 10, shrinker__stock_cpus(),
		 (unsigned long long)shrinker__band(mem.soft_watermark) >> 10);
	CHECK(batch > 0);
	CHECK(batch * shrinker__stock_cpus() <= shrinker__band(mem.soft_watermark) / 4);
	granted0 = shrinker__stock_granted_total();
	grown0 = shrinker__growth_count();
	for (i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, grant_4k,
				     (void *)(uintptr_t)(ncpu > 1 ? i : 0)) == 0);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], &ret[i]);
	CHECK(ret[0] == NULL && ret[1] == NULL);
	CHECK(shrinker__stock_granted_total() - granted0 == 2 * 1000 * 4096);
	CHECK(shrinker__growth_count() - grown0 == 2 * 1000 * 4096);
	/* A measurement takes the room back and the growth onto the clock. */
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(shrinker__stock_drain() == 0);
	CHECK(shrinker__stock_grown_pending() == 0);
	/* All the room, by 64 KiB, from one CPU: never more than there is,
	 * and all of it but the last partial block. */
	pin(0);
	CHECK(shrinker_get_memory(&mem) == 0);
	left = shrinker__room_left();
	while (shrinker_may_grow(64 * 1024) && sum <= left)
		sum += 64 * 1024;
	tap_diag("room %llu KiB, granted %llu KiB", (unsigned long long)left >> 10,
		 (unsigned long long)sum >> 10);
	CHECK(sum <= left && sum + 64 * 1024 > left);
	r = TAP_PASS;
fail:
	sched_setaffinity(0, sizeof(was), &was);
	shrinker_get_memory(&mem);
	return r;
}

/* A limit lowered by writing the limit file, with nothing else to make
 * the library look (no growth reported, the reclaimer in its long poll):
 * the watch on the file (inotify) wakes it, and the shrinker is called
 * before the poll would have looked. */
static int test_limit_file_wakes(void)
{
	char path[PATH_MAX * 2];
	unsigned before;
	uint64_t t0;
	int fd, r = TAP_FAIL;

	CHECK(need_shrinker() == 0);
	atomic_store(&restore_ws, 0);
	atomic_store(&account_inside, false);
	CHECK(set_ws(220 * MiB) == 0);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	sleep_ms(300); /* let the reclaimer settle into its long poll */
	before = atomic_load(&calls);
	/* /a/b's memory.max from 512 to 240 MiB: 20 MiB of headroom, under
	 * the soft watermark.  Written in place, as the kernel's file. */
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/a/b/memory.max", tree);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0 && pwrite(fd, "251658240\n", 10, 0) == 10);
	close(fd);
	t0 = now_ms();
	CHECK(wait_until(called, &before, SHRINKER__POLL_FLAT_MS - 300));
	tap_diag("shrinker called %llu ms after the limit file was written",
		 (unsigned long long)(now_ms() - t0));
	r = TAP_PASS;
fail:
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "536870912\n", 10) != 10)
			tap_diag("could not restore memory.max");
		close(fd);
	}
	return r;
}

/* The holes left now, or (add) 64 MiB more; under the monitor's lock, held
 * as its wrappers hold it (monitor.c). */
static uint64_t holes(bool add)
{
	uint64_t h;

	shrinker__mon_lock();
	if (add)
		shrinker__holes_add_locked(64 * MiB, shrinker__now_ns());
	h = shrinker__holes_locked(shrinker__now_ns());
	shrinker__mon_unlock();
	return h;
}

/* 48 MiB of our own RSS, and of the cgroup's usage, that nobody granted.
 * Under the monitor's lock, so that no sample of the library's thread ends
 * between the two (the kernel raises both together; a slow memset(), under
 * the thread sanitizer, was sampled half done). */
static void *fault_in(uint64_t ws)
{
	void *p = mmap(NULL, 48 * MiB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int r;

	if (p == MAP_FAILED)
		return NULL;
	shrinker__mon_lock();
	memset(p, 1, 48 * MiB);
	r = set_ws(ws);
	shrinker__mon_unlock();
	if (r < 0) {
		munmap(p, 48 * MiB);
		return NULL;
	}
	return p;
}

/* A request whose trim gave back 64 MiB more than its callbacks freed
 * (monitor.c: the free pages between a malloc() heap's live entries): that
 * is not room to grant, and our RSS growing back into it (48 MiB: less
 * than what is left of them after a step or two of their fading) is not
 * others' growth; with none left, the same growth again is. */
/* Processes of one cgroup that grow at once share the room (peers.c
 * counts them): with four, this one may take a quarter of what it could
 * alone, and the grants it makes count against its quarter; refused once
 * that is taken. */
static int test_room_parts(void)
{
	uint64_t alone, part, head, soft, hard, band, rest;
	const struct shrinker__mon *m;
	bool half, whole;

	atomic_store(&restore_ws, 0);
	CHECK(set_ws(220 * MiB) == 0);
	CHECK(wait_until(room_for_grants, NULL, 5000));
	/* The mon lock held throughout, so that no measurement publishes its
	 * own figures in between (the grants take no lock). */
	shrinker__mon_lock();
	shrinker__room_stocks_return();
	m = shrinker__measured();
	head = m->mem.headroom;
	soft = m->mem.soft_watermark;
	hard = m->mem.hard_watermark;
	band = shrinker__band(soft);
	shrinker__room_publish(head, soft, hard, false, 1, shrinker__room_granted());
	alone = shrinker__room_left();
	shrinker__room_publish(head, soft, hard, false, 4, 0);
	part = shrinker__room_left();
	/* Its grants come out of its part, and no further. */
	half = shrinker_may_grow(part / 2);
	whole = shrinker_may_grow(part);
	rest = shrinker__room_left();
	shrinker__room_publish(head, soft, hard, false, 1, shrinker__room_granted());
	shrinker__mon_unlock();
	tap_diag("room %.1f MiB alone, %.1f MiB as one of four growing, %.1f MiB after "
		 "half of it was granted", alone / (double)MiB, part / (double)MiB,
		 rest / (double)MiB);
	CHECK(alone == head - soft - band);
	CHECK(part == alone / 4);
	CHECK(half && !whole);
	CHECK(rest <= part - part / 2);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_holes(void)
{
	uint64_t room0, room1, left;
	double rate_holes, rate_plain;
	void *a = NULL, *b = NULL;

	atomic_store(&restore_ws, 0);
	CHECK(set_ws(220 * MiB) == 0);
	sleep_ms(1100); /* the rates of the tests before decay */
	CHECK(wait_until(room_for_grants, NULL, 2000));
	room0 = shrinker__room_left();
	holes(true);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	room1 = shrinker__room_left();
	others_rate(true);
	sleep_ms(30);
	CHECK((a = fault_in(268 * MiB)) != NULL);
	sleep_ms(30);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	rate_holes = others_rate(false);
	left = holes(false);
	/* What is left of them is not faulted in by the growth below. */
	shrinker__mon_lock();
	shrinker__mon.holes = 0;
	shrinker__mon_unlock();
	sleep_ms(30);
	CHECK((b = fault_in(316 * MiB)) != NULL);
	sleep_ms(30);
	CHECK(shrinker_get_memory(&(struct shrinker_memory){ 0 }) == 0);
	rate_plain = others_rate(false);
	tap_diag("room %.1f MiB, %.1f MiB with 64 MiB of holes; others' growth %.1f MiB/s "
		 "while our RSS grew back into them (%.1f MiB of them left), %.1f MiB/s for "
		 "the same growth after", room0 / (double)MiB, room1 / (double)MiB,
		 rate_holes / MiB, left / (double)MiB, rate_plain / MiB);
	/* 64 MiB less room (they fade in steps of 500 ms: none yet). */
	CHECK(room0 >= room1 + 60 * MiB);
	/* Against the same growth with no holes, in the same run: what else
	 * the working set did meanwhile may count, a tenth at most. */
	CHECK(rate_plain > 0 && rate_holes * 10 < rate_plain);
	CHECK(left <= 16 * MiB);
	munmap(a, 48 * MiB);
	munmap(b, 48 * MiB);
	CHECK(set_ws(220 * MiB) == 0);
	return TAP_PASS;
fail:
	if (a)
		munmap(a, 48 * MiB);
	if (b)
		munmap(b, 48 * MiB);
	set_ws(220 * MiB);
	return TAP_FAIL;
}

/* A braked thread's report is room the reclaimer makes: 96 MiB reported
 * with the headroom above the soft watermark's band and a step (no
 * request by the watermarks, nor one that times the caches) is held until
 * a request made room for all of it, not let go when the report's weight
 * in the estimate fades after a few ms, nor at the bound for want of a
 * request. */
static int test_brake_budget(void)
{
	struct shrinker_memory mem;
	uint64_t above;
	unsigned c0 = 0, done = 0, attempt;
	int r = 0;

	atomic_store(&restore_ws, 220 * MiB);
	atomic_store(&account_inside, false);
	CHECK(need_shrinker() == 0);
	/* Held at all is the premise, not the check (about 1 run in 30 the
	 * report was not held: 0); a brake that never holds fails all three. */
	for (attempt = 1; attempt <= 3; attempt++) {
		CHECK(set_ws(220 * MiB) == 0);
		sleep_ms(1100); /* the rates of what came before decay */
		CHECK(shrinker_get_memory(&mem) == 0);
		above = mem.soft_watermark + shrinker__band(mem.soft_watermark) +
			shrinker__step(mem.limit) + 4 * MiB;
		CHECK(above < mem.hard_watermark + 96 * MiB && above + 96 * MiB < LIMIT);
		CHECK(set_ws(LIMIT - above) == 0);
		CHECK(shrinker_get_memory(&mem) == 0);
		tap_diag("headroom %llu KiB, soft watermark %llu KiB, hard %llu KiB",
			 (unsigned long long)mem.headroom >> 10,
			 (unsigned long long)mem.soft_watermark >> 10,
			 (unsigned long long)mem.hard_watermark >> 10);
		c0 = atomic_load(&calls);
		done = atomic_load(&frees_done);
		r = shrinker_account(96 * MiB, SHRINKER_ACCOUNT_WAIT);
		tap_diag("attempt %u returned %d after %u calls", attempt, r,
			 atomic_load(&calls) - c0);
		if (r != 0)
			break;
	}
	/* Let go because room was made (1), after the callback freed. */
	CHECK(r == 1);
	CHECK(atomic_load(&frees_done) > done);
	atomic_store(&account_inside, true);
	CHECK(set_ws(220 * MiB) == 0);
	return TAP_PASS;
fail:
	atomic_store(&account_inside, true);
	set_ws(220 * MiB);
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "SHRINKER_SOURCES turns sources off by name", test_sources_env },
	{ "growth is measured once per step", test_clock_steps },
	{ "a probe below the soft watermark wakes the reclaimer", test_clock_wakes },
	{ "the brake holds a thread until room is made, not in callbacks", test_brake_waits },
	{ "the brake's wait is bounded", test_brake_bounded },
	{ "shrinkers that free nothing real are not called in a storm", test_no_storm },
	{ "the library times its own reactions (histogram, percentiles, SHRINKER_DEBUG)", test_reaction_stats },
	{ "the caches' granted refill is not others' growth; ungranted growth is", test_refill_is_not_growth },
	{ "a limit file rewritten wakes the reclaimer (inotify), nothing else making it look", test_limit_file_wakes },
	{ "per-CPU stocks: every grant counted, emptied by a measurement, within a quarter of the band", test_stocks },
	{ "processes growing at once share the room: each takes its part", test_room_parts },
	{ "a trim's holes are not room, and our RSS growing back into them is not others' growth", test_holes },
	{ "a braked thread is let go once room is made for what it reported", test_brake_budget },
};

static int setup(void)
{
	if (fixture_copy("v2-nested", "growth", tree, sizeof(tree)) < 0)
		return -1;
	shrinker__set_root(tree);
	shrinker__monitor_forget();
	return 0;
}

int main(void)
{
	int r;

	if (setup() < 0) {
		tap_skip_all("cannot copy the fixture tree");
		return 0;
	}
	r = tap_run(tests, sizeof(tests) / sizeof(tests[0]));
	shrinker_unregister(sh);
	fixture_remove(tree);
	return r;
}
