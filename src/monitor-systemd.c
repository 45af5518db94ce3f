/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: systemd's memory pressure protocol (systemd.io/MEMORY_PRESSURE):
 * the service manager names a file in MEMORY_PRESSURE_WATCH and, optionally,
 * base64 data to write to it in MEMORY_PRESSURE_WRITE.  A regular file is a
 * PSI file (the service's memory.pressure): write the trigger, poll POLLPRI.
 * A FIFO: poll POLLIN and read whatever comes (opened read-write so that a
 * writer going away does not make it hang up forever).  An AF_UNIX socket:
 * connect, write the data, poll POLLIN.  An empty value or /dev/null turns
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "monitor.h"
#include "parse.h"

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

void shrinker__systemd_open(struct shrinker__mon *m, struct shrinker__source *s)
{
	const char *watch = secure_getenv("MEMORY_PRESSURE_WATCH");
	const char *wr = secure_getenv("MEMORY_PRESSURE_WRITE");
	uint8_t data[128];
	size_t dlen = 0;
	struct stat st;
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
	if (wr && *wr &&
	    shrinker__base64_decode(wr, strlen(wr), data, sizeof(data) - 1, &dlen) < 0) {
		complain(s, "ignoring MEMORY_PRESSURE_WATCH=%s: "
			 "MEMORY_PRESSURE_WRITE=\"%.40s\" is not valid base64",
			 watch, wr);
		return;
	}
	if (stat(watch, &st) < 0) {
		complain(s, "ignoring MEMORY_PRESSURE_WATCH=%s: %s", watch,
			 strerror(errno));
		errno = saved;
		return;
	}
	if (S_ISREG(st.st_mode)) {
		static const char def[] = "some 200000 2000000";

		r = dlen ? shrinker__psi_open(s, watch, (const char *)data, dlen)
			 : shrinker__psi_open(s, watch, def, sizeof(def));
	} else if (S_ISFIFO(st.st_mode)) {
		s->fd = open(watch, O_RDWR | O_NONBLOCK | O_CLOEXEC);
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
		r = -EINVAL;
	}
	if (r < 0) {
		shrinker__source_close(s, NULL);
		complain(s, "ignoring MEMORY_PRESSURE_WATCH=%s: %s", watch,
			 strerror(-r));
	} else if (s->active && strncmp(s->detail, "PSI", 3) == 0) {
		char d[160];

		snprintf(d, sizeof(d), "systemd: %.150s", s->detail);
		snprintf(s->detail, sizeof(s->detail), "%s", d);
	}
	errno = saved;
}
