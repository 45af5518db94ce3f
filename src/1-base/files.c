/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: every read of /proc and /sys goes through here: paths are built
 * under the root path (so tests can point the library at a fixture tree) and
 * files are read whole into caller-provided fixed buffers, so that the
 * monitors never allocate, not even under hard pressure.  A file that does
 * not fit is an error (-EFBIG), never silently cut: a truncated memory.stat
 * would give a wrong working set.  Every kept-open descriptor is checked to
 * be the file it was (fstat) before it is read or closed: a program may
 * close all its descriptors and open its own under the same numbers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "1-base/files.h"
#include "internal.h"

static char root_override[SHRINKER__PATH_MAX];
static int root_state; /* 0: not read yet, 1: from env, 2: overridden */
static char root_env[SHRINKER__PATH_MAX];

const char *shrinker__root(void)
{
	if (root_state == 2)
		return root_override;
	if (root_state == 0) {
		const char *e = secure_getenv("SHRINKER_ROOT");

		size_t n = e ? strlen(e) : 0;

		if (n < sizeof(root_env))
			memcpy(root_env, e ? e : "", n + 1);
		root_state = 1;
	}
	return root_env;
}

void shrinker__set_root(const char *root)
{
	size_t n = root ? strlen(root) : 0;

	if (n >= sizeof(root_override))
		n = 0;
	memcpy(root_override, root ? root : "", n);
	root_override[n] = '\0';
	root_state = 2;
}

int shrinker__join(char *out, size_t size, const char *a, const char *b)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0;
	bool slash = b && lb && (la == 0 || a[la - 1] != '/') && b[0] != '/';

	if (la + lb + slash + 1 > size)
		return -ENAMETOOLONG;
	memcpy(out, a, la);
	if (slash)
		out[la++] = '/';
	memcpy(out + la, b ? b : "", lb);
	out[la + lb] = '\0';
	return 0;
}

/*
 * Files read at every measurement stay open and are read again with
 * pread(fd, 0): opening a file allocates kernel memory (struct file, the
 * seq_file buffer) that is charged to our own memory cgroup, so near the
 * limit an open() can stall in the very reclaim we are trying to avoid.
 * The table is small and fixed; callers serialize (the monitor lock, or a
 * single-threaded test).
 */
#define OPEN_SLOTS 48

static struct {
	char path[SHRINKER__PATH_MAX];
	int fd;
	struct shrinker__fdid id;
} open_files[OPEN_SLOTS];
static unsigned open_next;

/* Close a slot's descriptor if it is still the file we opened: a program
 * that closed it may have a file of its own under that number now. */
static void drop_slot(unsigned i)
{
	if (shrinker__fdid_same(open_files[i].fd, &open_files[i].id))
		close(open_files[i].fd);
	open_files[i].path[0] = '\0';
}

static int cached_fd(const char *path, bool fresh)
{
	unsigned i, slot;
	int fd;

	for (i = 0; i < OPEN_SLOTS; i++) {
		if (open_files[i].path[0] && strcmp(open_files[i].path, path) == 0) {
			if (!fresh && shrinker__fdid_same(open_files[i].fd,
							  &open_files[i].id))
				return open_files[i].fd;
			drop_slot(i);
			break;
		}
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	slot = open_next++ % OPEN_SLOTS;
	if (open_files[slot].path[0])
		drop_slot(slot);
	/* path was built by shrinker__join() into a buffer of the same size. */
	snprintf(open_files[slot].path, sizeof(open_files[slot].path), "%s", path);
	open_files[slot].fd = fd;
	shrinker__fdid_take(fd, &open_files[slot].id);
	return fd;
}

void shrinker__files_forget(void)
{
	unsigned i;
	int saved = errno;

	for (i = 0; i < OPEN_SLOTS; i++)
		if (open_files[i].path[0])
			drop_slot(i);
	errno = saved;
}

static int pread_all(int fd, char *buf, size_t size, size_t *len)
{
	size_t n = 0;

	if (size < 2)
		return -EINVAL;
	for (;;) {
		ssize_t r = pread(fd, buf + n, size - 1 - n, (off_t)n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == size - 1) {
			char extra;

			if (pread(fd, &extra, 1, (off_t)n) > 0)
				return -EFBIG;
			break;
		}
	}
	buf[n] = '\0';
	*len = n;
	return 0;
}

int shrinker__read_file(const char *dir, const char *name, char *buf,
			size_t size, size_t *len)
{
	char path[SHRINKER__PATH_MAX];
	int saved = errno, fd, r;

	r = shrinker__join(path, sizeof(path), dir, name);
	if (r < 0)
		return r;
	fd = cached_fd(path, false);
	if (fd < 0) {
		errno = saved;
		return fd;
	}
	r = pread_all(fd, buf, size, len);
	if (r < 0 && r != -EFBIG) {
		/* The file may have gone (cgroup removed): try it afresh. */
		fd = cached_fd(path, true);
		r = fd < 0 ? fd : pread_all(fd, buf, size, len);
	}
	errno = saved;
	return r;
}

int shrinker__reread_fd(int fd, char *buf, size_t size, size_t *len)
{
	int saved = errno, r;

	/* pread() at 0 re-reads a seq_file from the start, and for kernfs
	 * files (memory.events) re-arms POLLPRI like any read. */
	r = pread_all(fd, buf, size, len);
	errno = saved;
	return r;
}
