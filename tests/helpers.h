/* SPDX-License-Identifier: MIT */
/* Helpers shared by the test binaries. */
#ifndef TEST_HELPERS_H
#define TEST_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MiB (1024ull * 1024ull)

uint64_t now_ms(void);
void sleep_ms(unsigned ms);
/* Poll cond(arg) every millisecond for up to ms; true once it holds. */
bool wait_until(bool (*cond)(void *), void *arg, unsigned ms);

#endif
