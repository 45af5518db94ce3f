/* SPDX-License-Identifier: MIT */
/*
 * The room to grow (room.c): what the last measurement left, taken by
 * shrinker_may_grow() and fair.c without a lock, and the callbacks'
 * progress that the measurement waits out.  Any thread, no lock, unless
 * said.
 */
#ifndef SHRINKER_ROOM_H
#define SHRINKER_ROOM_H

#include <stdbool.h>
#include <stdint.h>

/* A measurement's figures (mon lock held): headroom (less the holes a
 * trim left), the watermarks, whether we hold less than an equal share
 * of the peers' memory, how many processes of the cgroup share the room
 * (those growing, this one included: each takes its part), and what was
 * granted before it began (no longer counted against it).  They are used
 * once the measurement has set the growth clock
 * (shrinker__growth_measured()); until then, and after the measurement is
 * forgotten, every grant succeeds. */
void shrinker__room_publish(uint64_t headroom, uint64_t soft, uint64_t hard,
			    bool below_share, unsigned parts, uint64_t granted_before);
/* When this process last asked the shared room for growth (granted or
 * refused; a CPU's stock taken from does not count), 0 if never: what
 * peers.c publishes as growing. */
uint64_t shrinker__room_asked_ns(void);
/* What a CPU's stock takes from the room at a time (stock.c). */
uint64_t shrinker__room_batch(void);
/* Granted since the last measurement, or held in the CPUs' stocks. */
uint64_t shrinker__room_granted(void);
/* The room the CPUs' stocks hold, back to the shared figure: at a
 * measurement, and after a shrink. */
void shrinker__room_stocks_return(void);
/* No growth before until_ns (after a shrink), but for a process below its
 * share. */
void shrinker__room_block(uint64_t until_ns);
/* Room to grow by the last measurement: our part of the headroom above
 * the growth band, less what was granted since and what is reserved for
 * particular caches; UINT64_MAX before the first measurement, 0 while
 * blocked. */
uint64_t shrinker__room_left(void);
/* Bytes freed for particular caches (fair.c's credit): not room for the
 * others.  Reserve adds, unreserve takes away, reserved reads. */
void shrinker__room_reserve(uint64_t bytes);
void shrinker__room_unreserve(uint64_t bytes);
uint64_t shrinker__room_reserved(void);
/* shrinker_may_grow(): bytes granted from the room (true), or refused,
 * which may ask for a fresh measurement. */
bool shrinker__room_grant(uint64_t bytes);
/* bytes were granted to a cache (shrinker_may_grow(), or a credit in
 * fair.c): counted as granted growth (not a competitor's, for the
 * watermarks) and on the growth clock. */
void shrinker__granted(uint64_t bytes);

/* A callback is about to run (shrinker__freeing()), and one ended, having
 * freed bytes (shrinker__freed()), and the heap was trimmed after
 * (shrinker__trimmed()): the measurement takes no growth-rate sample in
 * between (measure.c). */
void shrinker__freeing(void);
void shrinker__freed(uint64_t bytes);
void shrinker__trimmed(void);
struct shrinker__callbacks {
	unsigned running;     /* callbacks in progress */
	uint64_t freed_total; /* every callback's freed, cumulative */
	uint64_t freed_ns, trimmed_ns; /* the last free, the last trim */
};
void shrinker__callbacks_read(struct shrinker__callbacks *out);
/* In the child after fork(): the callbacks running at the fork run in
 * the parent. */
void shrinker__callbacks_atfork_child(void);

#endif /* SHRINKER_ROOM_H */
