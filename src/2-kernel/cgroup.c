/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: where the process's memory limit lives and how full it is.  The
 * cgroup is found from /proc/self/cgroup and the hierarchy's mount point from
 * /proc/self/mountinfo, never from assumed paths (containers mount cgroupfs
 * at odd places and with a root other than "/").  The limit is the smallest
 * one that applies: on cgroup v2 the cgroup's and every ancestor's memory.max
 * and memory.high ("max" is none; Go's automemlimit and HotSpot walk the
 * hierarchy the same way); on v1 memory.limit_in_bytes and memory.stat's
 * hierarchical_memory_limit (2^63 - 4096 and such huge values are none).
 * The working set is usage minus inactive file pages, and minus the dirty
 * and writeback pages that reclaim parked on the active list: page cache
 * the kernel can drop is not pressure.  All reads go into fixed buffers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "1-base/parse.h"
#include "2-kernel/cgroup.h"
#include "internal.h"

/* Read buffers, static so that a measurement allocates nothing: the
 * callers hold the mon lock (measure.c, monitor.c), which guards them.
 * mountinfo and memory.stat (about 1.5 KiB on cgroup v1, 3 KiB on v2) can
 * be long on busy hosts; a limit or usage file is one number. */
static char long_buf[65536];
static char number_buf[256];

static int set_none(struct shrinker__cgroup *cg, const char *why, int err)
{
	cg->version = 0;
	snprintf(cg->why, sizeof(cg->why), "%s%s%s", why, err ? ": " : "",
		 err ? strerror(-err) : "");
	return 0;
}

/* dir = root + mount_point + (path relative to the mount's root). */
static int build_dir(struct shrinker__cgroup *cg, const char *root,
		     const char *mp, const char *mroot, const char *path)
{
	size_t rl = strlen(mroot);
	const char *rel = path;
	char tmp[SHRINKER__PATH_MAX];

	/* Inside a container without a cgroup namespace, /proc/self/cgroup
	 * shows the full path and the mount's root is a prefix of it. */
	if (strcmp(mroot, "/") != 0 && strncmp(path, mroot, rl) == 0 &&
	    (path[rl] == '/' || path[rl] == '\0'))
		rel = path + rl;
	else if (strcmp(mroot, "/") != 0)
		rel = "/"; /* the mount shows our cgroup, or an ancestor: use it */
	if (shrinker__join(cg->mount, sizeof(cg->mount), root, mp) < 0 ||
	    shrinker__join(tmp, sizeof(tmp), cg->mount, rel) < 0)
		return -ENAMETOOLONG;
	/* No trailing slash, so that walking up by cutting at '/' works. */
	while (strlen(tmp) > strlen(cg->mount) && tmp[strlen(tmp) - 1] == '/')
		tmp[strlen(tmp) - 1] = '\0';
	memcpy(cg->dir, tmp, strlen(tmp) + 1); /* both SHRINKER__PATH_MAX */
	return 0;
}

static int try_version(struct shrinker__cgroup *cg, const char *root,
		       int version, const char *proc_cgroup, size_t pc_len,
		       const char *mountinfo, size_t mi_len)
{
	char path[SHRINKER__PATH_MAX], mp[SHRINKER__PATH_MAX],
		mroot[SHRINKER__PATH_MAX];
	size_t len;
	int r;

	r = shrinker__parse_proc_cgroup(proc_cgroup, pc_len, version, path,
					sizeof(path));
	if (r < 0)
		return r;
	r = shrinker__parse_mountinfo(mountinfo, mi_len, version, mp,
				      sizeof(mp), mroot, sizeof(mroot));
	if (r < 0)
		return r;
	r = build_dir(cg, root, mp, mroot, path);
	if (r < 0)
		return r;
	/* The memory controller must really be there. */
	r = shrinker__read_file(cg->dir, version == 2 ? "memory.current"
						       : "memory.usage_in_bytes",
				number_buf, sizeof(number_buf), &len);
	if (r == -ENOENT && version == 2 && strcmp(cg->dir, cg->mount) == 0)
		r = 0; /* the host's root cgroup has no memory.current */
	if (r < 0)
		return r;
	cg->version = version;
	cg->why[0] = '\0';
	return 0;
}

int shrinker__cgroup_find(const char *root, struct shrinker__cgroup *cg)
{
	char pc[4096], dir[SHRINKER__PATH_MAX];
	size_t pc_len, mi_len;
	int r, r1;

	r = shrinker__join(dir, sizeof(dir), root, "/proc/self");
	if (r < 0)
		return set_none(cg, "root path too long", r);
	r = shrinker__read_file(dir, "cgroup", pc, sizeof(pc), &pc_len);
	if (r < 0)
		return set_none(cg, "cannot read /proc/self/cgroup", r);
	r = shrinker__read_file(dir, "mountinfo", long_buf, sizeof(long_buf), &mi_len);
	if (r < 0)
		return set_none(cg, "cannot read /proc/self/mountinfo", r);
	r1 = try_version(cg, root, 1, pc, pc_len, long_buf, mi_len);
	if (r1 == 0)
		return 0;
	r = try_version(cg, root, 2, pc, pc_len, long_buf, mi_len);
	if (r == 0)
		return 0;
	if (r == -ENOENT && r1 == -ENOENT)
		return set_none(cg, "no memory cgroup in /proc/self/cgroup and mountinfo", 0);
	return set_none(cg, "memory cgroup not usable", r != -ENOENT ? r : r1);
}

/* The smallest limit of one cgroup directory (v2: memory.max and
 * memory.high; v1: memory.limit_in_bytes), UINT64_MAX if none; which file
 * into *file. */
static uint64_t level_limit(const char *dir, int version, const char **file)
{
	static const char *const v2[] = { "memory.max", "memory.high" };
	static const char *const v1[] = { "memory.limit_in_bytes" };
	const char *const *files = version == 2 ? v2 : v1;
	unsigned i, n = version == 2 ? 2 : 1;
	uint64_t best = UINT64_MAX;

	for (i = 0; i < n; i++) {
		uint64_t v = UINT64_MAX;
		size_t len = 0;
		int r = shrinker__read_file(dir, files[i], number_buf, sizeof(number_buf), &len);

		if (r == -ENOENT)
			continue;
		if (r == 0)
			r = shrinker__parse_limit(number_buf, len, &v);
		if (r < 0) {
			shrinker__debug("ignoring %s/%s: %s", dir, files[i], strerror(-r));
			continue;
		}
		if (v < best) {
			best = v;
			*file = files[i];
		}
	}
	return best;
}

/* Usage and reclaimable page cache of one cgroup directory: inactive file
 * pages (with the dirty and writeback ones) and active ones. */
static int level_usage(const char *dir, int version, uint64_t *usage,
		       uint64_t *inactive_file, uint64_t *active_file)
{
	uint64_t dirty = 0, writeback = 0, moved;
	size_t len;
	int r;

	r = shrinker__read_file(dir, version == 2 ? "memory.current"
						  : "memory.usage_in_bytes",
				number_buf, sizeof(number_buf), &len);
	if (r == 0)
		r = shrinker__parse_limit(number_buf, len, usage);
	if (r < 0)
		return r;
	*inactive_file = 0;
	*active_file = 0;
	r = shrinker__read_file(dir, "memory.stat", long_buf, sizeof(long_buf), &len);
	if (r < 0) {
		shrinker__debug("cannot read %s/memory.stat: %s", dir, strerror(-r));
		return 0;
	}
	/* v1 gives the hierarchy's figures as total_*, v2 only those. */
	if (version == 1 &&
	    shrinker__parse_keyed(long_buf, len, "total_inactive_file", inactive_file) == 0) {
		shrinker__parse_keyed(long_buf, len, "total_active_file", active_file);
		shrinker__parse_keyed(long_buf, len, "total_dirty", &dirty);
		shrinker__parse_keyed(long_buf, len, "total_writeback", &writeback);
	} else {
		shrinker__parse_keyed(long_buf, len, "inactive_file", inactive_file);
		shrinker__parse_keyed(long_buf, len, "active_file", active_file);
		shrinker__parse_keyed(long_buf, len, version == 2 ? "file_dirty" : "dirty",
				      &dirty);
		shrinker__parse_keyed(long_buf, len,
				      version == 2 ? "file_writeback" : "writeback", &writeback);
	}
	/* Reclaim that meets a dirty page, or one under writeback, puts it
	 * on the active list (marked to go to the inactive list's tail once
	 * written): a cgroup at its limit that writes a file shows most of
	 * that file as active, as in use.  It is on its way out, as it was on
	 * the inactive list: up to the dirty and writeback pages, active
	 * file pages count as reclaimable. */
	moved = dirty;
	shrinker__sat_add(&moved, writeback);
	if (moved > *active_file)
		moved = *active_file;
	*active_file -= moved;
	shrinker__sat_add(inactive_file, moved);
	return 0;
}

/* One candidate: the limit of the cgroup at dir, against that cgroup's own
 * working set.  It binds if it leaves the least headroom so far. */
static void consider_level(struct shrinker__cg_measure *m, uint64_t *best_head,
			   uint64_t limit, const char *file, const char *dir,
			   const char *usage_dir, uint64_t usage, uint64_t inactive,
			   uint64_t active, const struct shrinker__cgroup *cg)
{
	const char *rel = dir + strlen(cg->mount);
	uint64_t ws, head;

	if (inactive > usage)
		inactive = usage;
	ws = usage - inactive;
	head = limit > ws ? limit - ws : 0;
	if (head >= *best_head)
		return;
	*best_head = head;
	m->limit = limit;
	m->usage = usage;
	m->inactive_file = inactive;
	m->active_file = active;
	snprintf(m->limit_name, sizeof(m->limit_name), "%s of %s", file,
		 *rel ? rel : "/");
	/* Where the usage was read: probed and watched from now on. */
	snprintf(m->dir, sizeof(m->dir), "%s", usage_dir);
}

bool shrinker__cgroup_parent(char *dir, const struct shrinker__cgroup *cg)
{
	size_t ml = strlen(cg->mount);
	char *slash;

	if (strlen(dir) <= ml)
		return false;
	slash = strrchr(dir, '/');
	if (!slash || slash < dir + ml)
		return false;
	if (slash == dir + ml || slash == dir) {
		/* The parent is the mount point itself. */
		dir[ml ? ml : 1] = '\0';
		return true;
	}
	*slash = '\0';
	return true;
}

/*
 * Every level from our cgroup up to the mount point: a limit on an ancestor
 * is measured against that ancestor's usage, which includes its other
 * children (a Kubernetes pod's limit over its containers, a systemd slice
 * over its services), not against ours.
 */
static int measure_levels(const struct shrinker__cgroup *cg,
			  struct shrinker__cg_measure *m)
{
	char dir[SHRINKER__PATH_MAX];
	uint64_t own_usage = 0, own_inactive = 0, own_active = 0, best = UINT64_MAX, v;
	size_t len;
	int r;

	r = level_usage(cg->dir, cg->version, &own_usage, &own_inactive, &own_active);
	if (r < 0)
		return r;
	memcpy(dir, cg->dir, sizeof(dir)); /* the same size */
	do {
		const char *file = NULL, *usage_dir = dir;
		uint64_t limit = level_limit(dir, cg->version, &file), u = 0, in = 0, ac = 0;

		if (limit == UINT64_MAX)
			continue;
		/* Going up: the last one found is the topmost. */
		memcpy(m->top_dir, dir, sizeof(m->top_dir)); /* the same size */
		if (strcmp(dir, cg->dir) == 0 ||
		    level_usage(dir, cg->version, &u, &in, &ac) < 0) {
			/* Ours, or an ancestor whose usage cannot be read
			 * (then ours is all we know). */
			u = own_usage;
			in = own_inactive;
			ac = own_active;
			usage_dir = cg->dir;
		}
		consider_level(m, &best, limit, file, dir, usage_dir, u, in, ac, cg);
	} while (shrinker__cgroup_parent(dir, cg));
	/* v1: a limit above what we can see (a container's view) still shows
	 * in hierarchical_memory_limit; only our usage can be had for it. */
	if (cg->version == 1 &&
	    shrinker__read_file(cg->dir, "memory.stat", long_buf, sizeof(long_buf), &len) == 0 &&
	    shrinker__parse_keyed(long_buf, len, "hierarchical_memory_limit", &v) == 0 &&
	    shrinker__limit_or_none(v) < m->limit)
		consider_level(m, &best, v, "hierarchical_memory_limit", cg->dir,
			       cg->dir, own_usage, own_inactive, own_active, cg);
	if (m->limit == UINT64_MAX) {
		/* No limit anywhere: our own figures. */
		m->usage = own_usage;
		m->inactive_file = own_inactive;
		m->active_file = own_active;
		snprintf(m->dir, sizeof(m->dir), "%s", cg->dir);
	}
	return 0;
}

int shrinker__cgroup_measure(const struct shrinker__cgroup *cg,
			     struct shrinker__cg_measure *ret)
{
	struct shrinker__cg_measure m = { .limit = UINT64_MAX };
	int r;

	if (cg->version != 1 && cg->version != 2)
		return -ENOENT;
	r = measure_levels(cg, &m);
	if (r < 0)
		return r;
	if (m.inactive_file > m.usage)
		m.inactive_file = m.usage;
	m.working_set = m.usage - m.inactive_file;
	if (m.active_file > m.working_set)
		m.active_file = m.working_set;
	*ret = m;
	return 0;
}
