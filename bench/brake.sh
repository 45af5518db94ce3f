#!/usr/bin/env bash
# What the malloc brake costs with room to spare: bench/brakebench (malloc
# and free, 16 B to 4 KiB, from 1 and from 2 threads) with and without
# LD_PRELOAD=libshrinker-brake.so, RUNS (default 7) interleaved pairs; the
# median of the ratios with its min-max spread.  No cgroup needed.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
RUNS=${RUNS:-7}
brake=$PWD/$B/libshrinker-brake.so
echo "| threads | malloc+free/s without | with the brake | ratio (median, min-max of $RUNS) |"
echo "|---:|---:|---:|---:|"
for threads in 1 2; do
	ratios=""
	offs=""
	ons=""
	for i in $(seq "$RUNS"); do
		off=$("$B/brakebench" "$threads" 500)
		on=$(LD_PRELOAD=$brake "$B/brakebench" "$threads" 500)
		offs="$offs $off"
		ons="$ons $on"
		ratios="$ratios $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')"
	done
	med() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
	lo=$(echo "$ratios" | tr ' ' '\n' | sed '/^$/d' | sort -g | head -n 1)
	hi=$(echo "$ratios" | tr ' ' '\n' | sed '/^$/d' | sort -g | tail -n 1)
	printf '| %d | %.1f M | %.1f M | %s (%s-%s) |\n' "$threads" \
		"$(echo "$offs" | med | awk '{ print $1 / 1e6 }')" "$(echo "$ons" | med | awk '{ print $1 / 1e6 }')" \
		"$(echo "$ratios" | med)" "$lo" "$hi"
done
