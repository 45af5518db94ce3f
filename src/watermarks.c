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
 * limit), and one not timed yet the ceiling, until the first request times
 * it (monitor.c asks for a small one when the caches first fill up to the
 * watermark).  The hard watermark keeps its configured ratio to the soft
 * one.
 * shrinker_set_watermarks() fixes both to shares of the limit (the one
 * formula, shrinker__watermarks(), also sizes cgroup v1's thresholds for a
 * limit that does not bind).
 */
#define _GNU_SOURCE
#include <string.h>

#include "growth.h"
#include "measure.h"
#include "monitor.h"

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

uint64_t shrinker__reaction_recent_ns(uint64_t now)
{
	uint64_t v = atomic_load_explicit(&shrinker__lib.reaction_recent_ns,
					  memory_order_relaxed);
	uint64_t at = atomic_load_explicit(&shrinker__lib.reaction_recent_at,
					   memory_order_relaxed);
	uint64_t halvings = now > at ? (now - at) / REACTION_HALF_LIFE_NS : 0;

	return halvings >= 64 ? 0 : v >> halvings;
}

uint64_t shrinker__reaction_need_ns(unsigned times)
{
	uint64_t t = times * shrinker__reaction_recent_ns(shrinker__now_ns());

	return t < REACTION_MIN_NS ? REACTION_MIN_NS : t > REACTION_MAX_NS ? REACTION_MAX_NS : t;
}

uint64_t shrinker__rate_base_locked(const struct shrinker__mon *m, uint64_t ws)
{
	uint64_t active = m->cg_active;

	SHRINKER__ASSERT_MON_HELD();
	if (!m->cg_binding)
		return ws;
	return ws > active ? ws - active : 0;
}

bool shrinker__page_cache_full_locked(const struct shrinker__mon *m, uint64_t ws)
{
	uint64_t ceiling, ceiling_hard;

	SHRINKER__ASSERT_MON_HELD();
	if (!m->cg_binding || m->cg_limit == UINT64_MAX)
		return false;
	shrinker__watermarks(m->cg_limit, m->soft_permille, m->hard_permille,
			     &ceiling, &ceiling_hard);
	return m->cg_usage + ceiling >= m->cg_limit &&
	       m->cg_usage > shrinker__rate_base_locked(m, ws) + ceiling_hard;
}

/* Whether the kernel says something before the limit kills (mon lock
 * held): cgroup v1 usage thresholds on the binding cgroup (armed for the
 * limit, or for the one before it: a limit that moved is seen by the
 * measurement that sizes these watermarks, and the thresholds are re-armed
 * at them as it ends; judged by the exact limit, each lowered limit put
 * the soft watermark at its ceiling, and a shrink of a tenth of the cgroup
 * followed, for a deficit of a few MiB), unless
 * page cache fills it (they watch the usage, page cache included, and were
 * crossed long ago: nothing fires when another process eats that page
 * cache and then the caches' room), or a cgroup v2 memory.high as the
 * binding limit. */
static bool early_warning_locked(const struct shrinker__mon *m,
				 const struct shrinker_memory *mem)
{
	SHRINKER__ASSERT_MON_HELD();
	if (m->cg.version == 1)
		return m->cg_binding && m->src[SHRINKER__SRC_CGV1_THRESHOLD].active &&
		       !shrinker__page_cache_full_locked(m, mem->working_set);
	return m->cg_binding && strstr(mem->limit_source, "memory.high") != NULL;
}

/* Record a state of the soft watermark in *was, and log it when it
 * changes: yes when it holds, no when it no longer does. */
static void note_state(bool *was, bool now, const char *yes, const char *no)
{
	if (now != *was)
		shrinker__debug("%s", now ? yes : no);
	*was = now;
}

/* Here rather than in monitor-cgv1.c, which arms them from the
 * watermarks: the watermarks only read the thresholds' state. */
bool shrinker__cgv1_armed_locked(const struct shrinker__mon *m)
{
	const struct shrinker__source *thr = &m->src[SHRINKER__SRC_CGV1_THRESHOLD];

	SHRINKER__ASSERT_MON_HELD();
	return m->cg_binding && m->cg.version == 1 && thr->active &&
	       thr->armed_limit == m->cg_limit;
}

/* Whether the program's growth probed the binding cgroup's usage lately
 * and the library may poll (mon lock held): see WATCHED_NS. */
static bool watched_locked(const struct shrinker__mon *m, uint64_t now)
{
	uint64_t at = shrinker__growth_cg_probed_ns();

	SHRINKER__ASSERT_MON_HELD();
	return m->cg_binding && !(m->sources_off & (1u << SHRINKER__SRC_POLL)) &&
	       at && now - at < WATCHED_NS;
}

bool shrinker__watch_lapsed_locked(const struct shrinker__mon *m, uint64_t now)
{
	SHRINKER__ASSERT_MON_HELD();
	return m->soft_watched && !watched_locked(m, now);
}

/* The watermarks for mem->limit (mon lock held): the configured shares
 * when shrinker_set_watermarks() fixed them; otherwise sized by what the
 * reaction needs (see the constants above).  A fixed 10 % kept a
 * tenth of the memory, and a quarter of what a squeezed cache may use,
 * free for growth that mostly never came; the hard watermark keeps its
 * configured ratio to the soft one. */
void shrinker__watermarks_locked(struct shrinker__mon *m, struct shrinker_memory *mem,
				  uint64_t now)
{
	uint64_t limit = mem->limit, soft, hard, floor, quantum, t, rate, ceiling;
	bool watched = false, unproven = false, slow = false;
	double need;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__watermarks(limit, m->soft_permille, m->hard_permille,
			     &mem->soft_watermark, &mem->hard_watermark);
	if (m->watermarks_fixed)
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
	if (!early_warning_locked(m, mem)) {
		watched = watched_locked(m, now);
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
		unsigned __int128 f = (unsigned __int128)(limit / 1000 * FLOOR_PERMILLE) *
				      GIVEBACK_REF_RATE / rate;
		uint64_t most = limit / 1000 * SLOW_MAX_PERMILLE;

		if (f > most)
			f = most;
		if (f > floor) {
			floor = (uint64_t)f;
			slow = true;
		}
		if (floor > ceiling)
			ceiling = floor;
	}
	note_state(&m->soft_unproven, unproven, "soft watermark at its ceiling until a "
		   "request times how fast the caches give memory back",
		   "the caches' give-back is timed: the soft watermark may fall to its floor");
	note_state(&m->soft_slow, slow, "soft watermark raised for caches that give memory "
		   "back slowly: their give-back is timed anew now and then",
		   "soft watermark no longer raised for a slow give-back");
	t = shrinker__reaction_need_ns(2);
	need = m->rate_slow * (double)t / 1e9;
	soft = need > (double)ceiling ? ceiling : (uint64_t)need;
	/* The steps are for the growth's part, which moves; the floor is
	 * exact (rounded up, 2.5 % of 512 MiB kept 16 MiB, not 12.8, free at
	 * rest: 0.6 % of the limit that the caches could hold). */
	quantum = shrinker__step(limit);
	soft = (soft + quantum - 1) / quantum * quantum;
	if (soft < floor)
		soft = floor;
	if (soft < m->soft_sized &&
	    (now - m->soft_sized_ns < SOFT_FALL_EVERY_NS ||
	     now - m->soft_rose_ns < SOFT_HOLD_NS))
		soft = m->soft_sized;
	else if (soft < m->soft_sized) {
		/* Half the way down, a step at least. */
		uint64_t step = (m->soft_sized - soft) / 2;

		step = (step + quantum - 1) / quantum * quantum;
		if (m->soft_sized - soft > step)
			soft = m->soft_sized - step;
	}
	if (soft > m->soft_sized)
		m->soft_rose_ns = now;
	/* The ceiling, also for a limit lowered since. */
	if (soft > ceiling)
		soft = ceiling;
	watched = watched && soft < ceiling;
	note_state(&m->soft_watched, watched, "soft watermark below its ceiling while the "
		   "program's growth probes the cgroup's usage: polling every 10 ms",
		   "soft watermark at its ceiling, or the program's growth stopped "
		   "probing the usage: polling as usual");
	if (soft != m->soft_sized) {
		shrinker__debug("soft watermark %llu KiB: growth %.1f MiB/s in the last "
				"seconds, reaction %llu ms, floor %llu KiB (give-back %.0f MiB/s)",
				(unsigned long long)soft >> 10, m->rate_slow / 1048576.0,
				(unsigned long long)t / 1000000, (unsigned long long)floor >> 10,
				rate / 1048576.0);
		m->soft_sized = soft;
		m->soft_sized_ns = now;
	}
	hard = (uint64_t)((unsigned __int128)soft * m->hard_permille / m->soft_permille);
	if (hard < SHRINKER__MIN_HARD)
		hard = SHRINKER__MIN_HARD;
	if (soft < SHRINKER__MIN_SOFT)
		soft = SHRINKER__MIN_SOFT;
	if (soft <= hard)
		soft = hard + SHRINKER__MIN_HARD;
	mem->soft_watermark = soft;
	mem->hard_watermark = hard;
}

