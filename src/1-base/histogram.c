/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: a small fixed histogram of durations, for the library's own
 * reaction times (shrinker_global_stats).  Values are nanoseconds; the
 * buckets are powers of two split in four, each up to 25 % wider than its
 * lower bound, so a percentile is within a quarter of the truth (HDR
 * histograms do the same with more sub-buckets), in 256
 * counters and no allocation: it is written on the reclaimer thread under
 * the library lock, between a wake-up and a callback.
 */
#include "internal.h"

static unsigned bucket_of(uint64_t v)
{
	unsigned e;

	if (v < 4)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);         /* 2 .. 63 */
	return 4 * (e - 1) + (unsigned)((v >> (e - 2)) & 3);
}

/* The largest value that falls in bucket b. */
static uint64_t bucket_top(unsigned b)
{
	unsigned e, sub;

	if (b < 4)
		return b;
	e = b / 4 + 1;
	sub = b % 4;
	if (e == 63 && sub == 3)
		return UINT64_MAX;
	return ((uint64_t)(4 + sub + 1) << (e - 2)) - 1;
}

void shrinker__hist_add(struct shrinker__hist *h, uint64_t ns)
{
	unsigned b = bucket_of(ns);

	if (h->count[b] != UINT32_MAX)
		h->count[b]++;
	shrinker__sat_add(&h->n, 1);
	if (ns > h->max)
		h->max = ns;
}

uint64_t shrinker__hist_pct(const struct shrinker__hist *h, unsigned pct)
{
	uint64_t want, seen = 0;
	unsigned b;

	if (!h->n)
		return 0;
	want = (h->n * pct + 99) / 100;
	if (!want)
		want = 1;
	for (b = 0; b < SHRINKER__HIST_BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= want)
			return bucket_top(b) < h->max ? bucket_top(b) : h->max;
	}
	return h->max;
}
