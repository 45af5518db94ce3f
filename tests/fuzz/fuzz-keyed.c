/* SPDX-License-Identifier: MIT */
/* Fuzz target: "key value" files (memory.stat, memory.events, /proc/meminfo).
 * The first byte picks the key looked up. */
#include "fuzz.h"

static const char *const keys[] = {
	"inactive_file", "total_inactive_file", "hierarchical_memory_limit",
	"high", "max", "oom", "oom_kill", "MemTotal", "MemAvailable", "file",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *key;
	uint64_t v = 7;
	char *p;

	if (size < 1)
		return 0;
	key = keys[data[0] % (sizeof(keys) / sizeof(keys[0]))];
	p = fuzz_copy(data + 1, size - 1);
	if (!p)
		return 0;
	if (shrinker__parse_keyed(p, size - 1, key, &v) != 0)
		FUZZ_CHECK(v == 7);
	free(p);
	return 0;
}
