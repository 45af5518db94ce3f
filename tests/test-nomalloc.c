/* SPDX-License-Identifier: MIT */
/*
 * The reclaim path must not depend on allocating memory: under hard pressure
 * malloc may be what is stuck.  This program interposes malloc and its
 * relatives (it is linked against the shared library, so the library's
 * calls come here) and counts allocations per thread.  Each callback looks
 * at its own thread, the reclaimer: since the previous callback returned,
 * that thread woke up, measured, decided, split the target and trimmed, and
 * it must have allocated nothing.  Pressure comes from a budget just above
 * our RSS (the monitor's measuring path) and from hard requests by hand.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "shrinker.h"
#include "tap.h"

/* Allocations made by each thread (counted by the interposers below). */
static __thread unsigned long allocations;

#ifndef SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n)
{
	allocations++;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	allocations++;
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	allocations++;
	return __libc_realloc(p, n);
}

void *memalign(size_t a, size_t n)
{
	allocations++;
	return __libc_memalign(a, n);
}

void *aligned_alloc(size_t a, size_t n)
{
	allocations++;
	return __libc_memalign(a, n);
}

int posix_memalign(void **p, size_t a, size_t n)
{
	void *q;

	allocations++;
	q = __libc_memalign(a, n);
	if (!q)
		return ENOMEM;
	*p = q;
	return 0;
}
#endif

#define BLOCK (4u << 20)
#define MAX_BLOCKS 64

static char *blocks[MAX_BLOCKS];
static _Atomic unsigned nblocks;
static unsigned long mark;  /* reclaimer's count when a callback returned */
static atomic_int calls, hard_calls, checked, dirty;
static _Atomic unsigned long worst;

static size_t shrink(size_t target, bool hard, void *ud)
{
	unsigned long since = allocations - mark;
	size_t freed = 0;

	(void)ud;
	if (atomic_fetch_add(&calls, 1) > 0) {
		/* Not the first call: the window is the whole loop. */
		atomic_fetch_add(&checked, 1);
		if (since) {
			atomic_fetch_add(&dirty, 1);
			if (since > atomic_load(&worst))
				atomic_store(&worst, since);
		}
	}
	atomic_fetch_add(&hard_calls, hard);
	while (freed < target && atomic_load(&nblocks)) {
		unsigned i = atomic_fetch_sub(&nblocks, 1) - 1;

		free(blocks[i]);
		blocks[i] = NULL;
		freed += BLOCK;
	}
	mark = allocations;
	return freed;
}


static int test_no_allocation(void)
{
	struct shrinker *s = NULL;
	unsigned round, i;
	int r = TAP_FAIL;

	CHECK(shrinker_register(&s, "nomalloc", shrink, NULL, 0) == 0);
	for (round = 0; round < 6; round++) {
		/* A budget 32 MiB above our RSS now: growing by 64 MiB is
		 * hard pressure. */
		CHECK(shrinker_set_limit(rss_bytes() + 32 * MiB) == 0);
		for (i = atomic_load(&nblocks); i < 16; i++) {
			blocks[i] = malloc(BLOCK);
			CHECK(blocks[i]);
			memset(blocks[i], 1, BLOCK);
			atomic_fetch_add(&nblocks, 1);
		}
		/* The monitor polls the budget; wait for it to act. */
		for (i = 0; i < 300 && atomic_load(&nblocks) > 10; i++)
			sleep_ms(10);
		/* And a hard request by hand. */
		CHECK(shrinker_request_reclaim(BLOCK, SHRINKER_HARD | SHRINKER_WAIT, NULL) == 0);
	}
	tap_diag("%d calls (%d hard), %d checked, %d with allocations (worst %lu)",
		 atomic_load(&calls), atomic_load(&hard_calls), atomic_load(&checked),
		 atomic_load(&dirty), atomic_load(&worst));
	CHECK(atomic_load(&checked) >= 6);
	CHECK(atomic_load(&hard_calls) >= 6);
	CHECK(atomic_load(&dirty) == 0);
	r = TAP_PASS;
fail:
	shrinker_set_limit(0);
	shrinker_unregister(s);
	for (i = 0; i < MAX_BLOCKS; i++)
		free(blocks[i]);
	return r;
}

static const struct tap_test tests[] = {
	{ "the reclaimer thread allocates nothing between callbacks", test_no_allocation },
};

int main(void)
{
#ifdef SANITIZED
	tap_skip_all("a sanitizer's allocator cannot be interposed");
#endif
	if (getenv("VALGRIND"))
		tap_skip_all("valgrind replaces malloc before we can interpose it");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
