/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the watermarks.  The soft watermark is the room the library needs
 * to react before the limit: the growth it did not grant, seen lately
 * (measure.c's rate_slow), times the time it takes to react (its own
 * slowest recent reaction, from a wake-up to the request's end, kept here
 * as a maximum that halves every second), between a floor and the
 * configured share of the limit.  The floor applies where the kernel warns
 * before the limit kills, or while the program's own growth probes the
 * cgroup's usage and the library polls every 10 ms besides (then another
 * process's growth is seen within milliseconds all the same; an idle
 * program goes back to the ceiling); the watermark rises at once, holds, then
 * falls half the way per step, so that it neither flaps nor lingers.  The
 * floor assumes the caches give memory back about as fast as a competitor
 * takes it: a process that gives back more slowly (returned.c times it)
 * gets a floor as much higher (past the ceiling, up to a quarter of the
 * limit; among peers, its share of what they hold of that rise: it gives
 * back its part of a deficit), and one not timed yet the ceiling, until
 * the first request times it (monitor.c asks for a small one when the
 * caches first fill up to the watermark).  The hard watermark keeps its configured ratio to the soft
 * one.
 * shrinker_set_watermarks() fixes both to shares of the limit (the one
 * formula, shrinker__watermarks(), also sizes cgroup v1's thresholds for a
 * limit that does not bind).
 */
#define _GNU_SOURCE
#include <string.h>

#include "3-model/growth.h"
#include "3-model/watermarks.h"
#include "internal.h"

/* The soft watermark is the growth seen in the last second (measure.c's
 * rate_slow, a maximum that halves every half second) times the reaction
 * the library needs (shrinker__reaction_need_ns(): twice its slowest
 * recent reaction, a maximum that halves every REACTION_HALF_LIFE_NS,
 * REACTION_MIN_NS to REACTION_MAX_NS), rounded up to a 128th of the limit,
 * between FLOOR_PERMILLE of the limit exactly (only where the kernel warns
 * before the limit: early_warning_locked()) and the configured share (the
 * ceiling); it rises at once and falls half the way
 * (a step at least) per SOFT_FALL_EVERY_NS, from SOFT_HOLD_NS after it last
 * rose (a watermark that went up and down with every burst re-armed cgroup
 * v1's thresholds ten times a second). */
#define REACTION_MIN_NS 25000000ull
#define REACTION_MAX_NS 200000000ull
#define REACTION_HALF_LIFE_NS 1000000000ull
#define FLOOR_PERMILLE 25
#define SOFT_FALL_EVERY_NS 100000000ull
#define SOFT_HOLD_NS 300000000ull
/* Where the kernel says nothing before the limit, the floor still applies
 * while the program's own growth probes the binding cgroup's usage (the
 * growth clock, growth.c): it did within WATCHED_NS, and the library then
 * looks every 10 ms as well (monitor.c), so another process's growth is
 * seen within milliseconds, as a cgroup v1 threshold would show it.  The
 * floor is WATCHED_FLOOR_MIN at least there: what a competitor faulting in
 * a few hundred MiB/s takes in two such looks. */
#define WATCHED_NS 1000000000ull
#define WATCHED_FLOOR_MIN (8ull << 20)
/* The floors above are for caches that give memory back at least this fast
 * (bytes per second, from the first callback to the trim): a competitor
 * faulting in fresh pages on one core of a current machine (300-1100 MiB/s
 * here).  memory-hog's caches give back at 0.5-2.5 GiB/s, RocksDB's block
 * cache under glibc at 150-300 MiB/s, SQLite's page caches at 100-200
 * MiB/s (the trim of their fragmented heap is most of it).  A slower
 * process gets 2.5 % of the limit times GIVEBACK_REF_RATE over its rate,
 * at most SLOW_MAX_PERMILLE of the limit, above the configured ceiling if
 * need be: in 256 MiB with a competitor taking 96 MiB at full speed,
 * SQLite's example was OOM-killed in 3 of 5 runs with 10 % of headroom and
 * in 0 of 3 with 20 %. */
#define GIVEBACK_REF_RATE (1ull << 30)
#define SLOW_MAX_PERMILLE 250

/* The configuration and the adaptive soft watermark (mon lock). */
static struct {
	unsigned soft_permille, hard_permille; /* the configured shares */
	bool fixed;            /* shrinker_set_watermarks(): no adapting */
	bool may_watch;        /* at the last sizing: see watched_locked() */
	uint64_t sized, sized_ns; /* the adaptive soft watermark, since */
	uint64_t rose_ns;      /* when it last rose */
	bool watched;          /* it is below the ceiling only because the
				  program's probes watch the usage: the
				  library looks every POLL_MIN_MS as well */
	bool unproven;         /* it is at the ceiling only because the
				  caches' give-back is not timed yet */
	bool slow;             /* its floor is raised because they give back
				  slowly */
} wm = {
	.soft_permille = SHRINKER__SOFT_PERMILLE,
	.hard_permille = SHRINKER__HARD_PERMILLE,
};

/* The slowest recent reaction and when it was seen (any thread). */
static _Atomic uint64_t reaction_ns, reaction_at;

void shrinker__watermarks(uint64_t limit, unsigned soft_permille,
			  unsigned hard_permille, uint64_t *soft, uint64_t *hard)
{
	*soft = limit / 1000 * soft_permille;
	*hard = limit / 1000 * hard_permille;
	if (*hard < SHRINKER__MIN_HARD)
		*hard = SHRINKER__MIN_HARD;
	if (*soft < SHRINKER__MIN_SOFT)
		*soft = SHRINKER__MIN_SOFT;
	if (*soft <= *hard)
		*soft = *hard + SHRINKER__MIN_HARD;
}

void shrinker__ceilings_locked(uint64_t limit, uint64_t *soft, uint64_t *hard)
{
	SHRINKER__ASSERT_MON_HELD();
	shrinker__watermarks(limit, wm.soft_permille, wm.hard_permille, soft, hard);
}

void shrinker__watermarks_configure_locked(unsigned soft_permille, unsigned hard_permille)
{
	bool fixed = soft_permille || hard_permille;

	SHRINKER__ASSERT_MON_HELD();
	wm.soft_permille = fixed ? soft_permille : SHRINKER__SOFT_PERMILLE;
	wm.hard_permille = fixed ? hard_permille : SHRINKER__HARD_PERMILLE;
	wm.fixed = fixed;
}

bool shrinker__watermarks_fixed_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	return wm.fixed;
}

unsigned shrinker__watermarks_state_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	return (wm.watched ? SHRINKER__SOFT_WATCHED : 0) |
	       (wm.unproven ? SHRINKER__SOFT_UNPROVEN : 0) |
	       (wm.slow ? SHRINKER__SOFT_SLOW : 0);
}

void shrinker__watermarks_forget_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	wm.sized = 0;
	wm.watched = false;
}

void shrinker__reaction_seen(uint64_t took, uint64_t now)
{
	if (took >= shrinker__reaction_recent_ns(now)) {
		atomic_store(&reaction_ns, took);
		atomic_store(&reaction_at, now);
	}
}

void shrinker__reaction_forget(void)
{
	atomic_store(&reaction_ns, 0);
}

uint64_t shrinker__reaction_recent_ns(uint64_t now)
{
	uint64_t v = atomic_load_explicit(&reaction_ns, memory_order_relaxed);
	uint64_t at = atomic_load_explicit(&reaction_at, memory_order_relaxed);
	uint64_t halvings = now > at ? (now - at) / REACTION_HALF_LIFE_NS : 0;

	return halvings >= 64 ? 0 : v >> halvings;
}

uint64_t shrinker__reaction_need_ns(unsigned times)
{
	uint64_t t = times * shrinker__reaction_recent_ns(shrinker__now_ns());

	return t < REACTION_MIN_NS ? REACTION_MIN_NS : t > REACTION_MAX_NS ? REACTION_MAX_NS : t;
}

uint64_t shrinker__rate_base(const struct shrinker__binding *b, uint64_t ws)
{
	if (!b->binds)
		return ws;
	return ws > b->active ? ws - b->active : 0;
}

bool shrinker__page_cache_full_locked(const struct shrinker__binding *b, uint64_t ws)
{
	uint64_t ceiling, ceiling_hard;

	SHRINKER__ASSERT_MON_HELD();
	if (!b->binds || b->limit == UINT64_MAX)
		return false;
	shrinker__ceilings_locked(b->limit, &ceiling, &ceiling_hard);
	return b->usage + ceiling >= b->limit &&
	       b->usage > shrinker__rate_base(b, ws) + ceiling_hard;
}

/* Record a state of the soft watermark in *was, and log it when it
 * changes: yes when it holds, no when it no longer does. */
static void note_state(bool *was, bool now, const char *yes, const char *no)
{
	if (now != *was)
		shrinker__debug("%s", now ? yes : no);
	*was = now;
}

/* Whether the program's growth probed the binding cgroup's usage lately
 * and the library may poll (mon lock held): see WATCHED_NS. */
static bool watched_locked(uint64_t now)
{
	uint64_t at = shrinker__growth_cg_probed_ns();

	SHRINKER__ASSERT_MON_HELD();
	return wm.may_watch && at && now - at < WATCHED_NS;
}

bool shrinker__watch_lapsed_locked(uint64_t now)
{
	SHRINKER__ASSERT_MON_HELD();
	return wm.watched && !watched_locked(now);
}

uint64_t shrinker__slow_floor(uint64_t floor, uint64_t most, uint64_t rate,
			      uint64_t self, uint64_t total)
{
	unsigned __int128 f;

	if (!rate || rate >= GIVEBACK_REF_RATE)
		return floor;
	f = (unsigned __int128)floor * GIVEBACK_REF_RATE / rate;
	if (f > most)
		f = most > floor ? most : floor;
	/* Among peers a process gives back its part of a deficit, about its
	 * share of what they hold, while the others give back theirs: the
	 * time a slow one needs is its part's.  32 processes on 2 cores,
	 * each timed slow while waiting for a CPU, had each raised its own
	 * floor to a quarter of the limit: a deficit at 64 MiB of headroom
	 * that the peers above an equal share (their own floor 11 MiB) did
	 * not see, so nobody paid it and the small ones were refused room,
	 * at a few hundred KiB against 50 MiB (bench/analysis.md). */
	if (total && self < total)
		f = floor + (f - floor) * self / total;
	return (uint64_t)f;
}

/* The watermarks for mem->limit (mon lock held): the configured shares
 * when shrinker_set_watermarks() fixed them; otherwise sized by what the
 * reaction needs (see the constants above).  A fixed 10 % kept a
 * tenth of the memory, and a quarter of what a squeezed cache may use,
 * free for growth that mostly never came; the hard watermark keeps its
 * configured ratio to the soft one. */
void shrinker__watermarks_locked(struct shrinker_memory *mem,
				 const struct shrinker__sizing *in, uint64_t now)
{
	uint64_t limit = mem->limit, soft, hard, floor, quantum, t, rate, ceiling;
	bool watched = false, unproven = false, slow = false;
	double need;

	SHRINKER__ASSERT_MON_HELD();
	wm.may_watch = in->may_watch;
	shrinker__ceilings_locked(limit, &mem->soft_watermark, &mem->hard_watermark);
	if (wm.fixed)
		return;
	/* The floor is for a reaction that starts before the limit: a kernel
	 * event at the soft watermark (cgroup v1's thresholds), or memory.high,
	 * where the kernel throttles the allocating threads instead of killing
	 * them.  Without one (cgroup v2 with memory.max only, a budget, the
	 * system's memory), a process that appears and allocates is seen at the
	 * next poll, seconds away when nothing grew, or at the limit, where the
	 * kernel's reclaim gives up within milliseconds: the headroom at rest
	 * is all there is, and the ceiling stays (a 96 MiB cgroup v2 demo was
	 * OOM-killed with the floor) -- unless the program's growth watches
	 * the usage (WATCHED_NS), which is a reaction before the limit too. */
	floor = limit / 1000 * FLOOR_PERMILLE;
	if (!in->early_warning) {
		watched = watched_locked(now);
		if (!watched)
			floor = mem->soft_watermark;
		else if (floor < WATCHED_FLOOR_MIN)
			floor = WATCHED_FLOOR_MIN;
	}
	/* The floor is for caches that give back in time: the ceiling for
	 * caches not timed yet, higher in proportion for slower ones, past the
	 * ceiling if need be (GIVEBACK_REF_RATE). */
	rate = shrinker__giveback_rate();
	ceiling = mem->soft_watermark;
	if (floor < ceiling && !rate) {
		floor = ceiling;
		unproven = true;
	} else if (rate && rate < GIVEBACK_REF_RATE) {
		uint64_t f = shrinker__slow_floor(limit / 1000 * FLOOR_PERMILLE,
						  limit / 1000 * SLOW_MAX_PERMILLE, rate,
						  in->self, in->total);

		if (f > floor) {
			floor = f;
			slow = true;
		}
		if (floor > ceiling)
			ceiling = floor;
	}
	note_state(&wm.unproven, unproven, "soft watermark at its ceiling until a "
		   "request times how fast the caches give memory back",
		   "the caches' give-back is timed: the soft watermark may fall to its floor");
	note_state(&wm.slow, slow, "soft watermark raised for caches that give memory "
		   "back slowly: their give-back is timed anew now and then",
		   "soft watermark no longer raised for a slow give-back");
	t = shrinker__reaction_need_ns(2);
	need = in->rate_slow * (double)t / 1e9;
	soft = need > (double)ceiling ? ceiling : (uint64_t)need;
	/* The steps are for the growth's part, which moves; the floor is
	 * exact (rounded up, 2.5 % of 512 MiB kept 16 MiB, not 12.8, free at
	 * rest: 0.6 % of the limit that the caches could hold). */
	quantum = shrinker__step(limit);
	soft = (soft + quantum - 1) / quantum * quantum;
	if (soft < floor)
		soft = floor;
	if (soft < wm.sized &&
	    (now - wm.sized_ns < SOFT_FALL_EVERY_NS ||
	     now - wm.rose_ns < SOFT_HOLD_NS))
		soft = wm.sized;
	else if (soft < wm.sized) {
		/* Half the way down, a step at least. */
		uint64_t step = (wm.sized - soft) / 2;

		step = (step + quantum - 1) / quantum * quantum;
		if (wm.sized - soft > step)
			soft = wm.sized - step;
	}
	if (soft > wm.sized)
		wm.rose_ns = now;
	/* The ceiling, also for a limit lowered since. */
	if (soft > ceiling)
		soft = ceiling;
	watched = watched && soft < ceiling;
	note_state(&wm.watched, watched, "soft watermark below its ceiling while the "
		   "program's growth probes the cgroup's usage: polling every 10 ms",
		   "soft watermark at its ceiling, or the program's growth stopped "
		   "probing the usage: polling as usual");
	if (soft != wm.sized) {
		shrinker__debug("soft watermark %llu KiB: growth %.1f MiB/s in the last "
				"seconds, reaction %llu ms, floor %llu KiB (give-back %.0f MiB/s)",
				(unsigned long long)soft >> 10, in->rate_slow / 1048576.0,
				(unsigned long long)t / 1000000, (unsigned long long)floor >> 10,
				rate / 1048576.0);
		wm.sized = soft;
		wm.sized_ns = now;
	}
	hard = (uint64_t)((unsigned __int128)soft * wm.hard_permille / wm.soft_permille);
	if (hard < SHRINKER__MIN_HARD)
		hard = SHRINKER__MIN_HARD;
	if (soft < SHRINKER__MIN_SOFT)
		soft = SHRINKER__MIN_SOFT;
	if (soft <= hard)
		soft = hard + SHRINKER__MIN_HARD;
	mem->soft_watermark = soft;
	mem->hard_watermark = hard;
}

