#!/usr/bin/env bash
# make fuzz: libFuzzer (clang -fsanitize=fuzzer,address,undefined) on every
# parser, FUZZ_RUNS executions each (10 times that for the parsers of
# /proc/self/cgroup, mountinfo and the keyed files, which read the most
# hostile input), new inputs merged into tests/fuzz/corpus/<target>, and the
# counts written to tests/fuzz/RUNS.md.  A crash stops the run and leaves
# the input in build/fuzz/crash-<target>-*; add it to the corpus once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${FUZZ_RUNS:-1000000}
out=build/fuzz
mkdir -p "$out"
CLANG=${CLANG:-clang}
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc"
report=tests/fuzz/RUNS.md
{
	echo "# Fuzzing runs"
	echo
	echo "Written by \`make fuzz\` (scripts/fuzz.sh) on $(date -u +%Y-%m-%d), $($CLANG --version | head -n 1),"
	echo "libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer, $(nproc) cores."
	echo
	echo "| target | parser | executions | seconds | corpus files | crashes |"
	echo "|---|---|---:|---:|---:|---:|"
} > "$report.tmp"
for src in tests/fuzz/fuzz-*.c; do
	t=$(basename "$src" .c)
	t=${t#fuzz-}
	runs=$RUNS
	case $t in proc-cgroup|mountinfo|keyed) runs=$((RUNS * 10)) ;; esac
	$CLANG $flags -o "$out/fuzz-$t" "$src" src/1-base/parse.c
	mkdir -p "$out/new-$t"
	start=$(date +%s.%N)
	"$out/fuzz-$t" -runs="$runs" -max_len=4096 -artifact_prefix="$out/crash-$t-" \
		-print_final_stats=1 "$out/new-$t" "tests/fuzz/corpus/$t" > "$out/$t.log" 2>&1 || {
		echo "fuzz: $t crashed; see $out/$t.log" >&2
		tail -n 30 "$out/$t.log" >&2
		exit 1
	}
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
	done_runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$out/$t.log" | tail -n 1)
	# Keep a minimized corpus: the seeds plus what found new coverage.
	"$out/fuzz-$t" -merge=1 "tests/fuzz/corpus/$t" "$out/new-$t" > "$out/$t.merge.log" 2>&1
	rm -rf "$out/new-$t"
	files=$(ls "tests/fuzz/corpus/$t" | wc -l)
	parser=$(grep -o 'shrinker__parse_[a-z_]*\|shrinker__base64_decode' "$src" | head -n 1)
	printf '| %s | `%s` | %s | %.0f | %s | 0 |\n' "$t" "$parser" "$done_runs" "$secs" "$files" >> "$report.tmp"
	echo "fuzz: $t: $done_runs runs in ${secs%.*} s, $files corpus files"
done
mv "$report.tmp" "$report"
