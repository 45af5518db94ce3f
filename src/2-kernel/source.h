/* SPDX-License-Identifier: MIT */
/*
 * The interface of a pressure source (monitor-*.c): what an event means,
 * the source's descriptors and state, its life cycle (source.c: names,
 * SHRINKER_SOURCES, closing, the table).
 * The sources of each kind (4-monitor/kinds.h) open them; the monitor
 * (monitor.c) polls and reads them.  Nothing here calls the monitor.
 */
#ifndef SHRINKER_SOURCE_H
#define SHRINKER_SOURCE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

struct shrinker__mon;

/* What an event from a source means, in increasing order of urgency. */
enum shrinker__signal {
	SHRINKER__SIG_NONE,    /* nothing (false alarm, drained) */
	SHRINKER__SIG_MEASURE, /* something moved: measure and decide */
	SHRINKER__SIG_REARM,   /* limits changed: measure, re-arm thresholds */
	SHRINKER__SIG_RECLAIM, /* the kernel reclaims at the limit (cgroup v1
				  "medium"): page cache alone does that, so it
				  is pressure only when our headroom is short */
	SHRINKER__SIG_SOFT,    /* confirmed pressure (PSI, systemd) */
	SHRINKER__SIG_HARD,    /* the kernel is reclaiming hard */
};

enum shrinker__src_id {
	SHRINKER__SRC_LIMITS,
	SHRINKER__SRC_CGV1_THRESHOLD,
	SHRINKER__SRC_CGV1_MEDIUM,
	SHRINKER__SRC_CGV1_CRITICAL,
	SHRINKER__SRC_CGV2_EVENTS,
	SHRINKER__SRC_CGV2_PSI,
	SHRINKER__SRC_PSI_SYSTEM,
	SHRINKER__SRC_SYSTEMD,
	SHRINKER__SRC_POLL,
	SHRINKER__SRC_COUNT
};

struct shrinker__source {
	const char *name;
	int fd;                 /* polled, -1 if none */
	short events;           /* POLLIN or POLLPRI */
	bool active;
	char detail[160];
	int aux_fd;             /* v1: the usage file the thresholds watch */
	struct shrinker__fdid id, aux_id; /* who fd and aux_fd are (see
					     shrinker__fdid) */
	uint64_t psi_total;     /* PSI: stall total seen at the last event */
	uint64_t psi_confirm_us; /* PSI: growth that confirms an event */
	uint64_t armed_limit, armed_soft; /* v1 thresholds: limit, soft level */
	uint64_t arm_ns;        /* v1 thresholds: what arming takes, the
				   longest lately (halved at each arming) */
	uint64_t ev_high, ev_max, ev_oom;             /* v2 counters seen */
	enum shrinker__signal (*handle)(struct shrinker__source *s, short revents);
};

/* source.c */
/* The source's name for SHRINKER_SOURCES and shrinker_get_source(). */
const char *shrinker__source_name(enum shrinker__src_id id);
/* The table (mon lock held): a source; whether SHRINKER_SOURCES turns it
 * off (read at the first call after a forget); whether the monitor opened
 * the sources (set_opened also clears reopen); reopen: the sources must be
 * opened anew (the cgroup moved), if they are open; reopen_due: whether
 * they must; forget: SHRINKER_SOURCES is read again. */
struct shrinker__source *shrinker__source_locked(enum shrinker__src_id id);
bool shrinker__source_off_locked(enum shrinker__src_id id);
bool shrinker__sources_opened_locked(void);
void shrinker__sources_set_opened_locked(bool opened);
void shrinker__sources_reopen_locked(void);
bool shrinker__sources_reopen_due_locked(void);
void shrinker__sources_forget_locked(void);
/* Every source closed and set to "why" (nothing open yet; mon lock held). */
void shrinker__sources_reset_locked(const char *why);
/* The bit per source id that SHRINKER_SOURCES turns off (unknown names are
 * reported on stderr and ignored); 0 without it. */
unsigned shrinker__sources_off_env(void);
/* Close s's descriptors (if they are still ours) and mark it inactive,
 * with why as its detail (NULL: keep the detail). */
void shrinker__source_close(struct shrinker__source *s, const char *why);

#endif /* SHRINKER_SOURCE_H */
