/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the other program in the demo and the benchmarks: it waits, takes
 * a given amount of memory as fast as it can (1 MiB at a time, every page
 * touched), holds it, gives it back, and says when, in JSON lines with
 * CLOCK_MONOTONIC times ("mono") that line up with memory-hog's, and how far
 * a take has come every PROGRESS_CHUNKS ("progress").  It also
 * reports how long its allocation stalled, which is what a too-slow cache
 * costs the neighbours.  It links no library: it is the process that is not
 * cooperating.
 *
 * --rate caps the take at that many MiB/s: the tests' competitor, as fast
 * as the machine faults pages in on a slow day (375 MiB/s here) and no
 * faster than the caches beside it give memory back on a fast one (page
 * faults at 2.5 GiB/s here, another day; tests/helpers.h).
 *
 * Usage: competitor --take BYTES [--after MS] [--hold MS] [--steps N]
 *        [--every MS] [--cycles N --pause MS] [--rate MIBPS]
 *        (--steps splits the take into N equal parts, --every MS apart;
 *        --cycles repeats take, hold, give back, pause)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define CHUNK (1u << 20)
#define PROGRESS_CHUNKS 8 /* 8 MiB */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time (user, system) in ms and context switches (voluntary: it
 * waited, in the kernel's reclaim or for a lock; involuntary: it was
 * preempted, CPU shared) since the last call: where a take's time went. */
struct usage {
	double user_ms, sys_ms;
	long vcsw, ivcsw;
};

static struct usage usage_now(void)
{
	struct rusage ru;
	struct usage u = { 0, 0, 0, 0 };

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		u.user_ms = (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3;
		u.sys_ms = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
		u.vcsw = ru.ru_nvcsw;
		u.ivcsw = ru.ru_nivcsw;
	}
	return u;
}

static void sleep_until(double t)
{
	for (;;) {
		double left = t - mono();
		struct timespec ts;

		if (left <= 0)
			return;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

static uint64_t arg(int argc, char **argv, const char *name, uint64_t def)
{
	int i;

	for (i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name)) {
			char *end;
			unsigned long long v = strtoull(argv[i + 1], &end, 10);

			if (*end || argv[i + 1][0] == '-') {
				fprintf(stderr, "competitor: bad %s '%s'\n", name, argv[i + 1]);
				exit(2);
			}
			return v;
		}
	return def;
}

int main(int argc, char **argv)
{
	uint64_t take = arg(argc, argv, "--take", 0);
	uint64_t after = arg(argc, argv, "--after", 0);
	uint64_t hold = arg(argc, argv, "--hold", 0);
	uint64_t steps = arg(argc, argv, "--steps", 1);
	uint64_t every = arg(argc, argv, "--every", 0);
	uint64_t cycles = arg(argc, argv, "--cycles", 1);
	uint64_t pause = arg(argc, argv, "--pause", 0);
	uint64_t rate = arg(argc, argv, "--rate", 0);
	uint64_t c;
	size_t nchunks = (size_t)((take + CHUNK - 1) / CHUNK), got = 0, i, s0;
	int failed = 0;
	volatile char **chunks;
	double start = mono(), t;
	uint64_t s;
	struct usage u0, u1;

	if (!take || !steps) {
		fprintf(stderr, "usage: competitor --take BYTES [--after MS] [--hold MS] "
			"[--steps N --every MS] [--rate MIBPS]\n");
		return 2;
	}
	chunks = calloc(nchunks, sizeof(*chunks));
	if (!chunks)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	sleep_until(start + (double)after / 1000.0);
	for (c = 0; c < cycles && !failed; c++) {
		double cycle_start = mono();

		for (s = 0; s < steps && !failed; s++) {
			size_t upto = (size_t)((s + 1) * nchunks / steps);

			sleep_until(cycle_start + (double)(s * every) / 1000.0);
			t = mono();
			printf("{\"type\":\"competitor\",\"event\":\"allocating\","
			       "\"mono\":%.6f,\"held\":%llu}\n", t,
			       (unsigned long long)got * CHUNK);
			u0 = usage_now();
			for (s0 = got; got < upto; got++) {
				/* At --rate, chunk n of the step is due
				 * n / rate s in (a chunk is 1 MiB). */
				if (rate)
					sleep_until(t + (double)(got - s0) / (double)rate);
				/* volatile: the stores must happen, though
				 * nobody reads them. */
				chunks[got] = malloc(CHUNK);
				if (!chunks[got]) {
					fprintf(stderr, "competitor: out of memory "
						"at %zu MiB\n", got);
					failed = 1;
					break;
				}
				for (i = 0; i < CHUNK; i += 4096)
					chunks[got][i] = 1;
				/* Where a take is, now and then: what the
				 * others could have used meanwhile is the
				 * limit less what it already holds. */
				if ((got + 1) % PROGRESS_CHUNKS == 0 && got + 1 < upto)
					printf("{\"type\":\"competitor\",\"event\":\"progress\","
					       "\"mono\":%.6f,\"held\":%llu}\n", mono(),
					       (unsigned long long)(got + 1) * CHUNK);
			}
			u1 = usage_now();
			printf("{\"type\":\"competitor\",\"event\":\"allocated\","
			       "\"mono\":%.6f,\"held\":%llu,\"took_ms\":%.1f,"
			       "\"user_ms\":%.1f,\"sys_ms\":%.1f,\"waits\":%ld,"
			       "\"preempted\":%ld}\n",
			       mono(), (unsigned long long)got * CHUNK,
			       (mono() - t) * 1000, u1.user_ms - u0.user_ms,
			       u1.sys_ms - u0.sys_ms, u1.vcsw - u0.vcsw,
			       u1.ivcsw - u0.ivcsw);
		}
		sleep_until(mono() + (double)hold / 1000.0);
		for (i = 0; i < got; i++) {
			free((char *)chunks[i]);
			chunks[i] = NULL;
		}
		got = 0;
		printf("{\"type\":\"competitor\",\"event\":\"released\","
		       "\"mono\":%.6f,\"held\":0}\n", mono());
		if (c + 1 < cycles)
			sleep_until(mono() + (double)pause / 1000.0);
	}
	free((void *)chunks);
	return failed;
}
