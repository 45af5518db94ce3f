/* SPDX-License-Identifier: MIT */
/*
 * The reclaimer's arithmetic: proportional split, the fair split when sizes
 * are unknown, rounds, soft-to-hard escalation, no spinning, requests by hand.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "helpers.h"
#include "shrinker.h"
#include "tap.h"

/* A fake cache: holds `left` bytes, frees up to what is asked (or a part of
 * it on soft calls when `soft_part` < 100), records what it was asked. */
struct fake {
	struct shrinker *s;
	uint64_t left;
	unsigned soft_part; /* percent of the target freed on a soft call */
	bool report_size;
	_Atomic uint64_t asked, freed, calls, hard_calls;
	uint64_t extra;     /* bytes returned beyond what was freed */
};

static size_t fake_shrink(size_t target, bool hard, void *ud)
{
	struct fake *f = ud;
	uint64_t want = target, got;

	if (!hard && f->soft_part < 100)
		want = target * f->soft_part / 100;
	got = want < f->left ? want : f->left;
	f->left -= got;
	atomic_fetch_add(&f->asked, target);
	atomic_fetch_add(&f->freed, got);
	atomic_fetch_add(&f->calls, 1);
	atomic_fetch_add(&f->hard_calls, hard);
	if (f->report_size)
		shrinker_set_size(f->s, f->left);
	return got + f->extra;
}

static int fake_register(struct fake *f, const char *name, uint64_t bytes,
			 bool report)
{
	f->left = bytes;
	if (!f->soft_part)
		f->soft_part = 100;
	f->report_size = report;
	if (shrinker_register(&f->s, name, fake_shrink, f, 0) < 0)
		return -1;
	if (report)
		shrinker_set_size(f->s, bytes);
	return 0;
}

static int test_proportional(void)
{
	struct fake f[3] = { 0 };
	size_t freed = 0;
	int r = TAP_FAIL, i;

	CHECK(fake_register(&f[0], "a", 100 * MiB, true) == 0);
	CHECK(fake_register(&f[1], "b", 200 * MiB, true) == 0);
	CHECK(fake_register(&f[2], "c", 700 * MiB, true) == 0);
	CHECK(shrinker_request_reclaim(100 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK_NEAR(f[0].asked, 10 * MiB, 0.1 * MiB);
	CHECK_NEAR(f[1].asked, 20 * MiB, 0.2 * MiB);
	CHECK_NEAR(f[2].asked, 70 * MiB, 0.7 * MiB);
	CHECK(freed >= 100 * MiB);
	for (i = 0; i < 3; i++)
		CHECK(f[i].calls == 1 && f[i].hard_calls == 0);
	r = TAP_PASS;
fail:
	for (i = 0; i < 3; i++)
		shrinker_unregister(f[i].s);
	return r;
}

static int test_unknown_sizes_reach_target(void)
{
	struct fake f[3] = { 0 };
	size_t freed = 0;
	int r = TAP_FAIL, i;

	/* The first holds almost nothing, so the others must make up for it
	 * in further rounds. */
	CHECK(fake_register(&f[0], "tiny", 5 * MiB, false) == 0);
	CHECK(fake_register(&f[1], "mid", 60 * MiB, false) == 0);
	CHECK(fake_register(&f[2], "big", 200 * MiB, false) == 0);
	CHECK(shrinker_request_reclaim(100 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(freed >= 100 * MiB);
	CHECK(f[0].freed + f[1].freed + f[2].freed >= 100 * MiB);
	CHECK(f[0].freed == 5 * MiB);
	/* The first round was an equal split. */
	CHECK(f[1].calls >= 2 || f[2].calls >= 2);
	r = TAP_PASS;
fail:
	for (i = 0; i < 3; i++)
		shrinker_unregister(f[i].s);
	return r;
}

static int test_mixed_known_unknown(void)
{
	struct fake f[2] = { 0 };
	int r = TAP_FAIL, i;

	/* The unknown one is taken to hold the average of the known ones. */
	CHECK(fake_register(&f[0], "known", 300 * MiB, true) == 0);
	CHECK(fake_register(&f[1], "unknown", 300 * MiB, false) == 0);
	CHECK(shrinker_request_reclaim(60 * MiB, SHRINKER_WAIT, NULL) == 0);
	CHECK_NEAR(f[0].asked, 30 * MiB, 0.3 * MiB);
	CHECK_NEAR(f[1].asked, 30 * MiB, 0.3 * MiB);
	r = TAP_PASS;
fail:
	for (i = 0; i < 2; i++)
		shrinker_unregister(f[i].s);
	return r;
}

static int test_nothing_to_free_no_spin(void)
{
	struct fake f = { 0 };
	struct shrinker_global_stats g0, g1;
	size_t freed = 1;
	int r = TAP_FAIL;

	CHECK(fake_register(&f, "empty", 0, false) == 0);
	CHECK(shrinker_get_global_stats(&g0) == 0);
	CHECK(shrinker_request_reclaim(10 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(freed == 0);
	/* One soft call, escalation, one hard call, then it gives up. */
	CHECK(f.calls == 2);
	CHECK(f.hard_calls == 1);
	sleep_ms(200);
	CHECK(f.calls == 2);
	CHECK(shrinker_get_global_stats(&g1) == 0);
	CHECK(g1.escalations == g0.escalations + 1);
	CHECK(g1.rounds - g0.rounds == 2);
	r = TAP_PASS;
fail:
	shrinker_unregister(f.s);
	return r;
}

static int test_escalation(void)
{
	struct fake f = { .soft_part = 50 };
	size_t freed = 0;
	int r = TAP_FAIL;

	/* Soft calls free half of what is asked: soft rounds fall short, the
	 * rest is asked for hard. */
	CHECK(fake_register(&f, "stingy", 1024 * MiB, true) == 0);
	CHECK(shrinker_request_reclaim(16 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(freed == 16 * MiB);
	CHECK(f.hard_calls == 1);
	CHECK(f.calls == 5); /* four soft rounds, then one hard */
	r = TAP_PASS;
fail:
	shrinker_unregister(f.s);
	return r;
}

static int test_hard_request(void)
{
	struct fake f = { 0 };
	int r = TAP_FAIL;

	CHECK(fake_register(&f, "h", 64 * MiB, true) == 0);
	CHECK(shrinker_request_reclaim(MiB, SHRINKER_HARD | SHRINKER_WAIT,
				       NULL) == 0);
	CHECK(f.calls == 1 && f.hard_calls == 1 && f.asked == MiB);
	r = TAP_PASS;
fail:
	shrinker_unregister(f.s);
	return r;
}

static int test_zero_size_and_inactive_not_called(void)
{
	struct fake f[3] = { 0 };
	int r = TAP_FAIL, i;

	CHECK(fake_register(&f[0], "zero", 0, true) == 0);
	CHECK(fake_register(&f[1], "off", 50 * MiB, true) == 0);
	CHECK(fake_register(&f[2], "on", 50 * MiB, true) == 0);
	CHECK(shrinker_deactivate(f[1].s) == 0);
	CHECK(shrinker_request_reclaim(MiB, SHRINKER_WAIT, NULL) == 0);
	CHECK(f[0].calls == 0 && f[1].calls == 0 && f[2].calls == 1);
	CHECK(f[2].asked == MiB);
	CHECK(shrinker_activate(f[1].s) == 0);
	CHECK(shrinker_request_reclaim(2 * MiB, SHRINKER_WAIT, NULL) == 0);
	CHECK(f[1].calls == 1);
	r = TAP_PASS;
fail:
	for (i = 0; i < 3; i++)
		shrinker_unregister(f[i].s);
	return r;
}

static int test_overreporting(void)
{
	struct fake f[2] = { 0 };
	struct shrinker_stats st;
	size_t freed = 0;
	int r = TAP_FAIL, i;

	/* Returning more than asked counts in full (up to what the cache
	 * holds) and meets the target. */
	f[0].extra = 10 * MiB;
	CHECK(fake_register(&f[0], "generous", 100 * MiB, true) == 0);
	CHECK(shrinker_request_reclaim(4 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(freed == 14 * MiB);
	CHECK(shrinker_get_stats(f[0].s, &st) == 0);
	CHECK(st.bytes_freed == 14 * MiB && st.bytes_asked == 4 * MiB);
	/* With another shrinker, the request ends as soon as it is met:
	 * whichever of the two comes first this time (rounds start at a
	 * different shrinker each request), the other is called at most once
	 * and nothing more after the target is met. */
	CHECK(fake_register(&f[1], "honest", 100 * MiB, true) == 0);
	CHECK(shrinker_request_reclaim(4 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(freed >= 4 * MiB);
	CHECK(atomic_load(&f[0].calls) + atomic_load(&f[1].calls) <= 3);
	r = TAP_PASS;
fail:
	for (i = 0; i < 2; i++)
		shrinker_unregister(f[i].s);
	return r;
}

/* Frees everything it holds whatever it is asked (SQLite's
 * sqlite3_db_release_memory()). */
static size_t drop_all_shrink(size_t target, bool hard, void *ud)
{
	struct fake *f = ud;
	uint64_t got = f->left;

	(void)hard;
	f->left = 0;
	atomic_fetch_add(&f->asked, target);
	atomic_fetch_add(&f->freed, got);
	atomic_fetch_add(&f->calls, 1);
	shrinker_set_size(f->s, 0);
	return got;
}

static int test_generous_does_not_pay_for_all(void)
{
	struct fake f[2] = { 0 };
	int r = TAP_FAIL, i, k;

	/* A cache that frees everything when asked for anything, and a
	 * bigger one that frees what it is asked: every request asks both
	 * for their shares, so the generous one is not emptied in place of
	 * the other, request after request, while the bigger one is spared. */
	CHECK(shrinker_register(&f[0].s, "generous", drop_all_shrink, &f[0], 0) == 0);
	CHECK(fake_register(&f[1], "exact", 60 * MiB, true) == 0);
	for (k = 0; k < 10; k++) {
		f[0].left = 40 * MiB;
		shrinker_set_size(f[0].s, f[0].left);
		f[1].left = 60 * MiB;
		shrinker_set_size(f[1].s, f[1].left);
		CHECK(shrinker_request_reclaim(5 * MiB, SHRINKER_WAIT, NULL) == 0);
	}
	tap_diag("generous: %llu calls, exact: %llu calls, asked %.1f MiB in all",
		 (unsigned long long)f[0].calls, (unsigned long long)f[1].calls,
		 f[1].asked / (double)MiB);
	CHECK(f[0].calls == 10 && f[1].calls == 10);
	/* Each time its share: 60 % of 5 MiB. */
	CHECK_NEAR(f[1].asked, 30 * MiB, 0.1 * MiB);
	r = TAP_PASS;
fail:
	for (i = 0; i < 2; i++)
		shrinker_unregister(f[i].s);
	return r;
}

static int test_request_args(void)
{
	size_t freed = 77;
	int r = TAP_FAIL;

	errno = 1234;
	CHECK(shrinker_request_reclaim(0, 0, &freed) == -EINVAL);
	CHECK(shrinker_request_reclaim(1, 1u << 7, &freed) == -EINVAL);
	CHECK(freed == 77);
	/* With nobody registered a request is served at once, freeing 0. */
	CHECK(shrinker_request_reclaim(MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(freed == 0);
	CHECK(errno == 1234);
	r = TAP_PASS;
fail:
	return r;
}

/* Returns SIZE_MAX whatever it freed. */
static size_t size_max_shrink(size_t target, bool hard, void *ud)
{
	(void)target;
	(void)hard;
	atomic_fetch_add((_Atomic uint64_t *)ud, 1);
	return SIZE_MAX;
}

static int test_size_max(void)
{
	_Atomic uint64_t calls = 0;
	struct shrinker_global_stats g0, g1;
	struct shrinker_stats st;
	struct shrinker *s = NULL;
	size_t freed = 0;
	int r = TAP_FAIL, i;

	/* What one call counts is capped at what the cache said it held, or
	 * at the target if it said nothing; counters never wrap. */
	CHECK(shrinker_get_global_stats(&g0) == 0);
	CHECK(shrinker_register(&s, "size-max", size_max_shrink, &calls, 0) == 0);
	for (i = 0; i < 3; i++) {
		CHECK(shrinker_request_reclaim(1 * MiB, SHRINKER_WAIT, &freed) == 0);
		CHECK(freed == 1 * MiB);
	}
	CHECK(shrinker_get_stats(s, &st) == 0);
	tap_diag("3 calls: bytes_freed %llu", (unsigned long long)st.bytes_freed);
	CHECK(st.bytes_freed == 3 * MiB);
	CHECK(shrinker_set_size(s, 5 * MiB) == 0);
	CHECK(shrinker_request_reclaim(1 * MiB, SHRINKER_WAIT, &freed) == 0);
	CHECK(freed == 5 * MiB);
	CHECK(shrinker_get_global_stats(&g1) == 0);
	CHECK(g1.bytes_freed - g0.bytes_freed == 8 * MiB);
	CHECK(atomic_load(&calls) == 4);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	return r;
}

static struct shrinker *asker;
static _Atomic uint64_t asker_calls;

/* Asks for more from inside its own callback, every time. */
static size_t asking_shrink(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	atomic_fetch_add(&asker_calls, 1);
	shrinker_request_reclaim(1 * MiB, 0, NULL);
	return target / 2;
}

static int test_request_from_callback(void)
{
	uint64_t at_end, later;
	int r = TAP_FAIL;

	/* Merged into the request in progress (at most its own target more),
	 * never queued as a new one: the reclaimer comes to rest. */
	CHECK(shrinker_register(&asker, "asker", asking_shrink, NULL, 0) == 0);
	CHECK(shrinker_request_reclaim(4 * MiB, SHRINKER_WAIT, NULL) == 0);
	sleep_ms(200);
	at_end = atomic_load(&asker_calls);
	sleep_ms(500);
	later = atomic_load(&asker_calls);
	tap_diag("%llu calls, %llu more in the next 500 ms",
		 (unsigned long long)at_end, (unsigned long long)(later - at_end));
	CHECK(at_end >= 1 && at_end <= 16);
	CHECK(later == at_end);
	r = TAP_PASS;
fail:
	shrinker_unregister(asker);
	return r;
}

static _Atomic uint64_t sleeper_calls;

static size_t sleeping_shrink(size_t target, bool hard, void *ud)
{
	(void)hard;
	(void)ud;
	atomic_fetch_add(&sleeper_calls, 1);
	sleep_ms(700);
	return target / 4; /* never enough: rounds and escalation would follow */
}

static int test_sleeping_callback(void)
{
	struct shrinker *s = NULL;
	uint64_t t0, took;
	int r = TAP_FAIL;

	/* A request calls no shrinker after 500 ms: SHRINKER_WAIT returns
	 * when the callback running then returns, not after 8 of them. */
	CHECK(shrinker_register(&s, "sleeper", sleeping_shrink, NULL, 0) == 0);
	t0 = now_ms();
	CHECK(shrinker_request_reclaim(16 * MiB, SHRINKER_WAIT, NULL) == 0);
	took = now_ms() - t0;
	tap_diag("served in %llu ms, %llu calls", (unsigned long long)took,
		 (unsigned long long)atomic_load(&sleeper_calls));
	/* One call, not eight: the count is the verdict (how long it took is
	 * the callback's own 700 ms and the machine's). */
	CHECK(atomic_load(&sleeper_calls) == 1);
	r = TAP_PASS;
fail:
	shrinker_unregister(s);
	return r;
}

static const struct tap_test tests[] = {
	{ "targets split in proportion to reported sizes", test_proportional },
	{ "with no sizes the target is still met", test_unknown_sizes_reach_target },
	{ "an unknown size counts as the average", test_mixed_known_unknown },
	{ "nothing to free: no spinning", test_nothing_to_free_no_spin },
	{ "soft rounds that fall short escalate to hard", test_escalation },
	{ "hard requests are hard from the start", test_hard_request },
	{ "zero-size and inactive shrinkers are not called", test_zero_size_and_inactive_not_called },
	{ "freeing more than asked counts in full, and meets the target", test_overreporting },
	{ "request arguments", test_request_args },
	{ "a callback returning SIZE_MAX: capped, counters do not wrap", test_size_max },
	{ "a request made from a callback is merged, not looped", test_request_from_callback },
	{ "a sleeping callback: a request is bounded in time", test_sleeping_callback },
	{ "every shrinker is asked for its share, the generous one included", test_generous_does_not_pay_for_all },
};

TAP_MAIN(tests)
