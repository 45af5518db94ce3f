#!/usr/bin/env bash
# The cache container (include/shrinker-cache.h) against the cache most C
# programs write, a single mutex over a hash table and an LRU list
# (bench/containerbench.c): gets per second per thread at 1 and 2 threads
# (16-byte keys, 100-byte and 4 KiB values, Zipf 0.99 over 10 million
# keys, both caches held at 256 MiB), the hit ratio at the same bytes
# (64 MiB) with and without a scan passing through, the container's bytes
# per entry beyond key and value, and its gets per second at 10^4, 10^6
# and 10^7 entries with the longest insert of each fill.  ROUNDS (default
# 3) interleaved rounds; medians with the min-max spread.
# SHRINKER_LIMIT=1T: no cgroup needed, the caches' size is their maximum.
# Writes build/bench/container.md and its section
# of BENCHMARKS.md; CONTAINER_QUICK=1 runs each measurement once, short,
# and writes nothing to the repository (CI's smoke run).  About 6 minutes
# on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
OUT=${BENCH_OUT:-build/bench}
BIN=$B/containerbench
ROUNDS=${ROUNDS:-3}
SECS=${CONTAINER_SECONDS:-2}
SIZES="10000 1000000 10000000"
if [ "${CONTAINER_QUICK:-}" ]; then
	ROUNDS=1
	SECS=0.3
	SIZES="10000 100000"
fi
# shellcheck source=bench/section.sh
. bench/section.sh
mkdir -p "$OUT"
export SHRINKER_LIMIT=1T
runs=$OUT/container-runs.txt
: > "$runs"
val() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }
for r in $(seq "$ROUNDS"); do
	for v in 100 4096; do
		for t in 1 2; do
			for i in container lru; do
				echo "gets $i $t $v $("$BIN" gets $i $t $v "$SECS" | val gets_per_s_per_thread)" >> "$runs"
			done
		done
	done
	for i in container lru; do
		line=$("$BIN" hits $i 100 $((64 << 20)))
		echo "hits $i $(echo "$line" | val hit_ratio) $(echo "$line" | val hit_ratio_scan)" >> "$runs"
	done
	for n in $SIZES; do
		line=$("$BIN" size "$n" "$SECS")
		echo "size $n $(echo "$line" | val gets_per_s) $(echo "$line" | val longest_insert_us)" >> "$runs"
	done
done
for v in 100 4096; do
	echo "overhead $v $("$BIN" overhead $v 1000000 | val overhead_per_entry)" >> "$runs"
done
# median and min-max of the numbers on stdin
stat3() { sort -g | awk '{ v[NR] = $1 } END { printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
pick() { awk "$1" "$runs" | stat3; }
M() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1e6 }'; }

{
	echo "<!-- container:begin -->"
	echo
	echo "## The cache container against a single-mutex LRU"
	echo
	echo "Written by \`make bench-container\` (bench/container.sh) on $(date -u +%Y-%m-%d): $(nproc) cores, Linux $(uname -r)."
	echo "Median (min-max) of $ROUNDS interleaved rounds.  *LRU*: one mutex over a chained hash table and an"
	echo "LRU list of malloc()ed entries (bench/containerbench.c), the idiom most C programs use."
	echo
	echo "Gets per second per thread (millions): 16-byte keys, Zipf 0.99 over 10 million keys, each cache"
	echo "held at 256 MiB (a get that misses sets the value), the value copied out."
	echo
	echo "| value | threads | container | LRU | container / LRU |"
	echo "|---:|---:|---:|---:|---:|"
	for v in 100 4096; do
		for t in 1 2; do
			read -r c clo chi < <(pick "\$1 == \"gets\" && \$2 == \"container\" && \$3 == $t && \$4 == $v { print \$5 }")
			read -r l llo lhi < <(pick "\$1 == \"gets\" && \$2 == \"lru\" && \$3 == $t && \$4 == $v { print \$5 }")
			printf '| %s | %s | %s (%s-%s) | %s (%s-%s) | %s |\n' "$v" "$t" \
				"$(M "$c")" "$(M "$clo")" "$(M "$chi")" "$(M "$l")" "$(M "$llo")" "$(M "$lhi")" \
				"$(awk -v a="$c" -v b="$l" 'BEGIN { printf "%.2f", a / b }')"
		done
	done
	echo
	echo "Hit ratio at 64 MiB of either cache, 100-byte values, Zipf 0.99 over 10 million keys; *with a scan*:"
	echo "one get of a key never seen again after each Zipf get, as many as the cache holds."
	echo
	echo "| cache | hit ratio | with a scan |"
	echo "|---|---:|---:|"
	for i in container lru; do
		read -r h _ _ < <(pick "\$1 == \"hits\" && \$2 == \"$i\" { print \$3 }")
		read -r s _ _ < <(pick "\$1 == \"hits\" && \$2 == \"$i\" { print \$4 }")
		printf '| %s | %s | %s |\n' "$([ $i = lru ] && echo LRU || echo container)" "$h" "$s"
	done
	echo
	echo "The container's bytes per entry beyond key and value (its size, as its shrinker reports it, less"
	echo "keys and values, over the entries; 1 million entries, 16-byte keys):"
	for v in 100 4096; do
		printf -- '- %s-byte values: %s bytes\n' "$v" "$(awk -v v=$v '$1 == "overhead" && $2 == v { print $3 }' "$runs")"
	done
	echo
	echo "Gets per second (millions), one thread, every key present, uniform over the entries; and the"
	echo "longest insert of the fill that made them (its tables grow a few chains at a time: what remains"
	echo "is a new segment's faults and the machine taking the CPU away now and then):"
	echo
	echo "| entries | gets per second | longest insert, ms |"
	echo "|---:|---:|---:|"
	for n in $SIZES; do
		read -r g glo ghi < <(pick "\$1 == \"size\" && \$2 == $n { print \$3 }")
		read -r l llo lhi < <(pick "\$1 == \"size\" && \$2 == $n { print \$4 / 1000 }")
		printf '| %s | %s (%s-%s) | %s (%s-%s) |\n' "$n" "$(M "$g")" "$(M "$glo")" "$(M "$ghi")" \
			"$(printf %.1f "$l")" "$(printf %.1f "$llo")" "$(printf %.1f "$lhi")"
	done
	echo
	echo "<!-- container:end -->"
} > "$OUT/container.md"
cat "$OUT/container.md"
[ "${CONTAINER_QUICK:-}" ] || section_replace container "$OUT/container.md"
