/*
 * For test-faults: prints what the library made of the environment.  Run
 * set-uid, secure_getenv() must have ignored MEMORY_PRESSURE_WATCH and
 * SHRINKER_ROOT.  Output: "systemd=<detail>" and "cgroup_version=<n>".
 */
#include <stdio.h>
#include <string.h>

#include "shrinker.h"

static size_t none(size_t target, bool hard, void *ud)
{
	(void)target;
	(void)hard;
	(void)ud;
	return 0;
}

int main(void)
{
	struct shrinker_source_info info;
	struct shrinker_memory mem;
	struct shrinker *s;
	unsigned i;

	if (shrinker_register(&s, "secure", none, NULL, 0) < 0)
		return 2;
	for (i = 0; shrinker_get_source(i, &info) == 0; i++)
		if (!strcmp(info.name, "systemd-memory-pressure"))
			printf("systemd=%s\n", info.detail);
	printf("measured=%d\n", shrinker_get_memory(&mem) == 0);
	return 0;
}
