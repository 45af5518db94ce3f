/* SPDX-License-Identifier: MIT */
/*
 * memory-hog, the program: option parsing (every option, every kind of bad
 * value: exit status 2 and one line), a short run of each mode in a child
 * memory cgroup with the kernel's counters as the verdict, a JSON stream that
 * parses and agrees with the cgroup's own usage counter, and shrinkers whose
 * reported bytes match the drop in the caches' own accounting exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

static char hog[512];
static char out[4 << 20], err[64 << 10];

/* Run memory-hog with args (NULL-terminated), capturing both streams. */
static int run(char *const args[], const struct cg1 *cg)
{
	int o[2], e[2], i;
	char *argv[16];
	pid_t pid;

	if (pipe(o) < 0 || pipe(e) < 0)
		return -1;
	argv[0] = hog;
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (cg) {
			char p[32];
			int fd;

			snprintf(p, sizeof(p), "%d", (int)getpid());
			snprintf(out, sizeof(out), "%s/cgroup.procs", cg->path);
			fd = open(out, O_WRONLY);
			if (fd < 0 || write(fd, p, strlen(p)) < 0)
				_exit(99);
			close(fd);
		}
		dup2(o[1], 1);
		dup2(e[1], 2);
		close(o[0]);
		close(e[0]);
		execv(hog, argv);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	/* memory-hog's output is small; read stderr after stdout. */
	read_all_fd(o[0], out, sizeof(out));
	read_all_fd(e[0], err, sizeof(err));
	return wait_exit(pid);
}

static int test_good_options(void)
{
	static char *const cases[][8] = {
		{ "--help", NULL },
		{ "--version", NULL },
		{ "--duration", "300ms", "--json", NULL },
		{ "--duration", "1", "--rate", "10", "--threads", "1", NULL },
		{ "--osv", "--duration", "200ms", "--seed", "7", NULL },
		{ "--deferred", "--duration", "200ms", NULL },
		{ "--deferred", "--deferred", "--duration", "200ms", NULL },
	};
	size_t i;
	int st;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = run(cases[i], NULL);
		if (st != 0) {
			tap_diag("%s ...: exit %d: %s", cases[i][0], st, err);
			return TAP_FAIL;
		}
	}
	CHECK(run((char *const[]){ "--help", NULL }, NULL) == 0);
	CHECK(strstr(out, "no cache size option"));
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_bad_options(void)
{
	static char *const cases[][4] = {
		{ "--rate", NULL }, { "--rate", "abc", NULL }, { "--rate", "-5", NULL },
		{ "--rate", "0", NULL }, { "--rate", "10000001", NULL },
		{ "--rate", "99999999999999999999999", NULL }, { "--rate", "5x", NULL },
		{ "--rate", "", NULL }, { "--threads", "0", NULL },
		{ "--threads", "257", NULL }, { "--threads", "-1", NULL },
		{ "--threads", "2.5", NULL }, { "--duration", NULL },
		{ "--duration", "0", NULL }, { "--duration", "-3s", NULL },
		{ "--duration", "5x", NULL }, { "--duration", "s", NULL },
		{ "--duration", "99999999999999999999", NULL },
		{ "--duration", "8d", NULL }, { "--duration", "1000000h", NULL },
		{ "--seed", "x", NULL }, { "--seed", "18446744073709551616", NULL },
		{ "--osv", "--deferred", NULL }, { "--cache-size", "100M", NULL },
		{ "--size", NULL }, { "-x", NULL }, { "stray", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = run(cases[i], NULL);
		char *nl = strchr(err, '\n');

		if (st != 2 || strncmp(err, "memory-hog: ", 12) != 0 || !nl ||
		    nl[1] != '\0' || out[0]) {
			tap_diag("%s %s: exit %d, stderr \"%s\"", cases[i][0],
				 cases[i][1] ? cases[i][1] : "", st, err);
			return TAP_FAIL;
		}
	}
	return TAP_PASS;
}

/* A small strict JSON checker: one object per line. */
static const char *skip_ws(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

static const char *value(const char *p, int depth);

static const char *string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p && *p != '"'; p++)
		if (*p == '\\' && !*++p)
			return NULL;
	return *p == '"' ? p + 1 : NULL;
}

static const char *value(const char *p, int depth)
{
	p = skip_ws(p);
	if (depth > 8)
		return NULL;
	if (*p == '"')
		return string(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';

		p = skip_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = string(skip_ws(p));
				if (!p || *(p = skip_ws(p)) != ':')
					return NULL;
				p++;
			}
			p = value(p, depth + 1);
			if (!p)
				return NULL;
			p = skip_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	{
		char *end;

		strtod(p, &end);
		return end != p ? end : NULL;
	}
}

static double field(const char *line, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(line, k);
	return p ? strtod(p + strlen(k), NULL) : -1;
}

#define LIMIT (256 * MiB)

static int run_mode(const char *mode)
{
	char *args[] = { "--json", "--duration", "6s", "--rate", "6000",
			 (char *)mode, NULL };
	double peak = 0, ws_max = 0, freed = -1, dropped = -1, cache_freed = -1;
	double rss_released = -1;
	uint64_t oom, max_usage;
	char why[200], *line, *save = NULL;
	unsigned lines = 0, samples = 0;
	struct cg1 cg;
	pid_t comp;
	int st, comp_st;

	if (!*mode)
		args[5] = NULL;
	if (getenv("SANITIZE") && *getenv("SANITIZE"))
		return tap_skip_why("memory figures are meaningless under a sanitizer");
	if (geteuid() != 0)
		return tap_skip_required("CGROUP", "needs root to make a child memory cgroup");
	if (cg1_make(&cg, "hog", LIMIT, why, sizeof(why)) < 0)
		return tap_skip_required("CGROUP", "%s", why);
	/* Something else takes a quarter of the limit while the caches are
	 * full, so that every mode's shrinkers run and their figures mean
	 * something. */
	comp = cg1_competitor(&cg, 3000, LIMIT / 4, 1500, COMPETITOR_MIBPS);
	st = run(args, &cg);
	comp_st = comp > 0 ? wait_exit(comp) : -1;
	oom = cg1_read(&cg, "memory.oom_control", "oom_kill");
	max_usage = cg1_read(&cg, "memory.max_usage_in_bytes", NULL);
	cg1_remove(&cg);

	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *end = value(line, 0);

		lines++;
		if (!end || *skip_ws(end)) {
			tap_diag("not JSON: %.200s", line);
			return TAP_FAIL;
		}
		if (strstr(line, "\"type\":\"sample\"")) {
			samples++;
			if (field(line, "cache") > peak)
				peak = field(line, "cache");
			if (field(line, "working_set") > ws_max)
				ws_max = field(line, "working_set");
		}
		if (strstr(line, "\"type\":\"summary\"")) {
			freed = field(line, "freed");
			cache_freed = field(line, "cache_freed");
			dropped = field(line, "dropped");
			rss_released = field(line, "rss_released");
		}
	}
	tap_diag("%s: exit %d, oom_kill %llu, %u lines, peak cache %.1f MiB "
		 "(%.0f %%), working set max %.1f MiB vs cgroup max usage %.1f MiB; "
		 "freed %.1f MiB, entries evicted %.1f MiB, RSS released %.1f MiB",
		 *mode ? mode : "native", st, (unsigned long long)oom, lines,
		 peak / MiB, 100 * peak / LIMIT, ws_max / MiB,
		 max_usage / (double)MiB, freed / MiB, dropped / MiB,
		 rss_released / MiB);
	CHECK(st == 0);
	CHECK(comp_st == 0);
	CHECK(oom == 0);
	CHECK(samples >= 50);
	CHECK(peak >= 0.8 * LIMIT);
	/* The figures agree with the kernel's own counter. */
	CHECK(ws_max >= 0.9 * (double)max_usage && ws_max <= 1.1 * (double)max_usage);
	/* What the library counted is what the caches returned.  An OSv
	 * shrinker cannot say how much it holds, so what one call counts is
	 * capped at its target: whole entries freed past it are not counted. */
	CHECK(freed > 0);
	if (strcmp(mode, "--osv") == 0)
		CHECK(freed <= cache_freed && freed >= 0.9 * cache_freed);
	else
		CHECK(freed == cache_freed);
	/* And it went back to the system: the kernel's RSS of the process
	 * fell by at least half of it over the library's trims (memory-hog
	 * unmaps what it frees; a cache that kept its freed pages would give
	 * back next to nothing; workers that allocate during a trim make the
	 * fall look smaller, never larger). */
	CHECK(rss_released >= 0.5 * freed);
	return TAP_PASS;
fail:
	return TAP_FAIL;
}

static int test_native(void)
{
	return run_mode("");
}

static int test_osv(void)
{
	return run_mode("--osv");
}

static int test_deferred(void)
{
	return run_mode("--deferred");
}

static const struct tap_test tests[] = {
	{ "every option accepted where valid", test_good_options },
	{ "every bad value: exit 2 and one line", test_bad_options },
	{ "native mode in a 256 MiB cgroup", test_native },
	{ "--osv mode in a 256 MiB cgroup", test_osv },
	{ "--deferred mode in a 256 MiB cgroup", test_deferred },
};

int main(void)
{
	snprintf(hog, sizeof(hog), "%s/memory-hog", build_dir());
	if (access(hog, X_OK) != 0)
		tap_skip_all_required("BUILD", "memory-hog is not built");
	return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
}
