/* SPDX-License-Identifier: MIT */
/* Fuzz target: base64 (MEMORY_PRESSURE_WRITE), into a small buffer. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_copy(data, size);
	uint8_t out[32];
	size_t n = 99;

	if (!p)
		return 0;
	if (shrinker__base64_decode(p, size, out, sizeof(out), &n) == 0)
		FUZZ_CHECK(n <= sizeof(out) && n <= size);
	else
		FUZZ_CHECK(n == 99);
	free(p);
	return 0;
}
