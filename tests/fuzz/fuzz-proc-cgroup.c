/* SPDX-License-Identifier: MIT */
/* Fuzz target: /proc/self/cgroup, both versions, and a small output buffer. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_copy(data, size), path[64];
	int version;

	if (!p)
		return 0;
	for (version = 1; version <= 2; version++) {
		memset(path, 'x', sizeof(path));
		if (shrinker__parse_proc_cgroup(p, size, version, path, sizeof(path)) == 0)
			FUZZ_CHECK(memchr(path, '\0', sizeof(path)) && path[0] == '/');
	}
	free(p);
	return 0;
}
