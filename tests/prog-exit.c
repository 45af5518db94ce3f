/*
 * For test-registry: a program that registers an exit handler, then its
 * first shrinker, starts a reclaim whose callback takes 200 ms, and calls
 * exit() while the callback runs.  It writes "c" when a callback ends and
 * "x" from its exit handler: "cx" means exit() waited for the running call,
 * no call started after, and the program's teardown came last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "shrinker.h"

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

static void teardown(void)
{
	if (write(1, "x", 1) < 0)
		_exit(4);
}

int main(void)
{
	struct shrinker *s;

	atexit(teardown);
	if (shrinker_register(&s, "slow", slow, NULL, 0) < 0)
		return 5;
	shrinker_request_reclaim(64 << 20, 0, NULL);
	pause_ms(50); /* the callback is running now */
	exit(0);
}
