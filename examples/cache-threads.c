/* A server-style cache: worker threads answer requests for documents that
 * are costly to make (parsed, rendered: objects the program owns), through
 * one shared cache with no size to set.  get_or_load() makes each missing
 * document once, however many workers ask for it at the same time; the
 * cache counts the cost each document declares, and destroys documents
 * when it evicts them and no worker still holds them.
 *   cc cache-threads.c $(pkg-config --cflags --libs libshrinker) -o cache-threads
 *   SHRINKER_LIMIT=64M ./cache-threads --seconds 2 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <shrinker-cache.h>

#define WORKERS 4
#define DOCUMENTS 20000

struct document {
	unsigned id;
	size_t size;
	unsigned char *body;
};

static struct shrinker_cache *cache;
static atomic_bool stop;
static atomic_ulong made, destroyed, served;

static void document_free(void *object, void *userdata)
{
	struct document *d = object;

	(void)userdata;
	free(d->body);
	free(d);
	atomic_fetch_add(&destroyed, 1);
}

/* The costly part, done once per missing key. */
static int document_make(const void *key, size_t klen, struct shrinker_cache_loaded *out,
			 void *userdata)
{
	struct document *d = malloc(sizeof(*d));
	unsigned id;

	(void)klen, (void)userdata;
	if (!d)
		return -12; /* -ENOMEM, to every caller waiting for this key */
	memcpy(&id, key, sizeof(id));
	d->id = id;
	d->size = 2048 + id % 16 * 1024;
	d->body = malloc(d->size);
	if (!d->body) {
		free(d);
		return -12;
	}
	memset(d->body, (int)id, d->size);
	out->object = d;
	out->cost = sizeof(*d) + d->size; /* what the document takes */
	atomic_fetch_add(&made, 1);
	return 0;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!atomic_load(&stop)) {
		/* Skewed requests: a few documents are asked for often. */
		double u = (double)rand_r(&seed) / RAND_MAX;
		unsigned id = (unsigned)(u * u * u * DOCUMENTS);
		struct shrinker_cache_value v;

		if (shrinker_cache_get_or_load(cache, &id, sizeof(id), document_make, NULL, &v) < 0)
			continue;
		struct document *d = v.object; /* held: not destroyed while we use it */
		if (d->id != id || d->body[d->size - 1] != (unsigned char)id)
			abort();
		shrinker_cache_release(cache, &v);
		atomic_fetch_add(&served, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct shrinker_cache_options o = { .size = sizeof(o), .destroy = document_free };
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	pthread_t t[WORKERS];
	double seconds = argc > 2 && !strcmp(argv[1], "--seconds") ? atof(argv[2]) : 2;

	if (shrinker_cache_new(&cache, "documents", &o) < 0)
		return 1;
	for (unsigned i = 0; i < WORKERS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	nanosleep(&(struct timespec){ (time_t)seconds,
				      (long)((seconds - (time_t)seconds) * 1e9) }, NULL);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	shrinker_cache_get_stats(cache, &st);
	printf("served %lu requests, made %lu documents, %llu in the cache (%llu KiB), "
	       "hit ratio %.2f, %llu waited for another worker's load\n",
	       atomic_load(&served), atomic_load(&made), (unsigned long long)st.entries,
	       (unsigned long long)st.bytes >> 10,
	       (double)st.hits / (double)(st.hits + st.misses ? st.hits + st.misses : 1),
	       (unsigned long long)st.load_waits);
	if (shrinker_cache_free(cache) < 0)
		return 1;
	printf("destroyed %lu of %lu documents made\n", atomic_load(&destroyed), atomic_load(&made));
	return atomic_load(&destroyed) == atomic_load(&made) ? 0 : 1;
}
