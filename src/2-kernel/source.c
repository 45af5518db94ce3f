/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the sources' table and the life cycle every pressure source
 * shares: its name (for SHRINKER_SOURCES and shrinker_get_source()), which
 * ones the environment turns off, a fresh closed state, and closing, which
 * never closes a descriptor that is no longer ours; whether the table is
 * open, and whether it must be opened anew (the cgroup moved, descriptors
 * were closed under the library).  The monitor opens and polls the
 * sources (monitor.c, monitor-*.c) under the mon lock, which guards the
 * table; this file calls none of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "2-kernel/source.h"

static const char *const names[SHRINKER__SRC_COUNT] = {
	[SHRINKER__SRC_LIMITS] = "limit-changes",
	[SHRINKER__SRC_CGV1_THRESHOLD] = "cgroup-v1-threshold",
	[SHRINKER__SRC_CGV1_MEDIUM] = "cgroup-v1-pressure-medium",
	[SHRINKER__SRC_CGV1_CRITICAL] = "cgroup-v1-pressure-critical",
	[SHRINKER__SRC_CGV2_EVENTS] = "cgroup-v2-events",
	[SHRINKER__SRC_CGV2_PSI] = "psi-cgroup",
	[SHRINKER__SRC_PSI_SYSTEM] = "psi-system",
	[SHRINKER__SRC_SYSTEMD] = "systemd-memory-pressure",
	[SHRINKER__SRC_POLL] = "poll",
};

/* The table (mon lock). */
static struct {
	struct shrinker__source src[SHRINKER__SRC_COUNT];
	bool opened;    /* the monitor opened the sources */
	bool reopen;    /* ... and must open them anew */
	bool env_read;  /* SHRINKER_SOURCES was read into off */
	unsigned off;   /* a bit per source it turns off */
} table;

struct shrinker__source *shrinker__source_locked(enum shrinker__src_id id)
{
	SHRINKER__ASSERT_MON_HELD();
	return &table.src[id < SHRINKER__SRC_COUNT ? id : 0];
}

bool shrinker__source_off_locked(enum shrinker__src_id id)
{
	SHRINKER__ASSERT_MON_HELD();
	if (!table.env_read) {
		table.env_read = true;
		table.off = shrinker__sources_off_env();
	}
	return table.off & (1u << id);
}

bool shrinker__sources_opened_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	return table.opened;
}

void shrinker__sources_set_opened_locked(bool opened)
{
	SHRINKER__ASSERT_MON_HELD();
	table.opened = opened;
	table.reopen = false;
}

void shrinker__sources_reopen_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	table.reopen = table.opened;
}

bool shrinker__sources_reopen_due_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	return table.reopen;
}

void shrinker__sources_forget_locked(void)
{
	SHRINKER__ASSERT_MON_HELD();
	table.env_read = false;
	table.off = 0;
}

const char *shrinker__source_name(enum shrinker__src_id id)
{
	return id < SHRINKER__SRC_COUNT ? names[id] : "?";
}

/* SHRINKER_SOURCES: "-name,-name" turns those sources off; a list of bare
 * names keeps only those.  Unknown names are reported and ignored. */
unsigned shrinker__sources_off_env(void)
{
	const char *e = getenv("SHRINKER_SOURCES"), *p, *end;
	unsigned off = 0, i;
	bool only = false;

	if (!e || !*e)
		return 0;
	for (p = e; *p; p = *end ? end + 1 : end) {
		bool neg;
		size_t len;

		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		while (p < end && *p == ' ')
			p++;
		neg = p < end && *p == '-';
		p += neg;
		len = (size_t)(end - p);
		while (len && p[len - 1] == ' ')
			len--;
		if (!len)
			continue;
		for (i = 0; i < SHRINKER__SRC_COUNT; i++)
			if (strlen(names[i]) == len &&
			    memcmp(names[i], p, len) == 0)
				break;
		if (i == SHRINKER__SRC_COUNT) {
			int saved = errno;

			fprintf(stderr, "libshrinker: SHRINKER_SOURCES: no source "
				"named \"%.*s\" (ignored)\n", (int)len, p);
			errno = saved;
			continue;
		}
		if (neg) {
			off |= 1u << i;
		} else {
			if (!only)
				off |= ~(~0u << SHRINKER__SRC_COUNT);
			only = true;
			off &= ~(1u << i);
		}
	}
	return off;
}

void shrinker__sources_reset_locked(const char *why)
{
	unsigned i;

	SHRINKER__ASSERT_MON_HELD();
	for (i = 0; i < SHRINKER__SRC_COUNT; i++) {
		struct shrinker__source *s = &table.src[i];

		*s = (struct shrinker__source){ .name = names[i], .fd = -1,
						.aux_fd = -1 };
		snprintf(s->detail, sizeof(s->detail), "%s", why);
	}
}

void shrinker__source_close(struct shrinker__source *s, const char *why)
{
	int saved = errno;

	/* A descriptor whose identity was taken is closed only if it is still
	 * ours (see shrinker__fdid); one not yet taken was just opened. */
	if (s->fd >= 0 && (!s->id.valid || shrinker__fdid_same(s->fd, &s->id)))
		close(s->fd);
	if (s->aux_fd >= 0 &&
	    (!s->aux_id.valid || shrinker__fdid_same(s->aux_fd, &s->aux_id)))
		close(s->aux_fd);
	s->fd = s->aux_fd = -1;
	s->id.valid = s->aux_id.valid = false;
	s->active = false;
	if (why)
		snprintf(s->detail, sizeof(s->detail), "%s", why);
	errno = saved;
}
