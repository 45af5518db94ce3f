/* SPDX-License-Identifier: MIT */
/*
 * Private structures of libshrinker, the layers, the lock order and the
 * invariants.
 *
 * Layers: src/N-name/ is layer N, from the bottom.  A file calls into its
 * own layer and those below, never up, and includes headers the same way,
 * by their layer's path ("3-model/measure.h"); tests/test-layers.sh checks
 * both (scripts/check-layers.pl), and farm-studio look src draws no circle
 * and no arrow that runs back up.  Each file's declarations are in its own
 * header, or here under its name.
 *  1-base: util.c (clock, log, eventfds, RSS, trim), wake.c (the
 *     reclaimer's wake-up, and the ask for a fresh measurement), stock.c
 *     (per-CPU stocks for the hot calls), parse.c, histogram.c, files.c;
 *  2-kernel, what the kernel and the peers say: cgroup.c, peers.c,
 *     source.c (the sources' table and life cycle), returned.c;
 *  3-model: growth.c (growth clock, brake), watermarks.c, room.c (the
 *     room to grow), measure.c (the measurement and the mon lock);
 *  4-monitor: the pressure sources of each kind, monitor-*.c, and
 *     monitor.c (their glue, the decision);
 *  5-registry: registry.c (the list, the lib lock, one call, dispatch);
 *  6-engine: fair.c, reclaimer.c (rounds, the thread, the requests);
 *  7-api: the public API, every exported function with its argument
 *     checks: api.c, and lifecycle.c (registration);
 *  8-cache: the cache container of shrinker-cache.h, a user of the
 *     public API (8-cache/private.h has its structures and rules).
 *
 * Locks (take them in this order; never hold one while calling user code):
 *  1. the lib lock        (registry.c's, taken through shrinker__lock())
 *                          the registry, the request queue, the statistics,
 *                          the thread state.  One mutex for the library:
 *                          every critical section under it is short and
 *                          allocation-free, except registration itself.
 *  2. shrinker__mon.lock   (the mon lock, measure.c's, taken through
 *                          shrinker__mon_lock()) the measurement
 *                          (measure.c), the watermarks' configuration and
 *                          sizing (watermarks.c), the sources' table
 *                          (source.c) and the monitor's own state
 *                          (monitor.c).
 *  3. growth_clock.probe_lock  (growth.c) the growth clock's
 *                          probe: its file, base and recent growth.  Taken
 *                          inside malloc (the brake): nothing under it
 *                          allocates or takes another lock.
 *  4. brake_lock           (growth.c) the brake's condition variable; held
 *                          for the wait and the kick only, never while
 *                          taking another lock.
 *  5. shard_lock, then 6. queue_lock (8-cache, the container's: one per
 *                          shard of a cache, one per cache; see
 *                          8-cache/private.h).  Neither is held while
 *                          the library is called, but for
 *                          shrinker_set_size(), which takes no lock.
 *  Each lock counts its holders per thread in its wrappers only
 *  (shrinker__lock(), shrinker__mon_lock(), probe_take() and their kin),
 *  and every function named *_locked asserts the lock it needs
 *  (SHRINKER__ASSERT_LIB_HELD(), _MON_HELD(), _PROBE_HELD());
 *  tests/test-locked.sh checks both.
 *  Atomics need no lock: shrinker->size, shrinker->size_known, and the
 *  figures shrinker_may_grow() reads.
 *
 * State: each file owns its state, file-static, the guarding lock written
 * beside each field, and others reach it through its functions.  The one
 * global struct, the measurement (shrinker__mon), is named in src/ only
 * by measure.c, which tests/test-locked.sh checks; the tests read and set
 * its fields.
 *
 * Invariants:
 *  - A shrinker is in the list from registration until it is freed.  It is
 *    freed only when busy == false, by shrinker_unregister() or, if it was
 *    unregistered from inside its own callback (dead == true), by whoever
 *    clears busy.
 *  - busy == true for exactly as long as one call of the shrinker is running
 *    (on the reclaimer thread, or in shrinker_dispatch() on some thread).  A
 *    thread that finds busy set skips the shrinker: no shrinker ever runs
 *    concurrently with itself.  While busy, the node cannot be freed, so the
 *    caller may drop the lock, call, retake the lock and step to node->next.
 *  - Only the reclaimer thread reads or writes share (under lock).
 *    freed_none is reset by the reclaimer at each request and set by whoever makes a
 *    call that freed nothing (shrinker__call_locked(), on the reclaimer or
 *    in shrinker_dispatch()), under lock; only the reclaimer reads it.
 *  - room.c's reserved == the sum of every shrinker's credit, and
 *    want_total == the sum of their want (under lock; reserved is also read
 *    without it).
 *  - No heap allocation happens from the moment the reclaimer thread picks up
 *    a request until the shrinkers have been called.
 */
#ifndef SHRINKER_INTERNAL_H
#define SHRINKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shrinker.h"

#define SHRINKER_EXPORT __attribute__((visibility("default")))

typedef size_t (*shrinker__osv_fn)(size_t target, bool hard);

struct shrinker {
	/* Immutable after registration. */
	char name[SHRINKER_NAME_MAX + 1];
	shrinker_fn fn;            /* NULL for an OSv shrinker */
	shrinker__osv_fn osv_fn;   /* set for an OSv shrinker */
	void *userdata;
	unsigned flags;

	/* Reported by the cache; read without the lock. */
	_Atomic uint64_t size;
	atomic_bool size_known;

	/* Under the lib lock. */
	struct shrinker *prev, *next;
	bool active;
	bool busy;                 /* a call is running */
	bool dead;                 /* unregistered from inside its own call */
	pthread_t caller;          /* the thread running the call, while busy */
	uint64_t pending;          /* deferred bytes not yet dispatched */
	bool pending_hard;
	uint64_t share;            /* this round's part of the target */
	bool freed_none;                /* freed nothing in this request */
	uint64_t call_target;      /* the target of the running call */
	uint64_t calls, hard_calls, bytes_asked, bytes_freed, last_call_ns;
	/* Fairness between caches (fair.c): what this cache asked to take
	 * from caches above their fair share, not yet served; what was freed
	 * for it and not used yet (in room.c's reserved too), since
	 * when; and what it took and gave in all; the size of its next
	 * ask (0: the smallest), doubled when it used a credit in time,
	 * halved when one lapsed. */
	uint64_t want, credit, credit_ns, taken, given, chunk;
	_Atomic uint64_t fair_look_ns; /* last look after a refusal */
	/* Of the bytes it reports freed, the thousandths that come back as
	 * RSS (returned.c); whether a call was measured yet; the RSS its
	 * measured calls gave back. */
	unsigned returned_permille;
	bool returned_seen;
	uint64_t rss_returned;
	uint64_t req_freed;        /* freed in the request or dispatch measured now */
};

/* Who a descriptor of ours is (fstat's st_dev, st_ino, file type), so that
 * one the program closed, and perhaps reused for a file of its own, is
 * noticed before the library reads, writes or closes it.  (All eventfds
 * share one anonymous inode: for them this tells an eventfd-like
 * descriptor from the program's files, sockets and pipes.) */
struct shrinker__fdid {
	uint64_t dev, ino;
	unsigned type;
	bool valid;
};
void shrinker__fdid_take(int fd, struct shrinker__fdid *id);
bool shrinker__fdid_same(int fd, const struct shrinker__fdid *id);


/* histogram.c: durations in ns, kept within a quarter (buckets up to 25 %
 * wide). */
#define SHRINKER__HIST_BUCKETS 256
struct shrinker__hist {
	uint32_t count[SHRINKER__HIST_BUCKETS];
	uint64_t n, max;
};
void shrinker__hist_add(struct shrinker__hist *h, uint64_t ns);
/* The pct-th percentile (an upper bound within the bucket), 0 if empty. */
uint64_t shrinker__hist_pct(const struct shrinker__hist *h, unsigned pct);

/* How many served batches of requests are remembered for SHRINKER_WAIT. */
#define SHRINKER__SERVED_RING 8


/* Lock assertions, the kernel's lockdep_assert_held() habit: a function
 * named *_locked checks that its thread holds the lock it needs.  Each lock
 * counts its holders per thread (a thread waiting on a condition variable
 * still counts: it holds the lock again before it runs).  Compiled out with
 * NDEBUG. */
extern _Thread_local unsigned shrinker__lib_held, shrinker__mon_held;
#ifdef NDEBUG
#define SHRINKER__ASSERT_LIB_HELD() ((void)0)
#define SHRINKER__ASSERT_MON_HELD() ((void)0)
#else
#include <assert.h>
#define SHRINKER__ASSERT_LIB_HELD() assert(shrinker__lib_held > 0)
#define SHRINKER__ASSERT_MON_HELD() assert(shrinker__mon_held > 0)
#endif

/* util.c */
/* CLOCK_MONOTONIC, plus what the unit tests moved the library's clock
 * ahead by (shrinker__clock_ahead_ns, only ever raised; 0 in programs),
 * so that a test of what happens over time advances time instead of
 * sleeping and hoping the machine keeps up. */
extern _Atomic uint64_t shrinker__clock_ahead_ns;
uint64_t shrinker__now_ns(void);

/* *a += b, stopping at UINT64_MAX: counters saturate, never wrap. */
static inline void shrinker__sat_add(uint64_t *a, uint64_t b)
{
	*a = *a > UINT64_MAX - b ? UINT64_MAX : *a + b;
}
void shrinker__debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Turn the debug lines on (1) or off (0) whatever SHRINKER_DEBUG says; -1
 * reads it again (the tests). */
void shrinker__debug_set(int level);
int shrinker__eventfd_signal(int fd);
void shrinker__eventfd_drain(int fd);
/* Give fd's number a new, unshared eventfd (after fork()); fd if none can
 * be made, or another number if fd's cannot be reused. */
int shrinker__eventfd_renew(int fd);
/* Resident set size of this process in bytes, from /proc/self/statm, read
 * into a stack buffer (no allocation); 0 if it cannot be read. */
uint64_t shrinker__rss_bytes(void);
/* An absolute CLOCK_REALTIME deadline ns from now: the clock of the
 * condition variables and of pthread_mutex_timedlock(). */
void shrinker__deadline_in(struct timespec *ts, uint64_t ns);
/* Drop the kept-open /proc/self/statm (after fork(): it is the parent's). */
void shrinker__rss_forget(void);
/* Return freed heap memory to the system (malloc_trim(0) on glibc). */
bool shrinker__trim(void);

/* registry.c */
/* The API's calls on the registry: shrinker_set_size() (s not NULL),
 * shrinker_get_fd(), shrinker_dispatch() (the calls made), and
 * shrinker_get_stats() (s not NULL). */
void shrinker__set_size(struct shrinker *s, uint64_t bytes);
int shrinker__dispatch_fd(void);
int shrinker__dispatch(void);
void shrinker__stats_of(const struct shrinker *s, struct shrinker_stats *ret);
void shrinker__lock(void);
void shrinker__unlock(void);
/* Take the lock by *until (NULL: only if it is free at once); whether it
 * was taken.  Unlock with shrinker__unlock(). */
bool shrinker__lock_until(const struct timespec *until);
/* In the child of a fork, where the lock the parent's prepare handler took
 * was made anew (unlocked): this thread holds it no more. */
void shrinker__lock_forget(void);
/* Call s with the lock held; drops it during the callback, takes it back.
 * s->busy must be false on entry.  Returns the bytes freed (counted as
 * given to another cache if for_other, fair.c) and writes the node that
 * followed s when the call ended into *next and, if credit is not NULL,
 * the resident bytes the freed bytes stand for (returned.c).  If s
 * was unregistered from inside its callback it is freed here: the caller
 * must not touch s after this returns. */
uint64_t shrinker__call_locked(struct shrinker *s, uint64_t target, bool hard,
			       bool for_other, struct shrinker **next, uint64_t *credit);
/* Whether no call may start now (lock held): exit() began, or fork() is
 * being prepared. */
bool shrinker__calls_barred_locked(void);
/* The registry's parts the reclaimer uses (lock held unless said): the
 * number of shrinkers; wake the threads waiting for a change, or wait for
 * one until a CLOCK_REALTIME deadline (0, or ETIMEDOUT); fork() is being
 * prepared (no call starts); exit() began (no lock; begin returns whether
 * it had already); in the fork child, the lock and condition made anew
 * (no lock: the only thread); the deferred work's eventfd closed
 * (unloading) or made anew (fork child); the registry's statistics (the
 * calls', the trims') copied into *st; and this thread is the reclaimer
 * (set as it starts, no lock). */
uint64_t shrinker__count_locked(void);
void shrinker__changed_locked(void);
int shrinker__wait_changed_until_locked(const struct timespec *until);
bool shrinker__forking_locked(void);
void shrinker__forking_set_locked(bool forking);
bool shrinker__exiting(void);
bool shrinker__exiting_begin(void);
void shrinker__registry_atfork_child(void);
void shrinker__dispatch_close_locked(void);
void shrinker__dispatch_atfork_child_locked(void);
void shrinker__registry_stats_locked(struct shrinker_global_stats *st);
void shrinker__registry_on_reclaimer(void);
/* The first registered shrinker (lock held); the list goes on by ->next. */
struct shrinker *shrinker__first_locked(void);
/* Wait until a call ends or a request is served (lock held; dropped
 * while waiting). */
void shrinker__wait_changed_locked(void);
/* Link s at the registry's tail (lock held; lifecycle.c). */
void shrinker__list_add_tail_locked(struct shrinker *s);
/* Unlink s from the registry (lock held); the caller frees it. */
void shrinker__list_del_locked(struct shrinker *s);
/* Whether this is the reclaimer thread (lock held). */
bool shrinker__on_reclaimer_thread_locked(void);
/* After shrinkers freed (no lock held): malloc_trim(), then RSS read again
 * and the trim, RSS before (rss_before) and after, and the difference
 * recorded in the statistics.  Returns the bytes RSS fell by. */
uint64_t shrinker__trim_and_record(uint64_t rss_before);
/* Whether a deferred shrinker has work the program has not dispatched yet
 * (lock held). */
bool shrinker__any_pending_locked(void);
/* Make sure the dispatch eventfd is readable (lock held). */
void shrinker__dispatch_signal_locked(void);

/* returned.c: bytes reported freed against resident memory given back
 * (lock held).  A request (deferred false: the reclaimer's, of the native
 * shrinkers) or a dispatch (true: of the deferred ones) begins, then
 * settles with what RSS fell by from before its first callback to after
 * its trim; the drop is shared among the shrinkers of list (the
 * registry's, from its first) that freed (req_freed, added by
 * shrinker__call_locked()). */
void shrinker__returned_begin_locked(struct shrinker *list, bool deferred);
void shrinker__returned_settle_locked(struct shrinker *list, bool deferred,
				     uint64_t rss_drop);
/* s's figure in thousandths (the process's until s was measured). */
unsigned shrinker__returned_permille_locked(const struct shrinker *s);
/* The RSS every measured call gave back, in all (lock held). */
uint64_t shrinker__returned_rss_total_locked(void);
unsigned shrinker__returned_process_locked(void);
/* The bytes to ask s for so that resident bytes come back (at most what it
 * holds), and the resident bytes that freed reported bytes stand for. */
uint64_t shrinker__returned_ask_locked(const struct shrinker *s, uint64_t resident);
uint64_t shrinker__returned_credit_locked(const struct shrinker *s, uint64_t freed);
/* How fast the process gives memory back, bytes per second of a request
 * or dispatch from its first callback to its trim (0: not measured yet).
 * Any thread, no lock. */
uint64_t shrinker__giveback_rate(void);
/* When a request or dispatch last timed it (shrinker__now_ns(); 0: never).
 * Any thread, no lock. */
uint64_t shrinker__giveback_timed_ns(void);
extern _Atomic uint64_t shrinker__giveback, shrinker__giveback_at;

/* stock.c: per-CPU stocks of room to grow and counts of growth, for the hot
 * calls.  Any thread, no lock, nothing allocated. */
/* The CPUs the process may run on (1 to 64: the slots in use). */
unsigned shrinker__stock_cpus(void);
/* Take bytes of room from this CPU's stock (true); false if it holds
 * less. */
bool shrinker__stock_take(uint64_t bytes);
/* Put bytes of room (taken from the shared figure) in this CPU's stock. */
void shrinker__stock_put(uint64_t bytes);
/* Empty every CPU's room stock; returns what they held. */
uint64_t shrinker__stock_drain(void);
/* Count bytes granted in this CPU's slot, and every slot's grants,
 * cumulative (wrapping: read it as a difference). */
void shrinker__stock_granted(uint64_t bytes);
uint64_t shrinker__stock_granted_total(void);
/* Add growth (and of it, refused churn) to this CPU's pending figures; once
 * the pending growth reaches flush, true with both taken out into *grown
 * and *churn for the growth clock. */
bool shrinker__stock_grow(int64_t grown, int64_t churn, int64_t flush,
			  int64_t *grown_out, int64_t *churn_out);
/* Take out every slot's pending growth and churn; their pending growth,
 * left in place. */
void shrinker__stock_grown_drain(int64_t *grown_out, int64_t *churn_out);
int64_t shrinker__stock_grown_pending(void);

/* wake.c: the reclaimer's wake-up eventfd. */
/* Wake the reclaimer thread (any context, no lock needed). */
void shrinker__reclaimer_wake(void);
/* The descriptor the reclaimer polls, -1 if none yet. */
int shrinker__wake_fd(void);
/* Whether fd is still our eventfd: looked at only when suspect or when a
 * waker found it foreign since the last look; true otherwise. */
bool shrinker__wake_ours(int fd, bool suspect);
/* Drain fd if it is ours; false if it is not. */
bool shrinker__wake_drain(int fd);
/* A new eventfd (its descriptor, or -1), and closing it if it is ours:
 * the reclaimer's start, stop and repair, lock held. */
int shrinker__wake_renew(void);
void shrinker__wake_close(void);
/* In the child after fork(): an eventfd of its own under the same number. */
void shrinker__wake_atfork_child(void);
/* A fresh measurement is asked for (the room ran out, a setting changed,
 * the growth clock's estimate reached the watermark): the reclaimer
 * measures at its next look instead of waiting for its timeout.  ask sets
 * the flag and wakes the reclaimer; ask_once wakes it only if the flag was
 * not set yet; the reclaimer reads the flag and clears it as it measures.
 * Any thread, no lock. */
void shrinker__measure_ask(void);
void shrinker__measure_ask_once(void);
bool shrinker__measure_asked(void);
void shrinker__measure_asked_clear(void);

/* fair.c */
/* shrinker_may_grow_cache() for a cache s: its credit, the room, or a
 * request to take from the caches above their fair share (false). */
bool shrinker__fair_grant(struct shrinker *s, uint64_t bytes);
/* shrinker_get_capacity(): 0, or -ENODATA before s said its size. */
int shrinker__fair_capacity(const struct shrinker *s, uint64_t *ret);
/* Serve what caches below their fair share asked for (lock held, reclaimer
 * thread): the caches above it are asked, softly, for their excess. */
void shrinker__rebalance_locked(void);
/* What the caches below their fair share asked to take, in all (lock
 * held): 0 when nobody waits. */
uint64_t shrinker__fair_wanted_locked(void);
/* Drop s's want and credit (lock held): it leaves or is unregistered. */
void shrinker__fair_forget_locked(struct shrinker *s);

/* reclaimer.c */
/* shrinker_request_reclaim() (arguments checked by the caller): 0,
 * -EDEADLK (SHRINKER_WAIT on the reclaimer thread), -EAGAIN. */
int shrinker__reclaimer_request(uint64_t bytes, unsigned flags, size_t *freed);
/* shrinker_get_global_stats(). */
void shrinker__global_stats(struct shrinker_global_stats *ret);
/* Start the reclaimer thread if it is not running (lock held). */
int shrinker__reclaimer_start_locked(void);
/* Serve a request: split target (resident bytes) among the active
 * shrinkers, round after round, escalating from soft to hard when soft
 * rounds fall short and still_needed() says the pressure persists.  Lock
 * held on entry and exit.  Returns the bytes the callbacks reported freed. */
uint64_t shrinker__serve_locked(uint64_t target, bool hard,
				uint64_t (*still_needed)(uint64_t remaining));
/* The split of one round (lock held): writes s->share for every shrinker
 * that takes part and returns how many do. */
unsigned shrinker__split_locked(uint64_t target);

#endif /* SHRINKER_INTERNAL_H */
