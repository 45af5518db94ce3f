/* SPDX-License-Identifier: MIT */
/*
 * Win the race, end to end on this machine's cgroup v1: eight threads that
 * allocate at full speed in a small child memory cgroup, with the usage
 * thresholds turned off (SHRINKER_SOURCES, as cgroup v2 has it: no kernel
 * event before the limit) and, where said, on.  Programs that never ask
 * before they grow run with the malloc brake preloaded; native memory-hog
 * runs with no brake.  The kernel's memory.oom_control is the verdict, and
 * its max_usage_in_bytes shows that each run came near the limit.
 * bench/race.sh runs the same programs 20 times each, with and without the
 * brake, for BENCHMARKS.md; this is the short form for make check.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

#define V1_OFF "SHRINKER_SOURCES=-cgroup-v1-threshold,-cgroup-v1-pressure-medium," \
	       "-cgroup-v1-pressure-critical"

static char skip_why[200];
static char out[256 * 1024];
static char hog[600], grower[600], brake[640];
static uint64_t max_usage; /* the last run's, by the kernel */

/* Run argv (env assignments first) in a fresh cgroup of mib MiB; returns
 * TAP_SKIP, TAP_FAIL (could not run) or TAP_PASS with the kernel's OOM
 * kill count in *kills. */
static int run(const char *name, unsigned mib, char **argv, uint64_t *kills)
{
	char *full[24] = { "/usr/bin/env" };
	struct cg1 cg;
	pid_t pid;
	int fd, st, i;

	if (cg1_make(&cg, name, mib * MiB, skip_why, sizeof(skip_why)) < 0)
		return TAP_SKIP;
	for (i = 0; argv[i] && i < 22; i++)
		full[i + 1] = argv[i];
	full[i + 1] = NULL;
	pid = cg1_spawn(&cg, full, &fd);
	if (pid < 0) {
		cg1_remove(&cg);
		return TAP_FAIL;
	}
	read_all_fd(fd, out, sizeof(out));
	st = wait_exit(pid);
	*kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
	max_usage = cg1_read(&cg, "memory.max_usage_in_bytes", NULL);
	tap_diag("%s in %u MiB: exit %d, oom_kill %llu, highest usage %.1f MiB", name,
		 mib, st, (unsigned long long)*kills, max_usage / (double)MiB);
	cg1_remove(&cg);
	if (st != 0 && *kills == 0)
		return TAP_FAIL;
	/* A race that never came near the limit tested nothing: the
	 * kernel's highest usage reached 80 % of it. */
	if (max_usage == UINT64_MAX || max_usage < (uint64_t)mib * MiB * 8 / 10) {
		tap_diag("%s: never came near the limit", name);
		return TAP_FAIL;
	}
	return TAP_PASS;
}

/* Two runs; passes when neither was OOM-killed. */
static int twice(const char *name, unsigned mib, char **argv)
{
	uint64_t kills;
	int i, r;

	for (i = 0; i < 2; i++) {
		r = run(name, mib, argv, &kills);
		if (r == TAP_SKIP)
			return tap_skip_required("CGROUP", "%s", skip_why);
		CHECK(r == TAP_PASS);
		CHECK(kills == 0);
	}
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_native(void)
{
	char *argv[] = { V1_OFF, hog, "--threads", "8", "--rate", "100000",
			 "--duration", "2500ms", NULL };

	return twice("native", 64, argv);
}

static int test_osv(void)
{
	char *argv[] = { V1_OFF, brake, hog, "--osv", "--threads", "8", "--rate",
			 "100000", "--duration", "2500ms", NULL };

	return twice("osv", 64, argv);
}

static int test_deferred(void)
{
	char *argv[] = { V1_OFF, brake, hog, "--deferred", "--threads", "8",
			 "--rate", "100000", "--duration", "2500ms", NULL };

	return twice("deferred", 128, argv);
}

static int test_never(void)
{
	char total[32];
	char *argv[] = { V1_OFF, brake, grower, "--mode", "never", "--threads", "8",
			 "--total", total, "--duration", "2500", NULL };

	snprintf(total, sizeof(total), "%llu", 3 * 64 * MiB);
	return twice("never", 64, argv);
}

static int test_never_thresholds(void)
{
	char total[32];
	char *argv[] = { brake, grower, "--mode", "never", "--threads", "8",
			 "--total", total, "--duration", "2500", NULL };

	snprintf(total, sizeof(total), "%llu", 3 * 128 * MiB);
	return twice("never, thresholds on", 128, argv);
}

static int test_idle(void)
{
	char total[32], after[32];
	char *argv[] = { V1_OFF, brake, grower, "--mode", "never", "--threads", "8",
			 "--total", total, "--idle", "5000", "--after-idle", after, NULL };
	unsigned long long wk = 99, cpu = 99999;
	uint64_t kills;
	const char *p;
	int r;

	/* 70 % of 128 MiB, then still, then full speed again. */
	snprintf(total, sizeof(total), "%llu", 90 * MiB);
	snprintf(after, sizeof(after), "%llu", 3 * 128 * MiB);
	r = run("idle", 128, argv, &kills);
	if (r == TAP_SKIP)
		return tap_skip_required("CGROUP", "%s", skip_why);
	CHECK(r == TAP_PASS);
	p = strstr(out, "idle_wakeups=");
	CHECK(p && sscanf(p, "idle_wakeups=%llu measurements=%*u idle_cpu_us=%llu",
			  &wk, &cpu) == 2);
	tap_diag("idle 5 s: %llu wake-ups, %llu us of CPU; then full speed: oom_kill %llu",
		 wk, cpu, (unsigned long long)kills);
	/* Counts, not CPU time: what a wake-up costs depends on the machine
	 * (make bench's idle scenario reports it); how many there are does
	 * not. */
	CHECK(wk <= 5);
	CHECK(kills == 0);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "native memory-hog, 8 threads, 64 MiB, no thresholds, no brake: no OOM kill", test_native },
	{ "OSv mode, 8 threads, 64 MiB, no thresholds, brake: no OOM kill", test_osv },
	{ "deferred mode, 8 threads, 128 MiB, no thresholds, brake: no OOM kill", test_deferred },
	{ "caches that never ask, 8 threads, 64 MiB, no thresholds, brake: no OOM kill", test_never },
	{ "caches that never ask, 8 threads, 128 MiB, thresholds, brake: no OOM kill", test_never_thresholds },
	{ "idle at 70 %: <= 1 wake-up/s; full speed again: no OOM kill", test_idle },
};

int main(void)
{
	const char *san = getenv("SANITIZE");

	/* The brake interposes malloc, which a sanitizer owns; and the memory
	 * figures would be the sanitizer's. */
	if (san && *san)
		tap_skip_all("memory figures are meaningless under a sanitizer");
	if (geteuid() != 0)
		tap_skip_all_required("CGROUP", "needs root to make a child memory cgroup");
	snprintf(hog, sizeof(hog), "%s/memory-hog", build_dir());
	snprintf(grower, sizeof(grower), "%s/tests/prog-grower", build_dir());
	{
		char rel[600], *abs;

		snprintf(rel, sizeof(rel), "%s/libshrinker-brake.so", build_dir());
		abs = realpath(rel, NULL);
		if (!abs)
			tap_skip_all_required("BUILD", "libshrinker-brake.so not built");
		snprintf(brake, sizeof(brake), "LD_PRELOAD=%s", abs);
		free(abs);
	}
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
