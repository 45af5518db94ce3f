/* SPDX-License-Identifier: MIT */
/* Fuzz target: PSI files (/proc/pressure/memory, memory.pressure). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shrinker__psi psi = { .some_total = 7 };
	char *p = fuzz_copy(data, size);

	if (!p)
		return 0;
	if (shrinker__parse_psi(p, size, &psi) != 0)
		FUZZ_CHECK(psi.some_total == 7);
	free(p);
	return 0;
}
