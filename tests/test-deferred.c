/* SPDX-License-Identifier: MIT */
/*
 * Deferred mode: the fd becomes readable on pressure, shrinker_dispatch()
 * delivers the accumulated target on the calling thread, and nothing runs on
 * the reclaimer thread for a deferred shrinker.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../src/internal.h"
#include "../src/4-monitor/monitor.h"
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

/* A deferred cache of small heap blocks: freeing them leaves the memory in
 * malloc's free lists (a block allocated after them pins the heap's top,
 * so free() alone does not give it back) until somebody trims. */
#define HEAP_BLOCK 4096
#define HEAP_BLOCKS 16384 /* 64 MiB */

struct heap_cache {
	struct shrinker *s;
	void *block[HEAP_BLOCKS];
	unsigned n;
};

static size_t heap_shrink(size_t target, bool hard, void *ud)
{
	struct heap_cache *c = ud;
	size_t freed = 0;

	(void)hard;
	while (c->n && freed < target) {
		free(c->block[--c->n]);
		freed += HEAP_BLOCK;
	}
	shrinker_set_size(c->s, (size_t)c->n * HEAP_BLOCK);
	return freed;
}


/* Fill c with n blocks, touched, and a block after them (*pin) that keeps
 * free() alone from giving them back; its size reported.  0, or -1. */
static int heap_fill(struct heap_cache *c, unsigned n, void **pin)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		c->block[i] = malloc(HEAP_BLOCK);
		if (!c->block[i])
			return -1;
		memset(c->block[i], 1, HEAP_BLOCK);
		c->n++;
	}
	*pin = malloc(HEAP_BLOCK);
	if (!*pin)
		return -1;
	memset(*pin, 1, HEAP_BLOCK);
	shrinker_set_size(c->s, (size_t)c->n * HEAP_BLOCK);
	return 0;
}

/* Unregister c and free its blocks and pin. */
static void heap_release(struct heap_cache *c, void *pin)
{
	shrinker_unregister(c->s);
	while (c->n)
		free(c->block[--c->n]);
	free(pin);
}

static int test_dispatch_gives_back(void)
{
	static struct heap_cache c;
	struct shrinker_global_stats g0, g1;
	uint64_t rss_before, rss_after;
	void *pin = NULL;
	int r = TAP_FAIL;

	if ((getenv("SANITIZE") && *getenv("SANITIZE")) || getenv("VALGRIND"))
		return tap_skip_why("memory figures are meaningless under a sanitizer or valgrind");
	CHECK(shrinker_register(&c.s, "heap", heap_shrink, &c, SHRINKER_DEFERRED) == 0);
	CHECK(heap_fill(&c, HEAP_BLOCKS, &pin) == 0);
	CHECK(shrinker_request_reclaim(48 * MiB, SHRINKER_WAIT, NULL) == 0);
	CHECK(shrinker_get_global_stats(&g0) == 0);
	rss_before = rss_bytes();
	CHECK(shrinker_dispatch() == 1);
	rss_after = rss_bytes();
	CHECK(shrinker_get_global_stats(&g1) == 0);
	tap_diag("dispatch freed 48 MiB: RSS %llu -> %llu KiB, rss_released +%llu KiB",
		 (unsigned long long)rss_before >> 10, (unsigned long long)rss_after >> 10,
		 (unsigned long long)(g1.rss_released - g0.rss_released) >> 10);
	/* The kernel's figure: the freed heap went back to the system. */
	CHECK(rss_after + 32 * MiB < rss_before);
	/* And the statistics say so, as for the reclaimer's own requests. */
	CHECK(g1.trims == g0.trims + 1);
	CHECK(g1.rss_released - g0.rss_released >= 32 * MiB);
	CHECK(g1.last_rss_after + 32 * MiB < g1.last_rss_before);
	CHECK(g1.bytes_freed - g0.bytes_freed == 48 * MiB);
	r = TAP_PASS;
fail:
	heap_release(&c, pin);
	return r;
}

/* A cache that says it freed a quarter of what it did: the rest of what
 * the trim gave back is, to the library, free pages between live entries. */
static size_t heap_shrink_quarter(size_t target, bool hard, void *ud)
{
	return heap_shrink(target, hard, ud) / 4;
}

/* The holes the library has noted (measure.h), under the monitor's lock
 * held as its wrappers hold it. */
static uint64_t holes_now(void)
{
	uint64_t h;

	shrinker__mon_lock();
	h = shrinker__holes_locked(shrinker__now_ns());
	shrinker__mon_unlock();
	return h;
}

static int test_dispatch_holes(void)
{
	static struct heap_cache c;
	uint64_t h0, h1, rss_before, rss_after;
	void *pin = NULL;
	int r = TAP_FAIL;

	if ((getenv("SANITIZE") && *getenv("SANITIZE")) || getenv("VALGRIND"))
		return tap_skip_why("memory figures are meaningless under a sanitizer or valgrind");
	CHECK(shrinker_register(&c.s, "heap", heap_shrink_quarter, &c,
				SHRINKER_DEFERRED) == 0);
	CHECK(heap_fill(&c, HEAP_BLOCKS / 2, &pin) == 0);
	CHECK(shrinker_request_reclaim(32 * MiB, SHRINKER_WAIT, NULL) == 0);
	h0 = holes_now();
	rss_before = rss_bytes();
	CHECK(shrinker_dispatch() == 1);
	rss_after = rss_bytes();
	h1 = holes_now();
	tap_diag("dispatch freed 32 MiB and said 8: RSS %llu -> %llu KiB, holes %llu -> "
		 "%llu KiB", (unsigned long long)rss_before >> 10,
		 (unsigned long long)rss_after >> 10, (unsigned long long)h0 >> 10,
		 (unsigned long long)h1 >> 10);
	/* The kernel's figure first: the heap went back to the system. */
	CHECK(rss_after + 24 * MiB < rss_before);
	/* What came back beyond the 8 MiB said: holes, as after a request
	 * the reclaimer serves itself. */
	CHECK(h1 >= h0 + 16 * MiB);
	r = TAP_PASS;
fail:
	heap_release(&c, pin);
	return r;
}

static const struct tap_test tests[] = {
	{ "fd readable, accumulated target delivered on the caller's thread", test_deferred_delivery },
	{ "deferred shrinkers take their part of the split", test_deferred_in_split },
	{ "unregister drops pending work", test_unregister_drops_pending },
	{ "shrinker_dispatch() trims and records RSS before and after", test_dispatch_gives_back },
	{ "what shrinker_dispatch()'s trim gives back beyond what the callbacks said "
	  "is noted as holes, as after the reclaimer's requests", test_dispatch_holes },
};

TAP_MAIN(tests)
