/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: small helpers every other file needs: the monotonic clock, the
 * SHRINKER_DEBUG log, eventfd signalling, the process's RSS and handing freed
 * heap back to the system.  Nothing here allocates, so all of it may be used
 * on the hard reclaim path.  Every helper saves and restores errno, because
 * the library promises never to change it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "internal.h"

_Atomic uint64_t shrinker__clock_ahead_ns;

uint64_t shrinker__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec +
	       atomic_load_explicit(&shrinker__clock_ahead_ns, memory_order_relaxed);
}

/* -1: not read yet; 0: off; 1: on.  Read by every thread. */
static atomic_int debug_level = -1;

static bool debug_on(void)
{
	int level = atomic_load_explicit(&debug_level, memory_order_relaxed);

	if (level < 0) {
		const char *e = getenv("SHRINKER_DEBUG");

		level = e && *e && strcmp(e, "0") != 0;
		atomic_store_explicit(&debug_level, level, memory_order_relaxed);
	}
	return level > 0;
}

void shrinker__debug_set(int level)
{
	atomic_store_explicit(&debug_level, level < 0 ? -1 : level > 0,
			      memory_order_relaxed);
}

void shrinker__debug(const char *fmt, ...)
{
	uint64_t ms;
	char buf[512];
	va_list ap;
	int saved, h, n;

	if (!debug_on())
		return;
	saved = errno;
	ms = shrinker__now_ns() / 1000000;
	/* The pid: processes sharing a cgroup (peers.c) often share a
	 * terminal or a log too. */
	h = snprintf(buf, sizeof(buf), "libshrinker[%d %llu.%03llu]: ", (int)getpid(),
		     (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
	va_start(ap, fmt);
	/* clang 14's analyzer misses the va_start() just above. */
	n = vsnprintf(buf + h, sizeof(buf) - 1 - (size_t)h, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
	if (n >= 0) {
		n += h;
		if ((size_t)n > sizeof(buf) - 2)
			n = sizeof(buf) - 2;
		buf[n++] = '\n';
		/* One write, so that lines from several threads do not
		 * interleave; nothing to do if it fails. */
		ssize_t w = write(STDERR_FILENO, buf, (size_t)n);

		(void)w;
	}
	errno = saved;
}

void shrinker__fdid_take(int fd, struct shrinker__fdid *id)
{
	struct stat st;
	int saved = errno;

	id->valid = fd >= 0 && fstat(fd, &st) == 0;
	if (id->valid) {
		id->dev = (uint64_t)st.st_dev;
		id->ino = (uint64_t)st.st_ino;
		id->type = (unsigned)(st.st_mode & S_IFMT);
	}
	errno = saved;
}

bool shrinker__fdid_same(int fd, const struct shrinker__fdid *id)
{
	struct stat st;
	int saved = errno;
	bool same;

	same = fd >= 0 && id->valid && fstat(fd, &st) == 0 &&
	       (uint64_t)st.st_dev == id->dev && (uint64_t)st.st_ino == id->ino &&
	       (unsigned)(st.st_mode & S_IFMT) == id->type;
	errno = saved;
	return same;
}

int shrinker__eventfd_signal(int fd)
{
	int saved = errno;
	uint64_t one = 1;
	int r = 0;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		r = -errno;
	errno = saved;
	return r;
}

void shrinker__eventfd_drain(int fd)
{
	int saved = errno;
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain; nothing else can happen here. */
	}
	errno = saved;
}

/* Give fd's number a new, unshared eventfd: the parent and the child must
 * not share one counter, and a program may hold the number (dispatch fd). */
int shrinker__eventfd_renew(int fd)
{
	int n, saved = errno;

	if (fd < 0)
		return fd;
	n = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n < 0) {
		errno = saved;
		return fd;
	}
	if (dup3(n, fd, O_CLOEXEC) < 0) {
		close(fd);
		errno = saved;
		return n;
	}
	close(n);
	errno = saved;
	return fd;
}

/* Kept open (see files.c for why); any thread may pread() it.  Its
 * identity is taken once, on the first open (every later open of
 * /proc/self/statm is the same procfs file type on the same device). */
static _Atomic int statm_fd = -1;
static struct shrinker__fdid statm_id;
static pthread_once_t statm_once = PTHREAD_ONCE_INIT;

static void statm_id_take(void)
{
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	shrinker__fdid_take(fd, &statm_id);
	statm_id.ino = 0; /* per-process inodes: compare device and type */
	if (fd >= 0)
		close(fd);
}

/* Whether fd is a procfs file like /proc/self/statm. */
static bool statm_like(int fd)
{
	struct shrinker__fdid id;

	pthread_once(&statm_once, statm_id_take);
	shrinker__fdid_take(fd, &id);
	return id.valid && statm_id.valid && id.dev == statm_id.dev &&
	       id.type == statm_id.type;
}

void shrinker__rss_forget(void)
{
	int fd = atomic_exchange(&statm_fd, -1), saved = errno;

	if (fd >= 0 && statm_like(fd))
		close(fd);
	errno = saved;
}

void shrinker__deadline_in(struct timespec *ts, uint64_t ns)
{
	int saved = errno;

	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ns / 1000000000u);
	ts->tv_nsec += (long)(ns % 1000000000u);
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
	errno = saved;
}

uint64_t shrinker__rss_bytes(void)
{
	int saved = errno;
	char buf[128];
	unsigned long long pages_total, pages_rss;
	uint64_t r = 0;
	ssize_t n;
	int fd = atomic_load(&statm_fd);

	if (fd < 0) {
		int expected = -1;

		fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			goto out;
		if (!atomic_compare_exchange_strong(&statm_fd, &expected, fd)) {
			close(fd);
			fd = expected;
		}
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0 || !statm_like(fd)) {
		/* Closed under us, or not ours any more: forget it (never
		 * close what may be the program's); the next call reopens. */
		int expected = fd;

		atomic_compare_exchange_strong(&statm_fd, &expected, -1);
		goto out;
	}
	buf[n] = '\0';
	/* "size resident shared ...", in pages. */
	{
		char *p = buf, *end;

		pages_total = strtoull(p, &end, 10);
		p = end;
		pages_rss = strtoull(p, &end, 10);
		if (end != p && pages_total >= pages_rss)
			r = (uint64_t)pages_rss * (uint64_t)sysconf(_SC_PAGESIZE);
	}
out:
	errno = saved;
	return r;
}

bool shrinker__trim(void)
{
#ifdef __GLIBC__
	int saved = errno;

	malloc_trim(0);
	errno = saved;
	return true;
#else
	return false;
#endif
}
