/* SPDX-License-Identifier: MIT */
/*
 * The watermarks (watermarks.c): their defaults and floors, the band above
 * the soft one, and how they are sized.
 */
#ifndef SHRINKER_WATERMARKS_H
#define SHRINKER_WATERMARKS_H

#include <stdbool.h>
#include <stdint.h>

#include "shrinker.h"

/* Defaults and floors of the watermarks. */
#define SHRINKER__SOFT_PERMILLE 100 /* OSv's low watermark: 10 % of memory */
#define SHRINKER__HARD_PERMILLE 50
#define SHRINKER__MIN_SOFT (4ull << 20)
#define SHRINKER__MIN_HARD (2ull << 20)

/* The band above a soft watermark: a quarter of it.  A shrink frees back
 * to its top (shrinker__decide()) and growth stops there
 * (shrinker__room_left()), so that caches settle inside it instead of
 * growing into the next shrink; a process below its share grows as far
 * below the watermark instead; the 10 ms looks of a watched cgroup begin
 * at the top of the ceiling's band (shrinker__monitor_timeout_ms()). */
static inline uint64_t shrinker__band(uint64_t soft)
{
	return soft / 4;
}

/* A step of the watermarks for a limit: a 128th of it, 1 MiB at least.
 * The growth's part of the soft watermark moves by it, and it is the size
 * of the request that times the caches' give-back (monitor.c). */
static inline uint64_t shrinker__step(uint64_t limit)
{
	return limit / 128 > (1ull << 20) ? limit / 128 : (1ull << 20);
}

/* The watermarks in bytes for a limit and shares of it (the one formula:
 * the monitor's and the cgroup v1 thresholds'). */
void shrinker__watermarks(uint64_t limit, unsigned soft_permille,
			  unsigned hard_permille, uint64_t *soft, uint64_t *hard);

/* The rest holds the configuration and the adaptive soft watermark, which
 * the mon lock guards (measure.h): call with it held. */

/* The watermarks at the configured shares of limit: the ceilings. */
void shrinker__ceilings_locked(uint64_t limit, uint64_t *soft, uint64_t *hard);
/* shrinker_set_watermarks(): fixed shares (permille, checked by the
 * caller), or 0, 0 for the adaptive default. */
void shrinker__watermarks_configure_locked(unsigned soft_permille, unsigned hard_permille);
bool shrinker__watermarks_fixed_locked(void);

/* The binding cgroup as the last measurement found it (measure.c). */
struct shrinker__binding {
	bool binds;      /* its limit is the effective one */
	uint64_t limit;  /* its own limit, UINT64_MAX if none */
	uint64_t usage;  /* its raw usage, page cache included */
	uint64_t active; /* its active page cache */
};
/* What the growth rates follow: the working set ws, less the cgroup's
 * active page cache when its limit binds.  Where page cache fills the
 * cgroup, another process that grows takes page cache first, the kernel
 * moves active pages to the inactive list to make up for it, and the
 * working set (usage less inactive file pages) does not move until the
 * page cache is gone: then at once, at the limit.  Anonymous memory shows
 * that growth from its first page; and the program's own file reads, which
 * fill active page cache, are not taken for others' growth.  Pure. */
uint64_t shrinker__rate_base(const struct shrinker__binding *b, uint64_t ws);
/* Whether page cache fills the binding cgroup (ws, the working set
 * measured): its usage within the ceiling's reach of the limit and more
 * than the hard ceiling of it page cache (a database read from disk).
 * There the usage no longer moves when another process grows (the kernel
 * gives it page cache), and cgroup v1's usage thresholds were crossed long
 * ago: only memory.stat shows that growth. */
bool shrinker__page_cache_full_locked(const struct shrinker__binding *b, uint64_t ws);

/* What sizes the soft watermark besides the limit. */
struct shrinker__sizing {
	double rate_slow;   /* the growth not granted, lately (bytes/s) */
	bool early_warning; /* the kernel warns before the limit kills */
	bool may_watch;     /* a cgroup limit binds and the library may poll
			       it while the program's growth probes it */
	uint64_t self, total; /* among peers (peers.c): our resident bytes and
				 all of theirs together; 0, 0 when alone */
};
/* The soft watermark's floor for caches that give back at rate bytes/s
 * (0: not timed), from floor, the floor for caches as fast as the
 * reference, and most, the highest it may be: floor times the reference
 * over the rate, and among peers only our part of the rise, self over
 * total (each gives back its part of a deficit, at the same time as the
 * others). */
uint64_t shrinker__slow_floor(uint64_t floor, uint64_t most, uint64_t rate,
			      uint64_t self, uint64_t total);
/* Set mem's watermarks for mem->limit (now, CLOCK_MONOTONIC ns): fixed
 * shares, or sized by the reaction. */
void shrinker__watermarks_locked(struct shrinker_memory *mem,
				 const struct shrinker__sizing *in, uint64_t now);
/* The soft watermark's state, as the last sizing left it. */
#define SHRINKER__SOFT_WATCHED 1u  /* below its ceiling because the program's
				      growth probes the usage: look every
				      10 ms */
#define SHRINKER__SOFT_UNPROVEN 2u /* at its ceiling until a request times the
				      caches' give-back */
#define SHRINKER__SOFT_SLOW 4u     /* raised for a slow give-back */
unsigned shrinker__watermarks_state_locked(void);
/* The soft watermark is below its ceiling because the program's growth
 * probed the cgroup's usage, and it has stopped doing so: the next look
 * must measure, so that the watermark goes back up. */
bool shrinker__watch_lapsed_locked(uint64_t now);
/* The adaptive soft watermark forgotten (the cgroup is looked for anew). */
void shrinker__watermarks_forget_locked(void);

/* The reaction (any thread, no lock): a request pressure caused took took
 * ns from the wake-up to its end; the slowest recent one, halving every
 * second since it was seen (now, CLOCK_MONOTONIC ns); and the time the
 * library needs to react, times that, 25 ms to 200 ms. */
void shrinker__reaction_seen(uint64_t took, uint64_t now);
void shrinker__reaction_forget(void);
uint64_t shrinker__reaction_recent_ns(uint64_t now);
uint64_t shrinker__reaction_need_ns(unsigned times);

#endif /* SHRINKER_WATERMARKS_H */
