/* SPDX-License-Identifier: MIT */
/*
 * The measurement (measure.c): the cgroup, the limits that apply, the
 * working set, the growth rates, the holes a trim left, the peers.  The
 * struct is measure.c's alone, guarded by the mon lock that it holds
 * (lock order: the lib lock, then the mon lock), but for the
 * atomics, which are statistics; other files read it through
 * shrinker__measured() and change it through the functions below.
 */
#ifndef SHRINKER_MEASURE_H
#define SHRINKER_MEASURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "2-kernel/cgroup.h"
#include "2-kernel/peers.h"
#include "2-kernel/source.h"
#include "3-model/watermarks.h"
#include "internal.h"
#include "shrinker.h"

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
	char cg_top_dir[SHRINKER__PATH_MAX]; /* the level with a limit nearest
						the mount point, empty if none:
						its memory.events are watched */
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
	unsigned flat_ms;         /* poll interval while nothing grows */
	uint64_t last_ws, last_ns;
	uint64_t last_rss;        /* our RSS at last_ns, 0: not read */
	uint64_t holes, holes_ns; /* RSS a request gave back beyond what its
				     callbacks freed, not yet faulted in again,
				     and when that was figured (measure.c) */
	uint64_t last_find_ns;    /* when the cgroup was last looked for */

	/* Statistics, read without the lock. */
	_Atomic unsigned peers_seen;  /* peers.n */
	_Atomic uint64_t measurements;

};

extern struct shrinker__mon shrinker__mon;

/* How often the monitor polls while nothing grows, and before anything
 * grew (measure.c resets it when growth is seen). */
#define SHRINKER__POLL_FLAT_MS 2000
#define SHRINKER__POLL_START_MS 100

/* The mon lock (see internal.h), in wrappers that count its holders:
 * lock, unlock, trylock (whether taken), and in the child after fork()
 * (prepare locked it): made anew, its holder count undone. */
void shrinker__mon_lock(void);
void shrinker__mon_unlock(void);
bool shrinker__mon_trylock(void);
void shrinker__mon_atfork_child(void);
/* The measurement, read only (with the mon lock held): other files change
 * it through the functions below. */
const struct shrinker__mon *shrinker__measured(void);
/* Measure and publish (mon lock held): limits, working set, watermarks,
 * rate, the figures shrinker_may_grow() reads, the growth clock's base.
 * -ENODATA if nothing is known. */
int shrinker__measure_locked(void);
/* A look that found little grown (one probe, no full measurement; mon
 * lock held): the rates follow the working set ws (the rate base) and our
 * RSS (rss, 0 if not read) now, and the poll interval while nothing grows
 * doubles, up to idle_ms. */
void shrinker__measure_quiet_locked(uint64_t ws, uint64_t rss, uint64_t now,
				    unsigned idle_ms);
/* Holes (mon lock held): a request gave back bytes of RSS more than its
 * callbacks reported freed: free pages between a malloc() heap's live
 * entries, which malloc_trim() returned and the caches' own churn faults
 * in again.  Until it does (or for about a second) they are neither room
 * to grant nor, when they come back, growth by others. */
void shrinker__holes_add_locked(uint64_t bytes, uint64_t now);
/* What is left of them now. */
uint64_t shrinker__holes_locked(uint64_t now);
/* Look for the process's cgroup now (mon lock held), and have the growth
 * clock's probe read its usage. */
void shrinker__measure_find_locked(void);
/* The growth clock's probe reads the binding cgroup's usage (or RSS
 * without a cgroup): at every change of the cgroup (mon lock held). */
void shrinker__probe_follow_locked(void);
/* shrinker_set_limit(): a budget of bytes (0: none), over SHRINKER_LIMIT. */
void shrinker__budget_set_locked(uint64_t bytes);
/* In the child after fork(): no peers known yet (mon lock held). */
void shrinker__measure_alone_locked(void);
/* Unloaded: the cgroup forgotten and the probe's file closed. */
void shrinker__measure_release_locked(void);
/* Every limit and budget forgotten, the adaptive watermark too. */
void shrinker__measure_forget_locked(void);

#endif /* SHRINKER_MEASURE_H */
