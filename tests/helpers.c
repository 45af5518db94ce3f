/* SPDX-License-Identifier: MIT */
/* DESIGN: helpers shared by the test binaries (time, waiting). */
#include <time.h>

#include "helpers.h"

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

bool wait_until(bool (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if (cond(arg))
			return true;
		sleep_ms(1);
	} while (now_ms() < end);
	return cond(arg);
}
