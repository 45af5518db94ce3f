#!/usr/bin/env bash
# memory-hog's demo (make demo): memory-hog runs for about 30 s inside a child
# memory cgroup of 512 MiB; at 10 s a second process in the same cgroup takes
# 60 % of the limit and gives it back at 20 s.  memory-hog has no size
# setting: its caches grow to what the cgroup allows, make room for the
# competitor and grow back.  The kernel's own counters give the verdict.
#
# Environment: LIMIT_MB (512), DURATION (30), COMPETITOR_AT (10),
# COMPETITOR_FOR (10), COMPETITOR_SHARE (60), HOG, COMPETITOR (programs),
# OUT (build/demo), HOG_ARGS (memory-hog options; default --rate 16000: a
# busy cache, 2 threads x 16000 operations/s, that fills its 489 MiB in
# about a second, so that the mean shows how the caches are sized and not
# how long memory-hog's skewed keys take to miss on the cold ones: at the
# default 2000/s the fill takes 7 s and the mean is 59 % instead of 69 %).
set -euo pipefail

LIMIT_MB=${LIMIT_MB:-512}
DURATION=${DURATION:-30}
COMPETITOR_AT=${COMPETITOR_AT:-10}
COMPETITOR_FOR=${COMPETITOR_FOR:-10}
COMPETITOR_SHARE=${COMPETITOR_SHARE:-60}
HOG=${HOG:-build/default-cc/memory-hog}
COMPETITOR=${COMPETITOR:-build/default-cc/competitor}
OUT=${OUT:-build/demo}
HOG_ARGS=${HOG_ARGS---rate 16000}

limit=$((LIMIT_MB * 1024 * 1024))
take=$((limit * COMPETITOR_SHARE / 100))
mkdir -p "$OUT"
rm -f "$OUT"/hog.jsonl "$OUT"/competitor.jsonl "$OUT"/demo.png "$OUT"/summary.txt "$OUT"/alone.jsonl "$OUT"/beside.jsonl "$OUT"/beside-hog.jsonl

budget_env=()
# shellcheck source=scripts/cgroup-lib.sh
. "$(dirname "$0")/cgroup-lib.sh"

# Wait for the programs started here, never for every child: a systemd
# scope's placeholder process (cgroup-lib.sh) is one, and lives a day.
cleanup() {
	local p
	for p in ${pids:-}; do kill "$p" 2>/dev/null || true; done
	for p in ${pids:-}; do wait "$p" 2>/dev/null || true; done
	remove_cgroup
}
trap cleanup EXIT

# Start "$@" inside the child cgroup (if any), output to a file.
run_in_cgroup() {
	local outfile=$1
	shift
	if [ -n "$cg" ]; then
		(echo "$BASHPID" > "$cg/cgroup.procs" && exec env "${budget_env[@]}" "$@") > "$outfile" &
	else
		(exec env "${budget_env[@]}" "$@") > "$outfile" &
	fi
	pids="${pids:-} $!"
}

for prog in "$HOG" "$COMPETITOR"; do
	[ -x "$prog" ] || { echo "demo: $prog is not built (run make)" >&2; exit 1; }
done

competitor=yes
if make_cgroup memory-hog-demo-$$ "$limit"; then
	echo "demo: memory-hog in a memory cgroup (cgroup v$cgver) limited to $LIMIT_MB MiB,"
	echo "      $placement:"
	echo "      $cg"
	# cgroup v2 says nothing before memory.max, where the kernel's reclaim
	# gives up within milliseconds: a competitor that appears and takes
	# 60 % at once can be OOM-killed, with us, before anyone can react.
	# memory.high is where it throttles the allocating threads instead:
	# the limit the caches size themselves to, with memory.max an eighth
	# above it as the wall (README, "Known limits").
	if [ "$cgver" = 2 ] && [ -w "$cg/memory.high" ] &&
		echo $((limit + limit / 8)) > "$cg/memory.max" && echo "$limit" > "$cg/memory.high"; then
		echo "      (cgroup v2: memory.high $LIMIT_MB MiB, memory.max $((LIMIT_MB + LIMIT_MB / 8)) MiB)"
		placement="$placement; memory.high $LIMIT_MB MiB under memory.max $((LIMIT_MB + LIMIT_MB / 8)) MiB"
	fi
	where=$placement
	echo "demo: for ${DURATION} s; at ${COMPETITOR_AT} s a competitor takes ${COMPETITOR_SHARE} % of the limit for ${COMPETITOR_FOR} s."
else
	# A budget is measured against our own RSS: it cannot see another
	# process, so a competitor would show nothing of what the library
	# does.  Say so, and run without one.
	budget_env=("SHRINKER_LIMIT=${LIMIT_MB}M")
	competitor=""
	echo "demo: NOTE: no memory cgroup: $note."
	echo "      Running memory-hog alone under a self-imposed budget (SHRINKER_LIMIT=${LIMIT_MB}M)"
	echo "      for ${DURATION} s.  A budget cannot see other processes, so there is no"
	echo "      competitor: run as root on a machine with a memory cgroup (or systemd) to see"
	echo "      memory-hog yield to one."
fi
echo

# shellcheck disable=SC2086
run_in_cgroup "$OUT/hog.jsonl" "$HOG" --json --duration "${DURATION}s" $HOG_ARGS
hog_pid=$!
if [ -n "$competitor" ]; then
	run_in_cgroup "$OUT/competitor.jsonl" "$COMPETITOR" --take "$take" \
		--after $((COMPETITOR_AT * 1000)) --hold $((COMPETITOR_FOR * 1000))
else
	: > "$OUT/competitor.jsonl"
fi

# A line a second while it runs.
while kill -0 "$hog_pid" 2>/dev/null; do
	sleep 1
	awk -v limit="$limit" '
		function num(key,   m) {
			if (match($0, "\"" key "\":[-0-9.eE]+")) return substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
			return 0
		}
		FILENAME ~ /competitor/ { held = num("held") }
		/"type":"sample"/ { t = num("t"); cache = num("cache"); rss = num("rss"); soft = num("soft_events"); hard = num("hard_events"); hit = num("hit_rate") }
		END {
			if (t) printf "  %5.1f s  cache %4.0f MiB  rss %4.0f MiB  competitor %4.0f MiB  | shrinks: %d soft, %d hard | hits %4.1f %%\n", t, cache / 1048576, rss / 1048576, held / 1048576, soft, hard, hit
		}' "$OUT/hog.jsonl" "$OUT/competitor.jsonl" 2>/dev/null || true
done
wait "$hog_pid" || hog_status=$?
hog_status=${hog_status:-0}
for p in $pids; do wait "$p" 2>/dev/null || true; done
pids=""

oom=""
: > "$OUT/competitor.tsv"
hits=""
[ -z "$cg" ] || { oom=$(oom_kills); hits=$(limit_hits); }

# The competitor's time next to memory-hog's means something only against
# its time here today without the shared limit, twice, in a fresh cgroup of
# the same limit right after: alone (nobody in its way), and beside the
# same memory-hog load kept out of its cgroup (memory-hog under a budget of
# the same size, filled first).  Alone to beside is this machine's CPU and
# page-fault cost of running both (on two cores it is most of it); beside
# to the run above is what sharing the limit costs.
alone_ms=""
beside_ms=""
if [ -n "$competitor" ]; then
	remove_cgroup
	if make_cgroup memory-hog-alone-$$ "$limit"; then
		start_in_cgroup "$OUT/alone.jsonl" "$COMPETITOR" --take "$take" --hold 0
		wait $! || true
		alone_ms=$(grep -o '"took_ms":[0-9.]*' "$OUT/alone.jsonl" | head -1 | cut -d: -f2)
		# shellcheck disable=SC2086
		SHRINKER_LIMIT=${LIMIT_MB}M "$HOG" --json --duration "$((DURATION + 30))s" $HOG_ARGS \
			> "$OUT/beside-hog.jsonl" 2>/dev/null &
		bhog=$!
		pids="$bhog"
		# Until its caches have filled their budget (at most 10 s).
		wait_filled "$OUT/beside-hog.jsonl" $((limit * 9 / 10)) || true
		start_in_cgroup "$OUT/beside.jsonl" "$COMPETITOR" --take "$take" --hold 0
		wait $! || true
		kill -INT "$bhog" 2>/dev/null
		wait "$bhog" 2>/dev/null || true
		pids=""
		beside_ms=$(grep -o '"took_ms":[0-9.]*' "$OUT/beside.jsonl" | head -1 | cut -d: -f2)
		remove_cgroup
	fi
fi

# The figures, from the JSON lines.
awk -v limit="$limit" -v oom="${oom:-n/a (no cgroup)}" -v status="$hog_status" -v dir="$OUT" \
	-v where="${where:-no cgroup: a self-imposed budget (SHRINKER_LIMIT), which cannot see other processes}" \
	-v alone="${competitor:+no}" -v alone_ms="${alone_ms:-0}" -v beside_ms="${beside_ms:-0}" \
	-v hits="$hits" -v alone_cpu="$(take_cpu "$OUT/alone.jsonl")" -v beside_cpu="$(take_cpu "$OUT/beside.jsonl")" \
	-v comp_cpu="$(take_cpu "$OUT/competitor.jsonl")" '
	function num(key,   m) {
		if (match($0, "\"" key "\":[-0-9.eE]+")) return substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
		return 0
	}
	FILENAME ~ /competitor/ {
		ev = $0; m = num("mono")
		if (ev ~ /"allocating"/ && !comp_start) comp_start = m
		if (ev ~ /"allocated"/) { comp_took = num("took_ms"); comp_held = num("held"); comp_done = m }
		if (ev ~ /"released"/) comp_end = m
		print m, num("held") > (dir "/competitor.tsv")
		next
	}
	/"type":"sample"/ {
		t = num("t"); m = num("mono"); c = num("cache")
		if (!t0) t0 = m - t
		if (n++) { sum += (t - pt) * (c + pc) / 2; T += t - pt }
		pt = t; pc = c
		if (c > peak) peak = c
		l = num("limit"); if (l && (!lim || l < lim)) lim = l
		print t, c / 1048576, num("blobs") / 1048576, num("records") / 1048576, num("rss") / 1048576, l / 1048576 > (dir "/hog.tsv")
	}
	/"type":"summary"/ { nre = num("reactions"); re50 = num("reaction_p50_ms"); re99 = num("reaction_p99_ms"); remax = num("reaction_max_ms") }
	/"type":"event"/ {
		fc = num("first_call_mono")
		if (comp_start && fc >= comp_start && !reaction) reaction = fc - comp_start
		if (!comp_start && fc && !first_any) first_any = fc
		print num("t"), num("cache") / 1048576, ($0 ~ /"kind":"hard"/) ? 1 : 0 > (dir "/events.tsv")
	}
	END {
		if (!lim) lim = limit
		printf "memory-hog demo summary\n"
		printf "  where                  %s\n", where
		printf "  limit                  %.0f MiB\n", lim / 1048576
		printf "  OOM kills              %s\n", oom
		printf "  memory-hog exit status %d\n", status
		printf "  cache peak             %.1f MiB = %.1f %% of the limit\n", peak / 1048576, 100 * peak / lim
		if (T > 0) printf "  cache mean             %.1f MiB = %.1f %% of the limit\n", sum / T / 1048576, 100 * sum / T / lim
		if (alone != "no")
			printf "  competitor             none: a budget cannot see other processes, so this run shows\n                         the caches filling their budget, not yielding to a neighbour\n"
		if (comp_start) {
			printf "  competitor             took %.0f MiB in %.0f ms", comp_held / 1048576, comp_took
			printf " (at %.1f s), gave it back at %.1f s\n", comp_start - t0, comp_end - t0
			if (alone_ms > 0)
				printf "  competitor alone       %.0f ms for the same take in a fresh cgroup: %.2fx\n", alone_ms, comp_took / alone_ms
			if (beside_ms > 0)
				printf "  competitor beside      %.0f ms, memory-hog'"'"'s same load running outside its cgroup: %.2fx\n", beside_ms, comp_took / beside_ms
			if (comp_cpu + 0 > 0 && alone_cpu + 0 > 0 && beside_cpu + 0 > 0)
				printf "  competitor CPU         %.0f ms here, %.0f alone, %.0f beside: its own page faults (user + system)\n", comp_cpu, alone_cpu, beside_cpu
			if (hits != "")
				printf "  limit hits             %s: allocations that found the cgroup at its limit (and waited in its reclaim)\n", hits
			if (reaction) printf "  first shrink           %.1f ms after the competitor began to allocate\n", reaction * 1000
			else printf "  first shrink           none after the competitor began\n"
		}
		if (nre) printf "  library reaction       %.2f ms median, %.2f ms p99, %.2f ms max: wake-up to first callback\n", re50, re99, remax
		# gnuplot wants the competitor on the same clock as the samples.
		print t0 > (dir "/t0")
	}' "$OUT/competitor.jsonl" "$OUT/hog.jsonl" | tee "$OUT/summary.txt"

if command -v gnuplot >/dev/null 2>&1; then
	t0=$(cat "$OUT/t0")
	awk -v t0="$t0" '{ printf "%.3f %.1f\n", $1 - t0, $2 / 1048576 }' "$OUT/competitor.tsv" > "$OUT/competitor-rel.tsv"
	[ -s "$OUT/events.tsv" ] || echo "-1 -1 0" > "$OUT/events.tsv"
	gnuplot <<-EOF
		set terminal pngcairo size 1100,560 font "sans,11"
		set output "$OUT/demo.png"
		set title "memory-hog in a ${LIMIT_MB} MiB cgroup: caches size themselves and yield to a competitor"
		set xlabel "seconds"
		set ylabel "MiB"
		set key outside right top
		set grid
		set xrange [0:${DURATION}]
		set yrange [0:${LIMIT_MB} * 1.1]
		plot "$OUT/hog.tsv" using 1:6 with lines lw 2 dt 2 lc rgb "black" title "limit", \
		     "$OUT/hog.tsv" using 1:2 with lines lw 2 lc rgb "#1f77b4" title "cache (total)", \
		     "$OUT/hog.tsv" using 1:3 with lines lw 1 lc rgb "#6baed6" title "  blobs", \
		     "$OUT/hog.tsv" using 1:4 with lines lw 1 lc rgb "#9ecae1" title "  records", \
		     "$OUT/hog.tsv" using 1:5 with lines lw 1 lc rgb "#2ca02c" title "RSS", \
		     "$OUT/competitor-rel.tsv" using 1:2 with steps lw 2 lc rgb "#d62728" title "competitor", \
		     "$OUT/events.tsv" using 1:(\$3 == 0 ? \$2 : 1/0) with points pt 7 ps 1 lc rgb "#ff7f0e" title "soft shrink", \
		     "$OUT/events.tsv" using 1:(\$3 == 1 ? \$2 : 1/0) with points pt 5 ps 1.2 lc rgb "#8b0000" title "hard shrink"
	EOF
	echo "  plot                   $OUT/demo.png"
else
	echo "  (install gnuplot to get the plot: apt-get install gnuplot-nox)"
fi

# The verdict: not OOM-killed (kernel's counter where there is a cgroup).
if [ "$hog_status" != 0 ] || { [ -n "$oom" ] && [ "$oom" != 0 ]; }; then
	echo "demo: FAILED: memory-hog exit status $hog_status, OOM kills ${oom:-?}" >&2
	exit 1
fi
