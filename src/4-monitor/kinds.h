/* SPDX-License-Identifier: MIT */
/*
 * Each kind of pressure source (monitor-*.c), as the monitor (monitor.c)
 * opens it: the functions take the measurement read-only (3-model/
 * measure.h) and fill the source's entry of the table (2-kernel/source.h).
 */
#ifndef SHRINKER_KINDS_H
#define SHRINKER_KINDS_H

#include <stdbool.h>
#include <stddef.h>

#include "2-kernel/source.h"
#include "3-model/measure.h"

/* monitor-*.c: open a source (mon lock held), one function a source with
 * one signature (monitor.c keeps them in a table), filling s->fd,
 * s->events, s->handle, s->active and s->detail; a source that cannot be
 * used says why in s->detail and stays inactive.  The cgroup v1
 * thresholds' open is also their re-arm, after a measurement that moved
 * the limit or the watermarks; without a limit they wait for one (the
 * limits source re-arms them when a limit is written). */
typedef void shrinker__open_fn(const struct shrinker__mon *m, struct shrinker__source *s);
shrinker__open_fn shrinker__limits_open, shrinker__cgv1_rearm, shrinker__cgv1_medium_open,
	shrinker__cgv1_critical_open, shrinker__cgv2_events_open, shrinker__cgv2_psi_open,
	shrinker__psi_system_open, shrinker__systemd_open;
/* Whether cgroup v1's usage thresholds are armed for the limit that binds
 * now (mon lock held). */
bool shrinker__cgv1_armed_locked(const struct shrinker__mon *m);

/* monitor-psi.c: open a PSI trigger on path (trying windows the kernel
 * accepts), for the cgroup v2 and system sources and systemd's protocol. */
int shrinker__psi_open(struct shrinker__source *s, const char *path,
		       const char *trigger, size_t trigger_len);
enum shrinker__signal shrinker__psi_handle(struct shrinker__source *s,
					   short revents);

#endif /* SHRINKER_KINDS_H */
