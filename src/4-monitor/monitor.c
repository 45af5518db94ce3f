/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: turns the kernel's raw signals into shrink requests.  The
 * measurement (limits, working set, watermarks, rate) is measure.c's and
 * the sources are monitor-*.c's, one file each, behind source.h; this file
 * opens the sources, polls them through the reclaimer thread, coalesces
 * whatever fired into one measurement and one decision (shrinker__decide(),
 * pure), takes our part of it among the processes of the cgroup (peers.c),
 * keeps the hold-off that prevents event storms and the adaptive poll
 * interval (earlyoom's idea: the closer to the limit and the faster the
 * growth, the sooner the next look), grants room to grow
 * (shrinker_may_grow()) from the published figures without a system call,
 * and says which sources are active and why others are not.  Nothing here
 * allocates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "1-base/files.h"
#include "1-base/parse.h"
#include "2-kernel/peers.h"
#include "3-model/growth.h"
#include "3-model/room.h"
#include "4-monitor/kinds.h"
#include "4-monitor/monitor.h"
#include "internal.h"

/* Polling where no kernel event covers the soft watermark: the interval is
 * the time the observed growth needs to use half the distance to it, from
 * POLL_MIN_MS, and SHRINKER__POLL_FLAT_MS while nothing grows; POLL_MIN_MS
 * while the soft watermark is below its ceiling because the program's
 * growth watches the usage (watermarks.c).  Growth the
 * program reports is watched by the growth clock (growth.c) between polls.
 * Before any growth was seen the first looks come sooner (doubling from
 * SHRINKER__POLL_START_MS): a program that fills right after starting has
 * shown no rate yet, and its growth may be what nobody reports. */
#define POLL_MIN_MS 10
/* ... doubling at each look that finds nothing changed, up to this. */
#define POLL_IDLE_MS 8000
#define QUIET_MAX_NS 10000000000ull
#define HOLDOFF_MIN_NS 250000000ull
#define HOLDOFF_MAX_NS 5000000000ull
#define HARD_RETRY_NS 100000000ull
/* Moving cgroup v1's thresholds waits while REARM_MARGIN times what the
 * growth seen takes during an arming, timed at no less than REARM_MIN_NS,
 * would reach the soft watermark (shrinker__rearm_in_time()). */
#define REARM_MARGIN 4
#define REARM_MIN_NS 10000000ull
/* After a shrink, shrinker_may_grow() says no for this long: until the next
 * measurements have seen whether the pressure goes on.  What keeps a cache
 * from refilling into a competitor that is still growing is the soft
 * watermark, which that growth raised (measure.c); a fixed second after
 * every hard shrink kept the caches at 57-69 % of what they could use. */
#define NO_REFILL_SOFT_NS 100000000ull
#define NO_REFILL_HARD_NS 300000000ull
/* A request that times the caches' give-back (calibrate_locked()) is a
 * step of the watermarks (shrinker__step()), asked again after
 * CALIBRATE_EVERY_NS while none has taught (or CALIBRATE_SLOW_NS while the
 * give-back is timed slow), then twice as long each time up to
 * CALIBRATE_MAX_NS. */
#define CALIBRATE_EVERY_NS 10000000000ull
#define CALIBRATE_SLOW_NS 1000000000ull
#define CALIBRATE_MAX_NS 640000000000ull /* 10 min 40 s: 10 s doubled 6 times */


/* The monitor's own state (mon lock, but for the counters). */
static struct {
	int poll_src[SHRINKER__SRC_COUNT]; /* pollfd index -> source */
	/* Timing the caches' give-back (calibrate_due_locked()). */
	uint64_t calibrate_ns;       /* when it last asked to time it */
	uint64_t calibrate_every_ns; /* and how long it waits to ask again */
	uint64_t calibrate_first_ns; /* the first wait of that back-off */
	bool rearm_waits;            /* moving the v1 thresholds waits for
					the growth to slow */
	/* No storms (shrinker__monitor_done()). */
	uint64_t holdoff_ns, holdoff_until_ns; /* after requests that did not
						  help */
	uint64_t hard_backoff_ns, hard_not_before_ns; /* after hard ones */
	/* Counters, added to the global statistics. */
	_Atomic uint64_t events, soft_events, hard_events, held_off;
} mon;

bool shrinker__decide(const struct shrinker_memory *mem,
		      enum shrinker__signal sig, uint64_t ahead, uint64_t *target,
		      bool *hard)
{
	uint64_t soft = mem->soft_watermark, nudge = shrinker__band(soft);
	uint64_t deficit = mem->headroom < soft ? soft - mem->headroom : 0;

	if (deficit) {
		/* Back to the top of the band, plus what the growth in
		 * progress will take while the shrinkers run: a competitor
		 * faster than one round is freed for in one go, not a band
		 * at a time while it waits in the kernel's reclaim. */
		if (ahead > mem->limit / 4)
			ahead = mem->limit / 4;
		*target = deficit + nudge + ahead;
		/* Below the hard watermark, or the kernel is already reclaiming
		 * hard while we are short: no time for politeness.  Once the
		 * limit is reached every allocating thread, ours included,
		 * blocks in the kernel, possibly holding the allocator's lock
		 * that the shrinkers need to free: ask for a whole soft
		 * watermark at least. */
		*hard = mem->headroom < mem->hard_watermark ||
			sig >= SHRINKER__SIG_RECLAIM;
		if (*hard && *target < soft)
			*target = soft;
		return true;
	}
	if (sig == SHRINKER__SIG_HARD || sig == SHRINKER__SIG_SOFT) {
		/* The kernel or systemd says memory is tight, though our own
		 * headroom looks fine (page cache, or someone else's growth
		 * on the host): give back a little, softly. */
		*target = nudge;
		*hard = false;
		return true;
	}
	return false;
}

/* The decision on the last measurement (mon lock held), and room for the
 * brake's held threads: each is let go when the headroom holds what it
 * reported above the hard watermark, so while they wait the request makes
 * the headroom the hard watermark plus all they reported (hard: threads
 * are waiting, as on OSv).  Not the soft watermark plus all of it: the
 * caches would stay that much below the limit while nobody waits. */
static bool decide_locked(const struct shrinker__mon *m, enum shrinker__signal sig,
			  uint64_t ahead, uint64_t *target, bool *hard)
{
	uint64_t held = shrinker__brake_held(), room;
	bool need;

	SHRINKER__ASSERT_MON_HELD();
	need = shrinker__decide(&m->mem, sig, ahead, target, hard);
	room = m->mem.hard_watermark + held;
	if (!held || m->mem.headroom >= room)
		return need;
	/* And a band over it, as any request: not a stream of small ones. */
	room += shrinker__band(m->mem.soft_watermark);
	if (!need || *target < room - m->mem.headroom)
		*target = room - m->mem.headroom;
	*hard = true;
	return true;
}

/* What the growth in progress, other than the growth the library granted,
 * takes during one reaction (mon lock held): once, not twice as for the
 * watermark, or the last request of a squeeze frees for growth that has
 * ended. */
static uint64_t ahead_locked(const struct shrinker__mon *m)
{
	double b = m->rate_others * (double)shrinker__reaction_need_ns(1) / 1e9;

	SHRINKER__ASSERT_MON_HELD();
	return b > 0 ? (uint64_t)b : 0;
}

/* Our part of a target when other libshrinker processes measure the same
 * limit (peers.c): of what the others did not give back since our reading
 * began, nor are freeing now, in proportion to our resident share; on hard
 * pressure at least what brings the headroom back to the hard watermark
 * (less what they gave back), which nobody else may be quick enough to
 * free (mon lock held). */
static uint64_t our_part_locked(const struct shrinker__mon *m, uint64_t target,
				bool hard)
{
	uint64_t way, back, most = m->peers.total - m->peers.self, rest, part;
	uint64_t hw = m->mem.hard_watermark, head = m->mem.headroom;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__peers_others(m->read_ns, &way, &back);
	/* What came back is in the others' resident sizes no more. */
	if (back > most)
		back = most;
	target = target > back ? target - back : 0;
	head += back;
	/* What is under way may be slow to come: left out of our part, not
	 * of the floor on hard pressure. */
	rest = target > way ? target - way : 0;
	part = shrinker__peers_part(&m->peers, rest);
	if (hard && hw > head && part < hw - head)
		part = hw - head < target ? hw - head : target;
	return part;
}

/* Whether to time the caches' give-back now (mon lock held): the soft
 * watermark stays at its ceiling until a request has timed it, and above
 * its floor while it is slow (watermarks.c); nothing else asks while the
 * caches stop at it.  When they have filled up to it (the top of its band,
 * give or take a step of the watermarks: caches stop a block short of
 * it), a small soft request times it, so that the room between the
 * ceiling and the floor is not lost to a cache that gives back fast, nor
 * to one that was timed once while the machine was busy (a 2 MiB request
 * took 4.6 ms, 438 MiB/s, beside a peer growing at 265 MiB/s on two
 * cores: twice the floor, for good, in a process that gave back at
 * 2-10 GiB/s).  Untaught, it asks again after CALIBRATE_EVERY_NS; timed
 * slow, after CALIBRATE_SLOW_NS (a 2 MiB timing is mostly the trim's and
 * the scheduler's latency: 1.5 MiB took 5 ms beside two threads growing
 * at full speed on two cores, and the floor stayed at 9 % of the limit
 * for the next 10 s); then each twice as long as the last, up to
 * CALIBRATE_MAX_NS: caches that free nothing, or memory that does not
 * come back (the page cache, shared memory), never teach, and slow ones
 * stay slow. */
static uint64_t calibrate_first_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	return shrinker__watermarks_state_locked() & SHRINKER__SOFT_UNPROVEN
		       ? CALIBRATE_EVERY_NS : CALIBRATE_SLOW_NS;
}

static bool calibrate_due_locked(const struct shrinker__mon *m, uint64_t now)
{
	const struct shrinker_memory *mem = &m->mem;
	uint64_t top = mem->soft_watermark + shrinker__band(mem->soft_watermark);
	uint64_t step = shrinker__step(mem->limit);
	uint64_t first = calibrate_first_locked();
	uint64_t wait = mon.calibrate_first_ns == first ? mon.calibrate_every_ns : first;
	uint64_t last = mon.calibrate_ns, timed = shrinker__giveback_timed_ns();

	SHRINKER__ASSERT_MON_HELD();
	/* A request that timed the give-back since counts as a timing: a
	 * cache of malloc()ed entries whose churn the library asks to trim
	 * several times a second was asked for a timing all the same, and
	 * its trim (120 ms under a competitor here) held the library's
	 * thread while the competitor took the headroom. */
	if (timed > last)
		last = timed;
	return (shrinker__watermarks_state_locked() &
		(SHRINKER__SOFT_UNPROVEN | SHRINKER__SOFT_SLOW)) && m->have_mem &&
	       mem->headroom <= top + step && !(last && now - last < wait);
}

static bool calibrate_locked(const struct shrinker__mon *m, uint64_t *target)
{
	const struct shrinker_memory *mem = &m->mem;
	uint64_t now = shrinker__now_ns(), first;

	SHRINKER__ASSERT_MON_HELD();
	if (!calibrate_due_locked(m, now))
		return false;
	first = calibrate_first_locked();
	mon.calibrate_every_ns = !mon.calibrate_ns || mon.calibrate_first_ns != first ? first
			      : mon.calibrate_every_ns * 2 > CALIBRATE_MAX_NS ? CALIBRATE_MAX_NS
			      : mon.calibrate_every_ns * 2;
	mon.calibrate_first_ns = first;
	mon.calibrate_ns = now;
	*target = shrinker__step(mem->limit);
	shrinker__debug("the caches filled up to the soft watermark: asking for %llu KiB "
			"to time how fast they give memory back (again in %.0f s, if "
			"it does not teach or finds them slow)", (unsigned long long)*target >> 10,
			mon.calibrate_every_ns / 1e9);
	return true;
}

/* Whether cgroup v1's thresholds sit elsewhere than the watermarks now. */
static bool thresholds_stale_locked(const struct shrinker__mon *m)
{
	const struct shrinker__source *thr = shrinker__source_locked(SHRINKER__SRC_CGV1_THRESHOLD);

	SHRINKER__ASSERT_MON_HELD();
	return m->cg.version == 1 && thr->active && m->bind.binds &&
	       m->bind.limit != UINT64_MAX && m->mem.soft_watermark < m->bind.limit &&
	       thr->armed_soft != m->bind.limit - m->mem.soft_watermark;
}

bool shrinker__rearm_in_time(double rate, uint64_t arm_ns, uint64_t headroom,
			     uint64_t holes, uint64_t soft, uint64_t *use)
{
	uint64_t room = headroom > holes ? headroom - holes : 0;
	uint64_t dist = room > soft ? room - soft : 0;
	double u;

	if (arm_ns < REARM_MIN_NS)
		arm_ns = REARM_MIN_NS;
	u = rate > 0 ? rate * (double)arm_ns / 1e9 * REARM_MARGIN : 0;
	*use = u >= 1.8e19 ? UINT64_MAX : (uint64_t)u;
	return *use < dist;
}

/* Whether the thresholds can be moved to the watermarks now
 * (shrinker__rearm_in_time()); the change is logged. */
static bool rearm_in_time_locked(const struct shrinker__mon *m)
{
	uint64_t holes = shrinker__holes_locked(shrinker__now_ns()), use;
	bool ok;

	SHRINKER__ASSERT_MON_HELD();
	ok = shrinker__rearm_in_time(m->rate,
				     shrinker__source_locked(SHRINKER__SRC_CGV1_THRESHOLD)->arm_ns,
				     m->mem.headroom, holes, m->mem.soft_watermark, &use);
	if (ok == mon.rearm_waits)
		shrinker__debug(ok ? "the thresholds follow the watermarks again"
				   : "moving the thresholds waits: growth of %.0f MiB/s "
				     "would use %llu KiB while it blocks, with %llu KiB of "
				     "headroom (%llu KiB of it holes) and a soft watermark "
				     "of %llu KiB; looking every %d ms or sooner instead",
				m->rate / 1048576.0, (unsigned long long)use >> 10,
				(unsigned long long)m->mem.headroom >> 10,
				(unsigned long long)holes >> 10,
				(unsigned long long)m->mem.soft_watermark >> 10, POLL_MIN_MS);
	mon.rearm_waits = !ok;
	return ok;
}

static void rearm_locked(const struct shrinker__mon *m)
{
	struct shrinker__source *thr = shrinker__source_locked(SHRINKER__SRC_CGV1_THRESHOLD);

	SHRINKER__ASSERT_MON_HELD();
	if (m->cg.version == 1 && thr->active)
		shrinker__cgv1_rearm(m, thr);
}

/* The poll "source": no descriptor, the timed looks (mon lock held). */
static void poll_open(const struct shrinker__mon *m, struct shrinker__source *p)
{
	(void)m;
	p->active = true;
	snprintf(p->detail, sizeof(p->detail),
		 "half the distance to the soft watermark at the growth rate, "
		 "%d ms to %d s (%d s idle; %d ms while the program's growth "
		 "probes usage); no kernel event covers it", POLL_MIN_MS,
		 SHRINKER__POLL_FLAT_MS / 1000, POLL_IDLE_MS / 1000, POLL_MIN_MS);
}

/* Each source: how it opens, and the cgroup version it needs (0: any). */
static const struct {
	shrinker__open_fn *open;
	int version;
} kinds[SHRINKER__SRC_COUNT] = {
	[SHRINKER__SRC_LIMITS] = { shrinker__limits_open, 0 },
	[SHRINKER__SRC_CGV1_THRESHOLD] = { shrinker__cgv1_rearm, 1 },
	[SHRINKER__SRC_CGV1_MEDIUM] = { shrinker__cgv1_medium_open, 1 },
	[SHRINKER__SRC_CGV1_CRITICAL] = { shrinker__cgv1_critical_open, 1 },
	[SHRINKER__SRC_CGV2_EVENTS] = { shrinker__cgv2_events_open, 2 },
	[SHRINKER__SRC_CGV2_PSI] = { shrinker__cgv2_psi_open, 2 },
	[SHRINKER__SRC_PSI_SYSTEM] = { shrinker__psi_system_open, 0 },
	[SHRINKER__SRC_SYSTEMD] = { shrinker__systemd_open, 0 },
	[SHRINKER__SRC_POLL] = { poll_open, 0 },
};

/* Open every source for the cgroup in m->cg (mon lock held), in the
 * table's order, except those SHRINKER_SOURCES turned off (not opened at
 * all: the cgroup v1 thresholds would cost an RCU grace period each for
 * nothing) and those of the other cgroup version, which say why. */
static void open_sources_locked(const struct shrinker__mon *m)
{
	unsigned i;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__sources_reset_locked("not used here");
	for (i = 0; i < SHRINKER__SRC_COUNT; i++) {
		struct shrinker__source *s = shrinker__source_locked(i);

		if (shrinker__source_off_locked((enum shrinker__src_id)i))
			shrinker__source_close(s, "turned off by SHRINKER_SOURCES");
		else if (kinds[i].version && kinds[i].version != m->cg.version)
			snprintf(s->detail, sizeof(s->detail), "%s",
				 !m->cg.version ? "no memory cgroup"
				 : m->cg.version == 1 ? "cgroup v1 here" : "cgroup v2 here");
		else
			kinds[i].open(m, s);
	}
	shrinker__debug("sources open; cgroup v%d %s; %s", m->cg.version,
			m->cg.version ? m->cg.dir : m->cg.why,
			shrinker__source_locked(SHRINKER__SRC_CGV1_THRESHOLD)->detail);
}

static void close_sources_locked(const struct shrinker__mon *m, const char *why)
{
	unsigned i;

	SHRINKER__ASSERT_MON_HELD();
	for (i = 0; i < SHRINKER__SRC_COUNT; i++)
		shrinker__source_close(shrinker__source_locked(i), why);
}

void shrinker__monitor_open(void)
{
	const struct shrinker__mon *m = shrinker__measured();

	shrinker__mon_lock();
	if (shrinker__sources_opened_locked()) {
		shrinker__mon_unlock();
		return;
	}
	shrinker__measure_find_locked();
	if (!m->cg.version)
		shrinker__debug("no memory cgroup: %s", m->cg.why);
	shrinker__measure_locked();
	open_sources_locked(m);
	shrinker__sources_set_opened_locked(true);
	shrinker__growth_arm(true);
	/* Thresholds crossed before they were armed never fire: measure again
	 * right away, now that they are. */
	shrinker__measure_ask();
	shrinker__mon_unlock();
}

void shrinker__monitor_close(void)
{
	const struct shrinker__mon *m = shrinker__measured();

	shrinker__mon_lock();
	shrinker__growth_arm(false);
	close_sources_locked(m, "stopped");
	shrinker__sources_set_opened_locked(false);
	shrinker__mon_unlock();
	shrinker__brake_kick();
}

unsigned shrinker__monitor_fill(struct pollfd *fds, unsigned max)
{
	unsigned i, n = 0;

	shrinker__mon_lock();
	for (i = 0; i < SHRINKER__SRC_COUNT && n < max; i++) {
		struct shrinker__source *s = shrinker__source_locked(i);

		if (s->fd >= 0 && !s->id.valid)
			shrinker__fdid_take(s->fd, &s->id);
		if (s->aux_fd >= 0 && !s->aux_id.valid)
			shrinker__fdid_take(s->aux_fd, &s->aux_id);
		if (s->fd < 0)
			continue;
		fds[n] = (struct pollfd){ .fd = s->fd, .events = s->events };
		mon.poll_src[n++] = (int)i;
	}
	shrinker__mon_unlock();
	return n;
}

/* Whether a kernel notification will come when the working set reaches the
 * soft watermark: only cgroup v1 thresholds do that, and only while usage
 * (page cache included) is below the armed level. */
static bool covered_locked(const struct shrinker__mon *m)
{
	const struct shrinker__source *thr = shrinker__source_locked(SHRINKER__SRC_CGV1_THRESHOLD);

	SHRINKER__ASSERT_MON_HELD();
	/* Not by thresholds left beyond the soft watermark while their move
	 * waits (rearm_in_time_locked()): they would fire late. */
	return shrinker__cgv1_armed_locked(m) && m->bind.usage < thr->armed_soft &&
	       (!thresholds_stale_locked(m) ||
		thr->armed_soft <= m->bind.limit - m->mem.soft_watermark);
}

int shrinker__monitor_timeout_ms(void)
{
	const struct shrinker__mon *m = shrinker__measured();
	uint64_t now = shrinker__now_ns(), dist;
	unsigned flat;
	double rate, ms;
	int r;

	if (shrinker__measure_asked())
		return 0; /* asked to measure now */
	shrinker__mon_lock();
	if (!m->have_mem) {
		/* Nothing could be measured: nothing to poll either. */
		shrinker__mon_unlock();
		return -1;
	}
	if (m->mem.headroom < m->mem.soft_watermark) {
		/* Still short (held off, or nobody could free): look again
		 * when the hold-off ends, and at least now and then. */
		uint64_t wait = mon.holdoff_until_ns > now ? mon.holdoff_until_ns - now
							  : 0;
		uint64_t until_hard = mon.hard_not_before_ns > now
					      ? mon.hard_not_before_ns - now : 0;

		if (until_hard > wait)
			wait = until_hard;
		ms = (double)wait / 1e6;
		r = ms < POLL_MIN_MS ? POLL_MIN_MS : ms > 1000 ? 1000 : (int)ms;
		shrinker__mon_unlock();
		return r;
	}
	if (shrinker__watermarks_state_locked() & SHRINKER__SOFT_WATCHED) {
		/* Within reach of where the ceiling would have put the
		 * watermark: the floor holds while the program's probes and
		 * these looks watch the usage (watermarks.c). */
		uint64_t ceiling, ceiling_hard;

		shrinker__ceilings_locked(m->mem.limit, &ceiling, &ceiling_hard);
		if (m->mem.headroom < ceiling + shrinker__band(ceiling)) {
			shrinker__mon_unlock();
			return POLL_MIN_MS;
		}
	}
	if (covered_locked(m) || !shrinker__source_locked(SHRINKER__SRC_POLL)->active) {
		shrinker__mon_unlock();
		return -1;
	}
	dist = m->mem.headroom - m->mem.soft_watermark;
	rate = m->rate;
	flat = m->flat_ms;
	shrinker__mon_unlock();
	if (rate < 1.0)
		return (int)flat;
	/* Half the distance, so that the next look still comes in time if
	 * the growth speeds up to twice what was seen. */
	ms = (double)dist / (2.0 * rate) * 1000.0;
	if (ms < POLL_MIN_MS)
		return POLL_MIN_MS;
	if (ms > flat)
		return (int)flat;
	return (int)ms;
}

/* Some descriptor of ours was closed under the library (a daemon closing
 * every descriptor after start-up): forget every one that is not ours any
 * more, without reading or closing it, and open the sources again. */
static void lost_sources_locked(const struct shrinker__mon *m)
{
	unsigned i;

	SHRINKER__ASSERT_MON_HELD();
	for (i = 0; i < SHRINKER__SRC_COUNT; i++) {
		struct shrinker__source *s = shrinker__source_locked(i);

		if (s->fd >= 0 && !shrinker__fdid_same(s->fd, &s->id)) {
			s->fd = -1;
			s->id.valid = false;
		}
		if (s->aux_fd >= 0 && !shrinker__fdid_same(s->aux_fd, &s->aux_id)) {
			s->aux_fd = -1;
			s->aux_id.valid = false;
		}
	}
	shrinker__debug("descriptors closed under the library: sources reopened");
	shrinker__sources_reopen_locked();
}

/* A timed look that finds usage where the last measurement left it (one
 * read of the usage file, by the growth clock's probe) skips the full
 * measurement, which reads every limit file, memory.stat and meminfo: an
 * idle process costs one pread() a poll.  Every QUIET_MAX_NS a full one is
 * made anyway (a move to another cgroup is seen there). */
static bool quiet_locked(const struct shrinker__mon *m)
{
	uint64_t now = shrinker__now_ns(), ws, rss;
	int64_t moved;

	SHRINKER__ASSERT_MON_HELD();
	/* Not while a calibration is due: a program that measures often
	 * (shrinker_get_memory()) keeps the growth quiet between its readings,
	 * and the watermark stayed at its ceiling. */
	if (!m->have_mem || m->mem.headroom < m->mem.soft_watermark ||
	    now - m->mem.measured_ns > QUIET_MAX_NS || calibrate_due_locked(m, now) ||
	    shrinker__watch_lapsed_locked(now) ||
	    shrinker__page_cache_full_locked(&m->bind, m->mem.working_set) ||
	    !shrinker__growth_quiet(&moved))
		return false;
	/* Little grew: the rate follows the reading, and the next look comes
	 * later.  The sample ends at the working set the reading shows, not
	 * the last measurement's: the growth of a step, seen later in a
	 * sample of 10 ms, was a rate of GiB/s.  A sample it did not take
	 * (too soon, or a deferred callback still freeing) leaves the
	 * sample's start where it was: the freed bytes not yet counted
	 * belong to it. */
	ws = moved < 0 && (uint64_t)-moved > m->mem.working_set
		     ? 0 : (uint64_t)((int64_t)m->mem.working_set + moved);
	ws = shrinker__rate_base(&m->bind, ws);
	/* Our RSS only while a trim's holes may be faulting in again (one
	 * pread() of statm): the rate leaves that out. */
	rss = shrinker__holes_locked(now) ? shrinker__rss_bytes() : 0;
	shrinker__measure_quiet_locked(ws, rss, now, POLL_IDLE_MS);
	return true;
}

/* Read what fired (mon lock held): the strongest signal, and whether
 * anything fired at all. */
static enum shrinker__signal read_fired_locked(const struct shrinker__mon *m,
					       const struct pollfd *fds,
					       unsigned n, bool *fired)
{
	enum shrinker__signal sig = SHRINKER__SIG_MEASURE, got;
	unsigned i;

	SHRINKER__ASSERT_MON_HELD();
	*fired = false;
	for (i = 0; i < n; i++) {
		struct shrinker__source *s = shrinker__source_locked(mon.poll_src[i]);

		if (!fds[i].revents || s->fd != fds[i].fd)
			continue;
		*fired = true;
		if ((fds[i].revents & POLLNVAL) || !shrinker__fdid_same(s->fd, &s->id)) {
			/* Closed under us, and perhaps reused by the program:
			 * neither read nor closed; every source is checked and
			 * all are opened again. */
			lost_sources_locked(m);
			continue;
		}
		got = s->handle ? s->handle(s, fds[i].revents) : SHRINKER__SIG_MEASURE;
		if (got > sig)
			sig = got;
		if (got >= SHRINKER__SIG_RECLAIM)
			shrinker__debug("%s: pressure (%s)", s->name,
					got == SHRINKER__SIG_HARD ? "hard" :
					got == SHRINKER__SIG_SOFT ? "confirmed" :
					"reclaim at the limit: counts only if "
					"the headroom is short");
	}
	if (*fired)
		atomic_fetch_add(&mon.events, 1);
	return sig;
}

/* Whether a request the decision wants waits (mon lock held): a hard one
 * after hard ones that did not help, a soft one during the hold-off. */
static bool waits_locked(const struct shrinker__mon *m, uint64_t target, bool hard)
{
	uint64_t now = shrinker__now_ns();

	SHRINKER__ASSERT_MON_HELD();
	if (hard && now < mon.hard_not_before_ns) {
		shrinker__debug("hard shrink of %llu KiB waits %llu ms more: the "
				"last ones did not help", (unsigned long long)target >> 10,
				(unsigned long long)(mon.hard_not_before_ns - now) / 1000000);
		return true;
	}
	if (!hard && now < mon.holdoff_until_ns) {
		atomic_fetch_add(&mon.held_off, 1);
		shrinker__debug("soft shrink of %llu KiB held off for %llu ms more",
				(unsigned long long)target >> 10,
				(unsigned long long)(mon.holdoff_until_ns - now) / 1000000);
		return true;
	}
	return false;
}

static void log_request_locked(const struct shrinker__mon *m, uint64_t target,
			       bool hard)
{
	SHRINKER__ASSERT_MON_HELD();
	shrinker__debug("%s shrink of %llu KiB: headroom %llu KiB, soft watermark "
			"%llu KiB, working set %llu KiB, cgroup usage %llu KiB, "
			"limit %llu KiB (%s)", hard ? "hard" : "soft",
			(unsigned long long)target >> 10,
			(unsigned long long)m->mem.headroom >> 10,
			(unsigned long long)m->mem.soft_watermark >> 10,
			(unsigned long long)m->mem.working_set >> 10,
			(unsigned long long)m->bind.usage >> 10,
			(unsigned long long)m->mem.limit >> 10, m->mem.limit_source);
	shrinker__debug("others' growth %.0f MiB/s now, %.0f lately; reaction "
			"need %.0f ms; look ahead %llu KiB", m->rate_others / 1048576.0,
			m->rate_slow / 1048576.0,
			(double)shrinker__reaction_need_ns(1) / 1e6,
			(unsigned long long)ahead_locked(m) >> 10);
	if (m->peers.n > 1) {
		uint64_t way, back;

		shrinker__peers_others(m->read_ns, &way, &back);
		shrinker__debug("our part: %llu of %llu KiB resident in %u processes "
				"of the cgroup; theirs under way free %llu KiB, and gave back %llu KiB "
				"since we measured",
				(unsigned long long)m->peers.self >> 10,
				(unsigned long long)m->peers.total >> 10, m->peers.n,
				(unsigned long long)way >> 10, (unsigned long long)back >> 10);
	}
}

bool shrinker__monitor_check(const struct pollfd *fds, unsigned n,
			     uint64_t *target, bool *hard)
{
	const struct shrinker__mon *m = shrinker__measured();
	enum shrinker__signal sig;
	uint64_t old_limit;
	bool fired, need;

	shrinker__mon_lock();
	sig = read_fired_locked(m, fds, n, &fired);
	if (!fired && !shrinker__measure_asked() && quiet_locked(m)) {
		shrinker__mon_unlock();
		return false;
	}
	shrinker__measure_asked_clear();
	old_limit = m->mem.limit;
	if (shrinker__measure_locked() < 0) {
		shrinker__mon_unlock();
		return false;
	}
	if (shrinker__sources_reopen_due_locked()) {
		close_sources_locked(m, "re-opening");
		open_sources_locked(m);
		shrinker__sources_set_opened_locked(true);
	}
	need = decide_locked(m, sig, ahead_locked(m), target, hard);
	/* Re-arming blocks this thread in the kernel (an RCU grace period per
	 * threshold): at once for a new limit, but for watermarks that moved
	 * only when there is nothing to do. */
	if (m->mem.limit != old_limit || sig == SHRINKER__SIG_REARM ||
	    (!need && thresholds_stale_locked(m) && rearm_in_time_locked(m)))
		rearm_locked(m);
	/* Nothing to do when the others in the cgroup pay it all: not a
	 * request that "freed nothing", which would hold us off when our
	 * turn comes. */
	if (need)
		*target = our_part_locked(m, *target, *hard);
	need = need && *target && !waits_locked(m, *target, *hard);
	if (!need && calibrate_locked(m, target)) {
		*hard = false;
		need = true;
	}
	if (need) {
		atomic_fetch_add(*hard ? &mon.hard_events : &mon.soft_events, 1);
		log_request_locked(m, *target, *hard);
		shrinker__peers_paying(*target);
	}
	shrinker__mon_unlock();
	return need;
}

uint64_t shrinker__monitor_still_needed(uint64_t remaining)
{
	const struct shrinker__mon *m = shrinker__measured();
	uint64_t target = 0;
	bool hard;

	(void)remaining;
	/* What the shrinkers freed may still sit in malloc's free lists. */
	shrinker__trim();
	shrinker__trimmed();
	shrinker__mon_lock();
	if (shrinker__measure_locked() == 0 &&
	    !decide_locked(m, SHRINKER__SIG_MEASURE, ahead_locked(m), &target, &hard))
		target = 0;
	if (target)
		target = our_part_locked(m, target, true);
	shrinker__peers_paying(target);
	shrinker__mon_unlock();
	return target;
}

void shrinker__monitor_done(uint64_t target, uint64_t freed, bool hard,
			    uint64_t released, int64_t grown_at_start,
			    bool handed_over)
{
	const struct shrinker__mon *m = shrinker__measured();
	uint64_t now = shrinker__now_ns(), before;
	bool helped, growing;

	/* Don't refill what was just given back before a measurement says
	 * whether the pressure that asked for it goes on. */
	shrinker__room_block(now + (hard ? NO_REFILL_HARD_NS : NO_REFILL_SOFT_NS));
	shrinker__room_stocks_return();
	shrinker__brake_futile(hard && !freed);
	shrinker__mon_lock();
	shrinker__peers_paid(released);
	if (released > freed)
		shrinker__holes_add_locked(released - freed, now);
	before = m->mem.headroom;
	/* Whether it helped: memory really went back (RSS dropped) or
	 * headroom grew.  Shrinkers that say they freed while neither
	 * happened and nothing grew (memory kept, deferred work not yet
	 * dispatched, a callback that returns SIZE_MAX) must not be called
	 * again at once: the pokes of the growth clock and the brake would
	 * call them in a storm. */
	/* Growth reported meanwhile means the shrinkers were outpaced, not
	 * that they lied: that is no reason to wait. */
	growing = shrinker__growth_count() != grown_at_start;
	helped = shrinker__measure_locked() == 0 && freed &&
		 (released > 0 || m->mem.headroom > before || growing ||
		  handed_over);
	if (hard) {
		/* After one that freed nothing the next waits 100 ms; after
		 * one that did not help, 10 ms (it may only have been
		 * outpaced); either doubles up to 5 s while that goes on. */
		if (freed && helped) {
			mon.hard_backoff_ns = 0;
			mon.hard_not_before_ns = 0;
		} else {
			uint64_t first = freed ? HARD_RETRY_NS / 10 : HARD_RETRY_NS;

			mon.hard_backoff_ns = mon.hard_backoff_ns
						     ? mon.hard_backoff_ns * 2 : first;
			if (mon.hard_backoff_ns < first)
				mon.hard_backoff_ns = first;
			if (mon.hard_backoff_ns > HOLDOFF_MAX_NS)
				mon.hard_backoff_ns = HOLDOFF_MAX_NS;
			mon.hard_not_before_ns = now + mon.hard_backoff_ns;
		}
	} else if (freed < target / 2 || !helped) {
		/* Freed little: adaptive hold-off, as WebKit does after a
		 * cleanup that did not help. */
		mon.holdoff_ns = mon.holdoff_ns ? mon.holdoff_ns * 2 : HOLDOFF_MIN_NS;
		if (mon.holdoff_ns > HOLDOFF_MAX_NS)
			mon.holdoff_ns = HOLDOFF_MAX_NS;
		mon.holdoff_until_ns = now + mon.holdoff_ns;
	} else {
		mon.holdoff_ns = 0;
		mon.holdoff_until_ns = 0;
	}
	shrinker__mon_unlock();
}

void shrinker__monitor_dispatched(uint64_t freed, uint64_t released)
{
	if (released <= freed)
		return;
	shrinker__mon_lock();
	shrinker__holes_add_locked(released - freed, shrinker__now_ns());
	shrinker__mon_unlock();
}

void shrinker__monitor_release(void)
{
	const struct shrinker__mon *m = shrinker__measured();

	if (!shrinker__mon_trylock())
		return;
	close_sources_locked(m, "unloaded");
	shrinker__sources_set_opened_locked(false);
	shrinker__files_forget();
	shrinker__rss_forget();
	shrinker__peers_release();
	shrinker__measure_release_locked();
	shrinker__mon_unlock();
}

void shrinker__monitor_atfork_prepare(void)
{
	shrinker__mon_lock();
}

void shrinker__monitor_atfork_parent(void)
{
	shrinker__mon_unlock();
}

void shrinker__monitor_atfork_child(void)
{
	unsigned i;

	/* Prepare's lock is made anew, not unlocked (measure.c). */
	shrinker__mon_atfork_child();
	shrinker__growth_atfork_child();
	shrinker__files_forget();
	shrinker__rss_forget();
	shrinker__peers_forget();
	/* The callbacks running at the fork run in the parent. */
	shrinker__callbacks_atfork_child();
	/* The parent's registrations are the parent's: the child's thread
	 * opens its own sources. */
	shrinker__mon_lock();
	shrinker__measure_alone_locked();
	for (i = 0; i < SHRINKER__SRC_COUNT; i++)
		shrinker__source_close(shrinker__source_locked(i), "not started");
	shrinker__sources_set_opened_locked(false);
	shrinker__mon_unlock();
}

void shrinker__monitor_add_stats(struct shrinker_global_stats *st)
{
	const struct shrinker__mon *m = shrinker__measured();

	st->events = atomic_load(&mon.events);
	st->soft_events = atomic_load(&mon.soft_events);
	st->hard_events = atomic_load(&mon.hard_events);
	st->held_off = atomic_load(&mon.held_off);
	st->measurements = atomic_load(&m->measurements);
	shrinker__growth_stats(&st->probes, &st->brake_waits, &st->brake_wait_ns);
	st->peers = atomic_load(&m->peers_seen);
}

/* Public API. */

void shrinker__monitor_forget(void)
{
	shrinker__mon_lock();
	shrinker__measure_forget_locked();
	shrinker__mon_unlock();
}

int shrinker__monitor_memory(struct shrinker_memory *ret)
{
	const struct shrinker__mon *m = shrinker__measured();
	bool due;
	int r;

	shrinker__mon_lock();
	/* Not looked for yet, or forgotten: look. */
	if (!m->cg.version && !m->cg.why[0])
		shrinker__measure_find_locked();
	r = shrinker__measure_locked();
	if (r == 0)
		*ret = m->mem;
	/* This measurement may be the one that finds the caches full and
	 * the give-back not timed: the reclaimer times it. */
	due = r == 0 && calibrate_due_locked(m, shrinker__now_ns());
	shrinker__mon_unlock();
	if (due)
		shrinker__measure_ask_once();
	return r;
}

void shrinker__monitor_set_limit(uint64_t bytes)
{
	shrinker__mon_lock();
	shrinker__budget_set_locked(bytes);
	shrinker__mon_unlock();
	shrinker__measure_ask();
}

void shrinker__monitor_set_watermarks(unsigned soft_permille, unsigned hard_permille)
{
	shrinker__mon_lock();
	shrinker__watermarks_configure_locked(soft_permille, hard_permille);
	shrinker__mon_unlock();
	shrinker__measure_ask();
}

void shrinker__monitor_source(unsigned index, struct shrinker_source_info *ret)
{
	struct shrinker_source_info info = { 0 };

	shrinker__mon_lock();
	snprintf(info.name, sizeof(info.name), "%s", shrinker__source_name(index));
	info.active = shrinker__sources_opened_locked() &&
		      shrinker__source_locked(index)->active;
	snprintf(info.detail, sizeof(info.detail), "%s",
		 shrinker__sources_opened_locked() ? shrinker__source_locked(index)->detail
						   : "not started");
	shrinker__mon_unlock();
	*ret = info;
}
