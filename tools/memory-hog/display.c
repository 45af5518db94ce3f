/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: everything memory-hog prints.  Three forms of the same samples:
 * on a terminal one status line redrawn in place; off a terminal one log
 * line per pressure event; with --json one JSON object per line, a sample
 * every 100 ms and an event object whenever the library asked the caches to
 * shrink (found from the library's statistics between two samples).  The
 * summary comes at the end in the same form.  Nothing here touches a cache
 * except through cache_stats().
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "display.h"

#define MiB (1024.0 * 1024.0)

static uint64_t rss_now(void)
{
	unsigned long long size, rss;
	char buf[128], *end;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	size = strtoull(buf, &end, 10);
	rss = strtoull(end, &end, 10);
	if (rss > size)
		return 0;
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

void hog_sample(struct hog_sample *s, struct cache *caches, unsigned n,
		double t)
{
	unsigned i;

	struct timespec ts;

	memset(s, 0, sizeof(*s));
	s->t = t;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->mono = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	s->ncaches = n;
	for (i = 0; i < n; i++) {
		s->names[i] = caches[i].name;
		cache_stats(&caches[i], &s->cs[i]);
		s->cache_total += s->cs[i].bytes;
	}
	s->rss = rss_now();
	s->have_mem = shrinker_get_memory(&s->mem) == 0;
	shrinker_get_global_stats(&s->g);
}

static void sources_text(char *buf, size_t size)
{
	struct shrinker_source_info info;
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; shrinker_get_source(i, &info) == 0; i++) {
		int n;

		if (!info.active || !strcmp(info.name, "poll"))
			continue;
		n = snprintf(buf + used, size - used, "%s%s", used ? "," : "",
			     info.name);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	if (!used)
		snprintf(buf, size, "polling only");
}

/* JSON strings here are our own names and kernel paths: escape the two
 * characters that could break a line. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

void hog_show_sources(enum hog_output out)
{
	struct shrinker_source_info info;
	unsigned i;

	if (out == HOG_JSON) {
		printf("{\"type\":\"sources\",\"sources\":[");
		for (i = 0; shrinker_get_source(i, &info) == 0; i++) {
			printf("%s{\"name\":", i ? "," : "");
			json_string(stdout, info.name);
			printf(",\"active\":%s,\"detail\":", info.active ? "true" : "false");
			json_string(stdout, info.detail);
			printf("}");
		}
		printf("]}\n");
	} else if (out == HOG_LOG) {
		for (i = 0; shrinker_get_source(i, &info) == 0; i++)
			printf("source %-28s %s %s\n", info.name,
			       info.active ? "active  " : "inactive", info.detail);
	}
	fflush(stdout);
}

/* Hits as a percentage of lookups: since prev, or since the start. */
static double hit_rate(const struct hog_sample *s, const struct hog_sample *prev)
{
	uint64_t h = 0, m = 0;
	unsigned i;

	for (i = 0; i < s->ncaches; i++) {
		h += s->cs[i].hits - (prev ? prev->cs[i].hits : 0);
		m += s->cs[i].misses - (prev ? prev->cs[i].misses : 0);
	}
	return h + m ? 100.0 * (double)h / (double)(h + m) : 0;
}

static void show_event(enum hog_output out, const struct hog_sample *s,
		       const struct hog_sample *prev)
{
	uint64_t soft = s->g.soft_events - prev->g.soft_events;
	uint64_t hard = s->g.hard_events - prev->g.hard_events;
	uint64_t asked = s->g.bytes_asked - prev->g.bytes_asked;
	uint64_t freed = s->g.bytes_freed - prev->g.bytes_freed;
	const char *kind = hard ? "hard" : soft ? "soft" : "request";
	uint64_t first = 0;
	unsigned i;

	for (i = 0; i < s->ncaches; i++)
		if (s->cs[i].first_shrink_ns &&
		    (!first || s->cs[i].first_shrink_ns < first))
			first = s->cs[i].first_shrink_ns;

	if (out == HOG_JSON) {
		printf("{\"type\":\"event\",\"t\":%.3f,\"mono\":%.6f,\"kind\":\"%s\",\"soft\":%llu,"
		       "\"hard\":%llu,\"asked\":%llu,\"freed\":%llu,\"cache\":%llu,"
		       "\"headroom\":%llu,\"first_call_mono\":%.6f}\n", s->t, s->mono, kind,
		       (unsigned long long)soft, (unsigned long long)hard,
		       (unsigned long long)asked, (unsigned long long)freed,
		       (unsigned long long)s->cache_total,
		       (unsigned long long)(s->have_mem ? s->mem.headroom : 0),
		       (double)first / 1e9);
	} else if (out == HOG_LOG) {
		printf("%8.3fs %s shrink: asked %.1f MiB, freed %.1f MiB; cache "
		       "%.1f MiB, headroom %.1f MiB\n", s->t, kind, asked / MiB,
		       freed / MiB, s->cache_total / MiB,
		       s->have_mem ? s->mem.headroom / MiB : 0.0);
	}
}

void hog_show(enum hog_output out, const struct hog_sample *s,
	      const struct hog_sample *prev)
{
	bool event = prev && s->g.calls != prev->g.calls;
	unsigned i;

	if (event && out != HOG_TTY)
		show_event(out, s, prev);
	if (out == HOG_JSON) {
		printf("{\"type\":\"sample\",\"t\":%.3f,\"mono\":%.6f,\"cache\":%llu",
		       s->t, s->mono, (unsigned long long)s->cache_total);
		for (i = 0; i < s->ncaches; i++)
			printf(",\"%s\":%llu", s->names[i],
			       (unsigned long long)s->cs[i].bytes);
		printf(",\"rss\":%llu,\"limit\":%llu,\"working_set\":%llu,"
		       "\"headroom\":%llu,\"soft_watermark\":%llu,"
		       "\"soft_events\":%llu,\"hard_events\":%llu,"
		       "\"calls\":%llu,\"freed\":%llu,\"probes\":%llu,\"hit_rate\":%.2f}\n",
		       (unsigned long long)s->rss,
		       (unsigned long long)(s->have_mem ? s->mem.limit : 0),
		       (unsigned long long)(s->have_mem ? s->mem.working_set : 0),
		       (unsigned long long)(s->have_mem ? s->mem.headroom : 0),
		       (unsigned long long)(s->have_mem ? s->mem.soft_watermark : 0),
		       (unsigned long long)s->g.soft_events,
		       (unsigned long long)s->g.hard_events,
		       (unsigned long long)s->g.calls,
		       (unsigned long long)s->g.bytes_freed,
		       (unsigned long long)s->g.probes, hit_rate(s, prev));
	} else if (out == HOG_TTY) {
		char src[160];

		sources_text(src, sizeof(src));
		printf("\r\033[K%5.1fs", s->t);
		for (i = 0; i < s->ncaches; i++)
			printf(" %s %.0fM", s->names[i], s->cs[i].bytes / MiB);
		printf(" | rss %.0fM", s->rss / MiB);
		if (s->have_mem)
			printf(" | limit %.0fM headroom %.0fM", s->mem.limit / MiB,
			       s->mem.headroom / MiB);
		printf(" | %s | soft %llu hard %llu | freed %.0fM | hits %.1f%%",
		       src, (unsigned long long)s->g.soft_events,
		       (unsigned long long)s->g.hard_events, s->g.bytes_freed / MiB,
		       hit_rate(s, prev));
	}
	fflush(stdout);
}

void hog_summary_add(struct hog_summary *sum, const struct hog_sample *s,
		     const struct hog_sample *prev)
{
	if (s->cache_total > sum->peak_cache)
		sum->peak_cache = s->cache_total;
	if (s->have_mem && (sum->limit_min == 0 || s->mem.limit < sum->limit_min))
		sum->limit_min = (double)s->mem.limit;
	if (prev) {
		double dt = s->t - prev->t;

		sum->cache_time_sum += dt * (double)(s->cache_total + prev->cache_total) / 2;
		sum->time_sum += dt;
		if (sum->first_shrink_t < 0 && s->g.calls != prev->g.calls)
			sum->first_shrink_t = s->t;
	}
}

void hog_show_summary(enum hog_output out, const struct hog_summary *sum,
		      const struct hog_sample *last)
{
	double mean = sum->time_sum > 0 ? sum->cache_time_sum / sum->time_sum : 0;
	double limit = sum->limit_min;
	FILE *f = out == HOG_JSON ? stderr : stdout;

	uint64_t dropped = 0, cache_freed = 0;
	unsigned i;

	for (i = 0; i < last->ncaches; i++) {
		dropped += last->cs[i].shrink_dropped;
		cache_freed += last->cs[i].shrink_freed;
	}
	/* "freed" is what the library counted from the callbacks' return
	 * values; "cache_freed" what the caches returned (their memory's
	 * fall); "dropped" the charges of the entries those calls evicted;
	 * "rss_released" what the process's RSS fell by over the trims. */
	if (out == HOG_JSON)
		printf("{\"type\":\"summary\",\"t\":%.3f,\"mode\":\"%s\",\"limit\":%.0f,"
		       "\"peak_cache\":%llu,\"mean_cache\":%.0f,\"first_shrink_t\":%.3f,"
		       "\"calls\":%llu,\"hard_calls\":%llu,\"asked\":%llu,\"freed\":%llu,"
		       "\"cache_freed\":%llu,\"dropped\":%llu,"
		       "\"rss_released\":%llu,\"hit_rate\":%.2f,\"reactions\":%llu,"
		       "\"reaction_p50_ms\":%.2f,\"reaction_p99_ms\":%.2f,"
		       "\"reaction_max_ms\":%.2f}\n",
		       last->t, sum->mode, limit, (unsigned long long)sum->peak_cache,
		       mean, sum->first_shrink_t, (unsigned long long)last->g.calls,
		       (unsigned long long)last->g.hard_calls,
		       (unsigned long long)last->g.bytes_asked,
		       (unsigned long long)last->g.bytes_freed,
		       (unsigned long long)cache_freed, (unsigned long long)dropped,
		       (unsigned long long)last->g.rss_released, hit_rate(last, NULL),
		       (unsigned long long)last->g.reactions,
		       last->g.reaction_first_p50_ns / 1e6,
		       last->g.reaction_first_p99_ns / 1e6,
		       last->g.reaction_first_max_ns / 1e6);
	if (out == HOG_TTY)
		fputc('\n', f);
	fprintf(f, "memory-hog: %.1f s, %s mode, %u threads at %u operations/s\n",
		last->t, sum->mode, sum->threads, sum->rate);
	if (last->have_mem)
		fprintf(f, "  limit       %.1f MiB (%s)\n", limit / MiB,
			last->mem.limit_source);
	fprintf(f, "  cache peak  %.1f MiB", sum->peak_cache / MiB);
	if (limit > 0)
		fprintf(f, " (%.1f %% of the limit)", 100.0 * sum->peak_cache / limit);
	fprintf(f, "\n  cache mean  %.1f MiB", mean / MiB);
	if (limit > 0)
		fprintf(f, " (%.1f %% of the limit)", 100.0 * mean / limit);
	fprintf(f, "\n  shrinks     %llu calls (%llu hard): asked %.1f MiB, freed "
		"%.1f MiB, RSS given back %.1f MiB\n",
		(unsigned long long)last->g.calls,
		(unsigned long long)last->g.hard_calls,
		last->g.bytes_asked / MiB, last->g.bytes_freed / MiB,
		last->g.rss_released / MiB);
	if (last->g.brake_waits)
		fprintf(f, "  brake       %llu waits, %.1f ms in all\n",
			(unsigned long long)last->g.brake_waits,
			last->g.brake_wait_ns / 1e6);
	if (sum->first_shrink_t >= 0)
		fprintf(f, "  first shrink at %.1f s\n", sum->first_shrink_t);
	/* The library's own: from the wake-up that found the pressure to the
	 * first callback, whatever the machine's page-fault speed. */
	if (last->g.reactions)
		fprintf(f, "  reaction    %.2f ms at the median, %.2f ms p99, %.2f ms at "
			"most (%llu requests)\n", last->g.reaction_first_p50_ns / 1e6,
			last->g.reaction_first_p99_ns / 1e6,
			last->g.reaction_first_max_ns / 1e6,
			(unsigned long long)last->g.reactions);
	fprintf(f, "  hit rate    %.1f %% over the run\n", hit_rate(last, NULL));
	fflush(f);
}

void hog_show_stats(const struct hog_sample *s)
{
	unsigned i;

	fprintf(stderr, "memory-hog statistics at %.1f s:\n", s->t);
	for (i = 0; i < s->ncaches; i++)
		fprintf(stderr, "  %-8s %8.1f MiB in %zu entries, peak %.1f MiB; "
			"%llu hits, %llu misses, %llu replaced; %llu shrinks "
			"(%llu hard) freed %.1f MiB\n", s->names[i],
			s->cs[i].bytes / MiB, s->cs[i].entries,
			s->cs[i].peak_bytes / MiB,
			(unsigned long long)s->cs[i].hits,
			(unsigned long long)s->cs[i].misses,
			(unsigned long long)s->cs[i].replaced,
			(unsigned long long)s->cs[i].shrink_calls,
			(unsigned long long)s->cs[i].shrink_hard_calls,
			s->cs[i].shrink_freed / MiB);
	fprintf(stderr, "  library: %llu requests (%llu soft, %llu hard, %llu "
		"escalated), %llu wake-ups, %llu measurements, %llu held off\n",
		(unsigned long long)s->g.requests,
		(unsigned long long)s->g.soft_requests,
		(unsigned long long)s->g.hard_requests,
		(unsigned long long)s->g.escalations,
		(unsigned long long)s->g.wakeups,
		(unsigned long long)s->g.measurements,
		(unsigned long long)s->g.held_off);
}
