/* SPDX-License-Identifier: MIT */
/* Helpers shared by the test binaries. */
#ifndef TEST_HELPERS_H
#define TEST_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MiB (1024ull * 1024ull)

uint64_t now_ms(void);
/* This process's resident bytes, as the kernel counts them (statm); 0 if
 * they cannot be read. */
uint64_t rss_bytes(void);
void sleep_ms(unsigned ms);
/* Poll cond(arg) every millisecond for up to ms; true once it holds. */
bool wait_until(bool (*cond)(void *), void *arg, unsigned ms);

#endif

/* A child memory cgroup (v1) under our own, for end-to-end tests. */
struct cg1 {
	char path[512];
};

/* Make a child memory cgroup with the given limit.  0, or a negative errno
 * with a reason in why (for a TAP skip) when it cannot be done here. */
int cg1_make(struct cg1 *cg, const char *name, uint64_t limit, char *why,
	     size_t why_size);
/* A child of parent (limit 0: none of its own). */
int cg1_make_in(struct cg1 *cg, const struct cg1 *parent, const char *name,
		uint64_t limit);
/* Remove it (its processes must have ended). */
void cg1_remove(struct cg1 *cg);
/* A number from a file of the cgroup: the whole file, or the value of key
 * in a "key value" file such as memory.oom_control.  UINT64_MAX on error. */
uint64_t cg1_read(const struct cg1 *cg, const char *file, const char *key);
/* fork(), move the child into the cgroup, exec argv with stdout to a pipe
 * whose read end goes to *out_fd (if not NULL).  Returns the pid or -1. */
pid_t cg1_spawn(const struct cg1 *cg, char *const argv[], int *out_fd);
/* The most the tests' competitor takes per second, MiB
 * (docs/RELIABILITY.md, "The competitor").  Page faults on these machines
 * run at 375 MiB/s one day and 2.5 GiB/s another, and the library's
 * reaction (wake-ups, RCU grace periods, its polls) does not speed up with
 * them: uncapped, the same test was another one on a fast day.  make bench
 * runs the competitor uncapped.
 * A competitor that takes memory faster than the caches give it back gains
 * on them for as long as its take lasts, and no floor of the soft
 * watermark covers that (docs/RELIABILITY.md, "The competitor"):
 * COMPETITOR_MIBPS is half of what memory-hog's caches give back here
 * (0.9-1.1 GiB/s, by process_madvise() and munmap(); test-memory-hog 3-5
 * with a competitor paced by MADV_POPULATE_WRITE: 7 of 12 OOM-killed at
 * 1 GiB/s, 0 of 12 at 512 MiB/s).  COMPETITOR_HEAP_MIBPS is for caches of
 * malloc()ed entries, whose pages come back through malloc_trim(): the
 * LRU example's at 430-460 MiB/s here, RocksDB's and SQLite's at 100-300
 * (test-pages and test-sqlite 2, paced the same way: 13 of 25 OOM-killed
 * at 512 and 1024 MiB/s, 0 of 15 at 384; at 384 unpaced, 2 of 3 clean
 * .ci/run passes lost one squeeze of the three).  Their floor, up to a
 * quarter of the limit, covers a take of 96 MiB of 256 at 256 MiB/s
 * (headroom for the take times 1 - give-back / rate, plus the rate times
 * the reaction) and not at 384. */
#define COMPETITOR_MIBPS 512u
#define COMPETITOR_HEAP_MIBPS 256u
/* fork() a child in the cgroup that runs the competitor (tools/competitor,
 * in the build directory): waits delay_ms, takes bytes as fast as it can
 * up to mibps MiB/s, holds them hold_ms, and exits 0 (127 if it could not
 * be started; 1 if out of memory). */
pid_t cg1_competitor(const struct cg1 *cg, unsigned delay_ms, uint64_t bytes,
		     unsigned hold_ms, unsigned mibps);
/* What cg1_run() saw: the program's exit status (128 + signal when
 * killed) and the cgroup's OOM kill counter and highest usage. */
struct cg1_run {
	int status;
	uint64_t oom_kills, max_usage;
};
/* Run argv, a cache of malloc()ed entries, in a fresh child cgroup name of
 * limit bytes, its stdout into out (NUL-terminated), while a competitor
 * (cg1_competitor(), at COMPETITOR_HEAP_MIBPS) takes take bytes after
 * delay_ms and holds them hold_ms (take 0: none); then remove
 * the cgroup.  0 and *r; -1 with the reason in why where no child cgroup
 * can be made here (a skip); -2 if the program could not be started. */
int cg1_run(const char *name, uint64_t limit, char *const argv[], uint64_t take,
	    unsigned delay_ms, unsigned hold_ms, char *out, size_t out_size,
	    struct cg1_run *r, char *why, size_t why_size);
/* Wait for pid: its exit status, or 128 + signal. */
int wait_exit(pid_t pid);
/* Read all of fd into buf (NUL-terminated), closing fd. */
size_t read_all_fd(int fd, char *buf, size_t size);
/* How many threads of this process are named name (/proc/self/task/N/comm),
 * -1 if that cannot be read; the id of the last one in *tid if not NULL. */
int threads_named(const char *name, pid_t *tid);
/* The directory holding the test binaries (BUILD from make, or "."). */
const char *build_dir(void);

/* A private copy of the fixture tree tests/fixtures/name in a new
 * directory under /tmp named after tag, written into dir (size bytes):
 * 0, or -1 if it could not be made. */
int fixture_copy(const char *name, const char *tag, char *dir, size_t size);
/* Write text over the file rel under dir: 0, or -1. */
int fixture_write(const char *dir, const char *rel, const char *text);
/* Remove the copy dir (a diagnostic if it cannot be). */
void fixture_remove(const char *dir);
