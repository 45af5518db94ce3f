/* SPDX-License-Identifier: MIT */
/* Worker threads that use the caches at a steady rate. */
#ifndef HOG_WORKERS_H
#define HOG_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

struct cache;

/* Start n threads, each doing rate operations per second on the caches
 * (a lookup, and an insert on a miss), until workers_stop(). */
bool workers_start(struct cache *caches, unsigned ncaches, unsigned n,
		   unsigned rate, uint64_t seed);
void workers_stop(void);

#endif
