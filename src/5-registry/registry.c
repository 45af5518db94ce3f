/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the registry of shrinkers.  It owns the list of shrinkers, their
 * per-shrinker statistics, the in-flight tracking (busy) that makes
 * unregister wait for a running call, and the deferred-mode file descriptor
 * and shrinker_dispatch().  Every list walk that calls user code uses the
 * pattern written down in internal.h: mark the node busy, drop the lock,
 * call, take the lock, read node->next, clear busy.  The reclaimer thread
 * (reclaimer.c) decides whom to call with how much; this file only knows how
 * to call one shrinker safely.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "3-model/growth.h"
#include "3-model/room.h"
#include "4-monitor/monitor.h"
#include "internal.h"
#include "osv/shrinker.h"

/* The registry (the lib lock guards it, but for exiting). */
static struct shrinker__lib {
	pthread_mutex_t lock;      /* the lib lock (internal.h) */
	pthread_cond_t changed;    /* a call ended, or a request was served */
	struct shrinker *head, *tail;
	uint64_t count;
	bool forking;              /* fork() is being prepared: no call starts */
	atomic_bool exiting;       /* exit() began: no call starts (no lock) */
	int dispatch_fd;           /* eventfd: deferred work pending, -1 if none */
	struct shrinker__fdid dispatch_id;
	bool dispatch_signalled;   /* dispatch_fd holds a count */
	struct shrinker_global_stats stats; /* the calls' and trims' */
} shrinker__lib = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
	.dispatch_fd = -1,
};

/* The holders of the library lock, counted here only: in these wrappers
 * (SHRINKER__ASSERT_LIB_HELD() reads the count). */
_Thread_local unsigned shrinker__lib_held;

void shrinker__lock(void)
{
	pthread_mutex_lock(&shrinker__lib.lock);
	shrinker__lib_held++;
	shrinker__brake_exempt(1);
}

void shrinker__unlock(void)
{
	shrinker__brake_exempt(-1);
	shrinker__lib_held--;
	pthread_mutex_unlock(&shrinker__lib.lock);
}

bool shrinker__lock_until(const struct timespec *until)
{
	if ((until ? pthread_mutex_timedlock(&shrinker__lib.lock, until)
		   : pthread_mutex_trylock(&shrinker__lib.lock)) != 0)
		return false;
	shrinker__lib_held++;
	shrinker__brake_exempt(1);
	return true;
}

void shrinker__lock_forget(void)
{
	shrinker__brake_exempt(-1);
	shrinker__lib_held--;
}

struct shrinker *shrinker__first_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return shrinker__lib.head;
}

void shrinker__wait_changed_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	pthread_cond_wait(&shrinker__lib.changed, &shrinker__lib.lock);
}

bool shrinker__calls_barred_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return atomic_load(&shrinker__lib.exiting) || shrinker__lib.forking;
}

/* Set on the reclaimer thread as it starts (and copied into the child of
 * a fork from it, which goes on as that thread). */
static _Thread_local bool on_reclaimer;

void shrinker__registry_on_reclaimer(void)
{
	on_reclaimer = true;
}

bool shrinker__on_reclaimer_thread_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return on_reclaimer;
}

uint64_t shrinker__count_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return shrinker__lib.count;
}

void shrinker__changed_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	pthread_cond_broadcast(&shrinker__lib.changed);
}

int shrinker__wait_changed_until_locked(const struct timespec *until)
{
	SHRINKER__ASSERT_LIB_HELD();
	return pthread_cond_timedwait(&shrinker__lib.changed, &shrinker__lib.lock, until);
}

bool shrinker__forking_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return shrinker__lib.forking;
}

void shrinker__forking_set_locked(bool forking)
{
	SHRINKER__ASSERT_LIB_HELD();
	shrinker__lib.forking = forking;
}

bool shrinker__exiting(void)
{
	return atomic_load(&shrinker__lib.exiting);
}

bool shrinker__exiting_begin(void)
{
	return atomic_exchange(&shrinker__lib.exiting, true);
}

void shrinker__registry_atfork_child(void)
{
	pthread_mutex_init(&shrinker__lib.lock, NULL);
	pthread_cond_init(&shrinker__lib.changed, NULL);
	shrinker__lib.forking = false;
}

void shrinker__dispatch_close_locked(void)
{
	struct shrinker__lib *L = &shrinker__lib;

	SHRINKER__ASSERT_LIB_HELD();
	if (L->dispatch_fd >= 0 && shrinker__fdid_same(L->dispatch_fd, &L->dispatch_id))
		close(L->dispatch_fd);
	L->dispatch_fd = -1;
}

void shrinker__dispatch_atfork_child_locked(void)
{
	struct shrinker__lib *L = &shrinker__lib;

	SHRINKER__ASSERT_LIB_HELD();
	L->dispatch_fd = shrinker__eventfd_renew(L->dispatch_fd);
	shrinker__fdid_take(L->dispatch_fd, &L->dispatch_id);
	L->dispatch_signalled = false;
}

void shrinker__list_add_tail_locked(struct shrinker *s)
{
	struct shrinker__lib *L = &shrinker__lib;

	SHRINKER__ASSERT_LIB_HELD();
	s->prev = L->tail;
	s->next = NULL;
	if (L->tail)
		L->tail->next = s;
	else
		L->head = s;
	L->tail = s;
	L->count++;
	L->stats.shrinkers = L->count;
}

void shrinker__list_del_locked(struct shrinker *s)
{
	struct shrinker__lib *L = &shrinker__lib;

	SHRINKER__ASSERT_LIB_HELD();
	if (s->prev)
		s->prev->next = s->next;
	else
		L->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		L->tail = s->prev;
	s->prev = s->next = NULL;
	L->count--;
	L->stats.shrinkers = L->count;
}

void shrinker__set_size(struct shrinker *s, uint64_t bytes)
{
	uint64_t old;

	old = atomic_exchange_explicit(&s->size, bytes, memory_order_relaxed);
	atomic_store_explicit(&s->size_known, true, memory_order_relaxed);
	/* Growth of a cache is what the growth clock counts. */
	if (bytes > old)
		shrinker__growth_note((int64_t)(bytes - old > INT64_MAX ? INT64_MAX
								 : bytes - old));
	else if (bytes < old)
		shrinker__growth_note(-(int64_t)(old - bytes > INT64_MAX ? INT64_MAX
								   : old - bytes));
}

uint64_t shrinker__call_locked(struct shrinker *s, uint64_t target, bool hard,
			       bool for_other, struct shrinker **next, uint64_t *credit)
{
	struct shrinker__lib *L = &shrinker__lib;
	uint64_t now = shrinker__now_ns(), cap;
	size_t freed;

	SHRINKER__ASSERT_LIB_HELD();
	s->busy = true;
	s->caller = pthread_self();
	s->call_target = target;
	shrinker__sat_add(&s->calls, 1);
	shrinker__sat_add(&s->hard_calls, hard);
	shrinker__sat_add(&s->bytes_asked, target);
	s->last_call_ns = now;
	shrinker__sat_add(&L->stats.calls, 1);
	shrinker__sat_add(&L->stats.hard_calls, hard);
	shrinker__sat_add(&L->stats.bytes_asked, target);
	/* What one call can have freed: what the cache said it held, or the
	 * target if it never said.  A return value above that (SIZE_MAX from a
	 * confused callback) is not believed. */
	cap = atomic_load_explicit(&s->size_known, memory_order_relaxed)
		      ? atomic_load_explicit(&s->size, memory_order_relaxed)
		      : target;
	shrinker__unlock();

	if (target > SIZE_MAX)
		target = SIZE_MAX;
	/* A callback must never wait for itself in the brake. */
	shrinker__brake_exempt(1);
	shrinker__freeing();
	if (s->osv_fn)
		freed = s->osv_fn((size_t)target, hard);
	else
		freed = s->fn((size_t)target, hard, s->userdata);
	if (freed > cap) {
		shrinker__debug("%s: returned %zu, more than it held (%llu): "
				"counted as %llu", s->name, freed,
				(unsigned long long)cap, (unsigned long long)cap);
		freed = (size_t)(cap > SIZE_MAX ? SIZE_MAX : cap);
	}
	shrinker__brake_exempt(-1);

	shrinker__lock();
	/* Measured with the request or dispatch it belongs to (returned.c). */
	shrinker__sat_add(&s->req_freed, freed);
	if (credit)
		*credit = shrinker__returned_credit_locked(s, freed);
	shrinker__sat_add(&s->bytes_freed, freed);
	if (for_other)
		shrinker__sat_add(&s->given, freed);
	if (!freed)
		s->freed_none = true; /* not asked again in this request */
	shrinker__sat_add(&L->stats.bytes_freed, freed);
	shrinker__freed(freed);
	*next = s->next;
	s->busy = false;
	if (s->dead) {
		shrinker__list_del_locked(s);
		free(s);
	}
	pthread_cond_broadcast(&L->changed);
	return freed;
}

/* The dispatch eventfd is created on first use: by shrinker_get_fd() or by
 * the first deferred registration's first pending work. */
static int dispatch_fd_locked(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	int saved = errno;
	int fd;

	SHRINKER__ASSERT_LIB_HELD();
	if (L->dispatch_fd >= 0) {
		if (shrinker__fdid_same(L->dispatch_fd, &L->dispatch_id))
			return L->dispatch_fd;
		/* The program closed it: never write to what is under its
		 * number now; a new one for whoever asks next. */
		L->dispatch_fd = -1;
		L->dispatch_signalled = false;
	}
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		fd = -errno;
		errno = saved;
		return fd;
	}
	L->dispatch_fd = fd;
	shrinker__fdid_take(fd, &L->dispatch_id);
	return fd;
}

void shrinker__dispatch_signal_locked(void)
{
	struct shrinker__lib *L = &shrinker__lib;

	SHRINKER__ASSERT_LIB_HELD();
	if (L->dispatch_signalled || dispatch_fd_locked() < 0)
		return;
	if (shrinker__eventfd_signal(L->dispatch_fd) == 0)
		L->dispatch_signalled = true;
}

int shrinker__dispatch_fd(void)
{
	int fd;

	shrinker__lock();
	fd = dispatch_fd_locked();
	shrinker__unlock();
	return fd;
}

uint64_t shrinker__trim_and_record(uint64_t before)
{
	struct shrinker__lib *L = &shrinker__lib;
	uint64_t after;

	shrinker__trim();
	shrinker__trimmed();
	after = shrinker__rss_bytes();
	shrinker__lock();
	shrinker__sat_add(&L->stats.trims, 1);
	L->stats.last_rss_before = before;
	L->stats.last_rss_after = after;
	if (before > after)
		shrinker__sat_add(&L->stats.rss_released, before - after);
	shrinker__unlock();
	return before > after ? before - after : 0;
}

bool shrinker__any_pending_locked(void)
{
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = shrinker__lib.head; s; s = s->next)
		if ((s->flags & SHRINKER_DEFERRED) && s->pending)
			return true;
	return false;
}

int shrinker__dispatch(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	struct shrinker *s, *next;
	bool left_over = false;
	uint64_t before = 0, freed = 0;
	int calls = 0;

	shrinker__lock();
	if (shrinker__any_pending_locked()) {
		/* RSS before the callbacks, so that what they give back to
		 * the system is recorded as for the reclaimer's requests. */
		shrinker__returned_begin_locked(shrinker__lib.head, true);
		shrinker__unlock();
		before = shrinker__rss_bytes();
		shrinker__lock();
	}
	if (L->dispatch_signalled) {
		if (shrinker__fdid_same(L->dispatch_fd, &L->dispatch_id))
			shrinker__eventfd_drain(L->dispatch_fd);
		L->dispatch_signalled = false;
	}
	for (s = L->head; s; s = next) {
		uint64_t target;
		bool hard;

		next = s->next;
		if (!(s->flags & SHRINKER_DEFERRED) || !s->pending)
			continue;
		if (s->busy || L->forking) {
			left_over = true;
			continue;
		}
		target = s->pending;
		hard = s->pending_hard;
		s->pending = 0;
		s->pending_hard = false;
		shrinker__sat_add(&freed, shrinker__call_locked(s, target, hard, false,
								&next, NULL));
		calls++;
	}
	if (left_over)
		shrinker__dispatch_signal_locked();
	shrinker__unlock();
	if (freed) {
		/* What the callbacks freed goes back to the system now (the
		 * reclaimer could not trim for them: nothing was freed when
		 * it handed the work over), and threads the brake holds look
		 * again. */
		uint64_t drop = shrinker__trim_and_record(before);

		shrinker__lock();
		shrinker__returned_settle_locked(shrinker__lib.head, true, drop);
		shrinker__unlock();
		shrinker__monitor_dispatched(freed, drop);
		shrinker__brake_kick();
	}
	return calls;
}

void shrinker__stats_of(const struct shrinker *s, struct shrinker_stats *ret)
{
	struct shrinker_stats st;

	shrinker__lock();
	st = (struct shrinker_stats){
		.calls = s->calls,
		.hard_calls = s->hard_calls,
		.bytes_asked = s->bytes_asked,
		.bytes_freed = s->bytes_freed,
		.last_call_ns = s->last_call_ns,
		.size = atomic_load(&s->size),
		.size_known = atomic_load(&s->size_known),
		.active = s->active,
		.deferred = s->flags & SHRINKER_DEFERRED,
		.pending = s->pending,
		.taken = s->taken,
		.given = s->given,
		.returned_permille = shrinker__returned_permille_locked(s),
		.rss_returned = s->rss_returned,
	};
	shrinker__unlock();
	*ret = st;
}

void shrinker__registry_stats_locked(struct shrinker_global_stats *st)
{
	SHRINKER__ASSERT_LIB_HELD();
	*st = shrinker__lib.stats;
	st->rss_returned = shrinker__returned_rss_total_locked();
}
