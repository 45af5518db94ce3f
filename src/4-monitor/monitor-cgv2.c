/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: cgroup v2's notifications.  memory.events raises POLLPRI (with
 * POLLERR, as every kernfs notification does) whenever one of its counters
 * changes; the file is then re-read from offset 0, which also re-arms it.
 * "max" and "oom" growing mean the kernel is reclaiming hard at the limit or
 * has given up: a hard signal.  "high" growing means usage crossed
 * memory.high; the library treats memory.high as the limit, so that is
 * confirmed pressure.  The file watched is that of the limited level
 * nearest the mount point: its counters are hierarchical (each event counts
 * in the cgroup and every ancestor, unless the hierarchy is mounted with
 * memory_localevents), so it sees our memory.high, and the memory.max of a
 * slice over us that a neighbour fills while a tighter limit of ours binds
 * (systemd: MemoryHigh= on the service, MemoryMax= on its slice; the
 * slice's limit was hit, and the service OOM-killed, with nothing watching
 * it).  The cgroup's memory.pressure gets a PSI trigger too.
 * cgroup v2 has no usage thresholds, so the early warning before these
 * events comes from the monitor's adaptive polling.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "1-base/files.h"
#include "1-base/parse.h"
#include "3-model/measure.h"
#include "4-monitor/kinds.h"


static int read_events(struct shrinker__source *s, uint64_t *high,
		       uint64_t *max, uint64_t *oom)
{
	char buf[512];
	size_t len;
	int r;

	r = shrinker__reread_fd(s->fd, buf, sizeof(buf), &len);
	if (r < 0)
		return r;
	*high = *max = *oom = 0;
	shrinker__parse_keyed(buf, len, "high", high);
	shrinker__parse_keyed(buf, len, "max", max);
	shrinker__parse_keyed(buf, len, "oom", oom);
	return 0;
}

static enum shrinker__signal events_handle(struct shrinker__source *s,
					   short revents)
{
	enum shrinker__signal sig = SHRINKER__SIG_MEASURE;
	uint64_t high, max, oom;

	(void)revents;
	if (read_events(s, &high, &max, &oom) < 0) {
		shrinker__source_close(s, "memory.events unreadable (cgroup removed?)");
		return sig;
	}
	if (max > s->ev_max || oom > s->ev_oom)
		sig = SHRINKER__SIG_HARD;
	else if (high > s->ev_high)
		sig = SHRINKER__SIG_SOFT;
	s->ev_high = high;
	s->ev_max = max;
	s->ev_oom = oom;
	return sig;
}

void shrinker__cgv2_events_open(const struct shrinker__mon *m, struct shrinker__source *ev)
{
	char path[SHRINKER__PATH_MAX];
	int saved = errno;

	/* The events of the topmost limited level, which count ours too; of
	 * the binding cgroup if none is known: an ancestor's memory.max being
	 * hit counts there, not in ours. */
	if (shrinker__join(path, sizeof(path),
			   m->cg_top_dir[0] ? m->cg_top_dir
			   : m->cg_bind_dir[0] ? m->cg_bind_dir : m->cg.dir,
			   "memory.events") == 0) {
		ev->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (ev->fd < 0 ||
		    read_events(ev, &ev->ev_high, &ev->ev_max, &ev->ev_oom) < 0) {
			shrinker__source_close(ev, NULL);
			snprintf(ev->detail, sizeof(ev->detail), "%.100s: %s", path,
				 strerror(errno));
		} else {
			ev->events = POLLPRI;
			ev->handle = events_handle;
			ev->active = true;
			snprintf(ev->detail, sizeof(ev->detail),
				 "POLLPRI on %.120s (high, max, oom)", path);
		}
	}
	errno = saved;
}
