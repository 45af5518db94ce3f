/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the reclaimer's wake-up, one eventfd that any thread signals
 * without a lock (the growth clock, the brake, the API, the monitor) and
 * the reclaimer thread polls.  It sits at the bottom, beside the other
 * helpers, so that waking the reclaimer is not a call up into it.  A
 * program that closes every descriptor (a daemon's close_range(3, ~0)) may
 * close it under the library and reuse its number for a file of its own:
 * it is written only while its identity (device and inode) is ours, and a
 * waker that finds it foreign says so, for the thread to make a new one.
 * The descriptor and that flag are atomics; its identity changes only in
 * shrinker__wake_renew() and shrinker__wake_close(), which reclaimer.c
 * calls with the library's lock held.  A wake-up may also ask for a fresh
 * measurement (another atomic flag), which the monitor takes at once
 * instead of waiting for its next timed look.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

static _Atomic int wake_fd = -1;
static struct shrinker__fdid wake_id;
static atomic_bool wake_lost;
static atomic_bool measure_asked;

void shrinker__reclaimer_wake(void)
{
	int fd = atomic_load(&wake_fd);

	if (fd >= 0 && shrinker__fdid_same(fd, &wake_id))
		shrinker__eventfd_signal(fd);
	else
		atomic_store(&wake_lost, true);
}

int shrinker__wake_fd(void)
{
	return atomic_load(&wake_fd);
}

bool shrinker__wake_ours(int fd, bool suspect)
{
	/* Only when something suggests otherwise (a waker found it foreign,
	 * poll flagged it): an fstat() per wake-up would double an idle
	 * one. */
	if (!suspect && !atomic_exchange(&wake_lost, false))
		return true;
	return fd >= 0 && shrinker__fdid_same(fd, &wake_id);
}

int shrinker__wake_renew(void)
{
	int saved = errno, fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	/* The old one is not closed: it is not ours any more when this is
	 * needed. */
	shrinker__fdid_take(fd, &wake_id);
	atomic_store(&wake_fd, fd);
	errno = saved;
	return fd;
}

void shrinker__wake_close(void)
{
	int fd = atomic_exchange(&wake_fd, -1), saved = errno;

	if (fd >= 0 && shrinker__fdid_same(fd, &wake_id))
		close(fd);
	errno = saved;
}

bool shrinker__wake_drain(int fd)
{
	if (!shrinker__fdid_same(fd, &wake_id))
		return false;
	shrinker__eventfd_drain(fd);
	return true;
}

void shrinker__wake_atfork_child(void)
{
	int fd = shrinker__eventfd_renew(atomic_load(&wake_fd));

	shrinker__fdid_take(fd, &wake_id);
	atomic_store(&wake_fd, fd);
}

void shrinker__measure_ask(void)
{
	atomic_store(&measure_asked, true);
	shrinker__reclaimer_wake();
}

void shrinker__measure_ask_once(void)
{
	if (!atomic_exchange(&measure_asked, true))
		shrinker__reclaimer_wake();
}

bool shrinker__measure_asked(void)
{
	return atomic_load(&measure_asked);
}

void shrinker__measure_asked_clear(void)
{
	atomic_store(&measure_asked, false);
}
