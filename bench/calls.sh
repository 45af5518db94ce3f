#!/usr/bin/env bash
# What the hot calls cost per call with room to spare, from 1, 2, 4 and 8
# threads (bench/callbench: each thread its own cache, 64 bytes a call),
# for this build and for a base revision's library built beside it
# (CALLS_BASE, default 2448b3c: the library before the per-CPU stocks of
# src/1-base/stock.c), RUNS (default 5) interleaved pairs of 300 ms runs; the
# median ns of a core per call with the min-max spread, its ratio to one
# thread, and the ratio of this build to the base.  No cgroup needed:
# SHRINKER_LIMIT=1T gives the library a limit it never reaches.  Writes
# build/bench/calls.md and, in place of the last one, its section of
# BENCHMARKS.md.  About a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
OUT=${BENCH_OUT:-build/bench}
RUNS=${RUNS:-5}
BASE=${CALLS_BASE:-2448b3c}
THREADS=${CALLS_THREADS:-1 2 4 8}
CALLS="may_grow may_grow_cache set_size account"
# shellcheck source=bench/section.sh
. bench/section.sh
mkdir -p "$OUT"
CC=${CC:-cc}

# The base revision's library, built in a scratch copy of its tree.
base_dir=$(mktemp -d /tmp/shrinker-calls-XXXXXX)
trap 'rm -rf "$base_dir"' EXIT
git archive "$BASE" | tar -x -C "$base_dir"
make -s -C "$base_dir" B=build lib > /dev/null
"$CC" -Iinclude -O2 -pthread -o "$OUT/callbench-base" bench/callbench.c \
	"$base_dir/build/libshrinker.a" -pthread
"$CC" -Iinclude -O2 -pthread -o "$OUT/callbench" bench/callbench.c "$B/libshrinker.a" -pthread

run() { SHRINKER_LIMIT=1T "$1" "$2" "$3" 300 | sed -n 's/.*ns_per_call=//p'; }
# median and min-max of the numbers on stdin
stat3() { sort -g | awk '{ v[NR] = $1 } END { printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'; }

: > "$OUT/calls-runs.txt"
for r in $(seq "$RUNS"); do
	for c in $CALLS; do
		for t in $THREADS; do
			echo "$c $t new $(run "$OUT/callbench" "$c" "$t")" >> "$OUT/calls-runs.txt"
			echo "$c $t base $(run "$OUT/callbench-base" "$c" "$t")" >> "$OUT/calls-runs.txt"
		done
	done
done

{
	echo "<!-- calls:begin -->"
	echo
	echo "## The hot calls from more threads"
	echo
	echo "Written by \`make bench-calls\` (bench/calls.sh) on $(date -u +%Y-%m-%d): $(nproc) cores, Linux $(uname -r)."
	echo "Nanoseconds of a core per call (wall time times the cores the threads can use, over the calls),"
	echo "each thread calling for its own cache with room to spare, median (min-max) of $RUNS interleaved"
	echo "runs; *x one thread*: against this build from one thread; *x base*: against the library of"
	echo "$BASE (before the per-CPU stocks), run beside it."
	echo
	echo "| call | threads | ns per call | x one thread | base ns per call | x base |"
	echo "|---|---:|---:|---:|---:|---:|"
	for c in $CALLS; do
		one=$(awk -v c="$c" '$1 == c && $2 == 1 && $3 == "new" { print $4 }' "$OUT/calls-runs.txt" | stat3 | cut -d' ' -f1)
		for t in $THREADS; do
			read -r n nlo nhi < <(awk -v c="$c" -v t="$t" '$1 == c && $2 == t && $3 == "new" { print $4 }' "$OUT/calls-runs.txt" | stat3)
			read -r b blo bhi < <(awk -v c="$c" -v t="$t" '$1 == c && $2 == t && $3 == "base" { print $4 }' "$OUT/calls-runs.txt" | stat3)
			awk -v c="$c" -v t="$t" -v n="$n" -v nlo="$nlo" -v nhi="$nhi" -v b="$b" \
			    -v blo="$blo" -v bhi="$bhi" -v one="$one" 'BEGIN {
				printf "| %s | %d | %.0f (%.0f-%.0f) | %.2f | %.0f (%.0f-%.0f) | %.2f |\n",
					c, t, n, nlo, nhi, n / one, b, blo, bhi, n / b }'
		done
	done
	echo
	echo "<!-- calls:end -->"
} > "$OUT/calls.md"
cat "$OUT/calls.md"
section_replace calls "$OUT/calls.md"
