/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: fairness between caches when they grow.  Shrinking is fair by
 * construction (a request is split in proportion to what each cache holds,
 * reclaimer.c); growing through shrinker_may_grow() is first come, first
 * served, so under a full limit the cache that filled first keeps
 * everything.  shrinker_may_grow_cache() adds the other half: a cache's fair
 * share is an equal part of what the caches that report their size hold
 * together; a cache more than a 32nd below it that finds no room asks to
 * take from the caches above their fair share, in chunks that follow what
 * it can use: 1 MiB at first, doubled each time it used its credit within
 * a quarter of the second it has, halved each time one lapsed, never more
 * than half the gap: at most what it takes in half a second or so.  (Half
 * the gap at once froze tens of MiB for a cache that grows slowly:
 * reserved for it, used in part, then given back to the cache it was
 * taken from, again and again; bench/analysis.md.)
 * The reclaimer serves that as a soft request to those caches only, each in
 * proportion to its excess and never below the fair share, and the bytes
 * they free are credited to the asking cache, reserved for it (nobody else's
 * shrinker_may_grow() sees them) for up to a second.  A cache that grows
 * fast reaches its share in a few exchanges (the chunk doubles), one that
 * grows slowly in small ones, and little is freed that the asking cache
 * does not then take.  Exchanges that free less than half of what they
 * ask back off (10 ms doubling to 2 s), so caches that cannot give make
 * no storm.
 *
 * shrinker_get_capacity() gives caches governed by a size setting (SQLite's
 * cache_size) the size to set: inside their callback, what they hold less
 * the target; elsewhere, what they hold plus their credit and an equal part
 * of the room to grow.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "3-model/growth.h"
#include "3-model/room.h"
#include "internal.h"

/* A credit not used within this long is given back to everybody. */
#define CREDIT_TTL_NS 1000000000ull
/* A credit used within this long doubles the next chunk. */
#define QUICK_USE_NS (CREDIT_TTL_NS / 4)
/* The smallest exchange between caches. */
#define MIN_CHUNK (1ull << 20)
/* After an exchange that freed less than half of what it asked. */
#define BACKOFF_MIN_NS 10000000ull
#define BACKOFF_MAX_NS 2000000000ull
/* A refused cache looks at the fair shares at most this often. */
#define LOOK_EVERY_NS 1000000ull

/* What the caches that ask to take want in all (lib lock), and the back-off
 * of exchanges that freed little. */
static struct {
	uint64_t want_total;      /* the sum of the shrinkers' want */
	uint64_t backoff_ns, not_before_ns;
} asks;

/* Whether s counts in the fair shares: active, alive, size known. */
static bool in_fair_shares(const struct shrinker *s)
{
	return s->active && !s->dead &&
	       atomic_load_explicit(&s->size_known, memory_order_relaxed);
}

static uint64_t cache_size(const struct shrinker *s)
{
	return atomic_load_explicit(&s->size, memory_order_relaxed);
}

/* The fair share (lock held): an equal part of what the caches that count
 * hold; *n, how many count. */
static uint64_t fair_share_locked(unsigned *n)
{
	unsigned __int128 sum = 0;
	struct shrinker *s;
	unsigned k = 0;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = shrinker__first_locked(); s; s = s->next) {
		if (!in_fair_shares(s))
			continue;
		sum += cache_size(s);
		k++;
	}
	*n = k;
	return k ? (uint64_t)(sum / k) : 0;
}

static void drop_credit_locked(struct shrinker *s)
{
	SHRINKER__ASSERT_LIB_HELD();
	shrinker__room_unreserve(s->credit);
	s->credit = 0;
}

/* s's credit lapsed with bytes left (lock held): it asked for more than it
 * could use in time; its next ask is half as big. */
static void credit_lapsed_locked(struct shrinker *s)
{
	SHRINKER__ASSERT_LIB_HELD();
	s->chunk = s->chunk / 2 < MIN_CHUNK ? MIN_CHUNK : s->chunk / 2;
	drop_credit_locked(s);
}

/* The size of s's next ask, below a gap of gap bytes and at least bytes
 * (lock held): its chunk, doubled if its last credit was used within a
 * quarter of the time it had (doubled whenever it was used in time, a
 * cache growing at 20 MB/s was given 33 MB, used over 1.6 s: freed from
 * the others and idle meanwhile, bench/analysis.md). */
static uint64_t next_chunk_locked(struct shrinker *s, uint64_t gap, uint64_t bytes,
				  uint64_t now)
{
	SHRINKER__ASSERT_LIB_HELD();
	uint64_t chunk = s->chunk ? s->chunk : MIN_CHUNK;
	if (s->credit_ns && now - s->credit_ns <= QUICK_USE_NS && s->credit < bytes)
		chunk *= 2;
	if (chunk > gap / 2)
		chunk = gap / 2 < MIN_CHUNK ? (gap < MIN_CHUNK ? gap : MIN_CHUNK) : gap / 2;
	if (chunk < bytes)
		chunk = bytes;
	s->chunk = chunk;
	return chunk;
}

void shrinker__fair_forget_locked(struct shrinker *s)
{
	SHRINKER__ASSERT_LIB_HELD();
	drop_credit_locked(s);
	asks.want_total -= s->want;
	s->want = 0;
}

/* Use bytes of s's credit if it has that much (lock held). */
static bool use_credit_locked(struct shrinker *s, uint64_t bytes, uint64_t now)
{
	SHRINKER__ASSERT_LIB_HELD();
	if (s->credit && now - s->credit_ns > CREDIT_TTL_NS)
		credit_lapsed_locked(s);
	if (!s->credit || s->credit < bytes)
		return false;
	s->credit -= bytes;
	shrinker__room_unreserve(bytes);
	return true;
}

bool shrinker__fair_grant(struct shrinker *s, uint64_t bytes)
{
	uint64_t fair, size, chunk, now, last;
	bool ok, wake = false;
	unsigned n;

	/* No lock on the way that grants from the common room: the lock
	 * only when some cache holds a credit, or after a refusal, at most
	 * once a millisecond per cache. */
	if (shrinker__room_reserved()) {
		shrinker__lock();
		ok = use_credit_locked(s, bytes, shrinker__now_ns());
		shrinker__unlock();
		if (ok) {
			shrinker__granted(bytes);
			return true;
		}
	}
	if (shrinker__room_grant(bytes))
		return true;
	now = shrinker__now_ns();
	last = atomic_load_explicit(&s->fair_look_ns, memory_order_relaxed);
	if (now - last < LOOK_EVERY_NS ||
	    !atomic_compare_exchange_strong(&s->fair_look_ns, &last, now))
		return false;

	shrinker__lock();
	fair = fair_share_locked(&n);
	size = cache_size(s);
	/* Below its fair share, by more than a 32nd (closer is fair enough:
	 * no exchanges of crumbs), with another cache to take from: ask
	 * for its chunk, once; a request already waiting is not made
	 * again. */
	if (in_fair_shares(s) && n >= 2 && size < fair && fair - size >= bytes &&
	    fair - size >= fair / 32 && now >= asks.not_before_ns && !s->want) {
		chunk = next_chunk_locked(s, fair - size, bytes, now);
		if (s->credit < chunk) {
			uint64_t add = chunk - s->credit;

			s->want += add;
			asks.want_total += add;
			wake = true;
		}
	}
	shrinker__unlock();
	if (wake)
		shrinker__reclaimer_wake();
	return false;
}

/* Give freed bytes to the caches that asked, in proportion to their want
 * (lock held). */
static void credit_takers_locked(uint64_t freed, uint64_t now)
{
	uint64_t want_total = asks.want_total;
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = shrinker__first_locked(); s && want_total; s = s->next) {
		uint64_t give;

		if (!s->want)
			continue;
		give = (uint64_t)((unsigned __int128)freed * s->want / want_total);
		if (give > s->want)
			give = s->want;
		if (s->credit && now - s->credit_ns > CREDIT_TTL_NS)
			credit_lapsed_locked(s);
		s->credit += give;
		s->credit_ns = now;
		shrinker__sat_add(&s->taken, give);
		shrinker__room_reserve(give);
		/* What was not freed is not owed: the cache asks again if it
		 * still finds no room. */
		asks.want_total -= s->want;
		s->want = 0;
	}
}

uint64_t shrinker__fair_wanted_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return asks.want_total;
}

void shrinker__rebalance_locked(void)
{
	uint64_t fair, excess = 0, asked, freed = 0, now, before;
	struct shrinker *s, *next;
	unsigned n;

	SHRINKER__ASSERT_LIB_HELD();
	if (!asks.want_total)
		return;
	shrinker__unlock();
	before = shrinker__rss_bytes();
	shrinker__lock();
	fair = fair_share_locked(&n);
	for (s = shrinker__first_locked(); s; s = s->next)
		if (in_fair_shares(s) && !(s->flags & SHRINKER_DEFERRED) && cache_size(s) > fair)
			excess += cache_size(s) - fair;
	asked = asks.want_total < excess ? asks.want_total : excess;
	for (s = shrinker__first_locked(); s && asked; s = next) {
		uint64_t share, got;

		next = s->next;
		/* Deferred caches free only when the program dispatches: not
		 * in time for a cache that waits to grow. */
		if (!in_fair_shares(s) || (s->flags & SHRINKER_DEFERRED) || s->busy ||
		    cache_size(s) <= fair || shrinker__calls_barred_locked())
			continue;
		share = (uint64_t)(((unsigned __int128)asked * (cache_size(s) - fair) +
				    excess - 1) / excess);
		if (share > cache_size(s) - fair)
			share = cache_size(s) - fair;
		if (!share)
			continue;
		/* s may be gone after this (its statistics are kept by the
		 * call itself); only next is safe to use. */
		got = shrinker__call_locked(s, share, false, true, &next, NULL);
		shrinker__sat_add(&freed, got);
	}
	now = shrinker__now_ns();
	credit_takers_locked(freed, now);
	/* No storm when the caches above their share free little of what
	 * they are asked (a size setting that lags its cache): the next
	 * exchange waits, 10 ms doubling to 2 s, until one frees enough. */
	if (freed >= asked / 2) {
		asks.backoff_ns = 0;
	} else {
		asks.backoff_ns = asks.backoff_ns ?
			asks.backoff_ns * 2 : BACKOFF_MIN_NS;
		if (asks.backoff_ns > BACKOFF_MAX_NS)
			asks.backoff_ns = BACKOFF_MAX_NS;
	}
	asks.not_before_ns = now + asks.backoff_ns;
	/* Whatever was not served (nobody above the fair share, or nobody
	 * freed) is dropped: the asking cache asks again when it grows. */
	for (s = shrinker__first_locked(); s; s = s->next)
		s->want = 0;
	asks.want_total = 0;
	if (freed) {
		/* Back to the system before the asking cache takes it: it may
		 * allocate from another malloc arena than the one freed into. */
		shrinker__unlock();
		shrinker__trim_and_record(before);
		shrinker__brake_kick();
		shrinker__lock();
	}
	shrinker__debug("rebalanced: %llu KiB asked of caches above the fair share "
			"of %llu KiB, %llu KiB freed for the caches below it",
			(unsigned long long)asked >> 10, (unsigned long long)fair >> 10,
			(unsigned long long)freed >> 10);
}

int shrinker__fair_capacity(const struct shrinker *s, uint64_t *ret)
{
	uint64_t size, cap, room;
	unsigned n;

	shrinker__lock();
	if (!atomic_load_explicit(&s->size_known, memory_order_relaxed)) {
		shrinker__unlock();
		return -ENODATA;
	}
	size = cache_size(s);
	if (s->busy && pthread_equal(s->caller, pthread_self())) {
		/* In its own callback: the size it should have after it. */
		cap = size > s->call_target ? size - s->call_target : 0;
	} else {
		(void)fair_share_locked(&n);
		room = shrinker__room_left();
		if (room == UINT64_MAX)
			room = 0; /* nothing measured yet: stay */
		cap = size;
		shrinker__sat_add(&cap, s->credit);
		shrinker__sat_add(&cap, n > 1 ? room / n : room);
	}
	shrinker__unlock();
	*ret = cap;
	return 0;
}
