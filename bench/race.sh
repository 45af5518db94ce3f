#!/usr/bin/env bash
# make bench-race: win the race.  Programs whose threads allocate at full
# speed, in fresh child memory cgroups of 64 and 128 MiB, with the cgroup v1
# usage thresholds on and turned off (SHRINKER_SOURCES, as cgroup v2 without
# memory.high has it), with and without the malloc brake
# (libshrinker-brake.so preloaded); the kernel's OOM kill counter is the
# verdict.  Writes build/bench/race.md, a table for BENCHMARKS.md.
#
# RACE_RUNS (default 20) runs per configuration with the brake and for
# native memory-hog; RACE_RUNS_NOBRAKE (default 5) without it; RACE_SECONDS
# (default 3) per run.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
OUT=build/bench
MiB=1048576
RUNS=${RACE_RUNS:-20}
RUNS_NB=${RACE_RUNS_NOBRAKE:-5}
SEC=${RACE_SECONDS:-3}
BRAKE=$PWD/$B/libshrinker-brake.so
V1OFF=-cgroup-v1-threshold,-cgroup-v1-pressure-medium,-cgroup-v1-pressure-critical
# shellcheck source=scripts/cgroup-lib.sh
. scripts/cgroup-lib.sh
# shellcheck source=bench/section.sh
. bench/section.sh
mkdir -p "$OUT"
# Which cgroup version this machine gives us (for the report).
make_cgroup race-probe-$$ $((64 * MiB)) || { echo "race: $note" >&2; exit 1; }
remove_cgroup

# run_one PROGRAM LIMIT_MIB SOURCES BRAKE(0/1): prints "oom peak_bytes waits"
run_one() {
	local prog=$1 mib=$2 sources=$3 brake=$4 out=$OUT/race-run.txt pre="" k p w
	make_cgroup race-$$ $((mib * MiB)) || { echo "race: $note" >&2; exit 1; }
	[ "$brake" = 1 ] && pre=$BRAKE
	case $prog in
	osv)      set -- "$B/memory-hog" --osv --threads 8 --rate 100000 --duration "${SEC}s" ;;
	deferred) set -- "$B/memory-hog" --deferred --threads 8 --rate 100000 --duration "${SEC}s" ;;
	native)   set -- "$B/memory-hog" --threads 8 --rate 100000 --duration "${SEC}s" ;;
	never)    set -- "$B/tests/prog-grower" --mode never --threads 8 --total $((3 * mib * MiB)) --duration $((SEC * 1000)) ;;
	esac
	start_in_cgroup "$out" env SHRINKER_SOURCES="$sources" LD_PRELOAD="$pre" "$@"
	wait $! 2>/dev/null || true
	k=$(oom_kills)
	p=$(peak_usage)
	w=$(awk '/^  brake / { print $2 } /^brake_waits=/ { sub("brake_waits=", "", $1); print $1 }' "$out" | tail -n 1)
	ms=$(awk '/^  brake / { print int($4) } /^brake_waits=/ { sub("brake_ms=", "", $2); print $2 }' "$out" | tail -n 1)
	remove_cgroup
	echo "${k:-0} ${p:-0} ${w:-0} ${ms:-0}"
}

table_row() {
	local prog=$1 mib=$2 thr=$3 brake=$4 n=$5 i kills=0 peak=0 waits=0 held=0 k p w ms sources=""
	[ "$thr" = off ] && sources=$V1OFF
	for i in $(seq "$n"); do
		read -r k p w ms < <(run_one "$prog" "$mib" "$sources" "$brake")
		[ "$k" -gt 0 ] && kills=$((kills + 1))
		[ "$p" -gt "$peak" ] && peak=$p
		waits=$((waits + w))
		held=$((held + ms))
	done
	printf '| %s | %d MiB | %s | %s | **%d of %d** | %.1f MiB | %d | %s |\n' "$prog" "$mib" "$thr" \
		"$([ "$brake" = 1 ] && echo "brake" || echo "none")" "$kills" "$n" \
		"$(awk -v p="$peak" 'BEGIN { print p / 1048576 }')" "$waits" \
		"$(awk -v h="$held" -v n="$n" -v s="$SEC" 'BEGIN { printf "%.1f %%", h / (n * s * 8 * 1000) * 100 }')"
}

{
	echo "<!-- race:begin -->"
	echo
	echo "## Win the race: eight threads allocating at full speed, with and without the brake"
	echo
	echo "Written by \`make bench-race\` (bench/race.sh) on $(date -u +%Y-%m-%d): $(nproc) cores, Linux $(uname -r),"
	echo "cgroup v$cgver. Each run is a fresh child memory cgroup of 64 or 128 MiB, ${SEC} s, 8 threads;"
	echo "the kernel's OOM kill counter is the verdict. *native*: memory-hog, caches that ask"
	echo "\`shrinker_may_grow()\`, no brake. *osv*: \`memory-hog --osv\` (one OSv shrinker, never asks)."
	echo "*deferred*: \`memory-hog --deferred\` (workers allocate, the main loop frees). *never*: eight"
	echo "caches with a shrinker each that never ask, 1 MiB blocks at full speed (\`tests/prog-grower --mode"
	echo "never --threads 8\`). *brake*: \`LD_PRELOAD=libshrinker-brake.so\`. *v1 thresholds off*:"
	echo "\`SHRINKER_SOURCES=$V1OFF\`, which leaves no kernel event before the limit, as on cgroup"
	echo "v2 without memory.high. Runs without the brake are fewer ($RUNS_NB): they are the failure the brake"
	echo "exists for, shown, not hidden. *highest usage* is the cgroup's max_usage over the runs; *held*"
	echo "is the share of the threads' time the brake held them (the stall it imposes under pressure)."
	echo
	echo "| program (8 threads) | limit | v1 thresholds | brake | OOM-killed | highest usage | brake waits | held |"
	echo "|---|---|---|---|---|---|---|---:|"
	for mib in 64 128; do
		for thr in on off; do
			table_row native "$mib" "$thr" 0 "$RUNS"
			for prog in osv deferred never; do
				table_row "$prog" "$mib" "$thr" 1 "$RUNS"
				table_row "$prog" "$mib" "$thr" 0 "$RUNS_NB"
			done
		done
	done
	echo
	echo "What the brake costs with room to spare (\`make bench-brake\`: malloc and free of 16 B to 4 KiB,"
	echo "with and without the brake preloaded, interleaved):"
	echo
	B=$B bench/brake.sh
	echo
	echo "<!-- race:end -->"
} | tee "$OUT/race.md"

# Into BENCHMARKS.md, in place of the last one (make bench keeps it).
section_replace race "$OUT/race.md"
