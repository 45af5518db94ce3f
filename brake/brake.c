/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: libshrinker-brake, OSv's allocation-side brake for Linux.  On OSv
 * a thread that allocates below the hard watermark waits for the reclaimer;
 * on Linux nothing waits, so a program whose threads allocate without asking
 * shrinker_may_grow() (every OSv program, and deferred programs whose
 * freeing lags) can outrun its shrinkers to the OOM killer.  This small
 * library interposes the process's malloc family (link it with
 * -lshrinker-brake before -lshrinker, or LD_PRELOAD it), counts what each
 * thread allocates and frees, and every BATCH bytes of net growth per thread
 * reports it through shrinker_account(SHRINKER_ACCOUNT_WAIT): the library's
 * growth clock looks at the cgroup's usage and, below the hard watermark,
 * holds the thread (at most 100 ms a call) until the shrinkers have made
 * room.  The report comes before the memory is allocated, so a held thread
 * holds no allocator lock.  Frees are counted with malloc_usable_size().
 * SHRINKER_BRAKE=0 in the environment keeps the counting (the growth clock)
 * and turns the waiting off.  It needs glibc (it forwards to __libc_malloc
 * and friends) and the shared libshrinker: a program linked with the static
 * library has its own copy, which this library would not see.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shrinker.h"

#define EXPORT __attribute__((visibility("default")))

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

/* Net growth a thread keeps to itself before it reports. */
#define BATCH (64 << 10)

/* Initial-exec: a dynamic TLS access could itself call malloc. */
static __thread int64_t pending __attribute__((tls_model("initial-exec")));
static __thread int reporting __attribute__((tls_model("initial-exec")));
static unsigned account_flags = SHRINKER_ACCOUNT_WAIT;

__attribute__((constructor)) static void brake_init(void)
{
	const char *e = getenv("SHRINKER_BRAKE");

	if (e && strcmp(e, "0") == 0)
		account_flags = 0;
}

static void report(void)
{
	int64_t p = pending;

	if (reporting)
		return; /* a malloc from inside the library: counted later */
	pending = 0;
	reporting = 1;
	shrinker_account(p, account_flags);
	reporting = 0;
}

/* Net growth per thread, so that a thread that frees and allocates again
 * (a cache replacing entries) reports nothing; what a thread frees is
 * credited up to one BATCH only, because memory freed here may not be
 * where it allocates next, nor given back to the system yet. */
static void count(int64_t delta)
{
	pending += delta;
	if (pending < -BATCH)
		pending = -BATCH;
	else if (pending >= BATCH)
		report();
}

static int64_t as_delta(size_t n)
{
	return n > (size_t)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)n;
}

EXPORT void *malloc(size_t size)
{
	count(as_delta(size));
	return __libc_malloc(size);
}

EXPORT void free(void *p)
{
	if (p)
		count(-as_delta(malloc_usable_size(p)));
	__libc_free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;

	if (!__builtin_mul_overflow(n, size, &total))
		count(as_delta(total));
	return __libc_calloc(n, size);
}

EXPORT void *realloc(void *p, size_t size)
{
	size_t old = p ? malloc_usable_size(p) : 0;
	int64_t ahead = size > old ? as_delta(size - old) : 0;
	void *r;

	/* Growth is counted (and braked) before it happens. */
	if (ahead)
		count(ahead);
	r = __libc_realloc(p, size);
	if (r)
		count(as_delta(malloc_usable_size(r)) - as_delta(old) - ahead);
	else if (!size && p)
		count(-as_delta(old)); /* realloc(p, 0) freed p */
	else
		count(-ahead);
	return r;
}

EXPORT void *memalign(size_t align, size_t size)
{
	count(as_delta(size));
	return __libc_memalign(align, size);
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	count(as_delta(size));
	return __libc_memalign(align, size);
}

EXPORT int posix_memalign(void **ret, size_t align, size_t size)
{
	void *p;
	int saved = errno;

	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	count(as_delta(size));
	p = __libc_memalign(align, size);
	if (!p) {
		errno = saved;
		return ENOMEM;
	}
	*ret = p;
	return 0;
}

EXPORT void *valloc(size_t size)
{
	count(as_delta(size));
	return __libc_valloc(size);
}

EXPORT void *pvalloc(size_t size)
{
	count(as_delta(size));
	return __libc_pvalloc(size);
}
