/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: systemd's memory pressure protocol (systemd.io/MEMORY_PRESSURE):
 * the service manager names a file in MEMORY_PRESSURE_WATCH and, optionally,
 * base64 data to write to it in MEMORY_PRESSURE_WRITE.  The path is trusted
 * for nothing, even as root: it must be absolute, it is opened once with
 * O_PATH and what it is decided from that descriptor.  A regular file must
 * be a PSI file (procfs or cgroup2, fstatfs() says): write the trigger, poll
 * POLLPRI; any other regular file is refused and left untouched.  A FIFO:
 * poll POLLIN and read whatever comes (opened read-write so that a writer
 * going away does not make it hang up forever; never written).  An AF_UNIX
 * socket: connect, write the data, poll POLLIN.  An empty value or /dev/null turns
 * the protocol off.  Both variables are read with secure_getenv(), so a
 * set-uid program ignores them.  A bad value is reported and the source is
 * not used; the other sources still work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "1-base/parse.h"
#include "3-model/measure.h"
#include "4-monitor/kinds.h"
#include "internal.h"

static enum shrinker__signal stream_handle(struct shrinker__source *s,
					   short revents)
{
	char buf[256];
	ssize_t n, total = 0;
	int saved = errno;

	while ((n = read(s->fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n == 0 && (revents & (POLLHUP | POLLIN)) && total == 0) {
		/* The socket's peer closed it. */
		shrinker__source_close(s, "the socket's peer closed it");
		errno = saved;
		return SHRINKER__SIG_MEASURE;
	}
	errno = saved;
	return total > 0 ? SHRINKER__SIG_SOFT : SHRINKER__SIG_NONE;
}

static void complain(struct shrinker__source *s, const char *fmt, const char *a,
		     const char *b)
{
	int saved = errno;

	snprintf(s->detail, sizeof(s->detail), fmt, a, b);
	fprintf(stderr, "libshrinker: %s\n", s->detail);
	errno = saved;
}

static int open_socket(struct shrinker__source *s, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	size_t n = strlen(path);

	if (n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, n + 1);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

/* A PSI file is on procfs (/proc/pressure/memory) or cgroup2
 * (memory.pressure): nothing else may be written to. */
static bool psi_fs(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return false;
	return sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* Open what MEMORY_PRESSURE_WATCH names, having checked what it is (not
 * what its name says): the path is resolved once, with O_PATH, and the
 * descriptor reopened through /proc/self/fd, so that a file swapped in
 * between cannot be written to.  Regular files must be PSI files; FIFOs
 * are only read; sockets are connected to.  Returns 0 or -errno, with
 * *what set to a reason for the refusals that are not plain errno. */
static int open_watch(struct shrinker__source *s, const char *watch,
		      const uint8_t *data, size_t dlen, const char **what)
{
	static const char def[] = "some 200000 2000000";
	char self[64];
	struct stat st;
	int pfd, r;

	pfd = open(watch, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	if (fstat(pfd, &st) < 0) {
		r = -errno;
		close(pfd);
		return r;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	if (S_ISREG(st.st_mode)) {
		if (!psi_fs(pfd)) {
			*what = "a regular file that is not a PSI file (not on "
				"procfs or cgroup2): not written to";
			r = -EINVAL;
		} else {
			r = dlen ? shrinker__psi_open(s, self, (const char *)data, dlen)
				 : shrinker__psi_open(s, self, def, sizeof(def));
		}
	} else if (S_ISFIFO(st.st_mode)) {
		/* Read-write so that a writer going away does not leave it
		 * hung up for ever; nothing is ever written to it. */
		s->fd = open(self, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		r = s->fd < 0 ? -errno : 0;
		if (r == 0) {
			s->events = POLLIN;
			s->handle = stream_handle;
			s->active = true;
			snprintf(s->detail, sizeof(s->detail), "FIFO %s", watch);
		}
	} else if (S_ISSOCK(st.st_mode)) {
		r = open_socket(s, watch);
		if (r == 0 && dlen && write(s->fd, data, dlen) < 0)
			r = -errno;
		if (r == 0 && fcntl(s->fd, F_SETFL, O_NONBLOCK) < 0)
			r = -errno;
		if (r == 0) {
			s->events = POLLIN;
			s->handle = stream_handle;
			s->active = true;
			snprintf(s->detail, sizeof(s->detail), "socket %s", watch);
		}
	} else {
		*what = "not a PSI file, a FIFO or a socket";
		r = -EINVAL;
	}
	close(pfd);
	return r;
}

void shrinker__systemd_open(const struct shrinker__mon *m, struct shrinker__source *s)
{
	const char *watch = secure_getenv("MEMORY_PRESSURE_WATCH");
	const char *wr = secure_getenv("MEMORY_PRESSURE_WRITE");
	const char *what = NULL;
	uint8_t data[128];
	size_t dlen = 0;
	int saved = errno, r;

	(void)m;
	if (!watch) {
		snprintf(s->detail, sizeof(s->detail),
			 "MEMORY_PRESSURE_WATCH not set%s",
			 getenv("MEMORY_PRESSURE_WATCH") ? " (or ignored: set-uid)" : "");
		return;
	}
	if (!*watch || strcmp(watch, "/dev/null") == 0) {
		snprintf(s->detail, sizeof(s->detail),
			 "turned off by MEMORY_PRESSURE_WATCH=\"%s\"", watch);
		return;
	}
	if (watch[0] != '/') {
		/* As systemd's sd-event: a relative path is refused. */
		complain(s, "ignoring MEMORY_PRESSURE_WATCH=%s: %s", watch,
			 "not an absolute path");
		return;
	}
	if (wr && *wr &&
	    shrinker__base64_decode(wr, strlen(wr), data, sizeof(data) - 1, &dlen) < 0) {
		complain(s, "ignoring MEMORY_PRESSURE_WATCH=%s: "
			 "MEMORY_PRESSURE_WRITE=\"%.40s\" is not valid base64",
			 watch, wr);
		return;
	}
	r = open_watch(s, watch, data, dlen, &what);
	if (r < 0) {
		shrinker__source_close(s, NULL);
		complain(s, "ignoring MEMORY_PRESSURE_WATCH=%s: %s", watch,
			 what ? what : strerror(-r));
	} else if (s->active && strncmp(s->detail, "PSI", 3) == 0) {
		/* Say the name that was given, not /proc/self/fd/N. */
		char d[sizeof(s->detail)];
		const char *on = strstr(s->detail, " on /proc/self/fd/");

		snprintf(d, sizeof(d), "systemd: %.*s on %s",
			 on ? (int)(on - s->detail) : (int)strlen(s->detail),
			 s->detail, watch);
		snprintf(s->detail, sizeof(s->detail), "%s", d);
	}
	errno = saved;
}
