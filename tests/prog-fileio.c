/* SPDX-License-Identifier: MIT */
/*
 * A program with a small cache that does a lot of file I/O, for the test of
 * cgroup v1's "medium" pressure level: it keeps --cache bytes in a cache
 * with a native shrinker, then writes --bytes to the file given with --file
 * (removed after), through the page cache, so that in a
 * cgroup smaller than the file the kernel reclaims page cache at the limit
 * all the time.  The cache's working set never comes near the limit.
 *
 * Prints "calls=<n> unneeded=<n> freed=<bytes> events=<n> soft_events=<n>
 * hard_events=<n> judged=<n>", where unneeded counts the calls made while
 * the cgroup's anonymous memory, by the kernel (cgroup v1 memory.stat's
 * total_rss, read in the callback), left more than a quarter of its limit
 * free: page cache the kernel reclaims at will, and two and a half times
 * the largest soft watermark, so that no deficit was near.  judged counts
 * the calls for which the kernel's figures could be read (all of them, or
 * the verdict is void).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shrinker.h"

#define CHUNK (1u << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *cache;
static size_t cache_bytes;
static unsigned calls, unneeded, judged;
static struct shrinker *me;
static char cgdir[512]; /* our cgroup v1 memory directory */

/* A number from a file of our cgroup: the whole file, or the value after
 * "key " at a line's start; 0 if it cannot be read. */
static unsigned long long cg_value(const char *file, const char *key)
{
	char path[600], buf[8192], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cgdir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (!key)
		return strtoull(buf, NULL, 10);
	for (p = buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, strlen(key)) && p[strlen(key)] == ' ')
			return strtoull(p + strlen(key) + 1, NULL, 10);
	return 0;
}

static void find_cgroup(void)
{
	char line[600];
	FILE *f = fopen("/proc/self/cgroup", "re");

	while (f && fgets(line, sizeof(line), f)) {
		char *c = strstr(line, ":memory:");

		if (c) {
			c[strcspn(c, "\n")] = '\0';
			snprintf(cgdir, sizeof(cgdir), "/sys/fs/cgroup/memory%s",
				 c + strlen(":memory:"));
			break;
		}
	}
	if (f)
		fclose(f);
}

static size_t shrink(size_t target, bool hard, void *ud)
{
	unsigned long long limit = cg_value("memory.limit_in_bytes", NULL);
	unsigned long long anon = cg_value("memory.stat", "total_rss");
	size_t freed;

	(void)hard;
	(void)ud;
	/* Asked although the cgroup had room to spare, by the kernel's own
	 * figures, not the library's. */
	if (limit && anon) {
		__atomic_add_fetch(&judged, 1, __ATOMIC_RELAXED);
		if (limit > anon && limit - anon > limit / 4)
			__atomic_add_fetch(&unneeded, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&lock);
	calls++;
	freed = target < cache_bytes ? target : cache_bytes;
	cache_bytes -= freed;
	shrinker_set_size(me, cache_bytes);
	pthread_mutex_unlock(&lock);
	return freed;
}

static int io(const char *path, unsigned long long bytes)
{
	static char buf[CHUNK];
	unsigned long long done;
	int fd;

	memset(buf, 'x', sizeof(buf));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	/* Written once and never read back: the pages stay on the inactive
	 * list (a second access would make them active, part of the working
	 * set the library measures, and the test would be about that). */
	for (done = 0; done < bytes; done += CHUNK) {
		if (write(fd, buf, CHUNK) != CHUNK)
			goto fail;
	}
	close(fd);
	return unlink(path);
fail:
	close(fd);
	unlink(path);
	return -1;
}

int main(int argc, char **argv)
{
	unsigned long long bytes = 256ull << 20, want = 8ull << 20;
	struct shrinker_global_stats g;
	const char *file = NULL;
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--bytes"))
			bytes = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--cache"))
			want = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--file"))
			file = argv[i + 1];
	}
	if (!file) {
		fprintf(stderr, "usage: prog-fileio --file PATH [--bytes N] [--cache N]\n");
		return 2;
	}
	find_cgroup();
	cache = malloc(want);
	if (!cache)
		return 1;
	memset(cache, 1, want);
	cache_bytes = want;
	if (shrinker_register(&me, "cache", shrink, NULL, 0) < 0)
		return 1;
	shrinker_set_size(me, cache_bytes);
	/* Let the library arm its sources and measure once. */
	usleep(300 * 1000);
	if (io(file, bytes) < 0) {
		perror("prog-fileio: I/O");
		return 1;
	}
	usleep(200 * 1000);
	shrinker_get_global_stats(&g);
	pthread_mutex_lock(&lock);
	printf("calls=%u unneeded=%u freed=%llu events=%llu soft_events=%llu "
	       "hard_events=%llu judged=%u\n", calls, unneeded,
	       (unsigned long long)(want - cache_bytes),
	       (unsigned long long)g.events, (unsigned long long)g.soft_events,
	       (unsigned long long)g.hard_events, judged);
	pthread_mutex_unlock(&lock);
	fflush(stdout);
	return 0;
}
