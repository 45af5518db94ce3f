/*
 * libuv: a uv_poll_t on the library's fd runs the deferred shrinker on the
 * loop's thread.  Build:
 *   cc libuv.c $(pkg-config --cflags --libs libshrinker libuv)
 */
#include <pthread.h>
#include <stdio.h>
#include <uv.h>

#include <shrinker.h>

#include "cache.h"

static struct cache cache = CACHE_INIT;
static struct shrinker *shrinker;
static pthread_t loop_thread;
static int ran_on_loop;
static uv_poll_t pressure;
static uv_timer_t timer;

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

static void on_pressure(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	shrinker_dispatch();
	uv_poll_stop(h);
	uv_close((uv_handle_t *)h, NULL);
}

static void drop_caches(uv_timer_t *t)
{
	(void)t;
	shrinker_request_reclaim(8 << 20, 0, NULL);
	uv_close((uv_handle_t *)t, NULL);
}

int main(void)
{
	uv_loop_t *loop = uv_default_loop();
	size_t before;

	loop_thread = pthread_self();
	if (shrinker_register(&shrinker, "uv cache", shrink, NULL, SHRINKER_DEFERRED) < 0)
		return 1;
	cache_fill(&cache, 32 << 20);
	shrinker_set_size(shrinker, cache.bytes);
	before = cache.bytes;

	uv_poll_init(loop, &pressure, shrinker_get_fd());
	uv_poll_start(&pressure, UV_READABLE, on_pressure);
	uv_timer_init(loop, &timer);
	uv_timer_start(&timer, drop_caches, 100, 0);
	uv_run(loop, UV_RUN_DEFAULT);

	printf("cache: %zu -> %zu bytes\n", before, cache.bytes);
	shrinker_unregister(shrinker);
	uv_loop_close(loop);
	return ran_on_loop && cache.bytes < before ? 0 : 1;
}
