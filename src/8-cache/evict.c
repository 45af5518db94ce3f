/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: what the container gives up, and when.  Two queues of segments,
 * S3-FIFO's small and main (include/shrinker-cache.h): the victim is the
 * oldest segment of the small queue while it holds more than a tenth of
 * the segments, else of the main queue.  Evicting a segment takes its
 * shard's lock once and walks its entries in order: an entry read since it
 * came in (freq > 0) is copied to its shard's newest main segment (from
 * the small queue with its count reset; from the main queue with one hit
 * less, CLOCK's second chance), any other is dropped (from the small queue
 * leaving a ghost), and the segment is unmapped after the lock, or by the
 * last release if a value in it is held.  Only a replacement copies: the
 * shrinker, soft or hard, copies nothing, and everything in its victims
 * goes (ghosts kept), because a copy writes fresh pages, faulted in while
 * memory is short: copying half of each victim took 2.5 times as long to
 * give the same bytes back (bench/analysis.md).  Work is one segment at a time, in
 * proportion to what is freed, and bounded by the segments there were.
 * Growth is asked for here too (make_room): a segment, a large value or an
 * object at a time, from the library (fair between caches and processes),
 * within the optional maximum; when refused, the cache evicts its own
 * oldest segments first, as a full cache replaces entries.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "8-cache/private.h"

static void unlink_seg_locked(struct shrinker_cache *c, struct seg *s)
{
	SHRINKER__ASSERT_QUEUE_HELD();
	unsigned q = s->queue;
	if (s->prev)
		s->prev->next = s->next;
	else
		c->head[q] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		c->tail[q] = s->prev;
	s->prev = s->next = NULL;
	s->queued = 0;
	c->nsegs[q]--;
}

/* The next victim, out of its queue; NULL when both are empty. */
static struct seg *pop_victim(struct shrinker_cache *c)
{
	shrinker__queue_lock(c);
	size_t total = c->nsegs[Q_SMALL] + c->nsegs[Q_MAIN];
	unsigned q = c->nsegs[Q_SMALL] * 10 > total || !c->tail[Q_MAIN] ? Q_SMALL : Q_MAIN;
	struct seg *s = c->tail[q];
	if (s)
		unlink_seg_locked(c, s);
	shrinker__queue_unlock(c);
	return s;
}

/* Room in the shard's newest main segment for an entry moved there, from
 * its spare or a new mapping (not asked for: the victim it comes from is
 * unmapped right after); NULL if none can be made, and the entry goes. */
static struct ent *move_room_locked(struct shrinker_cache *c, struct shard *sh,
				    struct ent *e, size_t n, size_t *grew)
{
	SHRINKER__ASSERT_SHARD_HELD();
	size_t charge = (e->flags & ENT_EXT) ? ent_ext(e)->charge : 0;
	struct ent *d = shrinker__seg_append_locked(c, sh, Q_MAIN, n, charge, grew);
	if (d)
		return d;
	sh->spare = shrinker__seg_map(c, (unsigned)(sh - c->shards));
	if (!sh->spare)
		return NULL;
	return shrinker__seg_append_locked(c, sh, Q_MAIN, n, charge, grew);
}

/* An entry's bytes, with its external value's. */
static size_t ent_weight(struct ent *e)
{
	return ent_size(e) + ((e->flags & ENT_EXT) ? ent_ext(e)->charge : 0);
}

/* Evict one segment, popped from its queue; returns the bytes that went
 * back now (its pages and external values no one held, less the pages the
 * moved entries wrote). */
static size_t evict_seg(struct shrinker_cache *c, struct seg *s,
			enum evict_why why, struct graves *g)
{
	struct shard *sh = &c->shards[s->pin.shard];
	size_t grew = 0, freed = 0;
	uint64_t now = 0;
	shrinker__shard_lock(sh);
	for (unsigned q = 0; q < QUEUES; q++)
		if (sh->open[q] == s)
			sh->open[q] = NULL;
	/* What its live entries hold, their external values included: at most
	 * half of it is moved from a main segment, so that each victim there
	 * frees at least half of what it holds (entries all read lately would
	 * otherwise go round and round, a soft shrink freeing nothing).  A
	 * small segment's entries read there all move to the main queue, as
	 * S3-FIFO has it: a segment full of keys read since they came (a
	 * cache filled before it first evicts) lost half of them. */
	size_t weight = 0, moved = 0;
	for (uint32_t off = SEG_HDR; off < s->used;) {
		struct ent *e = (struct ent *)((unsigned char *)s + off);
		off += (uint32_t)ent_size(e);
		if (e->flags & ENT_DEAD)
			continue;
		weight += ent_weight(e);
		/* The walk below finds each entry's slot in a table far
		 * bigger than the caches: ask for the lines now, all at once
		 * (entries of 100 bytes gave back 1.2 times as fast). */
		__builtin_prefetch(shrinker__bucket_locked(sh, e));
	}
	uint32_t off = SEG_HDR;
	while (off < s->used) {
		struct ent *e = (struct ent *)((unsigned char *)s + off);
		size_t n = ent_size(e);
		off += (uint32_t)n;
		if (e->flags & ENT_DEAD)
			continue;
		struct ent **pp = shrinker__slot_of_locked(sh, e);
		assert(*pp == e); /* live entries are in the table */
		bool expired = shrinker__expired(e, &now);
		if (!expired && why == EVICT_REPLACE && e->freq > 0 &&
		    (s->queue == Q_SMALL || 2 * (moved + ent_weight(e)) <= weight)) {
			struct ent *d = move_room_locked(c, sh, e, n, &grew);
			if (d) {
				moved += ent_weight(e);
				memcpy(d, e, n);
				d->freq = s->queue == Q_SMALL ? 0 : (uint8_t)(e->freq - 1);
				*pp = d;
				/* Its bytes count in d's segment now. */
				s->live -= (uint32_t)n;
				continue;
			}
		}
		if (expired)
			sh->expired++;
		else if (why == EVICT_CLEAR)
			sh->removed++;
		else
			sh->evicted[why == EVICT_REPLACE]++;
		if (!expired && why != EVICT_CLEAR && why != EVICT_REPLACE)
			sh->evicted_bytes += e->klen +
				((e->flags & ENT_EXT) ? ent_ext(e)->len : e->vlen);
		if (s->queue == Q_SMALL && why != EVICT_CLEAR)
			shrinker__ghost_add_locked(sh, e);
		*pp = e->next;
		shrinker__ent_kill_locked(c, e, g);
	}
	shrinker__index_shrunk_locked(c, sh);
	shrinker__shard_unlock(sh);
	for (struct ext *x = g->exts; x; x = x->next)
		freed += x->charge; /* counted once: the caller flushes g per segment */
	if (shrinker__pin_drain(&s->pin)) {
		freed += s->counted;
		s->next = g->segs;
		g->segs = s;
	}
	return freed > grew ? freed - grew : 0;
}

size_t shrinker__evict(struct shrinker_cache *c, size_t target,
		       enum evict_why why, struct seg **keep, size_t *pooled)
{
	size_t freed = 0, kept = 0;
	shrinker__queue_lock(c);
	size_t budget = 2 * (c->nsegs[Q_SMALL] + c->nsegs[Q_MAIN]) + 2;
	shrinker__queue_unlock(c);
	while ((why == EVICT_CLEAR || freed + kept < target) && budget--) {
		struct seg *s = pop_victim(c);
		if (!s)
			break;
		struct graves g = { .pool = pooled != NULL };
		size_t f = evict_seg(c, s, why, &g);
		if (keep && !*keep && g.segs == s) {
			/* Reused by the caller: its pages stay, counted. */
			g.segs = s->next;
			*keep = s;
		}
		size_t p = shrinker__graves_flush(c, &g);
		/* What went to the pool was counted as freed by evict_seg. */
		freed += f > p ? f - p : 0;
		kept += p;
	}
	if (pooled)
		*pooled += kept;
	if (why == EVICT_CLEAR)
		freed += shrinker__pool_drain(c, SIZE_MAX);
	shrinker__size_report(c);
	return freed;
}

_Thread_local struct shrinker_cache *shrinker__shrinking;

/* Shrinker calls less than this apart are one run (the statistics'
 * shrink_began_ns). */
#define RUN_GAP_NS 100000000ull

size_t shrinker__cache_shrink(size_t target, bool hard, void *userdata)
{
	struct shrinker_cache *c = userdata;
	uint64_t now = shrinker__now_ns();
	/* A call after a quiet while begins a run: when pressure reached us. */
	if (now - atomic_exchange(&c->shrink_last_ns, now) >= RUN_GAP_NS)
		atomic_store(&c->shrink_began_ns, now);
	/* What replacements evicted beyond their need goes back now. */
	atomic_store_explicit(&c->credit, 0, memory_order_relaxed);
	struct shrinker_cache *outer = shrinker__shrinking;
	shrinker__shrinking = c;
	/* The pool first: mappings no entry uses. */
	size_t freed = shrinker__pool_drain(c, SIZE_MAX);
	if (freed < target)
		freed += shrinker__evict(c, target - freed,
					 hard ? EVICT_HARD : EVICT_PRESSURE, NULL, NULL);
	shrinker__shrinking = outer;
	return freed;
}

/* Take n bytes from what replacements evicted beyond their need, if
 * that much is there. */
static bool take_credit(struct shrinker_cache *c, size_t n)
{
	size_t have = atomic_load_explicit(&c->credit, memory_order_relaxed);
	while (have >= n)
		if (atomic_compare_exchange_weak_explicit(&c->credit, &have, have - n,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return true;
	return false;
}

/* Count n bytes in the cache's size now if that keeps it within the
 * maximum: the check and the count in one step, so that threads growing
 * at once cannot pass the maximum together. */
static bool prepay(struct shrinker_cache *c, size_t n)
{
	size_t have = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	while (have + n <= c->opt.max_bytes)
		if (atomic_compare_exchange_weak_explicit(&c->bytes, &have, have + n,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return true;
	return false;
}

/* Room for n bytes (make_room); large: for a large value, whose evicted
 * mappings go to the pool, where the caller looks for its own. */
static int room(struct shrinker_cache *c, size_t n, struct seg **keep, bool large)
{
	size_t have = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	size_t pooled = 0;
	struct shrinker_memory m;
	bool measured = false;
	if (c->opt.max_bytes) {
		if (n > c->opt.max_bytes)
			return -E2BIG;
		if (have + n > c->opt.max_bytes)
			shrinker__evict(c, have + n - c->opt.max_bytes, EVICT_REPLACE, keep,
					&pooled);
	}
	/* A value of a MiB or more is checked against the limit itself,
	 * whatever the library would grant (before its first measurement it
	 * grants anything): larger than the limit, it is refused rather than
	 * copied into an OOM kill.  A few small reads, for a MiB copied. */
	if (n >= (1u << 20) && shrinker_get_memory(&m) == 0 && m.limit != UINT64_MAX) {
		measured = true;
		if (n > m.limit)
			return -E2BIG;
	}
	/* Growth the library grants first; refused, what a replacement
	 * evicted beyond its need (the library has not seen that memory go
	 * yet: until it measures again it would refuse, and each refusal
	 * would evict more). */
	if ((large && pooled >= n) || shrinker_may_grow_cache(c->shrinker, n) ||
	    take_credit(c, n))
		return 0;
	/* The large values' mappings it evicts go to the pool, for this
	 * value or the next ones (a segment's eviction freed them, and the
	 * next large values faulted in fresh pages with the credit). */
	size_t freed = shrinker__evict(c, n, EVICT_REPLACE, keep, &pooled);
	/* A large value's room comes from the pool, if the eviction filled
	 * it enough, else from what went back; the rest is credit. */
	size_t need = large && pooled >= n ? 0 : n;
	if (freed > need)
		atomic_fetch_add_explicit(&c->credit, freed - need, memory_order_relaxed);
	if (freed + pooled >= n || !measured)
		return 0; /* made room, or a small step the watermarks absorb */
	/* Refused, and the cache could not make room: a value that the cache
	 * and the headroom together cannot hold would outgrow the limit. */
	if (n > m.headroom + atomic_load_explicit(&c->bytes, memory_order_relaxed))
		return -ENOMEM;
	return 0;
}

int shrinker__make_room(struct shrinker_cache *c, size_t n, struct seg **keep,
			size_t *prepaid)
{
	int r = room(c, n, keep, false);
	/* A new segment's pages are counted when it is granted, not as they
	 * are written: two threads granted at once used to pass the maximum
	 * as they wrote, and the eviction that followed dropped pages that
	 * the next segment faulted in again, a segment per insert or so
	 * (bench/analysis.md).  Not for a segment handed over: its pages
	 * are counted. */
	if (r == 0 && prepaid)
		*prepaid = c->opt.max_bytes && !(keep && *keep) && prepay(c, n) ? n : 0;
	return r;
}

/* Whether a smaller mapping of the pool is grown for a large value: not
 * under ThreadSanitizer, which does not see mremap() move a mapping and
 * takes the next mapping made at the old address for a race with the
 * thread that grew it there. */
#define GROW_POOLED (!SHRINKER_CACHE_TSAN)

int shrinker__large_make(struct shrinker_cache *c, const void *data, size_t len,
			 struct ext **ret)
{
	size_t total = shrinker__page_round(EXT_HDR + len);
	/* A mapping of the pool is in the cache's size already: no room to
	 * ask for, no page to fault in. */
	struct ext *x = shrinker__pool_take(c, total, false);
	if (!x) {
		/* A smaller one grows by the difference only. */
		x = shrinker__pool_take(c, total, GROW_POOLED);
		size_t need = !x ? total : x->charge < total ? total - x->charge : 0;
		int r = need ? room(c, need, NULL, true) : 0;
		if (r < 0) {
			if (x)
				shrinker__pool_return(c, x);
			return r;
		}
		/* The eviction may have pooled one as large, or (the pool
		 * empty before) a smaller one to grow. */
		struct ext *y = shrinker__pool_take(c, total, false);
		if (y && x)
			shrinker__pool_return(c, x);
		if (y)
			x = y;
		else if (!x)
			x = shrinker__pool_take(c, total, GROW_POOLED);
		if (!y && x && x->charge < total) {
			struct ext *g = shrinker__ext_grow(c, x, total);
			if (!g)
				shrinker__pool_return(c, x);
			x = g;
		}
	}
	if (!x) {
		x = shrinker__map(total);
		if (!x)
			return -ENOMEM;
		x->pin.kind = PIN_LARGE;
		x->charge = total;
		atomic_fetch_add_explicit(&c->bytes, total, memory_order_relaxed);
	}
	/* Under a maximum, what went to the pool was counted as room (it
	 * is, for large values), but a value that did not come from it
	 * leaves the pool in the cache's size: the pool goes first. */
	size_t now = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	if (c->opt.max_bytes && now > c->opt.max_bytes)
		shrinker__pool_drain(c, now - c->opt.max_bytes);
	x->len = len;
	memcpy((unsigned char *)x + EXT_HDR, data, len);
	*ret = x;
	return 0;
}
