/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the growth clock and the brake.  The reclaimer learns about
 * pressure from kernel events and from measurements it makes on a timer; a
 * program whose threads allocate fast can outrun both.  Here growth itself
 * is the clock: every byte the program reports (shrinker_may_grow() grants,
 * shrinker_set_size() increases, shrinker_account(), and through it the
 * malloc brake library) is added to one counter, and once the growth since
 * the last look passes a step (an eighth of the distance to the hard
 * watermark, 256 KiB to 64 MiB) the reporting thread probes: one pread() of
 * the kept-open cgroup usage file (memory.current, memory.usage_in_bytes) or
 * of /proc/self/statm where there is no cgroup, about a microsecond.  The
 * probe turns the reading into a headroom estimate against the last full
 * measurement and wakes the reclaimer when it falls below the soft
 * watermark.  No growth, no probes and no wake-ups.
 *
 * The brake is OSv's semantics for programs that never ask before they grow:
 * a thread that reports growth with SHRINKER_ACCOUNT_WAIT while the estimate
 * is below the hard watermark waits for the reclaimer (woken after every
 * callback and every measurement, and every 10 ms in any case) until a probe
 * shows the hard watermark regained, for at most BRAKE_MAX_NS.  The waiting
 * happens before the memory is allocated, so a braked thread holds no
 * allocator lock.  It never waits on the reclaimer thread, inside a
 * callback, while holding a library lock, before the reclaimer is armed,
 * or after a hard request that could free nothing (waiting would not help).
 * Nothing here allocates: it runs inside malloc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "1-base/files.h"
#include "3-model/growth.h"
#include "internal.h"

#define MIN_STEP (256ll << 10)
#define MAX_STEP (64ll << 20)
/* Reported growth counts as not yet in the usage figure for about this
 * long (the time to touch a fresh block of a few MiB, with margin). */
#define RECENT_HALF_LIFE_NS 4000000.0
/* A braked thread waits at most this long per report. */
#define BRAKE_MAX_NS 100000000ull
/* ... and probes again at least this often while it waits. */
#define BRAKE_TICK_NS 10000000ull

/* Wakes braked threads; brake_gen changes at every kick.  Never held while
 * taking another lock. */
static pthread_mutex_t brake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t brake_cond = PTHREAD_COND_INITIALIZER;
static uint64_t brake_gen;
static _Atomic unsigned brake_waiters;

/* The growth clock's state, owned here.  Atomics are read and written
 * without a lock, by any thread that reports growth; the probe's file and
 * the decayed recent growth are serialized by probe_lock, which also keeps
 * probe_fd from being closed under a reader (lock order: the mon lock,
 * then probe_lock). */
static struct {
	pthread_mutex_t probe_lock;
	int probe_fd;         /* kept-open usage file, -1: use RSS */
	struct shrinker__fdid probe_id;
	unsigned probe_checks;      /* probes made, for the identity check */
	double recent;              /* recent growth, decayed (probe lock) */
	uint64_t recent_ns;         /* when recent was last decayed */
	_Atomic int64_t churn;      /* refused growth, cumulative: in grown */
	int64_t churn_probed;       /* churn when recent was updated */
	_Atomic int64_t grown;      /* growth reported, cumulative */
	_Atomic int64_t grown_probed; /* grown at the last probe */
	_Atomic int64_t grown_measured; /* ... at the last measurement */
	_Atomic int64_t base;       /* probe reading of the measurement */
	_Atomic uint64_t measured;  /* headroom of the measurement */
	_Atomic uint64_t headroom;  /* by the last probe or measurement */
	_Atomic uint64_t hard;      /* the hard watermark, bytes */
	_Atomic uint64_t step;      /* growth between two probes */
	_Atomic int64_t flush;      /* growth a CPU's slot keeps before it
				       adds it to grown (stock.c): a quarter
				       of a step over the CPUs, 0 before the
				       first measurement */
	_Atomic uint64_t poke_ns;   /* when the brake last woke the reclaimer */
	_Atomic uint64_t probes;    /* probes made (statistics) */
	_Atomic uint64_t cg_probe_ns; /* the last probe of the binding
					    cgroup's usage file */
	_Atomic uint64_t brake_waits, brake_ns; /* threads braked */
	_Atomic int64_t held;       /* what the braked threads reported and
				       will allocate once let go */
	atomic_bool use_rss;        /* probe reads RSS, not the cgroup */
	atomic_bool hard_freed_none;       /* the last hard request freed nothing */
	atomic_bool armed;          /* the reclaimer's sources are open */
	atomic_bool measured_once;  /* a measurement set the clock */
	_Atomic uint64_t soft;      /* its soft watermark: a probe below it
				       asks for a measurement */
} growth_clock = { .probe_lock = PTHREAD_MUTEX_INITIALIZER, .probe_fd = -1 };

/* Initial-exec: this runs inside malloc, where a dynamic TLS access could
 * allocate. */
static __thread int exempt __attribute__((tls_model("initial-exec")));

/* The holders of growth_clock.probe_lock, counted in probe_take() and
 * probe_give() only (initial-exec, as above). */
static __thread unsigned probe_held __attribute__((tls_model("initial-exec")));
#ifdef NDEBUG
#define SHRINKER__ASSERT_PROBE_HELD() ((void)0)
#else
#define SHRINKER__ASSERT_PROBE_HELD() assert(probe_held > 0)
#endif

/* Take growth_clock.probe_lock (wait false: only if it is free); whether taken. */
static bool probe_take(bool wait)
{
	if ((wait ? pthread_mutex_lock(&growth_clock.probe_lock)
		  : pthread_mutex_trylock(&growth_clock.probe_lock)) != 0)
		return false;
	probe_held++;
	return true;
}

static void probe_give(void)
{
	probe_held--;
	pthread_mutex_unlock(&growth_clock.probe_lock);
}

void shrinker__brake_exempt(int delta)
{
	exempt += delta;
}

static int64_t clamp_step(int64_t v)
{
	return v < MIN_STEP ? MIN_STEP : v > MAX_STEP ? MAX_STEP : v;
}

static void set_step(uint64_t head)
{
	uint64_t hard = atomic_load_explicit(&growth_clock.hard, memory_order_relaxed);
	int64_t step = clamp_step(head > hard ? (int64_t)((head - hard) / 8) : 0);

	atomic_store_explicit(&growth_clock.step, (uint64_t)step, memory_order_relaxed);
	atomic_store_explicit(&growth_clock.flush,
			      step / 4 / (int64_t)shrinker__stock_cpus(),
			      memory_order_relaxed);
}

/* Growth and churn taken out of the CPUs' slots, onto the clock; the
 * clock's growth after it. */
static int64_t clock_add(int64_t grown, int64_t churn)
{
	if (churn)
		atomic_fetch_add_explicit(&growth_clock.churn, churn, memory_order_relaxed);
	return atomic_fetch_add_explicit(&growth_clock.grown, grown,
					 memory_order_relaxed) + grown;
}

/* Every slot's pending growth onto the clock (a measurement is exact). */
static void clock_collect(void)
{
	int64_t grown, churn;

	shrinker__stock_grown_drain(&grown, &churn);
	if (grown || churn)
		clock_add(grown, churn);
}

/* One reading: cgroup usage or RSS, bytes; -1 if it cannot be had; *cg
 * (if not NULL) says whether it was the cgroup's usage.  probe_lock held. */
static int64_t probe_read_locked(bool *cg)
{
	char buf[32];
	ssize_t n;
	uint64_t v = 0;
	int saved = errno;
	ssize_t i;

	SHRINKER__ASSERT_PROBE_HELD();
	if (cg)
		*cg = false;
	if (atomic_load_explicit(&growth_clock.use_rss, memory_order_relaxed) ||
	    growth_clock.probe_fd < 0) {
		v = shrinker__rss_bytes();
		return v ? (int64_t)v : -1;
	}
	n = pread(growth_clock.probe_fd, buf, sizeof(buf) - 1, 0);
	errno = saved;
	for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (v > (uint64_t)INT64_MAX / 10)
			break;
		v = v * 10 + (uint64_t)(buf[i] - '0');
	}
	/* Whether the descriptor is still the usage file is checked when the
	 * reading is not a number, and every 256th probe anyway (an fstat()
	 * per probe would double an idle wake-up's cost). */
	if (n <= 0 || i == 0 || (i < n && buf[i] != '\n') ||
	    (++growth_clock.probe_checks % 256 == 0 &&
	     !shrinker__fdid_same(growth_clock.probe_fd, &growth_clock.probe_id))) {
		if (!shrinker__fdid_same(growth_clock.probe_fd, &growth_clock.probe_id))
			growth_clock.probe_fd = -1; /* closed under us: never again */
		return -1;
	}
	if (cg)
		*cg = true;
	return (int64_t)v;
}

/* Whether growth since the last probe (grown is the clock's count) has
 * passed the step. */
static bool probe_due(int64_t grown)
{
	return grown - atomic_load_explicit(&growth_clock.grown_probed, memory_order_relaxed) >=
	       (int64_t)atomic_load_explicit(&growth_clock.step, memory_order_relaxed);
}

/* The last estimate, less what was reported since it was made. */
static uint64_t estimate(void)
{
	uint64_t head = atomic_load_explicit(&growth_clock.headroom, memory_order_relaxed);
	int64_t since = atomic_load_explicit(&growth_clock.grown, memory_order_relaxed) -
			atomic_load_explicit(&growth_clock.grown_probed, memory_order_relaxed);

	if (since <= 0)
		return head;
	return head > (uint64_t)since ? head - (uint64_t)since : 0;
}

/* Growth reported recently, decayed to now (probe lock held). */
static uint64_t recent_locked(int64_t grown, uint64_t now)
{
	int64_t fresh = grown - atomic_load_explicit(&growth_clock.grown_probed,
						     memory_order_relaxed);
	int64_t churn = atomic_load_explicit(&growth_clock.churn, memory_order_relaxed);
	double r = growth_clock.recent, halvings;

	SHRINKER__ASSERT_PROBE_HELD();
	/* Refused growth is looked at (it advances the clock) but was not
	 * allocated: it is not memory on its way into the reading. */
	fresh -= churn - growth_clock.churn_probed;
	growth_clock.churn_probed = churn;
	if (now > growth_clock.recent_ns) {
		halvings = (double)(now - growth_clock.recent_ns) / RECENT_HALF_LIFE_NS;
		r = halvings > 60 ? 0 : r / (double)(1ull << (unsigned)halvings) *
					 (1.0 - (halvings - (unsigned)halvings) / 2);
	}
	if (fresh > 0)
		r += (double)fresh;
	growth_clock.recent = r;
	growth_clock.recent_ns = now;
	return (uint64_t)r;
}

/* Probe now and publish the estimate; returns it.  With wait false, a
 * thread that finds another probing returns the estimate instead.  With
 * take (bytes, > 0) and the estimate at least floor + take, take is
 * counted as on its way into the usage (recent) before the estimate is
 * published, and *taken says so: one room is never handed to two braked
 * threads. */
static uint64_t probe_take_room(bool wait, int64_t take,
				uint64_t floor, bool *taken)
{
	int64_t grown, cur, base, head;
	uint64_t est, now = 0;
	bool cg;

	if (!probe_take(wait))
		return estimate();
	grown = atomic_load_explicit(&growth_clock.grown, memory_order_relaxed);
	cur = probe_read_locked(&cg);
	if (cur >= 0)
		now = shrinker__now_ns();
	if (cg)
		atomic_store_explicit(&growth_clock.cg_probe_ns, now, memory_order_relaxed);
	/* The two figures of one measurement: both are written under the
	 * probe lock. */
	head = (int64_t)atomic_load_explicit(&growth_clock.measured, memory_order_relaxed);
	base = atomic_load_explicit(&growth_clock.base, memory_order_relaxed);
	if (cur >= 0 && base >= 0) {
		/* The measurement's headroom, less what was used since, less
		 * what was reported lately: memory allocated and not yet
		 * touched is not in the reading, and several threads may
		 * each have a block of it (a sum of recent reports that
		 * halves every RECENT_HALF_LIFE_NS covers them). */
		head -= cur - base;
		head -= (int64_t)recent_locked(grown, now);
	} else {
		/* No reading: trust what the program reported. */
		head -= grown - atomic_load_explicit(&growth_clock.grown_measured,
						     memory_order_relaxed);
	}
	est = head > 0 ? (uint64_t)head : 0;
	if (take > 0 && est >= floor && est - floor >= (uint64_t)take) {
		growth_clock.recent += (double)take;
		est -= (uint64_t)take;
		*taken = true;
	}
	atomic_store_explicit(&growth_clock.headroom, est, memory_order_relaxed);
	atomic_store_explicit(&growth_clock.grown_probed, grown, memory_order_relaxed);
	atomic_fetch_add_explicit(&growth_clock.probes, 1, memory_order_relaxed);
	set_step(est);
	probe_give();

	if (est < atomic_load_explicit(&growth_clock.soft, memory_order_relaxed))
		shrinker__measure_ask_once();
	return est;
}

static uint64_t probe(bool wait)
{
	return probe_take_room(wait, 0, 0, NULL);
}

bool shrinker__growth_quiet(int64_t *moved_out)
{
	int64_t cur, base, moved;

	probe_take(true);
	cur = probe_read_locked(NULL);
	base = atomic_load_explicit(&growth_clock.base, memory_order_relaxed);
	probe_give();
	if (cur < 0 || base < 0)
		return false;
	moved = cur - base;
	if ((moved < 0 ? -moved : moved) >=
	    (int64_t)atomic_load_explicit(&growth_clock.step, memory_order_relaxed))
		return false;
	*moved_out = moved;
	return true;
}

void shrinker__growth_measured_locked(uint64_t headroom, uint64_t soft, uint64_t hard,
				      int64_t base, bool use_rss)
{
	SHRINKER__ASSERT_MON_HELD();
	probe_take(true);
	clock_collect();
	atomic_store(&growth_clock.base, base);
	atomic_store(&growth_clock.measured, headroom);
	atomic_store(&growth_clock.use_rss, use_rss);
	atomic_store(&growth_clock.headroom, headroom);
	atomic_store(&growth_clock.hard, hard);
	atomic_store(&growth_clock.soft, soft);
	atomic_store(&growth_clock.grown_probed, atomic_load(&growth_clock.grown));
	atomic_store(&growth_clock.grown_measured, atomic_load(&growth_clock.grown));
	/* Refusals before the measurement are behind it, as the growth is:
	 * left in, they took the next reports out of the recent growth. */
	growth_clock.churn_probed = atomic_load(&growth_clock.churn);
	set_step(headroom);
	probe_give();
	atomic_store_explicit(&growth_clock.measured_once, true, memory_order_release);
	shrinker__brake_kick();
}

void shrinker__growth_reopen_locked(int version, const char *dir)
{
	char path[SHRINKER__PATH_MAX];
	int fd = -1, saved = errno;

	SHRINKER__ASSERT_MON_HELD();
	if (version &&
	    shrinker__join(path, sizeof(path), dir,
			   version == 2 ? "memory.current" : "memory.usage_in_bytes") == 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	probe_take(true);
	if (growth_clock.probe_fd >= 0 && shrinker__fdid_same(growth_clock.probe_fd, &growth_clock.probe_id))
		close(growth_clock.probe_fd);
	growth_clock.probe_fd = fd;
	shrinker__fdid_take(fd, &growth_clock.probe_id);
	probe_give();
	errno = saved;
}

int64_t shrinker__growth_count(void)
{
	return atomic_load_explicit(&growth_clock.grown, memory_order_relaxed) +
	       shrinker__stock_grown_pending();
}

void shrinker__growth_arm(bool armed)
{
	atomic_store(&growth_clock.armed, armed);
}

void shrinker__brake_futile(bool futile)
{
	atomic_store(&growth_clock.hard_freed_none, futile);
}

uint64_t shrinker__brake_held(void)
{
	int64_t h = atomic_load_explicit(&growth_clock.held, memory_order_relaxed);

	return h > 0 ? (uint64_t)h : 0;
}

uint64_t shrinker__growth_cg_probed_ns(void)
{
	return atomic_load_explicit(&growth_clock.cg_probe_ns, memory_order_relaxed);
}

bool shrinker__growth_measured(void)
{
	return atomic_load_explicit(&growth_clock.measured_once, memory_order_acquire);
}

void shrinker__growth_forget(void)
{
	atomic_store(&growth_clock.cg_probe_ns, 0);
	atomic_store(&growth_clock.measured_once, false);
}

void shrinker__growth_stats(uint64_t *probes, uint64_t *brake_waits,
			    uint64_t *brake_ns)
{
	*probes = atomic_load(&growth_clock.probes);
	*brake_waits = atomic_load(&growth_clock.brake_waits);
	*brake_ns = atomic_load(&growth_clock.brake_ns);
}

void shrinker__growth_atfork_child(void)
{
	/* Made anew: a thread of the parent may have held it. */
	pthread_mutex_init(&growth_clock.probe_lock, NULL);
}

/* Growth of delta bytes, churn of them refused: on this CPU's slot until
 * it holds the flush mark, then on the clock, and a probe when a step has
 * passed. */
static void note(int64_t delta, int64_t churn)
{
	int64_t grown, taken, taken_churn;

	if (!shrinker__stock_grow(delta, churn,
				  atomic_load_explicit(&growth_clock.flush, memory_order_relaxed),
				  &taken, &taken_churn))
		return;
	grown = clock_add(taken, taken_churn);
	if (!shrinker__growth_measured())
		return;
	if (!probe_due(grown))
		return;
	probe(false);
}

void shrinker__growth_churn(int64_t bytes)
{
	if (bytes > 0)
		note(bytes, bytes);
}

void shrinker__growth_note(int64_t delta)
{
	/* Only growth counts.  Memory freed on one thread must not hide what
	 * another allocates: freed heap is not given back until the trim,
	 * and may not be where the growing thread allocates. */
	if (delta > 0)
		note(delta, 0);
}

void shrinker__brake_kick(void)
{
	if (!atomic_load_explicit(&brake_waiters, memory_order_acquire))
		return;
	pthread_mutex_lock(&brake_lock);
	brake_gen++;
	pthread_cond_broadcast(&brake_cond);
	pthread_mutex_unlock(&brake_lock);
}

/* Wait for the next kick, or until the tick or the deadline passes. */
static void wait_kick(uint64_t deadline_ns)
{
	uint64_t now = shrinker__now_ns(), until = now + BRAKE_TICK_NS, gen;
	struct timespec ts;

	if (until > deadline_ns)
		until = deadline_ns;
	shrinker__deadline_in(&ts, until - now);
	pthread_mutex_lock(&brake_lock);
	gen = brake_gen;
	while (gen == brake_gen)
		if (pthread_cond_timedwait(&brake_cond, &brake_lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&brake_lock);
}

/* Ask the reclaimer to look again, at most every BRAKE_TICK_NS whatever
 * the number of held threads: a shrinker that says it freed while usage
 * does not move must not be called in a storm. */
static void poke_rate_limited(void)
{
	uint64_t now = shrinker__now_ns();
	uint64_t last = atomic_load_explicit(&growth_clock.poke_ns, memory_order_relaxed);

	if (now - last < BRAKE_TICK_NS ||
	    !atomic_compare_exchange_strong(&growth_clock.poke_ns, &last, now))
		return;
	shrinker__measure_ask_once();
}

/* Hold the calling thread, which reported delta bytes it is about to
 * allocate, while headroom is below the hard watermark.  While it waits,
 * its report is held (shrinker__brake_held()), which the reclaimer makes
 * room for; it is let go when the estimate leaves room for its delta above
 * the hard watermark, which then counts as on its way (probe_take_room()):
 * 32 threads about to allocate 1 MiB each, let go together by one
 * measurement on a room each of them also took, overran a 64 MiB cgroup. */
static int brake(int64_t delta)
{
	uint64_t hard = atomic_load_explicit(&growth_clock.hard, memory_order_relaxed);
	uint64_t start, now, deadline;
	int r = 0;

	if (exempt || !shrinker__growth_measured() ||
	    !atomic_load_explicit(&growth_clock.armed, memory_order_relaxed))
		return 0;
	/* Probe unless the estimate is fresh and clear: a report whose probe
	 * another thread's probe pre-empted must still be looked at. */
	if (estimate() >= hard &&
	    !probe_due(atomic_load_explicit(&growth_clock.grown, memory_order_relaxed)))
		return 0;
	if (probe(true) >= hard ||
	    atomic_load_explicit(&growth_clock.hard_freed_none, memory_order_relaxed))
		return 0;
	start = shrinker__now_ns();
	deadline = start + BRAKE_MAX_NS;
	atomic_fetch_add(&brake_waiters, 1);
	atomic_fetch_add_explicit(&growth_clock.held, delta, memory_order_relaxed);
	for (;;) {
		bool taken = false;

		poke_rate_limited();
		wait_kick(deadline);
		probe_take_room(true, delta, hard, &taken);
		if (taken) {
			shrinker__debug("brake: released after %llu us, est %llu KiB",
				(unsigned long long)(shrinker__now_ns() - start) / 1000,
				(unsigned long long)atomic_load(&growth_clock.headroom) >> 10);
			r = 1;
			break;
		}
		now = shrinker__now_ns();
		if (now >= deadline) {
			shrinker__debug("brake: a thread waited %llu ms, headroom "
					"still %llu KiB (hard watermark %llu KiB)",
					(unsigned long long)(now - start) / 1000000,
					(unsigned long long)atomic_load(&growth_clock.headroom) >> 10,
					(unsigned long long)hard >> 10);
			r = -ETIMEDOUT;
			break;
		}
		if (atomic_load_explicit(&growth_clock.hard_freed_none, memory_order_relaxed))
			break;
	}
	atomic_fetch_sub_explicit(&growth_clock.held, delta, memory_order_relaxed);
	atomic_fetch_sub(&brake_waiters, 1);
	atomic_fetch_add(&growth_clock.brake_waits, 1);
	atomic_fetch_add(&growth_clock.brake_ns, shrinker__now_ns() - start);
	return r;
}

int shrinker__growth_account(int64_t delta, bool wait)
{
	shrinker__growth_note(delta);
	if (!wait || delta <= 0)
		return 0;
	return brake(delta);
}
