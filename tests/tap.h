/* SPDX-License-Identifier: MIT */
/*
 * A small TAP emitter.  A test binary is a static table of test functions;
 * each one is one TAP line.  A test function returns TAP_PASS, TAP_FAIL or
 * TAP_SKIP (after tap_skip_why()), checks with CHECK()/CHECK_NEAR(), which
 * print a diagnostic and jump to the function's `fail:` label, and cleans up
 * after that label.  A binary that cannot run at all here calls
 * tap_skip_all(), which prints "1..0 # SKIP reason" and exits 0.
 *
 * A skip for want of something a machine may be required to have (a child
 * memory cgroup: kind "CGROUP"; a shared file in /dev/shm: "SHM"; a
 * program or example the build makes where its packages are installed:
 * "BUILD") goes through tap_skip_required() or tap_skip_all_required(): where REQUIRE_<kind>=1 or REQUIRE_ALL=1 is
 * set (.ci/run sets REQUIRE_ALL), it is a failure with the same reason, so
 * that a regression that makes a test skip cannot pass for one.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TAP_PASS = 0, TAP_FAIL = 1, TAP_SKIP = 2 };

struct tap_test {
	const char *name;
	int (*fn)(void);
};

static char tap__why[256];
/* The running test's diagnostics, shown again on stderr if it fails:
 * prove shows only stderr without --verbose, and a failure in CI must say
 * what was measured.  The first 8 KiB are kept. */
static char tap__said[8192];
static size_t tap__said_len;

static inline void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	printf("# %s\n", line);
	fflush(stdout);
	n = snprintf(tap__said + tap__said_len, sizeof(tap__said) - tap__said_len,
		     "# %s\n", line);
	if (n > 0)
		tap__said_len += (size_t)n < sizeof(tap__said) - tap__said_len
					 ? (size_t)n : sizeof(tap__said) - tap__said_len - 1;
}

static inline int tap_skip_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int tap_skip_why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tap__why, sizeof(tap__why), fmt, ap);
	va_end(ap);
	return TAP_SKIP;
}

/* Whether the environment requires what kind names (REQUIRE_<kind>=1 or
 * REQUIRE_ALL=1). */
static inline bool tap_required(const char *kind)
{
	char name[64];
	const char *v = getenv("REQUIRE_ALL");

	if (v && strcmp(v, "1") == 0)
		return true;
	snprintf(name, sizeof(name), "REQUIRE_%s", kind);
	v = getenv(name);
	return v && strcmp(v, "1") == 0;
}

static inline int tap_skip_required(const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int tap_skip_required(const char *kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tap__why, sizeof(tap__why), fmt, ap);
	va_end(ap);
	if (!tap_required(kind))
		return TAP_SKIP;
	printf("# required here (REQUIRE_%s=1 or REQUIRE_ALL=1), and it cannot "
	       "run: %s\n", kind, tap__why);
	return TAP_FAIL;
}

static inline void tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	fflush(stdout);
	exit(0);
}

/* Failures also go to stderr, which prove shows without --verbose. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			tap_diag("%s:%d: failed: %s", __FILE__, __LINE__,      \
				 #cond);                                       \
			fprintf(stderr, "%s:%d: failed: %s\n", __FILE__,       \
				__LINE__, #cond);                              \
			goto fail;                                             \
		}                                                              \
	} while (0)

/* |got - want| <= tol, for memory figures. */
#define CHECK_NEAR(got, want, tol)                                             \
	do {                                                                   \
		double g_ = (double)(got), w_ = (double)(want);                \
		if (g_ - w_ > (double)(tol) || w_ - g_ > (double)(tol)) {      \
			tap_diag("%s:%d: %s = %.0f, want %s = %.0f +- %.0f",   \
				 __FILE__, __LINE__, #got, g_, #want, w_,      \
				 (double)(tol));                               \
			fprintf(stderr, "%s:%d: %s = %.0f, want %.0f\n",       \
				__FILE__, __LINE__, #got, g_, w_);             \
			goto fail;                                             \
		}                                                              \
	} while (0)

/* Runs every test of the table (or, with TAP_ONLY=N in the environment,
 * test N alone, the others skipped); returns the exit status for main(). */
static inline int tap_run(const struct tap_test *t, size_t n)
{
	const char *only = getenv("TAP_ONLY");
	size_t pick = only && *only ? strtoul(only, NULL, 10) : 0;
	int failed = 0;
	size_t i;

	printf("1..%zu\n", n);
	fflush(stdout);
	for (i = 0; i < n; i++) {
		int r;

		tap__why[0] = '\0';
		tap__said[0] = '\0';
		tap__said_len = 0;
		if (pick && pick != i + 1) {
			printf("ok %zu - %s # SKIP not selected (TAP_ONLY=%zu)\n", i + 1,
			       t[i].name, pick);
			continue;
		}
		r = t[i].fn();
		if (r == TAP_SKIP)
			printf("ok %zu - %s # SKIP %s\n", i + 1, t[i].name, tap__why);
		else if (r == TAP_PASS)
			printf("ok %zu - %s\n", i + 1, t[i].name);
		else {
			printf("not ok %zu - %s\n", i + 1, t[i].name);
			fprintf(stderr, "not ok %zu - %s; it said:\n%s", i + 1, t[i].name,
				tap__said);
			failed++;
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}

#define TAP_MAIN(table)                                                        \
	int main(void)                                                         \
	{                                                                      \
		return tap_run(table, sizeof(table) / sizeof(table[0]));       \
	}

/* tap_skip_all(), or where kind is required, one failed test and exit 1. */
static inline void tap_skip_all_required(const char *kind, const char *why)
{
	if (!tap_required(kind))
		tap_skip_all(why);
	printf("1..1\nnot ok 1 - required here (REQUIRE_%s=1 or REQUIRE_ALL=1), "
	       "and it cannot run: %s\n", kind, why);
	fflush(stdout);
	exit(1);
}

#endif /* TAP_H */
