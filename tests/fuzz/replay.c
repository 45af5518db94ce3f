/* SPDX-License-Identifier: MIT */
/*
 * The plain driver: feeds every file named on the command line (or found in
 * the directories named) to the target's LLVMFuzzerTestOneInput(), without
 * libFuzzer, so that make check replays the corpus under any sanitizer.
 * Prints the number of inputs run.  (Like systemd's src/fuzz/fuzz-main.c.)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long runs;

static int run_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	runs++;
	return 0;
}

static int run_path(const char *path)
{
	struct stat st;
	struct dirent *d;
	DIR *dir;
	int r = 0;

	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		char sub[4096];

		if (d->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, d->d_name);
		if (run_path(sub) < 0)
			r = -1;
	}
	closedir(dir);
	return r;
}

int main(int argc, char **argv)
{
	int i, r = 0;

	for (i = 1; i < argc; i++)
		if (run_path(argv[i]) < 0)
			r = 1;
	printf("%lu\n", runs);
	return r;
}
