/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: turns the kernel's raw signals into shrink requests.  It owns the
 * one notion of headroom (effective limit minus working set, over the cgroup,
 * the system and the budget: see include/shrinker.h), the watermarks, the
 * decision (shrinker__decide(), pure), the hold-off that prevents event
 * storms, the adaptive poll interval (earlyoom's idea: the closer to the
 * limit and the faster the growth, the sooner the next look), and the
 * figures shrinker_may_grow() reads without a system call.  The sources
 * themselves live in monitor-*.c, one file each; this file polls them through
 * the reclaimer thread, coalesces whatever fired into one measurement and one
 * decision, and publishes which sources are active and why others are not.
 * Measurements read into static buffers under the monitor lock: nothing here
 * allocates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "internal.h"
#include "monitor.h"
#include "parse.h"

#define DEFAULT_SOFT_PERMILLE 100 /* OSv's low watermark: 10 % of memory */
#define DEFAULT_HARD_PERMILLE 50
#define MIN_SOFT (4ull << 20)
#define MIN_HARD (2ull << 20)
/* Polling where no kernel event covers the soft watermark: the interval is
 * the time the observed growth needs to use half the distance to it, from
 * POLL_MIN_MS, and POLL_FLAT_MS while nothing grows.  Growth the program
 * reports is watched by the growth clock (growth.c) between polls. */
#define POLL_MIN_MS 10
#define POLL_FLAT_MS 2000
/* ... doubling at each look that finds nothing changed, up to this. */
#define POLL_IDLE_MS 8000
/* Before any growth was seen the first looks come sooner (doubling from
 * this): a program that fills right after starting has shown no rate yet,
 * and its growth may be what nobody reports (an OSv program, a budget). */
#define POLL_START_MS 100
#define QUIET_MAX_NS 10000000000ull
#define HOLDOFF_MIN_NS 250000000ull
#define HOLDOFF_MAX_NS 5000000000ull
#define HARD_RETRY_NS 100000000ull
#define POKE_EVERY_NS 100000000ull
/* How far ahead a shrink looks: the growth rate times this. */
#define REACTION_S 0.025
#define RATE_HALF_LIFE_S 0.1
#define RATE_MIN_NS 10000000ull
/* After a shrink, shrinker_may_grow() says no for this long. */
#define NO_REFILL_SOFT_NS 250000000ull
#define NO_REFILL_HARD_NS 1000000000ull

struct shrinker__mon shrinker__mon = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.probe_lock = PTHREAD_MUTEX_INITIALIZER,
	.gc_probe_fd = -1,
	.flat_ms = POLL_START_MS,
	.soft_permille = DEFAULT_SOFT_PERMILLE,
	.hard_permille = DEFAULT_HARD_PERMILLE,
};

static const char *const src_names[SHRINKER__SRC_COUNT] = {
	[SHRINKER__SRC_LIMITS] = "limit-changes",
	[SHRINKER__SRC_CGV1_THRESHOLD] = "cgroup-v1-threshold",
	[SHRINKER__SRC_CGV1_MEDIUM] = "cgroup-v1-pressure-medium",
	[SHRINKER__SRC_CGV1_CRITICAL] = "cgroup-v1-pressure-critical",
	[SHRINKER__SRC_CGV2_EVENTS] = "cgroup-v2-events",
	[SHRINKER__SRC_CGV2_PSI] = "psi-cgroup",
	[SHRINKER__SRC_PSI_SYSTEM] = "psi-system",
	[SHRINKER__SRC_SYSTEMD] = "systemd-memory-pressure",
	[SHRINKER__SRC_POLL] = "poll",
};

static char meminfo[8192];

static void mon_lock(void)
{
	pthread_mutex_lock(&shrinker__mon.lock);
	shrinker__brake_exempt(1);
}

static void mon_unlock(void)
{
	shrinker__brake_exempt(-1);
	pthread_mutex_unlock(&shrinker__mon.lock);
}

/* SHRINKER_SOURCES: "-name,-name" turns those sources off; a list of bare
 * names keeps only those.  Unknown names are reported and ignored. */
static void read_sources_env_locked(struct shrinker__mon *m)
{
	const char *e = getenv("SHRINKER_SOURCES"), *p, *end;
	unsigned off = 0, i;
	bool only = false;

	if (!e || !*e)
		return;
	for (p = e; *p; p = *end ? end + 1 : end) {
		bool neg;
		size_t len;

		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		while (p < end && *p == ' ')
			p++;
		neg = p < end && *p == '-';
		p += neg;
		len = (size_t)(end - p);
		while (len && p[len - 1] == ' ')
			len--;
		if (!len)
			continue;
		for (i = 0; i < SHRINKER__SRC_COUNT; i++)
			if (strlen(src_names[i]) == len &&
			    memcmp(src_names[i], p, len) == 0)
				break;
		if (i == SHRINKER__SRC_COUNT) {
			int saved = errno;

			fprintf(stderr, "libshrinker: SHRINKER_SOURCES: no source "
				"named \"%.*s\" (ignored)\n", (int)len, p);
			errno = saved;
			continue;
		}
		if (neg) {
			off |= 1u << i;
		} else {
			if (!only)
				off |= ~(~0u << SHRINKER__SRC_COUNT);
			only = true;
			off &= ~(1u << i);
		}
	}
	m->sources_off = off;
}

static bool src_off(const struct shrinker__mon *m, enum shrinker__src_id id)
{
	return m->sources_off & (1u << id);
}

static void reset_sources_locked(struct shrinker__mon *m, const char *why)
{
	unsigned i;

	for (i = 0; i < SHRINKER__SRC_COUNT; i++) {
		struct shrinker__source *s = &m->src[i];

		*s = (struct shrinker__source){ .name = src_names[i], .fd = -1,
						.aux_fd = -1 };
		snprintf(s->detail, sizeof(s->detail), "%s", why);
	}
}

/* SHRINKER_LIMIT, once.  Bad values are reported and ignored. */
static void read_env_locked(struct shrinker__mon *m)
{
	const char *e;
	uint64_t bytes;
	unsigned x100;
	int r;

	if (m->env_read)
		return;
	m->env_read = true;
	read_sources_env_locked(m);
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
static bool consider(struct shrinker_memory *best, bool *set, uint64_t limit,
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

static void watermarks(const struct shrinker__mon *m, struct shrinker_memory *mem)
{
	uint64_t soft = mem->limit / 1000 * m->soft_permille;
	uint64_t hard = mem->limit / 1000 * m->hard_permille;

	if (hard < MIN_HARD)
		hard = MIN_HARD;
	if (soft < MIN_SOFT)
		soft = MIN_SOFT;
	if (soft <= hard)
		soft = hard + MIN_HARD;
	mem->soft_watermark = soft;
	mem->hard_watermark = hard;
}

/* Whether /proc/self/cgroup changed since the last look (mon lock held).
 * One pread() of a kept-open file: cheap enough for every measurement. */
static bool cgroup_changed_locked(struct shrinker__mon *m)
{
	char buf[sizeof(m->cg_file)], dir[SHRINKER__PATH_MAX];
	size_t len;
	bool changed;

	if (shrinker__join(dir, sizeof(dir), shrinker__root(), "/proc/self") < 0 ||
	    shrinker__read_file(dir, "cgroup", buf, sizeof(buf), &len) < 0)
		return false;
	changed = m->cg_file_len && (len != m->cg_file_len ||
				     memcmp(buf, m->cg_file, len) != 0);
	memcpy(m->cg_file, buf, len);
	m->cg_file_len = len;
	return changed;
}

/* Growth rate: the growth in progress, a maximum that halves every
 * RATE_HALF_LIFE_S, so that a fill long past does not count (mon lock
 * held; ws, the working set now). */
static bool update_rate_locked(struct shrinker__mon *m, uint64_t ws, uint64_t now)
{
	double dt, inst, halvings;

	/* Over at least RATE_MIN_NS: two measurements a millisecond apart
	 * (an event right after a request) would make a few MiB of noise a
	 * rate of GiB/s, and the next request free for it. */
	if (now <= m->last_ns || now - m->last_ns < RATE_MIN_NS)
		return false;
	dt = (double)(now - m->last_ns) / 1e9;
	inst = ws > m->last_ws ? (double)(ws - m->last_ws) / dt : 0;
	if (inst > 0)
		m->flat_ms = POLL_FLAT_MS;
	halvings = dt / RATE_HALF_LIFE_S;
	while (halvings >= 1.0 && m->rate > 1.0) {
		m->rate /= 2;
		halvings -= 1.0;
	}
	m->rate *= 1.0 - halvings / 2; /* close enough within one */
	if (inst > m->rate)
		m->rate = inst;
	return true;
}

/* Measure and publish (mon lock held).  -ENODATA if nothing is known. */
static int measure_locked(struct shrinker__mon *m)
{
	struct shrinker_memory mem = { .limit = UINT64_MAX };
	uint64_t granted_before = atomic_load(&m->mg_granted);
	struct shrinker__cg_measure cgm;
	uint64_t total = 0, avail = 0, budget, now, rss = 0;
	char what[112], dir[SHRINKER__PATH_MAX];
	bool set = false, cg_ok, budget_binds = false;
	size_t len;

	read_env_locked(m);
	atomic_fetch_add(&m->measurements, 1);
	mem.cgroup_version = m->cg.version;
	m->cg_limit = UINT64_MAX;
	m->cg_binding = false;
	if (m->opened && cgroup_changed_locked(m)) {
		/* Moved to another cgroup: follow, and re-open the sources
		 * (on the reclaimer thread, in shrinker__monitor_check()). */
		shrinker__cgroup_find(shrinker__root(), &m->cg);
		shrinker__growth_reopen_locked(m);
		m->reopen = true;
		shrinker__debug("moved to another cgroup: v%d %s", m->cg.version,
				m->cg.version ? m->cg.dir : m->cg.why);
	}
	cg_ok = m->cg.version && shrinker__cgroup_measure(&m->cg, &cgm) == 0;
	if (!cg_ok) {
		/* None usable, ours was removed, or its files went bad: look
		 * again, at most once a second. */
		now = shrinker__now_ns();
		if (now - m->last_find_ns > 1000000000ull) {
			int was = m->cg.version;

			/* A file may have been replaced: the kept-open one
			 * would go on reading the old one. */
			shrinker__files_forget();
			m->last_find_ns = now;
			shrinker__cgroup_find(shrinker__root(), &m->cg);
			shrinker__growth_reopen_locked(m);
			if (m->cg.version != was)
				m->reopen = m->opened;
			if (was || m->cg.version)
				shrinker__debug("cgroup looked for again: v%d %s",
						m->cg.version, m->cg.version ?
						m->cg.dir : m->cg.why);
			cg_ok = m->cg.version &&
				shrinker__cgroup_measure(&m->cg, &cgm) == 0;
		}
	}
	if (cg_ok) {
		m->cg_usage = cgm.usage;
		m->cg_limit = cgm.limit;
		if (strcmp(m->cg_bind_dir, cgm.dir) != 0) {
			/* Another level binds now (a limit set or lifted on
			 * an ancestor): probe its usage, and have the sources
			 * watch it. */
			bool first = !m->cg_bind_dir[0];

			memcpy(m->cg_bind_dir, cgm.dir, sizeof(m->cg_bind_dir));
			shrinker__growth_reopen_locked(m);
			if (!first)
				m->reopen = m->opened;
		}
		if (cgm.limit != UINT64_MAX) {
			snprintf(what, sizeof(what), "cgroup v%d %s",
				 m->cg.version, cgm.limit_name);
			m->cg_binding = consider(&mem, &set, cgm.limit,
						 cgm.working_set, what);
		}
	}
	if (shrinker__join(dir, sizeof(dir), shrinker__root(), "/proc") == 0 &&
	    shrinker__read_file(dir, "meminfo", meminfo, sizeof(meminfo), &len) == 0 &&
	    shrinker__parse_keyed(meminfo, len, "MemTotal", &total) == 0 &&
	    shrinker__parse_keyed(meminfo, len, "MemAvailable", &avail) == 0 &&
	    total > 0) {
		if (avail > total)
			avail = total;
		if (consider(&mem, &set, total, total - avail, "system MemAvailable"))
			m->cg_binding = false;
	}
	budget = m->budget;
	if (!budget && m->budget_x100) {
		uint64_t base = m->cg_limit != UINT64_MAX ? m->cg_limit : total;

		budget = (uint64_t)((unsigned __int128)base * m->budget_x100 / 10000);
	}
	mem.budget = budget;
	/* Our own size: for the budget, without a cgroup, and to take our
	 * part among the processes that share the cgroup. */
	if (budget || !cg_ok || m->cg_binding)
		rss = shrinker__rss_bytes();
	if (budget) {
		if (consider(&mem, &set, budget, rss,
			     "budget (SHRINKER_LIMIT or shrinker_set_limit) "
			     "against RSS")) {
			m->cg_binding = false;
			budget_binds = true;
		}
	}
	if (!set)
		return -ENODATA;
	/* Peers only where a cgroup's limit binds, and not in the tests'
	 * fixture trees (SHRINKER_ROOT). */
	shrinker__peers_update(m->cg_binding && !shrinker__root()[0] ?
			       m->cg_bind_dir : NULL, rss, &m->peers);
	atomic_store(&m->mg_below_share, shrinker__peers_below_share(&m->peers));
	atomic_store(&m->peers_seen, m->peers.n);
	watermarks(m, &mem);
	now = shrinker__now_ns();
	mem.measured_ns = now;

	if (!m->have_mem || update_rate_locked(m, mem.working_set, now)) {
		m->last_ws = mem.working_set;
		m->last_ns = now;
	}
	m->mem = mem;
	m->have_mem = true;

	/* Grants made while we measured may or may not be in the figures:
	 * keep them counted, drop only those made before we started. */
	atomic_store(&m->mg_headroom, mem.headroom);
	atomic_store(&m->mg_soft, mem.soft_watermark);
	atomic_fetch_sub(&m->mg_granted, granted_before);
	/* The probe reads what the binding limit is measured against: our
	 * RSS for the budget (the cgroup's usage holds other processes, which
	 * may shrink while we grow), the cgroup's usage otherwise. */
	shrinker__growth_measured_locked(m, cg_ok && !budget_binds ? (int64_t)cgm.usage
					 : rss ? (int64_t)rss : -1,
					 !cg_ok || budget_binds);
	atomic_store(&m->mg_valid, true);
	return 0;
}

bool shrinker__decide(const struct shrinker_memory *mem,
		      enum shrinker__signal sig, double rate, uint64_t *target,
		      bool *hard)
{
	uint64_t soft = mem->soft_watermark, nudge = soft / 4;
	uint64_t deficit = mem->headroom < soft ? soft - mem->headroom : 0;

	if (deficit) {
		/* Back to the top of the band, plus what the growth in
		 * progress will take while the shrinkers run. */
		uint64_t ahead = rate > 0 ? (uint64_t)(rate * REACTION_S) : 0;

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

/* Our part of a target when other libshrinker processes measure the same
 * limit (peers.c): in proportion to our resident share; on hard pressure
 * at least what brings the headroom back to the hard watermark, which
 * nobody else may be quick enough to free (mon lock held). */
static uint64_t our_part_locked(const struct shrinker__mon *m, uint64_t target,
				bool hard)
{
	uint64_t part = shrinker__peers_part(&m->peers, target);
	uint64_t hw = m->mem.hard_watermark, head = m->mem.headroom;

	if (hard && hw > head && part < hw - head)
		part = hw - head < target ? hw - head : target;
	return part;
}

static void rearm_locked(struct shrinker__mon *m)
{
	struct shrinker__source *thr = &m->src[SHRINKER__SRC_CGV1_THRESHOLD];

	if (m->cg.version == 1 && thr->active)
		shrinker__cgv1_rearm(m, thr);
}

static void describe_poll_locked(struct shrinker__mon *m)
{
	struct shrinker__source *p = &m->src[SHRINKER__SRC_POLL];

	p->active = true;
	snprintf(p->detail, sizeof(p->detail),
		 "adaptive: half the distance to the soft watermark at the "
		 "observed growth rate, %d ms to %d s (%d s idle); only while "
		 "no kernel event covers the soft watermark", POLL_MIN_MS,
		 POLL_FLAT_MS / 1000, POLL_IDLE_MS / 1000);
}

/* Open every source for the cgroup in m->cg (mon lock held), except those
 * SHRINKER_SOURCES turned off. */
static void open_sources_locked(struct shrinker__mon *m)
{
	static const char off_why[] = "turned off by SHRINKER_SOURCES";
	unsigned i;

	reset_sources_locked(m, "not used here");
	if (!src_off(m, SHRINKER__SRC_LIMITS))
		shrinker__limits_open(m, &m->src[SHRINKER__SRC_LIMITS]);
	if (m->cg.version == 1) {
		/* Off sources are opened and closed at once: the thresholds
		 * would otherwise cost an RCU grace period each for nothing. */
		if (!src_off(m, SHRINKER__SRC_CGV1_THRESHOLD))
			shrinker__cgv1_rearm(m, &m->src[SHRINKER__SRC_CGV1_THRESHOLD]);
		shrinker__cgv1_open(m, NULL, src_off(m, SHRINKER__SRC_CGV1_MEDIUM) ? NULL
					: &m->src[SHRINKER__SRC_CGV1_MEDIUM],
				    src_off(m, SHRINKER__SRC_CGV1_CRITICAL) ? NULL
					: &m->src[SHRINKER__SRC_CGV1_CRITICAL]);
	} else {
		const char *why = m->cg.version ? "cgroup v2 here"
						: "no memory cgroup";
		snprintf(m->src[SHRINKER__SRC_CGV1_THRESHOLD].detail, 160, "%s", why);
		snprintf(m->src[SHRINKER__SRC_CGV1_MEDIUM].detail, 160, "%s", why);
		snprintf(m->src[SHRINKER__SRC_CGV1_CRITICAL].detail, 160, "%s", why);
	}
	if (m->cg.version == 2) {
		shrinker__cgv2_open(m, src_off(m, SHRINKER__SRC_CGV2_EVENTS) ? NULL
				       : &m->src[SHRINKER__SRC_CGV2_EVENTS],
				    src_off(m, SHRINKER__SRC_CGV2_PSI) ? NULL
				       : &m->src[SHRINKER__SRC_CGV2_PSI]);
	} else {
		const char *why = m->cg.version ? "cgroup v1 here"
						: "no memory cgroup";
		snprintf(m->src[SHRINKER__SRC_CGV2_EVENTS].detail, 160, "%s", why);
		snprintf(m->src[SHRINKER__SRC_CGV2_PSI].detail, 160, "%s", why);
	}
	if (!src_off(m, SHRINKER__SRC_PSI_SYSTEM))
		shrinker__psi_system_open(m, &m->src[SHRINKER__SRC_PSI_SYSTEM]);
	if (!src_off(m, SHRINKER__SRC_SYSTEMD))
		shrinker__systemd_open(m, &m->src[SHRINKER__SRC_SYSTEMD]);
	if (!src_off(m, SHRINKER__SRC_POLL))
		describe_poll_locked(m);
	for (i = 0; i < SHRINKER__SRC_COUNT; i++)
		if (src_off(m, (enum shrinker__src_id)i))
			shrinker__source_close(&m->src[i], off_why);
	shrinker__debug("sources open; cgroup v%d %s; %s", m->cg.version,
			m->cg.version ? m->cg.dir : m->cg.why,
			m->src[SHRINKER__SRC_CGV1_THRESHOLD].detail);
}

static void close_sources_locked(struct shrinker__mon *m, const char *why)
{
	unsigned i;

	for (i = 0; i < SHRINKER__SRC_COUNT; i++)
		shrinker__source_close(&m->src[i], why);
}

void shrinker__monitor_open(void)
{
	struct shrinker__mon *m = &shrinker__mon;

	mon_lock();
	if (m->opened) {
		mon_unlock();
		return;
	}
	shrinker__cgroup_find(shrinker__root(), &m->cg);
	shrinker__growth_reopen_locked(m);
	if (!m->cg.version)
		shrinker__debug("no memory cgroup: %s", m->cg.why);
	measure_locked(m);
	open_sources_locked(m);
	m->reopen = false;
	m->opened = true;
	atomic_store(&m->gc_armed, true);
	/* Thresholds crossed before they were armed never fire: measure again
	 * right away, now that they are. */
	atomic_store(&m->poked, true);
	mon_unlock();
}

void shrinker__source_close(struct shrinker__source *s, const char *why)
{
	int saved = errno;

	/* A descriptor whose identity was taken is closed only if it is still
	 * ours (see shrinker__fdid); one not yet taken was just opened. */
	if (s->fd >= 0 && (!s->id.valid || shrinker__fdid_same(s->fd, &s->id)))
		close(s->fd);
	if (s->aux_fd >= 0 &&
	    (!s->aux_id.valid || shrinker__fdid_same(s->aux_fd, &s->aux_id)))
		close(s->aux_fd);
	s->fd = s->aux_fd = -1;
	s->id.valid = s->aux_id.valid = false;
	s->active = false;
	if (why)
		snprintf(s->detail, sizeof(s->detail), "%s", why);
	errno = saved;
}

void shrinker__monitor_close(void)
{
	struct shrinker__mon *m = &shrinker__mon;

	mon_lock();
	atomic_store(&m->gc_armed, false);
	close_sources_locked(m, "stopped");
	m->opened = false;
	mon_unlock();
	shrinker__brake_kick();
}

unsigned shrinker__monitor_fill(struct pollfd *fds, unsigned max)
{
	struct shrinker__mon *m = &shrinker__mon;
	unsigned i, n = 0;

	mon_lock();
	for (i = 0; i < SHRINKER__SRC_COUNT && n < max; i++) {
		struct shrinker__source *s = &m->src[i];

		if (s->fd >= 0 && !s->id.valid)
			shrinker__fdid_take(s->fd, &s->id);
		if (s->aux_fd >= 0 && !s->aux_id.valid)
			shrinker__fdid_take(s->aux_fd, &s->aux_id);
		if (m->src[i].fd < 0)
			continue;
		fds[n] = (struct pollfd){ .fd = m->src[i].fd,
					  .events = m->src[i].events };
		m->poll_src[n++] = (int)i;
	}
	mon_unlock();
	return n;
}

/* Whether a kernel notification will come when the working set reaches the
 * soft watermark: only cgroup v1 thresholds do that, and only while usage
 * (page cache included) is below the armed level. */
static bool covered_locked(const struct shrinker__mon *m)
{
	const struct shrinker__source *thr = &m->src[SHRINKER__SRC_CGV1_THRESHOLD];

	return m->cg_binding && m->cg.version == 1 && thr->active &&
	       thr->armed_limit == m->cg_limit && m->cg_usage < thr->armed_soft;
}

int shrinker__monitor_timeout_ms(void)
{
	struct shrinker__mon *m = &shrinker__mon;
	uint64_t now = shrinker__now_ns(), dist;
	unsigned flat;
	double rate, ms;
	int r;

	if (atomic_load(&m->poked))
		return 0; /* asked to measure now */
	mon_lock();
	if (!m->have_mem) {
		/* Nothing could be measured: nothing to poll either. */
		mon_unlock();
		return -1;
	}
	if (m->mem.headroom < m->mem.soft_watermark) {
		/* Still short (held off, or nobody could free): look again
		 * when the hold-off ends, and at least now and then. */
		uint64_t wait = m->holdoff_until_ns > now ? m->holdoff_until_ns - now
							  : 0;
		uint64_t until_hard = m->hard_not_before_ns > now
					      ? m->hard_not_before_ns - now : 0;

		if (until_hard > wait)
			wait = until_hard;
		ms = (double)wait / 1e6;
		r = ms < POLL_MIN_MS ? POLL_MIN_MS : ms > 1000 ? 1000 : (int)ms;
		mon_unlock();
		return r;
	}
	if (covered_locked(m) || !m->src[SHRINKER__SRC_POLL].active) {
		mon_unlock();
		return -1;
	}
	dist = m->mem.headroom - m->mem.soft_watermark;
	rate = m->rate;
	flat = m->flat_ms;
	mon_unlock();
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
static void lost_sources_locked(struct shrinker__mon *m)
{
	unsigned i;

	for (i = 0; i < SHRINKER__SRC_COUNT; i++) {
		struct shrinker__source *s = &m->src[i];

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
	m->reopen = true;
}

/* A timed look that finds usage where the last measurement left it (one
 * read of the usage file, by the growth clock's probe) skips the full
 * measurement, which reads every limit file, memory.stat and meminfo: an
 * idle process costs one pread() a poll.  Every QUIET_MAX_NS a full one is
 * made anyway (a move to another cgroup is seen there). */
static bool quiet_locked(struct shrinker__mon *m)
{
	uint64_t now = shrinker__now_ns();

	if (!m->have_mem || m->mem.headroom < m->mem.soft_watermark ||
	    now - m->mem.measured_ns > QUIET_MAX_NS || !shrinker__growth_quiet())
		return false;
	/* Nothing grew: the rate decays as after a measurement, and the next
	 * look comes later. */
	update_rate_locked(m, m->last_ws, now);
	m->last_ns = now;
	m->flat_ms = m->flat_ms * 2 > POLL_IDLE_MS ? POLL_IDLE_MS : m->flat_ms * 2;
	return true;
}

bool shrinker__monitor_check(const struct pollfd *fds, unsigned n,
			     uint64_t *target, bool *hard)
{
	struct shrinker__mon *m = &shrinker__mon;
	enum shrinker__signal sig = SHRINKER__SIG_MEASURE;
	uint64_t old_limit, old_soft, now;
	bool fired = false, need;
	unsigned i;

	mon_lock();
	for (i = 0; i < n; i++) {
		struct shrinker__source *s = &m->src[m->poll_src[i]];
		enum shrinker__signal got;

		if (!fds[i].revents || s->fd != fds[i].fd)
			continue;
		fired = true;
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
	if (fired)
		atomic_fetch_add(&m->events, 1);
	if (!fired && !atomic_load(&m->poked) && quiet_locked(m)) {
		mon_unlock();
		return false;
	}
	atomic_store(&m->poked, false);
	old_limit = m->mem.limit;
	old_soft = m->mem.soft_watermark;
	if (measure_locked(m) < 0) {
		mon_unlock();
		return false;
	}
	if (m->reopen) {
		close_sources_locked(m, "re-opening");
		open_sources_locked(m);
		m->reopen = false;
	}
	if (m->mem.limit != old_limit || m->mem.soft_watermark != old_soft ||
	    sig == SHRINKER__SIG_REARM)
		rearm_locked(m);

	need = shrinker__decide(&m->mem, sig, m->rate, target, hard);
	/* Nothing to do when the others in the cgroup pay it all: not a
	 * request that "freed nothing", which would hold us off when our
	 * turn comes. */
	if (need)
		*target = our_part_locked(m, *target, *hard);
	if (need && !*target)
		need = false;
	now = shrinker__now_ns();
	if (need && *hard && now < m->hard_not_before_ns) {
		shrinker__debug("hard shrink of %llu KiB waits %llu ms more: the "
				"last ones did not help",
				(unsigned long long)*target >> 10,
				(unsigned long long)(m->hard_not_before_ns - now) / 1000000);
		need = false;
	}
	if (need && !*hard && now < m->holdoff_until_ns) {
		atomic_fetch_add(&m->held_off, 1);
		shrinker__debug("soft shrink of %llu KiB held off for %llu ms more",
				(unsigned long long)*target >> 10,
				(unsigned long long)(m->holdoff_until_ns - now) / 1000000);
		need = false;
	}
	if (need) {
		atomic_fetch_add(*hard ? &m->hard_events : &m->soft_events, 1);
		shrinker__debug("%s shrink of %llu KiB: headroom %llu KiB, soft "
				"watermark %llu KiB, working set %llu KiB, cgroup "
				"usage %llu KiB, limit %llu KiB (%s)",
				*hard ? "hard" : "soft",
				(unsigned long long)*target >> 10,
				(unsigned long long)m->mem.headroom >> 10,
				(unsigned long long)m->mem.soft_watermark >> 10,
				(unsigned long long)m->mem.working_set >> 10,
				(unsigned long long)m->cg_usage >> 10,
				(unsigned long long)m->mem.limit >> 10,
				m->mem.limit_source);
		if (m->peers.n > 1)
			shrinker__debug("our part: %llu of %llu KiB resident in %u "
					"processes of the cgroup",
					(unsigned long long)m->peers.self >> 10,
					(unsigned long long)m->peers.total >> 10,
					m->peers.n);
	}
	mon_unlock();
	return need;
}

uint64_t shrinker__monitor_still_needed(uint64_t remaining)
{
	struct shrinker__mon *m = &shrinker__mon;
	uint64_t target = 0;
	bool hard;

	(void)remaining;
	/* What the shrinkers freed may still sit in malloc's free lists. */
	shrinker__trim();
	mon_lock();
	if (measure_locked(m) == 0 &&
	    !shrinker__decide(&m->mem, SHRINKER__SIG_MEASURE, m->rate, &target,
			      &hard))
		target = 0;
	if (target)
		target = our_part_locked(m, target, true);
	mon_unlock();
	return target;
}

void shrinker__monitor_done(uint64_t target, uint64_t freed, bool hard,
			    uint64_t released, int64_t grown_at_start,
			    bool handed_over)
{
	struct shrinker__mon *m = &shrinker__mon;
	uint64_t now = shrinker__now_ns(), before;
	bool helped, growing;

	/* Don't refill what was just given back: the pressure that asked for
	 * it is probably still growing. */
	atomic_store(&m->mg_block_until_ns,
		     now + (hard ? NO_REFILL_HARD_NS : NO_REFILL_SOFT_NS));
	atomic_store(&m->gc_hopeless, hard && !freed);
	mon_lock();
	before = m->mem.headroom;
	/* Whether it helped: memory really went back (RSS dropped) or
	 * headroom grew.  Shrinkers that say they freed while neither
	 * happened and nothing grew (memory kept, deferred work not yet
	 * dispatched, a callback that returns SIZE_MAX) must not be called
	 * again at once: the pokes of the growth clock and the brake would
	 * call them in a storm. */
	/* Growth reported meanwhile means the shrinkers were outpaced, not
	 * that they lied: that is no reason to wait. */
	growing = atomic_load(&m->gc_grown) != grown_at_start;
	helped = measure_locked(m) == 0 && freed &&
		 (released > 0 || m->mem.headroom > before || growing ||
		  handed_over);
	if (hard) {
		/* After one that freed nothing the next waits 100 ms; after
		 * one that did not help, 10 ms (it may only have been
		 * outpaced); either doubles up to 5 s while that goes on. */
		if (freed && helped) {
			m->hard_backoff_ns = 0;
			m->hard_not_before_ns = 0;
		} else {
			uint64_t first = freed ? HARD_RETRY_NS / 10 : HARD_RETRY_NS;

			m->hard_backoff_ns = m->hard_backoff_ns
						     ? m->hard_backoff_ns * 2 : first;
			if (m->hard_backoff_ns < first)
				m->hard_backoff_ns = first;
			if (m->hard_backoff_ns > HOLDOFF_MAX_NS)
				m->hard_backoff_ns = HOLDOFF_MAX_NS;
			m->hard_not_before_ns = now + m->hard_backoff_ns;
		}
	} else if (freed < target / 2 || !helped) {
		/* Freed little: adaptive hold-off, as WebKit does after a
		 * cleanup that did not help. */
		m->holdoff_ns = m->holdoff_ns ? m->holdoff_ns * 2 : HOLDOFF_MIN_NS;
		if (m->holdoff_ns > HOLDOFF_MAX_NS)
			m->holdoff_ns = HOLDOFF_MAX_NS;
		m->holdoff_until_ns = now + m->holdoff_ns;
	} else {
		m->holdoff_ns = 0;
		m->holdoff_until_ns = 0;
	}
	mon_unlock();
}

void shrinker__monitor_release(void)
{
	struct shrinker__mon *m = &shrinker__mon;

	if (pthread_mutex_trylock(&m->lock) != 0)
		return;
	close_sources_locked(m, "unloaded");
	m->opened = false;
	shrinker__files_forget();
	shrinker__rss_forget();
	shrinker__peers_release();
	memset(&m->cg, 0, sizeof(m->cg));
	shrinker__growth_reopen_locked(m); /* no cgroup: closes the probe's file */
	pthread_mutex_unlock(&m->lock);
}

void shrinker__monitor_atfork_prepare(void)
{
	mon_lock();
}

void shrinker__monitor_atfork_parent(void)
{
	mon_unlock();
}

void shrinker__monitor_atfork_child(void)
{
	struct shrinker__mon *m = &shrinker__mon;
	unsigned i;

	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->probe_lock, NULL);
	shrinker__files_forget();
	shrinker__rss_forget();
	shrinker__peers_forget();
	m->peers = (struct shrinker__peers){ .n = 1 };
	/* The parent's registrations are the parent's: the child's thread
	 * opens its own sources. */
	for (i = 0; i < SHRINKER__SRC_COUNT; i++)
		shrinker__source_close(&m->src[i], "not started");
	m->opened = false;
}

void shrinker__monitor_add_stats(struct shrinker_global_stats *st)
{
	struct shrinker__mon *m = &shrinker__mon;

	st->events = atomic_load(&m->events);
	st->soft_events = atomic_load(&m->soft_events);
	st->hard_events = atomic_load(&m->hard_events);
	st->held_off = atomic_load(&m->held_off);
	st->measurements = atomic_load(&m->measurements);
	st->probes = atomic_load(&m->gc_probes);
	st->brake_waits = atomic_load(&m->gc_brake_waits);
	st->brake_wait_ns = atomic_load(&m->gc_brake_ns);
	st->peers = atomic_load(&m->peers_seen);
}

/* Public API. */

void shrinker__monitor_forget(void)
{
	struct shrinker__mon *m = &shrinker__mon;

	mon_lock();
	shrinker__files_forget();
	memset(&m->cg, 0, sizeof(m->cg));
	m->cg_bind_dir[0] = '\0';
	m->cg_file_len = 0;
	m->have_mem = false;
	m->env_read = false;
	m->budget = 0;
	m->budget_x100 = 0;
	m->sources_off = 0;
	m->flat_ms = POLL_START_MS;
	atomic_store(&m->mg_valid, false);
	shrinker__growth_reopen_locked(m);
	mon_unlock();
}

SHRINKER_EXPORT int shrinker_get_memory(struct shrinker_memory *ret)
{
	struct shrinker__mon *m = &shrinker__mon;
	int r;

	if (!ret)
		return -EINVAL;
	mon_lock();
	/* Not looked for yet, or forgotten: look. */
	if (!m->cg.version && !m->cg.why[0]) {
		shrinker__cgroup_find(shrinker__root(), &m->cg);
		shrinker__growth_reopen_locked(m);
	}
	r = measure_locked(m);
	if (r == 0)
		*ret = m->mem;
	mon_unlock();
	return r;
}

SHRINKER_EXPORT int shrinker_set_limit(uint64_t bytes)
{
	struct shrinker__mon *m = &shrinker__mon;

	mon_lock();
	m->env_read = true; /* the call overrides the environment */
	m->budget = bytes;
	m->budget_x100 = 0;
	mon_unlock();
	atomic_store(&m->poked, true);
	shrinker__reclaimer_wake();
	return 0;
}

SHRINKER_EXPORT int shrinker_set_watermarks(unsigned soft_permille,
					    unsigned hard_permille)
{
	struct shrinker__mon *m = &shrinker__mon;

	if (hard_permille == 0 || hard_permille >= soft_permille ||
	    soft_permille > 500)
		return -EINVAL;
	mon_lock();
	m->soft_permille = soft_permille;
	m->hard_permille = hard_permille;
	mon_unlock();
	atomic_store(&m->poked, true);
	shrinker__reclaimer_wake();
	return 0;
}

uint64_t shrinker__room_left(void)
{
	struct shrinker__mon *m = &shrinker__mon;
	uint64_t head, soft, taken;

	bool below;

	if (!atomic_load_explicit(&m->mg_valid, memory_order_acquire))
		return UINT64_MAX;
	/* A process below its share among the processes of its cgroup
	 * (peers.c) grows into the band and right after a shrink: the room
	 * the others' shrinks make is for it. */
	below = atomic_load_explicit(&m->mg_below_share, memory_order_relaxed);
	if (!below && shrinker__now_ns() <
	    atomic_load_explicit(&m->mg_block_until_ns, memory_order_relaxed))
		return 0;
	head = atomic_load_explicit(&m->mg_headroom, memory_order_relaxed);
	/* Growth stops a quarter of the soft watermark above it: the band
	 * that a shrink restores (shrinker__decide()), so that caches settle
	 * inside it instead of growing into the next shrink.  Grants since
	 * the last measurement, and what was freed for particular caches
	 * (fair.c), are taken already. */
	soft = atomic_load_explicit(&m->mg_soft, memory_order_relaxed);
	if (!below)
		soft += soft / 4;
	taken = atomic_load_explicit(&m->mg_granted, memory_order_relaxed);
	shrinker__sat_add(&taken, atomic_load_explicit(&shrinker__lib.reserved,
						       memory_order_relaxed));
	shrinker__sat_add(&taken, soft);
	return head > taken ? head - taken : 0;
}

bool shrinker__room_take(uint64_t bytes)
{
	struct shrinker__mon *m = &shrinker__mon;

	if (!atomic_load_explicit(&m->mg_valid, memory_order_acquire))
		return true; /* nothing measured yet */
	if (shrinker__room_left() < bytes)
		return false;
	atomic_fetch_add_explicit(&m->mg_granted, bytes, memory_order_relaxed);
	shrinker__growth_note((int64_t)(bytes > INT64_MAX ? INT64_MAX : bytes));
	return true;
}

void shrinker__room_refused(uint64_t bytes)
{
	struct shrinker__mon *m = &shrinker__mon;
	uint64_t now = shrinker__now_ns(), last;

	/* A refused cache replaces entries instead, which frees and allocates
	 * and, through the allocator's fragmentation, can still grow the
	 * process: the growth clock counts it, so that such churn is looked
	 * at once per step. */
	shrinker__growth_note((int64_t)(bytes > INT64_MAX ? INT64_MAX : bytes));
	/* No room by the last figures: ask for fresh ones, now and then. */
	last = atomic_load_explicit(&m->mg_poke_ns, memory_order_relaxed);
	if (now - last >= POKE_EVERY_NS &&
	    atomic_compare_exchange_strong(&m->mg_poke_ns, &last, now)) {
		atomic_store(&m->poked, true);
		shrinker__reclaimer_wake();
	}
}

SHRINKER_EXPORT bool shrinker_may_grow(size_t bytes)
{
	if (shrinker__room_take(bytes))
		return true;
	shrinker__room_refused(bytes);
	return false;
}

SHRINKER_EXPORT int shrinker_get_source(unsigned index,
					struct shrinker_source_info *ret)
{
	struct shrinker__mon *m = &shrinker__mon;
	struct shrinker_source_info info = { 0 };

	if (!ret)
		return -EINVAL;
	if (index >= SHRINKER__SRC_COUNT)
		return -ENOENT;
	mon_lock();
	snprintf(info.name, sizeof(info.name), "%s", src_names[index]);
	info.active = m->opened && m->src[index].active;
	snprintf(info.detail, sizeof(info.detail), "%s",
		 m->opened ? m->src[index].detail : "not started");
	mon_unlock();
	*ret = info;
	return 0;
}
