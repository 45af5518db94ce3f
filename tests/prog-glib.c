/* SPDX-License-Identifier: MIT */
/*
 * A GLib program with a callback-only cache, as users write them: a
 * GHashTable of 64 KiB values that a main-loop timer grows by 1 MiB every
 * 10 ms (100 MiB/s), never asking before it grows; a deferred shrinker,
 * dispatched from the main loop through g_unix_fd_add() on the library's
 * descriptor, evicts the oldest entries.  Runs --seconds S (default 10) and
 * prints "t=<s> cache=<bytes> rss=<bytes>" every second, then
 * "end cache=<bytes> rss_released=<bytes> dispatches=<n>".
 */
#include <glib-unix.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shrinker.h"

#define VALUE (64 * 1024)

static GHashTable *table;
static GQueue order = G_QUEUE_INIT;
static guint64 next_key, bytes, dispatches;
static struct shrinker *me;
static gint64 t0;
static double seconds = 10;
static GMainLoop *loop;

static size_t evict(size_t target, bool hard, void *userdata)
{
	size_t freed = 0;

	(void)hard;
	(void)userdata;
	while (freed < target && !g_queue_is_empty(&order)) {
		g_hash_table_remove(table, g_queue_pop_head(&order));
		freed += VALUE;
		bytes -= VALUE;
	}
	shrinker_set_size(me, bytes);
	return freed;
}

static gboolean on_fd(gint fd, GIOCondition cond, gpointer data)
{
	(void)fd;
	(void)cond;
	(void)data;
	dispatches += (guint64)shrinker_dispatch();
	return G_SOURCE_CONTINUE;
}

static gboolean grow(gpointer data)
{
	int i;

	(void)data;
	for (i = 0; i < 16; i++) {
		gpointer key = GSIZE_TO_POINTER(++next_key);
		char *v = g_malloc(VALUE);

		memset(v, 1, VALUE);
		g_hash_table_insert(table, key, v);
		g_queue_push_tail(&order, key);
		bytes += VALUE;
	}
	shrinker_set_size(me, bytes);
	return G_SOURCE_CONTINUE;
}

static gboolean report(gpointer data)
{
	unsigned long size = 0, res = 0;
	double t = (double)(g_get_monotonic_time() - t0) / 1e6;
	FILE *f = fopen("/proc/self/statm", "r");

	(void)data;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	printf("t=%.0f cache=%llu rss=%llu\n", t, (unsigned long long)bytes,
	       (unsigned long long)res * 4096ull);
	fflush(stdout);
	if (t >= seconds)
		g_main_loop_quit(loop);
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	struct shrinker_global_stats g;

	if (argc > 2 && !strcmp(argv[1], "--seconds"))
		seconds = atof(argv[2]);
	table = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	if (shrinker_register(&me, "ghashtable", evict, NULL, SHRINKER_DEFERRED) < 0)
		return 1;
	t0 = g_get_monotonic_time();
	loop = g_main_loop_new(NULL, FALSE);
	g_unix_fd_add(shrinker_get_fd(), G_IO_IN, on_fd, NULL);
	g_timeout_add(10, grow, NULL);
	g_timeout_add(1000, report, NULL);
	g_main_loop_run(loop);
	shrinker_get_global_stats(&g);
	printf("end cache=%llu rss_released=%llu dispatches=%llu\n",
	       (unsigned long long)bytes, (unsigned long long)g.rss_released,
	       (unsigned long long)dispatches);
	shrinker_unregister(me);
	g_hash_table_destroy(table);
	g_main_loop_unref(loop);
	return 0;
}
