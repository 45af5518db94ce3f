/* SPDX-License-Identifier: MIT */
/* Fuzz target: /proc/self/mountinfo, both versions. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_copy(data, size), mp[48], root[48];
	int version;

	if (!p)
		return 0;
	for (version = 1; version <= 2; version++)
		if (shrinker__parse_mountinfo(p, size, version, mp, sizeof(mp), root,
					      sizeof(root)) == 0)
			FUZZ_CHECK(memchr(mp, '\0', sizeof(mp)) &&
				   memchr(root, '\0', sizeof(root)));
	free(p);
	return 0;
}
