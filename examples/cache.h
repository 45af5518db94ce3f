/*
 * The tiny cache the examples share: a list of fixed-size blocks under a
 * lock, that can fill itself, free its oldest blocks, and say its size.
 * (Header-only so that each example stays one file to compile.)
 */
#ifndef EXAMPLE_CACHE_H
#define EXAMPLE_CACHE_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct block {
	struct block *next;
	char data[64 * 1024 - sizeof(struct block *)];
};

struct cache {
	pthread_mutex_t lock;
	struct block *oldest, *newest;
	size_t bytes;
};

#define CACHE_INIT { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0 }

static inline void cache_fill(struct cache *c, size_t bytes)
{
	while (c->bytes < bytes) {
		struct block *b = malloc(sizeof(*b));

		if (!b)
			break;
		memset(b->data, 1, sizeof(b->data));
		b->next = NULL;
		pthread_mutex_lock(&c->lock);
		if (c->newest)
			c->newest->next = b;
		else
			c->oldest = b;
		c->newest = b;
		c->bytes += sizeof(*b);
		pthread_mutex_unlock(&c->lock);
	}
}

/* Free the oldest blocks until target bytes are freed; returns the bytes. */
static inline size_t cache_free_oldest(struct cache *c, size_t target)
{
	size_t freed = 0;

	pthread_mutex_lock(&c->lock);
	while (freed < target && c->oldest) {
		struct block *b = c->oldest;

		c->oldest = b->next;
		if (!c->oldest)
			c->newest = NULL;
		free(b);
		freed += sizeof(*b);
		c->bytes -= sizeof(*b);
	}
	pthread_mutex_unlock(&c->lock);
	return freed;
}

#endif
