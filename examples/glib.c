/*
 * GLib: g_unix_fd_add() on the library's fd runs the deferred shrinker in
 * the main context.  Build:
 *   cc glib.c $(pkg-config --cflags --libs libshrinker glib-2.0)
 */
#include <glib-unix.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>

#include <shrinker.h>

#include "cache.h"

static struct cache cache = CACHE_INIT;
static struct shrinker *shrinker;
static pthread_t loop_thread;
static int ran_on_loop;
static GMainLoop *loop;

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

static gboolean on_pressure(gint fd, GIOCondition cond, gpointer data)
{
	(void)fd;
	(void)cond;
	(void)data;
	shrinker_dispatch();
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

static gboolean drop_caches(gpointer data)
{
	(void)data;
	shrinker_request_reclaim(8 << 20, 0, NULL);
	return G_SOURCE_REMOVE;
}

int main(void)
{
	size_t before;

	loop_thread = pthread_self();
	if (shrinker_register(&shrinker, "glib cache", shrink, NULL, SHRINKER_DEFERRED) < 0)
		return 1;
	cache_fill(&cache, 32 << 20);
	shrinker_set_size(shrinker, cache.bytes);
	before = cache.bytes;

	loop = g_main_loop_new(NULL, FALSE);
	g_unix_fd_add(shrinker_get_fd(), G_IO_IN, on_pressure, NULL);
	g_timeout_add(100, drop_caches, NULL);
	g_main_loop_run(loop);
	g_main_loop_unref(loop);

	printf("cache: %zu -> %zu bytes\n", before, cache.bytes);
	shrinker_unregister(shrinker);
	return ran_on_loop && cache.bytes < before ? 0 : 1;
}
