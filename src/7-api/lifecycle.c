/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: registering, unregistering, activating and deactivating a
 * shrinker: the calls' argument checks, and what each sets going or stops
 * above the registry (registry.c keeps the list): the first registration
 * starts the reclaimer thread (reclaimer.c), and a shrinker that leaves or
 * goes inactive drops its claims to fairness (fair.c).  Unregistering
 * waits for a call in flight to end, except from inside the shrinker's own
 * callback, where whoever clears busy frees it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "osv/shrinker.h"

/* Shared by the native and the OSv registration. */
static int register_common(struct shrinker **ret, const char *name,
			   shrinker_fn fn, shrinker__osv_fn osv_fn,
			   void *userdata, unsigned flags, bool cut_name)
{
	struct shrinker *s;
	size_t len;
	int r;

	if (!ret || !name || (!fn && !osv_fn))
		return -EINVAL;
	if (flags & ~(unsigned)(SHRINKER_DEFERRED | SHRINKER_INACTIVE))
		return -EINVAL;
	len = strnlen(name, SHRINKER_NAME_MAX + 1);
	if (len > SHRINKER_NAME_MAX) {
		if (!cut_name)
			return -ENAMETOOLONG;
		len = SHRINKER_NAME_MAX;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s->name, name, len);
	s->name[len] = '\0';
	s->fn = fn;
	s->osv_fn = osv_fn;
	s->userdata = userdata;
	s->flags = flags;
	s->active = !(flags & SHRINKER_INACTIVE);
	atomic_init(&s->size, 0);
	atomic_init(&s->size_known, false);

	shrinker__lock();
	r = shrinker__reclaimer_start_locked();
	if (r < 0) {
		shrinker__unlock();
		free(s);
		return r;
	}
	shrinker__list_add_tail_locked(s);
	shrinker__unlock();

	*ret = s;
	return 0;
}

SHRINKER_EXPORT int shrinker_register(struct shrinker **ret, const char *name,
				      shrinker_fn fn, void *userdata,
				      unsigned flags)
{
	if (!fn)
		return -EINVAL;
	return register_common(ret, name, fn, NULL, userdata, flags, false);
}

SHRINKER_EXPORT void *osv_register_shrinker(const char *name,
					    size_t (*func)(size_t target,
							   bool hard))
{
	struct shrinker *s;

	if (!func)
		return NULL;
	if (register_common(&s, name, NULL, func, NULL, 0, true) < 0)
		return NULL;
	return s;
}

SHRINKER_EXPORT int shrinker_unregister(struct shrinker *s)
{
	if (!s)
		return 0;

	shrinker__lock();
	s->active = false;
	s->pending = 0;
	shrinker__fair_forget_locked(s);
	if (s->busy && pthread_equal(s->caller, pthread_self())) {
		/* From inside its own callback: whoever clears busy frees it. */
		s->dead = true;
		shrinker__unlock();
		return 0;
	}
	while (s->busy)
		shrinker__wait_changed_locked();
	shrinker__list_del_locked(s);
	shrinker__unlock();
	free(s);
	return 0;
}

static int set_active(struct shrinker *s, bool on)
{
	if (!s)
		return -EINVAL;
	shrinker__lock();
	if (!s->dead)
		s->active = on;
	if (!on) {
		s->pending = 0;
		shrinker__fair_forget_locked(s);
	}
	shrinker__unlock();
	return 0;
}

SHRINKER_EXPORT int shrinker_activate(struct shrinker *s)
{
	return set_active(s, true);
}

SHRINKER_EXPORT int shrinker_deactivate(struct shrinker *s)
{
	return set_active(s, false);
}
