/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: per-CPU stocks, so that the hot calls (shrinker_may_grow(),
 * shrinker_may_grow_cache(), shrinker_set_size(), shrinker_account() and,
 * through it, the malloc brake) write no cache line that threads on other
 * CPUs write too, in the common case.  One counter that every thread added
 * to made a call cost 45 ns from one thread and 700 ns from two on two
 * cores.  As the kernel charges a memory cgroup from a per-CPU stock of
 * pages (MEMCG_CHARGE_BATCH) and counts with percpu_counter, each CPU has
 * a slot of its own (by sched_getcpu(), STOCK_SLOTS of them, on cache lines
 * of their own) holding:
 *  - room: room to grow, taken from the shared figure (monitor.c) a batch at
 *    a time and handed out from here;
 *  - granted: what was handed out from this slot, cumulative (the growth
 *    rate leaves grants out: measure.c);
 *  - grown, churn: growth reported here and not yet on the growth clock
 *    (growth.c), which gets it once it reaches the clock's flush mark.
 *
 * What the stocks hide: room taken and not yet handed out is counted as
 * granted (on the safe side: a grant refused while another CPU holds room,
 * until the next measurement empties the stocks), and growth not yet on
 * the clock makes a probe that much late.  Both are at most a batch per
 * CPU the process may run on, and monitor.c and growth.c size the batches
 * so that all of them together are a quarter of the band above the soft
 * watermark, and a quarter of a probe's step: within the margin the
 * watermarks keep.  A measurement empties the room stocks and takes every
 * slot's pending growth, and so does a shrink (nothing grows right after
 * one).  Two threads on one CPU share its slot: every change is atomic.
 * Nothing here allocates or locks: it runs inside malloc.
 */
#define _GNU_SOURCE
#include <sched.h>

#include "internal.h"

#define STOCK_SLOTS 64u

struct slot {
	_Atomic uint64_t room;
	_Atomic uint64_t granted;
	_Atomic int64_t grown;
	_Atomic int64_t churn;
} __attribute__((aligned(64)));

static struct slot slots[STOCK_SLOTS];
static _Atomic unsigned cpus; /* CPUs the process may run on, 0: not read */

static struct slot *here(void)
{
	int cpu = sched_getcpu();

	return &slots[cpu < 0 ? 0 : (unsigned)cpu % STOCK_SLOTS];
}

unsigned shrinker__stock_cpus(void)
{
	unsigned n = atomic_load_explicit(&cpus, memory_order_relaxed);
	cpu_set_t set;

	if (n)
		return n;
	n = sched_getaffinity(0, sizeof(set), &set) == 0 ? (unsigned)CPU_COUNT(&set) : 1;
	if (n < 1)
		n = 1;
	if (n > STOCK_SLOTS)
		n = STOCK_SLOTS;
	atomic_store_explicit(&cpus, n, memory_order_relaxed);
	return n;
}

bool shrinker__stock_take(uint64_t bytes)
{
	struct slot *s = here();
	uint64_t left = atomic_load_explicit(&s->room, memory_order_relaxed);

	do {
		if (left < bytes)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&s->room, &left, left - bytes,
							memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

void shrinker__stock_put(uint64_t bytes)
{
	atomic_fetch_add_explicit(&here()->room, bytes, memory_order_relaxed);
}

uint64_t shrinker__stock_drain(void)
{
	uint64_t sum = 0;
	unsigned i;

	for (i = 0; i < STOCK_SLOTS; i++)
		shrinker__sat_add(&sum, atomic_exchange_explicit(&slots[i].room, 0,
								 memory_order_relaxed));
	return sum;
}

void shrinker__stock_granted(uint64_t bytes)
{
	atomic_fetch_add_explicit(&here()->granted, bytes, memory_order_relaxed);
}

uint64_t shrinker__stock_granted_total(void)
{
	uint64_t sum = 0;
	unsigned i;

	/* Wraps as the single counter did: read as a difference. */
	for (i = 0; i < STOCK_SLOTS; i++)
		sum += atomic_load_explicit(&slots[i].granted, memory_order_relaxed);
	return sum;
}

bool shrinker__stock_grow(int64_t grown, int64_t churn, int64_t flush,
			  int64_t *grown_out, int64_t *churn_out)
{
	struct slot *s = here();
	int64_t g = atomic_fetch_add_explicit(&s->grown, grown, memory_order_relaxed) + grown;

	if (churn)
		atomic_fetch_add_explicit(&s->churn, churn, memory_order_relaxed);
	if (g < flush)
		return false;
	*grown_out = atomic_exchange_explicit(&s->grown, 0, memory_order_relaxed);
	*churn_out = atomic_exchange_explicit(&s->churn, 0, memory_order_relaxed);
	return true;
}

void shrinker__stock_grown_drain(int64_t *grown_out, int64_t *churn_out)
{
	int64_t g = 0, c = 0;
	unsigned i;

	for (i = 0; i < STOCK_SLOTS; i++) {
		g += atomic_exchange_explicit(&slots[i].grown, 0, memory_order_relaxed);
		c += atomic_exchange_explicit(&slots[i].churn, 0, memory_order_relaxed);
	}
	*grown_out = g;
	*churn_out = c;
}

int64_t shrinker__stock_grown_pending(void)
{
	int64_t g = 0;
	unsigned i;

	for (i = 0; i < STOCK_SLOTS; i++)
		g += atomic_load_explicit(&slots[i].grown, memory_order_relaxed);
	return g;
}
