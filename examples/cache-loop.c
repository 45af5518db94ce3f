/* A cache in a single-threaded event loop: the cache is made
 * SHRINKER_CACHE_DEFERRED, so it frees only when the loop calls
 * shrinker_dispatch(), on the loop's thread, when the library's fd is
 * readable; no other thread ever touches it.  A timer stands for the
 * requests the loop serves.
 *   cc cache-loop.c $(pkg-config --cflags --libs libshrinker) -o cache-loop
 *   SHRINKER_LIMIT=64M ./cache-loop --seconds 2 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <shrinker-cache.h>

int main(int argc, char **argv)
{
	struct shrinker_cache_options o = { .size = sizeof(o), .flags = SHRINKER_CACHE_DEFERRED };
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	struct shrinker_cache *cache;
	double seconds = argc > 2 && !strcmp(argv[1], "--seconds") ? atof(argv[2]) : 2;
	struct itimerspec every_ms = { { 0, 1000000 }, { 0, 1000000 } };
	static char reply[8192];
	unsigned long ticks = 0, dispatches = 0, rnd = 1;
	int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	int sfd;

	if (shrinker_cache_new(&cache, "replies", &o) < 0 || ep < 0 || tfd < 0)
		return 1;
	sfd = shrinker_get_fd(); /* readable when the cache has freeing to do */
	timerfd_settime(tfd, 0, &every_ms, NULL);
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &(struct epoll_event){ .events = EPOLLIN, .data.fd = tfd });
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &(struct epoll_event){ .events = EPOLLIN, .data.fd = sfd });
	while (ticks < seconds * 1000) {
		struct epoll_event ev;
		uint64_t n;

		if (epoll_wait(ep, &ev, 1, -1) != 1)
			continue;
		if (ev.data.fd == sfd) {
			dispatches += shrinker_dispatch() > 0; /* the cache frees here */
			continue;
		}
		if (read(tfd, &n, sizeof(n)) != sizeof(n))
			continue;
		ticks += n;
		for (int i = 0; i < 50; i++) { /* a tick's requests, a few keys often */
			rnd = rnd * 6364136223846793005ul + 1442695040888963407ul;
			double u = (double)(rnd >> 11) / 9007199254740992.0;
			unsigned long k = (unsigned long)(u * u * u * 20000);

			if (shrinker_cache_copy(cache, &k, sizeof(k), reply, sizeof(reply)) >= 0)
				continue;
			memset(reply, (int)k, sizeof(reply)); /* a miss: answer, and cache it */
			shrinker_cache_set(cache, &k, sizeof(k), reply, sizeof(reply), 0);
		}
	}
	shrinker_cache_get_stats(cache, &st);
	printf("%lu ticks, %llu hits, %llu misses, %llu KiB cached; freed in %lu dispatches: "
	       "%llu entries\n", ticks, (unsigned long long)st.hits, (unsigned long long)st.misses,
	       (unsigned long long)st.bytes >> 10, dispatches,
	       (unsigned long long)st.evicted_pressure);
	return shrinker_cache_free(cache) < 0;
}
