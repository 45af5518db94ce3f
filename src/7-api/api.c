/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the public API of shrinker.h, but for registration
 * (lifecycle.c): every exported function, its argument checks (a bad
 * argument is -EINVAL, or what shrinker.h says, before anything is
 * touched), and a call down to the layer that does the work.  Nothing
 * here keeps state.  The hot calls (shrinker_may_grow(),
 * shrinker_may_grow_cache(), shrinker_set_size(), shrinker_account())
 * take no lock on their common path; which thread may call what is in
 * shrinker.h.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "3-model/growth.h"
#include "3-model/room.h"
#include "4-monitor/monitor.h"
#include "internal.h"

SHRINKER_EXPORT unsigned shrinker_version(void)
{
	return SHRINKER_VERSION_HEX;
}

SHRINKER_EXPORT const char *shrinker_name(const struct shrinker *s)
{
	return s ? s->name : NULL;
}

/* Growing. */

SHRINKER_EXPORT bool shrinker_may_grow(size_t bytes)
{
	return shrinker__room_grant(bytes);
}

SHRINKER_EXPORT bool shrinker_may_grow_cache(struct shrinker *s, size_t bytes)
{
	if (!s)
		return shrinker__room_grant(bytes);
	return shrinker__fair_grant(s, bytes);
}

SHRINKER_EXPORT int shrinker_set_size(struct shrinker *s, size_t bytes)
{
	if (!s)
		return -EINVAL;
	shrinker__set_size(s, bytes);
	return 0;
}

SHRINKER_EXPORT int shrinker_account(int64_t delta, unsigned flags)
{
	if (flags & ~(unsigned)SHRINKER_ACCOUNT_WAIT)
		return -EINVAL;
	return shrinker__growth_account(delta, flags & SHRINKER_ACCOUNT_WAIT);
}

SHRINKER_EXPORT int shrinker_get_capacity(const struct shrinker *s, uint64_t *ret)
{
	if (!s || !ret)
		return -EINVAL;
	return shrinker__fair_capacity(s, ret);
}

/* Memory and limits. */

SHRINKER_EXPORT int shrinker_get_memory(struct shrinker_memory *ret)
{
	if (!ret)
		return -EINVAL;
	return shrinker__monitor_memory(ret);
}

SHRINKER_EXPORT int shrinker_set_limit(uint64_t bytes)
{
	shrinker__monitor_set_limit(bytes);
	return 0;
}

SHRINKER_EXPORT int shrinker_set_watermarks(unsigned soft_permille, unsigned hard_permille)
{
	bool fixed = soft_permille || hard_permille;

	if (fixed && (hard_permille == 0 || hard_permille >= soft_permille ||
		      soft_permille > 500))
		return -EINVAL;
	shrinker__monitor_set_watermarks(soft_permille, hard_permille);
	return 0;
}

SHRINKER_EXPORT int shrinker_get_source(unsigned index, struct shrinker_source_info *ret)
{
	if (!ret)
		return -EINVAL;
	if (index >= SHRINKER__SRC_COUNT)
		return -ENOENT;
	shrinker__monitor_source(index, ret);
	return 0;
}

/* Requests and deferred work. */

SHRINKER_EXPORT int shrinker_request_reclaim(size_t bytes, unsigned flags, size_t *freed)
{
	if (!bytes || (flags & ~(unsigned)(SHRINKER_HARD | SHRINKER_WAIT)))
		return -EINVAL;
	return shrinker__reclaimer_request(bytes, flags, freed);
}

SHRINKER_EXPORT int shrinker_get_fd(void)
{
	return shrinker__dispatch_fd();
}

SHRINKER_EXPORT int shrinker_dispatch(void)
{
	return shrinker__dispatch();
}

/* Statistics. */

SHRINKER_EXPORT int shrinker_get_stats(const struct shrinker *s, struct shrinker_stats *ret)
{
	if (!s || !ret)
		return -EINVAL;
	shrinker__stats_of(s, ret);
	return 0;
}

SHRINKER_EXPORT int shrinker_get_global_stats(struct shrinker_global_stats *ret)
{
	if (!ret)
		return -EINVAL;
	shrinker__global_stats(ret);
	return 0;
}
