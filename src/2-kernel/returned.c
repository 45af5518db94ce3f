/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: what share of the bytes a shrinker reports freed really comes back
 * to the system.  The callbacks speak bytes and the kernel counts pages: a
 * cache of malloc()ed entries evicted in LRU order leaves holes all over the
 * heap, and a page goes back only when all of it is free (RocksDB's block
 * cache gave back 8 % of what it freed, 52 % after malloc_trim()).  A
 * request that trusted the bytes would leave the headroom short and the
 * process to the OOM killer.
 *
 * So each request of the reclaimer, and each shrinker_dispatch(), is
 * measured: RSS before its first callback, and after its last one and
 * malloc_trim() (reclaimer.c, registry.c).  The drop is shared among the
 * shrinkers that freed, in proportion to the bytes each reported (a
 * trim per callback would tell them apart, but malloc_trim() of a large
 * fragmented heap takes 80-250 ms, more than the callbacks).  The drop over
 * the bytes is the return, in thousandths; each shrinker keeps a running
 * figure (the first observation replaces the assumed 1000, later ones move
 * it by a quarter of the difference), and the process keeps one over all
 * shrinkers, which stands in for a shrinker not measured yet.  The
 * reclaimer then works in resident bytes: a share of a target is asked for
 * divided by the return (at most the whole cache), and what a callback says
 * it freed counts toward the target multiplied by it.
 * Other threads that allocate while a callback runs make a return look
 * smaller, never larger: the error is on the side of asking for more.  A
 * call whose RSS fell by less than FLOOR of what it reported teaches
 * nothing: its memory is not in our resident set (page cache it dropped,
 * shared memory), it is not freed yet, or a burst of allocation hid it; a
 * cache whose frees never show in RSS keeps the figure it has.
 *
 * The same measurement times the give-back: the resident bytes that came
 * back over the time from before the first callback to after the trim, per
 * process (the trim is one for all).  A cache that takes 100 ms to empty
 * (RocksDB's) needs more room at rest than one that gives back within a
 * millisecond (memory-hog's): watermarks.c sizes the soft watermark's
 * floor by it.  A slower observation moves the figure half the way, a
 * faster one a quarter, and at most doubles it: safety first.
 *
 * Everything here is under the library lock (shrinker__lock()), except
 * the give-back rate's published copy, which any thread reads.
 */
#include "internal.h"

/* Calls that free less than this are not measured: a page's worth of noise
 * would decide the figure. */
#define MIN_SEEN (256u << 10)
#define FULL 1000u
#define FLOOR 50u

/* The process's figure, over every measured call; the RSS every measured
 * call gave back, in all (the statistics). */
static unsigned process_permille = FULL;
static bool process_seen;
static uint64_t rss_returned_total;

/* When the measured request or dispatch began ([deferred]). */
static uint64_t began_ns[2];

static unsigned blend(unsigned old, bool seen, unsigned now)
{
	if (!seen)
		return now;
	/* A quarter of the way, rounded toward the new figure. */
	return now >= old ? old + (now - old + 3) / 4 : old - (old - now + 3) / 4;
}

/* Whether freeing freed bytes, after which RSS fell by rss_drop, teaches
 * anything: not when it is too little to tell, nor when RSS did not fall by
 * a twentieth of it, which says that this memory is not in our resident set
 * (page cache dropped, shared memory, another process's), is not freed
 * yet, or that other threads grew meanwhile: no figure either way, neither
 * of the return nor of its speed. */
static bool teaches(uint64_t freed, uint64_t rss_drop)
{
	return freed >= MIN_SEEN && rss_drop >= freed / (FULL / FLOOR);
}

static void observe_locked(struct shrinker *s, uint64_t freed, uint64_t rss_drop)
{
	unsigned now;

	SHRINKER__ASSERT_LIB_HELD();
	shrinker__sat_add(&s->rss_returned, rss_drop);
	shrinker__sat_add(&rss_returned_total, rss_drop);
	if (!teaches(freed, rss_drop))
		return;
	now = rss_drop >= freed ? FULL : (unsigned)(rss_drop * FULL / freed);
	s->returned_permille = blend(s->returned_permille, s->returned_seen, now);
	s->returned_seen = true;
	process_permille = blend(process_permille, process_seen, now);
	process_seen = true;
	shrinker__debug("%s: freed %llu KiB, its part of the RSS given back "
			"%llu KiB (%u permille); its return is now %u, the process's %u permille",
			s->name, (unsigned long long)freed >> 10,
			(unsigned long long)rss_drop >> 10, now,
			s->returned_permille, process_permille);
}

static bool measured_here(const struct shrinker *s, bool deferred)
{
	return !(s->flags & SHRINKER_DEFERRED) == !deferred;
}

void shrinker__returned_begin_locked(struct shrinker *list, bool deferred)
{
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	began_ns[deferred] = shrinker__now_ns();
	for (s = list; s; s = s->next)
		if (measured_here(s, deferred))
			s->req_freed = 0;
}

/* The give-back rate from one request: rss_drop bytes came back in took
 * ns of it, of total reported freed (lock held). */
static void observe_rate_locked(uint64_t total, uint64_t rss_drop, uint64_t took)
{
	uint64_t old = atomic_load_explicit(&shrinker__giveback, memory_order_relaxed);
	uint64_t now, rate, step;

	SHRINKER__ASSERT_LIB_HELD();
	if (!teaches(total, rss_drop))
		return;
	if (!took)
		took = 1;
	now = (uint64_t)((unsigned __int128)rss_drop * 1000000000u / took);
	if (!now)
		now = 1;
	if (!old)
		rate = now;
	else if (now < old)
		rate = old - (old - now) / 2;
	else {
		/* A quarter of the way, at most doubling: a large request
		 * looks fast (emptying a heap gives it all back in one trim)
		 * where a part of it was slow. */
		step = (now - old) / 4;
		rate = old + (step > old ? old : step);
	}
	atomic_store_explicit(&shrinker__giveback, rate, memory_order_relaxed);
	atomic_store_explicit(&shrinker__giveback_at, shrinker__now_ns(), memory_order_relaxed);
	shrinker__debug("%llu KiB came back in %.1f ms (%.0f MiB/s): the process gives "
			"memory back at %.0f MiB/s", (unsigned long long)rss_drop >> 10,
			took / 1e6, now / 1048576.0, rate / 1048576.0);
}

void shrinker__returned_settle_locked(struct shrinker *list, bool deferred,
				     uint64_t rss_drop)
{
	unsigned __int128 total = 0;
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = list; s; s = s->next)
		if (measured_here(s, deferred))
			total += s->req_freed;
	if (!total)
		return;
	observe_rate_locked(total > UINT64_MAX ? UINT64_MAX : (uint64_t)total, rss_drop,
			    shrinker__now_ns() - began_ns[deferred]);
	for (s = list; s; s = s->next) {
		if (!measured_here(s, deferred) || !s->req_freed)
			continue;
		observe_locked(s, s->req_freed,
			       (uint64_t)((unsigned __int128)rss_drop * s->req_freed / total));
		s->req_freed = 0;
	}
}

unsigned shrinker__returned_permille_locked(const struct shrinker *s)
{
	unsigned p = s && s->returned_seen ? s->returned_permille : process_permille;

	SHRINKER__ASSERT_LIB_HELD();
	/* Never below what a request can teach (observe_locked()): the ask
	 * divides by it. */
	return p < FLOOR ? FLOOR : p;
}

uint64_t shrinker__returned_rss_total_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return rss_returned_total;
}

unsigned shrinker__returned_process_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return process_permille;
}

uint64_t shrinker__returned_ask_locked(const struct shrinker *s, uint64_t resident)
{
	unsigned p = shrinker__returned_permille_locked(s);
	unsigned __int128 ask = ((unsigned __int128)resident * FULL + p - 1) / p;
	uint64_t size;

	SHRINKER__ASSERT_LIB_HELD();
	/* Never more than the whole cache, when it says what it holds. */
	if (atomic_load_explicit(&s->size_known, memory_order_relaxed)) {
		size = atomic_load_explicit(&s->size, memory_order_relaxed);
		if (ask > size)
			ask = size > resident ? size : resident;
	}
	return ask > UINT64_MAX ? UINT64_MAX : (uint64_t)ask;
}

uint64_t shrinker__returned_credit_locked(const struct shrinker *s, uint64_t freed)
{
	unsigned p = shrinker__returned_permille_locked(s);

	SHRINKER__ASSERT_LIB_HELD();
	return (uint64_t)((unsigned __int128)freed * p / FULL);
}

/* The give-back rate in bytes per second, 0 until measured, and when it
 * was last timed: written here only (tests set them), read by any
 * thread. */
_Atomic uint64_t shrinker__giveback, shrinker__giveback_at;

uint64_t shrinker__giveback_rate(void)
{
	return atomic_load_explicit(&shrinker__giveback, memory_order_relaxed);
}

uint64_t shrinker__giveback_timed_ns(void)
{
	return atomic_load_explicit(&shrinker__giveback_at, memory_order_relaxed);
}
