/* SPDX-License-Identifier: MIT */
/*
 * Blocks in mappings of their own, and batches that give many of them back
 * to the kernel at once (release.c, DESIGN).  Nothing here locks: a batch
 * has one user at a time (a cache's shrink, under the cache's lock, or the
 * thread whose replacement evicted the blocks, on its stack).
 */
#ifndef HOG_RELEASE_H
#define HOG_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Blocks a batch holds; adding one more gives the batch back first. */
#define RELEASE_BATCH 256u

struct release_batch {
	struct iovec v[RELEASE_BATCH];
	unsigned n;
};

/* The bytes a mapping for n bytes takes: whole pages. */
size_t mapped_size(size_t n);

/* A mapping of mapped_size(n) bytes, zero-filled, or NULL (errno set). */
void *mapped_alloc(size_t n);

/* Queue len bytes at p (whole pages: a mapping of mapped_alloc(), the
 * whole of it) to be unmapped by release_flush(); a full batch is flushed
 * first.  b NULL: unmapped at once.  The caller does not touch them
 * again. */
void release_add(struct release_batch *b, void *p, size_t len);

/* Give back every block queued: their pages dropped in one system call
 * where the kernel allows it, then each mapping unmapped.  The batch is
 * empty afterwards. */
void release_flush(struct release_batch *b);

/* For the tests: whether release_flush() may drop pages in one call
 * (process_madvise()); false leaves it to munmap() alone, as on a kernel
 * that refuses.  Returns whether it was allowed. */
bool release_batched(bool allow);

#endif
