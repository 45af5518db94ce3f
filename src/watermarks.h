/* SPDX-License-Identifier: MIT */
/*
 * The watermarks (watermarks.c): their defaults and floors, the band above
 * the soft one, and how they are sized.
 */
#ifndef SHRINKER_WATERMARKS_H
#define SHRINKER_WATERMARKS_H

#include <stdint.h>

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

#endif /* SHRINKER_WATERMARKS_H */
