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
 * The working set is usage minus inactive file pages: page cache the kernel
 * can drop is not pressure.  All reads go into fixed buffers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgroup.h"
#include "internal.h"
#include "parse.h"

/* memory.stat of cgroup v1 is about 1.5 KiB, of v2 about 3 KiB;
 * mountinfo can be long on busy hosts. */
static char big[65536];
static char small[256];

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
				small, sizeof(small), &len);
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
	r = shrinker__read_file(dir, "mountinfo", big, sizeof(big), &mi_len);
	if (r < 0)
		return set_none(cg, "cannot read /proc/self/mountinfo", r);
	r1 = try_version(cg, root, 1, pc, pc_len, big, mi_len);
	if (r1 == 0)
		return 0;
	r = try_version(cg, root, 2, pc, pc_len, big, mi_len);
	if (r == 0)
		return 0;
	if (r == -ENOENT && r1 == -ENOENT)
		return set_none(cg, "no memory cgroup in /proc/self/cgroup and mountinfo", 0);
	return set_none(cg, "memory cgroup not usable", r != -ENOENT ? r : r1);
}

static void take_limit(struct shrinker__cg_measure *m, uint64_t v,
		       const char *file, const char *dir,
		       const struct shrinker__cgroup *cg)
{
	const char *rel = dir + strlen(cg->mount);

	if (v >= m->limit)
		return;
	m->limit = v;
	snprintf(m->limit_name, sizeof(m->limit_name), "%s of %s", file,
		 *rel ? rel : "/");
}

static void read_limit(struct shrinker__cg_measure *m, const char *dir,
		       const char *file, const struct shrinker__cgroup *cg)
{
	uint64_t v = UINT64_MAX;
	size_t len = 0;
	int r;

	r = shrinker__read_file(dir, file, small, sizeof(small), &len);
	if (r == -ENOENT)
		return;
	if (r == 0)
		r = shrinker__parse_limit(small, len, &v);
	if (r < 0) {
		shrinker__debug("ignoring %s/%s: %s", dir, file, strerror(-r));
		return;
	}
	take_limit(m, v, file, dir, cg);
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

static int measure_v2(const struct shrinker__cgroup *cg,
		      struct shrinker__cg_measure *m)
{
	char dir[SHRINKER__PATH_MAX];
	size_t len;
	int r;

	/* Our cgroup and every ancestor we can see; the host's root cgroup
	 * has no limit files, which read_limit() takes as no limit. */
	memcpy(dir, cg->dir, sizeof(dir)); /* the same size */
	do {
		read_limit(m, dir, "memory.max", cg);
		read_limit(m, dir, "memory.high", cg);
	} while (shrinker__cgroup_parent(dir, cg));
	r = shrinker__read_file(cg->dir, "memory.current", small, sizeof(small), &len);
	if (r < 0)
		return r;
	r = shrinker__parse_limit(small, len, &m->usage);
	if (r < 0)
		return r;
	if (shrinker__read_file(cg->dir, "memory.stat", big, sizeof(big), &len) == 0)
		shrinker__parse_keyed(big, len, "inactive_file", &m->inactive_file);
	return 0;
}

static int measure_v1(const struct shrinker__cgroup *cg,
		      struct shrinker__cg_measure *m)
{
	uint64_t v;
	size_t len;
	int r;

	read_limit(m, cg->dir, "memory.limit_in_bytes", cg);
	r = shrinker__read_file(cg->dir, "memory.usage_in_bytes", small,
				sizeof(small), &len);
	if (r < 0)
		return r;
	r = shrinker__parse_limit(small, len, &m->usage);
	if (r < 0)
		return r;
	r = shrinker__read_file(cg->dir, "memory.stat", big, sizeof(big), &len);
	if (r == 0) {
		if (shrinker__parse_keyed(big, len, "hierarchical_memory_limit", &v) == 0) {
			if (v >= (1ull << 62))
				v = UINT64_MAX;
			take_limit(m, v, "hierarchical_memory_limit", cg->dir, cg);
		}
		if (shrinker__parse_keyed(big, len, "total_inactive_file",
					  &m->inactive_file) < 0)
			shrinker__parse_keyed(big, len, "inactive_file",
					      &m->inactive_file);
	} else {
		shrinker__debug("cannot read %s/memory.stat: %s", cg->dir,
				strerror(-r));
	}
	return 0;
}

int shrinker__cgroup_measure(const struct shrinker__cgroup *cg,
			     struct shrinker__cg_measure *ret)
{
	struct shrinker__cg_measure m = { .limit = UINT64_MAX };
	int r;

	if (cg->version == 2)
		r = measure_v2(cg, &m);
	else if (cg->version == 1)
		r = measure_v1(cg, &m);
	else
		r = -ENOENT;
	if (r < 0)
		return r;
	if (m.inactive_file > m.usage)
		m.inactive_file = m.usage;
	m.working_set = m.usage - m.inactive_file;
	*ret = m;
	return 0;
}
