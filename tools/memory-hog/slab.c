/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: where a cache of small entries keeps them, so that what it frees
 * goes back to the kernel.  In malloc's heap, a shrink that evicts the
 * least recently used half of memory-hog's records frees blocks all over
 * it, and the pages that keep one live entry stay resident: 6-8 MiB above
 * the cache after the bench's squeeze, 9-14 MiB after `make demo`'s take,
 * memory the caches could not use.  malloc cannot move a block; the cache,
 * which knows every pointer to its entries, can.  So the blocks come in
 * classes `step` bytes apart, SLAB_SLOTS of a class in a mapping of their
 * own (a slab: (class + 1) pages at step 256, no tail wasted), and
 * slab_compact() moves the entries of the sparsest slab into the free
 * blocks of the fullest ones and unmaps it, as long as a class has a whole
 * slab's worth of blocks free.  After a shrink's compaction fewer than
 * SLAB_SLOTS blocks a class are free, so the bytes a shrink frees are the
 * bytes the process gives back (less than a slab a class short).  A new
 * block comes from the fullest slab that has one, so the sparse ones keep
 * only entries that are getting older, and replacements at a steady size
 * reuse free blocks rather than fault fresh pages in.  Copying is cheap
 * next to the page faults it saves: emptying a slab moves at most fifteen
 * entries.  A slab is unmapped the moment it is empty, or queued in the
 * caller's batch to be unmapped with the others (release.c).
 *
 * A block handed out is pending until the owner publishes it (it fills it
 * without its lock); a slab with a pending block is never a compaction's
 * source, so neither moved nor unmapped under the filler.  The pool has no
 * lock of its own: it belongs to one cache, whose lock covers every call.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "slab.h"

#define ALL_FREE ((uint32_t)((1ull << SLAB_SLOTS) - 1))

static size_t block_bytes(const struct slab_pool *p, unsigned cls)
{
	return (cls + 1) * p->step;
}

static void list_del(struct slab_class *k, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		k->by_free[s->nfree] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void list_add(struct slab_class *k, struct slab *s)
{
	s->prev = NULL;
	s->next = k->by_free[s->nfree];
	if (s->next)
		s->next->prev = s;
	k->by_free[s->nfree] = s;
}

bool slab_pool_init(struct slab_pool *p, size_t step, unsigned nclasses)
{
	memset(p, 0, sizeof(*p));
	p->step = step;
	p->nclasses = nclasses;
	p->classes = calloc(nclasses, sizeof(*p->classes));
	return p->classes != NULL;
}

/* Unmap s, through rb when given (release.h). */
static void unmap_slab(struct slab_pool *p, struct slab *s,
		       struct release_batch *rb)
{
	struct slab_class *k = &p->classes[s->cls];
	size_t bytes = SLAB_SLOTS * block_bytes(p, s->cls);

	list_del(k, s);
	k->free_blocks -= s->nfree;
	p->free_bytes -= s->nfree * block_bytes(p, s->cls);
	p->mapped_bytes -= bytes;
	release_add(rb, s->base, bytes);
	free(s);
}

void slab_pool_destroy(struct slab_pool *p)
{
	unsigned cls, f;

	for (cls = 0; p->classes && cls < p->nclasses; cls++)
		for (f = 0; f <= SLAB_SLOTS; f++)
			while (p->classes[cls].by_free[f])
				unmap_slab(p, p->classes[cls].by_free[f], NULL);
	free(p->classes);
	p->classes = NULL;
}

size_t slab_block_size(const struct slab_pool *p, size_t n)
{
	size_t k = (n + p->step - 1) / p->step;

	if (!k)
		k = 1;
	return k > p->nclasses ? 0 : k * p->step;
}

static struct slab *map_slab(struct slab_pool *p, unsigned cls)
{
	size_t bytes = SLAB_SLOTS * block_bytes(p, cls);
	struct slab *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = mapped_alloc(bytes);
	if (!s->base) {
		free(s);
		return NULL;
	}
	s->cls = cls;
	s->nfree = SLAB_SLOTS;
	s->freemask = ALL_FREE;
	list_add(&p->classes[cls], s);
	p->classes[cls].free_blocks += SLAB_SLOTS;
	p->free_bytes += bytes;
	p->mapped_bytes += bytes;
	return s;
}

/* The fullest slab of class cls with a free block, other than avoid. */
static struct slab *fullest(struct slab_pool *p, unsigned cls, const struct slab *avoid)
{
	struct slab_class *k = &p->classes[cls];
	unsigned f;

	for (f = 1; f <= SLAB_SLOTS; f++) {
		struct slab *s;

		for (s = k->by_free[f]; s; s = s->next)
			if (s != avoid)
				return s;
	}
	return NULL;
}

/* Take a free block of s (which has one). */
static void *take(struct slab_pool *p, struct slab *s)
{
	struct slab_class *k = &p->classes[s->cls];
	unsigned i = (unsigned)__builtin_ctz(s->freemask);

	list_del(k, s);
	s->freemask &= ~(1u << i);
	s->nfree--;
	list_add(k, s);
	k->free_blocks--;
	p->free_bytes -= block_bytes(p, s->cls);
	return s->base + i * block_bytes(p, s->cls);
}

void *slab_alloc(struct slab_pool *p, size_t n, struct slab **owner)
{
	size_t size = slab_block_size(p, n);
	unsigned cls;
	struct slab *s;

	if (!size)
		return NULL;
	cls = (unsigned)(size / p->step - 1);
	s = fullest(p, cls, NULL);
	if (!s)
		s = map_slab(p, cls);
	if (!s)
		return NULL;
	s->pending++;
	*owner = s;
	return take(p, s);
}

void slab_publish(struct slab *s)
{
	s->pending--;
}

/* Mark block i of s free; the caller unmaps s if that emptied it. */
static void release(struct slab_pool *p, struct slab *s, unsigned i)
{
	struct slab_class *k = &p->classes[s->cls];

	list_del(k, s);
	s->freemask |= 1u << i;
	s->nfree++;
	list_add(k, s);
	k->free_blocks++;
	p->free_bytes += block_bytes(p, s->cls);
}

void slab_free(struct slab_pool *p, struct slab *s, void *block,
	       struct release_batch *rb)
{
	release(p, s, (unsigned)(((unsigned char *)block - s->base) /
				 block_bytes(p, s->cls)));
	if (s->nfree == SLAB_SLOTS)
		unmap_slab(p, s, rb);
}

/* The sparsest slab of class cls that holds a block and none pending. */
static struct slab *sparsest(struct slab_pool *p, unsigned cls)
{
	struct slab_class *k = &p->classes[cls];
	unsigned f;

	for (f = SLAB_SLOTS - 1; f >= 1; f--) {
		struct slab *s;

		for (s = k->by_free[f]; s; s = s->next)
			if (!s->pending)
				return s;
	}
	return NULL;
}

void slab_compact(struct slab_pool *p, unsigned cls, size_t trigger,
		  slab_moved_fn *moved, void *ctx, struct release_batch *rb)
{
	struct slab_class *k;
	size_t size;

	if (cls >= p->nclasses)
		return;
	k = &p->classes[cls];
	size = block_bytes(p, cls);
	if (k->free_blocks < trigger)
		return;
	/* With SLAB_SLOTS blocks free in the class, the free blocks outside
	 * any one slab are at least the blocks it holds: there is room. */
	while (k->free_blocks >= SLAB_SLOTS) {
		struct slab *src = sparsest(p, cls);
		uint32_t used;

		if (!src)
			break;
		used = ~src->freemask & ALL_FREE;
		while (used) {
			unsigned i = (unsigned)__builtin_ctz(used);
			struct slab *dst = fullest(p, cls, src);
			unsigned char *to;

			if (!dst)
				return; /* not reached */
			used &= used - 1;
			to = take(p, dst);
			memcpy(to, src->base + i * size, size);
			moved(ctx, src->base + i * size, to, dst);
			release(p, src, i);
		}
		unmap_slab(p, src, rb);
	}
}
