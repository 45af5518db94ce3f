/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: memory-hog, the program that shows caches sizing themselves.  Two
 * caches (a few large blobs, many small records) are used by worker threads
 * at a steady rate and grow until the library says there is no more room;
 * when memory gets tight the library calls their shrinkers.  Three ways to
 * wire that up, chosen on the command line:
 *  - native: each cache is the library's cache container
 *    (shrinker-cache.h, container.c), which asks before it grows and frees
 *    in a shrinker of its own on the library's thread;
 *  - --osv: the program's own caches (cache.c, slab.c, release.c) and one
 *    shrinker registered with osv_register_shrinker(), exactly as an OSv
 *    program does, which splits the target between the caches itself and
 *    never asks before growing;
 *  - --deferred: the containers are made SHRINKER_CACHE_DEFERRED, and this
 *    main loop runs their shrinkers when the library's fd becomes readable
 *    (OSv memory-hog's TODO: "just set a global target in the callback,
 *    process in main loop").
 * The main thread owns the signals (through a signalfd: SIGINT and SIGTERM
 * end the run with a summary, SIGUSR1 prints statistics) and samples
 * everything every 100 ms for the display.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "display.h"
#include "options.h"
#include "osv/shrinker.h"
#include "shrinker.h"
#include "workers.h"

#define TICK_MS 100

static struct cache caches[HOG_MAX_CACHES];
static const unsigned ncaches = HOG_MAX_CACHES;

/* OSv hands the one shrinker the whole target; split it between the
 * caches by what each holds, as the library does for native shrinkers. */
static size_t osv_shrink(size_t target, bool hard)
{
	struct cache_stats st[HOG_MAX_CACHES];
	uint64_t total = 0;
	size_t freed = 0;
	unsigned i;

	for (i = 0; i < ncaches; i++) {
		cache_stats(&caches[i], &st[i]);
		total += st[i].bytes;
	}
	for (i = 0; i < ncaches && total; i++)
		freed += cache_shrink(&caches[i],
				      (size_t)((double)target * st[i].bytes / total) + 1,
				      hard);
	return freed;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int register_shrinkers(const struct hog_options *o)
{
	unsigned i;

	if (o->mode == HOG_OSV)
		return osv_register_shrinker("memory-hog", osv_shrink) ? 0 : -ENOMEM;
	/* The native and deferred modes: the library's cache container,
	 * which registers its own shrinker. */
	for (i = 0; i < ncaches; i++)
		if (!cache_use_container(&caches[i], o->mode == HOG_DEFERRED))
			return -ENOMEM;
	return 0;
}

int main(int argc, char **argv)
{
	struct hog_sample samples[2], *cur = &samples[0], *prev = NULL;
	struct hog_summary sum = { .first_shrink_t = -1 };
	struct hog_options o;
	enum hog_output out;
	sigset_t sigs;
	double start, next_tick;
	int r, sfd, dfd = -1;
	bool running = true;

	r = hog_parse_options(argc, argv, &o);
	if (r)
		return r == 1 ? 0 : 2;
	out = o.json ? HOG_JSON : isatty(STDOUT_FILENO) ? HOG_TTY : HOG_LOG;
	sum.mode = o.mode == HOG_OSV ? "osv" : o.mode == HOG_DEFERRED ? "deferred"
								: "native";
	sum.threads = o.threads;
	sum.rate = o.rate;

	/* Signals go to the main loop only: block them before any thread
	 * exists, so that every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		fprintf(stderr, "memory-hog: signalfd: %s\n", strerror(errno));
		return 1;
	}

	cache_tune_allocator();
	/* Key spaces of about 1.3 and 1.1 GiB: more than a cache under a
	 * limit of a few hundred MiB can hold, so its size shows in the hit
	 * rate. */
	if (!cache_init(&caches[0], "blobs", 64 << 10, 256 << 10, 1u << 13,
			o.mode != HOG_OSV) ||
	    !cache_init(&caches[1], "records", 256, 4096, 1u << 19,
			o.mode != HOG_OSV)) {
		fprintf(stderr, "memory-hog: out of memory\n");
		return 1;
	}
	/* An OSv program allocates with malloc(), and only the malloc brake
	 * sees its growth: no mappings of the caches' own. */
	caches[0].map_large = caches[1].map_large = o.mode != HOG_OSV;
	r = register_shrinkers(&o);
	if (r < 0) {
		fprintf(stderr, "memory-hog: cannot register shrinkers: %s\n",
			strerror(-r));
		return 1;
	}
	if (o.mode == HOG_DEFERRED)
		dfd = shrinker_get_fd();
	hog_show_sources(out);
	if (!workers_start(caches, ncaches, o.threads, o.rate, o.seed)) {
		fprintf(stderr, "memory-hog: cannot start worker threads\n");
		return 1;
	}

	start = now_s();
	next_tick = start;
	while (running) {
		struct pollfd fds[2] = { { .fd = sfd, .events = POLLIN },
					 { .fd = dfd, .events = POLLIN } };
		double now = now_s();
		int timeout = now >= next_tick ? 0 : (int)((next_tick - now) * 1000) + 1;

		if (poll(fds, dfd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN)
			shrinker_dispatch();
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGUSR1) {
					hog_sample(cur, caches, ncaches, now_s() - start);
					hog_show_stats(cur);
				} else {
					running = false;
				}
			}
		}
		now = now_s();
		if (o.duration_ms && (now - start) * 1000 >= (double)o.duration_ms)
			running = false;
		if (now >= next_tick || !running) {
			hog_sample(cur, caches, ncaches, now - start);
			hog_show(out, cur, prev);
			hog_summary_add(&sum, cur, prev);
			prev = cur;
			cur = cur == &samples[0] ? &samples[1] : &samples[0];
			next_tick += TICK_MS / 1000.0;
			if (next_tick < now)
				next_tick = now + TICK_MS / 1000.0;
		}
	}
	workers_stop();
	hog_show_summary(out, &sum, prev);
	return 0;
}
