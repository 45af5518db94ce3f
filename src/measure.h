/* SPDX-License-Identifier: MIT */
/*
 * The monitor's state and the measurement (measure.c): the limits that
 * apply, the working set, the watermarks and the growth rate.  Everything
 * in struct shrinker__mon is protected by its lock (lock order:
 * shrinker__lib.lock, then shrinker__mon.lock), except the atomics, which
 * shrinker_may_grow() reads without any lock.  The sources' descriptors are
 * polled by the reclaimer thread only.
 */
#ifndef SHRINKER_MEASURE_H
#define SHRINKER_MEASURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"
#include "peers.h"
#include "internal.h"
#include "shrinker.h"
#include "source.h"
#include "watermarks.h"

struct shrinker__mon {
	pthread_mutex_t lock;
	struct shrinker__cgroup cg;
	char cg_file[4096];       /* /proc/self/cgroup as last read */
	size_t cg_file_len;

	/* Configuration (the watermarks' is watermarks.c's). */
	bool env_read;
	uint64_t budget;          /* bytes, 0: none */
	unsigned budget_x100;     /* percent * 100 of the detected limit, 0: none */

	/* The last measurement. */
	struct shrinker_memory mem;
	bool have_mem;
	char cg_bind_dir[SHRINKER__PATH_MAX]; /* the cgroup whose limit binds
						 (ours without one): its usage is
						 probed, its thresholds armed, its
						 memory.events watched */
	struct shrinker__binding bind; /* that cgroup's figures */
	struct shrinker__peers peers; /* who else measures the same limit */
	double rate;              /* working-set growth, bytes/s, decaying max */
	double rate_others;       /* the same, less what the library granted */
	double rate_slow;         /* that, halving every half second */
	uint64_t last_granted_total; /* every grant (stock.c) at last_ns */
	uint64_t last_freed_total;   /* freed_total at last_ns */
	uint64_t soft_own;        /* the soft watermark as we sized it, before
				     a peer's larger one (peers.c) */
	uint64_t read_ns;         /* when the last measurement began reading */
	uint64_t calibrate_ns;    /* when monitor.c last asked to time it */
	uint64_t calibrate_every_ns; /* and how long it waits to ask again */
	uint64_t calibrate_first_ns; /* the first wait of that back-off */
	unsigned flat_ms;         /* poll interval while nothing grows */
	uint64_t last_ws, last_ns;
	uint64_t last_rss;        /* our RSS at last_ns, 0: not read */
	uint64_t holes, holes_ns; /* RSS a request gave back beyond what its
				     callbacks freed, not yet faulted in again,
				     and when that was figured (measure.c) */
	uint64_t last_find_ns;    /* when the cgroup was last looked for */
	bool rearm_waits;         /* moving the v1 thresholds waits for the
				     growth to slow (monitor.c) */

	/* No storms. */
	uint64_t holdoff_ns, holdoff_until_ns, hard_not_before_ns;
	uint64_t hard_backoff_ns;  /* after hard requests that did not help */

	int poll_src[SHRINKER__SRC_COUNT]; /* pollfd index -> source */

	/* Read by shrinker_may_grow() without the lock. */
	_Atomic unsigned peers_seen;  /* peers.n, for the statistics */



	/* Counters, added to the global statistics. */
	_Atomic uint64_t events, soft_events, hard_events, held_off, measurements;
};

extern struct shrinker__mon shrinker__mon;

/* How often the monitor polls while nothing grows, and before anything
 * grew (measure.c resets it when growth is seen). */
#define SHRINKER__POLL_FLAT_MS 2000
#define SHRINKER__POLL_START_MS 100

/* Measure and publish (mon lock held): limits, working set, watermarks,
 * rate, the figures shrinker_may_grow() reads, the growth clock's base.
 * -ENODATA if nothing is known. */
int shrinker__measure_locked(struct shrinker__mon *m);
/* The growth rate from ws now (the rate base above; mon lock held): a maximum
 * that halves every 100 ms, taken over at least 10 ms (false: too soon,
 * the sample was not used); and the same less the growth the library
 * granted and our own RSS coming back into holes (rss: our RSS now, 0 if
 * not read), now and over the last second (rate_others, rate_slow). */
bool shrinker__rate_update_locked(struct shrinker__mon *m, uint64_t ws,
				  uint64_t rss, uint64_t now);
/* Holes (mon lock held): a request gave back bytes of RSS more than its
 * callbacks reported freed: free pages between a malloc() heap's live
 * entries, which malloc_trim() returned and the caches' own churn faults
 * in again.  Until it does (or for about a second) they are neither room
 * to grant nor, when they come back, growth by others. */
void shrinker__holes_add_locked(struct shrinker__mon *m, uint64_t bytes, uint64_t now);
/* What is left of them now. */
uint64_t shrinker__holes_locked(struct shrinker__mon *m, uint64_t now);
/* The growth clock's probe reads the binding cgroup's usage (or RSS
 * without a cgroup): at every change of the cgroup (mon lock held). */
void shrinker__probe_follow_locked(struct shrinker__mon *m);
/* Every limit and budget (not the watermarks) forgotten. */
void shrinker__measure_forget_locked(struct shrinker__mon *m);

#endif /* SHRINKER_MEASURE_H */
