/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: cgroup v1's notifications.  Usage thresholds: an eventfd
 * registered through cgroup.event_control at two usage levels, limit - soft
 * watermark and limit - hard watermark, fires the moment usage crosses either
 * (up or down), so the reclaimer sleeps with no timer while usage is below
 * them.  The kernel drops the registrations when the eventfd is closed, so
 * re-arming (the limit or the watermarks moved) is: close, make a new
 * eventfd, register again.  memory.pressure_level gives the kernel's own
 * reclaim pressure: "critical" means the kernel is reclaiming hard;
 * "medium" fires whenever it reclaims at the limit, which page cache from
 * file I/O makes it do all the time, so it counts only when the measured
 * headroom is short as well (shrinker__decide()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "3-model/measure.h"
#include "4-monitor/kinds.h"
#include "internal.h"

static enum shrinker__signal drain_measure(struct shrinker__source *s, short r)
{
	(void)r;
	shrinker__eventfd_drain(s->fd);
	return SHRINKER__SIG_MEASURE;
}

static enum shrinker__signal drain_medium(struct shrinker__source *s, short r)
{
	(void)r;
	shrinker__eventfd_drain(s->fd);
	return SHRINKER__SIG_RECLAIM;
}

static enum shrinker__signal drain_hard(struct shrinker__source *s, short r)
{
	(void)r;
	shrinker__eventfd_drain(s->fd);
	return SHRINKER__SIG_HARD;
}

/* Register "<efd> <fd> <arg>" with cgroup.event_control. */
static int event_control(const char *dir, int efd, int fd, const char *arg)
{
	char path[SHRINKER__PATH_MAX], line[64];
	int cfd, n, r = 0, saved = errno;

	if (shrinker__join(path, sizeof(path), dir, "cgroup.event_control") < 0)
		return -ENAMETOOLONG;
	cfd = open(path, O_WRONLY | O_CLOEXEC);
	if (cfd < 0) {
		r = -errno;
		errno = saved;
		return r;
	}
	n = snprintf(line, sizeof(line), "%d %d %s", efd, fd, arg);
	if (write(cfd, line, (size_t)n) < 0)
		r = -errno;
	close(cfd);
	errno = saved;
	return r;
}

/* Open dir/file and a new eventfd into s (fd, aux_fd). */
static int open_pair(struct shrinker__source *s, const char *dir,
		     const char *file)
{
	char path[SHRINKER__PATH_MAX];
	int saved = errno, r;

	if (shrinker__join(path, sizeof(path), dir, file) < 0)
		return -ENAMETOOLONG;
	s->aux_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->aux_fd < 0)
		goto fail;
	s->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->fd < 0)
		goto fail;
	return 0;
fail:
	r = -errno;
	shrinker__source_close(s, NULL);
	errno = saved;
	return r;
}

static void open_level(const struct shrinker__mon *m, struct shrinker__source *s,
		       const char *level,
		       enum shrinker__signal (*handle)(struct shrinker__source *, short))
{
	int r = open_pair(s, m->cg.dir, "memory.pressure_level");

	if (r == 0)
		r = event_control(m->cg.dir, s->fd, s->aux_fd, level);
	if (r < 0) {
		shrinker__source_close(s, NULL);
		snprintf(s->detail, sizeof(s->detail),
			 "memory.pressure_level \"%s\": %s", level, strerror(-r));
		return;
	}
	s->events = POLLIN;
	s->handle = handle;
	s->active = true;
	snprintf(s->detail, sizeof(s->detail),
		 "eventfd on memory.pressure_level \"%s\"", level);
}

bool shrinker__cgv1_armed_locked(const struct shrinker__mon *m)
{
	const struct shrinker__source *thr;

	SHRINKER__ASSERT_MON_HELD();
	thr = shrinker__source_locked(SHRINKER__SRC_CGV1_THRESHOLD);
	return m->bind.binds && m->cg.version == 1 && thr->active &&
	       thr->armed_limit == m->bind.limit;
}

void shrinker__cgv1_rearm(const struct shrinker__mon *m, struct shrinker__source *thr)
{
	uint64_t limit = m->bind.limit, soft, hard;
	const char *dir = m->cg_bind_dir[0] ? m->cg_bind_dir : m->cg.dir;
	uint64_t t0 = shrinker__now_ns(), took;
	char arg[32];
	int r;

	shrinker__source_close(thr, NULL);
	thr->armed_limit = 0;
	if (limit == UINT64_MAX) {
		snprintf(thr->detail, sizeof(thr->detail),
			 "no cgroup v1 limit to set thresholds under");
		return;
	}
	/* The levels are the watermarks for the cgroup's own limit. */
	shrinker__ceilings_locked(limit, &soft, &hard);
	if (m->bind.binds) {
		soft = m->mem.soft_watermark;
		hard = m->mem.hard_watermark;
	}
	if (soft >= limit || hard >= limit) {
		snprintf(thr->detail, sizeof(thr->detail),
			 "limit %llu too small for thresholds",
			 (unsigned long long)limit);
		return;
	}
	/* On the cgroup whose limit binds, which may be an ancestor: its
	 * usage is what crosses the levels. */
	r = open_pair(thr, dir, "memory.usage_in_bytes");
	if (r == 0) {
		snprintf(arg, sizeof(arg), "%llu", (unsigned long long)(limit - soft));
		r = event_control(dir, thr->fd, thr->aux_fd, arg);
	}
	if (r == 0) {
		snprintf(arg, sizeof(arg), "%llu", (unsigned long long)(limit - hard));
		r = event_control(dir, thr->fd, thr->aux_fd, arg);
	}
	if (r < 0) {
		shrinker__source_close(thr, NULL);
		snprintf(thr->detail, sizeof(thr->detail),
			 "cgroup.event_control: %s", strerror(-r));
		return;
	}
	thr->events = POLLIN;
	thr->handle = drain_measure;
	thr->active = true;
	took = shrinker__now_ns() - t0;
	thr->arm_ns = took > thr->arm_ns / 2 ? took : thr->arm_ns / 2;
	shrinker__debug("thresholds armed at usage %llu and %llu KiB in %llu us",
			(unsigned long long)(limit - soft) >> 10,
			(unsigned long long)(limit - hard) >> 10,
			(unsigned long long)took / 1000);
	thr->armed_limit = limit;
	thr->armed_soft = limit - soft;
	snprintf(thr->detail, sizeof(thr->detail),
		 "eventfd thresholds at usage %llu and %llu of limit %llu%s",
		 (unsigned long long)(limit - soft),
		 (unsigned long long)(limit - hard), (unsigned long long)limit,
		 strcmp(dir, m->cg.dir) ? " (an ancestor's)" : "");
}

void shrinker__cgv1_medium_open(const struct shrinker__mon *m, struct shrinker__source *s)
{
	open_level(m, s, "medium", drain_medium);
}

void shrinker__cgv1_critical_open(const struct shrinker__mon *m, struct shrinker__source *s)
{
	open_level(m, s, "critical", drain_hard);
}
