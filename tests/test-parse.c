/* SPDX-License-Identifier: MIT */
/*
 * The pure parsers, on good input, on every kind of bad input we could think
 * of, and on input placed right before a guard page, so that reading one
 * byte too far crashes instead of passing by luck.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../src/1-base/parse.h"
#include "helpers.h"
#include "tap.h"

/* Copy s to the very end of a page followed by an inaccessible one. */
static char *guarded(const char *s, size_t len)
{
	static char *area;
	long pg = sysconf(_SC_PAGESIZE);

	if (!area) {
		area = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (area == MAP_FAILED)
			abort();
		mprotect(area + pg, (size_t)pg, PROT_NONE);
	}
	if (len > (size_t)pg)
		abort();
	memcpy(area + pg - len, s, len);
	return area + pg - len;
}

#define G(s) guarded(s, strlen(s)), strlen(s)

static int test_limit(void)
{
	uint64_t v = 7;
	int r = TAP_FAIL;

	CHECK(shrinker__parse_limit(G("max\n"), &v) == 0 && v == UINT64_MAX);
	CHECK(shrinker__parse_limit(G("max"), &v) == 0 && v == UINT64_MAX);
	CHECK(shrinker__parse_limit(G("536870912\n"), &v) == 0 && v == 536870912);
	CHECK(shrinker__parse_limit(G("9223372036854771712\n"), &v) == 0 && v == UINT64_MAX);
	CHECK(shrinker__parse_limit(G("0\n"), &v) == 0 && v == 0);
	v = 7;
	CHECK(shrinker__parse_limit(G(""), &v) == -EINVAL);
	CHECK(shrinker__parse_limit(G("\n"), &v) == -EINVAL);
	CHECK(shrinker__parse_limit(G("12abc\n"), &v) == -EINVAL);
	CHECK(shrinker__parse_limit(G("-1\n"), &v) == -EINVAL);
	CHECK(shrinker__parse_limit(G("maximum"), &v) == -EINVAL);
	CHECK(shrinker__parse_limit(G("99999999999999999999999"), &v) == -ERANGE);
	CHECK(v == 7);
	r = TAP_PASS;
fail:
	return r;
}

static int test_keyed(void)
{
	const char *stat = "anon 100\nfile 200\ninactive_file 300\nactive_file 400\n";
	const char *mi = "MemTotal:        8388608 kB\nMemAvailable:    6291456 kB\nHugePages_Total:       0\n";
	uint64_t v = 1;
	int r = TAP_FAIL;

	CHECK(shrinker__parse_keyed(G(stat), "inactive_file", &v) == 0 && v == 300);
	CHECK(shrinker__parse_keyed(G(stat), "file", &v) == 0 && v == 200);
	CHECK(shrinker__parse_keyed(G(stat), "active_file", &v) == 0 && v == 400);
	CHECK(shrinker__parse_keyed(G(mi), "MemAvailable", &v) == 0 && v == 6291456ull * 1024);
	CHECK(shrinker__parse_keyed(G(mi), "HugePages_Total", &v) == 0 && v == 0);
	v = 1;
	CHECK(shrinker__parse_keyed(G(stat), "inactive", &v) == -ENOENT);
	CHECK(shrinker__parse_keyed(G("inactive_file"), "inactive_file", &v) == -ENOENT);
	CHECK(shrinker__parse_keyed(G("inactive_file \n"), "inactive_file", &v) == -EINVAL);
	CHECK(shrinker__parse_keyed(G("inactive_file x1\n"), "inactive_file", &v) == -EINVAL);
	CHECK(shrinker__parse_keyed(G("MemTotal: 5 MB\n"), "MemTotal", &v) == -EINVAL);
	CHECK(shrinker__parse_keyed(G("MemTotal: 99999999999999999999 kB\n"), "MemTotal", &v) == -ERANGE);
	CHECK(shrinker__parse_keyed(G("MemTotal: 18014398509481984 kB\n"), "MemTotal", &v) == -ERANGE);
	CHECK(v == 1);
	r = TAP_PASS;
fail:
	return r;
}

static int test_proc_cgroup(void)
{
	const char *hybrid = "9:name=systemd:/\n4:memory:/process_api/x\n1:cpu,cpuacct:/\n0::/user.slice\n";
	char path[64] = "untouched";
	int r = TAP_FAIL;

	CHECK(shrinker__parse_proc_cgroup(G(hybrid), 1, path, sizeof(path)) == 0);
	CHECK(strcmp(path, "/process_api/x") == 0);
	CHECK(shrinker__parse_proc_cgroup(G(hybrid), 2, path, sizeof(path)) == 0);
	CHECK(strcmp(path, "/user.slice") == 0);
	CHECK(shrinker__parse_proc_cgroup(G("5:cpuset,memory,blkio:/a b\n"), 1, path, sizeof(path)) == 0);
	CHECK(strcmp(path, "/a b") == 0);
	strcpy(path, "untouched");
	CHECK(shrinker__parse_proc_cgroup(G("4:memoryx:/a\n"), 1, path, sizeof(path)) == -ENOENT);
	CHECK(shrinker__parse_proc_cgroup(G("0::\n"), 2, path, sizeof(path)) == -ENOENT);
	CHECK(shrinker__parse_proc_cgroup(G("garbage"), 2, path, sizeof(path)) == -ENOENT);
	CHECK(shrinker__parse_proc_cgroup(G("0::/a\n"), 3, path, sizeof(path)) == -EINVAL);
	CHECK(shrinker__parse_proc_cgroup(G("0::/very/long/path/indeed\n"), 2, path, 8) == -ENAMETOOLONG);
	CHECK(strcmp(path, "untouched") == 0);
	r = TAP_PASS;
fail:
	return r;
}

static int test_mountinfo(void)
{
	const char *mi =
		"24 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
		"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
		"34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
		"35 31 0:32 /x /sys/fs/cgroup/mem\\040ory rw,relatime shared:7 master:2 - cgroup cgroup rw,memory\n"
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
	char mp[64], root[64];
	int r = TAP_FAIL;

	CHECK(shrinker__parse_mountinfo(G(mi), 1, mp, sizeof(mp), root, sizeof(root)) == 0);
	CHECK(strcmp(mp, "/sys/fs/cgroup/mem ory") == 0 && strcmp(root, "/x") == 0);
	CHECK(shrinker__parse_mountinfo(G(mi), 2, mp, sizeof(mp), root, sizeof(root)) == 0);
	CHECK(strcmp(mp, "/sys/fs/cgroup/unified") == 0 && strcmp(root, "/") == 0);
	CHECK(shrinker__parse_mountinfo(G("1 2 3 / /x rw - cgroup cgroup rw,cpu\n"), 1, mp, sizeof(mp), root, sizeof(root)) == -ENOENT);
	CHECK(shrinker__parse_mountinfo(G("1 2 3 / /x rw cgroup2 cgroup2 rw\n"), 2, mp, sizeof(mp), root, sizeof(root)) == -ENOENT);
	CHECK(shrinker__parse_mountinfo(G("- cgroup2\n"), 2, mp, sizeof(mp), root, sizeof(root)) == -ENOENT);
	CHECK(shrinker__parse_mountinfo(G("1 2 3 / /sys/fs/cgroup rw - cgroup2 x rw\n"), 2, mp, 4, root, sizeof(root)) == -ENAMETOOLONG);
	CHECK(shrinker__parse_mountinfo(G(""), 2, mp, sizeof(mp), root, sizeof(root)) == -ENOENT);
	r = TAP_PASS;
fail:
	return r;
}

static int test_psi(void)
{
	const char *good = "some avg10=1.50 avg60=0.00 avg300=0.00 total=123456\n"
			   "full avg10=0.25 avg60=0.00 avg300=0.00 total=6543\n";
	struct shrinker__psi p = { 0 };
	int r = TAP_FAIL;

	CHECK(shrinker__parse_psi(G(good), &p) == 0);
	CHECK(p.some_total == 123456 && p.full_total == 6543);
	CHECK(p.some_avg10 > 1.49 && p.some_avg10 < 1.51);
	CHECK(shrinker__parse_psi(G("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"), &p) == 0);
	CHECK(p.some_total == 5 && p.full_total == 0);
	p.some_total = 77;
	CHECK(shrinker__parse_psi(G(""), &p) == -EINVAL);
	CHECK(shrinker__parse_psi(G("full avg10=0.00 total=5\n"), &p) == -EINVAL);
	CHECK(shrinker__parse_psi(G("some avg10=0.00 avg60=0.00 avg300=0.00 total=\n"), &p) == -EINVAL);
	CHECK(shrinker__parse_psi(G("some avg10=x total=5\n"), &p) == -EINVAL);
	CHECK(shrinker__parse_psi(G("some total=5\n"), &p) == -EINVAL);
	CHECK(shrinker__parse_psi(G("some avg10=0.00 total=5 junk\n"), &p) == -EINVAL);
	CHECK(shrinker__parse_psi(G("hello world\n"), &p) == -EINVAL);
	CHECK(p.some_total == 77);
	r = TAP_PASS;
fail:
	return r;
}

static int test_size(void)
{
	static const struct {
		const char *s;
		uint64_t bytes;
		unsigned x100;
	} good[] = {
		{ "512M", 512 * MiB, 0 }, { "2G", 2048 * MiB, 0 },
		{ "65536", 65536, 0 }, { "64k", 65536, 0 }, { "64KiB", 65536, 0 },
		{ "1.5G", 1536 * MiB, 0 }, { " 3 MB ", 3 * MiB, 0 },
		{ "1T", 1024 * 1024 * MiB, 0 }, { "75%", 0, 7500 },
		{ "12.5%", 0, 1250 }, { "100%", 0, 10000 }, { "50 %", 0, 5000 },
		{ " 50 % ", 0, 5000 }, { "0", 0, 0 }, { "0M", 0, 0 },
		/* Nine decimals of a T: 70 bits on the way. */
		{ "0.999999999T", 1099511626676ull, 0 },
	};
	static const char *const bad[] = {
		"", " ", "abc", "-1", "1.5", "5X", "5 M B", "101%",
		"0%", "1e9", "99999999999T", "18446744073709551616", "1..5G",
		"5M5", ".5G", "%", "M", "100.01%", "50 % x",
	};
	uint64_t b;
	unsigned x, i;
	int r = TAP_FAIL;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		b = 0;
		x = 99;
		if (shrinker__parse_size(good[i].s, &b, &x) != 0 ||
		    (good[i].x100 ? x != good[i].x100 : (b != good[i].bytes || x != 0))) {
			tap_diag("\"%s\" gave %llu bytes, %u", good[i].s,
				 (unsigned long long)b, x);
			goto fail;
		}
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = 42;
		x = 42;
		if (shrinker__parse_size(bad[i], &b, &x) >= 0 || b != 42 || x != 42) {
			tap_diag("\"%s\" accepted", bad[i]);
			goto fail;
		}
	}
	CHECK(shrinker__parse_size(NULL, &b, &x) == -EINVAL);
	CHECK(shrinker__parse_size("99999999999T", &b, &x) == -ERANGE);
	CHECK(shrinker__parse_size("101%", &b, &x) == -EDOM);
	CHECK(shrinker__parse_size("101 %", &b, &x) == -EDOM);
	r = TAP_PASS;
fail:
	return r;
}

static int test_base64(void)
{
	/* "some 200000 2000000" followed by its NUL, as systemd sends it. */
	const char *b = "c29tZSAyMDAwMDAgMjAwMDAwMAA=";
	uint8_t out[64];
	size_t n = 0;
	int r = TAP_FAIL;

	CHECK(shrinker__base64_decode(G(b), out, sizeof(out), &n) == 0);
	CHECK(n == 20 && memcmp(out, "some 200000 2000000", 20) == 0);
	CHECK(shrinker__base64_decode(G("c29tZQ"), out, sizeof(out), &n) == 0);
	CHECK(n == 4 && memcmp(out, "some", 4) == 0);
	CHECK(shrinker__base64_decode(G("c29t\nZQ==\n"), out, sizeof(out), &n) == 0 && n == 4);
	CHECK(shrinker__base64_decode(G(""), out, sizeof(out), &n) == 0 && n == 0);
	n = 99;
	CHECK(shrinker__base64_decode(G("!!!!"), out, sizeof(out), &n) == -EINVAL);
	CHECK(shrinker__base64_decode(G("c29tZQ==x"), out, sizeof(out), &n) == -EINVAL);
	CHECK(shrinker__base64_decode(G("c29tZR=="), out, sizeof(out), &n) == -EINVAL);
	CHECK(shrinker__base64_decode(G("c"), out, sizeof(out), &n) == -EINVAL);
	CHECK(shrinker__base64_decode(G("c29tZQ==="), out, sizeof(out), &n) == -EINVAL);
	CHECK(shrinker__base64_decode(G(b), out, 4, &n) == -ENAMETOOLONG);
	CHECK(n == 99);
	r = TAP_PASS;
fail:
	return r;
}

static const struct tap_test tests[] = {
	{ "cgroup limit figures", test_limit },
	{ "keyed files: memory.stat, memory.events, meminfo", test_keyed },
	{ "/proc/self/cgroup", test_proc_cgroup },
	{ "/proc/self/mountinfo", test_mountinfo },
	{ "PSI files", test_psi },
	{ "size strings", test_size },
	{ "base64", test_base64 },
};

TAP_MAIN(tests)
