/* SPDX-License-Identifier: MIT */
/* DESIGN: helpers shared by the test binaries (time, waiting). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t rss_bytes(void)
{
	unsigned long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

bool wait_until(bool (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if (cond(arg))
			return true;
		sleep_ms(1);
	} while (now_ms() < end);
	return cond(arg);
}

/* The rest: child memory cgroups for end-to-end tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int own_memory_cgroup(char *out, size_t size)
{
	char line[1024];
	FILE *f = fopen("/proc/self/cgroup", "r");
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = '\0';
		if (strstr(c1 + 1, "memory") == NULL)
			continue;
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		snprintf(out, size, "/sys/fs/cgroup/memory%s", c2 + 1);
		r = 0;
		break;
	}
	fclose(f);
	return r;
}

static int write_file(const char *dir, const char *file, const char *s)
{
	char path[600];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		r = -errno;
	close(fd);
	return r;
}

int cg1_make(struct cg1 *cg, const char *name, uint64_t limit, char *why,
	     size_t why_size)
{
	char parent[400], num[32];
	int r;

	r = own_memory_cgroup(parent, sizeof(parent));
	if (r < 0) {
		snprintf(why, why_size, "no cgroup v1 memory controller here");
		return r;
	}
	snprintf(cg->path, sizeof(cg->path), "%s/%s-%d", parent, name, (int)getpid());
	rmdir(cg->path);
	if (mkdir(cg->path, 0755) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot make a child memory cgroup: %s",
			 strerror(errno));
		return r;
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)limit);
	r = write_file(cg->path, "memory.limit_in_bytes", num);
	if (r < 0) {
		snprintf(why, why_size, "cannot set memory.limit_in_bytes: %s",
			 strerror(-r));
		rmdir(cg->path);
		return r;
	}
	return 0;
}

int cg1_make_in(struct cg1 *cg, const struct cg1 *parent, const char *name,
		uint64_t limit)
{
	char num[32];

	snprintf(cg->path, sizeof(cg->path), "%.400s/%.100s", parent->path, name);
	rmdir(cg->path);
	if (mkdir(cg->path, 0755) < 0)
		return -errno;
	if (!limit)
		return 0;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)limit);
	return write_file(cg->path, "memory.limit_in_bytes", num);
}

void cg1_remove(struct cg1 *cg)
{
	int i;

	/* Page cache charged to it can make rmdir wait a moment. */
	for (i = 0; i < 100 && rmdir(cg->path) < 0 && errno == EBUSY; i++)
		sleep_ms(10);
}

uint64_t cg1_read(const struct cg1 *cg, const char *file, const char *key)
{
	char path[600], line[256];
	unsigned long long v;
	uint64_t r = UINT64_MAX;
	size_t kl = key ? strlen(key) : 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg->path, file);
	f = fopen(path, "r");
	if (!f)
		return r;
	while (fgets(line, sizeof(line), f)) {
		if (!key) {
			if (sscanf(line, "%llu", &v) == 1)
				r = v;
			break;
		}
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ' &&
		    sscanf(line + kl + 1, "%llu", &v) == 1) {
			r = v;
			break;
		}
	}
	fclose(f);
	return r;
}

static void enter(const struct cg1 *cg)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (write_file(cg->path, "cgroup.procs", pid) < 0)
		_exit(99);
}

pid_t cg1_spawn(const struct cg1 *cg, char *const argv[], int *out_fd)
{
	int p[2] = { -1, -1 };
	pid_t pid;

	if (out_fd && pipe(p) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		enter(cg);
		if (out_fd) {
			dup2(p[1], STDOUT_FILENO);
			close(p[0]);
			close(p[1]);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (out_fd) {
		close(p[1]);
		*out_fd = p[0];
	}
	return pid;
}

pid_t cg1_competitor(const struct cg1 *cg, unsigned delay_ms, uint64_t bytes,
		     unsigned hold_ms, unsigned mibps)
{
	char path[512], take[32], after[16], hold[16], rate[16];
	char *argv[] = { path, "--take", take, "--after", after, "--hold", hold,
			 "--rate", rate, NULL };
	pid_t pid;
	int fd;

	snprintf(path, sizeof(path), "%s/competitor", build_dir());
	snprintf(take, sizeof(take), "%llu", (unsigned long long)bytes);
	snprintf(after, sizeof(after), "%u", delay_ms);
	snprintf(hold, sizeof(hold), "%u", hold_ms);
	snprintf(rate, sizeof(rate), "%u", mibps);
	fflush(stdout);
	pid = fork();
	if (pid != 0)
		return pid;
	enter(cg);
	fd = open("/dev/null", O_WRONLY);
	if (fd >= 0)
		dup2(fd, 1);
	execv(path, argv);
	_exit(127);
}

int cg1_run(const char *name, uint64_t limit, char *const argv[], uint64_t take,
	    unsigned delay_ms, unsigned hold_ms, char *out, size_t out_size,
	    struct cg1_run *r, char *why, size_t why_size)
{
	struct cg1 cg;
	pid_t pid, comp = -1;
	int fd;

	if (cg1_make(&cg, name, limit, why, why_size) < 0)
		return -1;
	pid = cg1_spawn(&cg, argv, &fd);
	if (pid < 0) {
		cg1_remove(&cg);
		return -2;
	}
	if (take)
		comp = cg1_competitor(&cg, delay_ms, take, hold_ms, COMPETITOR_HEAP_MIBPS);
	read_all_fd(fd, out, out_size);
	r->status = wait_exit(pid);
	if (comp > 0)
		wait_exit(comp);
	r->oom_kills = cg1_read(&cg, "memory.oom_control", "oom_kill");
	r->max_usage = cg1_read(&cg, "memory.max_usage_in_bytes", NULL);
	cg1_remove(&cg);
	return 0;
}

int wait_exit(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

size_t read_all_fd(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	return n;
}

int threads_named(const char *name, pid_t *tid)
{
	char path[300], buf[64];
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");
	size_t nl = strlen(name);
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		FILE *f;
		size_t len;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		if (len == nl + 1 && !strncmp(buf, name, nl) && buf[nl] == '\n') {
			n++;
			if (tid)
				*tid = (pid_t)atoi(d->d_name);
		}
	}
	closedir(dir);
	return n;
}

const char *build_dir(void)
{
	const char *b = getenv("BUILD");

	return b && *b ? b : ".";
}

int fixture_copy(const char *name, const char *tag, char *dir, size_t size)
{
	const char *top = getenv("TOP_SRCDIR");
	char cmd[4096 + 128];

	snprintf(dir, size, "/tmp/shrinker-%s-XXXXXX", tag);
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "cp -r '%s/tests/fixtures/%s/.' '%s'",
		 top && *top ? top : ".", name, dir);
	return system(cmd) == 0 ? 0 : -1;
}

int fixture_write(const char *dir, const char *rel, const char *text)
{
	char path[4096];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	if (!f)
		return -1;
	r = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) == 0 ? r : -1;
}

void fixture_remove(const char *dir)
{
	char cmd[4096 + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}
