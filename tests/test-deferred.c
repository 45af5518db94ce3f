/* SPDX-License-Identifier: MIT */
/*
 * Deferred mode: the fd becomes readable on pressure, shrinker_dispatch()
 * delivers the accumulated target on the calling thread, and nothing runs on
 * the reclaimer thread for a deferred shrinker.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>

#include "helpers.h"
#include "shrinker.h"
#include "tap.h"

struct lazy {
	struct shrinker *s;
	unsigned calls, hard_calls;
	uint64_t asked;
	pthread_t thread;
};

static size_t lazy_shrink(size_t target, bool hard, void *ud)
{
	struct lazy *l = ud;

	l->calls++;
	l->hard_calls += hard;
	l->asked += target;
	l->thread = pthread_self();
	return target;
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int test_deferred_delivery(void)
{
	struct lazy l = { 0 };
	struct shrinker_stats st;
	size_t freed = 99;
	int fd, r = TAP_FAIL;

	fd = shrinker_get_fd();
	CHECK(fd >= 0);
	CHECK(shrinker_get_fd() == fd);
	CHECK(shrinker_register(&l.s, "lazy", lazy_shrink, &l, SHRINKER_DEFERRED) == 0);
	CHECK(!readable(fd));
	CHECK(shrinker_dispatch() == 0);

	CHECK(shrinker_request_reclaim(3 * MiB, SHRINKER_WAIT, &freed) == 0);
	/* Deferred work is not counted as freed by the request. */
	CHECK(freed == 0);
	CHECK(l.calls == 0);
	CHECK(readable(fd));
	CHECK(shrinker_request_reclaim(5 * MiB, SHRINKER_HARD | SHRINKER_WAIT, NULL) == 0);
	CHECK(shrinker_get_stats(l.s, &st) == 0);
	CHECK(st.deferred && st.pending == 8 * MiB);

	CHECK(shrinker_dispatch() == 1);
	CHECK(l.calls == 1 && l.hard_calls == 1 && l.asked == 8 * MiB);
	CHECK(pthread_equal(l.thread, pthread_self()));
	CHECK(!readable(fd));
	CHECK(shrinker_dispatch() == 0);
	CHECK(shrinker_get_stats(l.s, &st) == 0);
	CHECK(st.pending == 0 && st.calls == 1 && st.bytes_freed == 8 * MiB);
	r = TAP_PASS;
fail:
	shrinker_unregister(l.s);
	return r;
}

static int test_deferred_in_split(void)
{
	struct lazy l = { 0 }, n = { 0 };
	struct shrinker_stats st;
	int r = TAP_FAIL;

	CHECK(shrinker_register(&l.s, "lazy", lazy_shrink, &l, SHRINKER_DEFERRED) == 0);
	CHECK(shrinker_register(&n.s, "now", lazy_shrink, &n, 0) == 0);
	shrinker_set_size(l.s, 300 * MiB);
	shrinker_set_size(n.s, 100 * MiB);
	CHECK(shrinker_request_reclaim(40 * MiB, SHRINKER_WAIT, NULL) == 0);
	/* The immediate one ran on the reclaimer thread with its part. */
	CHECK(n.calls == 1 && n.asked == 10 * MiB);
	CHECK(!pthread_equal(n.thread, pthread_self()));
	CHECK(l.calls == 0);
	CHECK(shrinker_get_stats(l.s, &st) == 0);
	CHECK(st.pending == 30 * MiB);
	CHECK(shrinker_dispatch() == 1);
	CHECK(l.asked == 30 * MiB && l.hard_calls == 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(l.s);
	shrinker_unregister(n.s);
	return r;
}

static int test_unregister_drops_pending(void)
{
	struct lazy l = { 0 };
	int r = TAP_FAIL;

	CHECK(shrinker_register(&l.s, "lazy", lazy_shrink, &l, SHRINKER_DEFERRED) == 0);
	CHECK(shrinker_request_reclaim(MiB, SHRINKER_WAIT, NULL) == 0);
	CHECK(shrinker_unregister(l.s) == 0);
	l.s = NULL;
	CHECK(shrinker_dispatch() == 0);
	CHECK(l.calls == 0);
	r = TAP_PASS;
fail:
	shrinker_unregister(l.s);
	return r;
}

static const struct tap_test tests[] = {
	{ "fd readable, accumulated target delivered on the caller's thread", test_deferred_delivery },
	{ "deferred shrinkers take their part of the split", test_deferred_in_split },
	{ "unregister drops pending work", test_unregister_drops_pending },
};

TAP_MAIN(tests)
