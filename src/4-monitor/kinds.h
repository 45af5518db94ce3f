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

/* monitor-*.c: open a source (mon lock held), filling s->fd, s->events,
 * s->handle, s->active and s->detail; a source that cannot be used says why
 * in s->detail and stays inactive; a NULL source is not wanted.  Re-arm
 * functions run after a measurement that moved the limit or watermarks. */
void shrinker__limits_open(const struct shrinker__mon *m, struct shrinker__source *s);
void shrinker__cgv1_open(const struct shrinker__mon *m, struct shrinker__source *thr,
			 struct shrinker__source *medium,
			 struct shrinker__source *critical);
void shrinker__cgv1_rearm(const struct shrinker__mon *m, struct shrinker__source *thr);
void shrinker__cgv2_open(const struct shrinker__mon *m, struct shrinker__source *events,
			 struct shrinker__source *psi);
/* Whether cgroup v1's usage thresholds are armed for the limit that binds
 * now (mon lock held). */
bool shrinker__cgv1_armed_locked(const struct shrinker__mon *m);
void shrinker__psi_system_open(const struct shrinker__mon *m, struct shrinker__source *s);
void shrinker__cgv2_psi_open(const struct shrinker__mon *m, struct shrinker__source *s);
void shrinker__systemd_open(const struct shrinker__mon *m, struct shrinker__source *s);

/* monitor-psi.c: open a PSI trigger on path (trying windows the kernel
 * accepts), for the cgroup v2 and system sources and systemd's protocol. */
int shrinker__psi_open(struct shrinker__source *s, const char *path,
		       const char *trigger, size_t trigger_len);
enum shrinker__signal shrinker__psi_handle(struct shrinker__source *s,
					   short revents);

#endif /* SHRINKER_KINDS_H */
