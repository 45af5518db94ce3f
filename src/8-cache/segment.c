/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: the container's memory.  A segment is a 256 KiB mapping, aligned
 * to its size (so that an entry finds its segment from its own address),
 * into which a shard appends entries; a value too large for a segment is
 * an external value in a mapping of its own, and a program's object gets a
 * small external record.  Memory goes back to the kernel only here, in
 * whole mappings: the pages of a segment that eviction emptied, and a
 * large value that died, after the lock that let go of them (graves),
 * their pages dropped in one batch where the kernel allows it; a large
 * value's mapping is unmapped, a segment's address space kept for the
 * next segment (up to FREE_SEGS_MAX of them): no mmap() or munmap(),
 * which take the process's memory map for writing (the shrinker's waited
 * there behind the threads' own mappings and faults), is made for it.
 * The exception is the pool: the mappings of large values that a
 * replacement evicted are kept, pages and all, up to a 16th of the cache
 * (at least 2 MiB, at most 64), and the
 * next large values are copied into them (a fresh mapping faults in every
 * page, which took most of a busy cache's time); the shrinker empties the
 * pool first.
 * Each segment and external value has a pin word, the count of the values
 * held in it plus PIN_DRAIN once it left the cache; the one who sees the
 * count reach zero with PIN_DRAIN set frees it, the evictor or the last
 * release, exactly one of them (both change the word with one atomic
 * operation and look at what it was).  The cache's size (bytes) changes
 * here too: segments count the pages their entries have written, external
 * values their charge, when made and when freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "8-cache/private.h"

_Thread_local unsigned shrinker__shard_held, shrinker__queue_held;

void shrinker__shard_lock(struct shard *sh)
{
	pthread_mutex_lock(&sh->shard_lock);
	shrinker__shard_held++;
}

void shrinker__shard_unlock(struct shard *sh)
{
	shrinker__shard_held--;
	pthread_mutex_unlock(&sh->shard_lock);
}

void shrinker__queue_lock(struct shrinker_cache *c)
{
	pthread_mutex_lock(&c->queue_lock);
	shrinker__queue_held++;
}

void shrinker__queue_unlock(struct shrinker_cache *c)
{
	shrinker__queue_held--;
	pthread_mutex_unlock(&c->queue_lock);
}

size_t shrinker__page_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (n + page - 1) & ~(page - 1);
}

void *shrinker__map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void shrinker__unmap(void *p, size_t len)
{
	int saved = errno;
	munmap(p, len);
	errno = saved;
}

/* A segment aligned to SEG_BYTES: one whose pages went back (its address
 * space kept: no mmap(), whose write lock the threads' faults and the
 * shrinker's munmap()s waited for), or a new mapping of twice the size
 * with the ends cut off.  Nothing of it is resident until entries are
 * written (its pages read as zeros). */
struct seg *shrinker__seg_map(struct shrinker_cache *c, unsigned shard)
{
	struct seg *s = NULL;
	shrinker__queue_lock(c);
	if (c->nfree_segs)
		s = c->free_segs[--c->nfree_segs];
	shrinker__queue_unlock(c);
	if (!s) {
		int saved = errno;
		unsigned char *p = shrinker__map(2 * (size_t)SEG_BYTES);
		if (!p)
			return NULL;
		uintptr_t a = ((uintptr_t)p + SEG_BYTES - 1) & ~(uintptr_t)(SEG_BYTES - 1);
		size_t head = a - (uintptr_t)p;
		if (head)
			munmap(p, head);
		if (SEG_BYTES - head)
			munmap((unsigned char *)a + SEG_BYTES, SEG_BYTES - head);
		errno = saved;
		s = (struct seg *)a;
	}
	s->pin.kind = PIN_SEG;
	s->pin.shard = shard;
	s->used = SEG_HDR;
	return s;
}

void shrinker__size_report(struct shrinker_cache *c)
{
	shrinker_set_size(c->shrinker, atomic_load_explicit(&c->bytes, memory_order_relaxed));
}

static void bytes_add(struct shrinker_cache *c, size_t n)
{
	if (n)
		atomic_fetch_add_explicit(&c->bytes, n, memory_order_relaxed);
}

void shrinker__bytes_sub(struct shrinker_cache *c, size_t n)
{
	if (n)
		atomic_fetch_sub_explicit(&c->bytes, n, memory_order_relaxed);
}

/* Link s at the head (the newest end) of queue q. */
void shrinker__queue_add_locked(struct shrinker_cache *c, struct seg *s,
				unsigned q)
{
	SHRINKER__ASSERT_SHARD_HELD();
	shrinker__queue_lock(c);
	s->queue = (uint8_t)q;
	s->queued = 1;
	s->prev = NULL;
	s->next = c->head[q];
	if (c->head[q])
		c->head[q]->prev = s;
	else
		c->tail[q] = s;
	c->head[q] = s;
	c->nsegs[q]++;
	shrinker__queue_unlock(c);
}

struct ent *shrinker__seg_append_locked(struct shrinker_cache *c,
					struct shard *sh, unsigned q, size_t n,
					size_t charge, size_t *grew)
{
	SHRINKER__ASSERT_SHARD_HELD();
	struct seg *s = sh->open[q];
	uint32_t kib = charge / 1024 > SEG_WEIGHT_KIB ? SEG_WEIGHT_KIB : (uint32_t)(charge / 1024);
	if (s && (s->used + n > SEG_BYTES ||
		  (s->weight && s->weight + kib > SEG_WEIGHT_KIB))) {
		sh->open[q] = NULL; /* full: it stays queued */
		/* What segments write when full, on average: what the next
		 * one asks for (a segment full of large values' weight writes
		 * a page or two of its 256 KiB). */
		size_t avg = atomic_load_explicit(&c->seg_pages, memory_order_relaxed);
		atomic_store_explicit(&c->seg_pages, avg - avg / 8 + s->counted / 8,
				      memory_order_relaxed);
		s = NULL;
	}
	if (!s) {
		if (!sh->spare)
			return NULL;
		s = sh->spare;
		sh->spare = NULL;
		shrinker__queue_add_locked(c, s, q);
		sh->open[q] = s;
	}
	struct ent *e = (struct ent *)((unsigned char *)s + s->used);
	s->used += (uint32_t)n;
	s->live += (uint32_t)n;
	s->weight += kib;
	size_t pages = shrinker__page_round(s->used);
	if (pages > s->counted) {
		bytes_add(c, pages - s->counted);
		*grew += pages - s->counted;
		s->counted = (uint32_t)pages;
	}
	return e;
}

void shrinker__seg_reuse_locked(struct shrinker_cache *c, struct shard *sh,
				struct seg *s)
{
	SHRINKER__ASSERT_SHARD_HELD();
	/* No one holds it and nothing refers to it: start it afresh. */
	atomic_store_explicit(&s->pin.word, 0, memory_order_relaxed);
	s->pin.shard = (uint32_t)(sh - c->shards);
	s->used = SEG_HDR;
	s->live = 0;
	s->weight = 0;
	s->prev = s->next = NULL;
	sh->spare = s;
}

bool shrinker__expired(const struct ent *e, uint64_t *now)
{
	if (!e->expire_ns)
		return false;
	if (!*now)
		*now = shrinker__now_ns();
	return *now >= e->expire_ns;
}

bool shrinker__pin_drain(struct pin *p)
{
	uint64_t old = atomic_fetch_or_explicit(&p->word, PIN_DRAIN,
						memory_order_acq_rel);
	return (old & PIN_COUNT) == 0;
}

void shrinker__ent_kill_locked(struct shrinker_cache *c, struct ent *e,
			       struct graves *g)
{
	SHRINKER__ASSERT_SHARD_HELD();
	struct shard *sh = &c->shards[ent_seg(e)->pin.shard];
	e->flags |= ENT_DEAD;
	ent_seg(e)->live -= (uint32_t)ent_size(e);
	sh->entries--;
	if (e->flags & ENT_EXT) {
		struct ext *x = ent_ext(e);
		sh->data_bytes -= e->klen + x->len;
		if (shrinker__pin_drain(&x->pin)) {
			x->next = g->exts;
			g->exts = x;
		}
	} else {
		sh->data_bytes -= e->klen + e->vlen;
	}
}

struct ext *shrinker__ext_object(void *object, size_t cost)
{
	struct ext *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->pin.kind = PIN_OBJECT;
	x->object = object;
	x->len = cost;
	/* The record, and the cost the program declared (saturating). */
	x->charge = cost > SIZE_MAX - 64 ? SIZE_MAX : cost + 64;
	return x;
}

/* counted bytes of the cache's size went back to the kernel. */
static void gone_back(struct shrinker_cache *c, size_t counted)
{
	shrinker__bytes_sub(c, counted);
	atomic_fetch_add_explicit(&c->given_back, counted, memory_order_relaxed);
}

/* A mapping the cache let go of: len bytes at p, counted bytes of them in
 * its size. */
static void mapping_free(struct shrinker_cache *c, void *p, size_t len, size_t counted)
{
	shrinker__unmap(p, len);
	gone_back(c, counted);
}

/* A segment the cache let go of: its pages go back (dropped already, if
 * dropped), its address space to the free segments while there is room. */
static void seg_free(struct shrinker_cache *c, struct seg *s, size_t counted, bool dropped)
{
	bool kept = false;
	if (!dropped) {
		int saved = errno;
		dropped = madvise(s, SEG_BYTES, MADV_DONTNEED) == 0;
		errno = saved;
	}
	if (dropped) {
		shrinker__queue_lock(c);
		if (c->nfree_segs < FREE_SEGS_MAX) {
			c->free_segs[c->nfree_segs++] = s;
			kept = true;
		}
		shrinker__queue_unlock(c);
	}
	if (kept)
		gone_back(c, counted);
	else
		mapping_free(c, s, SEG_BYTES, counted);
}

void shrinker__free_segs_unmap(struct shrinker_cache *c)
{
	for (unsigned i = 0; i < c->nfree_segs; i++)
		shrinker__unmap(c->free_segs[i], SEG_BYTES);
	c->nfree_segs = 0;
}

/* Free an external value no one holds; the caller holds no lock of the
 * cache (destroy is the program's code).  Its charge leaves the size. */
void shrinker__ext_free(struct shrinker_cache *c, struct ext *x)
{
	size_t charge = x->charge;
	if (x->pin.kind == PIN_LARGE) {
		mapping_free(c, x, charge, charge);
		return;
	}
	void *object = x->object;
	free(x);
	shrinker__destroy(c, object);
	shrinker__bytes_sub(c, charge);
	atomic_fetch_add_explicit(&c->given_back, charge, memory_order_relaxed);
}

void shrinker__destroy(struct shrinker_cache *c, void *object)
{
	if (!c->opt.destroy)
		return;
	atomic_fetch_add(&c->callbacks, 1);
	c->opt.destroy(object, c->opt.userdata);
	atomic_fetch_sub(&c->callbacks, 1);
}

/* What the pool may hold, for a cache of bytes (POOL_SHARE).  cachebench's
 * large values (64-256 KiB) in a cache of 150-200 MiB: with 2 MiB, 72 %
 * fitted a pooled mapping, 23 % grew one and a fifth of the fits cut off
 * a tail; with a 16th, 84 %, 14 % and a seventh, the pool mostly under 4
 * MiB, and the cache's faults while a competitor took half the limit fell
 * from 8.6-9.4 k to 4.5-5.9 k (bench/analysis.md). */
static size_t pool_room(size_t bytes)
{
	size_t room = bytes / POOL_SHARE;
	return room < POOL_MIN ? POOL_MIN : room > POOL_MAX ? POOL_MAX : room;
}

/* Into the pool, if it has room: x, a large value's mapping that no entry
 * points to and no one holds. */
static bool pool_put(struct shrinker_cache *c, struct ext *x)
{
	bool ok;
	size_t room = pool_room(atomic_load_explicit(&c->bytes, memory_order_relaxed));
	shrinker__queue_lock(c);
	ok = c->pool_bytes + x->charge <= room;
	if (ok) {
		x->next = c->pool;
		c->pool = x;
		c->pool_bytes += x->charge;
	}
	shrinker__queue_unlock(c);
	return ok;
}

struct ext *shrinker__pool_take(struct shrinker_cache *c, size_t total, bool any)
{
	struct ext **best = NULL, **largest = NULL;
	shrinker__queue_lock(c);
	for (struct ext **pp = &c->pool; *pp; pp = &(*pp)->next) {
		size_t charge = (*pp)->charge;
		if (charge >= total && (!best || charge < (*best)->charge))
			best = pp;
		if (!largest || charge > (*largest)->charge)
			largest = pp;
	}
	if (!best && any)
		best = largest;
	struct ext *x = best ? *best : NULL;
	if (x) {
		*best = x->next;
		c->pool_bytes -= x->charge;
	}
	shrinker__queue_unlock(c);
	if (!x)
		return NULL;
	if (x->charge > total && x->charge - total > total / 4) {
		/* Much larger than asked: its tail goes back. */
		mapping_free(c, (unsigned char *)x + total, x->charge - total, x->charge - total);
		x->charge = total;
	}
	atomic_store_explicit(&x->pin.word, 0, memory_order_relaxed);
	x->next = NULL;
	return x;
}

struct ext *shrinker__ext_grow(struct shrinker_cache *c, struct ext *x, size_t total)
{
	/* In place or moved, its pages with it: only the new tail is
	 * faulted in. */
	int saved = errno;
	void *p = mremap(x, x->charge, total, MREMAP_MAYMOVE);
	errno = saved;
	if (p == MAP_FAILED)
		return NULL;
	x = p;
	bytes_add(c, total - x->charge);
	x->charge = total;
	return x;
}

void shrinker__pool_return(struct shrinker_cache *c, struct ext *x)
{
	struct graves g = { .exts = x, .pool = true };
	x->next = NULL;
	shrinker__graves_flush(c, &g);
}

/* Drop the pages of n mappings in one system call where the kernel allows
 * it (process_madvise() on ourselves, Linux 6.13 and later): one TLB
 * flush on every CPU running our threads for the batch, instead of one
 * per munmap() after it; true if all of them went.  A kernel that refuses
 * is not asked again; the munmap()s and madvise()s that follow give the
 * pages back either way. */
static atomic_bool batch_ok = true;

static size_t iov_bytes(const struct iovec *v, unsigned n)
{
	size_t sum = 0;
	for (unsigned i = 0; i < n; i++)
		sum += v[i].iov_len;
	return sum;
}

static bool drop_batch(struct iovec *v, unsigned n)
{
#if defined(SYS_pidfd_open) && defined(SYS_process_madvise)
	int saved = errno, fd;
	bool ok;

	if (n < 2 || !atomic_load_explicit(&batch_ok, memory_order_relaxed))
		return false;
	/* Opened each time: a descriptor kept across fork() would name the
	 * parent. */
	fd = (int)syscall(SYS_pidfd_open, getpid(), 0u);
	ok = fd >= 0 &&
	     syscall(SYS_process_madvise, fd, v, (size_t)n, MADV_DONTNEED, 0u) == (ssize_t)iov_bytes(v, n);
	if (!ok)
		atomic_store_explicit(&batch_ok, false, memory_order_relaxed);
	if (fd >= 0)
		close(fd);
	errno = saved;
	return ok;
#else
	(void)v, (void)n;
	return false;
#endif
}

#define BATCH 64u

/* Let go of a list of segments and one of large values (both linked by
 * next), n at a time, their pages dropped in one batch first: the large
 * values unmapped, the segments to the free ones (seg_free()). */
static void free_all(struct shrinker_cache *c, struct seg *segs, struct ext *exts)
{
	struct iovec v[BATCH];
	size_t counted[BATCH];

	while (segs || exts) {
		unsigned n = 0, nsegs;
		/* The mappings' sizes are read before their pages are
		 * dropped (the headers are in them). */
		for (; n < BATCH && segs; segs = segs->next) {
			v[n] = (struct iovec){ .iov_base = segs, .iov_len = SEG_BYTES };
			counted[n++] = segs->counted;
		}
		nsegs = n;
		for (; n < BATCH && exts; exts = exts->next) {
			v[n] = (struct iovec){ .iov_base = exts, .iov_len = exts->charge };
			counted[n++] = exts->charge;
		}
		bool dropped = drop_batch(v, n);
		for (unsigned i = 0; i < n; i++) {
			if (i < nsegs)
				seg_free(c, v[i].iov_base, counted[i], dropped);
			else
				mapping_free(c, v[i].iov_base, v[i].iov_len, counted[i]);
		}
	}
}

size_t shrinker__pool_drain(struct shrinker_cache *c, size_t at_least)
{
	struct ext *x = NULL;
	size_t bytes = 0;
	shrinker__queue_lock(c);
	while (c->pool && bytes < at_least) {
		struct ext *y = c->pool;
		c->pool = y->next;
		c->pool_bytes -= y->charge;
		bytes += y->charge;
		y->next = x;
		x = y;
	}
	shrinker__queue_unlock(c);
	if (x) {
		free_all(c, NULL, x);
		shrinker__size_report(c);
	}
	return bytes;
}

size_t shrinker__graves_flush(struct shrinker_cache *c, struct graves *g)
{
	bool any = g->segs || g->exts;
	struct ext *large = NULL;
	size_t pooled = 0;

	/* Objects are destroyed; large values pooled or unmapped with the
	 * segments. */
	while (g->exts) {
		struct ext *x = g->exts;
		g->exts = x->next;
		/* Read before the pool has it: another thread may take it
		 * from there at once, and grow it elsewhere (mremap()). */
		size_t charge = x->charge;
		if (x->pin.kind != PIN_LARGE) {
			shrinker__ext_free(c, x);
		} else if (g->pool && pool_put(c, x)) {
			pooled += charge;
		} else {
			x->next = large;
			large = x;
		}
	}
	free_all(c, g->segs, large);
	g->segs = NULL;
	if (any)
		shrinker__size_report(c);
	return pooled;
}

SHRINKER_EXPORT int shrinker_cache_release(struct shrinker_cache *c,
					   struct shrinker_cache_value *v)
{
	if (!c || !v || !v->priv[0])
		return -EINVAL;
	struct pin *p = v->priv[0];
	struct shard *sh = v->priv[1];
	memset(v, 0, sizeof(*v));
	atomic_fetch_add_explicit(&sh->released, 1, memory_order_release);
	uint64_t old = atomic_fetch_sub_explicit(&p->word, 1, memory_order_acq_rel);
	if (old != (PIN_DRAIN | 1))
		return 0;
	/* The last holder of something that left the cache. */
	if (p->kind == PIN_SEG) {
		seg_free(c, (struct seg *)p, ((struct seg *)p)->counted, false);
	} else {
		shrinker__ext_free(c, (struct ext *)p);
	}
	shrinker__size_report(c);
	return 0;
}
