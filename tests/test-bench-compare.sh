#!/usr/bin/env bash
# bench/compare.pl: two small reports with known figures; each of the
# library's figures gets the mark its medians and spreads call for, other
# strategies and what follows the race marker are left out.
set -u
cd "${TOP_SRCDIR:-.}"
echo "1..7"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

hdr='| strategy | OOM kills | cache share % | first shrink p50 ms | p99 ms | library reaction p50 / p99 ms | competitor stall ms | stall, % of alone | time, % over beside | shrinks |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
cat > "$t/a.md" <<EOF
# Benchmarks

Written by \`make bench\` (bench/run.sh) on 2026-11-27 at commit \`aaaaaaa\`: 2 cores
in fresh pages: **300 MiB/s (290-310)** (compare

### squeeze, 256 MiB

$hdr
| libshrinker | 0 of 3 | 85 (84-86) | 12 | 12 | 0.2 / 0.3 (0.2-1.1) | 553 (466-596) | 143 (98-164) | 15 (-13-30) | 26 (22-34) |
| fixed:90 | 3 of 3 | - | - | - | - / - | - | - | - | 0 |

<!-- race:begin -->
### squeeze, 256 MiB
$hdr
| libshrinker | 0 of 3 | 10 | - | - | - / - | - | - | - | 0 |
EOF
cat > "$t/b.md" <<EOF
# Benchmarks

Written by \`make bench\` (bench/run.sh) on 2026-11-28 at commit \`bbbbbbb\`: 2 cores
in fresh pages: **250 MiB/s (240-260)** (compare

### squeeze, 256 MiB

$hdr
| libshrinker | 0 of 3 | 86 (85-87) | 20 | 20 | 0.2 / 0.6 (0.5-0.9) | 700 (600-800) | 200 (190-210) | -5 (-20-0) | 26 |
| fixed:90 | 3 of 3 | 90 | - | - | - / - | - | - | - | 0 |
EOF

out=$(perl bench/compare.pl "$t/a.md" "$t/b.md" 2>&1)
st=$?
echo "$out" | sed 's/^/# /'
[ $st = 0 ] && echo "ok 1 - it runs" || echo "not ok 1 - it runs (exit $st)"
# 85 (84-86) against 86 (85-87): each median within the other's spread.
echo "$out" | grep -q "cache share %: 85 (84-86) -> 86 (85-87) =" &&
	echo "ok 2 - medians within each other's spread: =" || echo "not ok 2 - medians within each other's spread: ="
# 0.3 (0.2-1.1) against 0.6 (0.5-0.9): only the second lies in the first.
echo "$out" | grep -q "reaction p99 ms: 0.3 (0.2-1.1) -> 0.6 (0.5-0.9) ~" &&
	echo "ok 3 - one median within the other's spread: ~" || echo "not ok 3 - one median within the other's spread: ~"
# 143 (98-164) against 200 (190-210): apart; negative spreads parse.
if echo "$out" | grep -q "stall, % of alone: 143 (98-164) -> 200 (190-210) x" &&
   echo "$out" | grep -q "time, % over beside: 15 (-13-30) -> -5 (-20-0) ~" &&
   echo "$out" | grep -q "shrinks: 26 (22-34) -> 26 ="; then
	echo "ok 4 - apart: x; negative and single values parse"
else
	echo "not ok 4 - apart: x; negative and single values parse"
fi
# Milliseconds are not compared, nor other strategies, nor what follows
# the race marker (whose 10 % would have been a second row).
if ! echo "$out" | grep -q "fixed:90" && ! echo "$out" | grep -q "553" &&
   [ "$(echo "$out" | grep -c '^| squeeze')" = 1 ]; then
	echo "ok 5 - only the library's rows, shares and ratios"
else
	echo "not ok 5 - only the library's rows, shares and ratios"
fi
if echo "$out" | grep -q "2026-11-27, commit aaaaaaa, 300 MiB/s (290-310)" &&
   echo "$out" | grep -q "^5 figures: 2 =, 2 ~, 1 x (squeeze, 256 MiB, libshrinker, stall, % of alone)"; then
	echo "ok 6 - the runs named, the marks counted"
else
	echo "not ok 6 - the runs named, the marks counted"
fi
# Misuse: a missing file is an error, said, with no table.
err=$(perl bench/compare.pl "$t/a.md" "$t/missing.md" 2>&1)
st=$?
if [ $st != 0 ] && echo "$err" | grep -q "missing.md" && ! echo "$err" | grep -q "^|"; then
	echo "ok 7 - a missing report is an error"
else
	echo "not ok 7 - a missing report is an error (exit $st: $err)"
fi
