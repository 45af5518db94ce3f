/* SPDX-License-Identifier: MIT */
/* Fuzz target: memory.max / memory.limit_in_bytes figures. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_copy(data, size);
	uint64_t v = 7;

	if (!p)
		return 0;
	if (shrinker__parse_limit(p, size, &v) != 0)
		FUZZ_CHECK(v == 7); /* untouched on failure */
	free(p);
	return 0;
}
