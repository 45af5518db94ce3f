#!/usr/bin/env bash
# make bench-race-many: the brake with more threads than make bench-race's
# eight.  Caches with a shrinker each that never ask before they grow
# (tests/prog-grower --mode never), 16 and 32 threads allocating blocks of
# 64 KiB and of 1 MiB at full speed, with libshrinker-brake.so preloaded,
# in fresh child memory cgroups of 64 and 128 MiB, the cgroup v1 usage
# thresholds turned off (no kernel event before the limit, as on cgroup v2
# without memory.high).  RACE_RUNS (default 20) runs of RACE_SECONDS
# (default 3) each; the kernel's OOM kill counter is the verdict, with the
# highest usage and the share of the threads' time the brake held them.
# Writes build/bench/race-many.md and its section of BENCHMARKS.md.  About
# 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
OUT=${BENCH_OUT:-build/bench}
MiB=1048576
RUNS=${RACE_RUNS:-20}
SEC=${RACE_SECONDS:-3}
BRAKE=$PWD/$B/libshrinker-brake.so
V1OFF=-cgroup-v1-threshold,-cgroup-v1-pressure-medium,-cgroup-v1-pressure-critical
# shellcheck source=scripts/cgroup-lib.sh
. scripts/cgroup-lib.sh
# shellcheck source=bench/section.sh
. bench/section.sh
mkdir -p "$OUT"

# run_one THREADS BLOCK LIMIT_MIB: prints "oom peak_bytes exit brake_ms"
run_one() {
	local threads=$1 block=$2 mib=$3 out=$OUT/race-many-run.txt k p st=0 ms
	make_cgroup race-many-$$ $((mib * MiB)) || { echo "race-many: $note" >&2; exit 1; }
	start_in_cgroup "$out" env SHRINKER_SOURCES="$V1OFF" LD_PRELOAD="$BRAKE" \
		"$B/tests/prog-grower" --mode never --threads "$threads" --block "$block" \
		--total $((3 * mib * MiB)) --duration $((SEC * 1000))
	wait $! 2>/dev/null || st=$?
	k=$(oom_kills)
	p=$(peak_usage)
	ms=$(awk '/^brake_waits=/ { sub("brake_ms=", "", $2); print $2 }' "$out" | tail -n 1)
	remove_cgroup
	echo "${k:-0} ${p:-0} $st ${ms:-0}"
}

{
	echo "<!-- race-many:begin -->"
	echo
	echo "## The brake with 16 and 32 threads"
	echo
	echo "Written by \`make bench-race-many\` (bench/race-many.sh) on $(date -u +%Y-%m-%d): $(nproc) cores,"
	echo "Linux $(uname -r). Caches that never ask before they grow (\`tests/prog-grower --mode never\`),"
	echo "blocks of 64 KiB or 1 MiB at full speed, the brake preloaded, cgroup v1 thresholds off; each run a"
	echo "fresh child memory cgroup, ${SEC} s. *killed*: runs with an OOM kill or a nonzero exit; *held*: the"
	echo "share of the threads' time the brake held them."
	echo
	echo "| threads | block | limit | killed | highest usage | held |"
	echo "|---:|---:|---:|---|---:|---:|"
	for mib in 64 128; do
		for threads in 16 32; do
			for block in 65536 1048576; do
				killed=0 peak=0 held=0
				for i in $(seq "$RUNS"); do
					read -r k p st ms < <(run_one "$threads" "$block" "$mib")
					{ [ "$k" -gt 0 ] || [ "$st" != 0 ]; } && killed=$((killed + 1))
					[ "$p" -gt "$peak" ] && peak=$p
					held=$((held + ms))
				done
				printf '| %d | %d KiB | %d MiB | **%d of %d** | %.1f MiB | %.1f %% |\n' \
					"$threads" $((block / 1024)) "$mib" "$killed" "$RUNS" \
					"$(awk -v p="$peak" 'BEGIN { print p / 1048576 }')" \
					"$(awk -v h="$held" -v n="$RUNS" -v s="$SEC" -v t="$threads" \
						'BEGIN { print h / (n * s * t * 1000) * 100 }')"
			done
		done
	done
	echo
	echo "<!-- race-many:end -->"
} | tee "$OUT/race-many.md"
section_replace race-many "$OUT/race-many.md"
