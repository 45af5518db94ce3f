/*
 * A single-threaded epoll program with a deferred shrinker: the library
 * never calls it on its own thread; the loop sees the library's fd become
 * readable and runs the pending work itself, so the cache needs no lock of
 * its own against the shrinker.
 *
 * Build: cc epoll.c $(pkg-config --cflags --libs libshrinker)
 * Pressure here comes from shrinker_request_reclaim() on a timer ("drop
 * caches"); under a real limit it comes from the library's monitors.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <shrinker.h>

#include "cache.h"

static struct cache cache = CACHE_INIT;
static struct shrinker *shrinker;
static pthread_t loop_thread;
static int ran_on_loop;

static size_t shrink(size_t target, bool hard, void *userdata)
{
	size_t freed = cache_free_oldest(&cache, target);

	(void)userdata;
	ran_on_loop = pthread_equal(pthread_self(), loop_thread);
	shrinker_set_size(shrinker, cache.bytes);
	printf("shrink: asked %zu, %s, freed %zu on the %s thread\n", target,
	       hard ? "hard" : "soft", freed, ran_on_loop ? "loop's" : "library's");
	return freed;
}

int main(void)
{
	struct itimerspec in_100ms = { .it_value = { 0, 100000000 } };
	struct epoll_event ev = { .events = EPOLLIN };
	int ep, tfd, sfd;
	size_t before;

	loop_thread = pthread_self();
	if (shrinker_register(&shrinker, "epoll cache", shrink, NULL,
			      SHRINKER_DEFERRED) < 0)
		return 1;
	cache_fill(&cache, 32 << 20);
	shrinker_set_size(shrinker, cache.bytes);
	before = cache.bytes;

	ep = epoll_create1(EPOLL_CLOEXEC);
	sfd = shrinker_get_fd();
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	timerfd_settime(tfd, 0, &in_100ms, NULL);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);

	for (;;) {
		struct epoll_event got;

		if (epoll_wait(ep, &got, 1, 2000) != 1)
			break; /* nothing for two seconds: done */
		if (got.data.fd == tfd) {
			uint64_t n;

			if (read(tfd, &n, sizeof(n)) < 0)
				break;
			shrinker_request_reclaim(8 << 20, 0, NULL);
		} else if (got.data.fd == sfd) {
			shrinker_dispatch();
			break;
		}
	}
	printf("cache: %zu -> %zu bytes\n", before, cache.bytes);
	shrinker_unregister(shrinker);
	return ran_on_loop && cache.bytes < before ? 0 : 1;
}
