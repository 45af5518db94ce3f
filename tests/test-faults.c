/* SPDX-License-Identifier: MIT */
/*
 * Faults and misuse, each with the behaviour docs/RELIABILITY.md states:
 * a callback that blocks, thousands of shrinkers, files that turn into
 * directories or change between reads, the environment in a set-uid
 * program, and a process moved to another cgroup while it runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/1-base/files.h"
#include "../src/4-monitor/monitor.h"
#include "helpers.h"
#include "shrinker.h"
#include "tap.h"

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}

/* A callback that blocks: the others wait for it, then get their turn;
 * unregistering one that is not running does not wait. */
static atomic_int order_next;
static atomic_int a_running; /* inside the slow callback now */
static atomic_int order_a, order_b;

static size_t blocks_a_second(size_t target, bool hard, void *ud)
{
	int zero = 0;

	(void)hard;
	(void)ud;
	atomic_fetch_add(&a_running, 1);
	sleep_ms(1000);
	atomic_fetch_sub(&a_running, 1);
	/* Only the first call's place counts: later rounds may call again. */
	atomic_compare_exchange_strong(&order_a, &zero,
				       atomic_fetch_add(&order_next, 1) + 1);
	return target;
}

static size_t quick(size_t target, bool hard, void *ud)
{
	int zero = 0;

	(void)hard;
	(void)ud;
	atomic_compare_exchange_strong(&order_b, &zero,
				       atomic_fetch_add(&order_next, 1) + 1);
	return target;
}

static size_t never(size_t target, bool hard, void *ud)
{
	(void)target;
	(void)hard;
	(void)ud;
	return 0;
}

static int test_blocking_callback(void)
{
	struct shrinker *a = NULL, *b = NULL, *c = NULL;
	uint64_t t0, t1, waited;
	size_t freed = 0;
	unsigned i;
	int r = TAP_FAIL, during;

	CHECK(shrinker_register(&a, "slow", blocks_a_second, NULL, 0) == 0);
	CHECK(shrinker_register(&b, "quick", quick, NULL, 0) == 0);
	CHECK(shrinker_register(&c, "bystander", never, NULL, 0) == 0);
	shrinker_set_size(a, 10 * MiB);
	shrinker_set_size(b, 10 * MiB);
	shrinker_set_size(c, 10 * MiB);
	t0 = now_ms();
	CHECK(shrinker_request_reclaim(6 * MiB, 0, NULL) == 0);
	/* Until the slow callback runs (the first request may call quick
	 * first, then slow). */
	for (i = 0; i < 5000 && !atomic_load(&a_running); i++)
		sleep_ms(1);
	CHECK(atomic_load(&a_running));
	/* c is not running: unregistering it does not wait for a, which
	 * is still inside its callback when it returns. */
	t1 = now_ms();
	CHECK(shrinker_unregister(c) == 0);
	c = NULL;
	waited = now_ms() - t1;
	during = atomic_load(&a_running);
	CHECK(shrinker_request_reclaim(MiB, SHRINKER_WAIT, &freed) == 0);
	tap_diag("blocked %llu ms in all; unregistering a bystander took %llu ms",
		 (unsigned long long)(now_ms() - t0), (unsigned long long)waited);
	CHECK(during);
	/* Both got their turn: requests start at a different shrinker each
	 * time, so the slow one, which stops a request at its time limit,
	 * does not keep quick from ever being called. */
	CHECK(atomic_load(&order_a) > 0 && atomic_load(&order_b) > 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(a);
	shrinker_unregister(b);
	shrinker_unregister(c);
	return r;
}

/* Thousands of shrinkers: the split is still proportional and complete. */
#define MANY 5000
static _Atomic uint64_t many_asked[MANY];

static size_t many_cb(size_t target, bool hard, void *ud)
{
	(void)hard;
	atomic_fetch_add(&many_asked[(uintptr_t)ud], target);
	return target;
}

static int test_thousands(void)
{
	static struct shrinker *s[MANY];
	uint64_t total = 0, t0;
	size_t freed = 0;
	unsigned i, n = 0;
	int r = TAP_FAIL;

	t0 = now_ms();
	for (i = 0; i < MANY; i++, n++) {
		CHECK(shrinker_register(&s[i], "many", many_cb, (void *)(uintptr_t)i, 0) == 0);
		shrinker_set_size(s[i], (uint64_t)(i + 1) * 4096);
	}
	CHECK(shrinker_request_reclaim(100 * MiB, SHRINKER_WAIT, &freed) == 0);
	for (i = 0; i < MANY; i++)
		total += atomic_load(&many_asked[i]);
	tap_diag("%u shrinkers: registered and served in %llu ms, asked %.1f MiB",
		 MANY, (unsigned long long)(now_ms() - t0), total / (double)MiB);
	CHECK(freed >= 100 * MiB);
	CHECK_NEAR(total, 100 * MiB, 1 * MiB);
	/* The last holds 5000 times what the first holds. */
	CHECK_NEAR(atomic_load(&many_asked[MANY - 1]),
		   100.0 * MiB * MANY / ((double)MANY * (MANY + 1) / 2), 64);
	r = TAP_PASS;
fail:
	for (i = 0; i < n; i++)
		shrinker_unregister(s[i]);
	return r;
}

/* A private copy of a fixture tree that the test may change. */
static char tree[PATH_MAX];

static int test_files_change_and_vanish(void)
{
	const char *cur = "sys/fs/cgroup/a/b/c/memory.current";
	struct shrinker_memory mem;
	char path[PATH_MAX], path2[PATH_MAX];
	int r = TAP_FAIL;

	CHECK(fixture_copy("v2-nested", "faults", tree, sizeof(tree)) == 0);
	shrinker__set_root(tree);
	shrinker__monitor_forget();
	CHECK(shrinker_get_memory(&mem) == 0 && mem.working_set == 220 * MiB);
	/* Changing between two reads: the second read sees the new figure. */
	CHECK(fixture_write(tree, cur, "419430400\n") == 0);
	CHECK(shrinker_get_memory(&mem) == 0 && mem.working_set == 320 * MiB);
	/* Truncated: a figure cut to nothing is garbage; the system's figures
	 * are used instead. */
	CHECK(fixture_write(tree, cur, "") == 0);
	CHECK(shrinker_get_memory(&mem) == 0);
	CHECK(strstr(mem.limit_source, "system"));
	/* Unreadable: a directory where the file was (EISDIR). */
	snprintf(path, sizeof(path), "%s/%s", tree, cur);
	CHECK(unlink(path) == 0 && mkdir(path, 0755) == 0);
	CHECK(shrinker_get_memory(&mem) == 0 && strstr(mem.limit_source, "system"));
	/* Back again: the library looks for its cgroup again within a
	 * second. */
	CHECK(rmdir(path) == 0 && fixture_write(tree, cur, "104857600\n") == 0);
	sleep_ms(1100);
	CHECK(shrinker_get_memory(&mem) == 0 && mem.working_set == 20 * MiB);
	CHECK(strstr(mem.limit_source, "cgroup v2"));
	/* Replaced by another file (a rename over it): the library reads the
	 * one it keeps open, not the path afresh, since opening a file near
	 * the limit charges kernel memory to our own cgroup; it opens the
	 * path again when it looks for its cgroup again. */
	CHECK(fixture_write(tree, "memory.current.new", "419430400\n") == 0);
	snprintf(path, sizeof(path), "%s/memory.current.new", tree);
	snprintf(path2, sizeof(path2), "%s/%s", tree, cur);
	CHECK(rename(path, path2) == 0);
	CHECK(shrinker_get_memory(&mem) == 0 && mem.working_set == 20 * MiB);
	shrinker__files_forget();
	CHECK(shrinker_get_memory(&mem) == 0 && mem.working_set == 320 * MiB);
	/* No cgroup file system (a fresh look: a real cgroup that goes away
	 * makes its open files fail with ENODEV, which a deleted fixture file
	 * does not): the system's figures. */
	snprintf(path, sizeof(path), "rm -rf '%s/sys'", tree);
	CHECK(system(path) == 0);
	shrinker__monitor_forget();
	CHECK(shrinker_get_memory(&mem) == 0 && strstr(mem.limit_source, "system"));
	/* No /proc either: nothing to go on, said so, no crash. */
	snprintf(path, sizeof(path), "rm -rf '%s/proc'", tree);
	CHECK(system(path) == 0);
	shrinker__monitor_forget();
	CHECK(shrinker_get_memory(&mem) == -ENODATA);
	r = TAP_PASS;
fail:
	shrinker__set_root("");
	shrinker__monitor_forget();
	fixture_remove(tree);
	return r;
}

static int test_setuid_environment(void)
{
	char src[PATH_MAX], dir[] = "/tmp/shrinker-suid-XXXXXX", prog[PATH_MAX];
	char cmd[PATH_MAX * 2], out[1024] = "";
	FILE *p;
	int r = TAP_FAIL;

	if (geteuid() != 0)
		return tap_skip_why("needs root to make a set-uid program");
	if (access("/usr/bin/setpriv", X_OK) != 0)
		return tap_skip_why("setpriv not installed");
	snprintf(src, sizeof(src), "%s/tests/prog-secure", build_dir());
	CHECK(mkdtemp(dir) != NULL && chmod(dir, 0755) == 0);
	snprintf(prog, sizeof(prog), "%s/prog-secure", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chown root:root '%s' && chmod 4755 '%s'",
		 src, prog, prog, prog);
	CHECK(system(cmd) == 0);
	/* As nobody, the program runs as root: AT_SECURE is set. */
	snprintf(cmd, sizeof(cmd),
		 "cd / && MEMORY_PRESSURE_WATCH=/dev/shm/fifo SHRINKER_ROOT=/nonexistent "
		 "setpriv --reuid=65534 --regid=65534 --clear-groups '%s' 2>&1", prog);
	p = popen(cmd, "r");
	CHECK(p);
	CHECK(fread(out, 1, sizeof(out) - 1, p) > 0);
	pclose(p);
	tap_diag("%s", out);
	if (strstr(out, "nosuid") || !strstr(out, "systemd=")) {
		r = tap_skip_why("could not run a set-uid program here");
		goto fail;
	}
	/* Both ignored: systemd's variables, and the root path (it measured
	 * the real system, not /nonexistent). */
	CHECK(strstr(out, "systemd=MEMORY_PRESSURE_WATCH not set (or ignored: set-uid)"));
	CHECK(strstr(out, "measured=1"));
	r = TAP_PASS;
fail:
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return r;
}

/* Moved to another cgroup while running: the library follows.  cgroup v1
 * leaves what a task holds charged to the old cgroup and charges new
 * allocations to the new one, so a cache moved from 96 MiB to 256 MiB can
 * grow well past 96 MiB, if the library measures the new cgroup; one that
 * kept looking at the old one would stay under its band. */
static char move_out[256 * 1024];

static int test_moved(void)
{
	char why[200], path[600], pid[32], *argv[6], *line, *save = NULL;
	uint64_t before = 0, after = 0, oom_from, oom_to;
	struct cg1 from, to;
	int fd, out, st;
	pid_t child;

	if (getenv("SANITIZE") && *getenv("SANITIZE"))
		return tap_skip_why("memory figures are meaningless under a sanitizer");
	if (geteuid() != 0)
		return tap_skip_required("CGROUP", "needs root to make child memory cgroups");
	if (cg1_make(&from, "from", 96 * MiB, why, sizeof(why)) < 0)
		return tap_skip_required("CGROUP", "%s", why);
	if (cg1_make(&to, "to", 256 * MiB, why, sizeof(why)) < 0) {
		cg1_remove(&from);
		return tap_skip_required("CGROUP", "%s", why);
	}
	snprintf(path, sizeof(path), "%s/tests/prog-grower", build_dir());
	argv[0] = path;
	argv[1] = "--total";
	argv[2] = "0";
	argv[3] = "--duration";
	argv[4] = "4000";
	argv[5] = NULL;
	child = cg1_spawn(&from, argv, &out);
	if (child <= 0)
		goto fail;
	sleep_ms(1200);
	snprintf(pid, sizeof(pid), "%d", (int)child);
	snprintf(path, sizeof(path), "%s/cgroup.procs", to.path);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
		tap_diag("could not move the process: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	/* And the cgroup it came from goes away while it runs, a second
	 * later: the library must have followed by then on its own (a
	 * library that kept measuring the old cgroup would find the new
	 * one only once the old one's files went away).  Its OOM kill
	 * counter is read first (nothing of ours runs there any more). */
	sleep_ms(1000);
	oom_from = cg1_read(&from, "memory.oom_control", "oom_kill");
	if (rmdir(from.path) < 0)
		tap_diag("could not remove the old cgroup: %s", strerror(errno));
	read_all_fd(out, move_out, sizeof(move_out));
	st = wait_exit(child);
	oom_to = cg1_read(&to, "memory.oom_control", "oom_kill");
	for (line = strtok_r(move_out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long t, c;

		if (sscanf(line, "t=%llu cache=%llu", &t, &c) != 2)
			continue;
		if (t >= 800 && t <= 1150 && c > before)
			before = c;
		/* After the move, before the old cgroup is removed. */
		if (t >= 1500 && t <= 2150 && c > after)
			after = c;
	}
	tap_diag("cache %.1f MiB in the 96 MiB cgroup, %.1f MiB after the move to "
		 "256 MiB; exit %d, oom_kill %llu/%llu", before / (double)MiB,
		 after / (double)MiB, st, (unsigned long long)oom_from,
		 (unsigned long long)oom_to);
	if (st != 0 || oom_to != 0 || !before || before >= 96 * MiB || after < 120 * MiB)
		fprintf(stderr, "test_moved: before %.1f MiB, after %.1f MiB, exit %d, "
			"oom_kill %llu\n", before / (double)MiB, after / (double)MiB,
			st, (unsigned long long)oom_to);
	CHECK(st == 0 && oom_from == 0 && oom_to == 0);
	/* Before: under the old limit.  After: far past it, which only a
	 * library that measures the new cgroup allows. */
	CHECK(before > 0 && before < 96 * MiB);
	CHECK(after >= 120 * MiB);
	cg1_remove(&from);
	cg1_remove(&to);
	return TAP_PASS;
fail:
	cg1_remove(&from);
	cg1_remove(&to);
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "a blocking callback delays the others, who still get their turn", test_blocking_callback },
	{ "5000 shrinkers: a complete, proportional split", test_thousands },
	{ "files that change, get cut, turn into directories, vanish", test_files_change_and_vanish },
	{ "set-uid: systemd's variables and SHRINKER_ROOT are ignored", test_setuid_environment },
	{ "moved to another cgroup, the old one removed: the library follows", test_moved },
};

TAP_MAIN(tests)
