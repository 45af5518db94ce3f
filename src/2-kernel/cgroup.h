/* SPDX-License-Identifier: MIT */
/* Finding the process's memory cgroup and measuring its limit and usage. */
#ifndef SHRINKER_CGROUP_H
#define SHRINKER_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "1-base/files.h"

struct shrinker__cgroup {
	int version;                        /* 0: none usable, 1 or 2 */
	char dir[SHRINKER__PATH_MAX];       /* our cgroup's directory (root-prefixed) */
	char mount[SHRINKER__PATH_MAX];     /* the hierarchy's mount point (root-prefixed) */
	char why[160];                      /* with version 0: why none */
};

/* Find the memory cgroup of this process under root ("" for the real
 * system): /proc/self/cgroup names it, /proc/self/mountinfo says where its
 * hierarchy is mounted.  cgroup v1's memory controller is preferred where a
 * hybrid system has both (that is where the memory limits live).  Returns 0
 * with version 1 or 2, or 0 with version 0 and the reason in why: never an
 * error, since "no cgroup" is a normal answer. */
int shrinker__cgroup_find(const char *root, struct shrinker__cgroup *cg);

/* Step dir up to its parent cgroup directory; false once dir is the mount
 * point (the top of what we can see), leaving dir unchanged.  Walks start at
 * cg->dir and include the mount point, which is our own cgroup inside a
 * container with a cgroup namespace. */
bool shrinker__cgroup_parent(char *dir, const struct shrinker__cgroup *cg);

struct shrinker__cg_measure {
	uint64_t limit;          /* the binding limit, UINT64_MAX if none */
	char limit_name[96];     /* which file, and where, gave it */
	char dir[SHRINKER__PATH_MAX]; /* the cgroup whose limit binds (ours
					 if none does) */
	uint64_t usage;          /* memory.current / memory.usage_in_bytes of
				    that cgroup */
	uint64_t inactive_file;  /* its reclaimable page cache, not pressure:
				    inactive file pages, and the dirty and
				    writeback ones reclaim put on the active
				    list */
	uint64_t active_file;    /* its page cache in use, which the kernel
				    gives to whoever grows before it fails */
	uint64_t working_set;    /* usage - inactive_file */
	char top_dir[SHRINKER__PATH_MAX]; /* the level with a limit nearest the
					     mount point (its v2 memory.events
					     count every level below it); empty
					     if none */
};

/* Read the limits of the cgroup and every ancestor up to the mount point
 * (v2: memory.max and memory.high; v1: memory.limit_in_bytes, and
 * hierarchical_memory_limit for what lies above the mount), each against
 * the usage of the cgroup it belongs to (an ancestor's usage includes its
 * other children), and keep the one that leaves the least headroom: it
 * binds.  Errors: -ENOENT or -errno when our usage cannot be read, -EINVAL
 * for garbage; a malformed limit file is ignored (no limit from it) and
 * reported through SHRINKER_DEBUG. */
int shrinker__cgroup_measure(const struct shrinker__cgroup *cg,
			     struct shrinker__cg_measure *m);

#endif
