/* SPDX-License-Identifier: MIT */
/* What memory-hog shows: status line, log lines, JSON, the summary. */
#ifndef HOG_DISPLAY_H
#define HOG_DISPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "shrinker.h"

#define HOG_MAX_CACHES 2

struct hog_sample {
	double t;                           /* seconds since start */
	double mono;                        /* CLOCK_MONOTONIC, seconds */
	unsigned ncaches;
	const char *names[HOG_MAX_CACHES];
	struct cache_stats cs[HOG_MAX_CACHES];
	uint64_t cache_total;
	uint64_t rss;
	bool have_mem;
	struct shrinker_memory mem;
	struct shrinker_global_stats g;
};

enum hog_output { HOG_TTY, HOG_LOG, HOG_JSON };

/* Take a sample of everything shown. */
void hog_sample(struct hog_sample *s, struct cache *caches, unsigned n,
		double t);
/* Show the sources once, at start. */
void hog_show_sources(enum hog_output out);
/* Show a sample; prev is the one before (for events), or NULL. */
void hog_show(enum hog_output out, const struct hog_sample *s,
	      const struct hog_sample *prev);

/* Running figures for the summary. */
struct hog_summary {
	double first_shrink_t;   /* -1 if none */
	double cache_time_sum;   /* integral of cache bytes over time */
	double time_sum;
	uint64_t peak_cache;
	double limit_min;        /* smallest effective limit seen */
	const char *mode;
	unsigned threads, rate;
};
void hog_summary_add(struct hog_summary *sum, const struct hog_sample *s,
		     const struct hog_sample *prev);
void hog_show_summary(enum hog_output out, const struct hog_summary *sum,
		      const struct hog_sample *last);
/* The statistics (SIGUSR1). */
void hog_show_stats(const struct hog_sample *s);

#endif
