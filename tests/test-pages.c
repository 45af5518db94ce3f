/* SPDX-License-Identifier: MIT */
/*
 * A cache of malloc()ed entries under a squeeze, end to end: examples/lru.c
 * (a hash table and an LRU list, entries of 1-8 KiB, four threads, glibc's
 * default arenas) in a 256 MiB child memory cgroup, where 5 s in a process
 * that does not use the library takes 96 MiB as fast as it can, up to
 * 256 MiB/s.  Its frees come back as pages only in part (and entries freed
 * across threads pile up in other arenas until malloc_trim()), so a library that counted bytes
 * left the headroom short.  With the library sizing the cache it lives; a
 * generous fixed capacity (200 MiB) in the same squeeze is OOM-killed,
 * which shows the squeeze is one.  The same for examples/rocksdb.c (a
 * RocksDB block cache sized by the library, two readers at random over 3
 * million 100-byte values; a fixed 160 MiB block cache is killed), built
 * where librocksdb-dev is installed.  The kernel's oom_kill counter and the
 * exit status are the verdict; the lookups per second are reported.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

#define LIMIT (256 * MiB)
#define TAKE (96 * MiB)

static char skip_why[200], exe[600], rocksdb[600], db[600];
static char out[64 * 1024];

struct result {
	int status;
	uint64_t oom_kills;
	double per_s;
	unsigned long long permille, freed, returned;
};

/* Drop the database's pages from the page cache, so that each run reads
 * them in and they are charged to its own cgroup. */
static void drop_db_cache(void)
{
	DIR *d = opendir(db);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
	if (d)
		closedir(d);
}

/* argv squeezed in LIMIT: TAKE taken 5 s in, held 3 s. */
static int squeeze(const char *name, char *const argv[], struct result *r)
{
	struct cg1_run cr;
	const char *last;
	int k;

	memset(r, 0, sizeof(*r));
	k = cg1_run(name, LIMIT, argv, TAKE, 5000, 3000, out, sizeof(out), &cr,
		    skip_why, sizeof(skip_why));
	if (k < 0)
		return k == -1 ? TAP_SKIP : TAP_FAIL;
	r->status = cr.status;
	r->oom_kills = cr.oom_kills;
	last = strstr(out, "ops=");
	if (!last)
		last = strstr(out, "lookups=");
	if (last && (last = strstr(last, "per_s=")))
		sscanf(last, "per_s=%lf", &r->per_s);
	if (last && (last = strstr(last, "freed=")))
		sscanf(last, "freed=%llu returned_permille=%llu rss_returned=%llu",
		       &r->freed, &r->permille, &r->returned);
	tap_diag("%s: exit %d, oom_kill %llu, %.0f lookups/s, return learned %llu "
		 "permille, RSS given back %llu of %llu MiB reported freed", name,
		 r->status, (unsigned long long)r->oom_kills, r->per_s, r->permille,
		 r->returned >> 20, r->freed >> 20);
	return TAP_PASS;
}

/* The verdict of a squeeze: the library's run lives and gave memory back,
 * and the generous fixed size dies in the same squeeze, which shows the
 * squeeze is one.  Each run after drop_db_cache() (nothing without a
 * database). */
static int lives_where_generous_dies(char *const lib_argv[], char *const fixed_argv[],
				     const char *tag)
{
	struct result lib, generous;
	char name[64];
	int r;

	snprintf(name, sizeof(name), "pages-%s-library", tag);
	drop_db_cache();
	r = squeeze(name, lib_argv, &lib);
	if (r != TAP_PASS)
		return r == TAP_SKIP ? tap_skip_required("CGROUP", "%s", skip_why) : r;
	snprintf(name, sizeof(name), "pages-%s-fixed", tag);
	drop_db_cache();
	r = squeeze(name, fixed_argv, &generous);
	if (r != TAP_PASS)
		return r == TAP_SKIP ? tap_skip_required("CGROUP", "%s", skip_why) : r;
	CHECK(generous.oom_kills > 0);
	CHECK(lib.status == 0 && lib.oom_kills == 0);
	CHECK(lib.freed > 0 && lib.permille > 0 && lib.permille <= 1000);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

/* examples/lru.c, four threads; a fixed 200 MiB dies. */
static int test_squeeze(void)
{
	char *lib_argv[] = { exe, "--threads", "4", "--seconds", "10", NULL };
	char *fixed_argv[] = { exe, "--threads", "4", "--seconds", "10",
			       "--fixed-mib", "200", NULL };

	return lives_where_generous_dies(lib_argv, fixed_argv, "lru");
}

/* RocksDB's block cache: its frees come back only with a trim of a
 * fragmented heap, at 150-300 MiB/s here, and the library keeps room for
 * that (watermarks.c). */
static int test_rocksdb(void)
{
	char *lib_argv[] = { rocksdb, db, "--seconds", "10", NULL };
	char *fixed_argv[] = { rocksdb, db, "--seconds", "10", "--cache-mib", "160", NULL };
	char cmd[1400], current[700];

	if (access(rocksdb, X_OK) != 0)
		return tap_skip_required("BUILD", "examples/rocksdb not built "
					 "(apt-get install librocksdb-dev)");
	/* The database, once per build directory (about 330 MB). */
	snprintf(current, sizeof(current), "%s/CURRENT", db);
	if (access(current, F_OK) != 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && '%s' --create '%s' --rows 3000000 "
			 ">/dev/null", db, rocksdb, db);
		CHECK(system(cmd) == 0);
	}
	return lives_where_generous_dies(lib_argv, fixed_argv, "rocksdb");
fail:
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "a cache of malloc()ed entries in 256 MiB, squeezed by 96 MiB: no OOM kill",
	  test_squeeze },
	{ "RocksDB's block cache in 256 MiB, squeezed by 96 MiB: no OOM kill, where a "
	  "fixed 160 MiB is killed", test_rocksdb },
};

int main(void)
{
	const char *san = getenv("SANITIZE");

	if (san && *san)
		tap_skip_all("memory figures are meaningless under a sanitizer");
	if (geteuid() != 0)
		tap_skip_all_required("CGROUP", "needs root to make a child memory cgroup");
	snprintf(exe, sizeof(exe), "%s/examples/lru", build_dir());
	snprintf(rocksdb, sizeof(rocksdb), "%s/examples/rocksdb", build_dir());
	snprintf(db, sizeof(db), "%s/tests/rocksdb-db", build_dir());
	if (access(exe, X_OK) != 0)
		tap_skip_all_required("BUILD", "examples/lru not built");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
