/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: giving large blocks back to the kernel in batches.  munmap() of
 * memory that other threads of the process may have in their TLBs
 * interrupts every CPU running one of them and waits for each to answer.
 * A shrink that evicted values one munmap() at a time spent 3.3 ms of CPU
 * per MiB freed with cachebench's eight workers on two cores (half of it in
 * those waits, perf shows), so the caches gave back 230 MiB/s, hardly
 * faster than a competitor took it.  A shrink here queues its victims and
 * drops all their pages with one process_madvise(MADV_DONTNEED) on this
 * process, which flushes the TLBs once for the whole vector; the mappings,
 * empty by then, are unmapped without a flush of their own (1.1 ms of CPU
 * per MiB).  Linux allows process_madvise() with MADV_DONTNEED on the
 * calling process from 6.13 on; an older kernel, or a seccomp filter,
 * refuses, and munmap() then does the whole work as before.  A pidfd is
 * opened for each batch, never kept: one kept across fork() would name the
 * parent in the child.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "release.h"

/* False once the kernel refused process_madvise(): not asked again. */
static atomic_bool batched = true;

size_t mapped_size(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

void *mapped_alloc(size_t n)
{
	void *p = mmap(NULL, mapped_size(n), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void release_add(struct release_batch *b, void *p, size_t len)
{
	if (!b) {
		munmap(p, len);
		return;
	}
	if (b->n == RELEASE_BATCH)
		release_flush(b);
	b->v[b->n].iov_base = p;
	b->v[b->n].iov_len = len;
	b->n++;
}

/* Drop the pages of every queued block in one call, where allowed.  What
 * it does not drop, munmap() does. */
static void drop_pages(struct release_batch *b)
{
#if defined(SYS_pidfd_open) && defined(SYS_process_madvise)
	int fd, saved = errno;

	if (b->n < 2 || !atomic_load_explicit(&batched, memory_order_relaxed))
		return;
	fd = (int)syscall(SYS_pidfd_open, getpid(), 0u);
	if (fd < 0 || syscall(SYS_process_madvise, fd, b->v, (size_t)b->n,
			      MADV_DONTNEED, 0u) < 0)
		atomic_store_explicit(&batched, false, memory_order_relaxed);
	if (fd >= 0)
		close(fd);
	errno = saved;
#else
	(void)b;
#endif
}

void release_flush(struct release_batch *b)
{
	unsigned i;

	drop_pages(b);
	for (i = 0; i < b->n; i++)
		munmap(b->v[i].iov_base, b->v[i].iov_len);
	b->n = 0;
}

bool release_batched(bool allow)
{
	return atomic_exchange(&batched, allow);
}
