/* SPDX-License-Identifier: MIT */
/*
 * A cache of malloc()ed entries under a squeeze, end to end: examples/lru.c
 * (a hash table and an LRU list, entries of 1-8 KiB, four threads, glibc's
 * default arenas) in a 256 MiB child memory cgroup, where 5 s in a process
 * that does not use the library takes 96 MiB as fast as it can.  Its frees
 * come back as pages only in part (and entries freed across threads pile
 * up in other arenas until malloc_trim()), so a library that counted bytes
 * left the headroom short.  With the library sizing the cache it lives; a
 * generous fixed capacity (200 MiB) in the same squeeze is OOM-killed,
 * which shows the squeeze is one.  The kernel's oom_kill counter and the
 * exit status are the verdict; the lookups per second are reported.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

#define LIMIT (256 * MiB)
#define TAKE (96 * MiB)

static char skip_why[200], exe[600];
static char out[64 * 1024];

struct result {
	int status;
	uint64_t oom_kills;
	double per_s;
	unsigned long long permille, freed, returned;
};

static int run(const char *name, const char *fixed_mib, struct result *r)
{
	char *argv[] = { exe, "--threads", "4", "--seconds", "10",
			 fixed_mib ? "--fixed-mib" : NULL, (char *)fixed_mib, NULL };
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

static int test_squeeze(void)
{
	struct result lib, generous;
	int r;

	r = run("pages-library", NULL, &lib);
	if (r != TAP_PASS)
		return r == TAP_SKIP ? tap_skip_required("CGROUP", "%s", skip_why) : r;
	r = run("pages-fixed200", "200", &generous);
	if (r != TAP_PASS)
		return r == TAP_SKIP ? tap_skip_required("CGROUP", "%s", skip_why) : r;
	/* The squeeze is one: a cache that keeps 200 MiB is killed. */
	CHECK(generous.oom_kills > 0);
	/* The library's: alive, and it was asked to give memory back. */
	CHECK(lib.status == 0 && lib.oom_kills == 0);
	CHECK(lib.freed > 0 && lib.permille > 0 && lib.permille <= 1000);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "a cache of malloc()ed entries in 256 MiB, squeezed by 96 MiB: no OOM kill",
	  test_squeeze },
};

int main(void)
{
	const char *san = getenv("SANITIZE");

	if (san && *san)
		tap_skip_all("memory figures are meaningless under a sanitizer");
	if (geteuid() != 0)
		tap_skip_all_required("CGROUP", "needs root to make a child memory cgroup");
	snprintf(exe, sizeof(exe), "%s/examples/lru", build_dir());
	if (access(exe, X_OK) != 0)
		tap_skip_all_required("BUILD", "examples/lru not built");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
