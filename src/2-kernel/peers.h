/* SPDX-License-Identifier: MIT */
/*
 * The libshrinker processes that share the binding cgroup (peers.c): a
 * slot each in a small shared file, read at each measurement.
 */
#ifndef SHRINKER_PEERS_H
#define SHRINKER_PEERS_H

#include <stdbool.h>
#include <stdint.h>

/* The libshrinker processes that share the binding cgroup. */
struct shrinker__peers {
	unsigned n;           /* processes, this one included (1: alone) */
	uint64_t self, total; /* resident bytes: ours, all of them together */
	uint64_t excess_self, excess_total; /* above an equal share of total */
	uint64_t soft_max;    /* the largest soft watermark that a peer which
				 measured within the last second sized for
				 itself; 0: none */
	unsigned growing;     /* processes that asked for room to grow within
				 the last second, this one included if it
				 did; at least 1 */
};

/* Publish our resident size, the soft watermark we sized for ourselves
 * (soft_own, 0: none yet) and when we last asked for room to grow
 * (asked_ns, 0: never) for the cgroup bind_dir (NULL: no cgroup binds) and
 * read the others' into *out (n = 1 when alone or when the shared file
 * cannot be used). */
void shrinker__peers_update(const char *bind_dir, uint64_t rss, uint64_t soft_own,
			    uint64_t asked_ns, struct shrinker__peers *out);
/* Our request of bytes is under way, and it ended, having given back
 * bytes: published for the others to leave out of the deficits they see
 * (mon lock held). */
void shrinker__peers_paying(uint64_t bytes);
void shrinker__peers_paid(uint64_t bytes);
/* What the others' requests under way free (*under_way, with those that
 * ended while a measurement that began at measured_ns read), and what
 * those that began after it gave back, which the usage it read still held
 * (*back) (mon lock held). */
void shrinker__peers_others(uint64_t measured_ns, uint64_t *under_way, uint64_t *back);
/* Our part of target: in proportion to our share of the peers' memory. */
uint64_t shrinker__peers_part(const struct shrinker__peers *p, uint64_t target);
/* Whether we hold less than an equal share (room to grow is ours first). */
bool shrinker__peers_below_share(const struct shrinker__peers *p);
/* After fork() (the slot is the parent's), and when unloaded. */
void shrinker__peers_forget(void);
void shrinker__peers_release(void);


#endif /* SHRINKER_PEERS_H */
