/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: PSI triggers (Documentation/accounting/psi.rst): open a pressure
 * file read-write, write "some <stall us> <window us>" and poll for POLLPRI.
 * Used for the system (/proc/pressure/memory), for a cgroup v2 cgroup
 * (memory.pressure) and for systemd's protocol when it names a PSI file.
 * Three details matter: the kernel overwrites the last byte written with a
 * NUL, so the trigger is written with its terminating NUL or its last digit
 * is lost; unprivileged writers only get windows that are multiples of 2 s,
 * so a trigger refused with EINVAL is retried with its window rounded up to
 * one and its stall scaled with it (the library's own trigger and systemd's
 * MEMORY_PRESSURE_WRITE alike); and a trigger can fire on a
 * stall that is already over, so each event is confirmed by re-reading the
 * stall total before anyone is asked to shrink.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "1-base/files.h"
#include "1-base/parse.h"
#include "3-model/measure.h"
#include "4-monitor/kinds.h"
#include "internal.h"

/* 10 % stall over 1 s (20 % over 2 s where the kernel takes only multiples
 * of 2 s: see round_window()).  Sized so that a stall is noticed while it is
 * still building up, not after systemd's 200 ms per 2 s have gone by. */
static const char default_trigger[] = "some 100000 1000000";

/* Confirmation: since the last event, the stall total must have grown by a
 * quarter of the trigger's threshold (a trigger fires when the stall in its
 * window reaches the threshold, so a real event grows it by that much). */
#define CONFIRM_PART 4

static int read_total(int fd, uint64_t *total)
{
	char buf[256];
	struct shrinker__psi psi = { 0 };
	size_t len = 0;
	int r;

	r = shrinker__reread_fd(fd, buf, sizeof(buf), &len);
	if (r == 0)
		r = shrinker__parse_psi(buf, len, &psi);
	if (r == 0)
		*total = psi.some_total;
	return r;
}

/* Open path and write one trigger (with its NUL) to it. */
static int psi_try(struct shrinker__source *s, const char *path, const char *buf,
		   size_t len)
{
	int r = 0;

	s->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0 || write(s->fd, buf, len) < 0)
		r = -errno;
	if (r == 0 && read_total(s->fd, &s->psi_total) < 0)
		r = -EINVAL;
	if (r < 0)
		shrinker__source_close(s, NULL);
	return r;
}

/* The trigger with its window rounded up to a multiple of 2 s and its stall
 * scaled with it, into out (with its NUL); 0 if it is not of the form
 * "some|full <stall us> <window us>" or needs no rounding. */
static size_t round_window(const char *buf, char *out, size_t size)
{
	const char *kind = strncmp(buf, "some ", 5) == 0 ? "some"
			   : strncmp(buf, "full ", 5) == 0 ? "full" : NULL;
	unsigned long long stall, window, w2;
	char *end;
	int n;

	if (!kind)
		return 0;
	stall = strtoull(buf + 5, &end, 10);
	if (end == buf + 5 || *end != ' ')
		return 0;
	window = strtoull(end + 1, &end, 10);
	if ((*end != '\0' && *end != '\n') || !window || window % 2000000 == 0 || window > 10000000 ||
	    stall > window)
		return 0;
	w2 = (window + 1999999) / 2000000 * 2000000;
	n = snprintf(out, size, "%s %llu %llu", kind, stall * w2 / window, w2);
	return n > 0 && (size_t)n < size ? (size_t)n + 1 : 0;
}

int shrinker__psi_open(struct shrinker__source *s, const char *path,
		       const char *trigger, size_t trigger_len)
{
	char buf[128], rounded[128];
	const char *used = buf;
	size_t len, rlen;
	int saved = errno, r;

	/* Add the NUL the kernel needs, unless it is there. */
	if (trigger_len == 0 || trigger_len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, trigger, trigger_len);
	len = trigger_len;
	if (buf[len - 1] != '\0')
		buf[len++] = '\0';

	r = psi_try(s, path, buf, len);
	if (r == -EINVAL && (rlen = round_window(buf, rounded, sizeof(rounded)))) {
		/* Without CAP_SYS_RESOURCE (containers, most services) the
		 * kernel takes only windows that are multiples of 2 s. */
		r = psi_try(s, path, rounded, rlen);
		used = rounded;
		len = rlen;
	}
	if (r < 0) {
		errno = saved;
		return r;
	}
	{
		/* "some|full <stall us> <window us>": keep the stall. */
		const char *sp = memchr(used, ' ', len);
		unsigned long long stall = sp ? strtoull(sp + 1, NULL, 10) : 0;

		s->psi_confirm_us = stall / CONFIRM_PART;
	}
	s->events = POLLPRI;
	s->handle = shrinker__psi_handle;
	s->active = true;
	if (used == buf)
		snprintf(s->detail, sizeof(s->detail), "PSI trigger \"%.*s\" on %s",
			 (int)strnlen(buf, len), buf, path);
	else
		snprintf(s->detail, sizeof(s->detail),
			 "PSI trigger \"%.40s\" (asked \"%.40s\") on %s", rounded,
			 buf, path);
	errno = saved;
	return 0;
}

/* The library's own trigger; detail says what happened. */
static void psi_open_default(struct shrinker__source *s, const char *path)
{
	int r = shrinker__psi_open(s, path, default_trigger,
				   sizeof(default_trigger));

	if (r < 0)
		snprintf(s->detail, sizeof(s->detail), "%s: %s", path, strerror(-r));
}

enum shrinker__signal shrinker__psi_handle(struct shrinker__source *s,
					   short revents)
{
	uint64_t total = 0;

	if (revents & POLLERR) {
		/* No trigger any more: the cgroup went away. */
		shrinker__source_close(s, "PSI trigger gone (cgroup removed?)");
		return SHRINKER__SIG_MEASURE;
	}
	if (read_total(s->fd, &total) < 0)
		return SHRINKER__SIG_MEASURE;
	if (total < s->psi_total + s->psi_confirm_us) {
		shrinker__debug("%s: PSI event not confirmed (stall grew %llu us)",
				s->name, (unsigned long long)(total - s->psi_total));
		s->psi_total = total;
		return SHRINKER__SIG_MEASURE; /* a false alarm: just look */
	}
	s->psi_total = total;
	return SHRINKER__SIG_SOFT;
}

void shrinker__psi_system_open(const struct shrinker__mon *m, struct shrinker__source *s)
{
	char path[SHRINKER__PATH_MAX];

	(void)m;
	if (shrinker__join(path, sizeof(path), shrinker__root(),
			   "/proc/pressure/memory") < 0)
		return;
	psi_open_default(s, path);
}

void shrinker__cgv2_psi_open(const struct shrinker__mon *m, struct shrinker__source *s)
{
	char path[SHRINKER__PATH_MAX];

	if (shrinker__join(path, sizeof(path), m->cg.dir, "memory.pressure") < 0)
		return;
	psi_open_default(s, path);
}
