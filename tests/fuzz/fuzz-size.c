/* SPDX-License-Identifier: MIT */
/* Fuzz target: size strings (SHRINKER_LIMIT: 512M, 1.5G, 75%).  What the
 * parser accepts is checked against a reference computed apart, in long
 * double: the number strtold() reads, times the unit's power of 1024. */
#include <ctype.h>
#include <math.h>

#include "fuzz.h"

/* The value s stands for, by strtold() and the unit letter after it (its
 * size in *unit); *pct true for a percentage. */
static long double reference(const char *s, bool *pct, long double *unit)
{
	char *end;
	long double v = strtold(s, &end);
	const char *units = "KMGT", *u;

	while (*end == ' ' || *end == '\t')
		end++;
	*pct = *end == '%';
	*unit = 1;
	if (*pct)
		return v * 100;
	u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
	if (u)
		*unit = ldexpl(1, 10 * (int)(u - units + 1));
	return v * *unit;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	uint64_t bytes = 7;
	unsigned x100 = 7;
	long double want, unit;
	bool pct;

	if (!s)
		return 0;
	if (shrinker__parse_size(s, &bytes, &x100) == 0) {
		want = reference(s, &pct, &unit);
		FUZZ_CHECK(pct == (x100 != 0));
		if (pct) {
			/* Two decimals kept, the rest cut; bytes untouched. */
			FUZZ_CHECK(x100 <= 10000 && bytes == 7);
			FUZZ_CHECK((long double)x100 <= want + 1e-6L &&
				   want < x100 + 1.000001L);
		} else {
			/* Nine decimals kept, the rest cut: at most a
			 * billionth of the unit under the value, and whole
			 * bytes. */
			FUZZ_CHECK((long double)bytes <= want + 1);
			FUZZ_CHECK((long double)bytes >= want - 1 - unit / 1e9L);
		}
	} else {
		FUZZ_CHECK(bytes == 7 && x100 == 7);
	}
	free(s);
	return 0;
}
