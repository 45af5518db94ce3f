/* SPDX-License-Identifier: MIT */
/*
 * Slabs for a cache whose entries are small blocks (memory-hog's records,
 * 256-4096 bytes): blocks in size classes, sixteen of a class in a mapping
 * of their own, and entries moved out of sparse slabs so that what a shrink
 * frees goes back to the kernel (slab.c, DESIGN).  Nothing here locks: a
 * pool belongs to one cache and every call is made under that cache's lock.
 */
#ifndef HOG_SLAB_H
#define HOG_SLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "release.h"

#define SLAB_SLOTS 16u

struct slab {
	unsigned char *base;      /* SLAB_SLOTS blocks of the class's size */
	struct slab *prev, *next; /* in its class's list for its free count */
	unsigned cls;
	unsigned nfree;           /* free blocks */
	unsigned pending;         /* blocks handed out and not yet published
				     (slab_publish()): the slab is not
				     emptied while any is */
	uint32_t freemask;        /* bit i: block i is free */
};

struct slab_class {
	/* Slabs by their number of free blocks: [0] full ones,
	 * [SLAB_SLOTS] none (an empty slab is unmapped at once). */
	struct slab *by_free[SLAB_SLOTS + 1];
	size_t free_blocks;
};

struct slab_pool {
	size_t step;              /* class i holds blocks of (i + 1) * step bytes */
	unsigned nclasses;
	struct slab_class *classes;
	size_t free_bytes;        /* in free blocks of mapped slabs */
	size_t mapped_bytes;
};

/* Called for each block a compaction moves, after the copy: the owner
 * points whatever referred to from at to, now in slab to_slab.  Must not
 * call into the pool. */
typedef void slab_moved_fn(void *ctx, void *from, void *to, struct slab *to_slab);

/* A pool of nclasses classes step bytes apart; step * SLAB_SLOTS must be a
 * multiple of the page size.  False if out of memory. */
bool slab_pool_init(struct slab_pool *p, size_t step, unsigned nclasses);
/* Unmaps every slab, whatever its blocks hold. */
void slab_pool_destroy(struct slab_pool *p);

/* The size of the blocks that hold n bytes: a multiple of step, or 0 if n
 * is larger than the largest class. */
size_t slab_block_size(const struct slab_pool *p, size_t n);

/* A block of slab_block_size(n) bytes, pending until slab_publish() (the
 * caller may fill it without the lock; it is neither moved nor unmapped
 * meanwhile); *owner is set to its slab.  NULL if n is too large or no
 * slab could be mapped. */
void *slab_alloc(struct slab_pool *p, size_t n, struct slab **owner);
/* The block is in use and may be moved by a compaction from now on. */
void slab_publish(struct slab *s);
/* Give a published block back; a slab left empty is unmapped, through rb
 * when given (release.h: the caller flushes it). */
void slab_free(struct slab_pool *p, struct slab *s, void *block,
	       struct release_batch *rb);

/* In class cls, from `trigger` free blocks on, empty the sparsest slab
 * into the fullest ones (moved() fixes the references) and unmap it, until
 * fewer than SLAB_SLOTS blocks are free or no slab can be emptied; trigger
 * below SLAB_SLOTS counts as SLAB_SLOTS.  What it unmapped (through rb
 * when given) shows in mapped_bytes and free_bytes. */
void slab_compact(struct slab_pool *p, unsigned cls, size_t trigger,
		  slab_moved_fn *moved, void *ctx, struct release_batch *rb);
#endif
