/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the reclaimer thread.  It is started by the first registration
 * with every signal blocked and named "shrinker".  It sleeps in poll() on its
 * wake eventfd and on the pressure monitors' descriptors; when woken it picks
 * up the requests made by hand and what the monitors decided, and serves
 * them: each request is split among the active shrinkers in proportion to
 * the bytes they report (the kernel's do_shrink_slab() scales by the
 * shrinker's count the same way; OSv hands everyone the whole target, which
 * its own source marks as wrong), round after round while the target is not
 * met and somebody still frees, soft first and then hard if soft rounds fall
 * short and the pressure persists.  After a request that freed memory it
 * calls malloc_trim(0) and records RSS before and after, so the statistics
 * show what really went back to the system.
 *
 * It also owns the library's life cycle around exit() and fork(): an exit
 * handler stops the thread (no callback starts once it has run), and the
 * fork handlers give the child a fresh thread of its own, since a library
 * that silently has no thread in the child would never shrink there.
 *
 * Nothing between picking up a request and calling the shrinkers allocates
 * memory: the split is written into the shrinkers themselves, and RSS is read
 * into a stack buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "growth.h"
#include "internal.h"
#include "monitor.h"

/* Passes over the shrinkers in one phase (soft or hard) of a request.  A
 * shrinker that frees something but not all of its share is asked again, up
 * to this many times, before the phase gives up. */
#define MAX_ROUNDS 4
/* See past_deadline_locked(). */
#define REQUEST_MAX_NS 500000000ull
/* How long exit() waits for the thread, and fork() for a running callback. */
#define EXIT_WAIT_MS 1000
#define FORK_WAIT_MS 1000
/* The longest the thread sleeps without looking at its descriptors. */
#define MAX_SLEEP_MS 30000
/* How long the first registration waits for the sources to be armed. */
#define READY_WAIT_MS 500

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Before each poll: is the wake descriptor still ours?  A daemon that
 * closes every descriptor after starting (close_range(3, ~0)) leaves poll()
 * returning POLLNVAL at once, a spin, or a number reused for one of its own
 * files, which must be neither read nor written (wake.c). */
static void check_wake_fd(bool suspect)
{
	int fd = shrinker__wake_fd();

	if (shrinker__wake_ours(fd, suspect))
		return;
	shrinker__debug("the wake descriptor %d was closed under the library: "
			"making a new one", fd);
	shrinker__lock();
	shrinker__wake_renew();
	shrinker__unlock();
}

static bool takes_part(const struct shrinker *s)
{
	if (!s->active || s->dead || s->freed_none)
		return false;
	/* A cache that says it holds nothing has nothing to give. */
	if (atomic_load_explicit(&s->size_known, memory_order_relaxed) &&
	    atomic_load_explicit(&s->size, memory_order_relaxed) == 0)
		return false;
	return true;
}

unsigned shrinker__split_locked(uint64_t target)
{
	struct shrinker__lib *L = &shrinker__lib;
	unsigned __int128 known_sum = 0, total;
	uint64_t n_known = 0, n_unknown = 0, assumed;
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = L->head; s; s = s->next) {
		s->share = 0;
		if (!takes_part(s))
			continue;
		if (atomic_load_explicit(&s->size_known, memory_order_relaxed)) {
			known_sum += atomic_load_explicit(&s->size,
							  memory_order_relaxed);
			n_known++;
		} else {
			n_unknown++;
		}
	}
	if (n_known + n_unknown == 0)
		return 0;

	/* A shrinker that never reported its size is taken to hold as much as
	 * the average one that did; with no sizes at all, shares are equal. */
	assumed = n_known ? (uint64_t)(known_sum / n_known) : 0;
	total = known_sum + (unsigned __int128)assumed * n_unknown;

	for (s = L->head; s; s = s->next) {
		uint64_t w;

		if (!takes_part(s))
			continue;
		if (total == 0) {
			s->share = target / (n_known + n_unknown) +
				   (target % (n_known + n_unknown) != 0);
			continue;
		}
		w = atomic_load_explicit(&s->size_known, memory_order_relaxed)
			    ? atomic_load_explicit(&s->size, memory_order_relaxed)
			    : assumed;
		/* Round up, so that the shares always add up to the target. */
		s->share = (uint64_t)(((unsigned __int128)target * w + total - 1) /
				      total);
	}
	return (unsigned)(n_known + n_unknown);
}

/* A request calls no shrinker once it has run this long: a callback that
 * sleeps must not hold a SHRINKER_WAIT caller for rounds x its time (Redis
 * stops evicting after a time limit, for the same reason). */
static bool past_deadline_locked(void)
{
	SHRINKER__ASSERT_LIB_HELD();
	return shrinker__now_ns() >= shrinker__lib.request_deadline_ns;
}

/* Call s with its share (lock held); false when the round must stop. */
static bool call_one_locked(struct shrinker *s, uint64_t *remaining, bool hard,
			    uint64_t *freed_round, struct shrinker **next)
{
	struct shrinker__lib *L = &shrinker__lib;
	uint64_t share = s->share, ask, freed, credit;

	SHRINKER__ASSERT_LIB_HELD();
	/* No call starts while fork() is prepared (it waits for the running
	 * one) or once exit() has begun. */
	while (L->forking && !atomic_load(&L->exiting))
		pthread_cond_wait(&L->changed, &L->lock);
	if (atomic_load(&L->exiting))
		return false;
	*next = s->next;
	if (!share || !takes_part(s))
		return true;
	s->share = 0;
	/* The share is resident memory; the cache is asked for the bytes
	 * that give it back, as far as it has learned (returned.c). */
	ask = shrinker__returned_ask_locked(s, share);
	if (s->flags & SHRINKER_DEFERRED) {
		/* Handed over, not freed: the program frees it in
		 * shrinker_dispatch(), where it is counted, trimmed and its
		 * RSS recorded.  The request does not ask anyone else for it
		 * meanwhile. */
		shrinker__sat_add(&s->pending, ask);
		s->pending_hard |= hard;
		s->freed_none = true;
		shrinker__sat_add(&L->handed_deferred, ask);
		*remaining -= share < *remaining ? share : *remaining;
		shrinker__dispatch_signal_locked();
		return true;
	}
	if (s->busy)
		return true;
	/* s may be gone after this; only next is safe to use.  What it says
	 * it freed counts for what comes back of it. */
	freed = shrinker__call_locked(s, ask, hard, false, next, &credit);
	shrinker__sat_add(freed_round, freed);
	if (freed)
		shrinker__brake_kick();
	*remaining -= credit < *remaining ? credit : *remaining;
	return true;
}

/* One pass: call every shrinker that has a share, for its share, as the
 * kernel's do_shrink_slab() does, even when one that came earlier freed
 * more than its own: a round that stopped as soon as the target was met
 * would make the cache that frees generously (SQLite drops its whole page
 * cache) pay every time and spare the others.  The pass starts where the
 * start_at points, so that over requests each shrinker comes first in turn
 * and the time limit, when it cuts a round short, spares nobody in
 * particular.  Deferred shrinkers get their share added to their pending
 * work; they are not asked twice. */
static uint64_t round_locked(uint64_t *remaining, bool hard)
{
	struct shrinker__lib *L = &shrinker__lib;
	struct shrinker *s, *next;
	uint64_t freed_round = 0, first = L->count ? L->start_at % L->count : 0, idx;
	unsigned pass;

	SHRINKER__ASSERT_LIB_HELD();
	for (pass = 0; pass < 2; pass++) {
		for (s = L->head, idx = 0; s && !L->stopping &&
					   !past_deadline_locked();
		     s = next, idx++) {
			next = s->next;
			if (pass == 0 ? idx < first : idx >= first)
				continue;
			if (!call_one_locked(s, remaining, hard, &freed_round, &next))
				return freed_round;
		}
	}
	return freed_round;
}

static void reset_freed_none_locked(void)
{
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = shrinker__lib.head; s; s = s->next)
		s->freed_none = false;
}

/* Requests made from inside callbacks, on this thread, while a request is
 * served: merged into it, up to its own target in all, instead of queued
 * (a callback that asks for more each time would otherwise keep the
 * reclaimer serving for ever). */
static void take_merged_locked(uint64_t *remaining)
{
	struct shrinker__lib *L = &shrinker__lib;
	uint64_t add = L->merged < L->merge_left ? L->merged : L->merge_left;

	SHRINKER__ASSERT_LIB_HELD();
	L->merged = 0;
	L->merge_left -= add;
	shrinker__sat_add(remaining, add);
}

uint64_t shrinker__serve_locked(uint64_t target, bool hard,
				uint64_t (*still_needed)(uint64_t remaining))
{
	struct shrinker__lib *L = &shrinker__lib;
	uint64_t remaining = target, freed = 0;
	unsigned rounds = 0, all_rounds = 0;
	bool escalated = false;

	SHRINKER__ASSERT_LIB_HELD();
	shrinker__sat_add(&L->stats.requests, 1);
	if (hard)
		shrinker__sat_add(&L->stats.hard_requests, 1);
	else
		shrinker__sat_add(&L->stats.soft_requests, 1);
	L->stats.last_request_ns = shrinker__now_ns();
	L->request_deadline_ns = L->stats.last_request_ns + REQUEST_MAX_NS;
	L->serving = true;
	L->handed_deferred = 0;
	L->merged = 0;
	L->merge_left = target;
	L->start_at++;
	reset_freed_none_locked();

	while (remaining && !L->stopping && !past_deadline_locked()) {
		uint64_t got = 0;

		if (shrinker__split_locked(remaining) > 0) {
			got = round_locked(&remaining, hard);
			shrinker__sat_add(&L->stats.rounds, 1);
			all_rounds++;
			shrinker__sat_add(&freed, got);
			take_merged_locked(&remaining);
			if (!remaining)
				break;
			if (got && ++rounds < MAX_ROUNDS)
				continue;
		}
		/* Nobody freed anything, or the phase used its rounds. */
		if (hard || past_deadline_locked())
			break;
		if (still_needed) {
			/* Reads files and trims: not under the lock. */
			shrinker__unlock();
			remaining = still_needed(remaining);
			shrinker__lock();
		}
		if (!remaining)
			break;
		shrinker__debug("escalating to hard: %llu KiB still needed after "
				"%u soft rounds freed %llu KiB",
				(unsigned long long)remaining >> 10, all_rounds,
				(unsigned long long)freed >> 10);
		hard = true;
		escalated = true;
		rounds = 0;
		shrinker__sat_add(&L->stats.escalations, 1);
		reset_freed_none_locked();
	}
	L->serving = false;
	shrinker__debug("request of %llu KiB (%s): freed %llu KiB, handed %llu KiB "
			"to deferred shrinkers, in %u rounds, %llu ms%s",
			(unsigned long long)target >> 10,
			escalated ? "soft, then hard" : hard ? "hard" : "soft",
			(unsigned long long)freed >> 10,
			(unsigned long long)L->handed_deferred >> 10, all_rounds,
			(unsigned long long)(shrinker__now_ns() -
					     L->stats.last_request_ns) / 1000000,
			past_deadline_locked() ? ", stopped at the time limit" : "");
	return freed;
}

/* Serve with RSS and trimming around it; lock held, dropped for the
 * system calls. */
static uint64_t serve_and_trim_locked(uint64_t target, bool hard,
				      uint64_t (*still_needed)(uint64_t),
				      uint64_t *released)
{
	uint64_t before, freed;

	SHRINKER__ASSERT_LIB_HELD();
	*released = 0;
	shrinker__returned_begin_locked(false);
	shrinker__unlock();
	before = shrinker__rss_bytes();
	shrinker__lock();
	freed = shrinker__serve_locked(target, hard, still_needed);
	if (!freed)
		return 0;
	shrinker__unlock();
	*released = shrinker__trim_and_record(before);
	shrinker__lock();
	/* What came back of what the callbacks said (returned.c). */
	shrinker__returned_settle_locked(false, *released);
	return freed;
}

/* Serve everything requested by hand so far (lock held). */
static void serve_requests_locked(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	uint64_t soft = L->req_soft, hard = L->req_hard, freed = 0;
	uint64_t first = L->served_seq + 1, last = L->req_seq, released;
	unsigned i;

	SHRINKER__ASSERT_LIB_HELD();
	L->req_soft = L->req_hard = 0;
	if (hard)
		shrinker__sat_add(&freed, serve_and_trim_locked(hard, true, NULL,
								&released));
	if (soft)
		shrinker__sat_add(&freed, serve_and_trim_locked(soft, false, NULL,
								&released));
	i = L->served_next++ % SHRINKER__SERVED_RING;
	L->served[i].first = first;
	L->served[i].last = last;
	L->served[i].freed = freed;
	L->served_seq = last;
	pthread_cond_broadcast(&L->changed);
}

/* Serve what the monitors decided (lock held); woke_ns: when this thread
 * woke for it, the start of the reaction time. */
static void serve_pressure_locked(uint64_t target, bool hard, uint64_t woke_ns)
{
	struct shrinker__lib *L = &shrinker__lib;
	int64_t grown = shrinker__growth_count();
	/* Work handed to deferred shrinkers helps once the program dispatches
	 * it; a program that left the last work waiting gets no credit. */
	bool backlog = shrinker__any_pending_locked(), handed_over;
	uint64_t freed, released;

	SHRINKER__ASSERT_LIB_HELD();
	L->reaction_t0 = woke_ns;
	L->reaction_first_seen = false;
	freed = serve_and_trim_locked(target, hard,
				      shrinker__monitor_still_needed, &released);
	/* What deferred shrinkers were handed counts for judging whether the
	 * request helped: they free it when the program dispatches. */
	shrinker__sat_add(&freed, L->handed_deferred);
	handed_over = L->handed_deferred && !backlog;
	if (L->reaction_first_seen) {
		uint64_t now = shrinker__now_ns(), took = now - woke_ns;

		shrinker__hist_add(&L->reaction_done, took);
		shrinker__reaction_seen(took, now);
		shrinker__debug("reaction: first callback %.2f ms after the wake-up, "
				"request done after %.1f ms; to the first callback "
				"over %llu requests: p50 %.2f, p99 %.2f, max %.2f ms",
				L->reaction_first_ns / 1e6, took / 1e6,
				(unsigned long long)L->reaction_first.n,
				shrinker__hist_pct(&L->reaction_first, 50) / 1e6,
				shrinker__hist_pct(&L->reaction_first, 99) / 1e6,
				L->reaction_first.max / 1e6);
	}
	L->reaction_t0 = 0;
	shrinker__unlock();
	shrinker__monitor_done(target, freed, hard, released, grown, handed_over);
	shrinker__lock();
}

/* The wake eventfd plus every source's descriptor. */
#define MAX_FDS (1 + SHRINKER__SRC_COUNT)

static void *reclaimer_main(void *arg)
{
	struct shrinker__lib *L = &shrinker__lib;
	struct pollfd fds[MAX_FDS];
	bool wake_suspect = false;

	(void)arg;
	/* This thread never waits in the brake: it is what the brake
	 * waits for. */
	shrinker__brake_exempt(1);
	shrinker__monitor_open();
	shrinker__lock();
	L->ready = true;
	pthread_cond_broadcast(&L->changed);
	while (!L->stopping) {
		uint64_t target, woke;
		unsigned n;
		bool hard;
		int timeout;

		if (L->req_seq != L->served_seq) {
			serve_requests_locked();
			continue;
		}
		if (shrinker__fair_wanted_locked()) {
			shrinker__rebalance_locked();
			continue;
		}
		shrinker__unlock();
		check_wake_fd(wake_suspect);
		wake_suspect = false;
		fds[0] = (struct pollfd){ .fd = shrinker__wake_fd(), .events = POLLIN };
		n = shrinker__monitor_fill(fds + 1, MAX_FDS - 1);
		timeout = shrinker__monitor_timeout_ms();
		/* Never for ever: a wake descriptor closed while this thread
		 * sleeps is only noticed on the next look. */
		if (timeout < 0 || timeout > MAX_SLEEP_MS)
			timeout = MAX_SLEEP_MS;
		if (poll(fds, n + 1, timeout) < 0 && errno != EINTR)
			shrinker__debug("poll: %s", strerror(errno));
		woke = shrinker__now_ns();
		if ((fds[0].revents & POLLIN) && !shrinker__wake_drain(fds[0].fd))
			wake_suspect = true;
		if (fds[0].revents & (POLLNVAL | POLLERR | POLLHUP))
			wake_suspect = true;
		if (shrinker__monitor_check(fds + 1, n, &target, &hard)) {
			shrinker__lock();
			L->stats.wakeups++;
			serve_pressure_locked(target, hard, woke);
			continue;
		}
		shrinker__lock();
		L->stats.wakeups++;
	}
	/* Let SHRINKER_WAIT callers go: nothing will serve them any more. */
	L->served_seq = L->req_seq;
	pthread_cond_broadcast(&L->changed);
	shrinker__unlock();
	shrinker__monitor_close();
	shrinker__lock();
	L->exited = true;
	pthread_cond_broadcast(&L->changed);
	shrinker__unlock();
	return NULL;
}

static int spawn_locked(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	sigset_t all, old;
	int r;

	SHRINKER__ASSERT_LIB_HELD();
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&L->thread, NULL, reclaimer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -EAGAIN;
	/* Named here rather than by the thread, so that it has its name by the
	 * time anyone can see it. */
	pthread_setname_np(L->thread, "shrinker");
	L->running = true;
	return 0;
}

/*
 * exit() and unloading: stop the thread, within EXIT_WAIT_MS whatever the
 * program does.
 *  1. exiting is set without any lock: from now on no callback starts.
 *  2. The library lock is taken with a deadline: a thread that holds it
 *     and will not let go (exit() from a signal handler that interrupted
 *     this library on the same thread) makes us give up at once.
 *  3. The thread is asked to stop and waited for until the deadline: a
 *     callback that does not return (it waits for a lock the exiting
 *     thread holds) or a thread that cannot be woken (its descriptors
 *     closed under it) is left behind, and exit() goes on.
 */
static void stop_thread(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	struct timespec until;
	bool exited;
	pthread_t t;

	/* One bound for exit() as a whole: after a first attempt (the atexit
	 * handler) the destructor does not wait again. */
	shrinker__deadline_in(&until, atomic_exchange(&L->exiting, true) ? 0
			      : EXIT_WAIT_MS * 1000000ull);
	if (!shrinker__lock_until(&until))
		return;
	if (!L->running || L->stopping) {
		shrinker__unlock();
		return;
	}
	L->stopping = true;
	t = L->thread;
	pthread_cond_broadcast(&L->changed); /* out of a fork wait, if any */
	shrinker__reclaimer_wake();
	if (pthread_equal(t, pthread_self())) {
		/* exit() from inside a callback: the thread stops by itself
		 * when the callback returns, which it never will. */
		shrinker__unlock();
		return;
	}
	while (!L->exited)
		if (pthread_cond_timedwait(&L->changed, &L->lock, &until) != 0)
			break;
	exited = L->exited;
	if (exited)
		L->running = false;
	shrinker__unlock();
	if (exited)
		pthread_join(t, NULL);
	else
		shrinker__debug("exit: the library's thread did not stop within "
				"%d ms (a callback that does not return?): left "
				"behind", EXIT_WAIT_MS);
}

/* dlclose() (and the end of the process): stop the thread and give back
 * every descriptor, unless the thread had to be left behind (then nothing
 * it may still use is touched). */
__attribute__((destructor)) static void at_unload(void)
{
	struct shrinker__lib *L = &shrinker__lib;

	stop_thread();
	if (!shrinker__lock_until(NULL))
		return;
	if (!L->running) {
		shrinker__wake_close();
		if (L->dispatch_fd >= 0 &&
		    shrinker__fdid_same(L->dispatch_fd, &L->dispatch_id))
			close(L->dispatch_fd);
		L->dispatch_fd = -1;
		shrinker__monitor_release();
	}
	shrinker__unlock();
}

/* A callback running on another thread than this one (lock held). */
static bool busy_elsewhere_locked(void)
{
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = shrinker__lib.head; s; s = s->next)
		if (s->busy && !pthread_equal(s->caller, pthread_self()))
			return true;
	return false;
}

/*
 * fork(): the child gets a copy of every lock the program holds at that
 * moment, including the cache lock a callback on the reclaimer thread may
 * hold.  So prepare waits for such a callback to return, at most
 * FORK_WAIT_MS, while no new call starts (forking), then holds the library
 * lock across the fork.
 */
static void atfork_prepare(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	struct timespec until;

	shrinker__lock();
	L->forking = true;
	shrinker__deadline_in(&until, FORK_WAIT_MS * 1000000ull);
	while (busy_elsewhere_locked())
		if (pthread_cond_timedwait(&L->changed, &L->lock, &until) != 0)
			break;
	shrinker__monitor_atfork_prepare();
}

static void atfork_parent(void)
{
	struct shrinker__lib *L = &shrinker__lib;

	shrinker__monitor_atfork_parent();
	L->forking = false;
	pthread_cond_broadcast(&L->changed);
	shrinker__unlock();
}

static void atfork_child(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	struct shrinker *s, *next;
	bool self_is_reclaimer = L->running && pthread_equal(L->thread,
							     pthread_self());
	int saved = errno;

	/* The forking thread holds the lock (prepare); it is the only thread
	 * here, so start from fresh primitives. */
	pthread_mutex_init(&L->lock, NULL);
	pthread_cond_init(&L->changed, NULL);
	L->forking = false;
	shrinker__monitor_atfork_child();

	/* Calls running on other threads of the parent are not running here. */
	for (s = L->head; s; s = next) {
		next = s->next;
		if (!s->busy || pthread_equal(s->caller, pthread_self()))
			continue;
		s->busy = false;
		if (s->dead) {
			shrinker__list_del_locked(s);
			free(s);
		}
	}
	/* Requests were the parent's. */
	L->req_soft = L->req_hard = 0;
	L->served_seq = L->req_seq;
	shrinker__wake_atfork_child();
	L->dispatch_fd = shrinker__eventfd_renew(L->dispatch_fd);
	shrinker__fdid_take(L->dispatch_fd, &L->dispatch_id);
	L->dispatch_signalled = false;
	for (s = L->head; s; s = s->next)
		if (s->pending) {
			shrinker__dispatch_signal_locked();
			break;
		}

	if (L->running && !self_is_reclaimer && !L->stopping) {
		L->running = false;
		L->ready = false;
		L->exited = false;
		if (spawn_locked() < 0)
			shrinker__debug("no reclaimer thread in the child "
					"after fork");
	}
	/* Prepare's shrinker__lock() is undone: the lock was made anew. */
	shrinker__lock_forget();
	errno = saved;
}

static void init_once(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	/* atexit handlers run in reverse order of registration, so ours runs
	 * before those the program registered before its first shrinker. */
	atexit(stop_thread);
}

int shrinker__reclaimer_start_locked(void)
{
	struct shrinker__lib *L = &shrinker__lib;
	struct timespec until;
	int r;

	SHRINKER__ASSERT_LIB_HELD();
	if (L->stopping)
		return -EAGAIN; /* exit() has begun */
	if (L->running)
		return 0;
	pthread_once(&once, init_once);
	if (shrinker__wake_fd() < 0 && shrinker__wake_renew() < 0)
		return -EAGAIN;
	L->exited = false;
	r = spawn_locked();
	if (r < 0)
		return r;
	/* Return only once pressure detection is armed: a program that fills
	 * its cache right after registering must not outrun it.  Arming
	 * cgroup v1 thresholds takes tens of milliseconds (the kernel waits
	 * for an RCU grace period per threshold).  Bounded, in case a file
	 * under /sys hangs. */
	shrinker__deadline_in(&until, READY_WAIT_MS * 1000000ull);
	while (!L->ready && L->running)
		if (pthread_cond_timedwait(&L->changed, &L->lock, &until) != 0)
			break;
	return 0;
}

SHRINKER_EXPORT int shrinker_request_reclaim(size_t bytes, unsigned flags,
					     size_t *freed)
{
	struct shrinker__lib *L = &shrinker__lib;
	uint64_t seq, got = 0;
	unsigned i;
	int r;

	if (!bytes || (flags & ~(unsigned)(SHRINKER_HARD | SHRINKER_WAIT)))
		return -EINVAL;

	shrinker__lock();
	if ((flags & SHRINKER_WAIT) && shrinker__on_reclaimer_thread_locked()) {
		shrinker__unlock();
		return -EDEADLK;
	}
	r = shrinker__reclaimer_start_locked();
	if (r < 0) {
		shrinker__unlock();
		return r;
	}
	if (L->serving && shrinker__on_reclaimer_thread_locked()) {
		/* From a callback: merged into the work in progress. */
		shrinker__sat_add(&L->merged, bytes);
		shrinker__unlock();
		return 0;
	}
	if (flags & SHRINKER_HARD)
		shrinker__sat_add(&L->req_hard, bytes);
	else
		shrinker__sat_add(&L->req_soft, bytes);
	seq = ++L->req_seq;
	shrinker__reclaimer_wake();
	if (!(flags & SHRINKER_WAIT)) {
		shrinker__unlock();
		return 0;
	}
	while (L->served_seq < seq)
		pthread_cond_wait(&L->changed, &L->lock);
	for (i = 0; i < SHRINKER__SERVED_RING; i++)
		if (L->served[i].first <= seq && seq <= L->served[i].last)
			got = L->served[i].freed;
	shrinker__unlock();
	if (freed)
		*freed = got > SIZE_MAX ? SIZE_MAX : (size_t)got;
	return 0;
}
