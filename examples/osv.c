/*
 * An OSv program, written as OSv's documentation shows: it declares the
 * prototype itself and includes none of libshrinker's headers.  Its cache
 * grows by 1 MiB blocks; the shrinker frees from the head of the list.
 * Build: cc osv.c $(pkg-config --cflags --libs libshrinker)
 * Run:   SHRINKER_LIMIT=64M ./osv   (the library's budget makes the pressure)
 * The tests build it against libshrinker.a and libshrinker.so.  Prints "called target=<n> hard=<0|1> freed=<n>" for each call
 * and "cache=<bytes>" at the end; exits 0 if its function was called.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *osv_register_shrinker(const char *name,
				   size_t (*func)(size_t target, bool hard));

#define BLOCK (1 << 20)

struct block {
	struct block *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *head, *tail;
static size_t cache, peak;
static int calls;

static size_t shrinker_function(size_t target, bool hard)
{
	size_t freed = 0;

	pthread_mutex_lock(&lock);
	while (freed < target && head) {
		struct block *b = head;

		head = b->next;
		if (!head)
			tail = NULL;
		free(b);
		freed += BLOCK;
		cache -= BLOCK;
	}
	calls++;
	printf("called target=%zu hard=%d freed=%zu\n", target, hard, freed);
	pthread_mutex_unlock(&lock);
	return freed;
}

int main(void)
{
	int i;

	if (!osv_register_shrinker("Example Shrinker", shrinker_function))
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* 256 MiB of allocations at about 1 GiB/s. */
	for (i = 0; i < 256; i++) {
		struct block *b = malloc(BLOCK);

		if (!b)
			return 3;
		memset(b, 1, BLOCK);
		b->next = NULL;
		pthread_mutex_lock(&lock);
		if (tail)
			tail->next = b;
		else
			head = b;
		tail = b;
		cache += BLOCK;
		if (cache > peak)
			peak = cache;
		pthread_mutex_unlock(&lock);
		usleep(1000);
	}
	pthread_mutex_lock(&lock);
	printf("cache=%zu peak=%zu calls=%d\n", cache, peak, calls);
	i = calls;
	pthread_mutex_unlock(&lock);
	return i > 0 ? 0 : 1;
}
