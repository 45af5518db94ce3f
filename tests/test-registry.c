/* SPDX-License-Identifier: MIT */
/*
 * The registry's contract: argument checks, errno untouched, unregister waits
 * for a running call, unregister and register from inside a callback,
 * register/unregister storms while reclaim runs, the reclaimer thread's name
 * and signal mask, trimming and RSS accounting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "helpers.h"

/* test_exit_is_clean forks: the library's fork handler starts the child's
 * reclaimer thread (as documented), which TSan refuses by default. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}

#include "shrinker.h"
#include "tap.h"

static size_t frees_all(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	return target;
}

static int test_arguments(void)
{
	struct shrinker *s = (struct shrinker *)&s;
	char name[SHRINKER_NAME_MAX + 2];
	struct shrinker_stats st;
	int r = TAP_FAIL;

	errno = 4321;
	CHECK(shrinker_register(NULL, "x", frees_all, NULL, 0) == -EINVAL);
	CHECK(shrinker_register(&s, NULL, frees_all, NULL, 0) == -EINVAL);
	CHECK(shrinker_register(&s, "x", NULL, NULL, 0) == -EINVAL);
	CHECK(shrinker_register(&s, "x", frees_all, NULL, 1u << 9) == -EINVAL);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK(shrinker_register(&s, name, frees_all, NULL, 0) == -ENAMETOOLONG);
	CHECK(s == (struct shrinker *)&s); /* untouched on failure */
	CHECK(shrinker_unregister(NULL) == 0);
	CHECK(shrinker_activate(NULL) == -EINVAL);
	CHECK(shrinker_deactivate(NULL) == -EINVAL);
	CHECK(shrinker_set_size(NULL, 1) == -EINVAL);
	CHECK(shrinker_get_stats(NULL, &st) == -EINVAL);
	CHECK(shrinker_get_global_stats(NULL) == -EINVAL);
	CHECK(shrinker_name(NULL) == NULL);

	name[SHRINKER_NAME_MAX] = '\0'; /* exactly the longest name */
	CHECK(shrinker_register(&s, name, frees_all, NULL, SHRINKER_INACTIVE) == 0);
	CHECK(strcmp(shrinker_name(s), name) == 0);
	CHECK(shrinker_get_stats(s, &st) == 0);
	CHECK(!st.active && !st.deferred && !st.size_known && st.calls == 0);
	CHECK(shrinker_get_stats(s, NULL) == -EINVAL);
	CHECK(shrinker_unregister(s) == 0);
	CHECK(errno == 4321);
	CHECK(shrinker_version() == SHRINKER_VERSION_HEX);
	r = TAP_PASS;
fail:
	return r;
}

struct slow {
	struct shrinker *s;
	atomic_bool started, finished;
	unsigned ms;
};

static size_t slow_shrink(size_t target, bool hard, void *ud)
{
	struct slow *sl = ud;

	(void)hard;
	atomic_store(&sl->started, true);
	sleep_ms(sl->ms);
	atomic_store(&sl->finished, true);
	return target;
}

static bool started(void *p)
{
	return atomic_load(&((struct slow *)p)->started);
}

static int test_unregister_waits(void)
{
	struct slow sl = { .ms = 300 };
	uint64_t t0;
	int r = TAP_FAIL;

	CHECK(shrinker_register(&sl.s, "slow", slow_shrink, &sl, 0) == 0);
	CHECK(shrinker_request_reclaim(MiB, 0, NULL) == 0);
	CHECK(wait_until(started, &sl, 5000));
	t0 = now_ms();
	CHECK(shrinker_unregister(sl.s) == 0);
	sl.s = NULL;
	/* It returned only after the callback had ended. */
	CHECK(atomic_load(&sl.finished));
	CHECK(now_ms() - t0 >= 100);
	r = TAP_PASS;
fail:
	shrinker_unregister(sl.s);
	return r;
}

struct selfish {
	struct shrinker *s;
	int unreg_result;
	struct shrinker *born;
	int reg_result, wait_result, nowait_result;
	unsigned calls;
};

static size_t unregisters_itself(size_t target, bool hard, void *ud)
{
	struct selfish *x = ud;

	(void)hard;
	x->calls++;
	x->unreg_result = shrinker_unregister(x->s);
	x->reg_result = shrinker_register(&x->born, "born", frees_all, NULL, 0);
	x->wait_result = shrinker_request_reclaim(MiB, SHRINKER_WAIT, NULL);
	x->nowait_result = shrinker_request_reclaim(MiB, 0, NULL);
	return target / 2;
}

static int test_calls_from_inside(void)
{
	struct selfish x = { .unreg_result = 1 };
	struct shrinker_global_stats g0, g1;
	struct shrinker_stats st;
	int r = TAP_FAIL;

	CHECK(shrinker_get_global_stats(&g0) == 0);
	CHECK(shrinker_register(&x.s, "selfish", unregisters_itself, &x, 0) == 0);
	CHECK(shrinker_request_reclaim(2 * MiB, SHRINKER_WAIT, NULL) == 0);
	CHECK(x.calls == 1);
	CHECK(x.unreg_result == 0);
	CHECK(x.reg_result == 0 && x.born);
	CHECK(x.wait_result == -EDEADLK);
	CHECK(x.nowait_result == 0);
	/* The request made inside is served (by the newborn) later. */
	CHECK(shrinker_request_reclaim(MiB, SHRINKER_WAIT, NULL) == 0);
	CHECK(shrinker_get_stats(x.born, &st) == 0);
	CHECK(st.calls >= 1);
	CHECK(shrinker_get_global_stats(&g1) == 0);
	CHECK(g1.shrinkers == g0.shrinkers + 1); /* selfish gone, born here */
	CHECK(x.calls == 1);
	r = TAP_PASS;
fail:
	shrinker_unregister(x.born);
	return r;
}

#define STORM_THREADS 8
#define STORM_LOOPS 300

static atomic_bool storm_over;

static void *storm_thread(void *arg)
{
	unsigned i;

	(void)arg;
	for (i = 0; i < STORM_LOOPS; i++) {
		struct shrinker *s[4] = { 0 };
		unsigned j;

		for (j = 0; j < 4; j++)
			if (shrinker_register(&s[j], "storm", frees_all, NULL,
					      j == 3 ? SHRINKER_DEFERRED : 0) == 0)
				shrinker_set_size(s[j], (j + 1) * MiB);
		if (i % 7 == 0)
			shrinker_deactivate(s[1]);
		for (j = 0; j < 4; j++)
			shrinker_unregister(s[j]);
		if (i % 16 == 0)
			shrinker_dispatch();
	}
	return NULL;
}

static void *storm_requests(void *arg)
{
	(void)arg;
	while (!atomic_load(&storm_over)) {
		shrinker_request_reclaim(MiB, 0, NULL);
		shrinker_request_reclaim(MiB, SHRINKER_HARD | SHRINKER_WAIT, NULL);
	}
	return NULL;
}

static int test_storm(void)
{
	pthread_t t[STORM_THREADS], req;
	struct shrinker_global_stats g0, g1;
	int r = TAP_FAIL, i;

	CHECK(shrinker_get_global_stats(&g0) == 0);
	CHECK(pthread_create(&req, NULL, storm_requests, NULL) == 0);
	for (i = 0; i < STORM_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, storm_thread, NULL) == 0);
	for (i = 0; i < STORM_THREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&storm_over, true);
	pthread_join(req, NULL);
	shrinker_dispatch();
	CHECK(shrinker_get_global_stats(&g1) == 0);
	CHECK(g1.shrinkers == g0.shrinkers);
	CHECK(g1.requests > g0.requests);
	tap_diag("storm: %llu requests, %llu calls",
		 (unsigned long long)(g1.requests - g0.requests),
		 (unsigned long long)(g1.calls - g0.calls));
	r = TAP_PASS;
fail:
	return r;
}

static int test_thread_identity(void)
{
	struct shrinker *s = NULL;
	char path[64], buf[4096], *blk;
	pid_t tid = 0;
	size_t n;
	FILE *f;
	int r = TAP_FAIL;

	if (getenv("VALGRIND"))
		return tap_skip_why("valgrind manages the threads' signal masks itself");
	CHECK(shrinker_register(&s, "id", frees_all, NULL, 0) == 0);
	CHECK(threads_named("shrinker", &tid) == 1);
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "r");
	CHECK(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	blk = strstr(buf, "SigBlk:");
	CHECK(blk);
	/* Every signal the kernel lets a thread block is blocked. */
	CHECK(strncmp(blk, "SigBlk:\tfffffffffffffeff", 24) == 0 ||
	      strncmp(blk, "SigBlk:\tfffffffe7ffbfeff", 24) == 0 ||
	      strncmp(blk, "SigBlk:\tffffffffffffffff", 24) == 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	return r;
}

/* A cache of small heap blocks: freeing them leaves the memory in malloc's
 * free lists until malloc_trim() hands it back. */
#define SMALL_BLOCKS 16384
#define SMALL_SIZE 4000
static char *blocks[SMALL_BLOCKS];

static size_t free_blocks(size_t target, bool hard, void *ud)
{
	size_t freed = 0;
	unsigned i;

	(void)hard;
	(void)ud;
	/* Every sixteenth block stays: the freed runs between them are not
	 * the heap's top, so only malloc_trim() gives their pages back. */
	for (i = 0; i < SMALL_BLOCKS && freed < target; i++)
		if (blocks[i] && i % 16 != 15) {
			free(blocks[i]);
			blocks[i] = NULL;
			freed += SMALL_SIZE;
		}
	return freed;
}

static int test_trim_returns_memory(void)
{
	struct shrinker_global_stats g0, g1;
	struct shrinker *s = NULL;
	const char *san = getenv("SANITIZE");
	uint64_t total = (uint64_t)SMALL_BLOCKS / 16 * 15 * SMALL_SIZE;
	uint64_t rss_before, rss_after;
	unsigned i;
	int r = TAP_FAIL;

	for (i = 0; i < SMALL_BLOCKS; i++) {
		blocks[i] = malloc(SMALL_SIZE);
		CHECK(blocks[i]);
		memset(blocks[i], 0x5a, SMALL_SIZE);
	}
	CHECK(shrinker_get_global_stats(&g0) == 0);
	CHECK(shrinker_register(&s, "blocks", free_blocks, NULL, 0) == 0);
	rss_before = rss_bytes();
	CHECK(shrinker_request_reclaim(total, SHRINKER_WAIT, NULL) == 0);
	rss_after = rss_bytes();
	CHECK(shrinker_get_global_stats(&g1) == 0);
	CHECK(g1.trims == g0.trims + 1);
	CHECK(g1.last_rss_before > 0 && g1.last_rss_after > 0);
	tap_diag("RSS %llu -> %llu KiB after freeing %llu KiB",
		 (unsigned long long)g1.last_rss_before / 1024,
		 (unsigned long long)g1.last_rss_after / 1024,
		 (unsigned long long)total / 1024);
	if (san && *san) {
		/* Sanitizer allocators keep freed memory in quarantine. */
		r = tap_skip_why("RSS figures under SANITIZE=%s", san);
		goto fail;
	}
	if (getenv("VALGRIND")) {
		r = tap_skip_why("valgrind replaces malloc, so malloc_trim() has nothing to trim");
		goto fail;
	}
	/* 13 of each run's 15 blocks' pages are whole pages: 86 %.  The
	 * kernel's figure first (statm, read here), then the library's
	 * record of the same. */
	tap_diag("the kernel's RSS: %llu -> %llu KiB",
		 (unsigned long long)rss_before / 1024, (unsigned long long)rss_after / 1024);
	CHECK(rss_before > rss_after && rss_before - rss_after >= total * 7 / 10);
	CHECK(g1.last_rss_before > g1.last_rss_after &&
	      g1.last_rss_before - g1.last_rss_after >= total * 7 / 10);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	for (i = 0; i < SMALL_BLOCKS; i++)
		free(blocks[i]), blocks[i] = NULL;
	return r;
}

/* exit(): the running callback finishes, then no callback starts, then the
 * program's own exit handlers (registered before the first shrinker) run.
 * A fresh process (tests/prog-exit.c), since this one has used the library. */
static int test_exit_is_clean(void)
{
	char path[512], buf[64] = "", *argv[2];
	int p[2], st;
	size_t n;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/tests/prog-exit", build_dir());
	CHECK(pipe(p) == 0);
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		argv[0] = path;
		argv[1] = NULL;
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	n = read_all_fd(p[0], buf, sizeof(buf));
	st = wait_exit(pid);
	tap_diag("prog-exit wrote \"%s\", exit status %d", buf, st);
	CHECK(st == 0);
	CHECK(n == 2 && strcmp(buf, "cx") == 0);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

/* Run prog-exit MODE with a 5 s limit: its exit status (-1 if it had to be
 * killed) and its output in out, the time it took in *ms. */
static int run_exit_mode(const char *mode, char *out, size_t size, uint64_t *ms)
{
	char path[512], *argv[3];
	uint64_t t0 = now_ms();
	int p[2], st = -1, i;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/tests/prog-exit", build_dir());
	if (pipe(p) != 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		argv[0] = path;
		argv[1] = (char *)mode;
		argv[2] = NULL;
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	for (i = 0; i < 500; i++) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			st = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
		sleep_ms(10);
	}
	if (i == 500) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	*ms = now_ms() - t0;
	read_all_fd(p[0], out, size);
	return st;
}

static int test_exit_bounded(void)
{
	static const char *const modes[] = { "lock", "memory", "stats" };
	char out[256];
	uint64_t ms;
	unsigned i, run;
	int st;

	/* A callback that never returns, and exit() from a signal handler
	 * that interrupted the library: exit() ends within its bound.  Under
	 * a sanitizer, exit() from a signal handler is reported as what it is
	 * (not async-signal-safe) before the library is reached. */
	if (getenv("SANITIZE") && *getenv("SANITIZE"))
		return tap_skip_why("exit() from a signal handler is the misuse tried; "
				    "sanitizers report it");
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		for (run = 0; run < (i ? 4u : 1u); run++) {
			st = run_exit_mode(modes[i], out, sizeof(out), &ms);
			/* A hang is what this guards: run_exit_mode() kills
			 * the program after 5 s and the status says so; how
			 * long a clean exit takes is the machine's. */
			if (st != 0) {
				tap_diag("%s, run %u: status %d after %llu ms", modes[i],
					 run, st, (unsigned long long)ms);
				goto fail;
			}
		}
		tap_diag("%s: exit in %llu ms", modes[i], (unsigned long long)ms);
	}
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_closed_fds(void)
{
	char out[256] = "";
	long long cpu = -1;
	uint64_t ms;
	int st;

	/* Descriptors closed under the library: no spinning, exit ends.  The
	 * program closing the library's descriptors races with it by design,
	 * which ThreadSanitizer reports. */
	if (getenv("SANITIZE") && *getenv("SANITIZE"))
		return tap_skip_why("closing another thread's descriptors is the misuse "
				    "tried; sanitizers report it");
	st = run_exit_mode("closefds", out, sizeof(out), &ms);
	sscanf(out, "cpu=%lld", &cpu);
	tap_diag("status %d after %llu ms; the library's thread used %lld us in "
		 "the second after the close", st, (unsigned long long)ms, cpu);
	/* It exited (a hang is killed at 5 s: status 137), and its thread
	 * did not spin: under 5 % of one CPU in the second after the close
	 * (spinning takes all of it, whatever the machine; it took 5.99 s
	 * of CPU in 6 s). */
	CHECK(st == 0);
	CHECK(cpu >= 0 && cpu < 50000);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "argument checks, errno untouched", test_arguments },
	{ "unregister waits for a running call", test_unregister_waits },
	{ "unregister, register and request from inside a callback", test_calls_from_inside },
	{ "register/unregister storm from 8 threads while reclaim runs", test_storm },
	{ "reclaimer thread is named and blocks signals", test_thread_identity },
	{ "malloc_trim hands freed memory back, RSS recorded", test_trim_returns_memory },
	{ "exit: the running call ends, no call starts after", test_exit_is_clean },
	{ "exit: bounded with a stuck callback or from a signal handler", test_exit_bounded },
	{ "descriptors closed under the library: no spin, exit ends", test_closed_fds },
};

TAP_MAIN(tests)
