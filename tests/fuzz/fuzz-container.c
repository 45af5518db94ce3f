/* SPDX-License-Identifier: MIT */
/*
 * The cache container's operations, as the input spells them, against a
 * simple model: sets (small and large values, bytes and objects), gets,
 * copies, removes, clears and shrinks.  A value read must be the last one
 * set for its key (a shrink may only make keys absent); the counters must
 * agree with what a lookup of every key finds; every object is destroyed
 * exactly once by the end.
 */
#define _GNU_SOURCE
#include <errno.h>

#include <shrinker-cache.h>

#include "fuzz.h"

#define KEYS 32u

struct model {
	unsigned ver[KEYS];   /* 0: absent */
	size_t len[KEYS];
	bool object[KEYS];
};

static unsigned destroyed, made;

static void destroy(void *o, void *ud)
{
	(void)ud;
	free(o);
	destroyed++;
}

static void fill(unsigned char *v, size_t len, unsigned key, unsigned ver)
{
	for (size_t i = 0; i < len; i++)
		v[i] = (unsigned char)(key * 13 + ver * 7 + i);
}

static bool same(const unsigned char *v, size_t len, unsigned key, unsigned ver)
{
	for (size_t i = 0; i < len; i++)
		if (v[i] != (unsigned char)(key * 13 + ver * 7 + i))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char buf[40000], out[40000];
	struct shrinker_cache_options o = { .size = sizeof(o), .destroy = destroy };
	struct shrinker_cache *c;
	struct model m = { 0 };
	unsigned ver = 0;

	made = destroyed = 0;
	/* Inputs of an odd length run under the smallest maximum, which
	 * replacements keep (the pool of large values' mappings too). */
	if (size % 2)
		o.max_bytes = SHRINKER_CACHE_MAX_MIN;
	if (size > 4096 || shrinker_cache_new(&c, "fuzz", &o) < 0)
		return 0;
	for (size_t i = 0; i + 2 < size; i += 3) {
		unsigned op = data[i] % 8, k = data[i + 1] % KEYS, arg = data[i + 2];
		unsigned char key[2] = { (unsigned char)k, 0x5a };
		struct shrinker_cache_value v;

		switch (op) {
		case 0: case 1: { /* set bytes: small, or now and then large */
			size_t len = arg < 16 ? (size_t)arg * 2500 : arg;
			fill(buf, len, k, ++ver);
			FUZZ_CHECK(shrinker_cache_set(c, key, sizeof(key), buf, len, 0) == 0);
			m.ver[k] = ver;
			m.len[k] = len;
			m.object[k] = false;
			break;
		}
		case 2: { /* set an object */
			unsigned *obj = malloc(sizeof(*obj));
			FUZZ_CHECK(obj);
			*obj = ++ver;
			FUZZ_CHECK(shrinker_cache_set_object(c, key, sizeof(key), obj, arg, 0) == 0);
			made++;
			m.ver[k] = ver;
			m.object[k] = true;
			break;
		}
		case 3: /* get, held */
			if (shrinker_cache_get(c, key, sizeof(key), &v) == 0) {
				FUZZ_CHECK(m.ver[k]);
				if (m.object[k])
					FUZZ_CHECK(v.object && *(unsigned *)v.object == m.ver[k]);
				else
					FUZZ_CHECK(v.len == m.len[k] && same(v.data, v.len, k, m.ver[k]));
				FUZZ_CHECK(shrinker_cache_release(c, &v) == 0);
				FUZZ_CHECK(shrinker_cache_release(c, &v) == -EINVAL);
			}
			break;
		case 4: { /* copy */
			ssize_t n = shrinker_cache_copy(c, key, sizeof(key), out, sizeof(out));
			if (n >= 0)
				FUZZ_CHECK(m.ver[k] && !m.object[k] && (size_t)n == m.len[k] &&
					   same(out, m.len[k], k, m.ver[k]));
			else
				FUZZ_CHECK(n == -ENOENT || (n == -EMEDIUMTYPE && m.object[k]));
			break;
		}
		case 5: /* remove */
			if (shrinker_cache_remove(c, key, sizeof(key)) == 0)
				FUZZ_CHECK(m.ver[k]);
			m.ver[k] = 0;
			break;
		case 6: /* shrink, now and then hard */
			if (arg % 8 == 0) {
				size_t freed;
				shrinker_request_reclaim(1 + (size_t)arg * 4096,
							 (arg & 8 ? SHRINKER_HARD : 0) | SHRINKER_WAIT,
							 &freed);
			}
			break;
		case 7:
			if (arg == 0) {
				FUZZ_CHECK(shrinker_cache_clear(c) == 0);
				memset(&m, 0, sizeof(m));
			}
			break;
		}
	}
	/* The counters against what is there. */
	struct shrinker_cache_stats st = { .size = sizeof(st) };
	unsigned present = 0;
	FUZZ_CHECK(shrinker_cache_get_stats(c, &st) == 0);
	for (unsigned k = 0; k < KEYS; k++) {
		unsigned char key[2] = { (unsigned char)k, 0x5a };
		struct shrinker_cache_value v;
		if (shrinker_cache_get(c, key, sizeof(key), &v) == 0) {
			present++;
			shrinker_cache_release(c, &v);
		}
	}
	FUZZ_CHECK(present == st.entries && st.held == 0);
	/* Under the maximum, but for the tables and the open segments' last
	 * pages (a segment is counted a page at a time as it fills). */
	if (o.max_bytes)
		FUZZ_CHECK(st.bytes <= o.max_bytes + 256 * 1024);
	FUZZ_CHECK(shrinker_cache_free(c) == 0);
	FUZZ_CHECK(destroyed == made);
	return 0;
}
