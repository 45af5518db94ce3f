/* SPDX-License-Identifier: MIT */
/*
 * Pure parsers of /proc and /sys text, and of the environment's values.  No
 * I/O, no allocation, no global state: each takes a buffer and its length
 * (which need not be NUL-terminated) and returns 0 or a negative errno value
 * (-EINVAL for text it cannot make sense of, -ENOENT for a key or line that is
 * not there, -ERANGE for numbers out of range, -ENAMETOOLONG for an output
 * that does not fit), writing its out-parameters only on success.  They are
 * fuzzed (tests/fuzz/) and tested on captured fixtures.
 */
#ifndef SHRINKER_PARSE_H
#define SHRINKER_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A cgroup limit figure: a decimal number, or "max" (cgroup v2), with an
 * optional trailing newline.  "max" and values of 2^62 and more (cgroup v1
 * writes "no limit" as 2^63 - 4096) give UINT64_MAX: no limit. */
int shrinker__parse_limit(const char *buf, size_t len, uint64_t *ret);

/* The value of `key` in "key value\n" lines (memory.stat, memory.events) or
 * "Key:   value kB\n" lines (/proc/meminfo; the kB unit is applied). */
/* The one "no limit" rule: a limit of 2^62 bytes or more is none
 * (UINT64_MAX); smaller values are returned as they are. */
uint64_t shrinker__limit_or_none(uint64_t v);

int shrinker__parse_keyed(const char *buf, size_t len, const char *key,
			  uint64_t *ret);

/* /proc/self/cgroup: the path of the process's cgroup.  version 2 looks for
 * the "0::" line; version 1 for the line whose controller list has
 * "memory". */
int shrinker__parse_proc_cgroup(const char *buf, size_t len, int version,
				char *path, size_t path_size);

/* /proc/self/mountinfo: the mount point and the root (within the cgroup
 * file system) of the cgroup2 mount (version 2) or of the cgroup mount whose
 * super options have "memory" (version 1).  Octal escapes (\040) in paths
 * are decoded. */
int shrinker__parse_mountinfo(const char *buf, size_t len, int version,
			      char *mount_point, size_t mp_size,
			      char *root, size_t root_size);

/* A PSI file (/proc/pressure/memory, memory.pressure): the "some" and "full"
 * total stall times in microseconds.  A "full" line is optional. */
struct shrinker__psi {
	uint64_t some_total, full_total;
	double some_avg10, full_avg10;
};
int shrinker__parse_psi(const char *buf, size_t len, struct shrinker__psi *ret);

/* A size such as "512M", "2G", "1024", "64k", "1.5G", "75%", "50 %".
 * Suffixes K, M, G, T (powers of 1024, case ignored, optional "B" or "iB"
 * after them).  A percentage (0 < p <= 100, two decimals kept) gives
 * *percent_x100 = p * 100 and leaves *bytes untouched; otherwise *bytes is
 * set (0 for "0": no budget) and *percent_x100 is 0.  Blanks around the
 * number and before the unit or '%' are allowed.  Errors: -EINVAL (not a
 * size, negative, "0%"), -ERANGE (overflow), -EDOM (a percentage over 100). */
int shrinker__parse_size(const char *s, uint64_t *bytes,
			 unsigned *percent_x100);

/* Standard base64 (RFC 4648, padding optional, blanks and newlines
 * ignored).  Writes the decoded bytes to out and their count to *out_len. */
int shrinker__base64_decode(const char *in, size_t in_len, uint8_t *out,
			    size_t out_size, size_t *out_len);

#endif /* SHRINKER_PARSE_H */
