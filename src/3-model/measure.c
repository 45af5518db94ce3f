/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the measurement.  One pass (mon lock held) finds every limit that
 * applies and keeps the one that leaves the least headroom: the cgroup's
 * (each ancestor's limit against that ancestor's usage, cgroup.c), the
 * system's MemAvailable, and a self-imposed budget against our RSS; then it
 * shares the cgroup with the other libshrinker processes in it (peers.c),
 * updates the growth rates, has the watermarks set (watermarks.c) and
 * publishes the figures shrinker_may_grow() reads
 * without a lock and the growth clock's base.  It follows the process into
 * another cgroup and asks for the sources to be re-opened; it opens none
 * itself.  The monitor (monitor.c) decides what to do with a measurement.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "1-base/files.h"
#include "1-base/parse.h"
#include "2-kernel/peers.h"
#include "3-model/growth.h"
#include "3-model/measure.h"
#include "3-model/room.h"

#define RATE_HALF_LIFE_S 0.1
#define RATE_MIN_NS 10000000ull
#define SETTLE_NS 50000000ull
#define SAMPLE_MAX_NS 1000000000ull
/* rate_slow, which sizes the watermarks (watermarks.c). */
#define RATE_SLOW_HALF_LIFE_S 0.5

struct shrinker__mon shrinker__mon = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.flat_ms = SHRINKER__POLL_START_MS,
};

static char meminfo[8192];

/* The holders of the mon lock, counted in the wrappers below only
 * (SHRINKER__ASSERT_MON_HELD() reads the count).  A thread that holds it
 * is exempt from the brake (growth.c). */
_Thread_local unsigned shrinker__mon_held;

void shrinker__mon_lock(void)
{
	pthread_mutex_lock(&shrinker__mon.lock);
	shrinker__mon_held++;
	shrinker__brake_exempt(1);
}

void shrinker__mon_unlock(void)
{
	shrinker__brake_exempt(-1);
	shrinker__mon_held--;
	pthread_mutex_unlock(&shrinker__mon.lock);
}

bool shrinker__mon_trylock(void)
{
	if (pthread_mutex_trylock(&shrinker__mon.lock) != 0)
		return false;
	shrinker__mon_held++;
	shrinker__brake_exempt(1);
	return true;
}

void shrinker__mon_atfork_child(void)
{
	pthread_mutex_init(&shrinker__mon.lock, NULL);
	shrinker__brake_exempt(-1);
	shrinker__mon_held--;
}

const struct shrinker__mon *shrinker__measured(void)
{
	return &shrinker__mon;
}

/* SHRINKER_LIMIT, once.  Bad values are reported and ignored. */
static void read_env_locked(struct shrinker__mon *m)
{
	const char *e;
	uint64_t bytes;
	unsigned x100;
	int r;

	SHRINKER__ASSERT_MON_HELD();
	if (m->env_read)
		return;
	m->env_read = true;
	e = getenv("SHRINKER_LIMIT");
	if (!e || !*e)
		return;
	r = shrinker__parse_size(e, &bytes, &x100);
	if (r < 0) {
		int saved = errno;

		/* Always said, not only with SHRINKER_DEBUG: a budget the user
		 * asked for and did not get must not go unnoticed. */
		fprintf(stderr, "libshrinker: ignoring SHRINKER_LIMIT=\"%s\": %s "
			"(want bytes, K/M/G/T, a percentage, or 0 for none)\n", e,
			r == -ERANGE ? "too large" : r == -EDOM ? "a percentage over 100 %"
				       : "not a size");
		errno = saved;
		return;
	}
	if (x100)
		m->budget_x100 = x100;
	else
		m->budget = bytes;
}

/* One candidate limit: it becomes the effective one if it leaves the least
 * headroom so far (*set: there is one so far).  Returns whether it did. */
static bool take_if_tighter(struct shrinker_memory *best, bool *set, uint64_t limit,
		     uint64_t ws, const char *what)
{
	uint64_t head = limit > ws ? limit - ws : 0;

	if (*set && head >= best->headroom)
		return false;
	*set = true;
	best->limit = limit;
	best->working_set = ws;
	best->headroom = head;
	snprintf(best->limit_source, sizeof(best->limit_source), "%s", what);
	return true;
}

void shrinker__probe_follow_locked(void)
{
	const struct shrinker__mon *m = &shrinker__mon;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__growth_reopen_locked(m->cg.version,
				       m->cg_bind_dir[0] ? m->cg_bind_dir : m->cg.dir);
}

/* Whether /proc/self/cgroup changed since the last look (mon lock held).
 * One pread() of a kept-open file: cheap enough for every measurement. */
static bool cgroup_changed_locked(struct shrinker__mon *m)
{
	char buf[sizeof(m->cg_file)], dir[SHRINKER__PATH_MAX];
	size_t len;
	bool changed;

	SHRINKER__ASSERT_MON_HELD();
	if (shrinker__join(dir, sizeof(dir), shrinker__root(), "/proc/self") < 0 ||
	    shrinker__read_file(dir, "cgroup", buf, sizeof(buf), &len) < 0)
		return false;
	changed = m->cg_file_len && (len != m->cg_file_len ||
				     memcmp(buf, m->cg_file, len) != 0);
	memcpy(m->cg_file, buf, len);
	m->cg_file_len = len;
	return changed;
}

/* A maximum that halves every half_life seconds, dt seconds on, and inst
 * the newest value. */
static void decay_max(double *r, double inst, double dt, double half_life)
{
	double halvings = dt / half_life;

	while (halvings >= 1.0 && *r > 1.0) {
		*r /= 2;
		halvings -= 1.0;
	}
	*r *= 1.0 - halvings / 2; /* close enough within one */
	if (inst > *r)
		*r = inst;
}

/* Holes fade by an eighth of a halving every HOLES_STEP_NS (half of them
 * in 4 s): what the churn did not fault in again by then stays given
 * back.  In whole steps from holes_ns, so that frequent reads do not
 * compound the rounding. */
#define HOLES_STEP_NS 500000000ull

uint64_t shrinker__holes_locked(uint64_t now)
{
	struct shrinker__mon *m = &shrinker__mon;
	uint64_t steps, n;

	SHRINKER__ASSERT_MON_HELD();
	if (!m->holes || now <= m->holes_ns)
		return m->holes;
	steps = (now - m->holes_ns) / HOLES_STEP_NS;
	if (steps >= 8ull * 64) {
		m->holes = 0;
		return 0;
	}
	m->holes_ns += steps * HOLES_STEP_NS;
	m->holes >>= steps / 8;
	/* 2^(-1/8) is 0.917; 117/128 is 0.914. */
	for (n = steps % 8; n; n--)
		m->holes = m->holes / 128 * 117 + m->holes % 128 * 117 / 128;
	return m->holes;
}

void shrinker__holes_add_locked(uint64_t bytes, uint64_t now)
{
	struct shrinker__mon *m = &shrinker__mon;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__holes_locked(now);
	shrinker__sat_add(&m->holes, bytes);
	m->holes_ns = now;
	shrinker__debug("%llu KiB came back beyond what the callbacks freed (free pages "
			"between live entries): not room to grow until faulted in again, "
			"%llu KiB in all", (unsigned long long)bytes >> 10,
			(unsigned long long)m->holes >> 10);
}

/* Growth rates (mon lock held; ws, the working set now): the growth in
 * progress, a maximum that halves every RATE_HALF_LIFE_S, so that a fill
 * long past does not count; and the growth the library did not grant
 * (the working set's, plus what the callbacks freed, less what
 * shrinker_may_grow() and fair.c granted meanwhile), now and lately:
 * what the watermarks and a request's look ahead are for.  The caches' own refill, which stops where
 * the room ends, counted there made every refill look like a competitor,
 * raise the watermark and shrink what had just been refilled. */
static bool rate_update_locked(struct shrinker__mon *m, uint64_t ws, uint64_t rss,
			       uint64_t now)
{
	uint64_t granted = shrinker__stock_granted_total();
	uint64_t mine = granted - m->last_granted_total;
	struct shrinker__callbacks cb;
	uint64_t freed;
	double dt, inst, others, grown;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__callbacks_read(&cb);
	freed = cb.freed_total - m->last_freed_total;
	/* Over at least RATE_MIN_NS: two measurements a millisecond apart
	 * (an event right after a request) would make a few MiB of noise a
	 * rate of GiB/s, and the next request free for it. */
	if (now <= m->last_ns || now - m->last_ns < RATE_MIN_NS)
		return false;
	/* No sample ends while the freed bytes and the working set disagree:
	 * inside a callback (its frees show, its freed count not yet) or
	 * between its end and the malloc_trim() after it (the reverse).  The
	 * program's own measurements (shrinker_get_memory() every 100 ms in
	 * memory-hog) fell there and made a 130 MiB/s competitor 870-1080
	 * MiB/s, and the next request free for that.  The sample grows until
	 * the two agree again (SETTLE_NS at most without a trim, and at most
	 * SAMPLE_MAX_NS in all, whatever a callback does). */
	if (now - m->last_ns < SAMPLE_MAX_NS &&
	    (cb.running ||
	     (cb.freed_ns > cb.trimmed_ns && now - cb.freed_ns < SETTLE_NS)))
		return false;
	dt = (double)(now - m->last_ns) / 1e9;
	inst = ws > m->last_ws ? (double)(ws - m->last_ws) / dt : 0;
	/* What the others took: the working set's change, plus what our
	 * callbacks freed meanwhile (while we free, a competitor's growth
	 * hardly shows in the working set), less what we granted. */
	grown = (double)ws - (double)m->last_ws + (double)freed - (double)mine;
	/* Nor our own RSS growing back into holes a trim made (beyond what
	 * we granted): a cache of malloc()ed entries that replaces them
	 * faults in the free pages it had between them, and that counted
	 * here made its churn a competitor at 100-300 MiB/s and the look
	 * ahead of the next request (examples/lru.c). */
	if (rss && m->last_rss && rss > m->last_rss + mine) {
		uint64_t own = rss - m->last_rss - mine;
		uint64_t holes = shrinker__holes_locked(now);
		uint64_t back = own < holes ? own : holes;

		m->holes -= back;
		grown -= (double)back;
	}
	others = grown > 0 ? grown / dt : 0;
	m->last_granted_total = granted;
	m->last_freed_total = cb.freed_total;
	if (inst > 0)
		m->flat_ms = SHRINKER__POLL_FLAT_MS;
	decay_max(&m->rate, inst, dt, RATE_HALF_LIFE_S);
	decay_max(&m->rate_others, others, dt, RATE_HALF_LIFE_S);
	decay_max(&m->rate_slow, others, dt, RATE_SLOW_HALF_LIFE_S);
	return true;
}

/* A rate sample ends at ws (and rss) now: it starts the next one if it
 * was taken, or always (mon lock held). */
static void rate_sample_locked(struct shrinker__mon *m, uint64_t ws, uint64_t rss,
			       uint64_t now, bool always)
{
	SHRINKER__ASSERT_MON_HELD();
	if (always || rate_update_locked(m, ws, rss, now)) {
		m->last_ws = ws;
		m->last_ns = now;
		m->last_rss = rss;
	}
}

void shrinker__measure_quiet_locked(uint64_t ws, uint64_t rss, uint64_t now,
				    unsigned idle_ms)
{
	struct shrinker__mon *m = &shrinker__mon;

	SHRINKER__ASSERT_MON_HELD();
	rate_sample_locked(m, ws, rss, now, false);
	m->flat_ms = m->flat_ms * 2 > idle_ms ? idle_ms : m->flat_ms * 2;
}

/* Follow the process's cgroup (mon lock held): a move to another one, or
 * one that could not be measured, is looked for again (at most once a
 * second) and the sources re-opened.  Returns whether *cgm holds figures. */
static bool follow_cgroup_locked(struct shrinker__mon *m,
				 struct shrinker__cg_measure *cgm)
{
	uint64_t now;
	int was;

	SHRINKER__ASSERT_MON_HELD();
	if (shrinker__sources_opened_locked() && cgroup_changed_locked(m)) {
		/* Moved to another cgroup: follow, and re-open the sources
		 * (on the reclaimer thread, in shrinker__monitor_check()). */
		shrinker__measure_find_locked();
		shrinker__sources_reopen_locked();
		shrinker__debug("moved to another cgroup: v%d %s", m->cg.version,
				m->cg.version ? m->cg.dir : m->cg.why);
	}
	if (m->cg.version && shrinker__cgroup_measure(&m->cg, cgm) == 0)
		return true;
	/* None usable, ours was removed, or its files went bad. */
	now = shrinker__now_ns();
	if (now - m->last_find_ns <= 1000000000ull)
		return false;
	was = m->cg.version;
	/* A file may have been replaced: the kept-open one would go on
	 * reading the old one. */
	shrinker__files_forget();
	m->last_find_ns = now;
	shrinker__measure_find_locked();
	if (m->cg.version != was)
		shrinker__sources_reopen_locked();
	if (was || m->cg.version)
		shrinker__debug("cgroup looked for again: v%d %s", m->cg.version,
				m->cg.version ? m->cg.dir : m->cg.why);
	return m->cg.version && shrinker__cgroup_measure(&m->cg, cgm) == 0;
}

/* The cgroup's limit as a candidate (mon lock held); the level that binds
 * is the one the probe reads and the sources watch. */
static void cgroup_limit_locked(struct shrinker__mon *m,
				const struct shrinker__cg_measure *cgm,
				struct shrinker_memory *mem, bool *set)
{
	char what[112];

	SHRINKER__ASSERT_MON_HELD();
	m->bind.usage = cgm->usage;
	m->bind.active = cgm->active_file;
	m->bind.limit = cgm->limit;
	if (strcmp(m->cg_bind_dir, cgm->dir) != 0) {
		/* Another level binds now (a limit set or lifted on an
		 * ancestor): probe its usage, and have the sources watch it. */
		bool first = !m->cg_bind_dir[0];

		memcpy(m->cg_bind_dir, cgm->dir, sizeof(m->cg_bind_dir));
		shrinker__probe_follow_locked();
		if (!first)
			shrinker__sources_reopen_locked();
	}
	if (strcmp(m->cg_top_dir, cgm->top_dir) != 0) {
		/* A limit set or lifted above the others: its events are
		 * the ones to watch. */
		bool first = !m->cg_bind_dir[0] || !m->cg_top_dir[0];

		memcpy(m->cg_top_dir, cgm->top_dir, sizeof(m->cg_top_dir));
		if (!first)
			shrinker__sources_reopen_locked();
	}
	if (cgm->limit != UINT64_MAX) {
		snprintf(what, sizeof(what), "cgroup v%d %s", m->cg.version,
			 cgm->limit_name);
		m->bind.binds = take_if_tighter(mem, set, cgm->limit, cgm->working_set, what);
	}
}

/* The system's memory as a candidate; *total: MemTotal, 0 if unknown. */
static void system_limit_locked(struct shrinker__mon *m,
				struct shrinker_memory *mem, bool *set,
				uint64_t *total)
{
	char dir[SHRINKER__PATH_MAX];
	uint64_t avail = 0;
	size_t len;

	SHRINKER__ASSERT_MON_HELD();
	*total = 0;
	if (shrinker__join(dir, sizeof(dir), shrinker__root(), "/proc") < 0 ||
	    shrinker__read_file(dir, "meminfo", meminfo, sizeof(meminfo), &len) < 0 ||
	    shrinker__parse_keyed(meminfo, len, "MemTotal", total) < 0 ||
	    shrinker__parse_keyed(meminfo, len, "MemAvailable", &avail) < 0 ||
	    *total == 0) {
		*total = 0;
		return;
	}
	if (avail > *total)
		avail = *total;
	if (take_if_tighter(mem, set, *total, *total - avail, "system MemAvailable"))
		m->bind.binds = false;
}

/* The budget as a candidate, against our RSS, read into *rss when needed
 * (the budget, no cgroup, or peers to share the cgroup with).  Returns
 * whether the budget binds. */
static bool budget_limit_locked(struct shrinker__mon *m, uint64_t total,
				bool cg_ok, struct shrinker_memory *mem,
				bool *set, uint64_t *rss)
{
	uint64_t budget = m->budget;

	SHRINKER__ASSERT_MON_HELD();
	if (!budget && m->budget_x100) {
		uint64_t base = m->bind.limit != UINT64_MAX ? m->bind.limit : total;

		budget = (uint64_t)((unsigned __int128)base * m->budget_x100 / 10000);
	}
	mem->budget = budget;
	*rss = budget || !cg_ok || m->bind.binds ? shrinker__rss_bytes() : 0;
	if (!budget || !take_if_tighter(mem, set, budget, *rss,
				 "budget (SHRINKER_LIMIT or shrinker_set_limit) "
				 "against RSS"))
		return false;
	m->bind.binds = false;
	return true;
}

/* Processes that share a cgroup size their watermarks each from its own
 * view of the growth, and with different watermarks they do not see one
 * deficit.  Two in one cgroup, a competitor taking 100 MiB: one at 12 MiB
 * asked every 2 ms for half a MiB, its part by peers.c's water-filling of
 * deficits the other, at 6.5 MiB, did not see, while the other, below its
 * share, grew back into what it freed (128 + 57 MiB freed for 100
 * needed).  So the soft watermark is the largest that a busy peer (one
 * that measured within the last second) sized for itself.  What we
 * publish is ours when the growth sized it, below the ceiling; at the
 * ceiling (nothing watches the usage) it says nothing of the growth, and
 * we publish none (mon lock held). */
static void peers_watermark_locked(struct shrinker__mon *m, struct shrinker_memory *mem)
{
	uint64_t ceiling, ceiling_hard;

	SHRINKER__ASSERT_MON_HELD();
	if (shrinker__watermarks_fixed_locked()) {
		m->soft_own = 0;
		return;
	}
	shrinker__ceilings_locked(mem->limit, &ceiling, &ceiling_hard);
	m->soft_own = mem->soft_watermark < ceiling ? mem->soft_watermark : 0;
	if (m->peers.n < 2 || m->peers.soft_max <= mem->soft_watermark)
		return;
	/* A peer's figure is read from a shared file: never above our
	 * ceiling. */
	mem->soft_watermark = m->peers.soft_max < ceiling ? m->peers.soft_max : ceiling;
}

/* Whether the kernel says something before the limit kills (mon lock
 * held), for the watermarks' floor: cgroup v1 usage thresholds on the binding cgroup (armed for the
 * limit, or for the one before it: a limit that moved is seen by the
 * measurement that sizes these watermarks, and the thresholds are re-armed
 * at them as it ends; judged by the exact limit, each lowered limit put
 * the soft watermark at its ceiling, and a shrink of a tenth of the cgroup
 * followed, for a deficit of a few MiB), unless
 * page cache fills it (they watch the usage, page cache included, and were
 * crossed long ago: nothing fires when another process eats that page
 * cache and then the caches' room), or a cgroup v2 memory.high as the
 * binding limit. */
static bool early_warning_locked(const struct shrinker__mon *m,
				 const struct shrinker_memory *mem)
{
	SHRINKER__ASSERT_MON_HELD();
	if (m->cg.version == 1)
		return m->bind.binds && shrinker__source_locked(SHRINKER__SRC_CGV1_THRESHOLD)->active &&
		       !shrinker__page_cache_full_locked(&m->bind, mem->working_set);
	return m->bind.binds && strstr(mem->limit_source, "memory.high") != NULL;
}

/* Publish a measurement (mon lock held): the rate, the figures
 * shrinker_may_grow() reads, the growth clock's base (probe_base: the
 * reading the probe compares with, -1 if none). */
static void publish_locked(struct shrinker__mon *m, struct shrinker_memory *mem,
			   uint64_t granted_before, uint64_t rss, int64_t probe_base,
			   bool probe_rss)
{
	uint64_t now = shrinker__now_ns(), holes;
	uint64_t base = shrinker__rate_base(&m->bind, mem->working_set);
	struct shrinker__sizing sizing;

	SHRINKER__ASSERT_MON_HELD();
	mem->measured_ns = now;
	rate_sample_locked(m, base, rss, now, !m->have_mem);
	sizing.rate_slow = m->rate_slow;
	sizing.early_warning = early_warning_locked(m, mem);
	sizing.may_watch = m->bind.binds && !shrinker__source_off_locked(SHRINKER__SRC_POLL);
	sizing.self = m->peers.n >= 2 ? m->peers.self : 0;
	sizing.total = m->peers.n >= 2 ? m->peers.total : 0;
	shrinker__watermarks_locked(mem, &sizing, now);
	peers_watermark_locked(m, mem);
	m->mem = *mem;
	m->have_mem = true;
	holes = shrinker__holes_locked(now);
	shrinker__room_publish(mem->headroom > holes ? mem->headroom - holes : 0,
			       mem->soft_watermark, mem->hard_watermark,
			       shrinker__peers_below_share(&m->peers), m->peers.growing,
			       granted_before);
	shrinker__growth_measured_locked(mem->headroom, mem->soft_watermark,
					 mem->hard_watermark, probe_base, probe_rss);
}

int shrinker__measure_locked(void)
{
	struct shrinker__mon *m = &shrinker__mon;
	struct shrinker_memory mem = { .limit = UINT64_MAX };
	uint64_t granted_before;
	struct shrinker__cg_measure cgm;
	uint64_t total, rss;
	bool set = false, cg_ok, budget_binds;

	SHRINKER__ASSERT_MON_HELD();
	/* Room the stocks did not hand out is not growth on its way. */
	shrinker__room_stocks_return();
	granted_before = shrinker__room_granted();
	m->read_ns = shrinker__now_ns();
	read_env_locked(m);
	atomic_fetch_add(&m->measurements, 1);
	mem.cgroup_version = m->cg.version;
	m->bind.limit = UINT64_MAX;
	m->bind.binds = false;
	cg_ok = follow_cgroup_locked(m, &cgm);
	if (cg_ok)
		cgroup_limit_locked(m, &cgm, &mem, &set);
	system_limit_locked(m, &mem, &set, &total);
	budget_binds = budget_limit_locked(m, total, cg_ok, &mem, &set, &rss);
	if (!set)
		return -ENODATA;
	/* Peers only where a cgroup's limit binds, and not in the tests'
	 * fixture trees (SHRINKER_ROOT). */
	shrinker__peers_update(m->bind.binds && !shrinker__root()[0] ?
			       m->cg_bind_dir : NULL, rss, m->soft_own,
			       shrinker__room_asked_ns(), &m->peers);
	atomic_store(&m->peers_seen, m->peers.n);
	/* The probe reads what the binding limit is measured against: our
	 * RSS for the budget (the cgroup's usage holds other processes, which
	 * may shrink while we grow), the cgroup's usage otherwise. */
	publish_locked(m, &mem, granted_before, rss,
		       cg_ok && !budget_binds ? (int64_t)cgm.usage
					      : rss ? (int64_t)rss : -1,
		       !cg_ok || budget_binds);
	return 0;
}

void shrinker__measure_forget_locked(void)
{
	struct shrinker__mon *m = &shrinker__mon;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__files_forget();
	memset(&m->cg, 0, sizeof(m->cg));
	m->cg_bind_dir[0] = '\0';
	m->cg_top_dir[0] = '\0';
	m->cg_file_len = 0;
	m->have_mem = false;
	m->env_read = false;
	m->budget = 0;
	m->budget_x100 = 0;
	shrinker__sources_forget_locked();
	m->flat_ms = SHRINKER__POLL_START_MS;
	m->rate_slow = 0;
	m->rate_others = 0;
	m->holes = 0;
	m->last_rss = 0;
	shrinker__watermarks_forget_locked();
	shrinker__growth_forget();
	shrinker__probe_follow_locked();
}

void shrinker__measure_find_locked(void)
{
	struct shrinker__mon *m = &shrinker__mon;

	SHRINKER__ASSERT_MON_HELD();
	shrinker__cgroup_find(shrinker__root(), &m->cg);
	shrinker__probe_follow_locked();
}

void shrinker__measure_release_locked(void)
{
	struct shrinker__mon *m = &shrinker__mon;

	SHRINKER__ASSERT_MON_HELD();
	memset(&m->cg, 0, sizeof(m->cg));
	shrinker__probe_follow_locked(); /* no cgroup: closes the probe's file */
}

void shrinker__measure_alone_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	shrinker__mon.peers = (struct shrinker__peers){ .n = 1 };
}

void shrinker__budget_set_locked(uint64_t bytes)
{
	struct shrinker__mon *m = &shrinker__mon;

	SHRINKER__ASSERT_MON_HELD();
	m->env_read = true; /* the call overrides the environment */
	m->budget = bytes;
	m->budget_x100 = 0;
}
