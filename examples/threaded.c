/*
 * A threaded program with two caches and the native API: each cache has its
 * own lock and its own shrinker, called on the library's thread; a target is
 * split between them in proportion to what each holds.  Build:
 *   cc threaded.c $(pkg-config --cflags --libs libshrinker)
 */
#include <pthread.h>
#include <stdio.h>

#include <shrinker.h>

#include "cache.h"

struct named_cache {
	struct cache c;
	struct shrinker *shrinker;
	const char *name;
	size_t asked;
};

static struct named_cache small = { CACHE_INIT, NULL, "small", 0 };
static struct named_cache big = { CACHE_INIT, NULL, "big", 0 };

static size_t shrink(size_t target, bool hard, void *userdata)
{
	struct named_cache *nc = userdata;
	size_t freed = cache_free_oldest(&nc->c, target);

	nc->asked += target;
	shrinker_set_size(nc->shrinker, nc->c.bytes);
	printf("%s: asked %zu, %s, freed %zu\n", nc->name, target,
	       hard ? "hard" : "soft", freed);
	return freed;
}

static void *filler(void *arg)
{
	struct named_cache *nc = arg;

	cache_fill(&nc->c, nc == &big ? 48 << 20 : 16 << 20);
	shrinker_set_size(nc->shrinker, nc->c.bytes);
	return NULL;
}

int main(void)
{
	pthread_t t1, t2;
	size_t freed = 0;

	if (shrinker_register(&small.shrinker, small.name, shrink, &small, 0) < 0 ||
	    shrinker_register(&big.shrinker, big.name, shrink, &big, 0) < 0)
		return 1;
	pthread_create(&t1, NULL, filler, &small);
	pthread_create(&t2, NULL, filler, &big);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);

	/* "Drop 16 MiB of caches", and wait until it is done. */
	shrinker_request_reclaim(16 << 20, SHRINKER_WAIT, &freed);
	printf("freed %zu bytes: small was asked %zu, big %zu (1:3, as they hold)\n",
	       freed, small.asked, big.asked);
	shrinker_unregister(small.shrinker);
	shrinker_unregister(big.shrinker);
	return freed >= (16u << 20) && big.asked > 2 * small.asked ? 0 : 1;
}
