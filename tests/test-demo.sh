#!/usr/bin/env bash
# make demo, shortened: the script runs, memory-hog is not OOM-killed, the
# summary has its figures and, with gnuplot installed, the plot is written.
set -u
cd "${TOP_SRCDIR:-.}"
B=${BUILD:-build/default-cc}
echo "1..4"
if [ -n "${SANITIZE:-}" ]; then
	for i in 1 2 3 4; do echo "ok $i # SKIP memory figures are meaningless under a sanitizer"; done
	exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
LIMIT_MB=256 DURATION=7 COMPETITOR_AT=3 COMPETITOR_FOR=2 HOG_ARGS="--rate 6000" \
	HOG=$B/memory-hog COMPETITOR=$B/competitor OUT=$out scripts/demo.sh > "$out/log" 2>&1
st=$?
sed 's/^/# /' "$out/summary.txt" 2>/dev/null
if [ $st = 0 ]; then echo "ok 1 - the demo ran and memory-hog was not OOM-killed"
else echo "not ok 1 - the demo failed (exit $st)"; sed 's/^/# /' "$out/log"; fi
# With a competitor, its time against both baselines (alone, and beside
# the same memory-hog load kept out of its cgroup), its CPU time in each,
# how often the cgroup's limit was reached, and the library's own reaction.
# As root the demo makes its cgroup and runs the competitor, so its lines
# must be there; elsewhere the demo may have had no cgroup to run it in.
. scripts/require.sh
need_competitor=false
{ [ "$(id -u)" = 0 ] || required CGROUP; } && need_competitor=true
if grep -q "cache peak" "$out/summary.txt" 2>/dev/null && grep -q "OOM kills" "$out/summary.txt" &&
   { { ! $need_competitor && ! grep -q "^  competitor  *took" "$out/summary.txt"; } ||
     { grep -q "^  competitor alone  *[0-9]* ms .*: [0-9.]*x$" "$out/summary.txt" &&
       grep -q "^  competitor beside  *[0-9]* ms, memory-hog's same load .*: [0-9.]*x$" "$out/summary.txt" &&
       grep -q "^  competitor CPU  *[0-9]* ms here, [0-9]* alone, [0-9]* beside" "$out/summary.txt" &&
       grep -q "^  limit hits  *[0-9][0-9]*: " "$out/summary.txt" &&
       grep -q "^  library reaction  *[0-9.]* ms median, [0-9.]* ms p99" "$out/summary.txt"; }; }; then
	echo "ok 2 - the summary has its figures"
else
	echo "not ok 2 - the summary has its figures"
fi
if ! command -v gnuplot >/dev/null; then
	skip_or_fail 3 BUILD "gnuplot is not installed (apt-get install gnuplot-nox)"
elif [ -s "$out/demo.png" ] && head -c 8 "$out/demo.png" | grep -q PNG; then
	echo "ok 3 - the plot was written"
else
	echo "not ok 3 - the plot was written"
fi
# Where no cgroup can be made (not root, no systemd), the demo says so and
# runs no competitor: a budget cannot see other processes, and a summary
# must not look like a result it is not.
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
	skip_or_fail 4 CGROUP "needs root and setpriv to run the demo as another user"
else
	chmod 777 "$out"
	mkdir -m 777 "$out/nobody"
	if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$B/memory-hog" 2>/dev/null; then
		echo "ok 4 # SKIP the build directory is not readable by nobody"
	else
		LIMIT_MB=128 DURATION=3 HOG_ARGS="--rate 6000" HOG=$B/memory-hog \
			COMPETITOR=$B/competitor OUT=$out/nobody \
			setpriv --reuid=65534 --regid=65534 --clear-groups scripts/demo.sh \
			> "$out/nobody.log" 2>&1
		st=$?
		sed 's/^/# /' "$out/nobody/summary.txt" 2>/dev/null
		if [ $st = 0 ] && grep -q "cannot see other processes" "$out/nobody/summary.txt" &&
		   grep -q "competitor *none" "$out/nobody/summary.txt" &&
		   ! grep -q "first shrink" "$out/nobody/summary.txt" &&
		   [ ! -s "$out/nobody/competitor.jsonl" ]; then
			echo "ok 4 - without a cgroup: a budget, no competitor, and the summary says why"
		else
			echo "not ok 4 - without a cgroup: a budget, no competitor, and the summary says why"
			sed 's/^/# /' "$out/nobody.log"
		fi
	fi
fi
