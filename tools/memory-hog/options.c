/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: memory-hog's options.  Everything a script may want to set (how
 * long, how fast, how many threads, which API, the output format) and nothing
 * that sizes a cache: that is the library's job.  Every value is checked
 * completely (no trailing garbage, no negative numbers, no overflow) and a
 * bad one ends the program with a one-line message and exit status 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "shrinker.h"

static const char usage[] =
	"Usage: memory-hog [--osv | --deferred] [--duration TIME] [--rate N]\n"
	"                  [--threads N] [--json] [--seed N]\n"
	"Caches that grow to the memory they may use and yield under pressure.\n"
	"\n"
	"  --osv            one shrinker through osv_register_shrinker(), as an\n"
	"                   OSv program has it (no growth check)\n"
	"  --deferred       callbacks only record the target; the main loop frees\n"
	"  --duration TIME  stop after TIME (30, 30s, 500ms, 2m); default: until\n"
	"                   Ctrl-C\n"
	"  --rate N         cache operations per second per thread (default 2000)\n"
	"  --threads N      worker threads (default 2)\n"
	"  --json           one JSON object per line: a sample every 100 ms and\n"
	"                   every pressure event\n"
	"  --seed N         seed of the key sequence (default 1)\n"
	"There is no cache size option: the caches size themselves.\n";

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "memory-hog: %s%s%s%s: %s (see --help)\n", opt,
		val ? " '" : "", val ? val : "", val ? "'" : "", why);
	return 2;
}

/* A whole decimal number in [min, max]. */
static int number(const char *opt, const char *s, uint64_t min, uint64_t max,
		  uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	if (!s || !*s)
		return bad(opt, s, "needs a value");
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return bad(opt, s, "too large");
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == s || *p)
		return bad(opt, s, "not a whole number");
	if (v < min || v > max) {
		char why[64];

		snprintf(why, sizeof(why), "must be from %llu to %llu",
			 (unsigned long long)min, (unsigned long long)max);
		return bad(opt, s, why);
	}
	*ret = v;
	return 0;
}

/* 30, 30s, 500ms, 2m, 1h: in milliseconds, at most a week. */
static int duration(const char *opt, const char *s, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "", 1000 } };
	char num[32];
	size_t n = 0, i;
	uint64_t v;

	if (!s || !*s)
		return bad(opt, s, "needs a value");
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n >= sizeof(num))
		return bad(opt, s, "not a duration (try 30s, 500ms, 2m)");
	memcpy(num, s, n);
	num[n] = '\0';
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s + n, units[i].suffix) == 0)
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		return bad(opt, s, "not a duration (try 30s, 500ms, 2m)");
	if (number(opt, num, 1, 7ull * 24 * 3600 * 1000, &v))
		return 2;
	if (v > 7ull * 24 * 3600 * 1000 / units[i].ms)
		return bad(opt, s, "longer than a week");
	*ret = v * units[i].ms;
	return 0;
}

int hog_parse_options(int argc, char **argv, struct hog_options *o)
{
	uint64_t v;
	int i;

	*o = (struct hog_options){ .mode = HOG_NATIVE, .rate = 2000,
				   .threads = 2, .seed = 1 };
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return 1;
		} else if (!strcmp(a, "--version")) {
			printf("memory-hog, libshrinker %u.%u.%u\n",
			       shrinker_version() >> 16,
			       (shrinker_version() >> 8) & 0xff,
			       shrinker_version() & 0xff);
			return 1;
		} else if (!strcmp(a, "--osv") || !strcmp(a, "--deferred")) {
			enum hog_mode m = a[2] == 'o' ? HOG_OSV : HOG_DEFERRED;

			if (o->mode != HOG_NATIVE && o->mode != m)
				return bad(a, NULL, "--osv and --deferred exclude each other");
			o->mode = m;
		} else if (!strcmp(a, "--json")) {
			o->json = true;
		} else if (!strcmp(a, "--duration")) {
			if (duration(a, val, &o->duration_ms))
				return 2;
			i++;
		} else if (!strcmp(a, "--rate")) {
			if (number(a, val, 1, 10000000, &v))
				return 2;
			o->rate = (unsigned)v;
			i++;
		} else if (!strcmp(a, "--threads")) {
			if (number(a, val, 1, 256, &v))
				return 2;
			o->threads = (unsigned)v;
			i++;
		} else if (!strcmp(a, "--seed")) {
			if (number(a, val, 0, UINT64_MAX, &o->seed))
				return 2;
			i++;
		} else {
			return bad(a, NULL, strncmp(a, "-", 1) ? "unexpected argument"
							       : "unknown option");
		}
	}
	return 0;
}
