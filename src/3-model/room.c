/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the room to grow.  Each measurement publishes here what it left
 * (the headroom less the holes a trim made, the watermarks, what a CPU's
 * stock takes at a time); shrinker_may_grow() and fair.c take from it
 * without a lock, each CPU from its own stock first (stock.c), and what
 * they take counts against it until the next measurement.  Growth stops at
 * the top of the band above the soft watermark, and for a moment after a
 * shrink (block), so that caches settle inside the band instead of
 * refilling what they just gave back; a process below its share among its
 * peers goes further instead; the processes of a cgroup growing at once
 * take a part of the room each (peers.c counts them).  What fair.c freed
 * for particular caches is reserved, not room for the others.  The
 * callbacks' progress is counted here as well: the measurement takes no
 * growth-rate sample while it is in flux.  Every field is an atomic, and this file alone writes them; the
 * figures count from the measurement that set the growth clock
 * (shrinker__growth_measured()), which comes after them.
 */
#define _GNU_SOURCE
#include <stdatomic.h>

#include "3-model/growth.h"
#include "3-model/room.h"
#include "3-model/watermarks.h"
#include "internal.h"

/* Most a CPU's stock takes at a time. */
#define BATCH_MAX (1ull << 20)
/* A refusal asks for a fresh measurement at most this often. */
#define REFUSED_ASK_EVERY_NS 100000000ull

static struct {
	_Atomic uint64_t headroom;     /* the measurement's, less the holes */
	_Atomic uint64_t soft, hard;   /* its watermarks */
	_Atomic uint64_t granted;      /* granted since, or held in stocks */
	_Atomic uint64_t batch;        /* what a CPU's stock takes at a time */
	atomic_bool below_share;       /* under an equal share of the peers' */
	_Atomic uint64_t block_until_ns; /* no growth before this */
	_Atomic uint64_t refused_ask_ns; /* a refusal last asked to measure */
	_Atomic uint64_t reserved;     /* freed for particular caches (fair.c) */
	_Atomic unsigned parts;        /* processes of the cgroup growing, this
					  one included: the room is theirs */
	_Atomic uint64_t asked_ns;     /* the room was last asked for */
} room;

static struct {
	_Atomic unsigned running;
	_Atomic uint64_t freed_total, freed_ns, trimmed_ns;
} callbacks;

void shrinker__room_publish(uint64_t headroom, uint64_t soft, uint64_t hard,
			    bool below_share, unsigned parts, uint64_t granted_before)
{
	/* What the CPUs' stocks may hold together: a quarter of the band
	 * above the soft watermark, BATCH_MAX each at most. */
	uint64_t batch = shrinker__band(soft) / 4 / shrinker__stock_cpus();

	atomic_store(&room.below_share, below_share);
	atomic_store(&room.parts, parts ? parts : 1);
	atomic_store(&room.headroom, headroom);
	atomic_store(&room.soft, soft);
	atomic_store(&room.hard, hard);
	atomic_store(&room.batch, batch > BATCH_MAX ? BATCH_MAX : batch);
	/* Grants made while the measurement read may or may not be in its
	 * figures: keep them counted, drop only those made before. */
	atomic_fetch_sub(&room.granted, granted_before);
}

uint64_t shrinker__room_batch(void)
{
	return atomic_load_explicit(&room.batch, memory_order_relaxed);
}

uint64_t shrinker__room_granted(void)
{
	return atomic_load(&room.granted);
}

void shrinker__room_stocks_return(void)
{
	uint64_t back = shrinker__stock_drain(), was;

	/* Never below zero: a refill may have put its batch in a stock after
	 * a measurement dropped it from the figure. */
	was = atomic_load_explicit(&room.granted, memory_order_relaxed);
	while (back && !atomic_compare_exchange_weak_explicit(&room.granted, &was,
							      was > back ? was - back : 0,
							      memory_order_relaxed,
							      memory_order_relaxed))
		;
}

void shrinker__room_block(uint64_t until_ns)
{
	atomic_store(&room.block_until_ns, until_ns);
}

void shrinker__room_reserve(uint64_t bytes)
{
	atomic_fetch_add_explicit(&room.reserved, bytes, memory_order_relaxed);
}

void shrinker__room_unreserve(uint64_t bytes)
{
	atomic_fetch_sub_explicit(&room.reserved, bytes, memory_order_relaxed);
}

uint64_t shrinker__room_reserved(void)
{
	return atomic_load_explicit(&room.reserved, memory_order_relaxed);
}

uint64_t shrinker__room_asked_ns(void)
{
	return atomic_load_explicit(&room.asked_ns, memory_order_relaxed);
}

uint64_t shrinker__room_left(void)
{
	uint64_t head, soft, taken;
	unsigned parts;
	bool below;

	if (!shrinker__growth_measured())
		return UINT64_MAX;
	/* A process below its share among the processes of its cgroup
	 * (peers.c) grows into the band and right after a shrink: the room
	 * the others' shrinks make is for it. */
	below = atomic_load_explicit(&room.below_share, memory_order_relaxed);
	if (!below && shrinker__now_ns() <
	    atomic_load_explicit(&room.block_until_ns, memory_order_relaxed))
		return 0;
	head = atomic_load_explicit(&room.headroom, memory_order_relaxed);
	/* Growth stops at the top of the band above the soft watermark
	 * (shrinker__band()), which a shrink restores, so that caches settle
	 * inside it instead of growing into the next shrink.  A process below
	 * its share goes as far below it instead: the deficit that makes is
	 * paid by the processes above an equal share first (peers.c), and
	 * its growth into what they free evens the shares out; stopping at
	 * the watermark left two processes at 163 and 85 MiB of 256 for
	 * seconds, neither making a deficit.  Never into the hard band (by
	 * default the hard watermark is half the soft one).  Grants since
	 * the last measurement, and what was freed for particular caches
	 * (fair.c), are taken already. */
	soft = atomic_load_explicit(&room.soft, memory_order_relaxed);
	if (!below) {
		soft += shrinker__band(soft);
	} else {
		uint64_t hard = atomic_load_explicit(&room.hard, memory_order_relaxed);

		soft -= shrinker__band(soft);
		if (soft < hard)
			soft = hard;
	}
	if (head <= soft)
		return 0;
	/* The processes of the cgroup that are growing share the room: each
	 * measures the same headroom, and each taking all of it before its
	 * next measurement would take it as many times over (a hundred
	 * processes growing at once).  Each takes its part; what the others
	 * took and made resident shows in its next measurement. */
	parts = atomic_load_explicit(&room.parts, memory_order_relaxed);
	head = (head - soft) / (parts ? parts : 1);
	taken = atomic_load_explicit(&room.granted, memory_order_relaxed);
	shrinker__sat_add(&taken, shrinker__room_reserved());
	return head > taken ? head - taken : 0;
}

void shrinker__freeing(void)
{
	atomic_fetch_add(&callbacks.running, 1);
}

void shrinker__freed(uint64_t bytes)
{
	unsigned running = atomic_load(&callbacks.running);

	atomic_fetch_add(&callbacks.freed_total, bytes);
	if (bytes)
		atomic_store(&callbacks.freed_ns, shrinker__now_ns());
	/* Never below zero: a callback that forked returns in the child too,
	 * where the count was reset. */
	while (running && !atomic_compare_exchange_weak(&callbacks.running, &running,
							running - 1))
		;
}

void shrinker__trimmed(void)
{
	atomic_store(&callbacks.trimmed_ns, shrinker__now_ns());
}

void shrinker__callbacks_read(struct shrinker__callbacks *out)
{
	out->running = atomic_load(&callbacks.running);
	out->freed_total = atomic_load(&callbacks.freed_total);
	out->freed_ns = atomic_load(&callbacks.freed_ns);
	out->trimmed_ns = atomic_load(&callbacks.trimmed_ns);
}

void shrinker__callbacks_atfork_child(void)
{
	atomic_store(&callbacks.running, 0);
}

void shrinker__granted(uint64_t bytes)
{
	shrinker__stock_granted(bytes);
	shrinker__growth_note((int64_t)(bytes > INT64_MAX ? INT64_MAX : bytes));
}

/* A grant from this CPU's stock, or from the shared room, which then gives
 * the stock a batch more while it holds four (stock.c). */
static bool room_take(uint64_t bytes)
{
	uint64_t left, batch, extra;

	if (!shrinker__growth_measured())
		return true; /* nothing measured yet */
	if (!shrinker__stock_take(bytes)) {
		atomic_store_explicit(&room.asked_ns, shrinker__now_ns(), memory_order_relaxed);
		left = shrinker__room_left();
		if (left < bytes)
			return false;
		batch = atomic_load_explicit(&room.batch, memory_order_relaxed);
		extra = (left - bytes) / 4 >= batch ? batch : 0;
		atomic_fetch_add_explicit(&room.granted, bytes + extra, memory_order_relaxed);
		if (extra)
			shrinker__stock_put(extra);
	}
	shrinker__granted(bytes);
	return true;
}

static void room_refused(uint64_t bytes)
{
	uint64_t now = shrinker__now_ns(), last;

	atomic_store_explicit(&room.asked_ns, now, memory_order_relaxed);
	/* A refused cache replaces entries instead, which frees and allocates
	 * and, through the allocator's fragmentation, can still grow the
	 * process: the growth clock counts it, so that such churn is looked
	 * at once per step. */
	shrinker__growth_churn((int64_t)(bytes > INT64_MAX ? INT64_MAX : bytes));
	/* No room by the last figures: ask for fresh ones, now and then. */
	last = atomic_load_explicit(&room.refused_ask_ns, memory_order_relaxed);
	if (now - last >= REFUSED_ASK_EVERY_NS &&
	    atomic_compare_exchange_strong(&room.refused_ask_ns, &last, now))
		shrinker__measure_ask();
}

bool shrinker__room_grant(uint64_t bytes)
{
	if (room_take(bytes))
		return true;
	room_refused(bytes);
	return false;
}
