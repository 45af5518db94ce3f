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

#include "3-model/growth.h"
#include "4-monitor/monitor.h"
#include "internal.h"

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

/* The thread, the requests and their statistics (lib lock). */
static struct {
	/* The thread. */
	bool running;              /* it exists */
	pthread_t thread;
	bool ready;                /* its pressure sources are armed */
	bool stopping;             /* asked to exit */
	bool exited;               /* it has returned (join will not block) */
	/* Requests made by hand, added together until picked up; they are
	 * numbered, and a ring remembers what the last batches freed for
	 * SHRINKER_WAIT. */
	uint64_t req_soft, req_hard;
	uint64_t req_seq;          /* numbers the requests made so far */
	uint64_t served_seq;       /* all requests up to this one are served */
	struct {
		uint64_t first, last, freed;
	} served[SHRINKER__SERVED_RING];
	unsigned served_next;
	/* The request being served: its time limit, where its rounds start,
	 * what callbacks asked for meanwhile (merged into it, up to what is
	 * left of it), and what deferred shrinkers were handed. */
	bool serving;
	uint64_t request_deadline_ns;
	uint64_t start_at;
	uint64_t merged, merge_left;
	uint64_t handed_deferred;
	/* Reaction times of requests pressure caused: from the wake-up that
	 * found it (reaction_t0, 0: not measured) to the first callback and
	 * to the end. */
	uint64_t reaction_t0;
	bool reaction_first_seen;
	uint64_t reaction_first_ns; /* this request's, once seen */
	struct shrinker__hist reaction_first, reaction_done;
	/* The statistics kept here: requests, rounds, escalations, wake-ups. */
	struct shrinker_global_stats stats;
} rec;

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
	unsigned __int128 known_sum = 0, total;
	uint64_t n_known = 0, n_unknown = 0, assumed;
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = shrinker__first_locked(); s; s = s->next) {
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

	for (s = shrinker__first_locked(); s; s = s->next) {
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
	return shrinker__now_ns() >= rec.request_deadline_ns;
}

/* Call s with its share (lock held); false when the round must stop. */
static bool call_one_locked(struct shrinker *s, uint64_t *remaining, bool hard,
			    uint64_t *freed_round, struct shrinker **next)
{
	uint64_t share = s->share, ask, freed, credit;

	SHRINKER__ASSERT_LIB_HELD();
	/* No call starts while fork() is prepared (it waits for the running
	 * one) or once exit() has begun. */
	while (shrinker__forking_locked() && !shrinker__exiting())
		shrinker__wait_changed_locked();
	if (shrinker__exiting())
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
		shrinker__sat_add(&rec.handed_deferred, ask);
		*remaining -= share < *remaining ? share : *remaining;
		shrinker__dispatch_signal_locked();
		return true;
	}
	if (s->busy)
		return true;
	if (rec.reaction_t0 && !rec.reaction_first_seen) {
		rec.reaction_first_seen = true;
		rec.reaction_first_ns = shrinker__now_ns() - rec.reaction_t0;
		shrinker__hist_add(&rec.reaction_first, rec.reaction_first_ns);
	}
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
	struct shrinker *s, *next;
	uint64_t freed_round = 0, first = shrinker__count_locked() ? rec.start_at % shrinker__count_locked() : 0, idx;
	unsigned pass;

	SHRINKER__ASSERT_LIB_HELD();
	for (pass = 0; pass < 2; pass++) {
		for (s = shrinker__first_locked(), idx = 0; s && !rec.stopping &&
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
	for (s = shrinker__first_locked(); s; s = s->next)
		s->freed_none = false;
}

/* Requests made from inside callbacks, on this thread, while a request is
 * served: merged into it, up to its own target in all, instead of queued
 * (a callback that asks for more each time would otherwise keep the
 * reclaimer serving for ever). */
static void take_merged_locked(uint64_t *remaining)
{
	uint64_t add = rec.merged < rec.merge_left ? rec.merged : rec.merge_left;

	SHRINKER__ASSERT_LIB_HELD();
	rec.merged = 0;
	rec.merge_left -= add;
	shrinker__sat_add(remaining, add);
}

uint64_t shrinker__serve_locked(uint64_t target, bool hard,
				uint64_t (*still_needed)(uint64_t remaining))
{
	uint64_t remaining = target, freed = 0;
	unsigned rounds = 0, all_rounds = 0;
	bool escalated = false;

	SHRINKER__ASSERT_LIB_HELD();
	shrinker__sat_add(&rec.stats.requests, 1);
	if (hard)
		shrinker__sat_add(&rec.stats.hard_requests, 1);
	else
		shrinker__sat_add(&rec.stats.soft_requests, 1);
	rec.stats.last_request_ns = shrinker__now_ns();
	rec.request_deadline_ns = rec.stats.last_request_ns + REQUEST_MAX_NS;
	rec.serving = true;
	rec.handed_deferred = 0;
	rec.merged = 0;
	rec.merge_left = target;
	rec.start_at++;
	reset_freed_none_locked();

	while (remaining && !rec.stopping && !past_deadline_locked()) {
		uint64_t got = 0;

		if (shrinker__split_locked(remaining) > 0) {
			got = round_locked(&remaining, hard);
			shrinker__sat_add(&rec.stats.rounds, 1);
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
		shrinker__sat_add(&rec.stats.escalations, 1);
		reset_freed_none_locked();
	}
	rec.serving = false;
	shrinker__debug("request of %llu KiB (%s): freed %llu KiB, handed %llu KiB "
			"to deferred shrinkers, in %u rounds, %llu ms%s",
			(unsigned long long)target >> 10,
			escalated ? "soft, then hard" : hard ? "hard" : "soft",
			(unsigned long long)freed >> 10,
			(unsigned long long)rec.handed_deferred >> 10, all_rounds,
			(unsigned long long)(shrinker__now_ns() -
					     rec.stats.last_request_ns) / 1000000,
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
	shrinker__returned_begin_locked(shrinker__first_locked(), false);
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
	shrinker__returned_settle_locked(shrinker__first_locked(), false, *released);
	return freed;
}

/* Serve everything requested by hand so far (lock held). */
static void serve_requests_locked(void)
{
	uint64_t soft = rec.req_soft, hard = rec.req_hard, freed = 0;
	uint64_t first = rec.served_seq + 1, last = rec.req_seq, released;
	unsigned i;

	SHRINKER__ASSERT_LIB_HELD();
	rec.req_soft = rec.req_hard = 0;
	if (hard)
		shrinker__sat_add(&freed, serve_and_trim_locked(hard, true, NULL,
								&released));
	if (soft)
		shrinker__sat_add(&freed, serve_and_trim_locked(soft, false, NULL,
								&released));
	i = rec.served_next++ % SHRINKER__SERVED_RING;
	rec.served[i].first = first;
	rec.served[i].last = last;
	rec.served[i].freed = freed;
	rec.served_seq = last;
	shrinker__changed_locked();
}

/* Serve what the monitors decided (lock held); woke_ns: when this thread
 * woke for it, the start of the reaction time. */
static void serve_pressure_locked(uint64_t target, bool hard, uint64_t woke_ns)
{
	int64_t grown = shrinker__growth_count();
	/* Work handed to deferred shrinkers helps once the program dispatches
	 * it; a program that left the last work waiting gets no credit. */
	bool backlog = shrinker__any_pending_locked(), handed_over;
	uint64_t freed, released;

	SHRINKER__ASSERT_LIB_HELD();
	rec.reaction_t0 = woke_ns;
	rec.reaction_first_seen = false;
	freed = serve_and_trim_locked(target, hard,
				      shrinker__monitor_still_needed, &released);
	/* What deferred shrinkers were handed counts for judging whether the
	 * request helped: they free it when the program dispatches. */
	shrinker__sat_add(&freed, rec.handed_deferred);
	handed_over = rec.handed_deferred && !backlog;
	if (rec.reaction_first_seen) {
		uint64_t now = shrinker__now_ns(), took = now - woke_ns;

		shrinker__hist_add(&rec.reaction_done, took);
		shrinker__reaction_seen(took, now);
		shrinker__debug("reaction: first callback %.2f ms after the wake-up, "
				"request done after %.1f ms; to the first callback "
				"over %llu requests: p50 %.2f, p99 %.2f, max %.2f ms",
				rec.reaction_first_ns / 1e6, took / 1e6,
				(unsigned long long)rec.reaction_first.n,
				shrinker__hist_pct(&rec.reaction_first, 50) / 1e6,
				shrinker__hist_pct(&rec.reaction_first, 99) / 1e6,
				rec.reaction_first.max / 1e6);
	}
	rec.reaction_t0 = 0;
	shrinker__unlock();
	shrinker__monitor_done(target, freed, hard, released, grown, handed_over);
	shrinker__lock();
}

/* The wake eventfd plus every source's descriptor. */
#define MAX_FDS (1 + SHRINKER__SRC_COUNT)

static void *reclaimer_main(void *arg)
{
	struct pollfd fds[MAX_FDS];
	bool wake_suspect = false;

	(void)arg;
	/* This thread never waits in the brake: it is what the brake
	 * waits for. */
	shrinker__brake_exempt(1);
	shrinker__registry_on_reclaimer();
	shrinker__monitor_open();
	shrinker__lock();
	rec.ready = true;
	shrinker__changed_locked();
	while (!rec.stopping) {
		uint64_t target, woke;
		unsigned n;
		bool hard;
		int timeout;

		if (rec.req_seq != rec.served_seq) {
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
			rec.stats.wakeups++;
			serve_pressure_locked(target, hard, woke);
			continue;
		}
		shrinker__lock();
		rec.stats.wakeups++;
	}
	/* Let SHRINKER_WAIT callers go: nothing will serve them any more. */
	rec.served_seq = rec.req_seq;
	shrinker__changed_locked();
	shrinker__unlock();
	shrinker__monitor_close();
	shrinker__lock();
	rec.exited = true;
	shrinker__changed_locked();
	shrinker__unlock();
	return NULL;
}

static int spawn_locked(void)
{
	sigset_t all, old;
	int r;

	SHRINKER__ASSERT_LIB_HELD();
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&rec.thread, NULL, reclaimer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -EAGAIN;
	/* Named here rather than by the thread, so that it has its name by the
	 * time anyone can see it. */
	pthread_setname_np(rec.thread, "shrinker");
	rec.running = true;
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
	struct timespec until;
	bool exited;
	pthread_t t;

	/* One bound for exit() as a whole: after a first attempt (the atexit
	 * handler) the destructor does not wait again. */
	shrinker__deadline_in(&until, shrinker__exiting_begin() ? 0
			      : EXIT_WAIT_MS * 1000000ull);
	if (!shrinker__lock_until(&until))
		return;
	if (!rec.running || rec.stopping) {
		shrinker__unlock();
		return;
	}
	rec.stopping = true;
	t = rec.thread;
	shrinker__changed_locked(); /* out of a fork wait, if any */
	shrinker__reclaimer_wake();
	if (pthread_equal(t, pthread_self())) {
		/* exit() from inside a callback: the thread stops by itself
		 * when the callback returns, which it never will. */
		shrinker__unlock();
		return;
	}
	while (!rec.exited)
		if (shrinker__wait_changed_until_locked(&until) != 0)
			break;
	exited = rec.exited;
	if (exited)
		rec.running = false;
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

	stop_thread();
	if (!shrinker__lock_until(NULL))
		return;
	if (!rec.running) {
		shrinker__wake_close();
		shrinker__dispatch_close_locked();
		shrinker__monitor_release();
	}
	shrinker__unlock();
}

/* A callback running on another thread than this one (lock held). */
static bool busy_elsewhere_locked(void)
{
	struct shrinker *s;

	SHRINKER__ASSERT_LIB_HELD();
	for (s = shrinker__first_locked(); s; s = s->next)
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
	struct timespec until;

	shrinker__lock();
	shrinker__forking_set_locked(true);
	shrinker__deadline_in(&until, FORK_WAIT_MS * 1000000ull);
	while (busy_elsewhere_locked())
		if (shrinker__wait_changed_until_locked(&until) != 0)
			break;
	shrinker__monitor_atfork_prepare();
}

static void atfork_parent(void)
{

	shrinker__monitor_atfork_parent();
	shrinker__forking_set_locked(false);
	shrinker__changed_locked();
	shrinker__unlock();
}

static void atfork_child(void)
{
	struct shrinker *s, *next;
	bool self_is_reclaimer = rec.running && pthread_equal(rec.thread,
							     pthread_self());
	int saved = errno;

	/* The forking thread holds the lock (prepare); it is the only thread
	 * here, so start from fresh primitives. */
	shrinker__registry_atfork_child();
	shrinker__monitor_atfork_child();

	/* Calls running on other threads of the parent are not running here. */
	for (s = shrinker__first_locked(); s; s = next) {
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
	rec.req_soft = rec.req_hard = 0;
	rec.served_seq = rec.req_seq;
	shrinker__wake_atfork_child();
	shrinker__dispatch_atfork_child_locked();
	for (s = shrinker__first_locked(); s; s = s->next)
		if (s->pending) {
			shrinker__dispatch_signal_locked();
			break;
		}

	if (rec.running && !self_is_reclaimer && !rec.stopping) {
		rec.running = false;
		rec.ready = false;
		rec.exited = false;
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
	struct timespec until;
	int r;

	SHRINKER__ASSERT_LIB_HELD();
	if (rec.stopping)
		return -EAGAIN; /* exit() has begun */
	if (rec.running)
		return 0;
	pthread_once(&once, init_once);
	if (shrinker__wake_fd() < 0 && shrinker__wake_renew() < 0)
		return -EAGAIN;
	rec.exited = false;
	r = spawn_locked();
	if (r < 0)
		return r;
	/* Return only once pressure detection is armed: a program that fills
	 * its cache right after registering must not outrun it.  Arming
	 * cgroup v1 thresholds takes tens of milliseconds (the kernel waits
	 * for an RCU grace period per threshold).  Bounded, in case a file
	 * under /sys hangs. */
	shrinker__deadline_in(&until, READY_WAIT_MS * 1000000ull);
	while (!rec.ready && rec.running)
		if (shrinker__wait_changed_until_locked(&until) != 0)
			break;
	return 0;
}

int shrinker__reclaimer_request(uint64_t bytes, unsigned flags, size_t *freed)
{
	uint64_t seq, got = 0;
	unsigned i;
	int r;

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
	if (rec.serving && shrinker__on_reclaimer_thread_locked()) {
		/* From a callback: merged into the work in progress. */
		shrinker__sat_add(&rec.merged, bytes);
		shrinker__unlock();
		return 0;
	}
	if (flags & SHRINKER_HARD)
		shrinker__sat_add(&rec.req_hard, bytes);
	else
		shrinker__sat_add(&rec.req_soft, bytes);
	seq = ++rec.req_seq;
	shrinker__reclaimer_wake();
	if (!(flags & SHRINKER_WAIT)) {
		shrinker__unlock();
		return 0;
	}
	while (rec.served_seq < seq)
		shrinker__wait_changed_locked();
	for (i = 0; i < SHRINKER__SERVED_RING; i++)
		if (rec.served[i].first <= seq && seq <= rec.served[i].last)
			got = rec.served[i].freed;
	shrinker__unlock();
	if (freed)
		*freed = got > SIZE_MAX ? SIZE_MAX : (size_t)got;
	return 0;
}

void shrinker__global_stats(struct shrinker_global_stats *ret)
{
	shrinker__lock();
	shrinker__registry_stats_locked(ret);
	ret->requests = rec.stats.requests;
	ret->soft_requests = rec.stats.soft_requests;
	ret->hard_requests = rec.stats.hard_requests;
	ret->last_request_ns = rec.stats.last_request_ns;
	ret->rounds = rec.stats.rounds;
	ret->escalations = rec.stats.escalations;
	ret->wakeups = rec.stats.wakeups;
	ret->reactions = rec.reaction_done.n;
	ret->reaction_first_p50_ns = shrinker__hist_pct(&rec.reaction_first, 50);
	ret->reaction_first_p99_ns = shrinker__hist_pct(&rec.reaction_first, 99);
	ret->reaction_first_max_ns = rec.reaction_first.max;
	ret->reaction_done_p50_ns = shrinker__hist_pct(&rec.reaction_done, 50);
	ret->reaction_done_p99_ns = shrinker__hist_pct(&rec.reaction_done, 99);
	ret->reaction_done_max_ns = rec.reaction_done.max;
	ret->returned_permille = shrinker__returned_process_locked();
	ret->giveback_per_s = shrinker__giveback_rate();
	shrinker__monitor_add_stats(ret);
	shrinker__unlock();
}
