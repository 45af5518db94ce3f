/* A cache with no size setting: it grows while the library says there is
 * room, and gives back what the library asks for when memory gets tight.
 *   cc own.c $(pkg-config --cflags --libs libshrinker) -o own */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <shrinker.h>

struct entry { struct entry *next; char value[256 << 10]; }; /* malloc maps it: a free goes back at once */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;      /* guards cache and n */
static struct entry *cache;
static size_t n;
static struct shrinker *s;

static size_t shrink(size_t target, bool hard, void *userdata) /* on the library's thread */
{
	size_t freed = 0;

	(void)hard, (void)userdata;
	pthread_mutex_lock(&lock);
	for (struct entry *e; freed < target && (e = cache); freed += sizeof(*e), n--)
		cache = e->next, free(e);
	shrinker_set_size(s, n * sizeof(struct entry));
	pthread_mutex_unlock(&lock);
	return freed; /* bytes really freed */
}

int main(void)
{
	if (shrinker_register(&s, "cache", shrink, NULL, 0) < 0)
		return 1;
	for (int i = 0; i < 1000; i++) { /* the program's work: each miss cached while there is room */
		struct entry *e = shrinker_may_grow_cache(s, sizeof(*e)) ? malloc(sizeof(*e)) : NULL;

		if (!e)
			continue;
		memset(e->value, i, sizeof(e->value));
		pthread_mutex_lock(&lock);
		e->next = cache, cache = e, n++;
		shrinker_set_size(s, n * sizeof(*e));
		pthread_mutex_unlock(&lock);
	}
	printf("cached %zu MiB\n", n * sizeof(struct entry) >> 20);
	return shrinker_unregister(s) < 0;
}
