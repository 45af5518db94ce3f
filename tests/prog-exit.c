/*
 * For test-registry: exit() in the ways a program can make it hard.
 *  (no argument) registers an exit handler, then its first shrinker,
 *    starts a reclaim whose callback takes 200 ms, and calls exit() while
 *    the callback runs.  It writes "c" when a callback ends and "x" from its
 *    exit handler: "cx" means exit() waited for the running call, no call
 *    started after, and the program's teardown came last.
 *  lock: the callback waits for a lock the exiting thread holds, for ever.
 *  memory, stats: a signal handler calls exit() while the main thread is
 *    inside shrinker_get_memory() or shrinker_get_global_stats().
 *  closefds: the program closes descriptors 3 to 1023 after registering
 *    (a daemon's habit), says how much CPU the library's thread used in
 *    the second after ("cpu=<us>"), and exits.
 * Each must end, with status 0, in a bounded time (the test allows 5 s).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "shrinker.h"

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static size_t slow(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	pause_ms(200);
	if (write(1, "c", 1) < 0)
		_exit(3);
	return target / 2; /* never enough: more rounds would follow */
}

static size_t locking(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	pthread_mutex_lock(&held);
	pthread_mutex_unlock(&held);
	return target;
}

static void teardown(void)
{
	if (write(1, "x", 1) < 0)
		_exit(4);
}

static void on_alarm(int sig)
{
	(void)sig;
	exit(0);
}

/* CPU time of the thread named "shrinker", microseconds, from schedstat. */
static long long reclaimer_cpu_us(void)
{
	char path[64], buf[64];
	unsigned tid;
	FILE *f;

	for (tid = (unsigned)getpid(); tid < (unsigned)getpid() + 64; tid++) {
		unsigned long long ns;

		snprintf(path, sizeof(path), "/proc/self/task/%u/comm", tid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f) || strncmp(buf, "shrinker", 8)) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%u/schedstat", tid);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &ns) == 1) {
			fclose(f);
			return (long long)(ns / 1000);
		}
		if (f)
			fclose(f);
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	struct shrinker *s;

	if (!strcmp(mode, "lock")) {
		if (shrinker_register(&s, "locking", locking, NULL, 0) < 0)
			return 5;
		pthread_mutex_lock(&held);
		shrinker_request_reclaim(1 << 20, 0, NULL);
		pause_ms(50); /* the callback waits for held now */
		exit(0);
	}
	if (!strcmp(mode, "memory") || !strcmp(mode, "stats")) {
		struct itimerval it = { { 0, 0 }, { 0, 30000 } };
		struct shrinker_global_stats g;
		struct shrinker_memory m;

		if (shrinker_register(&s, "any", slow, NULL, 0) < 0)
			return 5;
		signal(SIGALRM, on_alarm);
		setitimer(ITIMER_REAL, &it, NULL);
		for (;;) {
			if (mode[0] == 'm')
				shrinker_get_memory(&m);
			else
				shrinker_get_global_stats(&g);
		}
	}
	if (!strcmp(mode, "closefds")) {
		long long c0, c1;
		int fd;

		if (shrinker_register(&s, "any", slow, NULL, SHRINKER_INACTIVE) < 0)
			return 5;
		c0 = reclaimer_cpu_us();
		for (fd = 3; fd < 1024; fd++)
			close(fd);
		pause_ms(1000);
		c1 = reclaimer_cpu_us();
		printf("cpu=%lld\n", c0 >= 0 && c1 >= 0 ? c1 - c0 : -1);
		fflush(stdout);
		exit(0);
	}
	atexit(teardown);
	if (shrinker_register(&s, "slow", slow, NULL, 0) < 0)
		return 5;
	shrinker_request_reclaim(64 << 20, 0, NULL);
	pause_ms(50); /* the callback is running now */
	exit(0);
}
