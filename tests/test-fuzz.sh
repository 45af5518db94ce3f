#!/usr/bin/env bash
# Replays each fuzz target's corpus (tests/fuzz/corpus/<target>) through the
# plain driver, under whatever sanitizer this build has.  A crash, a sanitizer
# report or a failed invariant (abort) fails the target.
set -u
cd "${TOP_SRCDIR:-.}"
B=${BUILD:-build/default-cc}
targets=$(ls tests/fuzz/fuzz-*.c | sed 's|.*/fuzz-\(.*\)\.c|\1|')
echo "1..$(echo "$targets" | wc -w)"
i=0
for t in $targets; do
	i=$((i + 1))
	if out=$("$B/fuzz/replay-$t" "tests/fuzz/corpus/$t" 2>&1); then
		echo "ok $i - $t: $(echo "$out" | tail -n 1) inputs replayed"
	else
		echo "not ok $i - $t"
		echo "$out" | head -n 30 | sed 's/^/# /'
	fi
done
