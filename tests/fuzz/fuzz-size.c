/* SPDX-License-Identifier: MIT */
/* Fuzz target: size strings (SHRINKER_LIMIT: 512M, 1.5G, 75%). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	uint64_t bytes = 7;
	unsigned x100 = 7;

	if (!s)
		return 0;
	if (shrinker__parse_size(s, &bytes, &x100) == 0)
		FUZZ_CHECK(x100 ? (x100 <= 10000 && bytes == 7) : x100 == 0); /* bytes: 0 is "none" */
	else
		FUZZ_CHECK(bytes == 7 && x100 == 7);
	free(s);
	return 0;
}
