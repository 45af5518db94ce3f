/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child keeps its shrinkers and gets a reclaimer thread of its
 * own (the header's promise), also when the fork happens while a callback is
 * running in the parent; exec after fork leaves nothing behind.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "shrinker.h"
#include "tap.h"

/* A child creating threads is exactly what we test; let TSan allow it. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}

static atomic_uint calls;
static atomic_bool in_call;
static unsigned sleep_in_call;

static size_t counting(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	atomic_store(&in_call, true);
	if (sleep_in_call)
		sleep_ms(sleep_in_call);
	atomic_fetch_add(&calls, 1);
	atomic_store(&in_call, false);
	return target;
}

static int count_reclaimer_threads(void)
{
	return threads_named("shrinker", NULL);
}

/* In the child: exit 0 if the shrinker is still there and is called. */
static int child_checks(void)
{
	unsigned before = atomic_load(&calls);
	size_t freed = 0;

	if (count_reclaimer_threads() != 1)
		return 10;
	if (shrinker_request_reclaim(MiB, SHRINKER_WAIT, &freed) < 0)
		return 11;
	if (atomic_load(&calls) != before + 1 || freed != MiB)
		return 12;
	return 0;
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static int test_child_has_thread(void)
{
	struct shrinker *s = NULL;
	pid_t pid;
	int r = TAP_FAIL, st;

	CHECK(shrinker_register(&s, "forked", counting, NULL, 0) == 0);
	CHECK(count_reclaimer_threads() == 1);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(child_checks());
	st = wait_child(pid);
	if (st != 0)
		tap_diag("child exit status %d", st);
	CHECK(st == 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	return r;
}

static bool calling(void *p)
{
	(void)p;
	return atomic_load(&in_call);
}

static int test_fork_during_call(void)
{
	struct shrinker *s = NULL;
	pid_t pid;
	int r = TAP_FAIL, st;

	/* Longer than fork() waits for a running call (1 s): the fork
	 * happens while the call still runs in the parent. */
	sleep_in_call = 1500;
	CHECK(shrinker_register(&s, "slow", counting, NULL, 0) == 0);
	CHECK(shrinker_request_reclaim(MiB, 0, NULL) == 0);
	CHECK(wait_until(calling, NULL, 5000));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The parent's call is not running here: the child can call the
		 * shrinker itself, and unregister does not wait forever (a
		 * hang ends at the alarm, as a failure). */
		alarm(10);
		sleep_in_call = 0;
		st = child_checks();
		if (st == 0 && shrinker_unregister(s) != 0)
			st = 13;
		_exit(st);
	}
	st = wait_child(pid);
	if (st != 0)
		tap_diag("child exit status %d", st);
	CHECK(st == 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	sleep_in_call = 0;
	return r;
}

static int test_exec_after_fork(void)
{
	struct shrinker *s = NULL;
	int fd, r = TAP_FAIL, st;
	pid_t pid;

	CHECK(shrinker_register(&s, "exec", counting, NULL, 0) == 0);
	fd = shrinker_get_fd();
	CHECK(fd >= 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char arg[48];

		/* The library's descriptors are close-on-exec: the new program
		 * must not see the dispatch fd. */
		snprintf(arg, sizeof(arg), "test ! -e /proc/self/fd/%d", fd);
		execl("/bin/sh", "sh", "-c", arg, (char *)NULL);
		_exit(127);
	}
	st = wait_child(pid);
	CHECK(st == 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	return r;
}

static int test_child_dispatch_fd_is_its_own(void)
{
	struct shrinker *s = NULL;
	int fd, r = TAP_FAIL, st;
	pid_t pid;

	CHECK(shrinker_register(&s, "lazy", counting, NULL, SHRINKER_DEFERRED) == 0);
	fd = shrinker_get_fd();
	CHECK(fd >= 0);
	/* Work of the parent's own, signalled on its fd before the fork. */
	CHECK(shrinker_request_reclaim(MiB, SHRINKER_WAIT, NULL) == 0);
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		CHECK(poll(&p, 1, 1000) == 1);
	}
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* Same number in the child, but a counter of its own. */
		if (shrinker_get_fd() != fd)
			_exit(20);
		if (shrinker_request_reclaim(MiB, SHRINKER_WAIT, NULL) < 0)
			_exit(21);
		if (poll(&p, 1, 1000) != 1)
			_exit(22);
		if (shrinker_dispatch() != 1)
			_exit(23);
		_exit(0);
	}
	st = wait_child(pid);
	if (st != 0)
		tap_diag("child exit status %d", st);
	CHECK(st == 0);
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* The child drained its own counter, not the parent's: the
		 * parent's signal is still there, and its work with it. */
		CHECK(poll(&p, 1, 0) == 1);
		CHECK(shrinker_dispatch() == 1);
		/* And nothing of the child's showed up here. */
		CHECK(poll(&p, 1, 0) == 0);
	}
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	return r;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint locked_calls;
static atomic_bool in_call; /* the callback below is running */

/* Holds the program's cache lock for a moment, as a real shrinker does. */
static size_t locking(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	atomic_store(&in_call, true);
	pthread_mutex_lock(&cache_lock);
	usleep(500);
	atomic_fetch_add(&locked_calls, 1);
	pthread_mutex_unlock(&cache_lock);
	atomic_store(&in_call, false);
	return target / 8; /* short: rounds follow, calls keep coming */
}

static int test_fork_keeps_program_locks_free(void)
{
	struct shrinker *s = NULL;
	unsigned i, held = 0, bad = 0, overlapped = 0;
	int r = TAP_FAIL;

	/* A single-threaded program forks while the library's thread runs
	 * its shrinker, which holds the program's lock: fork() waits for the
	 * call to return, so the child never inherits the lock held. */
	CHECK(shrinker_register(&s, "locking", locking, NULL, 0) == 0);
	for (i = 0; i < 200; i++) {
		pid_t pid;
		int st;

		shrinker_request_reclaim(64 * MiB, 0, NULL);
		usleep(200 + (i % 7) * 100);
		fflush(stdout);
		overlapped += atomic_load(&in_call);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(pthread_mutex_trylock(&cache_lock) == 0 ? 0 : 1);
		st = wait_child(pid);
		held += st == 1;
		bad += st != 0 && st != 1;
	}
	tap_diag("200 forks while the shrinker ran %u times, %u of them called "
		 "while it was inside: child found the lock held %u times",
		 atomic_load(&locked_calls), overlapped, held);
	CHECK(atomic_load(&locked_calls) > 0);
	/* What is tested happened: fork() was called while the callback
	 * held the program's lock. */
	CHECK(overlapped > 0);
	CHECK(held == 0 && bad == 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	return r;
}

static const struct tap_test tests[] = {
	{ "the child keeps its shrinkers and has its own reclaimer thread", test_child_has_thread },
	{ "fork while a callback runs in the parent", test_fork_during_call },
	{ "exec after fork: no descriptor leaks into the new program", test_exec_after_fork },
	{ "the child's dispatch fd is its own", test_child_dispatch_fd_is_its_own },
	{ "fork never hands the child a lock a callback holds", test_fork_keeps_program_locks_free },
};

TAP_MAIN(tests)
