/* SPDX-License-Identifier: MIT */
/*
 * libshrinker: OSv's shrinker API for ordinary Linux processes.
 *
 * A program that keeps a cache registers a shrinker: a function that frees
 * some of the cache when asked.  The library watches the memory limit that
 * really applies to the process (cgroup v2 or v1, the system's RAM, or a
 * budget you set) and, when the headroom under that limit runs low, calls
 * the shrinkers with how many bytes to free.  No cache size setting needed.
 *
 *	static size_t shrink(size_t target, bool hard, void *userdata)
 *	{
 *		struct cache *c = userdata;
 *		size_t freed = 0;
 *
 *		pthread_mutex_lock(&c->lock);
 *		while (freed < target && c->lru_tail)
 *			freed += cache_evict_tail(c);
 *		shrinker_set_size(c->shrinker, c->bytes);
 *		pthread_mutex_unlock(&c->lock);
 *		return freed;
 *	}
 *	...
 *	shrinker_register(&c->shrinker, "blobs", shrink, c, 0);
 *	...
 *	// Before the cache grows by n bytes (no system call):
 *	if (!shrinker_may_grow(n))
 *		evict_lru_entry(c);	// at capacity: replace, do not grow
 *
 * Conventions, for every function below unless it says otherwise:
 *  - Functions that can fail return an int: >= 0 on success, a negative errno
 *    value on failure.  They never set errno, and they write their
 *    out-parameters only on success.
 *  - Every function may be called from any thread, including from inside a
 *    shrinker callback.
 *  - Handles are opaque; a NULL handle where one is required gives -EINVAL.
 *  - Structures the library fills (struct shrinker_memory, shrinker_stats,
 *    shrinker_global_stats, shrinker_source_info) end in reserved space,
 *    which the library sets to zero.  New fields are taken from it, so a
 *    program built against an older header keeps working: the structure's
 *    size never changes within a major version.
 *
 * Versions: the soname (libshrinker.so.MAJOR) changes only when a function
 * is removed or changes meaning, or a structure's layout changes other than
 * by using its reserved space; a minor version adds functions, flags and
 * fields (from reserved space); a patch version changes no interface.
 * The symbol versions (LIBSHRINKER_0) say which release added a function.
 *
 * Process life cycle:
 *  - exit(): from the moment exit() begins no callback starts; a running one
 *    is waited for at most 1 s.  A callback that does not return by then (it
 *    waits for a lock the exiting thread holds), or a library thread that
 *    cannot be reached (exit() from a signal handler that interrupted this
 *    library, descriptors closed under it) is left behind and exit() goes on.
 *  - fork(): the child keeps its shrinkers and gets a library thread of its
 *    own.  fork() waits for a callback running on another thread to return,
 *    at most 1 s, and no callback starts meanwhile, so the child never
 *    inherits a cache lock a callback held.
 *  - dlclose(): the library's destructor stops its thread (as exit() does)
 *    and closes every descriptor it opened.
 *  - Descriptors closed under the library (a daemon closing all of them):
 *    noticed (POLLNVAL, and an fstat() identity check before any read, write
 *    or close), never touched again, made anew.  Until the thread next wakes
 *    (30 s at the most) a wake-up may be lost.
 *
 * Environment (read once, at the first call into the library):
 *  - SHRINKER_LIMIT: a self-imposed budget such as "512M", "2G", "65536"
 *    (bytes) or "75%" / "75 %" (of the detected limit, at most 100 %); "0"
 *    means none, as shrinker_set_limit(0) does.  A value that is not a size
 *    is reported on stderr, with the reason, and ignored.
 *  - SHRINKER_DEBUG=1: one line on stderr per pressure event and per problem
 *    with /proc or /sys that made the library fall back, and per request
 *    that pressure caused, its reaction time (wake-up to first callback and
 *    to the end; the percentiles so far, as shrinker_get_global_stats()).
 *  - MEMORY_PRESSURE_WATCH, MEMORY_PRESSURE_WRITE: systemd's memory pressure
 *    protocol; read with secure_getenv(), so ignored in set-uid programs.
 *  - SHRINKER_ROOT: a directory that stands in for "/" when reading /proc and
 *    /sys (for tests against captured trees); ignored in set-uid programs.
 *  - SHRINKER_SOURCES: pressure sources to turn off, by the names that
 *    shrinker_get_source() gives, each with a leading '-'
 *    ("-cgroup-v1-threshold,-psi-system"); a list of bare names keeps only
 *    those.  Turning cgroup v1's three sources off makes v1 behave as cgroup
 *    v2 without memory.high does (no kernel event before the limit), which
 *    is how the tests reproduce v2 on a v1 machine.
 *  - SHRINKER_BRAKE=0: keeps the malloc brake library counting but never
 *    waiting (see "Guarantees" below).
 */
#ifndef SHRINKER_H
#define SHRINKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHRINKER_VERSION_MAJOR 0
#define SHRINKER_VERSION_MINOR 4
#define SHRINKER_VERSION_PATCH 0
/* The version as one number, for #if: (major << 16) | (minor << 8) | patch. */
#define SHRINKER_VERSION_HEX                                                   \
	((SHRINKER_VERSION_MAJOR << 16) | (SHRINKER_VERSION_MINOR << 8) |      \
	 SHRINKER_VERSION_PATCH)

/*
 * The run-time library's version, in the same form as SHRINKER_VERSION_HEX.
 * Compare it with the macro to learn whether the header and the library agree.
 */
unsigned shrinker_version(void);

/* The longest name a shrinker may have, not counting the terminating NUL. */
#define SHRINKER_NAME_MAX 63

struct shrinker;

/*
 * The shrinker callback.
 *
 * Called with how many bytes the library would like this cache to free
 * (target, > 0) and how urgent that is:
 *  - hard == false: preemptive freeing.  Headroom under the limit fell below
 *    the soft watermark; free what is cheap to free, up to target.
 *  - hard == true: severe pressure.  Headroom fell below the hard watermark,
 *    the kernel is already reclaiming (PSI, memory.events), or soft rounds
 *    did not free enough.  The process is close to being OOM-killed: free up
 *    to target even if it costs, and do not allocate memory to do it.
 *
 * Return the bytes actually freed (0 if none).  Returning more than target is
 * allowed and counts in full, up to what the cache last said it held with
 * shrinker_set_size() (the target, for a shrinker that never said): a larger
 * value (SIZE_MAX from a confused callback) counts as that much.  The return
 * value drives whether the library asks again, and it is what the statistics
 * show; counters saturate at UINT64_MAX.  Callbacks that say they freed
 * while neither RSS nor headroom moved are asked again later and later
 * (10 ms doubling to 5 s), not in a loop.
 *
 * Bytes and pages: targets are resident memory, returns are bytes.  The
 * kernel counts pages, and a page goes back to the system only when all of
 * it is free: a cache of malloc()ed entries evicted in LRU order leaves
 * holes all over the heap, and gives back a fraction of what it frees (a
 * RocksDB block cache: 8 % at once, 35-52 % after malloc_trim()).  So the
 * library measures RSS before each request's first callback and after its
 * last one and malloc_trim(), learns per shrinker what share of the bytes
 * it reports comes back (shrinker_stats.returned_permille; the process's
 * figure, shrinker_global_stats.returned_permille, for one not measured
 * yet), and asks a cache that gives back a third of its bytes for three
 * times its share of the target (never more than the size it reported),
 * counting what it returns at a third.  A request that frees less than
 * 256 KiB, or after which RSS fell by less than a twentieth of what the
 * callbacks reported, teaches nothing: a cache whose memory is outside the
 * resident set (page cache it drops, shared memory) keeps the figure it
 * has (1000, or the process's until it is measured).  The reverse happens
 * too: the trim returns the free pages between live entries left by
 * earlier frees, more than the callbacks reported, and a cache that
 * replaces entries faults them in again within a few hundred ms.  That
 * surplus is not room that shrinker_may_grow() grants until it is back (or
 * half of it after 4 s), and our RSS growing back into it is not counted
 * as another process's growth.
 *
 * Time matters as much: the same measurement gives how fast the process
 * gives memory back, from a request's first callback to the end of its
 * trim (shrinker_global_stats.giveback_per_s).  The soft watermark's floor
 * (2.5 % of the limit where the kernel warns before it) is for caches that
 * give back at least 1 GiB/s, as fast as a competitor can fault pages in;
 * a process that gives back at a quarter of that gets four times the
 * floor, past the ceiling (10 % by default) if need be, up to a quarter of
 * the limit (among the library's processes in one cgroup, its share of
 * what they hold of that rise: it gives back its part of a deficit).
 * Until a request has timed it the watermark stays at the ceiling: when
 * the caches fill up to it, the library asks them for a small part (a
 * soft request of a 128th of the limit, 1 MiB at least) to time it;
 * again after 10 s, then twice as long each time up to about 10 minutes,
 * while none has taught it and while the floor is raised for a slow
 * give-back.
 *
 * Where it runs:
 *  - A normal shrinker runs on the library's reclaimer thread, a thread with
 *    every signal blocked, named "shrinker".
 *  - A shrinker registered with SHRINKER_DEFERRED runs only inside
 *    shrinker_dispatch(), on the thread that calls it.
 *  Callbacks run one at a time on the reclaimer thread, so one that blocks for
 *  a long time delays the others; it never runs concurrently with itself.
 *
 * Locks: the library holds none of its own locks while the callback runs.
 * Treat the callback like an asynchronous signal handler for your own data:
 * the cache it frees from must be protected by a lock that the callback takes.
 *
 * Inside the callback you may call any function of this library.  In
 * particular shrinker_unregister() of this very shrinker returns at once and
 * takes effect when the callback returns; shrinker_request_reclaim() is
 * merged into the request in progress, which grows by at most its own
 * target in all, so that a callback that asks each time cannot keep the
 * reclaimer busy (with SHRINKER_WAIT it fails with -EDEADLK on the
 * reclaimer thread).
 */
typedef size_t (*shrinker_fn)(size_t target, bool hard, void *userdata);

/* Flags for shrinker_register(). */
enum {
	/* Never call on the reclaimer thread: accumulate the target and call it
	 * from shrinker_dispatch() (see shrinker_get_fd()). */
	SHRINKER_DEFERRED = 1u << 0,
	/* Register deactivated; shrinker_activate() turns it on. */
	SHRINKER_INACTIVE = 1u << 1,
};

/*
 * Register a shrinker.  The first registration starts the reclaimer thread
 * and the pressure monitors, and returns once they are armed (at most
 * 500 ms; about 30 ms on cgroup v1, whose thresholds the kernel arms slowly),
 * so that a cache that fills right after registering cannot outrun them.
 *
 * name: for statistics and debugging, copied; at most SHRINKER_NAME_MAX bytes.
 * fn: the callback (see shrinker_fn).  userdata: passed to fn as is.
 * flags: SHRINKER_DEFERRED, SHRINKER_INACTIVE, or 0.
 *
 * Until the shrinker reports its size with shrinker_set_size(), the library
 * does not know how much it holds and gives it an equal part of each target.
 *
 * Returns 0 and the handle in *ret.
 * Errors: -EINVAL (ret, name or fn NULL, unknown flag), -ENAMETOOLONG,
 * -ENOMEM, -EAGAIN (the reclaimer thread could not be started).
 */
int shrinker_register(struct shrinker **ret, const char *name, shrinker_fn fn,
		      void *userdata, unsigned flags);

/*
 * Unregister and free a shrinker.  NULL is a no-op that returns 0.
 *
 * Returns only when no call of the shrinker is running and none will start,
 * so the cache may be destroyed right after.  Called from inside the
 * shrinker's own callback, it returns at once: the handle is freed when the
 * callback returns and no call starts after that.  Pending deferred work of
 * the shrinker is dropped.
 */
int shrinker_unregister(struct shrinker *s);

/*
 * Turn a shrinker on or off.  A deactivated shrinker is not called and does
 * not count in the split of a target.  Deactivating does not wait for a call
 * that is already running (shrinker_unregister() does).  Both are idempotent.
 * Errors: -EINVAL (s NULL).
 */
int shrinker_activate(struct shrinker *s);
int shrinker_deactivate(struct shrinker *s);

/*
 * Report how many bytes the cache behind s holds now.  Targets are split among
 * shrinkers in proportion to these figures, as the kernel's own shrinkers do:
 * a cache that holds 70 % of the cached bytes is asked for 70 % of the target.
 * A round calls the shrinkers one after the other, each with its share, and
 * stops as soon as the target is met; each request starts its rounds at the
 * next shrinker in turn, so that no cache is always the one that pays (or
 * whose slowness makes the others wait).
 * A shrinker that reports 0 is not called.  Cheap (one atomic store): call it
 * whenever the cache grows or shrinks, including from inside the callback.
 * Errors: -EINVAL (s NULL).
 */
int shrinker_set_size(struct shrinker *s, size_t bytes);

/* The name given at registration, or NULL for a NULL handle. */
const char *shrinker_name(const struct shrinker *s);

/* Flags for shrinker_request_reclaim(). */
enum {
	SHRINKER_HARD = 1u << 0, /* ask with hard == true from the start */
	SHRINKER_WAIT = 1u << 1, /* return when the request has been served */
};

/*
 * Ask the shrinkers to free bytes now, as if the monitors had seen pressure:
 * "drop caches".  The target is split among the active shrinkers as usual; a
 * soft request that soft rounds cannot meet is retried as hard.  Requests
 * made before the reclaimer picks them up are added together.
 *
 * Without SHRINKER_WAIT it returns at once.  With it, it returns when the
 * request has been served and, if freed is not NULL, writes the bytes freed
 * by the rounds that served it (deferred shrinkers free later, in
 * shrinker_dispatch(), and are not counted).  A request (by hand or from
 * pressure) starts no callback once it has run for 500 ms, so it is served
 * at the latest when the callback running then returns: at most 4 soft and
 * 4 hard rounds, and 500 ms plus one callback.
 *
 * Errors: -EINVAL (bytes == 0, unknown flag), -EDEADLK (SHRINKER_WAIT on the
 * reclaimer thread, i.e. from a callback), -EAGAIN (no reclaimer thread).
 */
int shrinker_request_reclaim(size_t bytes, unsigned flags, size_t *freed);

/*
 * Deferred mode: the one file descriptor for the whole library that becomes
 * readable (POLLIN) when some SHRINKER_DEFERRED shrinker has work pending.
 * Add it to your poll/epoll set, libuv (uv_poll_t) or GLib (g_unix_fd_add) and
 * call shrinker_dispatch() when it is readable.  Do not read or close it.
 * Returns the fd (>= 0).  Errors: -EMFILE, -ENFILE, -ENOMEM.
 */
int shrinker_get_fd(void);

/*
 * Run the pending work of deferred shrinkers on the calling thread: each
 * deferred shrinker with a pending target is called once with everything that
 * accumulated since its last call (hard if any part of it was hard).  Then
 * the fd of shrinker_get_fd() is no longer readable, unless more work came in.
 * Returns the number of callbacks made (0 when nothing was pending).
 * A shrinker whose callback is already running on another thread is skipped
 * and its work stays pending.  When the callbacks freed something, the heap
 * is trimmed (malloc_trim(0)) before this returns and RSS before and after is
 * recorded as for the reclaimer's requests (trims, rss_released,
 * last_rss_before/after): deferred work counts as freed when its callback
 * returns, not when the library hands it over.
 */
int shrinker_dispatch(void);

/*
 * Memory, limits and pressure.
 *
 * The library measures headroom: the effective limit minus the working set.
 * The effective limit is the smallest of
 *  - the process's cgroup limit: cgroup v2 memory.max and memory.high of its
 *    cgroup and every ancestor, or cgroup v1 memory.limit_in_bytes and
 *    hierarchical_memory_limit, against the cgroup's usage minus inactive
 *    file pages, dirty and writeback file pages included (page cache the
 *    kernel can drop is not pressure);
 *  - the system's memory: MemTotal, against MemTotal - MemAvailable;
 *  - the self-imposed budget (SHRINKER_LIMIT, shrinker_set_limit()), against
 *    the process's own resident set;
 * whichever leaves the least headroom.  The limit is re-read at every
 * measurement, and a write to a limit file wakes the library (inotify), so a
 * limit lowered at run time is seen at once.
 *
 * Two watermarks on headroom:
 *  - soft: below it the shrinkers are asked, softly, for (soft watermark -
 *    headroom) plus a quarter of the soft watermark, so that growing back
 *    takes a while;
 *  - hard, half the soft one: below it, or when the kernel says it is
 *    reclaiming hard (cgroup v2 memory.events "max"/"oom", v1 pressure level
 *    "critical" or "medium", a confirmed PSI stall while under the soft
 *    watermark), the same target is asked for hard.
 * The soft watermark is sized by what the reaction needs: the growth of the
 * working set seen lately (a maximum that halves every half second) times
 * the time the library takes to react (twice its slowest recent reaction,
 * from the wake-up to the request's end, halving every second; 25 ms to
 * 200 ms), between
 * a floor of 2.5 % and a ceiling of 10 % of the limit (OSv's low watermark);
 * the growth's part in steps of a 128th of the limit, the floor exact.  It
 * rises at once with growth, holds
 * 300 ms, then falls half the way per 100 ms.  The floor applies where the
 * kernel warns before the limit (cgroup v1 usage thresholds armed with the
 * usage below them, or a cgroup v2 memory.high, where it throttles instead
 * of killing), and with
 * cgroup v2 memory.max alone while the program's own growth reads the
 * cgroup's usage (the growth clock, see shrinker_account()) and for a
 * second after: the library then looks every 10 ms as well, so another
 * process's growth is seen within milliseconds (the floor is 8 MiB at
 * least there).  Elsewhere (an idle program there, a budget, the system's
 * memory) another process's sudden growth is seen at the next poll or at
 * the limit, and the soft watermark stays at the ceiling.  A fixed 10 % kept a tenth of memory, and a quarter of
 * what a squeezed cache may use, free for growth that mostly never came.
 * shrinker_set_watermarks() fixes both instead.
 * With the headroom above the soft watermark, confirmed pressure (PSI,
 * systemd, v2 "high", v1 "critical") asks softly for a quarter of the soft
 * watermark: the host is short, not we.  v1 "medium" alone asks nothing
 * then: the kernel reports it whenever it reclaims page cache at the
 * limit, which any program doing file I/O makes it do all the time.
 * With no swap, a process whose working set reaches its limit is OOM-killed;
 * 1 GiB/s of growth for 25 ms is 25.6 MiB, the room the reclaimer needs to
 * wake and call the shrinkers before the limit.
 * The watermarks are at least 2 MiB (hard) and 4 MiB (soft).
 *
 * No storms: events are coalesced into one measurement; after a soft request
 * that freed less than half its target, soft pressure is ignored for a
 * hold-off that doubles from 250 ms up to 5 s and ends after a request that
 * freed enough.  Hard pressure is never held off, except that after a hard
 * request that freed nothing, or after which headroom did not grow at all,
 * the next waits 100 ms.
 *
 * When the library looks:
 *  - the growth clock: growth the program reports (shrinker_may_grow()
 *    grants and refusals, shrinker_set_size() increases, shrinker_account(),
 *    the malloc brake) is counted, and every step of it (an eighth of the
 *    distance to the hard watermark, 256 KiB to 64 MiB) the reporting thread
 *    reads the cgroup's usage once (a pread(), about a microsecond) and wakes
 *    the reclaimer below the soft watermark.  No growth, no cost;
 *  - kernel events: cgroup v1 usage thresholds at both watermarks (the
 *    reclaimer sleeps with no timer while usage is below them; where page
 *    cache keeps the usage above them, as a database read from disk does,
 *    they say nothing more, and the library polls and measures in full as
 *    on cgroup v2, since the usage no longer moves when others grow), v1 pressure
 *    levels, cgroup v2 memory.events (high, max, oom), PSI triggers, limit
 *    files written (inotify);
 *  - a poll, where no kernel event covers the soft watermark (cgroup v2
 *    before memory.high, no cgroup, the budget): after half the time the
 *    observed growth of the working set needs to reach the soft watermark,
 *    from 10 ms; 2 s while nothing grows, doubling up to 8 s while each look
 *    finds usage unchanged (such a look is one read of the usage file);
 *    before any growth has been seen, from 100 ms, doubling.  The
 *    poll is what sees other processes' growth below the watermark.
 *
 * Processes that share a cgroup: every process using the library measures
 * the same usage against the same limit.  Each publishes its resident size
 * in a small shared file (/dev/shm/libshrinker-<uid>-<cgroup>, created 0600
 * and used only if it is a private file of the same user; 4 KiB for 64
 * processes, growing by as much per 64 more, up to 4096) and takes its
 * part of a deficit: the processes above an equal share of their resident
 * memory pay first, in proportion to their excess, the rest in proportion
 * to what each holds; on hard pressure each takes at least what brings the
 * headroom back to the hard watermark.  What a peer's request under way
 * frees, and what a peer gave back after our reading of the usage, are
 * left out of the deficit we see.  A process below an equal share may
 * grow through the band the others keep free to a quarter of the soft
 * watermark below it (never below the hard one), and right after a shrink:
 * the deficit that makes is paid by those above an equal share first.
 * Processes that do not use the library are not peers: their part of a
 * deficit is freed by those that do.
 *
 * Guarantees, by environment and mode.  "Covered" means the library reacts
 * before the OOM killer as long as the shrinkers can free what is asked.
 *  - Native caches that ask shrinker_may_grow() before they grow: covered
 *    everywhere by the growth clock, with no brake.  Worst case: the
 *    allocator's own growth between two probes (a step).
 *  - Caches that never ask (OSv programs, deferred workers, anything
 *    allocating with malloc at full speed): covered with the malloc brake,
 *    libshrinker-brake (link -lshrinker-brake before -lshrinker, or
 *    LD_PRELOAD=libshrinker-brake.so; it needs the shared libshrinker):
 *    below the hard watermark a thread that allocates waits for the
 *    reclaimer, as on OSv, at most 100 ms per 64 KiB it allocates.  Worst
 *    case: memory allocated in the last few milliseconds by every thread at
 *    once (threads x block size), memory not from malloc (mmap, stacks), and
 *    a wait that runs out because the shrinkers free slower than 100 ms.
 *    Without the brake such a program depends on the kernel events and the
 *    poll: on cgroup v1 the usage thresholds fire at the soft watermark;
 *    on cgroup v2 without memory.high nothing fires before the limit, and
 *    fast threads are OOM-killed (see BENCHMARKS.md for how often).
 *  - Other processes in the same cgroup or on the host: seen by the cgroup
 *    v1 thresholds at once; on cgroup v2 by the growth clock's probes while
 *    the program grows or is refused, by the poll (every 10 ms while the
 *    soft watermark sits at its floor on that account; what they allocate
 *    between two looks is not seen) and, at the limit, by memory.events
 *    "max" and PSI.  Where the process may not use the brake, or others
 *    grow fast, set memory.high under memory.max (systemd MemoryHigh=,
 *    Kubernetes memory QoS): the kernel then throttles a burst instead of
 *    killing it, and its "high" events wake the library.
 *  - The budget (SHRINKER_LIMIT) is watched by the poll and the growth
 *    clock on RSS; no kernel event watches it.
 */

/* The last measurement.  Byte figures; UINT64_MAX where no limit is known. */
struct shrinker_memory {
	uint64_t limit;          /* the effective limit */
	uint64_t working_set;    /* what counts against it */
	uint64_t headroom;       /* limit - working_set, 0 when over */
	uint64_t soft_watermark; /* in bytes of headroom */
	uint64_t hard_watermark;
	uint64_t budget;         /* the self-imposed budget, 0 if none */
	uint64_t measured_ns;    /* CLOCK_MONOTONIC, when measured */
	int cgroup_version;      /* 0 (none found), 1 or 2 */
	char limit_source[112];  /* which limit is effective, e.g.
				    "cgroup v1 memory.limit_in_bytes of /a" */
	uint64_t reserved[8];    /* zero; room for fields to come */
};

/*
 * Measure now and copy the result into *ret.  Costs a few reads of small
 * files under /proc and /sys.  Errors: -EINVAL (ret NULL), -ENODATA (nothing
 * could be measured: no cgroup, no /proc/meminfo, no budget).
 */
int shrinker_get_memory(struct shrinker_memory *ret);

/*
 * Set the self-imposed budget in bytes (0 removes it), combined with the
 * detected limits: the smallest wins.  Overrides SHRINKER_LIMIT.
 * Errors: none so far (returns 0).
 */
int shrinker_set_limit(uint64_t bytes);

/*
 * Fix the watermarks, in thousandths of the effective limit: 0 < hard < soft
 * <= 500; they no longer follow the growth rate.  0, 0 goes back to the
 * default (sized by the reaction, 2.5 % to 10 %, up to 25 % for caches
 * that give memory back slowly; hard half of soft: "Bytes and pages").
 * Any thread.  Errors: -EINVAL.
 */
int shrinker_set_watermarks(unsigned soft_permille, unsigned hard_permille);

/*
 * Whether the cache may grow by bytes and stay clear of the soft watermark:
 * call it before a cache grows, so that caches stop short of the watermark
 * instead of growing into the next shrink.  It keeps headroom at the soft
 * watermark plus a quarter of it, the level a soft shrink restores, so that
 * the band in between absorbs what the estimate misses (allocator overhead,
 * the program's other memory) without a shrink.  It reads the last
 * measurement and counts what it has granted since; what it grants and what
 * it refuses (a refused cache replaces entries, which can still grow the
 * heap) drive the growth clock, so that once per step it reads the usage
 * file (see "When the library looks").  When it says no, it asks the
 * reclaimer thread (at most every 100 ms) to measure again, so room that
 * appears is seen.  Before anything was measured it says yes.  Any thread;
 * threads on different CPUs do not slow each other: each CPU grants from a
 * stock of room taken from the measurement a batch at a time (the stocks
 * together hold at most a quarter of the band, counted as granted; a
 * measurement or a shrink empties them), so a grant refused while other
 * CPUs hold room is at most that much short, until the next measurement.
 */
bool shrinker_may_grow(size_t bytes);

/*
 * shrinker_may_grow() for one cache, fair between caches: a cache that
 * reports its size (shrinker_set_size()) and is below its fair share (an
 * equal part of what all caches that report their size hold together) may
 * grow by taking from the caches above their share when there is no room
 * left.  Growth is granted, in this order: from what was freed for this
 * cache before, from the room shrinker_may_grow() grants from; otherwise the
 * call returns false and, if the cache is below its fair share by more than
 * a 32nd of it, asks (once) that the caches above their share free their
 * excess for it, softly, in proportion to the excess and never below the
 * share: 1 MiB at first, twice as much each time it used what was freed
 * before within a quarter of the second that was reserved for it, half as
 * much each time it did not use it within that second (never more than
 * half the gap).  What they free is
 * reserved for this cache for that second: a later call grants from it.
 * So a cache that grows fast reaches its share in a few exchanges, and one
 * that grows slowly is given about what it takes.  Deferred caches do not
 * give this way (they free only when the program dispatches).
 * s NULL: the same as shrinker_may_grow(bytes).  Allocation-free; takes the
 * library lock only after a refusal (at most once a millisecond per cache)
 * or while some cache holds freed bytes.
 */
bool shrinker_may_grow_cache(struct shrinker *s, size_t bytes);

/*
 * The size in bytes the library wants s to have, for caches governed by a
 * size setting rather than by entries (SQLite's cache_size, a pool's
 * maximum), which cannot free an exact byte count: inside s's own callback,
 * the size s last reported less the target of the call (set the knob to it
 * and return what the cache really dropped by); elsewhere, the size it last
 * reported, plus what was freed for it (shrinker_may_grow_cache()), plus an
 * equal part of the room to grow (0 before the first measurement and for a
 * while after a shrink).  Report the size after the knob took effect with
 * shrinker_set_size(), so that growth is counted.
 * Errors: -EINVAL (s or ret NULL), -ENODATA (s never reported its size).
 */
int shrinker_get_capacity(const struct shrinker *s, uint64_t *ret);

/* Flags for shrinker_account(). */
enum {
	/* Below the hard watermark, wait for the reclaimer (the brake). */
	SHRINKER_ACCOUNT_WAIT = 1u << 0,
};

/*
 * Report growth that nobody asked shrinker_may_grow() about: the process is
 * about to grow by delta bytes (a negative delta: it shrank).  This is the
 * growth clock: once the growth reported since the library last looked
 * passes a step (an eighth of the distance to the hard watermark, 256 KiB to
 * 64 MiB), the calling thread reads the cgroup's usage (one pread() of a
 * kept-open file, about a microsecond; /proc/self/statm without a cgroup)
 * and wakes the reclaimer if headroom is below the soft watermark.
 * shrinker_may_grow() grants and shrinker_set_size() increases feed the same
 * clock, so a program that uses those need not call this.
 *
 * With SHRINKER_ACCOUNT_WAIT and headroom below the hard watermark, the
 * calling thread waits for the reclaimer, as an allocating thread waits on
 * OSv, for at most 100 ms per call.  While it waits its delta is counted as
 * about to be allocated: the reclaimer makes room for what every waiting
 * thread reported, and a thread is let go only when the headroom holds its
 * delta above the hard watermark, which is then counted as taken, so that
 * threads let go together never share one room.  It never waits on the
 * reclaimer thread, inside a callback, inside this library, before the
 * first registration has armed the monitors, or after a hard request that
 * could free nothing.  Call it
 * before allocating, not holding a lock that a shrinker takes.  The malloc
 * brake library (libshrinker-brake, see shrinker(3)) calls it from malloc.
 *
 * Returns 0 (no wait), 1 (waited, and room was made for delta),
 * -ETIMEDOUT (waited 100 ms and there is still no such room).
 * Errors: -EINVAL (unknown flag).  Allocation-free and async-signal-unsafe.
 */
int shrinker_account(int64_t delta, unsigned flags);

/* One pressure source, for shrinker_get_source(). */
struct shrinker_source_info {
	char name[32];     /* "cgroup-v1-threshold", "psi-system", ... */
	bool active;       /* in use now */
	char detail[160];  /* what it watches, or why it is not used */
	uint64_t reserved[4]; /* zero; room for fields to come */
};

/*
 * Describe pressure source number index (0, 1, ... until -ENOENT): which are
 * active and why the others are not.  The sources are opened when the
 * reclaimer thread starts (the first registration); before that every one
 * says "not started".  Errors: -EINVAL (ret NULL), -ENOENT (no such index).
 */
int shrinker_get_source(unsigned index, struct shrinker_source_info *ret);

/* Per-shrinker statistics. Times are CLOCK_MONOTONIC nanoseconds. */
struct shrinker_stats {
	uint64_t calls;       /* callbacks made */
	uint64_t hard_calls;  /* of which with hard == true */
	uint64_t bytes_asked; /* sum of the targets passed */
	uint64_t bytes_freed; /* sum of the return values */
	uint64_t last_call_ns; /* when the last call started, 0 if never */
	uint64_t size;        /* last shrinker_set_size() figure */
	bool size_known;      /* whether shrinker_set_size() was ever called */
	bool active;
	bool deferred;
	uint64_t pending;     /* deferred bytes waiting for shrinker_dispatch() */
	/* Fairness between caches (shrinker_may_grow_cache()): */
	uint64_t taken;       /* bytes freed by other caches for this one */
	uint64_t given;       /* bytes this one freed for other caches */
	/* Resident memory (since 0.2): of the bytes this shrinker reports
	 * freed, the thousandths that come back to the system as RSS, learned
	 * from the requests it freed in (the process's figure until one was
	 * measured); and its part of the RSS those requests gave back,
	 * malloc_trim() included.  See "Bytes and pages" above. */
	uint64_t returned_permille;
	uint64_t rss_returned;
	uint64_t reserved[4]; /* zero; room for fields to come */
};

/* Copy s's statistics into *ret.  Errors: -EINVAL (s or ret NULL). */
int shrinker_get_stats(const struct shrinker *s, struct shrinker_stats *ret);

/* Library-wide statistics.  Times are CLOCK_MONOTONIC nanoseconds. */
struct shrinker_global_stats {
	uint64_t shrinkers;     /* registered now */
	uint64_t requests;      /* reclaim requests served (pressure or by hand) */
	uint64_t soft_requests; /* of which started soft */
	uint64_t hard_requests; /* of which started hard */
	uint64_t escalations;   /* soft requests retried as hard */
	uint64_t rounds;        /* passes over the shrinkers */
	uint64_t calls;         /* callbacks made, deferred ones included */
	uint64_t hard_calls;
	uint64_t bytes_asked;
	uint64_t bytes_freed;   /* as the callbacks reported it */
	uint64_t trims;         /* malloc_trim() calls after rounds that freed */
	uint64_t rss_released;  /* sum over requests and dispatches that freed
				   of RSS before - RSS after */
	uint64_t last_rss_before; /* RSS before the last round that freed */
	uint64_t last_rss_after;  /* RSS after it and malloc_trim() */
	uint64_t last_request_ns; /* when the last request started */
	uint64_t wakeups;       /* times the reclaimer thread woke up */
	uint64_t events;        /* pressure events seen by the monitors */
	uint64_t soft_events;   /* pressure that led to a soft request */
	uint64_t hard_events;   /* pressure that led to a hard request */
	uint64_t held_off;      /* soft pressure ignored during a hold-off */
	uint64_t measurements;  /* times limit and usage were measured */
	uint64_t probes;        /* growth-clock probes (see shrinker_account) */
	uint64_t brake_waits;   /* threads held by the brake */
	uint64_t brake_wait_ns; /* total time they were held */
	/* The library's own reaction time, over the requests pressure caused:
	 * from the moment its thread woke for the pressure (a source fired, a
	 * poll or a growth-clock probe found the deficit) to the first
	 * callback, and to the end of the request.  Percentiles from a fixed
	 * histogram (buckets up to 25 % wide); 0 before the first request. */
	uint64_t reactions;     /* requests measured */
	uint64_t reaction_first_p50_ns, reaction_first_p99_ns, reaction_first_max_ns;
	uint64_t reaction_done_p50_ns, reaction_done_p99_ns, reaction_done_max_ns;
	/* Processes using this library under the same cgroup limit, this one
	 * included, at the last measurement (1: alone; see "Processes that
	 * share a cgroup"). */
	uint64_t peers;
	/* Resident memory (since 0.2): the process's figure over every
	 * measured request and dispatch, in thousandths of the bytes reported
	 * freed (1000 until one was measured), and the RSS they gave back. */
	uint64_t returned_permille;
	uint64_t rss_returned;
	/* How fast the process gives memory back (since 0.3): RSS given back
	 * per second of a request or dispatch, from its first callback to the
	 * end of its trim, a running figure (a slower request moves it half
	 * the way, a faster one a quarter); 0 until one was measured. */
	uint64_t giveback_per_s;
	uint64_t reserved[12];  /* zero; room for fields to come */
};

/* Copy the library-wide statistics into *ret.  Errors: -EINVAL. */
int shrinker_get_global_stats(struct shrinker_global_stats *ret);

#ifdef __cplusplus
}
#endif

#endif /* SHRINKER_H */
