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
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

#define LIMIT (128 * MiB)

static char skip_why[200];

struct run {
	int status;
	uint64_t oom_kills;
	uint64_t peak, allocated, calls, freed;
	long idle_wakeups;
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
 * competitor that allocates competitor bytes then, for hold_ms. */
static int run_grower(struct run *r, const char *name, uint64_t limit,
		      char *const args[], unsigned competitor_at_ms,
		      uint64_t competitor, unsigned hold_ms,
		      uint64_t lower_to, unsigned lower_at_ms)
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
		comp = cg1_competitor(&cg, competitor_at_ms, competitor, hold_ms);
	if (lower_to) {
		char cmd[700];

		sleep_ms(lower_at_ms);
		snprintf(cmd, sizeof(cmd), "echo %llu > %s/memory.limit_in_bytes",
			 (unsigned long long)lower_to, cg.path);
		if (system(cmd) != 0)
			tap_diag("could not lower the limit");
	}
	read_all_fd(fd, out, sizeof(out));
	r->status = wait_exit(pid);
	if (comp > 0)
		comp_status = wait_exit(comp);
	r->oom_kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
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
		return tap_skip_why("%s", skip_why);
	CHECK(rr == TAP_PASS);
	CHECK(r.oom_kills == 0);
	CHECK(r.status == 0);
	CHECK(r.allocated >= 3 * LIMIT);
	CHECK(r.peak >= LIMIT * 8 / 10);
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
		return tap_skip_why("%s", skip_why);
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
	uint64_t before = 0, after = UINT64_MAX;
	unsigned i;
	int rr;

	/* At 1 s the limit goes from 128 to 121 MiB: cgroup v1 refuses a
	 * limit below the usage it cannot reclaim, so it stays above what the
	 * cache holds, but leaves less headroom than the soft watermark. */
	rr = run_grower(&r, "lowered", LIMIT, args, 0, 0, 0, 121 * MiB, 1000);
	if (rr == TAP_SKIP)
		return tap_skip_why("%s", skip_why);
	CHECK(rr == TAP_PASS);
	CHECK(r.oom_kills == 0 && r.status == 0);
	for (i = 0; i < r.n; i++) {
		if (r.t[i] >= 700 && r.t[i] <= 950 && r.cache[i] > before)
			before = r.cache[i];
		if (r.t[i] >= 1300 && (after == UINT64_MAX || r.cache[i] > after))
			after = r.cache[i];
	}
	tap_diag("cache before: %.1f MiB, after the limit went to 121 MiB: %.1f MiB",
		 before / (double)MiB, after / (double)MiB);
	/* The band under 128 MiB ends at 112 MiB, under 121 MiB at 106 MiB;
	 * the program's own memory comes off both. */
	CHECK(before >= 108 * MiB);
	CHECK(after <= 106 * MiB);
	CHECK(after >= 96 * MiB);
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
		return tap_skip_why("%s", skip_why);
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
		return tap_skip_why("%s", skip_why);
	}
	CHECK(cg1_make_in(&mine, &parent, "mine", 0) == 0);
	CHECK(cg1_make_in(&sib, &parent, "sibling", 0) == 0);
	comp = cg1_competitor(&sib, 0, 100 * MiB, 5000);
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
	unsigned attempt, calls = 0, unneeded = 0;
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
			return tap_skip_why("%s", skip_why);
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
		if (st != 0 || sscanf(out, "calls=%u unneeded=%u", &c, &u) != 2) {
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
		tap_skip_all("needs root to make a child memory cgroup");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
