/* SPDX-License-Identifier: MIT */
/*
 * Limit discovery and headroom on captured fixture trees (tests/fixtures):
 * cgroup v1 with the limit on an ancestor, cgroup v2 nested with "max" at
 * some levels, containers with and without a cgroup namespace, no cgroup,
 * garbage and truncated files; the budget; the watermarks; the decision.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../src/2-kernel/cgroup.h"
#include "../src/internal.h"
#include "../src/3-model/measure.h"
#include "../src/3-model/watermarks.h"
#include "../src/4-monitor/monitor.h"
#include "../src/2-kernel/peers.h"
#include "helpers.h"
#include "tap.h"

static char fixtures[1024];

static void use_tree(const char *name)
{
	char root[PATH_MAX];

	snprintf(root, sizeof(root), "%s/%s", fixtures, name);
	shrinker__set_root(root);
	shrinker__monitor_forget();
}

struct expect {
	const char *tree;
	int version;
	const char *dir_tail;  /* end of cg.dir */
	uint64_t limit;        /* from the cgroup, UINT64_MAX: none */
	uint64_t ws;
	const char *limit_has; /* in the limit's name */
};

static const struct expect cases[] = {
	{ "v1-hierarchical", 1, "/sys/fs/cgroup/memory/a/b", 256 * MiB, 150 * MiB,
	  "memory.limit_in_bytes of /a" },
	{ "v1-own-limit", 1, "/sys/fs/cgroup/memory/a/b", 128 * MiB, 150 * MiB,
	  "memory.limit_in_bytes of /a/b" },
	{ "v1-unlimited", 1, "/sys/fs/cgroup/memory/a/b", UINT64_MAX, 150 * MiB, "" },
	{ "v2-nested", 2, "/sys/fs/cgroup/a/b/c", 512 * MiB, 220 * MiB,
	  "memory.max of /a/b" },
	{ "v2-high", 2, "/sys/fs/cgroup/a/b/c", 384 * MiB, 220 * MiB,
	  "memory.high of /a/b/c" },
	{ "v2-container-ns", 2, "/sys/fs/cgroup", 256 * MiB, 100 * MiB,
	  "memory.max of /" },
	{ "v2-container-root", 2, "/sys/fs/my cgroup", 200 * MiB, 90 * MiB,
	  "memory.max of /" },
	/* An ancestor's limit against the ancestor's usage, which includes a
	 * sibling's: 480 MiB of /a/b's 512, not our 220. */
	{ "v2-sibling", 2, "/sys/fs/cgroup/a/b/c", 512 * MiB, 480 * MiB,
	  "memory.max of /a/b" },
	{ "v1-sibling", 1, "/sys/fs/cgroup/memory/a/b", 256 * MiB, 250 * MiB,
	  "memory.limit_in_bytes of /a" },
	/* Docker (cgroupns private, the cgroup2 mount read-only, the
	 * container's cgroup at its root): 200 MiB used, 30 MiB of it
	 * inactive page cache. */
	{ "v2-docker", 2, "/sys/fs/cgroup", 512 * MiB, 170 * MiB, "memory.max of /" },
	/* A cgroup at its limit writing a file: reclaim parked the dirty and
	 * writeback pages on the active list, where they count as page cache
	 * on its way out, not as the working set.  200 MiB used, 16 inactive,
	 * 80 active of which 70 dirty or under writeback: 114 MiB.  On v1
	 * the hierarchy's totals, and no more active pages than there are:
	 * 200 - 50 - 20 = 130 MiB. */
	{ "v2-writeback", 2, "/sys/fs/cgroup", 512 * MiB, 114 * MiB, "memory.max of /" },
	{ "v1-writeback", 1, "/sys/fs/cgroup/memory/a/b", 128 * MiB, 130 * MiB,
	  "memory.limit_in_bytes of /a/b" },
	/* Podman rootless under systemd, cgroupns=host: the limit on the
	 * libpod scope, the process in its "container" child; the scope's
	 * usage is what counts. */
	{ "v2-podman", 2, "/libpod-3f2a9c.scope/container", 256 * MiB, 110 * MiB,
	  "memory.max of /user.slice/user-1000.slice/user@1000.service/user.slice/"
	  "libpod-3f2a9c.scope" },
	/* A Kubernetes pod with memory QoS: memory.high (0.9 of the way)
	 * under memory.max binds first. */
	{ "v2-k8s-qos", 2, "/sys/fs/cgroup", 483183616, 280 * MiB, "memory.high of /" },
	/* memory.stat cut short in the middle of "inactive_file": no page
	 * cache is known, so all 100 MiB of usage count as used (the safe
	 * side), not the 90 MiB of anonymous memory. */
	{ "v2-stat-cut", 2, "/sys/fs/cgroup/a", 256 * MiB, 100 * MiB, "memory.max of /a" },
};

static int test_discovery(void)
{
	int r = TAP_FAIL;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct expect *e = &cases[i];
		struct shrinker__cgroup cg;
		struct shrinker__cg_measure m;
		char root[PATH_MAX];
		size_t dl, tl = strlen(e->dir_tail);

		snprintf(root, sizeof(root), "%s/%s", fixtures, e->tree);
		tap_diag("tree %s", e->tree);
		CHECK(shrinker__cgroup_find(root, &cg) == 0);
		CHECK(cg.version == e->version);
		dl = strlen(cg.dir);
		CHECK(dl >= tl && strcmp(cg.dir + dl - tl, e->dir_tail) == 0);
		CHECK(shrinker__cgroup_measure(&cg, &m) == 0);
		CHECK(m.limit == e->limit);
		CHECK(m.working_set == e->ws);
		CHECK(strstr(m.limit_name, e->limit_has) != NULL);
	}
	r = TAP_PASS;
fail:
	return r;
}

static int test_no_cgroup(void)
{
	struct shrinker__cgroup cg;
	struct shrinker__cg_measure m;
	char root[PATH_MAX];
	int r = TAP_FAIL;

	snprintf(root, sizeof(root), "%s/no-cgroup", fixtures);
	CHECK(shrinker__cgroup_find(root, &cg) == 0);
	CHECK(cg.version == 0 && strstr(cg.why, "no memory cgroup"));
	CHECK(shrinker__cgroup_measure(&cg, &m) == -ENOENT);
	snprintf(root, sizeof(root), "%s/empty", fixtures);
	CHECK(shrinker__cgroup_find(root, &cg) == 0);
	CHECK(cg.version == 0 && strstr(cg.why, "/proc/self/cgroup"));
	snprintf(root, sizeof(root), "%s/does-not-exist", fixtures);
	CHECK(shrinker__cgroup_find(root, &cg) == 0 && cg.version == 0);
	r = TAP_PASS;
fail:
	return r;
}

static int test_headroom(void)
{
	struct shrinker_memory mem;
	int r = TAP_FAIL;

	/* The cgroup's limit leaves less headroom than the system's. */
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(mem.cgroup_version == 2);
	CHECK(mem.limit == 512 * MiB && mem.working_set == 220 * MiB);
	CHECK(mem.headroom == 292 * MiB);
	CHECK(strstr(mem.limit_source, "cgroup v2 memory.max of /a/b"));
	/* memory.max alone warns at the limit only: the ceiling, 10 %. */
	CHECK_NEAR(mem.soft_watermark, 51.2 * MiB, 0.01 * MiB);
	CHECK_NEAR(mem.hard_watermark, 25.6 * MiB, 0.01 * MiB);

	/* No cgroup limit: the system's MemAvailable. */
	use_tree("v1-unlimited");
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(mem.limit == 8192 * MiB && mem.working_set == 2048 * MiB);
	CHECK(strstr(mem.limit_source, "system MemAvailable"));
	use_tree("no-cgroup");
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(mem.cgroup_version == 0 && mem.limit == 8192 * MiB);
	r = TAP_PASS;
fail:
	return r;
}

static int test_budget(void)
{
	struct shrinker_memory mem;
	int r = TAP_FAIL;

	/* A budget smaller than what the cgroup leaves wins, against RSS. */
	use_tree("v2-nested");
	CHECK(shrinker_set_limit(1024 * MiB) == 0);
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(mem.limit == 512 * MiB && mem.budget == 1024 * MiB);
	CHECK(shrinker_set_limit(16 * MiB) == 0);
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(mem.limit == 16 * MiB && strstr(mem.limit_source, "budget"));
	CHECK(mem.working_set > 0); /* our own RSS */
	CHECK(mem.soft_watermark == 4 * MiB && mem.hard_watermark == 2 * MiB);

	/* A percentage of the detected limit, from the environment. */
	setenv("SHRINKER_LIMIT", "25%", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(mem.budget == 128 * MiB);
	CHECK(mem.limit == 128 * MiB);

	/* Bad values are reported and ignored. */
	setenv("SHRINKER_LIMIT", "abc", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(mem.budget == 0 && mem.limit == 512 * MiB);
	setenv("SHRINKER_LIMIT", "99999999999T", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0 && mem.budget == 0);
	setenv("SHRINKER_LIMIT", "-1", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0 && mem.budget == 0);
	setenv("SHRINKER_LIMIT", "", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0 && mem.budget == 0);
	/* 0 means no budget, as shrinker_set_limit(0) does; "101%" is
	 * refused with that reason; "50 %" is half, like "50%". */
	setenv("SHRINKER_LIMIT", "0", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0 && mem.budget == 0 && mem.limit == 512 * MiB);
	setenv("SHRINKER_LIMIT", "101%", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0 && mem.budget == 0);
	setenv("SHRINKER_LIMIT", "50 %", 1);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0 && mem.budget == 256 * MiB);
	r = TAP_PASS;
fail:
	unsetenv("SHRINKER_LIMIT");
	shrinker_set_limit(0);
	return r;
}

static int test_garbage(void)
{
	struct shrinker_memory mem = { .limit = 1 };
	int r = TAP_FAIL;

	/* Garbage limits are ignored, meminfo without MemAvailable gives no
	 * system figure: nothing to go on, said as such. */
	use_tree("v2-garbage");
	CHECK(shrinker_get_memory(&mem) == -ENODATA);
	CHECK(mem.limit == 1);
	/* A budget still works. */
	CHECK(shrinker_set_limit(64 * MiB) == 0);
	CHECK(shrinker_get_memory(&mem) == 0 && mem.limit == 64 * MiB);
	CHECK(shrinker_set_limit(0) == 0);
	use_tree("empty");
	CHECK(shrinker_get_memory(&mem) == -ENODATA);
	CHECK(shrinker_get_memory(NULL) == -EINVAL);
	r = TAP_PASS;
fail:
	shrinker_set_limit(0);
	return r;
}

/* Measure the v2-high tree (memory.high 384 MiB, under a memory.max: the
 * kernel throttles before it kills, so the floor applies) with the slow
 * growth rate set to rate bytes/s and the library's recent reaction to
 * need_ns. */
/* Move the library's clock ahead (util.c): what happens over time is
 * checked at the times the test names, however slow the machine. */
static void advance_ms(unsigned ms)
{
	atomic_fetch_add(&shrinker__clock_ahead_ns, (uint64_t)ms * 1000000u);
}

static int measure_at(double rate, uint64_t need_ns, struct shrinker_memory *mem)
{
	shrinker__mon.rate_slow = rate;
	shrinker__reaction_forget();
	shrinker__reaction_seen(need_ns, shrinker__now_ns());
	return shrinker_get_memory(mem);
}

static int test_watermarks_adapt(void)
{
	static const struct {
		unsigned after_ms;
		double mib;
	} fall[] = { { 0, 38.4 }, { 150, 38.4 }, { 200, 23.4 }, { 0, 23.4 }, { 120, 14.4 },
		     { 120, 11.4 }, { 120, 9.6 } };
	struct shrinker_memory mem;
	int r = TAP_FAIL;
	size_t i;

	use_tree("v2-high");
	/* The caches' give-back not timed yet: the ceiling, 10 % of the
	 * limit, however little grew. */
	atomic_store(&shrinker__giveback, 0);
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK(mem.limit == 384 * MiB);
	CHECK_NEAR(mem.soft_watermark, 38.4 * MiB, 0.01 * MiB);
	/* Timed at 256 MiB/s, a quarter of the reference 1 GiB/s: four
	 * times the floor, 38.4 MiB, the ceiling; at 512 MiB/s, twice:
	 * 19.2 MiB, once the watermark has come down to it. */
	atomic_store(&shrinker__giveback, 256 * MiB);
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 38.4 * MiB, 0.01 * MiB);
	atomic_store(&shrinker__giveback, 512 * MiB);
	use_tree("v2-high");
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 19.2 * MiB, 0.01 * MiB);
	/* At 64 MiB/s, sixteen times the floor would be 153.6 MiB: a quarter
	 * of the limit at most, 96 MiB, past the ceiling; the hard watermark
	 * half of it. */
	atomic_store(&shrinker__giveback, 64 * MiB);
	use_tree("v2-high");
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 96 * MiB, 0.01 * MiB);
	CHECK_NEAR(mem.hard_watermark, 48 * MiB, 0.01 * MiB);
	/* As fast as the reference: nothing grew, the floor, 2.5 % of
	 * 384 MiB, exactly (the steps are for the growth's part). */
	atomic_store(&shrinker__giveback, 1024 * MiB);
	use_tree("v2-high");
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 9.6 * MiB, 0.01 * MiB);
	CHECK_NEAR(mem.hard_watermark, 4.8 * MiB, 0.01 * MiB);
	/* 1 GiB/s for 25 ms (the least reaction): 25.6 MiB, in 3 MiB steps. */
	CHECK(measure_at(1024.0 * MiB, 0, &mem) == 0);
	CHECK(mem.soft_watermark == 27 * MiB);
	/* Faster growth: the ceiling, 10 % of the limit. */
	CHECK(measure_at(10240.0 * MiB, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 38.4 * MiB, 0.01 * MiB);
	/* Growth stopped: held for 300 ms after it rose, not down at once;
	 * then half the way down to the 9.6 MiB floor, in 3 MiB steps, per
	 * 100 ms: 38.4 - 15 = 23.4, 23.4 - 9 = 14.4, 14.4 - 3 = 11.4, then
	 * the floor (half of 1.8 MiB, rounded up, is past it). */
	for (i = 0; i < sizeof(fall) / sizeof(fall[0]); i++) {
		advance_ms(fall[i].after_ms);
		CHECK(measure_at(0, 0, &mem) == 0);
		CHECK_NEAR(mem.soft_watermark, fall[i].mib * MiB, 0.01 * MiB);
	}
	/* A slow reaction (50 ms lately: twice that is needed) sizes it up:
	 * 256 MiB/s for 100 ms. */
	use_tree("v2-high");
	CHECK(measure_at(256.0 * MiB, 50000000, &mem) == 0);
	CHECK(mem.soft_watermark == 27 * MiB);
	/* memory.max alone: no warning before the limit, the ceiling stays
	 * whatever the growth... */
	use_tree("v2-nested");
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 51.2 * MiB, 0.01 * MiB);
	/* ... unless the program's growth probes the cgroup's usage (the
	 * growth clock: here a report of 64 MiB, past any step, every
	 * 50 ms): then the floor, 2.5 % of 512 MiB, once it has come
	 * down... */
	for (i = 0; i < 30; i++) {
		CHECK(shrinker_account(64 * MiB, 0) == 0);
		CHECK(measure_at(0, 0, &mem) == 0);
		advance_ms(50);
	}
	CHECK_NEAR(mem.soft_watermark, 12.8 * MiB, 0.01 * MiB);
	/* ... and the ceiling again, at once, a second after they stop. */
	advance_ms(1100);
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 51.2 * MiB, 0.01 * MiB);
	r = TAP_PASS;
fail:
	shrinker__mon.rate_slow = 0;
	shrinker__reaction_forget();
	return r;
}

/* Whether the monitor asks now, a soft request of exactly want bytes. */
static bool asks_soft(uint64_t want)
{
	uint64_t target = 0;
	bool hard = true;

	return shrinker__monitor_check(NULL, 0, &target, &hard) && !hard && target == want;
}

static int test_calibration(void)
{
	/* 340 MiB of working set under memory.high at 384 MiB: 44 MiB of
	 * headroom, within the band above the 38.4 MiB ceiling (9.6 MiB)
	 * and a step (3 MiB), nothing to free: the caches have filled up to
	 * the soft watermark. */
	char tmp[PATH_MAX];
	const char *cg = "sys/fs/cgroup/a/b/c";
	struct shrinker_memory mem;
	char file[128];
	uint64_t target;
	int r = TAP_FAIL;
	unsigned i;
	bool hard;

	CHECK(fixture_copy("v2-high", "calibrate", tmp, sizeof(tmp)) == 0);
	snprintf(file, sizeof(file), "%s/memory.current", cg);
	CHECK(fixture_write(tmp, file, "356515840\n") == 0);
	snprintf(file, sizeof(file), "%s/memory.stat", cg);
	CHECK(fixture_write(tmp, file, "anon 356515840\nfile 0\nactive_anon 356515840\n"
		  "inactive_anon 0\nactive_file 0\ninactive_file 0\n") == 0);
	shrinker__set_root(tmp);
	shrinker__monitor_forget();
	shrinker__mon.rate_slow = 0;
	atomic_store(&shrinker__giveback, 0);
	/* Not timed yet: a soft request of a 128th of the limit, 3 MiB, to
	 * time it; not again at once. */
	CHECK(asks_soft(3 * MiB));
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	/* It did not teach (nothing came back): again after 10 s, then
	 * after twice as long each time. */
	advance_ms(9900);
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	advance_ms(200);
	CHECK(asks_soft(3 * MiB));
	advance_ms(19800);
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	advance_ms(300);
	CHECK(asks_soft(3 * MiB));
	advance_ms(39800);
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	advance_ms(300);
	CHECK(asks_soft(3 * MiB));
	/* Timed as fast as the reference (1 GiB/s): the floor; never
	 * asked again. */
	atomic_store(&shrinker__giveback, 1024 * MiB);
	advance_ms(700000);
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	/* Timed slow (256 MiB/s: the floor raised to the ceiling): timed
	 * anew, once the 80 s are over, then after 1 s, 2 s, 4 s and 8 s (a
	 * small timing on a busy machine is slow by chance more often than
	 * not: the slow schedule starts at 1 s). */
	atomic_store(&shrinker__giveback, 256 * MiB);
	CHECK(shrinker_get_memory(&mem) == 0); /* as after the request that timed it */
	CHECK_NEAR(mem.soft_watermark, 38.4 * MiB, 0.01 * MiB);
	CHECK(asks_soft(3 * MiB));
	for (i = 0; i < 4; i++) {
		unsigned wait = 1000u << i;

		advance_ms(wait - 100);
		CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
		advance_ms(200);
		CHECK(asks_soft(3 * MiB));
	}
	/* A request that timed it (slow) 10 s into the next 16 s puts the
	 * next timing off to 16 s after that request. */
	advance_ms(10000);
	atomic_store(&shrinker__giveback_at, shrinker__now_ns());
	advance_ms(15900);
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	advance_ms(200);
	CHECK(asks_soft(3 * MiB));
	/* Timed fast again: never asked again. */
	atomic_store(&shrinker__giveback, 1024 * MiB);
	CHECK(shrinker_get_memory(&mem) == 0);
	advance_ms(700000);
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	/* Caches far below the watermark (220 MiB): none. */
	atomic_store(&shrinker__giveback, 0);
	CHECK(fixture_write(tmp, file, "anon 230686720\nfile 0\nactive_anon 230686720\n"
		  "inactive_anon 0\nactive_file 0\ninactive_file 0\n") == 0);
	snprintf(file, sizeof(file), "%s/memory.current", cg);
	CHECK(fixture_write(tmp, file, "230686720\n") == 0);
	advance_ms(700000);
	CHECK(!shrinker__monitor_check(NULL, 0, &target, &hard));
	r = TAP_PASS;
fail:
	atomic_store(&shrinker__giveback, 0);
	atomic_store(&shrinker__giveback_at, 0);
	fixture_remove(tmp);
	use_tree("v2-high");
	return r;
}

static int test_watermark_api(void)
{
	struct shrinker_memory mem;
	int r = TAP_FAIL;

	CHECK(shrinker_set_watermarks(100, 100) == -EINVAL);
	CHECK(shrinker_set_watermarks(501, 10) == -EINVAL);
	CHECK(shrinker_set_watermarks(100, 0) == -EINVAL);
	CHECK(shrinker_set_watermarks(0, 10) == -EINVAL);
	CHECK(shrinker_set_watermarks(200, 20) == 0);
	use_tree("v2-nested");
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 102.4 * MiB, 0.01 * MiB);
	CHECK_NEAR(mem.hard_watermark, 10.24 * MiB, 0.01 * MiB);
	/* Fixed: growth does not move them. */
	CHECK(measure_at(10240.0 * MiB, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 102.4 * MiB, 0.01 * MiB);
	/* 0, 0: the default again, sized by the reaction. */
	CHECK(shrinker_set_watermarks(0, 0) == 0);
	atomic_store(&shrinker__giveback, 1024 * MiB);
	use_tree("v2-high");
	CHECK(measure_at(0, 0, &mem) == 0);
	CHECK_NEAR(mem.soft_watermark, 9.6 * MiB, 0.01 * MiB);
	CHECK_NEAR(mem.hard_watermark, 4.8 * MiB, 0.01 * MiB);
	r = TAP_PASS;
fail:
	shrinker_set_watermarks(0, 0);
	shrinker__mon.rate_slow = 0;
	return r;
}

static int test_decide(void)
{
	struct shrinker_memory mem = {
		.limit = 1000 * MiB, .soft_watermark = 100 * MiB,
		.hard_watermark = 50 * MiB,
	};
	uint64_t target = 0;
	bool hard = true;
	int r = TAP_FAIL;

	mem.headroom = 300 * MiB; /* far away */
	CHECK(!shrinker__decide(&mem, SHRINKER__SIG_MEASURE, 0, &target, &hard));
	CHECK(!shrinker__decide(&mem, SHRINKER__SIG_REARM, 0, &target, &hard));
	/* cgroup v1 "medium" with room to spare: page cache, not us. */
	CHECK(!shrinker__decide(&mem, SHRINKER__SIG_RECLAIM, 0, &target, &hard));
	/* Confirmed pressure though far away: a soft nudge. */
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_SOFT, 0, &target, &hard));
	CHECK(target == 25 * MiB && !hard);
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_HARD, 0, &target, &hard));
	CHECK(target == 25 * MiB && !hard);
	mem.headroom = 80 * MiB; /* under soft */
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_MEASURE, 0, &target, &hard));
	CHECK(target == 45 * MiB && !hard);
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_SOFT, 0, &target, &hard));
	CHECK(hard); /* short, and the kernel stalls already */
	CHECK(target == 100 * MiB); /* hard asks for a soft watermark at least */
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_RECLAIM, 0, &target, &hard));
	CHECK(hard && target == 100 * MiB); /* short: "medium" counts */
	/* Growth in progress: what it takes during the reaction is added. */
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_MEASURE, 25.6 * MiB, &target, &hard));
	CHECK_NEAR(target, 45 * MiB + 25.6 * MiB, 1);
	CHECK(!hard);
	mem.headroom = 40 * MiB; /* under hard */
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_MEASURE, 0, &target, &hard));
	CHECK(target == 100 * MiB && hard);
	mem.headroom = 0;
	CHECK(shrinker__decide(&mem, SHRINKER__SIG_MEASURE, 0, &target, &hard));
	CHECK(target == 125 * MiB && hard);
	r = TAP_PASS;
fail:
	return r;
}

static int test_rearm_in_time(void)
{
	uint64_t use = 1;
	int r = TAP_FAIL;

	/* Nothing grows: the thresholds move whatever the distance. */
	CHECK(shrinker__rearm_in_time(0, 40000000, 20 * MiB, 0, 10 * MiB, &use));
	CHECK(use == 0);
	/* 200 MiB/s while an arming takes 40 ms: 4 x 8 MiB = 32 MiB would be
	 * used meanwhile; with 10 MiB above the soft watermark the move waits,
	 * with 40 MiB it goes ahead. */
	CHECK(!shrinker__rearm_in_time(200.0 * MiB, 40000000, 20 * MiB, 0, 10 * MiB, &use));
	CHECK_NEAR(use, 32 * MiB, 1);
	CHECK(shrinker__rearm_in_time(200.0 * MiB, 40000000, 50 * MiB, 0, 10 * MiB, &use));
	CHECK_NEAR(use, 32 * MiB, 1);
	/* Never timed, or timed fast: counted as 10 ms (8 MiB at 200 MiB/s). */
	CHECK(!shrinker__rearm_in_time(200.0 * MiB, 0, 17 * MiB, 0, 10 * MiB, &use));
	CHECK_NEAR(use, 8 * MiB, 1);
	CHECK(shrinker__rearm_in_time(200.0 * MiB, 1000, 19 * MiB, 0, 10 * MiB, &use));
	/* Already at or below the soft watermark: nothing is above it. */
	CHECK(!shrinker__rearm_in_time(1.0 * MiB, 0, 10 * MiB, 0, 10 * MiB, &use));
	CHECK(!shrinker__rearm_in_time(1.0 * MiB, 0, 5 * MiB, 0, 10 * MiB, &use));
	/* Holes a trim left are not headroom: 50 MiB of headroom, 20 of it
	 * holes, leaves 20 above the soft watermark, less than 32. */
	CHECK(!shrinker__rearm_in_time(200.0 * MiB, 40000000, 50 * MiB, 20 * MiB,
				       10 * MiB, &use));
	CHECK(shrinker__rearm_in_time(200.0 * MiB, 40000000, 50 * MiB, 5 * MiB,
				      10 * MiB, &use));
	CHECK(!shrinker__rearm_in_time(0, 0, 50 * MiB, 60 * MiB, 10 * MiB, &use));
	/* An absurd rate does not wrap. */
	CHECK(!shrinker__rearm_in_time(1e30, 40000000, UINT64_MAX, 0, 0, &use));
	CHECK(use == UINT64_MAX);
	r = TAP_PASS;
fail:
	return r;
}

static int test_peer_parts(void)
{
	/* Three processes under one limit: 150, 100 and 50 MiB resident
	 * (an equal share is 100).  Each computes its part of the same
	 * target from its own view; the parts add up to the target. */
	const uint64_t rss[3] = { 150 * MiB, 100 * MiB, 50 * MiB };
	struct shrinker__peers p = { .n = 3, .total = 300 * MiB,
				     .excess_total = 50 * MiB };
	uint64_t sum, part[3];
	int r = TAP_FAIL, i;

	/* 30 MiB: within what the one above its share holds in excess, so
	 * it pays all of it and the others nothing. */
	for (i = 0, sum = 0; i < 3; i++) {
		p.self = rss[i];
		p.excess_self = rss[i] > 100 * MiB ? rss[i] - 100 * MiB : 0;
		part[i] = shrinker__peers_part(&p, 30 * MiB);
		sum += part[i];
	}
	CHECK(part[0] == 30 * MiB && part[1] == 0 && part[2] == 0);
	/* 110 MiB: its 50 MiB excess first, then 60 MiB by what each holds. */
	for (i = 0, sum = 0; i < 3; i++) {
		p.self = rss[i];
		p.excess_self = rss[i] > 100 * MiB ? rss[i] - 100 * MiB : 0;
		part[i] = shrinker__peers_part(&p, 110 * MiB);
		sum += part[i];
	}
	CHECK_NEAR(part[0], 80 * MiB, 1);
	CHECK_NEAR(part[1], 20 * MiB, 1);
	CHECK_NEAR(part[2], 10 * MiB, 1);
	CHECK_NEAR(sum, 110 * MiB, 3);
	CHECK(shrinker__peers_below_share(&p)); /* the 50 MiB one */
	p.self = 100 * MiB;
	CHECK(!shrinker__peers_below_share(&p));
	/* Alone: the whole target. */
	p = (struct shrinker__peers){ .n = 1, .self = 10, .total = 10 };
	CHECK(shrinker__peers_part(&p, 7 * MiB) == 7 * MiB);
	r = TAP_PASS;
fail:
	return r;
}

/* Whether the peers spawned next asked for room to grow just now. */
static bool peer_growing;

/* A peer in a child process publishes its soft watermark (peer_soft) in
 * the shared file for the cgroup directory dir, and a request of paying
 * bytes (0: none) under way, or, if paid, ended, having given them back;
 * then waits for a byte on go before it leaves. */
static pid_t spawn_peer_paying(const char *dir, uint64_t peer_soft, uint64_t paying,
			       bool paid, int *go_w)
{
	int ready[2], go[2];
	pid_t pid;
	char c = 0;

	if (pipe(ready) < 0)
		return -1;
	if (pipe(go) < 0) {
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		struct shrinker__peers q;

		shrinker__peers_forget();
		shrinker__peers_update(dir, 100 * MiB, peer_soft,
				       peer_growing ? shrinker__now_ns() : 0, &q);
		if (paying)
			shrinker__peers_paying(paying);
		if (paying && paid)
			shrinker__peers_paid(paying);
		(void)!write(ready[1], "r", 1);
		(void)!read(go[0], &c, 1);
		shrinker__peers_release();
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	if (pid < 0 || read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		close(go[1]);
		return -1;
	}
	close(ready[0]);
	*go_w = go[1];
	return pid;
}

static pid_t spawn_peer(const char *dir, uint64_t peer_soft, int *go_w)
{
	return spawn_peer_paying(dir, peer_soft, 0, false, go_w);
}

/* Let a peer from spawn_peer() leave (go: its pipe, -1 if none), and
 * wait for it (pid, <= 0 if none). */
static void stop_peer(int go, pid_t pid)
{
	int st;

	if (go >= 0) {
		(void)!write(go, "g", 1);
		close(go);
	}
	if (pid > 0)
		waitpid(pid, &st, 0);
}

/* The end of a test with a peer: it leaves, we detach, the directory
 * that stood for the cgroup goes; returns r. */
static int end_peers(int r, int go, pid_t pid, const char *dir)
{
	stop_peer(go, pid);
	shrinker__peers_release();
	rmdir(dir);
	return r;
}

static int test_peer_watermark(void)
{
	/* Two processes of one cgroup (a directory of our own stands for
	 * it; the shared file is named by its device and inode): each reads
	 * the soft watermark the other sized for itself, while it is fresh;
	 * a peer that published none (at its ceiling) gives none. */
	char dir[] = "/tmp/test-limits-peers-XXXXXX";
	struct shrinker__peers p;
	int r = TAP_FAIL, go = -1, st;
	pid_t pid = -1;

	if (!mkdtemp(dir))
		return tap_skip_why("mkdtemp: %s", strerror(errno));
	pid = spawn_peer(dir, 12 * MiB, &go);
	CHECK(pid > 0);
	shrinker__peers_update(dir, 50 * MiB, 6 * MiB, 0, &p);
	if (p.n == 1) {
		r = tap_skip_required("SHM", "no shared file in /dev/shm here");
		goto fail;
	}
	CHECK(p.n == 2 && p.self == 50 * MiB && p.total == 150 * MiB);
	CHECK(p.soft_max == 12 * MiB);
	/* Not rewritten for more than a second: no longer a busy peer's. */
	sleep_ms(1100);
	shrinker__peers_update(dir, 50 * MiB, 6 * MiB, 0, &p);
	CHECK(p.n == 2 && p.soft_max == 0);
	(void)!write(go, "g", 1);
	close(go);
	go = -1;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pid = -1;
	/* A peer that publishes none. */
	pid = spawn_peer(dir, 0, &go);
	CHECK(pid > 0);
	shrinker__peers_update(dir, 50 * MiB, 6 * MiB, 0, &p);
	CHECK(p.n == 2 && p.soft_max == 0);
	r = TAP_PASS;
fail:
	return end_peers(r, go, pid, dir);
}

static int test_peer_growing(void)
{
	/* The processes that asked for room to grow within the last second
	 * share it (room.c): a growing peer counts, one that asked a second
	 * ago or never does not, and this one counts when it asked. */
	char dir[] = "/tmp/test-limits-peers-XXXXXX";
	int r = TAP_FAIL, go = -1, go2 = -1;
	struct shrinker__peers p;
	pid_t pid = -1, pid2 = -1;

	if (!mkdtemp(dir))
		return tap_skip_why("mkdtemp: %s", strerror(errno));
	peer_growing = true;
	pid = spawn_peer(dir, 0, &go);
	peer_growing = false;
	CHECK(pid > 0);
	pid2 = spawn_peer(dir, 0, &go2);
	CHECK(pid2 > 0);
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	if (p.n == 1) {
		r = tap_skip_required("SHM", "no shared file in /dev/shm here");
		goto fail;
	}
	CHECK(p.n == 3 && p.growing == 1);
	shrinker__peers_update(dir, 50 * MiB, 0, shrinker__now_ns(), &p);
	CHECK(p.n == 3 && p.growing == 2);
	/* A second later the peer is no longer growing; we are, alone. */
	sleep_ms(1100);
	shrinker__peers_update(dir, 50 * MiB, 0, shrinker__now_ns(), &p);
	CHECK(p.n == 3 && p.growing == 1);
	/* Nobody growing: still one part, the whole room. */
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	CHECK(p.growing == 1);
	r = TAP_PASS;
fail:
	stop_peer(go2, pid2);
	return end_peers(r, go, pid, dir);
}

static int test_peer_paying(void)
{
	/* The usage shows a peer's part of a deficit only once its memory
	 * is back: what its request under way frees, and what it gave back
	 * after our measurement, are left out of the deficit we see.  Two
	 * processes that measured one deficit gave 16-23 MiB where one alone
	 * gave 9 when each took its part of what the other was freeing. */
	char dir[] = "/tmp/test-limits-paying-XXXXXX";
	struct shrinker__peers p;
	uint64_t way = 1, back = 1, before;
	int r = TAP_FAIL, go = -1;
	pid_t pid = -1;

	if (!mkdtemp(dir))
		return tap_skip_why("mkdtemp: %s", strerror(errno));
	/* Alone: nothing. */
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	shrinker__peers_others(shrinker__now_ns(), &way, &back);
	CHECK(way == 0 && back == 0);
	/* Under way: 20 MiB, however old our measurement. */
	pid = spawn_peer_paying(dir, 0, 20 * MiB, false, &go);
	CHECK(pid > 0);
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	if (p.n == 1) {
		r = tap_skip_required("SHM", "no shared file in /dev/shm here");
		goto fail;
	}
	shrinker__peers_others(0, &way, &back);
	CHECK(way == 20 * MiB && back == 0);
	/* Half a second later the peer is not waited for. */
	sleep_ms(600);
	shrinker__peers_others(0, &way, &back);
	CHECK(way == 0 && back == 0);
	stop_peer(go, pid);
	go = -1;
	pid = -1;
	/* Given back after our measurement: counted; before it: the usage
	 * we measured shows it already. */
	before = shrinker__now_ns();
	pid = spawn_peer_paying(dir, 0, 12 * MiB, true, &go);
	CHECK(pid > 0);
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	shrinker__peers_others(before, &way, &back);
	CHECK(way == 0 && back == 12 * MiB);
	shrinker__peers_others(shrinker__now_ns(), &way, &back);
	CHECK(way == 0 && back == 0);
	stop_peer(go, pid);
	go = -1;
	pid = -1;
	/* A figure from the shared file is clamped: a request under way
	 * frees no more than the peer holds (100 MiB). */
	pid = spawn_peer_paying(dir, 0, UINT64_MAX / 2, false, &go);
	CHECK(pid > 0);
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	shrinker__peers_others(0, &way, &back);
	CHECK(way == 100 * MiB && back == 0);
	r = TAP_PASS;
fail:
	return end_peers(r, go, pid, dir);
}

static int test_peer_many(void)
{
	/* More processes than the table's first 64 slots: 150 children of
	 * 1 MiB each publish in one table, which grows as they come, and
	 * we see every one of them; they leave, and the last one out (us)
	 * removes the file. */
	enum { N = 150 };
	char dir[] = "/tmp/test-limits-many-XXXXXX";
	char shm[128];
	struct shrinker__peers p;
	struct stat st;
	int r = TAP_FAIL, go[2] = { -1, -1 }, ready[2] = { -1, -1 }, i, started = 0;
	pid_t pid[N];
	char c;

	if (!mkdtemp(dir))
		return tap_skip_why("mkdtemp: %s", strerror(errno));
	CHECK(stat(dir, &st) == 0);
	snprintf(shm, sizeof(shm), "/dev/shm/libshrinker-%u-%llx-%llx", (unsigned)geteuid(),
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	CHECK(pipe(go) == 0 && pipe(ready) == 0);
	for (i = 0; i < N; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			struct shrinker__peers q;

			close(go[1]);
			close(ready[0]);
			shrinker__peers_forget();
			shrinker__peers_update(dir, 1 * MiB, 0, 0, &q);
			(void)!write(ready[1], "r", 1);
			(void)!read(go[0], &c, 1);
			shrinker__peers_release();
			_exit(0);
		}
		CHECK(pid[i] > 0);
		started++;
	}
	close(ready[1]);
	ready[1] = -1;
	for (i = 0; i < N; i++)
		CHECK(read(ready[0], &c, 1) == 1);
	if (access(shm, F_OK) != 0) {
		r = tap_skip_required("SHM", "no shared file in /dev/shm here");
		goto fail;
	}
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	tap_diag("%u processes, %.0f MiB in all", p.n, p.total / (double)MiB);
	CHECK(p.n == N + 1 && p.total == (N + 50) * MiB);
	/* The one above an equal share pays first: all of a small deficit. */
	CHECK(shrinker__peers_part(&p, 10 * MiB) == 10 * MiB);
	r = TAP_PASS;
fail:
	if (go[1] >= 0)
		close(go[1]); /* EOF: the children leave */
	for (i = 0; i < started; i++)
		waitpid(pid[i], NULL, 0);
	shrinker__peers_release();
	if (r == TAP_PASS && access(shm, F_OK) == 0) {
		tap_diag("%s was left behind", shm);
		r = TAP_FAIL;
	}
	unlink(shm);
	if (go[0] >= 0)
		close(go[0]);
	if (ready[0] >= 0)
		close(ready[0]);
	if (ready[1] >= 0)
		close(ready[1]);
	rmdir(dir);
	return r;
}

static int test_peer_sweep(void)
{
	/* A process that was killed leaves its table in /dev/shm: a child
	 * publishes in one for directory a and leaves with _exit(), as a
	 * SIGKILL would (no destructor runs).  Aged past a minute, the table
	 * is removed when a process creates a table for another cgroup; a
	 * fresh one, or one with a live process, is not. */
	char a[] = "/tmp/test-limits-sweep-a-XXXXXX";
	char b[] = "/tmp/test-limits-sweep-b-XXXXXX";
	char shm[128];
	struct shrinker__peers p;
	struct timespec old[2];
	struct stat st;
	int r = TAP_FAIL, i, wst;
	pid_t pid;

	if (!mkdtemp(a) || !mkdtemp(b))
		return tap_skip_why("mkdtemp: %s", strerror(errno));
	CHECK(stat(a, &st) == 0);
	snprintf(shm, sizeof(shm), "/dev/shm/libshrinker-%u-%llx-%llx", (unsigned)geteuid(),
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	pid = fork();
	if (pid == 0) {
		shrinker__peers_forget();
		shrinker__peers_update(a, 10 * MiB, 0, 0, &p);
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &wst, 0) == pid);
	if (access(shm, F_OK) != 0) {
		r = tap_skip_required("SHM", "no shared file in /dev/shm here");
		goto fail;
	}
	/* Fresh: kept. */
	shrinker__peers_update(b, 10 * MiB, 0, 0, &p);
	shrinker__peers_release();
	CHECK(access(shm, F_OK) == 0);
	/* Aged: removed by the next table made (each looks at 32 others;
	 * older leftovers on this machine go first, a batch each). */
	clock_gettime(CLOCK_REALTIME, &old[0]);
	old[0].tv_sec -= 120;
	old[1] = old[0];
	CHECK(utimensat(AT_FDCWD, shm, old, 0) == 0);
	for (i = 0; i < 200 && access(shm, F_OK) == 0; i++) {
		char c[] = "/tmp/test-limits-sweep-c-XXXXXX";

		CHECK(mkdtemp(c));
		shrinker__peers_update(c, 10 * MiB, 0, 0, &p);
		shrinker__peers_release();
		rmdir(c);
	}
	tap_diag("removed after %d new tables", i);
	CHECK(access(shm, F_OK) != 0);
	r = TAP_PASS;
fail:
	unlink(shm);
	rmdir(a);
	rmdir(b);
	return r;
}

static int test_peer_reattach(void)
{
	/* Our table is removed under us (the last one out, or a sweep, took
	 * it for abandoned as we attached): a peer that comes later makes a
	 * new one, and we must meet it there, not stay alone in ours. */
	char dir[] = "/tmp/test-limits-reattach-XXXXXX";
	char shm[128];
	struct shrinker__peers p;
	struct stat st;
	int r = TAP_FAIL, go = -1;
	pid_t pid = -1;

	if (!mkdtemp(dir))
		return tap_skip_why("mkdtemp: %s", strerror(errno));
	CHECK(stat(dir, &st) == 0);
	snprintf(shm, sizeof(shm), "/dev/shm/libshrinker-%u-%llx-%llx", (unsigned)geteuid(),
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	if (access(shm, F_OK) != 0) {
		r = tap_skip_required("SHM", "no shared file in /dev/shm here");
		goto fail;
	}
	CHECK(unlink(shm) == 0);
	pid = spawn_peer(dir, 0, &go);
	CHECK(pid > 0);
	errno = 0;
	shrinker__peers_update(dir, 50 * MiB, 0, 0, &p);
	CHECK(errno == 0); /* errno untouched, the failed stat() included */
	CHECK(p.n == 2 && p.total == 150 * MiB);
	r = TAP_PASS;
fail:
	stop_peer(go, pid);
	shrinker__peers_release();
	unlink(shm);
	rmdir(dir);
	return r;
}

/* The floor for a slow give-back: the floor times the reference (1 GiB/s)
 * over the rate, at most the most given; among peers only the process's
 * share of the rise (it gives back its part of a deficit). */
static int test_slow_floor_peers(void)
{
	const uint64_t floor = 9.6 * MiB, most = 96 * MiB;
	int r = TAP_FAIL;

	/* Alone: not timed or as fast as the reference, the floor; 256 MiB/s,
	 * four times it; 64 MiB/s, sixteen times, capped. */
	CHECK(shrinker__slow_floor(floor, most, 0, 0, 0) == floor);
	CHECK(shrinker__slow_floor(floor, most, 1024 * MiB, 0, 0) == floor);
	CHECK_NEAR(shrinker__slow_floor(floor, most, 256 * MiB, 0, 0), 38.4 * MiB, 0.01 * MiB);
	CHECK(shrinker__slow_floor(floor, most, 64 * MiB, 0, 0) == most);
	/* Holding all the peers hold: as alone. */
	CHECK(shrinker__slow_floor(floor, most, 64 * MiB, 32 * MiB, 32 * MiB) == most);
	/* Half: half the rise; a 32nd: a 32nd of it. */
	CHECK_NEAR(shrinker__slow_floor(floor, most, 64 * MiB, 16 * MiB, 32 * MiB),
		   52.8 * MiB, 0.01 * MiB);
	CHECK_NEAR(shrinker__slow_floor(floor, most, 64 * MiB, 1 * MiB, 32 * MiB),
		   12.3 * MiB, 0.01 * MiB);
	/* A figure read wrong (more than all of them hold): as alone. */
	CHECK(shrinker__slow_floor(floor, most, 64 * MiB, 40 * MiB, 32 * MiB) == most);
	r = TAP_PASS;
fail:
	return r;
}

static const struct tap_test tests[] = {
	{ "cgroup discovery and limits on fixture trees", test_discovery },
	{ "no cgroup, nothing readable", test_no_cgroup },
	{ "headroom: the smallest limit wins, page cache does not count", test_headroom },
	{ "self-imposed budget: bytes, percentage, bad values", test_budget },
	{ "garbage files: clear answer, safe fallback", test_garbage },
	{ "watermarks sized by growth and reaction, floor and ceiling, falling slowly; "
	  "memory.max alone: the floor only while the program's growth probes", test_watermarks_adapt },
	{ "the caches' give-back is timed when they fill up to the soft watermark, "
	  "with back-off, and anew while slow", test_calibration },
	{ "watermarks by API: fixed, and back to the default", test_watermark_api },
	{ "the decision", test_decide },
	{ "cgroup v1's thresholds move to the watermarks only where fast growth "
	  "cannot reach the soft watermark while they are being armed", test_rearm_in_time },
	{ "processes sharing a cgroup: each its part, adding up to the target", test_peer_parts },
	{ "processes sharing a cgroup: a busy peer's soft watermark is read, a stale one not",
	  test_peer_watermark },
	{ "processes sharing a cgroup: those growing at once are counted, to share the room",
	  test_peer_growing },
	{ "processes sharing a cgroup: what a peer is freeing is not paid twice",
	  test_peer_paying },
	{ "processes sharing a cgroup: a killed cgroup's table is removed once aged, not before",
	  test_peer_sweep },
	{ "processes sharing a cgroup: a table removed under us is left for the new one",
	  test_peer_reattach },
	{ "processes sharing a cgroup: 150 of them in one table, which grows as they come",
	  test_peer_many },
	{ "processes sharing a cgroup: a slow give-back raises the floor by the process's share",
	  test_slow_floor_peers },
};

int main(void)
{
	const char *top = getenv("TOP_SRCDIR");

	snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures",
		 top && *top ? top : ".");
	if (access(fixtures, R_OK) != 0)
		tap_skip_all_required("BUILD", "fixtures not found (run from the source tree)");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
