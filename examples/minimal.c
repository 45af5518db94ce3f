/* A cache with no size to set: it grows while the library says there is
 * room and frees its coldest entries when memory gets tight.
 *   cc minimal.c $(pkg-config --cflags --libs libshrinker) -o minimal */
#include <stdio.h>
#include <string.h>
#include <shrinker-cache.h>

int main(void)
{
	static char page[64 << 10];
	struct shrinker_cache *cache;
	struct shrinker_cache_value v;
	struct shrinker_cache_stats st = { .size = sizeof(st) };

	if (shrinker_cache_new(&cache, "pages", NULL) < 0)
		return 1;
	for (int i = 0; i < 6000; i++) { /* the program's work: 3000 pages, 100 asked often */
		char key[32];

		snprintf(key, sizeof(key), "page-%d", i % 2 ? i % 100 : i % 3000);
		if (shrinker_cache_get(cache, key, strlen(key), &v) == 0) {
			/* a hit: v.data and v.len stay valid until released */
			shrinker_cache_release(cache, &v);
			continue;
		}
		memset(page, i, sizeof(page)); /* a miss: make the page, then cache it */
		shrinker_cache_set(cache, key, strlen(key), page, sizeof(page), 0);
	}
	shrinker_cache_get_stats(cache, &st);
	printf("cached %llu MiB\n%llu hits, %llu misses\n", (unsigned long long)st.bytes >> 20,
	       (unsigned long long)st.hits, (unsigned long long)st.misses);
	return shrinker_cache_free(cache) < 0;
}
