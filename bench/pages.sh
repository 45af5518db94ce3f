#!/usr/bin/env bash
# make bench-pages: caches that allocate their entries with malloc(), whose
# frees come back to the system as pages only in part.  Each run puts one
# program in a fresh 256 MiB child memory cgroup; 6 s in, a competitor that
# does not use the library takes 96 MiB as fast as it can, holds it 4 s and
# gives it back; the program stops at 12 s.  Rounds are interleaved: every
# configuration once, then again.  The kernel's OOM kill counter and the
# program's exit status are the verdict; lookups per second are the
# survivors' medians with their spread.  Writes build/bench/pages.md and,
# for a full run, its section of BENCHMARKS.md.
#
#  - lru: examples/lru.c, a hash table and an LRU list of malloc()ed
#    entries of 1-8 KiB, four threads: sized by the library with glibc's
#    default arenas and with one arena (GLIBC_TUNABLES), and at fixed
#    capacities of 64 MiB (safe) and 200 MiB (generous);
#  - rocksdb: examples/rocksdb.c, 3 million 100-byte values (330 MB), two
#    readers at random, the block cache sized by the library with glibc and
#    with jemalloc preloaded (dirty pages purged at once, where libjemalloc2
#    is installed), and at fixed capacities of 64 and 160 MiB;
#  - sqlite: examples/sqlite.c, 3 million 100-byte rows, two connections
#    looked up at random, their page caches sized by the library, and at
#    fixed cache_size of 32 and 100 MiB per connection.
#
# For the library's runs: the return it learned (permille of the bytes the
# callbacks reported that came back as RSS) and RSS given back as a share
# of the bytes reported freed, by the library's statistics.
#
# PAGES_ROUNDS (default 5) rounds; PAGES_ONLY=lru, rocksdb or sqlite for one;
# PAGES_CONFIGS="rocksdb:libshrinker lru:fixed64 ..." for just those;
# PAGES_REPORT=1 writes the table again from the last run's results
# ($OUT/pages-runs.txt), running nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
OUT=${BENCH_OUT:-build/bench}
MiB=1048576
ROUNDS=${PAGES_ROUNDS:-5}
ONLY=${PAGES_ONLY:-}
JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -n 1 || true)
# shellcheck source=scripts/cgroup-lib.sh
. scripts/cgroup-lib.sh
# shellcheck source=bench/section.sh
. bench/section.sh
mkdir -p "$OUT"
make_cgroup pages-probe-$$ $((256 * MiB)) || { echo "pages: $note" >&2; exit 1; }
where=$placement
remove_cgroup

DB=$OUT/pages-rocksdb
SQL=$OUT/pages-sqlite.db
configs=()
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
if want lru; then
	configs+=(lru:libshrinker lru:libshrinker-1arena lru:fixed64 lru:fixed200)
fi
if want rocksdb && [ -x "$B/examples/rocksdb" ]; then
	if [ ! -f "$DB/CURRENT" ]; then
		rm -rf "$DB"
		"$B/examples/rocksdb" --create "$DB" --rows 3000000 > /dev/null
	fi
	configs+=(rocksdb:libshrinker)
	[ -n "$JEMALLOC" ] && configs+=(rocksdb:libshrinker-jemalloc)
	configs+=(rocksdb:fixed64 rocksdb:fixed160)
fi
if want sqlite && [ -x "$B/examples/sqlite" ]; then
	[ -f "$SQL" ] || "$B/examples/sqlite" --create "$SQL" --rows 3000000 > /dev/null
	configs+=(sqlite:libshrinker sqlite:fixed32 sqlite:fixed100)
fi

if [ -n "${PAGES_CONFIGS:-}" ]; then
	read -r -a configs <<< "$PAGES_CONFIGS"
fi

# Drop the database's pages from the page cache, so that each run reads
# them in and they are charged to its own cgroup.
drop_db_cache() {
	python3 - "$DB" "$SQL" <<'EOF' 2>/dev/null || true
import os, sys
for p in sys.argv[1:]:
    files = [os.path.join(p, f) for f in os.listdir(p)] if os.path.isdir(p) else [p]
    for f in files:
        if os.path.isfile(f):
            fd = os.open(f, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
EOF
}

# run_one PROGRAM:STRATEGY ROUND: appends "config round kills status last-line"
# to $OUT/pages-runs.txt
run_one() {
	local prog=${1%%:*} strat=${1#*:} out=$OUT/pages-run.txt pid st k
	local -a cmd env=()
	case $prog:$strat in
	lru:libshrinker)           cmd=("$B/examples/lru" --threads 4 --seconds 12) ;;
	lru:libshrinker-1arena)    cmd=("$B/examples/lru" --threads 4 --seconds 12)
	                           env=(GLIBC_TUNABLES=glibc.malloc.arena_max=1) ;;
	lru:fixed*)                cmd=("$B/examples/lru" --threads 4 --seconds 12 --fixed-mib "${strat#fixed}") ;;
	rocksdb:libshrinker)       cmd=("$B/examples/rocksdb" "$DB" --seconds 12) ;;
	rocksdb:libshrinker-jemalloc)
	                           cmd=("$B/examples/rocksdb" "$DB" --seconds 12)
	                           env=(LD_PRELOAD="$JEMALLOC" MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0) ;;
	rocksdb:fixed*)            cmd=("$B/examples/rocksdb" "$DB" --seconds 12 --cache-mib "${strat#fixed}") ;;
	sqlite:libshrinker)        cmd=("$B/examples/sqlite" "$SQL" --seconds 12) ;;
	sqlite:fixed*)             cmd=("$B/examples/sqlite" "$SQL" --seconds 12 --cache-kib $((${strat#fixed} * 1024))) ;;
	esac
	drop_db_cache
	make_cgroup pages-$$ $((256 * MiB)) || { echo "pages: $note" >&2; exit 1; }
	start_in_cgroup "$out" env "${env[@]}" "${cmd[@]}"
	pid=$!
	start_in_cgroup /dev/null "$B/competitor" --take $((96 * MiB)) --after 6000 --hold 4000
	st=0
	wait "$pid" 2>/dev/null || st=$?
	wait 2>/dev/null || true
	k=$(oom_kills)
	remove_cgroup
	echo "$1 $2 ${k:-0} $st $(tail -n 1 "$out")" >> "$OUT/pages-runs.txt"
}

: "${PAGES_REPORT:=}"
if [ -z "$PAGES_REPORT" ]; then
	: > "$OUT/pages-runs.txt"
	date -u +%Y-%m-%d > "$OUT/pages-date"
	for r in $(seq "$ROUNDS"); do
		# The competitor alone in an empty cgroup: how fast it takes
		# its 96 MiB on this machine that day.
		make_cgroup pages-alone-$$ $((256 * MiB)) || { echo "pages: $note" >&2; exit 1; }
		start_in_cgroup "$OUT/pages-alone-r$r.jsonl" "$B/competitor" --take $((96 * MiB)) --hold 100
		wait
		remove_cgroup
		for c in "${configs[@]}"; do
			run_one "$c" "$r"
		done
	done
fi

day=$(cat "$OUT/pages-date" 2>/dev/null || date -u +%Y-%m-%d)
# The table: per configuration, killed runs, and over the runs that lived
# the median (min-max) of lookups/s, the return learned and RSS given back
# over bytes reported freed.
{
	echo "<!-- pages:begin -->"
	echo
	echo "## Caches of malloc()ed entries: frees that come back as pages in part"
	echo
	echo "Written by \`make bench-pages\` (bench/pages.sh) on $day: $(nproc) cores, Linux $(uname -r)."
	echo "Caches of malloc()ed entries in $where, 256 MiB, a competitor taking 96 MiB"
	echo "as fast as it can 6 s in ($ROUNDS interleaved rounds; alone in an empty cgroup it took it at"
	echo "$(competitor_speed $(for r in $(seq "$ROUNDS"); do echo "$OUT/pages-alone-r$r.jsonl"; done)) that day):"
	echo
	echo "| program | strategy | OOM-killed runs | lookups/s | return learned (permille) | RSS given back / bytes freed |"
	echo "|---|---|---|---|---|---|"
	for c in "${configs[@]}"; do
		awk -v c="$c" -v rounds="$ROUNDS" '
		function med(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
		}
		function fmt(a, n, scale, unit) {
			if (!n) return "-"
			return sprintf("%.0f%s (%.0f-%.0f)", med(a, n) / scale, unit, a[1] / scale, a[n] / scale)
		}
		$1 == c {
			if ($3 > 0 || $4 != 0) { killed++; next }
			for (i = 5; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			ok++; per[ok] = v["per_s"]
			if (v["mode"] == "shrinker") {
				nr++; ret[nr] = v["returned_permille"]
				if (v["freed"] > 0) { ng++; given[ng] = 100 * v["rss_returned"] / v["freed"] }
			}
		}
		END {
			split(c, pc, ":")
			printf "| %s | %s | %d of %d | %s | %s | %s |\n", pc[1], pc[2], killed, rounds,
				fmt(per, ok, 1000, " k"), fmt(ret, nr, 1, ""), fmt(given, ng, 1, " %")
		}' "$OUT/pages-runs.txt"
	done
	echo
	echo "*return learned*: the share of the bytes the callbacks reported freed that left the process's"
	echo "RSS, as the library learned it (\`shrinker_stats.returned_permille\`); *RSS given back*: RSS"
	echo "before minus after each request over the bytes reported freed, from the library's statistics."
	echo
	echo "<!-- pages:end -->"
} > "$OUT/pages.md"
cat "$OUT/pages.md"
# A full run goes into BENCHMARKS.md, in place of the last one.
if [ -z "$ONLY${PAGES_CONFIGS:-}" ]; then
	section_replace pages "$OUT/pages.md"
fi
