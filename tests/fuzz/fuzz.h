/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz targets: each is one LLVMFuzzerTestOneInput() over one
 * parser of src/parse.c.  The input is copied into a heap block of exactly
 * its size, so that reading one byte past it is an ASan error, not luck.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/1-base/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline char *fuzz_copy(const uint8_t *data, size_t size)
{
	char *p = malloc(size ? size : 1);

	if (p && size)
		memcpy(p, data, size);
	return p;
}

/* A NUL-terminated copy, for the parsers that take C strings. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *p = malloc(size + 1);

	if (p) {
		memcpy(p, data, size);
		p[size] = '\0';
	}
	return p;
}

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

#endif
