/* SPDX-License-Identifier: MIT */
/*
 * The library loaded and unloaded with dlopen()/dlclose() again and again,
 * as a plugin host does: its destructor stops its thread and gives back
 * every descriptor, so the process ends with the descriptors it began
 * with.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "tap.h"

#define CYCLES 50

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static size_t shrink(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	return target;
}

typedef int (*register_fn)(void **, const char *,
			   size_t (*)(size_t, bool, void *), void *, unsigned);
typedef int (*unregister_fn)(void *);
typedef int (*request_fn)(size_t, unsigned, size_t *);
typedef int (*get_fd_fn)(void);

static int test_cycles(void)
{
	char path[600];
	unsigned before, after, i;
	int r = TAP_FAIL;

	snprintf(path, sizeof(path), "%s/libshrinker.so", build_dir());
	before = open_fds();
	for (i = 0; i < CYCLES; i++) {
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL), *s = NULL;
		register_fn reg;
		unregister_fn unreg;
		request_fn req;
		get_fd_fn get_fd;

		if (!h) {
			tap_diag("dlopen: %s", dlerror());
			goto fail;
		}
		reg = (register_fn)dlsym(h, "shrinker_register");
		unreg = (unregister_fn)dlsym(h, "shrinker_unregister");
		req = (request_fn)dlsym(h, "shrinker_request_reclaim");
		get_fd = (get_fd_fn)dlsym(h, "shrinker_get_fd");
		CHECK(reg && unreg && req && get_fd);
		CHECK(reg(&s, "plugin", shrink, NULL, 0) == 0);
		CHECK(get_fd() >= 0);
		CHECK(req(1 << 20, 2 /* SHRINKER_WAIT */, NULL) == 0);
		CHECK(unreg(s) == 0);
		CHECK(dlclose(h) == 0);
	}
	after = open_fds();
	tap_diag("%u descriptors open before %u load/unload cycles, %u after",
		 before, CYCLES, after);
	CHECK(after == before);
	r = TAP_PASS;
fail:
	return r;
}

static const struct tap_test tests[] = {
	{ "dlopen/dlclose 50 times: no descriptor left behind", test_cycles },
};

int main(void)
{
	const char *san = getenv("SANITIZE");

	if (san && *san)
		tap_skip_all("the sanitizer runtimes keep loaded libraries resident");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
