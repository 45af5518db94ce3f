/* SPDX-License-Identifier: MIT */
/* memory-hog's command line.  There is deliberately no cache size option. */
#ifndef HOG_OPTIONS_H
#define HOG_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

enum hog_mode { HOG_NATIVE, HOG_OSV, HOG_DEFERRED };

struct hog_options {
	enum hog_mode mode;
	uint64_t duration_ms;  /* 0: until SIGINT or SIGTERM */
	unsigned rate;         /* cache operations per second per worker */
	unsigned threads;      /* worker threads */
	bool json;             /* JSON lines on stdout */
	uint64_t seed;
};

/* Parse argv.  Returns 0, 1 when the program should exit 0 (--help,
 * --version, already printed), or 2 after printing a one-line error. */
int hog_parse_options(int argc, char **argv, struct hog_options *o);

#endif
