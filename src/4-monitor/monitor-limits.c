/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: notices a limit changed at run time without polling.  A write to
 * a cgroup file goes through the VFS, which raises inotify IN_MODIFY on it,
 * so an inotify watch on the limit files of our cgroup and of every ancestor
 * (cgroup v2 memory.max and memory.high, v1 memory.limit_in_bytes) wakes the
 * reclaimer when someone lowers a limit; the monitor then measures and
 * re-arms the cgroup v1 thresholds at the new levels.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "3-model/measure.h"
#include "4-monitor/kinds.h"

static enum shrinker__signal limits_handle(struct shrinker__source *s,
					   short revents)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int saved = errno;

	(void)revents;
	while (read(s->fd, buf, sizeof(buf)) > 0)
		;
	errno = saved;
	return SHRINKER__SIG_REARM;
}

static int watch(int fd, const char *dir, const char *file)
{
	char path[SHRINKER__PATH_MAX];

	if (shrinker__join(path, sizeof(path), dir, file) < 0)
		return 0;
	return inotify_add_watch(fd, path, IN_MODIFY) >= 0;
}

void shrinker__limits_open(const struct shrinker__mon *m, struct shrinker__source *s)
{
	char dir[SHRINKER__PATH_MAX];
	int saved = errno, n = 0;

	if (!m->cg.version) {
		snprintf(s->detail, sizeof(s->detail), "no memory cgroup");
		return;
	}
	s->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->fd < 0) {
		snprintf(s->detail, sizeof(s->detail), "inotify: %s",
			 strerror(errno));
		errno = saved;
		return;
	}
	snprintf(dir, sizeof(dir), "%s", m->cg.dir);
	do {
		if (m->cg.version == 2) {
			n += watch(s->fd, dir, "memory.max");
			n += watch(s->fd, dir, "memory.high");
		} else {
			n += watch(s->fd, dir, "memory.limit_in_bytes");
		}
	} while (shrinker__cgroup_parent(dir, &m->cg));
	errno = saved;
	if (n == 0) {
		shrinker__source_close(s, "no limit file to watch (root cgroup?)");
		return;
	}
	s->events = POLLIN;
	s->handle = limits_handle;
	s->active = true;
	snprintf(s->detail, sizeof(s->detail),
		 "inotify on %d limit file%s of the cgroup and its ancestors", n,
		 n == 1 ? "" : "s");
}
