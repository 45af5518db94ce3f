#!/usr/bin/env bash
# make bench: every scenario x strategy, each in a fresh memory cgroup, the
# kernel's OOM counter as the verdict, BENCHMARKS.md and a plot per scenario
# written from the results.  Every run is repeated BENCH_RUNS times (3),
# interleaved (all runs once, then all again), with the competitor's
# alone-baseline taken again in each round; the tables give the median and
# the min-max spread; the report ends with the library's rows against the
# report this run replaces (bench/compare.pl), and the cache container's
# section (bench/container.sh).  About 19 minutes on 2 cores.
#
# BENCH_QUICK=1 runs one short scenario once (CI's smoke run) and writes
# nothing to the repository.  BENCH_REPORT=1 writes the report again from
# the last run's results in build/bench, running nothing.  BENCH_ALL=1 adds the strategies left out to
# keep the time (fixed:25, fixed:50, poll:5000, psi:glib; the other
# strategies in fill at 1 GiB).
# BENCH_ONLY="squeeze:256:libshrinker threads:256:libshrinker:nothr ..."
# runs those alone (BENCH_RUNS rounds) and prints their tables, writing
# nothing to the repository: for trying a change.  BENCH_OUT=DIR puts the
# results there instead of build/bench (it is emptied first), so that
# runs for trying a change neither clobber the full run's results nor
# each other's: keep the logs of a run that was OOM-killed.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/default-cc}
BENCH=$B/cachebench
COMP=$B/competitor
OUT=${BENCH_OUT:-build/bench}
MiB=1048576
# shellcheck source=scripts/cgroup-lib.sh
. scripts/cgroup-lib.sh
# shellcheck source=bench/section.sh
. bench/section.sh
mkdir -p "$OUT"
[ -n "${BENCH_REPORT:-}" ] || rm -f "$OUT"/*.jsonl "$OUT"/*.tsv "$OUT"/placement "$OUT"/commit "$OUT"/date
# The report this run replaces, for bench/compare.pl (a full run only; a
# BENCH_REPORT=1 rewrite keeps the one its run saved).
if [ -z "${BENCH_REPORT:-}${BENCH_ONLY:-}${BENCH_QUICK:-}" ]; then
	[ ! -f BENCHMARKS.md ] || cp BENCHMARKS.md "$OUT/previous.md"
	# The code that ran and the day, for the report (BENCH_REPORT=1 may
	# come later).
	git describe --always --dirty > "$OUT/commit" 2>/dev/null || rm -f "$OUT/commit"
	date -u +%Y-%m-%d > "$OUT/date"
fi

# libshrinker:nothr is the library with cgroup v1's usage thresholds turned
# off (SHRINKER_SOURCES): no kernel event before the limit but the kernel's
# own reclaim pressure, as on cgroup v2 without memory.high.
# Three rounds of everything fit in about 13 minutes with these (an OOM-killed
# run ends at the kill); BENCH_ALL=1 runs the whole set.
STRATEGIES="libshrinker libshrinker:nothr container fixed:90 poll:1000 psi:systemd"
BIG_STRATEGIES="libshrinker libshrinker:nothr fixed:90 psi:systemd"
THREAD_STRATEGIES="libshrinker libshrinker:nothr container fixed:90"
# Fill at 1 GiB: the library's two rows only (fixed:90 holds 90 % there
# as it does at 256 MiB).
BIG_FILL_STRATEGIES="libshrinker libshrinker:nothr"
if [ "${BENCH_ALL:-}" ]; then
	STRATEGIES="libshrinker libshrinker:nothr container fixed:25 fixed:50 fixed:90 poll:5000 poll:1000 psi:systemd psi:glib"
	BIG_STRATEGIES="libshrinker libshrinker:nothr container fixed:90 poll:1000 psi:systemd"
	THREAD_STRATEGIES="libshrinker libshrinker:nothr container fixed:90 poll:1000 psi:systemd"
	BIG_FILL_STRATEGIES=$BIG_STRATEGIES
fi
ROUNDS=${BENCH_RUNS:-3}
V1OFF=-cgroup-v1-threshold
# scenario  duration_ms  cachebench options / competitor options (MB = limit share)
scenario_args() {
	local s=$1 limit=$2
	case $s in
	# At 1 GiB cachebench's two workers take 5 s to fill the limit: 12 s,
	# so that the share from 3 s on is the caches' size, not their fill.
	fill)      [ "$limit" -ge $((1024 * MiB)) ] && echo "12000|" || echo "8000|" ;;
	squeeze)   echo "8000|--take $((limit / 2)) --after 4000 --hold 3000" ;;
	ramp)      echo "10000|--take $((limit * 6 / 10)) --after 3000 --steps $((limit * 6 / 10 / (4 * MiB))) --every 62 --hold 2000" ;;
	oscillate) echo "14000|--take $((limit * 4 / 10)) --after 3000 --hold 1500 --cycles 3 --pause 1500" ;;
	idle)      echo "10000|" ;;
	# 8 workers at 100000 operations/s each, as fast as 2 cores go; a
	# competitor takes 40 % at 4 s for 3 s.
	threads)   echo "8000|--take $((limit * 4 / 10)) --after 4000 --hold 3000" ;;
	esac
}

if [ "${BENCH_ONLY:-}" ]; then
	RUNS=$BENCH_ONLY
elif [ "${BENCH_QUICK:-}" ]; then
	RUNS="squeeze:256:libshrinker squeeze:256:fixed:50"
	ROUNDS=1
else
	RUNS=""
	for s in fill squeeze ramp oscillate idle; do
		for st in $STRATEGIES; do RUNS="$RUNS $s:256:$st"; done
	done
	for st in $BIG_FILL_STRATEGIES; do RUNS="$RUNS fill:1024:$st"; done
	for st in $BIG_STRATEGIES; do RUNS="$RUNS squeeze:1024:$st"; done
	for st in $THREAD_STRATEGIES; do RUNS="$RUNS threads:256:$st"; done
fi

# The competitor's arguments for a baseline: the scenario's own takes,
# without the waits.
baseline_takes() {
	local args
	args=$(scenario_args "$1" $(($2 * MiB)))
	echo "${args#*|}" | sed 's/--after [0-9]*//; s/--hold [0-9]*/--hold 0/; s/--pause [0-9]*/--pause 0/'
}

# The mean time of the takes in a competitor's JSON lines, in ms.  A take
# paced in steps (the ramp) runs from its first "allocating" to its
# "released", its steps' times summed, as summarize() and take_cpu() count
# it (this took the mean of a step, and the ramp's stall, a whole take's
# time over one step's, read 50-100 times its time alone).
mean_took() {
	awk '/"allocating"/ { if (!in_take) n++; in_take = 1 }
	     /"allocated"/ { match($0, /"took_ms":[0-9.]+/); s += substr($0, RSTART + 10, RLENGTH - 10) }
	     /"released"/ { in_take = 0 }
	     END { printf "%.1f\n", n ? s / n : 0 }' "$1"
}

# cachebench's load options for a scenario beyond the strategy's.
load_args() {
	case $1 in
	idle) echo "--idle-after 4000 --cap-percent 70" ;;
	threads) echo "--threads 8 --rate 100000" ;;
	esac
}

# The competitor alone, for its stall time: how long each take lasts with
# nobody in its way.
baseline() {
	local scenario=$1 mb=$2 round=$3 comp
	comp=$(baseline_takes "$scenario" "$mb")
	[ -n "$comp" ] || { echo 0; return; }
	[ -n "${BENCH_REPORT:-}" ] ||
		make_cgroup bench-alone-$$ $((mb * 2 * MiB)) || { echo "bench: $note" >&2; exit 1; }
	# shellcheck disable=SC2086
	if [ -z "${BENCH_REPORT:-}" ]; then
		start_in_cgroup "$OUT/alone-$scenario-$mb-r$round.jsonl" "$COMP" $comp
		wait $!
		remove_cgroup
	fi
	mean_took "$OUT/alone-$scenario-$mb-r$round.jsonl"
}

# The competitor beside the same load, for the machine's share of its
# stall: cachebench (libshrinker, the scenario's threads) under a budget of
# the limit's size outside the competitor's cgroup, filled first, so that
# nothing is shared but the CPU and the kernel; the competitor's takes as
# in baseline().  Only for the scenarios of one sudden take (squeeze,
# threads), to keep make bench near its 15 minutes.
beside() {
	local scenario=$1 mb=$2 round=$3 comp bpid out
	out="$OUT/beside-$scenario-$mb-r$round"
	comp=$(baseline_takes "$scenario" "$mb")
	if [ -z "${BENCH_REPORT:-}" ]; then
		# shellcheck disable=SC2046
		SHRINKER_LIMIT=${mb}M "$BENCH" --strategy libshrinker --duration 60000 $(load_args "$scenario") \
			> "$out.load.jsonl" 2>/dev/null &
		bpid=$!
		wait_filled "$out.load.jsonl" $((mb * MiB * 85 / 100)) || true
		make_cgroup bench-beside-$$ $((mb * 2 * MiB)) || { kill "$bpid"; echo "bench: $note" >&2; exit 1; }
		# shellcheck disable=SC2086
		start_in_cgroup "$out.jsonl" "$COMP" $comp
		wait $!
		remove_cgroup
		kill "$bpid" 2>/dev/null
		wait "$bpid" 2>/dev/null || true
	fi
	mean_took "$out.jsonl"
}

run_one() {
	local scenario=$1 mb=$2 strategy=$3 round=$4 limit=$(($2 * MiB)) args dur comp tag extra=""
	args=$(scenario_args "$scenario" $limit)
	dur=${args%%|*}
	comp=${args#*|}
	tag="$scenario-$mb-${strategy/:/-}-r$round"
	extra=$(load_args "$scenario")
	local sources="" st=$strategy
	if [ "$strategy" = libshrinker:nothr ]; then
		sources=$V1OFF
		st=libshrinker
	fi
	make_cgroup "bench-$tag-$$" $limit || { echo "bench: $note" >&2; exit 1; }
	[ -s "$OUT/placement" ] || echo "$placement" > "$OUT/placement"
	# shellcheck disable=SC2086
	start_in_cgroup "$OUT/$tag.jsonl" env SHRINKER_SOURCES="$sources" "$BENCH" \
		--strategy "$st" --duration "$dur" $extra
	local bpid=$! cpid first=""
	if [ -n "$comp" ]; then
		# shellcheck disable=SC2086
		start_in_cgroup "$OUT/$tag.comp.jsonl" "$COMP" $comp
		cpid=$!
		# An OOM kill is the run's verdict: nothing after it is used, so
		# the competitor is stopped there rather than left to finish its
		# takes and holds (a third of make bench's time went to runs
		# already lost).
		wait -n -p first "$bpid" "$cpid" 2>/dev/null || true
		if [ "${first:-}" = "$bpid" ] && [ "$(oom_kills)" -gt 0 ] 2>/dev/null; then
			kill "$cpid" 2>/dev/null || true
		fi
		wait "$cpid" 2>/dev/null || true
	else
		: > "$OUT/$tag.comp.jsonl"
	fi
	wait $bpid 2>/dev/null || true
	echo "$tag $(oom_kills) $(limit_hits)" >> "$OUT/oom.tsv"
	remove_cgroup
	printf '.'
}

echo "bench: $(echo $RUNS | wc -w) runs x $ROUNDS rounds, interleaved"
declare -A base bes
for round in $(seq 1 "$ROUNDS"); do
	# The competitor alone, next to this round's runs: the machine's
	# speed drifts during a bench.
	for s in squeeze ramp oscillate threads; do base[$s-256-r$round]=$(baseline $s 256 $round); done
	[ "${BENCH_QUICK:-}" ] || base[squeeze-1024-r$round]=$(baseline squeeze 1024 $round)
	if [ -z "${BENCH_QUICK:-}" ]; then
		for sm in squeeze:256 threads:256 squeeze:1024; do
			case " $RUNS " in *" ${sm}:"*) bes[${sm/:/-}-r$round]=$(beside "${sm%:*}" "${sm#*:}" "$round") ;; esac
		done
	fi
	[ -z "${BENCH_REPORT:-}" ] || continue
	for r in $RUNS; do
		IFS=: read -r s mb st1 st2 <<< "$r"
		run_one "$s" "$mb" "$st1${st2:+:$st2}" "$round"
	done
	echo " round $round"
done

# The machine's speed today: MiB/s at which the competitor alone faults in
# fresh pages (the squeeze take at 256 MiB), median over the rounds.
speed() {
	local round
	competitor_speed $(for round in $(seq 1 "$ROUNDS"); do echo "$OUT/alone-squeeze-256-r$round.jsonl"; done)
}

# One row per run: the figures from its JSON lines.
summarize() {
	local tag=$1 limit=$2 base=$3 beside=${4:-0}
	awk -v limit="$limit" -v base="$base" -v beside="$beside" -v oom="$(awk -v t="$tag" '$1 == t { print $2 }' "$OUT/oom.tsv")" \
	    -v hits="$(awk -v t="$tag" '$1 == t { print ($3 == "" ? "-" : $3) }' "$OUT/oom.tsv")" \
	    -v cpu="$(take_cpu "$OUT/$tag.comp.jsonl")" '
		function num(key) {
			if (match($0, "\"" key "\":[-0-9.eE]+")) return substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
			return 0
		}
		FILENAME == ARGV[1] && /"allocating"/ { if (!in_take) { nt++; take_at[nt] = num("mono") } in_take = 1 }
		FILENAME == ARGV[1] && /"allocated"/ { took[nt] += num("took_ms"); held = num("held") }
		FILENAME == ARGV[1] && /"released"/ { in_take = 0 }
		FILENAME == ARGV[1] { ev[++ne] = num("mono"); evheld[ne] = num("held") }
		FILENAME == ARGV[2] && /"start"/ { t0 = num("mono") }
		FILENAME == ARGV[2] && /"shrink"/ { sh[++ns] = num("mono") }
		FILENAME == ARGV[2] && /"sample"/ {
			m = num("mono"); c = num("cache")
			# The competitor holds what its last event said.
			h = 0; for (i = 1; i <= ne; i++) if (ev[i] <= m) h = evheld[i]
			if (m - t0 >= 3) { cs += c; can += limit - h; n++ }
		}
		FILENAME == ARGV[2] && /"summary"/ { iw = num("idle_wakeups"); ic = num("idle_cpu_ms"); is = num("idle_s"); rb = num("rss_released"); lf = num("lib_freed"); shr = num("shrinks"); nre = num("reactions"); re50 = num("reaction_p50_ms"); re99 = num("reaction_p99_ms") }
		END {
			# Reaction: first shrink at or after each take began.
			nr = 0
			for (k = 1; k <= nt; k++) {
				best = -1
				for (i = 1; i <= ns; i++) if (sh[i] >= take_at[k] && (best < 0 || sh[i] < best)) best = sh[i]
				if (best >= 0) r[++nr] = (best - take_at[k]) * 1000
			}
			for (i = 1; i <= nr; i++) for (j = i + 1; j <= nr; j++) if (r[j] < r[i]) { x = r[i]; r[i] = r[j]; r[j] = x }
			p50 = nr ? r[int((nr + 1) / 2)] : -1; p99 = nr ? r[nr] : -1
			stall = 0; for (k = 1; k <= nt; k++) stall += took[k] - base
			# A strategy that was OOM-killed left the competitor alone:
			# no stall to speak of.
			if (oom > 0) nt = 0
			printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", oom, (n && oom == 0 ? sprintf("%.0f", 100 * cs / can) : "-"),
				(nt && base > 0 ? sprintf("%.0f", 100 * (stall / nt) / base) : "-"), (nr ? sprintf("%.1f", p50) : "-"), (nr ? sprintf("%.1f", p99) : "-"),
				(nt ? sprintf("%.0f", stall / nt) : "-"),
				(is > 0 ? sprintf("%.2f", iw / is) : "-"), (is > 0 ? sprintf("%.3f", ic / is / 10) : "-"),
				(lf > 0 ? sprintf("%.0f", 100 * rb / lf) : "-"), shr,
				(nre ? sprintf("%.1f", re50) : "-"), (nre ? sprintf("%.1f", re99) : "-"),
				(nt && beside > 0 ? sprintf("%.0f", 100 * (stall / nt + base - beside) / beside) : "-"),
				(hits == "" ? "-" : hits), (nt && cpu + 0 > 0 ? cpu : "-")
		}' "$OUT/$tag.comp.jsonl" "$OUT/$tag.jsonl"
}

# The median and the min-max of a column of numbers ("-" ignored): "m (lo-hi)".
spread() {
	sort -g | awk '$1 != "-" { v[++n] = $1 } END {
		if (!n) { printf "-"; exit }
		m = v[int((n + 1) / 2)]
		if (n == 1 || v[1] == v[n]) printf "%s", m; else printf "%s (%s-%s)", m, v[1], v[n] }'
}

# Every round's row of one scenario x strategy, one column of it.
column() {
	local tag=$1 mb=$2 scenario=$3 col=$4 round
	for round in $(seq 1 "$ROUNDS"); do
		summarize "$tag-r$round" $((mb * MiB)) "${base[$scenario-$mb-r$round]:-0}" \
			"${bes[$scenario-$mb-r$round]:-0}" | cut -f"$col"
	done
}

table() {
	local scenario=$1 mb=$2 strategies=$3 tag oom kills share ratio p50 p99 stall shr r50 r99 over hits cpu
	echo
	echo "### $scenario, $mb MiB"
	echo
	echo "| strategy | OOM kills | cache share % | first shrink p50 ms | p99 ms | library reaction p50 / p99 ms | competitor stall ms | stall, % of alone | time, % over beside | competitor CPU ms | limit hits | shrinks |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for st in $strategies; do
		tag="$scenario-$mb-${st/:/-}"
		[ -s "$OUT/$tag-r1.jsonl" ] || continue
		kills=$(column "$tag" "$mb" "$scenario" 1 | awk '$1 > 0 { k++ } END { printf "%d", k }')
		share=$(column "$tag" "$mb" "$scenario" 2 | spread)
		ratio=$(column "$tag" "$mb" "$scenario" 3 | spread)
		p50=$(column "$tag" "$mb" "$scenario" 4 | spread)
		p99=$(column "$tag" "$mb" "$scenario" 5 | spread)
		stall=$(column "$tag" "$mb" "$scenario" 6 | spread)
		shr=$(column "$tag" "$mb" "$scenario" 10 | spread)
		r50=$(column "$tag" "$mb" "$scenario" 11 | spread)
		r99=$(column "$tag" "$mb" "$scenario" 12 | spread)
		over=$(column "$tag" "$mb" "$scenario" 13 | spread)
		hits=$(column "$tag" "$mb" "$scenario" 14 | spread)
		cpu=$(column "$tag" "$mb" "$scenario" 15 | spread)
		echo "| $st | $kills of $ROUNDS | $share | $p50 | $p99 | $r50 / $r99 | $stall | $ratio | $over | $cpu | $hits | $shr |"
	done
}

if [ "${BENCH_QUICK:-}" ]; then
	table squeeze 256 "libshrinker fixed:50"
	exit 0
fi
if [ "${BENCH_ONLY:-}" ]; then
	echo "machine speed: $(speed)"
	for sm in $(for r in $RUNS; do echo "${r%%:*}:$(echo "$r" | cut -d: -f2)"; done | sort -u); do
		sts=$(for r in $RUNS; do case $r in "$sm":*) echo "${r#"$sm":}";; esac; done | tr '\n' ' ')
		table "${sm%%:*}" "${sm#*:}" "$sts"
	done
	exit 0
fi

# The report.
{
	echo "# Benchmarks"
	echo
	commit=$(cat "$OUT/commit" 2>/dev/null || true)
	echo "Written by \`make bench\` (bench/run.sh) on $(cat "$OUT/date" 2>/dev/null || date -u +%Y-%m-%d)${commit:+ at commit \`$commit\`}: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo),"
	echo "Linux $(uname -r), cgroup v${cgver:-$(grep -q '^[0-9]*:[^:]*memory' /proc/self/cgroup && echo 1 || echo 2)} memory controller. Every run is a fresh memory cgroup; the"
	echo "kernel's OOM kill counter is the verdict. All strategies are modes of one program"
	echo "(\`bench/cachebench\`: memory-hog's two caches and worker threads, 2 threads x 8000 operations/s),"
	echo "so only the strategy differs. The competitor is \`tools/competitor\`, a process without the library."
	echo
	echo "Strategies: **libshrinker** (defaults; caches ask \`shrinker_may_grow()\`); **fixed:P** (a cache"
	echo "size setting of P % of the limit); **poll:MS** (a thread reads the cgroup's usage every MS: at 90 %"
	echo "it frees a quarter of the caches, at 95 % all, then holds off 1 s, after WebKit's Linux"
	echo "MemoryPressureHandler: a 1 s usage poller, non-critical and critical thresholds at 0.8/0.9 of its"
	echo "limit in one variant, critical releasing everything, a 1 s hold-off; its generic poll is 30 s);"
	echo "**psi:systemd** (PSI trigger \`some 200000 2000000\`, systemd's default MEMORY_PRESSURE_WRITE; each"
	echo "event frees a quarter); **psi:glib** (triggers at 70 and 100 ms per 2 s, one signal per level per"
	echo "15 s, caches dropped at the second level as GLib's documented example does; the 70/100 ms figures"
	echo "are the issue's, not checked against GLib's source here). This machine's memory cgroup is v1,"
	echo "so the PSI strategies watch /proc/pressure/memory."
	echo
	echo "Scenarios (the competitor shares are of the limit): **fill** (grow and hold, 8 s; 12 s at 1 GiB,"
	echo "which cachebench's two workers take 5 s to fill); **squeeze**"
	echo "(at 4 s the competitor takes 50 % as fast as it can, for 3 s); **ramp** (at 3 s it takes 60 % at"
	echo "64 MiB/s, holds 2 s, gives it back); **oscillate** (from 3 s it takes 40 %, holds 1.5 s, gives it"
	echo "back, three times: the reaction percentiles are over these takes); **idle** (the caches capped at"
	echo "70 % of the limit, workers stopped at 4 s, 6 s of nothing); **threads** (8 workers at 100000"
	echo "operations/s each, all the CPU there is, and at 4 s the competitor takes 40 % for 3 s)."
	echo "**libshrinker:nothr** is the library with the cgroup v1 usage thresholds turned off"
	echo "(\`SHRINKER_SOURCES=-cgroup-v1-threshold\`), which is what cgroup v2 without memory.high offers:"
	echo "no kernel event before the limit, the kernel's own reclaim pressure at it (v1 pressure levels here,"
	echo "memory.events and PSI on v2); its poll and growth clock do the rest. (The race table below turns the"
	echo "pressure levels off too.) **container** is the library's cache (\`<shrinker-cache.h>\`) holding the"
	echo "same entries, as memory-hog's native mode does: it asks before it grows, replaces its own entries"
	echo "when refused, and frees whole segments in its own shrinkers."
	echo
	echo "Every scenario x strategy ran $ROUNDS times, interleaved (everything once, then again), each"
	echo "round with its own competitor-alone baseline; every figure is the **median** of the rounds with the"
	echo "**min-max** in brackets. The machine's speed that day, the rate at which the competitor alone faulted"
	echo "in fresh pages: **$(speed)** (compare tables by it: the same code ran 6-10 times slower on"
	echo "a slow day). Cgroups: $(cat "$OUT/placement" 2>/dev/null || echo "?")."
	echo
	echo "Columns: *cache share* is the time-averaged cache divided by the time-averaged memory it could"
	echo "have used (the limit less what the competitor held, as it reports every 8 MiB of a take), from"
	echo "3 s on; *first shrink* is the time from"
	echo "the competitor beginning to allocate to the first shrink (p99 is the largest of the takes), which"
	echo "includes how long the machine takes to fault in the pages up to the watermark; *library reaction*"
	echo "is libshrinker's own figure (\`shrinker_get_global_stats()\`: from the wake-up that found the"
	echo "pressure to the first callback), independent of the machine's page-fault speed; *competitor stall*"
	echo "is how much longer each of its takes lasted than the same take alone (alone, medians: squeeze"
	echo "$(for r in $(seq 1 "$ROUNDS"); do echo "${base[squeeze-256-r$r]}"; done | spread) ms, ramp"
	echo "$(for r in $(seq 1 "$ROUNDS"); do echo "${base[ramp-256-r$r]}"; done | spread) ms, oscillate"
	echo "$(for r in $(seq 1 "$ROUNDS"); do echo "${base[oscillate-256-r$r]}"; done | spread) ms per take at 256 MiB;"
	echo "squeeze $(for r in $(seq 1 "$ROUNDS"); do echo "${base[squeeze-1024-r$r]}"; done | spread) ms at 1 GiB), and as a share of alone; *time, % over"
	echo "beside* is how much longer its take lasted than beside the same load with no limit shared"
	echo "(squeeze and threads: cachebench under a budget of the limit's size, outside the competitor's"
	echo "cgroup; medians: squeeze $(for r in $(seq 1 "$ROUNDS"); do echo "${bes[squeeze-256-r$r]}"; done | spread) ms, threads"
	echo "$(for r in $(seq 1 "$ROUNDS"); do echo "${bes[threads-256-r$r]}"; done | spread) ms at 256 MiB, squeeze $(for r in $(seq 1 "$ROUNDS"); do echo "${bes[squeeze-1024-r$r]}"; done | spread) ms at 1 GiB):"
	echo "the competitor's time minus what this machine's CPU and kernel cost it anyway; *competitor CPU*"
	echo "is its own CPU time per take (user + system, from getrusage: nearly all of it faulting its pages"
	echo "in; alone, medians: squeeze $(for r in $(seq 1 "$ROUNDS"); do take_cpu "$OUT/alone-squeeze-256-r$r.jsonl"; done | spread) ms at 256 MiB, $(for r in $(seq 1 "$ROUNDS"); do take_cpu "$OUT/alone-squeeze-1024-r$r.jsonl"; done | spread) ms at 1 GiB;"
	echo "beside, squeeze $(for r in $(seq 1 "$ROUNDS"); do take_cpu "$OUT/beside-squeeze-256-r$r.jsonl"; done | spread) ms at 256 MiB, $(for r in $(seq 1 "$ROUNDS"); do take_cpu "$OUT/beside-squeeze-1024-r$r.jsonl"; done | spread) ms at 1 GiB):"
	echo "a take that lasts longer with the same CPU time waited (for the CPU, or in the kernel's reclaim),"
	echo "one whose CPU time grew did the same work slower; *limit hits* is how often an allocation in the"
	echo "cgroup found its usage at the limit (cgroup v1 \`memory.failcnt\`; v2 \`memory.events\` max), where"
	echo "the allocating process, the competitor or ours, waits in the kernel's reclaim. A run that"
	echo "was OOM-killed has no cache share, and ends at the kill. Left out to keep \`make bench\` near 13"
	echo "minutes (\`BENCH_ALL=1\` runs them): fixed:25, fixed:50, poll:5000 and psi:glib, all but the"
	echo "library's two rows in fill at 1 GiB, and poll:1000 (and psi:systemd in threads) in the 1 GiB"
	echo "and threads scenarios."
	for s in fill squeeze ramp oscillate; do
		table "$s" 256 "$STRATEGIES"
	done
	table fill 1024 "$BIG_FILL_STRATEGIES"
	table squeeze 1024 "$BIG_STRATEGIES"
	table threads 256 "$THREAD_STRATEGIES"
	echo
	echo "### idle, 256 MiB: the strategy's own thread over 6 s of nothing"
	echo
	echo "| strategy | wake-ups/s | CPU % |"
	echo "|---|---:|---:|"
	for st in $STRATEGIES; do
		tag="idle-256-${st/:/-}"
		echo "| $st | $(column "$tag" 256 idle 7 | spread) | $(column "$tag" 256 idle 8 | spread) |"
	done
	echo
	echo "### memory really given back (libshrinker, container)"
	echo
	echo "RSS before minus after each round (with \`malloc_trim(0)\`), as a share of the bytes the"
	echo "shrinkers reported freed (above 100 % when the trim also returns what the caches freed"
	echo "outside shrinker rounds, an entry replaced when the cache is full; below when other memory"
	echo "of the process grew meanwhile):"
	echo
	echo "| scenario | RSS given back, libshrinker | container |"
	echo "|---|---:|---:|"
	for s in squeeze ramp oscillate; do
		echo "| $s | $(column "$s-256-libshrinker" 256 "$s" 9 | spread) % | $(column "$s-256-container" 256 "$s" 9 | spread) % |"
	done
	echo
	for s in squeeze ramp oscillate; do
		echo "![$s](docs/bench-$s.png)"
	done
	echo
} > "$OUT/tables.md"
{
	cat "$OUT/tables.md"
	# This run against the one it replaces: is each of the library's
	# medians within the other run's spread?
	if [ -f "$OUT/previous.md" ]; then
		echo "<!-- compare:begin -->"
		echo
		perl bench/compare.pl "$OUT/previous.md" "$OUT/tables.md"
		echo
		echo "<!-- compare:end -->"
		echo
	fi
	# The tables of make bench-race, bench-race-many, bench-pages,
	# bench-calls and bench-procs are kept from their last runs.
	for section in race race-many pages calls procs container; do
		kept=$(section_keep "$section")
		[ -z "$kept" ] || printf '%s\n\n' "$kept"
	done
	echo "How to read these tables, and what was learned from them run by run: bench/analysis.md."
} > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md

# A plot per scenario: each strategy's cache, and the competitor.
if command -v gnuplot >/dev/null; then
	for s in squeeze ramp oscillate; do
		plot=""
		for st in $STRATEGIES; do
			tag="$s-256-${st/:/-}-r1"
			awk -v t0="$(sed -n 's/.*"start","mono":\([0-9.]*\).*/\1/p' "$OUT/$tag.jsonl")" \
				'/"sample"/ { match($0, /"mono":[0-9.]+/); m = substr($0, RSTART + 7, RLENGTH - 7);
				  match($0, /"cache":[0-9]+/); c = substr($0, RSTART + 8, RLENGTH - 8);
				  printf "%.3f %.1f\n", m - t0, c / 1048576 }' "$OUT/$tag.jsonl" > "$OUT/$tag.tsv"
			plot="$plot \"$OUT/$tag.tsv\" using 1:2 with lines lw 2 title \"$st\","
		done
		t0=$(sed -n 's/.*"start","mono":\([0-9.]*\).*/\1/p' "$OUT/$s-256-libshrinker-r1.jsonl")
		awk -v t0="$t0" '{ match($0, /"mono":[0-9.]+/); m = substr($0, RSTART + 7, RLENGTH - 7);
			match($0, /"held":[0-9]+/); h = substr($0, RSTART + 7, RLENGTH - 7);
			printf "%.3f %.1f\n", m - t0, h / 1048576 }' "$OUT/$s-256-libshrinker-r1.comp.jsonl" > "$OUT/$s-comp.tsv"
		gnuplot <<-GP
			set terminal pngcairo size 1000,480 font "sans,10"
			set output "docs/bench-$s.png"
			set title "$s, 256 MiB: cache size by strategy, first round (the competitor dashed)"
			set xlabel "seconds"; set ylabel "MiB"; set key outside right; set grid
			set yrange [0:280]
			plot $plot "$OUT/$s-comp.tsv" using 1:2 with steps lw 3 dt 2 lc rgb "#888888" title "competitor"
		GP
	done
fi
# The cache container against a single-mutex LRU: a section of its own,
# written in place by its script (a full run only).
if [ -z "${BENCH_REPORT:-}${BENCH_ONLY:-}${BENCH_QUICK:-}" ]; then
	B=$B bench/container.sh > /dev/null
fi
echo "bench: BENCHMARKS.md written"
