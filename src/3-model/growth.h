/* SPDX-License-Identifier: MIT */
/*
 * The growth clock and the brake (growth.c): growth the program reports,
 * between two measurements, and the threads held near the limit.
 */
#ifndef SHRINKER_GROWTH_H
#define SHRINKER_GROWTH_H

#include <stdbool.h>
#include <stdint.h>

/* The growth clock's count of all the growth reported so far. */
int64_t shrinker__growth_count(void);
/* A full measurement happened (mon lock held): restart the clock from
 * its headroom and watermarks; base is the probe's reading that it used
 * (-1: none), use_rss whether the probe reads our RSS instead of the
 * cgroup's usage. */
void shrinker__growth_measured_locked(uint64_t headroom, uint64_t soft, uint64_t hard,
				      int64_t base, bool use_rss);
/* Whether a measurement has set the clock since the start or the last
 * shrinker__growth_forget() (any thread, no lock). */
bool shrinker__growth_measured(void);
/* The binding cgroup changed or was found (mon lock held): the probe reads
 * dir's usage file for a cgroup of version (1 or 2; 0: none, RSS). */
void shrinker__growth_reopen_locked(int version, const char *dir);
/* shrinker_account(): growth of delta bytes reported, and with wait, a
 * thread held while the headroom is below the hard watermark (0, 1 if it
 * was held and let go, -ETIMEDOUT). */
int shrinker__growth_account(int64_t delta, bool wait);
/* Growth of delta bytes (negative: shrinkage) reported by the program. */
void shrinker__growth_note(int64_t delta);
/* A refusal of bytes (> 0): a cache that replaces entries instead may
 * still grow the process through the allocator, so the clock advances as
 * for growth, but the bytes are not counted as allocated and on their way
 * into the next reading (which would make every probe at capacity find
 * the headroom short and wake the reclaimer, 200 times a second). */
void shrinker__growth_churn(int64_t bytes);
/* Whether usage moved less than a step since the last measurement (one
 * probe), with how far (bytes, either way) in *moved; false when it cannot
 * tell. */
bool shrinker__growth_quiet(int64_t *moved);
/* The reclaimer's sources are open (true) or closed: the brake holds
 * threads only while they are. */
void shrinker__growth_arm(bool armed);
/* The last hard request freed nothing (true): braked threads would wait
 * for nothing, and are not held. */
void shrinker__brake_futile(bool futile);
/* What the threads the brake holds reported and will allocate once let go
 * (bytes; any thread, no lock): the decision makes room for it, as OSv's
 * reclaimer frees for the allocations waiting on it. */
uint64_t shrinker__brake_held(void);
/* When the program's growth last probed the binding cgroup's usage file
 * (0: never, or forgotten). */
uint64_t shrinker__growth_cg_probed_ns(void);
/* Forget the measurement and the probes (the cgroup is looked for anew):
 * nothing is braked or probed until the next measurement. */
void shrinker__growth_forget(void);
/* The statistics the growth clock and the brake keep. */
void shrinker__growth_stats(uint64_t *probes, uint64_t *brake_waits,
			    uint64_t *brake_ns);
/* In the child after fork(): the probe lock made anew. */
void shrinker__growth_atfork_child(void);
/* Wake threads the brake holds: the reclaimer made progress. */
void shrinker__brake_kick(void);
/* Per-thread exemption from the brake: the reclaimer thread, a thread in a
 * callback, a thread holding a library lock.  Counted, so nestable. */
void shrinker__brake_exempt(int delta);


#endif /* SHRINKER_GROWTH_H */
