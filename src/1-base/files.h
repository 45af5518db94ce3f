/* SPDX-License-Identifier: MIT */
/* Reading small kernel files into fixed buffers, under a root path. */
#ifndef SHRINKER_FILES_H
#define SHRINKER_FILES_H

#include <stddef.h>

#define SHRINKER__PATH_MAX 512

/* The directory that stands in for "/" ("" for the real one): SHRINKER_ROOT
 * from the environment (secure_getenv) unless shrinker__set_root() said
 * otherwise.  Tests point it at captured fixture trees. */
const char *shrinker__root(void);
void shrinker__set_root(const char *root);

/* Build "<a>/<b>" into out.  -ENAMETOOLONG if it does not fit. */
int shrinker__join(char *out, size_t size, const char *a, const char *b);

/* Read the whole file dir/name (name may be NULL: dir is the file) into buf,
 * NUL-terminated, its length in *len.  No allocation; the file stays open
 * for the next read.  Callers serialize.  Errors: -errno of
 * open/read, -EFBIG if the file does not fit in size - 1 bytes. */
int shrinker__read_file(const char *dir, const char *name, char *buf,
			size_t size, size_t *len);

/* Close the files kept open by shrinker__read_file() (after fork(), where
 * /proc/self would still be the parent). */
void shrinker__files_forget(void);

/* Read an open fd whole from offset 0 (PSI and memory.events fds). */
int shrinker__reread_fd(int fd, char *buf, size_t size, size_t *len);

#endif
