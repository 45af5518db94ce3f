/* SPDX-License-Identifier: MIT */
/*
 * Bytes against pages (src/returned.c): a cache of small malloc()ed blocks
 * whose frees leave some pages of the heap partly used gives back only part
 * of what it reports freed.  The library must learn that share from RSS,
 * show it in the statistics, and ask the cache for correspondingly more;
 * a cache whose frees never show in RSS keeps asking for what it is asked.
 * The verdict is this process's own RSS (statm), read by the test.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "shrinker.h"
#include "tap.h"

#define BLOCK 1024u
#define PER_PAGE 4u
#define BLOCKS (64u * 1024u) /* 64 MiB of blocks */

/* Blocks in "eviction order": first every block of the first 16 MiB of
 * pages, which come back whole; then, of each four pages of the rest, the
 * blocks of two pages (one free span of 8 KiB, which holds at least one
 * whole page, as malloc's chunk headers fall) and one block of each of the
 * other two: 10 KiB freed for about 4 KiB back. */
static char *blocks[BLOCKS];
static unsigned order[BLOCKS], next_out, n_out;
static struct shrinker *s;
static _Atomic uint64_t asked;
static _Atomic uint64_t first_ask; /* the first call's target, once reset */

static size_t evict(size_t target, bool hard, void *ud)
{
	size_t freed = 0;

	(void)hard;
	(void)ud;
	asked += target;
	if (!first_ask)
		first_ask = target;
	while (freed < target && next_out < n_out) {
		unsigned i = order[next_out++];

		free(blocks[i]);
		blocks[i] = NULL;
		freed += BLOCK;
	}
	shrinker_set_size(s, (size_t)(n_out - next_out) * BLOCK);
	return freed;
}

static int fill(void)
{
	unsigned i, whole = 16 * 1024;
	char *probe;

	/* Blocks laid out in address order, a page's worth at a time, from
	 * the heap (below the mmap threshold, and the same arena). */
	for (i = 0; i < BLOCKS; i++) {
		blocks[i] = malloc(BLOCK - 2 * sizeof(size_t));
		if (!blocks[i])
			return -1;
		memset(blocks[i], 1, BLOCK - 2 * sizeof(size_t));
	}
	probe = blocks[1];
	if (probe - blocks[0] != BLOCK)
		tap_diag("blocks %td bytes apart, not %u", probe - blocks[0], BLOCK);
	n_out = 0;
	for (i = 0; i < whole; i++)
		order[n_out++] = i;
	for (i = whole; i + 4 * PER_PAGE <= BLOCKS; i += 4 * PER_PAGE) {
		unsigned j;

		for (j = 0; j < 2 * PER_PAGE; j++)
			order[n_out++] = i + j;
		order[n_out++] = i + 2 * PER_PAGE + 1;
		order[n_out++] = i + 3 * PER_PAGE + 1;
	}
	next_out = 0;
	return 0;
}

static void drain(void)
{
	unsigned i;

	for (i = 0; i < BLOCKS; i++) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
	malloc_trim(0);
}

static int test_learns_the_return(void)
{
	struct shrinker_stats st;
	struct shrinker_global_stats g;
	uint64_t r0, r1, a0, sum_freed = 0, sum_drop = 0, truth;
	size_t freed = 0;
	int r = TAP_FAIL, i;

	CHECK(fill() == 0);
	CHECK(shrinker_register(&s, "blocks", evict, NULL, 0) == 0);
	shrinker_set_size(s, (size_t)n_out * BLOCK);
	/* Before any measurement, bytes are trusted: asked what is asked. */
	CHECK(shrinker_get_stats(s, &st) == 0);
	CHECK(st.returned_permille == 1000);

	/* 16 MiB of whole pages. */
	r0 = rss_bytes();
	CHECK(shrinker_request_reclaim(8 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(shrinker_request_reclaim(8 * MiB, SHRINKER_WAIT, &freed) == 0);
	r1 = rss_bytes();
	CHECK(shrinker_get_stats(s, &st) == 0);
	tap_diag("freed %llu KiB, RSS fell by %llu KiB, learned %llu permille, "
		 "given back %llu KiB by the library's count",
		 (unsigned long long)st.bytes_freed >> 10,
		 (unsigned long long)(r0 - r1) >> 10,
		 (unsigned long long)st.returned_permille,
		 (unsigned long long)st.rss_returned >> 10);
	/* All of these pages were free: the return is whole. */
	CHECK(st.returned_permille >= 900);

	/* Then a return of about 40 %: the figure moves toward it a quarter
	 * of the way a request. */
	for (i = 0; i < 5; i++) {
		r0 = rss_bytes();
		CHECK(shrinker_request_reclaim(3 * MiB, SHRINKER_WAIT, &freed) == 0);
		r1 = rss_bytes();
		sum_freed += freed;
		sum_drop += r0 > r1 ? r0 - r1 : 0;
		CHECK(shrinker_get_stats(s, &st) == 0);
		tap_diag("freed %zu KiB, RSS fell by %llu KiB, learned %llu permille",
			 freed >> 10, (unsigned long long)(r0 > r1 ? r0 - r1 : 0) >> 10,
			 (unsigned long long)st.returned_permille);
	}
	/* What this test saw of its own RSS: the truth the figure must near,
	 * within what five steps of a quarter leave of the way from 1000. */
	truth = sum_drop * 1000 / sum_freed;
	tap_diag("RSS fell by %llu permille of what was freed; learned %llu",
		 (unsigned long long)truth, (unsigned long long)st.returned_permille);
	CHECK(truth < 700);
	CHECK(st.returned_permille + 50 >= truth);
	CHECK(st.returned_permille <= truth + (1000 - truth) * 243 / 1024 + 50);
	CHECK(shrinker_get_global_stats(&g) == 0);
	CHECK(g.returned_permille < 1000);
	CHECK(g.rss_returned >= st.rss_returned);

	/* Asked for more than the target: the target over the return, capped
	 * at what the cache holds. */
	a0 = asked;
	first_ask = 0;
	CHECK(shrinker_request_reclaim(2 * MiB, SHRINKER_WAIT, &freed) == 0);
	tap_diag("asked %llu KiB for a 2048 KiB target, %llu KiB in the first call",
		 (unsigned long long)(asked - a0) >> 10,
		 (unsigned long long)first_ask >> 10);
	/* In the first call, not by rounds that follow a short one. */
	CHECK(first_ask >= 2 * MiB * 1000 / st.returned_permille - 64 * 1024);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	s = NULL;
	drain();
	return r;
}

/* A cache whose frees never show in RSS (its memory is elsewhere: page
 * cache it drops, shared memory): nothing is learned, and it is asked for
 * what the target says. */
static uint64_t ghost_left = 256 * MiB;

static size_t ghost(size_t target, bool hard, void *ud)
{
	size_t got = target < ghost_left ? target : (size_t)ghost_left;

	(void)hard;
	(void)ud;
	ghost_left -= got;
	asked += target;
	shrinker_set_size(s, ghost_left);
	return got;
}

static int test_outside_rss_is_not_learned(void)
{
	struct shrinker_stats st;
	uint64_t a0;
	size_t freed = 0;
	int r = TAP_FAIL, i;

	CHECK(shrinker_register(&s, "ghost", ghost, NULL, 0) == 0);
	shrinker_set_size(s, ghost_left);
	for (i = 0; i < 3; i++) {
		a0 = asked;
		CHECK(shrinker_request_reclaim(8 * MiB, SHRINKER_WAIT, &freed) == 0);
		CHECK(freed == 8 * MiB);
		CHECK(asked - a0 == 8 * MiB);
	}
	CHECK(shrinker_get_stats(s, &st) == 0);
	CHECK(st.returned_permille == 1000);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	s = NULL;
	return r;
}

/* A cache of 1 MiB mappings that waits delay_ms before it frees: how fast
 * the process gives memory back is timed from the first callback to the
 * trim, so a wait in the callback must show. */
#define MAPS 64
static void *maps[MAPS];
static unsigned maps_n, delay_ms;

static size_t unmap(size_t target, bool hard, void *ud)
{
	size_t freed = 0;

	(void)hard;
	(void)ud;
	if (delay_ms)
		sleep_ms(delay_ms);
	while (freed < target && maps_n) {
		munmap(maps[--maps_n], MiB);
		freed += MiB;
	}
	shrinker_set_size(s, (size_t)maps_n * MiB);
	return freed;
}

static int map_some(unsigned n)
{
	while (maps_n < n) {
		void *p = mmap(NULL, MiB, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return -1;
		memset(p, 1, MiB);
		maps[maps_n++] = p;
	}
	shrinker_set_size(s, (size_t)maps_n * MiB);
	return 0;
}

/* One 16 MiB request, waiting wait_ms in the callback; the process's
 * give-back figure after it. */
static int timed(unsigned wait_ms, uint64_t *rate)
{
	struct shrinker_global_stats g;
	size_t freed = 0;

	delay_ms = wait_ms;
	if (map_some(32) < 0 ||
	    shrinker_request_reclaim(16 * MiB, SHRINKER_WAIT, &freed) < 0 ||
	    shrinker_get_global_stats(&g) < 0)
		return -1;
	tap_diag("freed %zu KiB with a %u ms wait: the process gives back at %.0f MiB/s",
		 freed >> 10, wait_ms, g.giveback_per_s / (double)MiB);
	*rate = g.giveback_per_s;
	return freed == 16 * MiB ? 0 : -1;
}

static int test_giveback_timed(void)
{
	struct shrinker_global_stats g;
	uint64_t slow, fast, slow_again;
	int r = TAP_FAIL;

	CHECK(shrinker_register(&s, "maps", unmap, NULL, 0) == 0);
	/* Nothing that came back was timed yet (the test before taught
	 * nothing). */
	CHECK(shrinker_get_global_stats(&g) == 0);
	CHECK(g.giveback_per_s == 0);
	/* 16 MiB after a 100 ms wait: at most 160 MiB/s (200 allows for
	 * other memory of this process that the trim gives back too). */
	CHECK(timed(100, &slow) == 0);
	CHECK(slow > 0 && slow <= 200 * MiB);
	/* At once: faster, by a quarter of the way, never more than twice
	 * the figure before. */
	CHECK(timed(0, &fast) == 0);
	CHECK(fast > slow && fast <= 2 * slow);
	/* Slow again: half the way down. */
	CHECK(timed(100, &slow_again) == 0);
	CHECK(slow_again < fast);
	r = TAP_PASS;
fail:
	delay_ms = 0;
	while (maps_n)
		munmap(maps[--maps_n], MiB);
	shrinker_unregister(s);
	s = NULL;
	return r;
}

static const struct tap_test tests[] = {
	/* First: until something is learned, the process's figure is 1000. */
	{ "frees outside the resident set teach nothing", test_outside_rss_is_not_learned },
	{ "how fast memory comes back is timed, slower figures counting more",
	  test_giveback_timed },
	{ "frees that leave pages in use: the return is learned and asked for",
	  test_learns_the_return },
};

int main(void)
{
	const char *san = getenv("SANITIZE");

	if (san && *san)
		tap_skip_all("a sanitizer's allocator keeps freed blocks resident");
	/* No self-imposed budget or pressure from the environment. */
	unsetenv("SHRINKER_LIMIT");
	/* The heap, not mappings, and one arena: this thread's. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
