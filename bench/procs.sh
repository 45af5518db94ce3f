#!/usr/bin/env bash
# make bench-procs: many processes of the library in one cgroup.  N
# memory-hog processes (one worker each, caches that ask before they grow)
# fill a fresh child memory cgroup of 256 MiB; 8 s in, a competitor without
# the library takes 40 % of the limit at full speed and holds it 4 s.  For
# N = 8, 32 and 128 (the slower per process the more there are: 55, 20 and
# 10 MiB/s of inserts each), PROCS_ROUNDS (default 10) interleaved rounds:
# the OOM-killed runs (the kernel's counter, and processes that did not
# exit 0), the spread of the processes' caches half a second before the
# competitor (the largest over the median; 1 is even), and its take (its
# first byte to its last) against the same take beside the same load (the
# N processes in their cgroup, the competitor in a cgroup of its own with
# room to spare: what the CPU the processes use costs it, without their
# caches having to yield) and in the cgroup empty, measured in each round.
# Writes build/bench/procs.md and its section of BENCHMARKS.md.  About 17
# minutes with 10 rounds on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
OUT=${BENCH_OUT:-build/bench}
ROUNDS=${PROCS_ROUNDS:-10}
SIZES=${PROCS_SIZES:-8 32 128}
MiB=1048576
LIMIT=$((256 * MiB))
TAKE=$((LIMIT / 10 * 4))
# shellcheck source=scripts/cgroup-lib.sh
. scripts/cgroup-lib.sh
# shellcheck source=bench/section.sh
. bench/section.sh
mkdir -p "$OUT"

rate_for() { case $1 in 8) echo 2000 ;; 32) echo 700 ;; *) echo 350 ;; esac; }

# The competitor's take in ms, from its JSON lines in $1.
take_ms() {
	awk '/"allocating"/ { match($0, /"mono":[0-9.]+/); a = substr($0, RSTART + 7, RLENGTH - 7) }
	     /"allocated"/ { match($0, /"mono":[0-9.]+/); b = substr($0, RSTART + 7, RLENGTH - 7) }
	     END { if (a != "" && b != "") printf "%.0f\n", (b - a) * 1000; else print "-" }' "$1"
}

# The N processes in a fresh cgroup of LIMIT, and the competitor 8 s in:
# in the same cgroup (where=in), or in a second one with room to spare
# (where=beside).  Sets kills, failed and take (ms), and leaves the
# processes' JSON lines in $OUT/procs-$i.jsonl.
load_and_take() {
	local n=$1 where=$2 rate i st a_cg a_ver a_scope a_leaf
	local -a pids=()
	rate=$(rate_for "$n")
	make_cgroup procs-$$ "$LIMIT" || { echo "procs: $note" >&2; exit 1; }
	for i in $(seq "$n"); do
		start_in_cgroup "$OUT/procs-$i.jsonl" "$B/memory-hog" --threads 1 --rate "$rate" \
			--duration 14s --json --seed "$i"
		pids+=($!)
	done
	if [ "$where" = beside ]; then
		a_cg=$cg a_ver=$cgver a_scope=$scope_pid a_leaf=$leaf
		make_cgroup procs-beside-$$ $((LIMIT * 4)) || { echo "procs: $note" >&2; exit 1; }
	fi
	start_in_cgroup "$OUT/procs-comp-$where.txt" "$B/competitor" --take "$TAKE" --after 8000 --hold 4000
	pids+=($!)
	failed=0
	for i in "${pids[@]}"; do
		st=0
		wait "$i" 2>/dev/null || st=$?
		[ "$st" = 0 ] || failed=$((failed + 1))
	done
	if [ "$where" = beside ]; then
		leaf=""
		remove_cgroup
		cg=$a_cg cgver=$a_ver scope_pid=$a_scope leaf=$a_leaf
	fi
	kills=$(oom_kills)
	remove_cgroup
	take=$(take_ms "$OUT/procs-comp-$where.txt")
}

# run_one N ROUND: appends "N round kills failed spread take_ms beside_ms alone_ms"
run_one() {
	local n=$1 round=$2 i spread take_in kills_in failed_in beside alone at
	# The take alone, in the same cgroup empty.
	make_cgroup procs-$$ "$LIMIT" || { echo "procs: $note" >&2; exit 1; }
	start_in_cgroup "$OUT/procs-comp-alone.txt" "$B/competitor" --take "$TAKE" --hold 100
	wait $! 2>/dev/null || true
	alone=$(take_ms "$OUT/procs-comp-alone.txt")
	remove_cgroup
	load_and_take "$n" beside
	beside=$take
	[ "$kills" = 0 ] && [ "$failed" = 0 ] || beside=-
	load_and_take "$n" in
	take_in=$take kills_in=${kills:-0} failed_in=$failed
	# Each process's cache half a second before the competitor's first
	# byte (CLOCK_MONOTONIC: 128 processes take seconds to start); the
	# largest over the median.
	at=$(awk '/"allocating"/ { match($0, /"mono":[0-9.]+/); print substr($0, RSTART + 7, RLENGTH - 7) - 0.5 }' \
		"$OUT/procs-comp-in.txt")
	spread=$(for i in $(seq "$n"); do
		awk -v at="${at:-0}" '/"type":"sample"/ { match($0, /"mono":[0-9.]+/); t = substr($0, RSTART + 7, RLENGTH - 7) + 0;
		     if (t > at) exit; match($0, /"cache":[0-9]+/); c = substr($0, RSTART + 8, RLENGTH - 8) }
		     END { print c + 0 }' "$OUT/procs-$i.jsonl"
	done | sort -n | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; if (m > 0) printf "%.2f\n", v[NR] / m; else print "-" }')
	echo "$n $round $kills_in $failed_in $spread $take_in $beside $alone" >> "$OUT/procs-runs.txt"
}

: > "$OUT/procs-runs.txt"
for r in $(seq "$ROUNDS"); do
	for n in $SIZES; do
		run_one "$n" "$r"
	done
done

{
	echo "<!-- procs:begin -->"
	echo
	echo "## Many processes in one cgroup"
	echo
	echo "Written by \`make bench-procs\` (bench/procs.sh) on $(date -u +%Y-%m-%d): $(nproc) cores, Linux $(uname -r)."
	echo "N memory-hog processes (one worker each, 55, 20 and 10 MiB/s of inserts for N = 8, 32 and 128)"
	echo "fill a child memory cgroup of 256 MiB; 8 s in, a process without the library takes 40 % of the"
	echo "limit at full speed. *OOM-killed*: runs with a kill (the kernel's counter) or a process that did"
	echo "not exit 0; *spread*: the largest cache over the median 0.5 s before the competitor (1 is even);"
	echo "*take*: the competitor's first byte to its last; *beside*: the same take with the same N processes"
	echo "running, the competitor in a cgroup of its own with room to spare (the CPU they use, without"
	echo "their caches having to yield); *alone*: in the cgroup empty; each measured in the same round;"
	echo "median (min-max) of $ROUNDS rounds."
	echo
	echo "| processes | OOM-killed | spread | take | take beside | x beside | take alone |"
	echo "|---:|---|---:|---:|---:|---:|---:|"
	for n in $SIZES; do
		awk -v n="$n" -v rounds="$ROUNDS" '
		function med(a, k,   i, j, t) {
			for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
		}
		function fmt(a, k, f) { if (!k) return "-"; return sprintf(f " (" f "-" f ")", med(a, k), a[1], a[k]) }
		$1 == n {
			if ($3 > 0 || $4 > 0) killed++
			if ($5 != "-") s[++ns] = $5
			if ($6 != "-") t[++nt] = $6
			if ($7 != "-") b[++nb] = $7
			if ($8 != "-") a[++na] = $8
			if ($6 != "-" && $7 != "-" && $7 > 0) x[++nx] = $6 / $7
		}
		END {
			printf "| %d | **%d of %d** | %s | %s ms | %s ms | %s | %s ms |\n", n, killed, rounds,
				fmt(s, ns, "%.2f"), fmt(t, nt, "%.0f"), fmt(b, nb, "%.0f"), fmt(x, nx, "%.2f"),
				fmt(a, na, "%.0f")
		}' "$OUT/procs-runs.txt"
	done
	echo
	echo "<!-- procs:end -->"
} > "$OUT/procs.md"
cat "$OUT/procs.md"
section_replace procs "$OUT/procs.md"
