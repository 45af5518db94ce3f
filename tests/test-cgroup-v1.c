/* SPDX-License-Identifier: MIT */
/*
 * End to end on this machine's real cgroup v1 memory controller: a cache
 * that grows at full speed inside a child memory cgroup, with the kernel's
 * own counters as the verdict (memory.oom_control oom_kill, the program's
 * exit status).  Skips cleanly where no child memory cgroup can be made.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

#define LIMIT (128 * MiB)
#define LIMIT_2 (256 * MiB)

static char skip_why[200];

struct run {
	int status;
	uint64_t oom_kills, max_usage;
	uint64_t peak, allocated, calls, freed;
	long idle_wakeups;
	uint64_t usage_lowered, lowered_to; /* usage then, and the new limit */
	/* Samples: time (ms) and cache bytes. */
	unsigned n;
	uint64_t t[2048], cache[2048];
};

static char out[256 * 1024];

static void parse_output(struct run *r)
{
	char *line, *save = NULL;

	r->idle_wakeups = -1;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, b, c, d;

		if (sscanf(line, "t=%llu cache=%llu", &a, &b) == 2 && r->n < 2048) {
			r->t[r->n] = a;
			r->cache[r->n++] = b;
		} else if (sscanf(line, "peak=%llu allocated=%llu calls=%llu freed=%llu",
				  &a, &b, &c, &d) == 4) {
			r->peak = a;
			r->allocated = b;
			r->calls = c;
			r->freed = d;
		} else if (sscanf(line, "idle_wakeups=%llu", &a) == 1) {
			r->idle_wakeups = (long)a;
		}
	}
}

/* Run the grower in a fresh child cgroup; competitor_at_ms > 0 adds a
 * competitor that allocates competitor bytes then, for hold_ms; leave > 0
 * lowers the limit at lower_at_ms to the usage then plus leave bytes. */
static int run_grower(struct run *r, const char *name, uint64_t limit,
		      char *const args[], unsigned competitor_at_ms,
		      uint64_t competitor, unsigned hold_ms,
		      uint64_t leave, unsigned lower_at_ms)
{
	char path[600], *argv[16];
	struct cg1 cg;
	pid_t pid, comp = -1;
	int fd, i, comp_status = 0;

	memset(r, 0, sizeof(*r));
	if (cg1_make(&cg, name, limit, skip_why, sizeof(skip_why)) < 0)
		return TAP_SKIP;
	snprintf(path, sizeof(path), "%s/tests/prog-grower", build_dir());
	argv[0] = path;
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = cg1_spawn(&cg, argv, &fd);
	if (pid < 0) {
		cg1_remove(&cg);
		return TAP_FAIL;
	}
	if (competitor)
		comp = cg1_competitor(&cg, competitor_at_ms, competitor, hold_ms,
				      COMPETITOR_MIBPS);
	if (leave) {
		char cmd[700];

		sleep_ms(lower_at_ms);
		r->usage_lowered = cg1_read(&cg, "memory.usage_in_bytes", NULL);
		r->lowered_to = (r->usage_lowered + leave) & ~(uint64_t)4095;
		snprintf(cmd, sizeof(cmd), "echo %llu > %s/memory.limit_in_bytes",
			 (unsigned long long)r->lowered_to, cg.path);
		if (system(cmd) != 0)
			tap_diag("could not lower the limit");
	}
	read_all_fd(fd, out, sizeof(out));
	r->status = wait_exit(pid);
	if (comp > 0)
		comp_status = wait_exit(comp);
	r->oom_kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
	r->max_usage = cg1_read(&cg, "memory.max_usage_in_bytes", NULL);
	cg1_remove(&cg);
	parse_output(r);
	tap_diag("%s: exit %d, competitor %d, oom_kill %llu, peak %.1f MiB, "
		 "allocated %.0f MiB, %llu calls freed %.1f MiB", name, r->status,
		 comp_status, (unsigned long long)r->oom_kills, r->peak / (double)MiB,
		 r->allocated / (double)MiB, (unsigned long long)r->calls,
		 r->freed / (double)MiB);
	if (comp_status != 0)
		r->status = 1000 + comp_status;
	return TAP_PASS;
}

static int grow_mode(const char *mode)
{
	char total[32];
	char *args[] = { "--mode", (char *)mode, "--total", total, NULL };
	static struct run r;
	int rr;

	snprintf(total, sizeof(total), "%llu", 3 * LIMIT);
	rr = run_grower(&r, mode, LIMIT, args, 0, 0, 0, 0, 0);
	if (rr == TAP_SKIP)
		return tap_skip_required("CGROUP", "%s", skip_why);
	CHECK(rr == TAP_PASS);
	CHECK(r.oom_kills == 0);
	/* Exit 0 means it inserted its 3x the limit: that is its loop's
	 * condition, not a check of its own. */
	CHECK(r.status == 0);
	/* The caches filled the cgroup, by the kernel's counter. */
	CHECK(r.max_usage != UINT64_MAX && r.max_usage >= LIMIT * 8 / 10);
	CHECK(r.peak >= LIMIT * 8 / 10);
	/* A cache that never asks before it grows (OSv's) got to 3x the
	 * limit only because its shrinker was called; native and deferred
	 * caches with one thread ask, and replace in place when refused. */
	if (!strcmp(mode, "osv"))
		CHECK(r.calls > 0 && r.freed > 0);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_native(void)
{
	return grow_mode("native");
}

static int test_osv(void)
{
	return grow_mode("osv");
}

static int test_deferred(void)
{
	return grow_mode("deferred");
}

static int test_competitor(void)
{
	char *args[] = { "--mode", "native", "--total", "0", "--duration", "3000", NULL };
	static struct run r;
	uint64_t during = UINT64_MAX, after = 0;
	unsigned i;
	int rr;

	/* The cache fills the cgroup; at 1 s a second process takes half the
	 * limit at once and holds it for 1 s. */
	rr = run_grower(&r, "competitor", LIMIT, args, 1000, LIMIT / 2, 1000, 0, 0);
	if (rr == TAP_SKIP)
		return tap_skip_required("CGROUP", "%s", skip_why);
	CHECK(rr == TAP_PASS);
	CHECK(r.oom_kills == 0);
	CHECK(r.status == 0);
	for (i = 0; i < r.n; i++) {
		if (r.t[i] >= 1300 && r.t[i] <= 1900 && r.cache[i] < during)
			during = r.cache[i];
		if (r.t[i] >= 2500 && r.cache[i] > after)
			after = r.cache[i];
	}
	tap_diag("cache while the competitor held half: %.1f MiB; after: %.1f MiB",
		 during / (double)MiB, after / (double)MiB);
	/* It gave the memory up, and took it back afterwards. */
	CHECK(during <= LIMIT / 2);
	CHECK(after >= LIMIT * 8 / 10);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_limit_lowered(void)
{
	char *args[] = { "--mode", "native", "--total", "0", "--duration", "2000", NULL };
	static struct run r;
	uint64_t before = 0, after = UINT64_MAX, other;
	unsigned i;
	int rr;

	/* At 1 s the limit goes from 128 MiB to 1 MiB above the usage then
	 * (cgroup v1 refuses a limit below the usage it cannot reclaim):
	 * less headroom than any soft watermark (4 MiB at least). */
	rr = run_grower(&r, "lowered", LIMIT, args, 0, 0, 0, 1 * MiB, 1000);
	if (rr == TAP_SKIP)
		return tap_skip_required("CGROUP", "%s", skip_why);
	CHECK(rr == TAP_PASS);
	CHECK(r.oom_kills == 0 && r.status == 0);
	/* The cache just before the limit came down (its last 20 ms sample
	 * before 1 s): on a slow day it still grew then, and the largest
	 * before 950 ms, 7 MiB short of it, made the cache's growth count as
	 * what the cgroup holds besides. */
	for (i = 0; i < r.n; i++) {
		if (r.t[i] >= 700 && r.t[i] <= 990 && r.cache[i] > before)
			before = r.cache[i];
		if (r.t[i] >= 1300 && (after == UINT64_MAX || r.cache[i] > after))
			after = r.cache[i];
	}
	/* What the cgroup held besides the cache when the limit came down
	 * (the program, the library, page tables): it stays. */
	other = r.usage_lowered > before ? r.usage_lowered - before : 0;
	tap_diag("cache before: %.1f MiB at usage %.1f MiB (%.1f MiB besides); after "
		 "the limit went to %.1f MiB: %.1f MiB", before / (double)MiB,
		 r.usage_lowered / (double)MiB, other / (double)MiB,
		 r.lowered_to / (double)MiB, after / (double)MiB);
	/* Full before (the band under 128 MiB); after, the cache and what
	 * else the cgroup holds at least the smallest soft watermark (4 MiB)
	 * clear of the new limit, and the cache not emptied.  A library that
	 * did not see the new limit keeps its cache, and the usage it had
	 * stays 1 MiB under the limit: it fails by 3 MiB at least. */
	CHECK(before >= 108 * MiB);
	CHECK(after + other + 4 * MiB <= r.lowered_to);
	CHECK(after * 10 >= before * 8);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_idle(void)
{
	char total[32];
	char *args[] = { "--mode", "native", "--total", total, "--idle", "5000", NULL };
	static struct run r;
	int rr;

	/* A full cache (what the grower allocates) 30 % below the limit. */
	snprintf(total, sizeof(total), "%llu", 2 * LIMIT * 7 / 10);
	rr = run_grower(&r, "idle", 2 * LIMIT, args, 0, 0, 0, 0, 0);
	if (rr == TAP_SKIP)
		return tap_skip_required("CGROUP", "%s", skip_why);
	CHECK(rr == TAP_PASS);
	CHECK(r.status == 0);
	tap_diag("reclaimer wake-ups over 5 s idle: %ld", r.idle_wakeups);
	CHECK(r.idle_wakeups == 0);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_sibling(void)
{
	char path[600], total[32];
	char *argv[] = { path, "--mode", "native", "--total", total, "--duration",
			 "4000", NULL };
	struct cg1 parent, mine, sib;
	uint64_t kills, sib_usage;
	pid_t pid, comp;
	int fd, st, cst;
	struct run *r = calloc(1, sizeof(*r));

	/* A parent with a 192 MiB limit; our cache in one child with no limit
	 * of its own, a sibling child that takes 100 MiB: the parent's limit
	 * is measured against the parent's usage, so the cache stays under
	 * the 92 MiB that are left and nothing is OOM-killed. */
	if (!r)
		return TAP_FAIL;
	if (cg1_make(&parent, "parent", 192 * MiB, skip_why, sizeof(skip_why)) < 0) {
		free(r);
		return tap_skip_required("CGROUP", "%s", skip_why);
	}
	CHECK(cg1_make_in(&mine, &parent, "mine", 0) == 0);
	CHECK(cg1_make_in(&sib, &parent, "sibling", 0) == 0);
	comp = cg1_competitor(&sib, 0, 100 * MiB, 5000, COMPETITOR_MIBPS);
	CHECK(comp > 0);
	sleep_ms(500);
	sib_usage = cg1_read(&sib, "memory.usage_in_bytes", NULL);
	snprintf(path, sizeof(path), "%s/tests/prog-grower", build_dir());
	snprintf(total, sizeof(total), "%llu", 3 * 192 * MiB);
	pid = cg1_spawn(&mine, argv, &fd);
	CHECK(pid > 0);
	read_all_fd(fd, out, sizeof(out));
	st = wait_exit(pid);
	cst = wait_exit(comp);
	kills = cg1_read(&parent, "memory.oom_control", "oom_kill");
	parse_output(r);
	tap_diag("sibling holds %.1f MiB; cache peak %.1f MiB; exit %d, sibling exit "
		 "%d, oom_kill %llu", sib_usage / (double)MiB, r->peak / (double)MiB,
		 st, cst, (unsigned long long)kills);
	CHECK(st == 0 && cst == 0 && kills == 0);
	CHECK(r->peak > 0 && r->peak <= 92 * MiB);
	cg1_remove(&mine);
	cg1_remove(&sib);
	cg1_remove(&parent);
	free(r);
	return TAP_PASS;
fail:
	cg1_remove(&mine);
	cg1_remove(&sib);
	cg1_remove(&parent);
	free(r);
	return TAP_FAIL;
}

/* A prog-grower's samples: CLOCK_MONOTONIC ms, cache bytes, bytes freed. */
struct samples {
	unsigned n;
	uint64_t mono[1024], cache[1024], freed[1024], soft[1024];
};

static void parse_samples(char *text, struct samples *sm)
{
	char *line, *save = NULL;

	sm->n = 0;
	for (line = strtok_r(text, "\n", &save); line && sm->n < 1024;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long t, c, f, mono, soft = 0;

		if (sscanf(line, "t=%llu cache=%llu freed=%llu mono=%llu soft=%llu", &t,
			   &c, &f, &mono, &soft) >= 4) {
			sm->mono[sm->n] = mono;
			sm->soft[sm->n] = soft;
			sm->cache[sm->n] = c;
			sm->freed[sm->n++] = f;
		}
	}
}

/* The last sample at or before mono (the first one if none). */
static unsigned sample_at(const struct samples *sm, uint64_t mono)
{
	unsigned i = 0;

	while (i + 1 < sm->n && sm->mono[i + 1] <= mono)
		i++;
	return i;
}

/* How far the caches of the n processes sampled in sm[] together fell
 * below what they held at from, at their lowest until to (looked at 5 ms
 * apart, finer than their 20 ms samples): what a deficit took from them,
 * not what they freed and grew back meanwhile. */
static uint64_t caches_dip(const struct samples *const sm[], unsigned n, uint64_t from,
			   uint64_t to)
{
	uint64_t before = 0, low = UINT64_MAX, t;
	unsigned i;

	for (i = 0; i < n; i++)
		before += sm[i]->cache[sample_at(sm[i], from)];
	for (t = from; t <= to; t += 5) {
		uint64_t sum = 0;

		for (i = 0; i < n; i++)
			sum += sm[i]->cache[sample_at(sm[i], t)];
		if (sum < low)
			low = sum;
	}
	return before > low ? before - low : 0;
}

static int test_two_processes(void)
{
	static char out_b[256 * 1024];
	static struct samples sa, sb;
	char path[600], total[32];
	char *argv_a[] = { path, "--mode", "native", "--total", total, "--duration",
			   "12000", "--block", "65536", NULL };
	char *argv_b[] = { path, "--mode", "native", "--total", total, "--duration",
			   "11800", "--block", "65536", NULL };
	char comp_path[600], take[32], rate[16];
	char *argv_c[] = { comp_path, "--take", take, "--hold", "3000", "--rate", rate, NULL };
	static char out_c[4096];
	double m_alloc = 0, m_done = 0;
	const char *p;
	int fd_c;
	uint64_t t0, t_comp, t_done, usage, kills, needed, room, freed_a, freed_b;
	const struct samples *const both[] = { &sa, &sb };
	uint64_t a10, b10, dip;
	const uint64_t comp = 100 * MiB, soft = LIMIT_2 / 10;
	int fd_a, fd_b, st_a, st_b, st_c;
	pid_t a, b, c;
	unsigned i, j;
	struct cg1 cg;

	/* Two libshrinker processes in one 256 MiB cgroup (the second starts
	 * 200 ms later, when the first holds nearly everything) and, after
	 * 5 s, a competitor that takes 100 MiB.  Each process takes its part
	 * of a deficit, so together they free about what the competitor
	 * needs, not twice that; and the one that started late gets an equal
	 * share. */
	if (cg1_make(&cg, "two", LIMIT_2, skip_why, sizeof(skip_why)) < 0)
		return tap_skip_required("CGROUP", "%s", skip_why);
	snprintf(path, sizeof(path), "%s/tests/prog-grower", build_dir());
	snprintf(total, sizeof(total), "%llu", 512 * MiB);
	t0 = now_ms();
	a = cg1_spawn(&cg, argv_a, &fd_a);
	sleep_ms(200);
	b = cg1_spawn(&cg, argv_b, &fd_b);
	CHECK(a > 0 && b > 0);
	sleep_ms(4800);
	usage = cg1_read(&cg, "memory.usage_in_bytes", NULL);
	snprintf(comp_path, sizeof(comp_path), "%s/competitor", build_dir());
	snprintf(take, sizeof(take), "%llu", (unsigned long long)comp);
	snprintf(rate, sizeof(rate), "%u", COMPETITOR_MIBPS);
	c = cg1_spawn(&cg, argv_c, &fd_c);
	read_all_fd(fd_c, out_c, sizeof(out_c));
	read_all_fd(fd_a, out, sizeof(out));
	read_all_fd(fd_b, out_b, sizeof(out_b));
	st_a = wait_exit(a);
	st_b = wait_exit(b);
	st_c = wait_exit(c);
	kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
	cg1_remove(&cg);
	parse_samples(out, &sa);
	parse_samples(out_b, &sb);
	CHECK(sa.n > 10 && sb.n > 10);
	/* The competitor's allocation, from its first byte to its last (its
	 * JSON lines, CLOCK_MONOTONIC seconds). */
	p = strstr(out_c, "\"allocating\"");
	CHECK(p && (p = strstr(p, "\"mono\":")) && sscanf(p, "\"mono\":%lf", &m_alloc) == 1);
	p = strstr(out_c, "\"allocated\"");
	CHECK(p && (p = strstr(p, "\"mono\":")) && sscanf(p, "\"mono\":%lf", &m_done) == 1);
	t_comp = (uint64_t)(m_alloc * 1000);
	t_done = (uint64_t)(m_done * 1000) + 100;
	/* What the competitor needed freed: what it takes beyond the room
	 * above the soft watermark when it started, at the watermark's
	 * ceiling (10 %): the most the dynamic watermark can be, so the
	 * least the competitor can have needed, and the bound below errs on
	 * the strict side. */
	room = LIMIT_2 > usage + soft ? LIMIT_2 - usage - soft : 0;
	needed = comp > room ? comp - room : 0;
	i = sample_at(&sa, t_comp);
	j = sample_at(&sa, t_done);
	freed_a = sa.freed[j] - sa.freed[i];
	i = sample_at(&sb, t_comp);
	j = sample_at(&sb, t_done);
	freed_b = sb.freed[j] - sb.freed[i];
	/* What the two caches gave up from the competitor's first byte to
	 * 100 ms after its last. */
	dip = caches_dip(both, 2, t_comp, t_done);
	a10 = sa.cache[sample_at(&sa, t0 + 10000)];
	b10 = sb.cache[sample_at(&sb, t0 + 10000)];
	tap_diag("usage %.1f MiB when the competitor came; it needed %.1f MiB freed; "
		 "the two freed %.1f + %.1f MiB while it allocated (%llu ms), their caches "
		 "fell by %.1f MiB; caches at 10 s: "
		 "%.1f and %.1f MiB; exits %d %d %d, oom_kill %llu",
		 usage / (double)MiB, needed / (double)MiB, freed_a / (double)MiB,
		 freed_b / (double)MiB, (unsigned long long)(t_done - 100 - t_comp),
		 dip / (double)MiB,
		 a10 / (double)MiB, b10 / (double)MiB,
		 st_a, st_b, st_c, (unsigned long long)kills);
	CHECK(st_a == 0 && st_b == 0 && st_c == 0 && kills == 0);
	/* Each its part: two that both gave up the deficit would give up
	 * twice it.  What they give up is more than the deficit all the same
	 * (the watermark rises with the competitor's rate), 103-113 MiB for
	 * this 100 MiB here; what they freed is more again, 111-174 MiB,
	 * where one freed what the other grew back into meanwhile (printed,
	 * not judged: that moves memory between them and takes nothing more
	 * from the cgroup). */
	CHECK(dip * 10 <= needed * 16);
	CHECK(a10 > 16 * MiB && b10 > 16 * MiB);
	CHECK(a10 * 2 <= b10 * 3 && b10 * 2 <= a10 * 3);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

/* nproc processes whose caches fill a 256 MiB cgroup (then replace
 * entries, at capacity: the test waits until the usage stops rising,
 * however slow the machine); the limit is lowered to 1 MiB above the usage,
 * under the new soft watermark, which every process sees at the same
 * moment (the limit file is watched).  *dip: how far their caches
 * together fell below what they held then, at the lowest point of the
 * next 500 ms (on their 20 ms samples): what the deficit took from the
 * cgroup.  (What they freed can be more: a process below its share grows
 * into the band, and the one above pays for that too; that moves memory
 * between them and takes nothing more from the cgroup.)  TAP_PASS, or
 * TAP_SKIP/TAP_FAIL. */
static int lower_under(unsigned nproc, uint64_t *dip, uint64_t *soft)
{
	static char outs[2][256 * 1024];
	static struct samples sm[2];
	char path[600], total[32], cmd[700];
	char *argv[] = { path, "--mode", "native", "--total", total, "--duration",
			 "20000", "--block", "65536", "--print-soft", "1", NULL };
	const struct samples *const procs[] = { &sm[0], &sm[1] };
	uint64_t usage, limit, kills, t_lower;
	uint64_t seen[8] = { 0 };
	char shm[128];
	struct stat st_cg;
	int fd[2], st[2];
	pid_t pid[2];
	struct cg1 cg;
	unsigned i;

	if (cg1_make(&cg, "lowered", LIMIT_2, skip_why, sizeof(skip_why)) < 0)
		return TAP_SKIP;
	snprintf(path, sizeof(path), "%s/tests/prog-grower", build_dir());
	snprintf(total, sizeof(total), "%llu", 300 * MiB);
	for (i = 0; i < nproc; i++) {
		pid[i] = cg1_spawn(&cg, argv, &fd[i]);
		sleep_ms(200);
	}
	/* At least 2 s (the shares even out), then until the usage has
	 * risen less than 2 MiB in 400 ms (the caches are full: growing,
	 * they take 100 MiB/s and more; a loaded machine took more than 2 s
	 * to fill, and a cache still growing pays its look-ahead too), at
	 * most 6 s more. */
	sleep_ms(2000);
	for (i = 0; i < 120; i++) {
		usage = cg1_read(&cg, "memory.usage_in_bytes", NULL);
		seen[i % 8] = usage;
		if (i >= 8 && usage < seen[(i + 1) % 8] + 2 * MiB)
			break;
		sleep_ms(50);
	}
	/* 1 MiB of headroom: less than any soft watermark. */
	limit = (usage + 1 * MiB) & ~(uint64_t)4095;
	snprintf(cmd, sizeof(cmd), "echo %llu > %s/memory.limit_in_bytes",
		 (unsigned long long)limit, cg.path);
	t_lower = now_ms();
	if (system(cmd) != 0)
		tap_diag("could not lower the limit");
	/* What follows the lowering is read on the next 500 ms. */
	sleep_ms(1000);
	for (i = 0; i < nproc; i++)
		kill(pid[i], SIGUSR1);
	for (i = 0; i < nproc; i++) {
		read_all_fd(fd[i], outs[i], sizeof(outs[i]));
		st[i] = wait_exit(pid[i]);
	}
	kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
	/* The peers' shared file is removed by the last process to leave. */
	if (stat(cg.path, &st_cg) == 0) {
		snprintf(shm, sizeof(shm), "/dev/shm/libshrinker-%u-%llx-%llx",
			 (unsigned)geteuid(), (unsigned long long)st_cg.st_dev,
			 (unsigned long long)st_cg.st_ino);
		if (access(shm, F_OK) == 0) {
			tap_diag("%s was left behind", shm);
			unlink(shm);
			cg1_remove(&cg);
			return TAP_FAIL;
		}
	}
	cg1_remove(&cg);
	for (i = 0; i < nproc; i++) {
		unsigned a, z;

		parse_samples(outs[i], &sm[i]);
		if (st[i] != 0 || sm[i].n < 2) {
			tap_diag("%u process(es): #%u exit %d, %u samples", nproc, i, st[i],
				 sm[i].n);
			return TAP_FAIL;
		}
		a = sample_at(&sm[i], t_lower);
		z = sample_at(&sm[i], t_lower + 500);
		tap_diag("%u process(es): #%u held %.1f MiB when the limit went from 256 to "
			 "%.1f MiB at usage %.1f MiB; in 500 ms it freed %.1f MiB and held "
			 "%.1f MiB", nproc, i, sm[i].cache[a] / (double)MiB,
			 limit / (double)MiB, usage / (double)MiB,
			 (sm[i].freed[z] - sm[i].freed[a]) / (double)MiB,
			 sm[i].cache[z] / (double)MiB);
	}
	if (kills != 0)
		return TAP_FAIL;
	/* Two processes have evened out their shares by the time the limit
	 * comes down (2.2 s after the second started): the one below its
	 * share grows below the watermark and the other pays first.  When it
	 * stopped at the watermark they stayed at 163 and 85 MiB. */
	if (nproc == 2) {
		uint64_t c0 = sm[0].cache[sample_at(&sm[0], t_lower)];
		uint64_t c1 = sm[1].cache[sample_at(&sm[1], t_lower)];

		if (c0 * 5 > c1 * 7 || c1 * 5 > c0 * 7) {
			tap_diag("two processes at %.1f and %.1f MiB: more than 1.4x apart",
				 c0 / (double)MiB, c1 / (double)MiB);
			return TAP_FAIL;
		}
	}
	*dip = caches_dip(procs, nproc, t_lower, t_lower + 500);
	*soft = 0;
	for (i = 0; i < nproc; i++) {
		uint64_t w = sm[i].soft[sample_at(&sm[i], t_lower)];

		if (w > *soft)
			*soft = w;
	}
	return TAP_PASS;
}

static int test_two_see_one_deficit(void)
{
	uint64_t one = 0, two = 0, soft1 = 0, soft2 = 0;
	double r1, r2[3], t, deficit, floor2;
	int r;
	unsigned i, j;

	/* One process alone, then two, side by side: two processes that see
	 * the same deficit at once must together give the cgroup about what
	 * one alone gives (each its part), not twice that.  The deficit is
	 * the soft watermark's (a shrink frees back to the top of the band
	 * above it, a quarter of it, from 1 MiB of headroom), which the runs
	 * may size differently (each times its own give-back): what one
	 * gave per byte of it is the reference, and the two processes' gift
	 * is compared with what that makes of their deficit plus the one
	 * thing both may pay (the hard floor), in the median of three runs. */
	r = lower_under(1, &one, &soft1);
	if (r == TAP_SKIP)
		return tap_skip_required("CGROUP", "%s", skip_why);
	CHECK(r == TAP_PASS);
	CHECK(one >= 4 * MiB && soft1 > 2 * MiB);
	r1 = (double)one / (double)(soft1 + soft1 / 4 - MiB);
	/* One process gives about the deficit (0.97-1.01x here); 1.3x and
	 * more (3x one run in five) when the lowered limit put the soft
	 * watermark at its ceiling until the thresholds were re-armed. */
	tap_diag("one process gave %.2fx the deficit", r1);
	CHECK(r1 <= 1.2);
	for (i = 0; i < 3; i++) {
		CHECK(lower_under(2, &two, &soft2) == TAP_PASS);
		CHECK(two >= 4 * MiB && soft2 > 2 * MiB);
		/* What one alone gives for this deficit, plus the floor on
		 * hard pressure of the other: back to the hard watermark (half
		 * the soft one) from the 1 MiB of headroom, which each process
		 * frees at once when both measure at the same moment, before
		 * either sees the other's request under way. */
		deficit = (double)(soft2 + soft2 / 4 - MiB);
		floor2 = soft2 / 2 > MiB ? (double)(soft2 / 2 - MiB) : 0;
		r2[i] = (double)two / (r1 * deficit + floor2);
		tap_diag("the caches gave up for the same deficit: %.1f MiB with one process "
			 "(soft watermark %.1f MiB), %.1f MiB with two (%.1f MiB): %.2fx what "
			 "one gives plus the other's hard floor (%.1f MiB)", one / (double)MiB,
			 soft1 / (double)MiB, two / (double)MiB, soft2 / (double)MiB, r2[i],
			 (r1 * deficit + floor2) / (double)MiB);
	}
	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++)
			if (r2[j] < r2[i]) {
				t = r2[i];
				r2[i] = r2[j];
				r2[j] = t;
			}
	/* Paying twice would be 1.5x (14 MiB against 9.2 for a 6.4 MiB
	 * watermark); 0.65-1.0x is seen, 1.0 when both paid the hard floor,
	 * under load.  (1.8-2.5x the deficit one run in five when a process
	 * that measured before a peer's memory came back took its part of
	 * the same deficit again.) */
	CHECK(r2[1] <= 1.15);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_glib_deferred(void)
{
	char path[600], *argv[] = { path, "--seconds", "8", NULL };
	unsigned long long cache = 0, released = 0, dispatches = 0;
	uint64_t kills;
	const char *end;
	struct cg1 cg;
	int fd, st;
	pid_t pid;

	/* A GLib main loop whose callback-only cache grows at 100 MiB/s
	 * without asking, dispatched from the loop: work handed over counts
	 * as help once the loop dispatches it (it was taken for a request
	 * that freed nothing, and the next ones were held off while the
	 * cache outgrew the limit: OOM-killed at 4 s). */
	snprintf(path, sizeof(path), "%s/tests/prog-glib", build_dir());
	if (access(path, X_OK) != 0)
		return tap_skip_required("BUILD", "tests/prog-glib not built (libglib2.0-dev)");
	if (cg1_make(&cg, "glib", LIMIT_2, skip_why, sizeof(skip_why)) < 0)
		return tap_skip_required("CGROUP", "%s", skip_why);
	pid = cg1_spawn(&cg, argv, &fd);
	CHECK(pid > 0);
	read_all_fd(fd, out, sizeof(out));
	st = wait_exit(pid);
	kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
	cg1_remove(&cg);
	end = strstr(out, "end ");
	if (end)
		sscanf(end, "end cache=%llu rss_released=%llu dispatches=%llu", &cache,
		       &released, &dispatches);
	tap_diag("GLib: exit %d, oom_kill %llu, cache at the end %.1f MiB, %llu "
		 "dispatches, RSS released %.1f MiB", st, (unsigned long long)kills,
		 cache / (double)MiB, dispatches, released / (double)MiB);
	CHECK(st == 0 && kills == 0);
	CHECK(cache > LIMIT_2 / 2);
	CHECK(released > 100 * MiB);
	return TAP_PASS;
fail:
	cg1_remove(&cg);
	return TAP_FAIL;
}

/* Run prog-grower briefly in cg; its exit status. */
static int grow_briefly(const struct cg1 *cg)
{
	char path[600], total[32];
	char *argv[] = { path, "--mode", "native", "--total", total, "--duration",
			 "500", NULL };
	pid_t pid;
	int fd;

	snprintf(path, sizeof(path), "%s/tests/prog-grower", build_dir());
	snprintf(total, sizeof(total), "%llu", 3 * LIMIT);
	pid = cg1_spawn(cg, argv, &fd);
	if (pid <= 0)
		return -1;
	read_all_fd(fd, out, sizeof(out));
	return wait_exit(pid);
}

/* prog-grower ran in cg and exited 0, and the empty file at path is
 * still empty. */
static bool grown_and_untouched(const struct cg1 *cg, const char *path,
				const char *what)
{
	int rc = grow_briefly(cg);
	struct stat st;

	if (stat(path, &st) < 0)
		return false;
	tap_diag("%s: exit %d; the file holds %lld bytes", what, rc,
		 (long long)st.st_size);
	return rc == 0 && st.st_size == 0;
}

static int test_peers_file_safety(void)
{
	char shm[128], victim[1200], cwd[512];
	struct stat st;
	struct cg1 cg;
	int fd, r = TAP_FAIL;

	/* Where the peers' shared file of the cgroup goes, somebody put a
	 * symbolic link to a file of ours, empty and private, which every
	 * other check would take for a new table: it must be neither
	 * followed nor written through.  Then a file of another user's
	 * there: it must not be used. */
	if (cg1_make(&cg, "peerfile", LIMIT, skip_why, sizeof(skip_why)) < 0)
		return tap_skip_required("CGROUP", "%s", skip_why);
	CHECK(stat(cg.path, &st) == 0);
	snprintf(shm, sizeof(shm), "/dev/shm/libshrinker-%u-%llx-%llx",
		 (unsigned)geteuid(), (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	/* An absolute target: a relative one would dangle from /dev/shm. */
	snprintf(victim, sizeof(victim), "%s/%s/tests/peers-victim.%d",
		 build_dir()[0] == '/' ? "" : getcwd(cwd, sizeof(cwd)) ? cwd : ".",
		 build_dir(), (int)getpid());
	fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	unlink(shm);
	CHECK(symlink(victim, shm) == 0);
	CHECK(grown_and_untouched(&cg, victim, "a link"));
	/* Another user's file, empty, mode 0600. */
	unlink(shm);
	fd = open(shm, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && fchown(fd, 65534, 65534) == 0);
	close(fd);
	CHECK(grown_and_untouched(&cg, shm, "another user's file"));
	r = TAP_PASS;
fail:
	unlink(shm);
	unlink(victim);
	cg1_remove(&cg);
	return r;
}

static int test_container(void)
{
	char script[1400], mnt[600];
	char *argv[] = { "/usr/bin/unshare", "--cgroup", "--mount", "sh", "-c", script, NULL };
	uint64_t kills;
	struct run *r = calloc(1, sizeof(*r));
	struct cg1 cg;
	int fd;
	pid_t pid;

	/* As in a container (Docker's default): a cgroup namespace, whose
	 * /proc/self/cgroup says "/", and the memory hierarchy mounted
	 * read-only with the container's cgroup at its root.  The library
	 * finds the limit there; it cannot register thresholds (a write to
	 * cgroup.event_control), says so, and the growth clock and the poll
	 * keep the cache under the limit. */
	if (!r)
		return TAP_FAIL;
	if (access("/usr/bin/unshare", X_OK) != 0) {
		free(r);
		return tap_skip_why("unshare (util-linux) not installed");
	}
	if (cg1_make(&cg, "container", LIMIT, skip_why, sizeof(skip_why)) < 0) {
		free(r);
		return tap_skip_required("CGROUP", "%s", skip_why);
	}
	snprintf(mnt, sizeof(mnt), "%s/tests/cgmnt.%d", build_dir(), (int)getpid());
	snprintf(script, sizeof(script),
		 "mkdir -p '%s' && mount -t cgroup -o memory none '%s' && "
		 "mount --bind '%s' /sys/fs/cgroup/memory && umount '%s' && "
		 "mount -o remount,bind,ro /sys/fs/cgroup/memory || exit 77; "
		 "grep -q '^[0-9]*:memory:/$' /proc/self/cgroup || exit 78; "
		 "exec env SHRINKER_DEBUG=1 '%s/tests/prog-grower' --mode native "
		 "--total %llu 2>&1", mnt, mnt, mnt, mnt, build_dir(), 3 * LIMIT);
	pid = cg1_spawn(&cg, argv, &fd);
	CHECK(pid > 0);
	read_all_fd(fd, out, sizeof(out));
	r->status = wait_exit(pid);
	kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
	cg1_remove(&cg);
	rmdir(mnt);
	if (r->status == 77 || r->status == 78) {
		int st = r->status;

		free(r);
		return tap_skip_why("could not make the container's view (exit %d)", st);
	}
	tap_diag("container: exit %d; %.300s", r->status,
		 strstr(out, "sources open") ? strstr(out, "sources open") : out);
	CHECK(strstr(out, "Read-only file system") != NULL);
	parse_output(r);
	tap_diag("exit %d, oom_kill %llu, peak %.1f MiB", r->status,
		 (unsigned long long)kills, r->peak / (double)MiB);
	CHECK(r->status == 0 && kills == 0);
	CHECK(r->peak >= LIMIT * 7 / 10 && r->peak <= LIMIT);
	free(r);
	return TAP_PASS;
fail:
	free(r);
	return TAP_FAIL;
}

/* Count the kernel's "medium" pressure notifications for cg: an eventfd
 * registered through cgroup.event_control (-1 if that cannot be done). */
static int medium_eventfd(const struct cg1 *cg)
{
	char path[600], line[64];
	int efd, pfd, cfd, n, ok;

	snprintf(path, sizeof(path), "%s/memory.pressure_level", cg->path);
	pfd = open(path, O_RDONLY | O_CLOEXEC);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	snprintf(path, sizeof(path), "%s/cgroup.event_control", cg->path);
	cfd = open(path, O_WRONLY | O_CLOEXEC);
	n = snprintf(line, sizeof(line), "%d %d medium", efd, pfd);
	ok = pfd >= 0 && efd >= 0 && cfd >= 0 && write(cfd, line, (size_t)n) == n;
	if (cfd >= 0)
		close(cfd);
	if (pfd >= 0)
		close(pfd);
	if (!ok && efd >= 0) {
		close(efd);
		efd = -1;
	}
	return efd;
}

static int test_medium(void)
{
	char path[600], file[600], bytes[32];
	char *argv[] = { path, "--file", file, "--bytes", bytes, "--cache", "8388608",
			 NULL };
	uint64_t mediums = 0, failcnt = 0;
	unsigned attempt, calls = 0, unneeded = 0, j;
	const char *p;
	struct statfs sfs;
	struct cg1 cg;

	/* Page cache from writing a file 8x the limit makes the kernel
	 * reclaim at the limit over and over, which cgroup v1 reports as
	 * "medium" pressure; the program's own working set is 8 MiB of a
	 * 64 MiB limit.  Only the sources that see this are on (the critical
	 * level and PSI report other things).  A callback made while the
	 * headroom was over twice the soft watermark is a false alarm. */
	if (statfs(build_dir(), &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
		return tap_skip_why("the build directory is on tmpfs: its pages cannot "
				    "be reclaimed");
	snprintf(path, sizeof(path), "%s/tests/prog-fileio", build_dir());
	snprintf(file, sizeof(file), "%s/tests/fileio.%d.tmp", build_dir(), (int)getpid());
	snprintf(bytes, sizeof(bytes), "%llu", 512 * MiB);
	setenv("SHRINKER_SOURCES", "limit-changes,cgroup-v1-threshold,"
	       "cgroup-v1-pressure-medium", 1);
	for (attempt = 0; attempt < 3 && mediums < 3; attempt++) {
		unsigned c = 0, u = 0;
		uint64_t got = 0;
		int fd, efd, st;
		pid_t pid;

		if (cg1_make(&cg, "medium", 64 * MiB, skip_why, sizeof(skip_why)) < 0) {
			unsetenv("SHRINKER_SOURCES");
			return tap_skip_required("CGROUP", "%s", skip_why);
		}
		efd = medium_eventfd(&cg);
		pid = cg1_spawn(&cg, argv, &fd);
		if (pid > 0) {
			read_all_fd(fd, out, sizeof(out));
			st = wait_exit(pid);
		} else {
			st = -1;
		}
		if (efd >= 0 && read(efd, &got, sizeof(got)) == sizeof(got))
			mediums += got;
		if (efd >= 0)
			close(efd);
		failcnt += cg1_read(&cg, "memory.failcnt", NULL);
		cg1_remove(&cg);
		unlink(file);
		p = strstr(out, "judged=");
		if (st != 0 || sscanf(out, "calls=%u unneeded=%u", &c, &u) != 2 ||
		    !p || sscanf(p, "judged=%u", &j) != 1 || j != c) {
			tap_diag("prog-fileio: exit %d, output: %s", st, out);
			unsetenv("SHRINKER_SOURCES");
			return TAP_FAIL;
		}
		calls += c;
		unneeded += u;
	}
	unsetenv("SHRINKER_SOURCES");
	tap_diag("%u runs: %llu medium events, failcnt %llu, %u callbacks, %u of them "
		 "with headroom to spare", attempt, (unsigned long long)mediums,
		 (unsigned long long)failcnt, calls, unneeded);
	if (!mediums)
		return tap_skip_why("the kernel reported no medium pressure here");
	CHECK(failcnt > 0);
	CHECK(unneeded == 0);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "native: grows 3x the limit at full speed, no OOM kill, peak >= 80 %", test_native },
	{ "OSv shim (no may_grow): no OOM kill, peak >= 80 %", test_osv },
	{ "deferred: no OOM kill, peak >= 80 %", test_deferred },
	{ "a competitor takes half the limit: no OOM kill, the cache yields and regrows", test_competitor },
	{ "the limit lowered at run time is seen and honoured", test_limit_lowered },
	{ "idle far from the limit: no wake-ups in 5 s", test_idle },
	{ "an ancestor's limit against the ancestor's usage (a sibling)", test_sibling },
	{ "\"medium\" from page-cache reclaim at the limit shrinks nothing", test_medium },
	{ "two processes in one cgroup: each its part, equal shares, no OOM kill", test_two_processes },
	{ "two processes see one deficit: together they free what one alone would; "
	  "their shares even out first", test_two_see_one_deficit },
	{ "GLib: a deferred cache at 100 MiB/s that never asks: no OOM kill", test_glib_deferred },
	{ "a symbolic link where the peers' file goes is not followed", test_peers_file_safety },
	{ "a container: cgroup namespace, read-only cgroup mount", test_container },
};

int main(void)
{
	const char *san = getenv("SANITIZE");

	/* TSan's shadow memory and ASan's quarantine count against the
	 * cgroup's limit and keep freed memory from going back: the kernel's
	 * verdict would be about the sanitizer, not the library. */
	if (san && *san)
		tap_skip_all("memory figures are meaningless under a sanitizer");
	if (geteuid() != 0)
		tap_skip_all_required("CGROUP", "needs root to make a child memory cgroup");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
