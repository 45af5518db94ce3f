/* SPDX-License-Identifier: MIT */
/*
 * The monitor (monitor.c), as the reclaimer thread and the rest of the
 * library see it: opening and polling the sources, the decision, the room
 * to grow.  The state and the measurement are in measure.h, the sources'
 * interface in source.h, the growth clock in growth.h, the peers in
 * peers.h.
 */
#ifndef SHRINKER_MONITOR_H
#define SHRINKER_MONITOR_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "3-model/measure.h"
#include "internal.h"
#include "shrinker.h"

/* monitor.c, for the reclaimer thread (lib lock not held unless said). */
void shrinker__monitor_open(void);
void shrinker__monitor_close(void);
unsigned shrinker__monitor_fill(struct pollfd *fds, unsigned max);
int shrinker__monitor_timeout_ms(void);
/* After poll(): handle what fired, measure, decide.  True with *target and
 * *hard when the shrinkers must be asked. */
bool shrinker__monitor_check(const struct pollfd *fds, unsigned n,
			     uint64_t *target, bool *hard);
/* During a request (lib lock held): is the pressure still there?  Returns
 * the bytes still needed, 0 if none. */
uint64_t shrinker__monitor_still_needed(uint64_t remaining);
/* After shrinker_dispatch() ran deferred callbacks and trimmed (no lock
 * held): what they said they freed and what RSS dropped by.  RSS given
 * back beyond what they freed (free pages between live entries) is noted
 * as holes (measure.h), as after the reclaimer's own requests. */
void shrinker__monitor_dispatched(uint64_t freed, uint64_t released);
/* After a request the monitor decided on: what the callbacks said they
 * freed, what RSS really dropped by, the growth clock's count when the
 * request began (shrinker__growth_count()), and whether work was handed to
 * deferred shrinkers whose earlier work the program had dispatched (it
 * frees later, and counts as help now). */
void shrinker__monitor_done(uint64_t target, uint64_t freed, bool hard,
			    uint64_t released, int64_t grown_at_start,
			    bool handed_over);
/* Give back every descriptor and buffer of the monitor (the library is
 * unloaded; its thread has stopped). */
void shrinker__monitor_release(void);
/* fork() handlers, called from the reclaimer's (reclaimer.c, lib lock
 * held): prepare takes the monitor lock, parent releases it, child makes
 * it anew and forgets the parent's descriptors. */
void shrinker__monitor_atfork_prepare(void);
void shrinker__monitor_atfork_parent(void);
void shrinker__monitor_atfork_child(void);
/* Forget the cgroup, the measurement and the budget, so that the next
 * measurement starts over (tests switching fixture trees). */
void shrinker__monitor_forget(void);
/* The API's calls (no lock held): shrinker_get_memory() (looks for the
 * cgroup if not yet, measures; 0 or -ENODATA), shrinker_set_limit(),
 * shrinker_set_watermarks() (checked by the caller), and
 * shrinker_get_source() (index checked by the caller). */
int shrinker__monitor_memory(struct shrinker_memory *ret);
void shrinker__monitor_set_limit(uint64_t bytes);
void shrinker__monitor_set_watermarks(unsigned soft_permille, unsigned hard_permille);
void shrinker__monitor_source(unsigned index, struct shrinker_source_info *ret);
/* Add the monitor's counters to *st (lib lock held). */
void shrinker__monitor_add_stats(struct shrinker_global_stats *st);

/* The decision, pure: from a measurement, the strongest signal and what
 * the growth in progress will take while the shrinkers run (bytes), the
 * target and hardness of the request (false: none). */
bool shrinker__decide(const struct shrinker_memory *mem,
		      enum shrinker__signal sig, uint64_t ahead, uint64_t *target,
		      bool *hard);
/* Whether cgroup v1's thresholds can be moved to the watermarks now, pure.
 * Arming blocks the reclaimer in the kernel for two RCU grace periods
 * (10-50 ms on a busy machine) with no threshold armed: growth that used
 * up the distance to the soft watermark meanwhile would reach the limit
 * unseen, which is how a cache whose trimmed pages fault in again at once
 * beside a competitor taking 200 MiB/s was OOM-killed.  False while 4 times
 * what growth at rate (bytes/s) takes in arm_ns (the longest arming lately,
 * 10 ms at least) is not less than the headroom above the soft watermark,
 * not counting the holes a trim left (the cache's churn may fault them in
 * again at any moment, faster than any rate seen): then the move waits,
 * and timed looks cover the watermark instead (thresholds left at a lower
 * usage only fire early).  *use: those bytes. */
bool shrinker__rearm_in_time(double rate, uint64_t arm_ns, uint64_t headroom,
			     uint64_t holes, uint64_t soft, uint64_t *use);
/* The time the library needs to react: times its slowest recent reaction,
 * from a wake-up to the request's end, 25 ms to 200 ms.  Any thread. */
uint64_t shrinker__reaction_need_ns(unsigned times);

#endif /* SHRINKER_MONITOR_H */
