/* SPDX-License-Identifier: MIT */
/*
 * The pressure monitors: the shared state of monitor.c and the sources in
 * monitor-*.c.  Everything in struct shrinker__mon is protected by its lock
 * (lock order: shrinker__lib.lock, then shrinker__mon.lock), except the
 * atomics, which shrinker_may_grow() reads without any lock.  The sources'
 * descriptors are polled by the reclaimer thread only.
 */
#ifndef SHRINKER_MONITOR_H
#define SHRINKER_MONITOR_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"
#include "internal.h"
#include "shrinker.h"

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
	uint64_t ev_high, ev_max, ev_oom;             /* v2 counters seen */
	enum shrinker__signal (*handle)(struct shrinker__source *s, short revents);
};

/* peers.c: the libshrinker processes that share the binding cgroup. */
struct shrinker__peers {
	unsigned n;           /* processes, this one included (1: alone) */
	uint64_t self, total; /* resident bytes: ours, all of them together */
	uint64_t excess_self, excess_total; /* above an equal share of total */
};

struct shrinker__mon {
	pthread_mutex_t lock;
	bool opened;
	bool reopen;              /* moved: re-open the sources */
	struct shrinker__cgroup cg;
	char cg_file[4096];       /* /proc/self/cgroup as last read */
	size_t cg_file_len;

	/* Configuration. */
	bool env_read;
	uint64_t budget;          /* bytes, 0: none */
	unsigned budget_x100;     /* percent * 100 of the detected limit, 0: none */
	unsigned soft_permille, hard_permille;

	/* The last measurement. */
	struct shrinker_memory mem;
	bool have_mem;
	uint64_t cg_limit;        /* the cgroup's own limit, UINT64_MAX if none */
	uint64_t cg_usage;        /* raw usage, page cache included */
	char cg_bind_dir[SHRINKER__PATH_MAX]; /* the cgroup whose limit binds
						 (ours without one): its usage is
						 probed, its thresholds armed, its
						 memory.events watched */
	bool cg_binding;          /* the cgroup limit is the effective one */
	struct shrinker__peers peers; /* who else measures the same limit */
	double rate;              /* working-set growth, bytes/s, decaying max */
	unsigned flat_ms;         /* poll interval while nothing grows */
	uint64_t last_ws, last_ns;
	uint64_t last_find_ns;    /* when the cgroup was last looked for */

	/* No storms. */
	uint64_t holdoff_ns, holdoff_until_ns, hard_not_before_ns;
	uint64_t hard_backoff_ns;  /* after hard requests that did not help */

	struct shrinker__source src[SHRINKER__SRC_COUNT];
	int poll_src[SHRINKER__SRC_COUNT]; /* pollfd index -> source */

	/* Read by shrinker_may_grow() without the lock. */
	_Atomic uint64_t mg_headroom, mg_soft, mg_granted, mg_poke_ns;
	_Atomic uint64_t mg_block_until_ns; /* no growth before this */
	atomic_bool mg_valid, poked;
	atomic_bool mg_below_share; /* under an equal share of the peers' memory */
	_Atomic unsigned peers_seen;  /* peers.n, for the statistics */

	/* The growth clock and the brake (growth.c), read and written
	 * without the monitor lock.  The probe lock serializes the fast
	 * probe and protects gc_probe_fd from being closed under a reader
	 * (lock order: shrinker__mon.lock, then probe_lock). */
	pthread_mutex_t probe_lock;
	int gc_probe_fd;               /* kept-open usage file, -1: use RSS */
	struct shrinker__fdid gc_probe_id;
	unsigned gc_probe_checks;      /* probes made, for the identity check */
	double gc_recent;              /* recent growth, decayed (probe lock) */
	uint64_t gc_recent_ns;         /* when gc_recent was last decayed */
	_Atomic int64_t gc_grown;      /* growth reported, cumulative */
	_Atomic int64_t gc_grown_probed; /* gc_grown at the last probe */
	_Atomic int64_t gc_grown_measured; /* ... at the last measurement */
	_Atomic int64_t gc_base;       /* probe reading of the measurement */
	_Atomic uint64_t gc_measured;  /* headroom of the measurement */
	_Atomic uint64_t gc_headroom;  /* by the last probe or measurement */
	_Atomic uint64_t gc_hard;      /* the hard watermark, bytes */
	_Atomic uint64_t gc_step;      /* growth between two probes */
	_Atomic uint64_t gc_poke_ns;   /* when the brake last woke the reclaimer */
	_Atomic uint64_t gc_probes;    /* probes made (statistics) */
	_Atomic uint64_t gc_brake_waits, gc_brake_ns; /* threads braked */
	atomic_bool gc_use_rss;        /* probe reads RSS, not the cgroup */
	atomic_bool gc_hopeless;       /* the last hard request freed nothing */
	atomic_bool gc_armed;          /* the reclaimer's sources are open */

	/* Which sources SHRINKER_SOURCES turned off (bit per source id). */
	unsigned sources_off;

	/* Counters, added to the global statistics. */
	_Atomic uint64_t events, soft_events, hard_events, held_off, measurements;
};

extern struct shrinker__mon shrinker__mon;

/* monitor.c, for the reclaimer thread (lib lock not held unless said). */
void shrinker__monitor_open(void);
void shrinker__monitor_close(void);
unsigned shrinker__monitor_fill(struct pollfd *fds, unsigned max);
int shrinker__monitor_timeout_ms(void);
/* After poll(): handle what fired, measure, decide.  True with *target and
 * *hard when the shrinkers must be asked. */
bool shrinker__monitor_check(const struct pollfd *fds, unsigned n,
			     uint64_t *target, bool *hard);
/* During a request (lib lock held): is the pressure still there?  Returns
 * the bytes still needed, 0 if none. */
uint64_t shrinker__monitor_still_needed(uint64_t remaining);
/* After a request the monitor decided on: what the callbacks said they
 * freed, what RSS really dropped by, the growth clock's count when the
 * request began (shrinker__growth_count()), and whether work was handed to
 * deferred shrinkers whose earlier work the program had dispatched (it
 * frees later, and counts as help now). */
void shrinker__monitor_done(uint64_t target, uint64_t freed, bool hard,
			    uint64_t released, int64_t grown_at_start,
			    bool handed_over);
int64_t shrinker__growth_count(void);
/* Give back every descriptor and buffer of the monitor (the library is
 * unloaded; its thread has stopped). */
void shrinker__monitor_release(void);
/* fork() handlers, called from the registry's (lib lock held). */
void shrinker__monitor_atfork_prepare(void);
void shrinker__monitor_atfork_parent(void);
void shrinker__monitor_atfork_child(void);
/* Forget the cgroup, the measurement and the budget, so that the next
 * measurement starts over (tests switching fixture trees). */
void shrinker__monitor_forget(void);
/* Add the monitor's counters to *st (lib lock held). */
void shrinker__monitor_add_stats(struct shrinker_global_stats *st);

/* Room to grow by the last measurement, lock-free (shrinker_may_grow()):
 * the headroom above the growth band, less what was granted since and what
 * was freed for particular caches (shrinker__lib.reserved); UINT64_MAX
 * before the first measurement, 0 while growth is blocked after a shrink. */
uint64_t shrinker__room_left(void);
/* Grant bytes of it if there is that much (counted by the growth clock). */
bool shrinker__room_take(uint64_t bytes);
/* A cache was refused bytes: counted, and fresh figures asked for. */
void shrinker__room_refused(uint64_t bytes);

/* peers.c.  Publish our resident size for the cgroup bind_dir (NULL: no
 * cgroup binds) and read the others' into *out (n = 1 when alone or when the
 * shared file cannot be used). */
void shrinker__peers_update(const char *bind_dir, uint64_t rss,
			    struct shrinker__peers *out);
/* Our part of target: in proportion to our share of the peers' memory. */
uint64_t shrinker__peers_part(const struct shrinker__peers *p, uint64_t target);
/* Whether we hold less than an equal share (room to grow is ours first). */
bool shrinker__peers_below_share(const struct shrinker__peers *p);
/* After fork() (the slot is the parent's), and when unloaded. */
void shrinker__peers_forget(void);
void shrinker__peers_release(void);

/* growth.c: the growth clock and the brake. */
/* A full measurement happened (mon lock held): restart the clock from it.
 * base is the probe's reading that the measurement used. */
void shrinker__growth_measured_locked(struct shrinker__mon *m, int64_t base,
				      bool use_rss);
/* The cgroup (m->cg) changed or was found: re-open the probe's file. */
void shrinker__growth_reopen_locked(struct shrinker__mon *m);
/* Growth of delta bytes (negative: shrinkage) reported by the program. */
void shrinker__growth_note(int64_t delta);
/* Whether usage moved less than a step since the last measurement (one
 * probe); false when it cannot tell. */
bool shrinker__growth_quiet(void);
/* Wake threads the brake holds: the reclaimer made progress. */
void shrinker__brake_kick(void);
/* Per-thread exemption from the brake: the reclaimer thread, a thread in a
 * callback, a thread holding a library lock.  Counted, so nestable. */
void shrinker__brake_exempt(int delta);

/* The decision, pure: from a measurement, the strongest signal and the
 * working set's growth rate (bytes/s), the target and hardness of the
 * request (false: none). */
bool shrinker__decide(const struct shrinker_memory *mem,
		      enum shrinker__signal sig, double rate, uint64_t *target,
		      bool *hard);

/* monitor-*.c: open a source (mon lock held), filling s->fd, s->events,
 * s->handle, s->active and s->detail; a source that cannot be used says why
 * in s->detail and stays inactive; a NULL source is not wanted.  Re-arm
 * functions run after a measurement that moved the limit or watermarks. */
void shrinker__limits_open(struct shrinker__mon *m, struct shrinker__source *s);
void shrinker__cgv1_open(struct shrinker__mon *m, struct shrinker__source *thr,
			 struct shrinker__source *medium,
			 struct shrinker__source *critical);
void shrinker__cgv1_rearm(struct shrinker__mon *m, struct shrinker__source *thr);
void shrinker__cgv2_open(struct shrinker__mon *m, struct shrinker__source *events,
			 struct shrinker__source *psi);
void shrinker__psi_system_open(struct shrinker__mon *m, struct shrinker__source *s);
void shrinker__cgv2_psi_open(struct shrinker__mon *m, struct shrinker__source *s);
void shrinker__systemd_open(struct shrinker__mon *m, struct shrinker__source *s);

/* monitor-psi.c: open a PSI trigger on path (trying windows the kernel
 * accepts), for the cgroup v2 and system sources and systemd's protocol. */
int shrinker__psi_open(struct shrinker__source *s, const char *path,
		       const char *trigger, size_t trigger_len);
enum shrinker__signal shrinker__psi_handle(struct shrinker__source *s,
					   short revents);
void shrinker__source_close(struct shrinker__source *s, const char *why);

#endif /* SHRINKER_MONITOR_H */
