/* SPDX-License-Identifier: MIT */
/*
 * systemd's memory pressure protocol: MEMORY_PRESSURE_WATCH naming a FIFO, an
 * AF_UNIX socket or a PSI file delivers pressure callbacks; an empty value
 * and /dev/null turn it off; a bad MEMORY_PRESSURE_WRITE is reported.  Each
 * case runs in a child process, so that the library starts with that case's
 * environment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "shrinker.h"
#include "tap.h"

/* The children start threads after fork() on purpose. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}

static char dir[64];
static atomic_uint calls;

static size_t count_calls(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	atomic_fetch_add(&calls, 1);
	return target;
}

static bool called(void *p)
{
	(void)p;
	return atomic_load(&calls) > 0;
}

/* The systemd source's description, after registering a shrinker. */
static int start(struct shrinker_source_info *info)
{
	struct shrinker *s;
	unsigned i;

	if (shrinker_register(&s, "cache", count_calls, NULL, 0) < 0)
		return -1;
	shrinker_set_size(s, 64 * MiB);
	/* The thread opens its sources as it starts. */
	for (i = 0; i < 1000; i++) {
		if (shrinker_get_source(7, info) == 0 &&
		    strcmp(info->detail, "not started") != 0)
			break;
		sleep_ms(1);
	}
	return strcmp(info->name, "systemd-memory-pressure") == 0 ? 0 : -1;
}

static int run_child(int (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn());
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

#define EXPECT(cond, code)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("# child: failed: %s\n", #cond);                \
			fflush(stdout);                                        \
			return code;                                           \
		}                                                              \
	} while (0)

static int fifo_child(void)
{
	struct shrinker_source_info info;
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/fifo", dir);
	EXPECT(mkfifo(path, 0600) == 0, 2);
	setenv("MEMORY_PRESSURE_WATCH", path, 1);
	EXPECT(start(&info) == 0, 3);
	EXPECT(info.active && strstr(info.detail, "FIFO"), 4);
	EXPECT(!called(NULL), 5);
	fd = open(path, O_WRONLY | O_NONBLOCK);
	EXPECT(fd >= 0 && write(fd, "p", 1) == 1, 6);
	EXPECT(wait_until(called, NULL, 3000), 7);
	close(fd);
	return 0;
}

static int socket_child(void)
{
	/* "some 150000 2000000" and its NUL, base64. */
	const char *b64 = "c29tZSAxNTAwMDAgMjAwMDAwMAA=";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct shrinker_source_info info;
	char got[64] = "";
	int l, c;
	ssize_t n;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	EXPECT(l >= 0, 2);
	EXPECT(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 1) == 0, 3);
	setenv("MEMORY_PRESSURE_WATCH", sa.sun_path, 1);
	setenv("MEMORY_PRESSURE_WRITE", b64, 1);
	EXPECT(start(&info) == 0, 4);
	EXPECT(info.active && strstr(info.detail, "socket"), 5);
	c = accept(l, NULL, NULL);
	EXPECT(c >= 0, 6);
	/* The library wrote the decoded trigger to the socket. */
	n = read(c, got, sizeof(got));
	EXPECT(n == 20 && memcmp(got, "some 150000 2000000", 20) == 0, 7);
	EXPECT(!called(NULL), 8);
	EXPECT(write(c, "pressure", 8) == 8, 9);
	EXPECT(wait_until(called, NULL, 3000), 10);
	close(c);
	close(l);
	return 0;
}

static int psi_child(void)
{
	/* "some 200000 2000000" without its NUL: the library adds it. */
	struct shrinker_source_info info;

	setenv("MEMORY_PRESSURE_WATCH", "/proc/pressure/memory", 1);
	setenv("MEMORY_PRESSURE_WRITE", "c29tZSAyMDAwMDAgMjAwMDAwMA==", 1);
	EXPECT(start(&info) == 0, 2);
	printf("# %s\n", info.detail);
	fflush(stdout);
	EXPECT(info.active, 3);
	EXPECT(strstr(info.detail, "systemd: PSI trigger \"some 200000 2000000\""), 4);
	return 0;
}

/* A 1 s window, which the kernel refuses without CAP_SYS_RESOURCE: armed
 * as 2 s, the stall scaled, and the detail says both.  Where the kernel
 * takes it (CAP_SYS_RESOURCE), armed as asked.  The test asks the kernel
 * itself first, and expects that one outcome. */
static bool kernel_takes_1s;

static int psi_1s_child(void)
{
	struct shrinker_source_info info;

	setenv("MEMORY_PRESSURE_WATCH", "/proc/pressure/memory", 1);
	setenv("MEMORY_PRESSURE_WRITE", "c29tZSAxMDAwMDAgMTAwMDAwMAA=", 1);
	EXPECT(start(&info) == 0, 2);
	printf("# the kernel %s a 1 s window here; %s\n",
	       kernel_takes_1s ? "takes" : "refuses", info.detail);
	fflush(stdout);
	EXPECT(info.active, 3);
	if (kernel_takes_1s)
		EXPECT(strstr(info.detail, "\"some 100000 1000000\"") &&
		       !strstr(info.detail, "asked"), 4);
	else
		EXPECT(strstr(info.detail, "\"some 200000 2000000\" (asked "
				      "\"some 100000 1000000\")"), 5);
	return 0;
}

static int test_psi_1s(void)
{
	static const char trigger[] = "some 100000 1000000";
	int fd = open("/proc/pressure/memory", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return tap_skip_why("cannot open /proc/pressure/memory for writing");
	kernel_takes_1s = write(fd, trigger, sizeof(trigger)) >= 0;
	close(fd);
	return run_child(psi_1s_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static const char *off_value;

static int off_child(void)
{
	struct shrinker_source_info info;

	setenv("MEMORY_PRESSURE_WATCH", off_value, 1);
	EXPECT(start(&info) == 0, 2);
	EXPECT(!info.active && strstr(info.detail, "turned off"), 3);
	return 0;
}

static int bad_b64_child(void)
{
	struct shrinker_source_info info;
	char path[128];

	snprintf(path, sizeof(path), "%s/fifo2", dir);
	EXPECT(mkfifo(path, 0600) == 0, 2);
	setenv("MEMORY_PRESSURE_WATCH", path, 1);
	setenv("MEMORY_PRESSURE_WRITE", "not*base64!", 1);
	EXPECT(start(&info) == 0, 3);
	EXPECT(!info.active && strstr(info.detail, "not valid base64"), 4);
	return 0;
}

static int missing_child(void)
{
	struct shrinker_source_info info;

	setenv("MEMORY_PRESSURE_WATCH", "/nonexistent/memory.pressure", 1);
	EXPECT(start(&info) == 0, 2);
	EXPECT(!info.active && strstr(info.detail, "No such file"), 3);
	return 0;
}

static int regular_child(void)
{
	static const char content[] = "a user's data, not a PSI file\n";
	struct shrinker_source_info info;
	char path[128], back[64] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/user-file", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	EXPECT(fd >= 0 && write(fd, content, sizeof(content) - 1) ==
				  (ssize_t)sizeof(content) - 1, 2);
	close(fd);
	setenv("MEMORY_PRESSURE_WATCH", path, 1);
	EXPECT(start(&info) == 0, 3);
	EXPECT(!info.active && strstr(info.detail, "not a PSI file"), 4);
	fd = open(path, O_RDONLY);
	EXPECT(fd >= 0 && read(fd, back, sizeof(back)) == (ssize_t)sizeof(content) - 1, 5);
	close(fd);
	EXPECT(memcmp(back, content, sizeof(content) - 1) == 0, 6);
	return 0;
}

static int relative_child(void)
{
	struct shrinker_source_info info;

	EXPECT(chdir(dir) == 0 && mkfifo("fifo-rel", 0600) == 0, 2);
	setenv("MEMORY_PRESSURE_WATCH", "fifo-rel", 1);
	EXPECT(start(&info) == 0, 3);
	EXPECT(!info.active && strstr(info.detail, "not an absolute path"), 4);
	return 0;
}

static int test_regular_file(void)
{
	return run_child(regular_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static int test_relative(void)
{
	return run_child(relative_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static int test_fifo(void)
{
	return run_child(fifo_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static int test_socket(void)
{
	return run_child(socket_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static int test_psi_file(void)
{
	int fd = open("/proc/pressure/memory", O_RDWR);

	if (fd < 0)
		return tap_skip_why("cannot open /proc/pressure/memory for writing");
	close(fd);
	return run_child(psi_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static int test_off(void)
{
	off_value = "";
	if (run_child(off_child) != 0)
		return TAP_FAIL;
	off_value = "/dev/null";
	return run_child(off_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static int test_bad_base64(void)
{
	return run_child(bad_b64_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static int test_missing(void)
{
	return run_child(missing_child) == 0 ? TAP_PASS : TAP_FAIL;
}

static const struct tap_test tests[] = {
	{ "a FIFO delivers pressure callbacks", test_fifo },
	{ "an AF_UNIX socket gets the trigger and delivers callbacks", test_socket },
	{ "a PSI file gets the trigger with its NUL", test_psi_file },
	{ "empty and /dev/null turn it off", test_off },
	{ "a bad MEMORY_PRESSURE_WRITE is reported, not used", test_bad_base64 },
	{ "a missing file is reported, not used", test_missing },
	{ "a regular file that is not PSI is left byte for byte unchanged", test_regular_file },
	{ "a relative path is refused", test_relative },
	{ "a 1 s window the kernel refuses is armed as 2 s", test_psi_1s },
};

int main(void)
{
	int r;

	snprintf(dir, sizeof(dir), "/tmp/shrinker-test-XXXXXX");
	if (!mkdtemp(dir))
		tap_skip_all("cannot make a temporary directory");
	unsetenv("MEMORY_PRESSURE_WATCH");
	unsetenv("MEMORY_PRESSURE_WRITE");
	r = tap_run(tests, sizeof(tests) / sizeof(tests[0]));
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return r;
}
