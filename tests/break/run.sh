#!/usr/bin/env bash
# Break each behaviour docs/RELIABILITY.md promises, on purpose, in a
# scratch copy of this tree, and run the test its row names: the test must
# fail against the broken copy and pass against the real one.  The breaks
# are in tests/break/rows, one block a row:
#
#   == the row, as RELIABILITY.md words it (its section, then its fault)
#   file src/6-engine/reclaimer.c
#   from text found exactly once in the file (\n for a line break)
#   to   what it becomes
#   test test-reclaim 4       (a test binary and its number, or a .sh test)
#   skip why                  (instead of test: a row this machine cannot
#                              show, printed as a TAP skip with the reason)
#
# make check-breaks runs it (not part of make check: it rebuilds once per
# row, about 10-20 minutes in all).  BREAK_ONLY=<text> runs the rows whose
# name contains it.  Needs what make check needs, and root for the rows
# whose tests make child cgroups.
set -u
cd "${TOP_SRCDIR:-$(dirname "$0")/../..}" || exit 1
ROWS=tests/break/rows
SB=build/break
TIMEOUT=${BREAK_TIMEOUT:-300}
only=${BREAK_ONLY:-}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Readable by all, as a checkout is: test-demo.sh runs the demo as nobody.
chmod 755 "$work"
tree=$work/tree
mkdir -p "$tree"
# The tree as it is, committed or not (tracked files only).
git ls-files -z | xargs -0 cp --parents -t "$tree" 2>/dev/null

# The rows: name, file, from, to, test (arrays by index).
names=() files=() froms=() tos=() tests=() skips=()
while IFS= read -r line; do
	case $line in
	"== "*) names+=("${line#== }"); files+=(""); froms+=(""); tos+=(""); tests+=(""); skips+=("") ;;
	"file "*) files[${#names[@]}-1]=${line#file } ;;
	"from "*) froms[${#names[@]}-1]=${line#from } ;;
	"to "*) tos[${#names[@]}-1]=${line#to } ;;
	"test "*) tests[${#names[@]}-1]=${line#test } ;;
	"skip "*) skips[${#names[@]}-1]=${line#skip } ;;
	esac
done < "$ROWS"

picked=()
for i in "${!names[@]}"; do
	[ -z "$only" ] || [[ ${names[$i]} == *"$only"* ]] || continue
	picked+=("$i")
done
echo "1..${#picked[@]}"
[ ${#picked[@]} -gt 0 ] || exit 0

build() {
	make -C "$tree" -s -j2 B=$SB check-build > "$work/build.log" 2>&1
}

# run_test "test-x N" or "test-x.sh": 0 if it passed (no "not ok", exit 0).
run_test() {
	local bin=${1%% *} n=${1#* } out st
	[ "$n" = "$1" ] && n=""
	if [[ $bin == *.sh ]]; then
		out=$(cd "$tree" && TOP_SRCDIR=$tree BUILD=$SB timeout "$TIMEOUT" bash "tests/$bin" 2>&1)
	else
		out=$(cd "$tree" && TOP_SRCDIR=$tree BUILD=$SB TAP_ONLY=$n timeout "$TIMEOUT" "$SB/tests/$bin" 2>&1)
	fi
	st=$?
	echo "$out" > "$work/last.out"
	[ $st = 0 ] && ! grep -q '^not ok' <<< "$out"
}

# apply FILE FROM TO: the one occurrence of FROM replaced; 1 if FROM is not
# there exactly once.
apply() {
	FROM=$2 TO=$3 perl -0777 -i -pe '
		BEGIN { ($f, $t) = map { s/\\n/\n/g; $_ } ($ENV{FROM}, $ENV{TO}) }
		$c = () = /\Q$f\E/g;
		if ($c != 1) { print STDERR "found $c times\n"; exit 1 }
		s/\Q$f\E/$t/;' "$tree/$1"
}

if ! build; then
	sed 's/^/# /' "$work/build.log" | tail -n 20
	for k in "${!picked[@]}"; do echo "not ok $((k + 1)) - the scratch copy does not build"; done
	exit 1
fi
# Each named test against the real tree first, once.
declare -A real
for i in "${picked[@]}"; do
	t=${tests[$i]}
	[ -n "$t" ] || continue
	[ -n "${real[$t]:-}" ] && continue
	if run_test "$t"; then
		real[$t]=pass
	else
		real[$t]=fail
		cp "$work/last.out" "$work/real-${t// /_}.out"
	fi
done

k=0
for i in "${picked[@]}"; do
	k=$((k + 1))
	name=${names[$i]} f=${files[$i]} t=${tests[$i]}
	if [ -n "${skips[$i]}" ]; then
		echo "ok $k - $name # SKIP ${skips[$i]}"
		continue
	fi
	cp "$tree/$f" "$work/orig"
	if ! apply "$f" "${froms[$i]}" "${tos[$i]}" 2> "$work/apply.err"; then
		echo "not ok $k - $name: the break no longer applies to $f ($(cat "$work/apply.err"))"
		continue
	fi
	if ! build; then
		echo "not ok $k - $name: the broken copy does not build"
		sed 's/^/# /' "$work/build.log" | tail -n 10
	elif run_test "$t"; then
		echo "not ok $k - $name: $t passed against the broken copy"
		grep -v 'SKIP not selected' "$work/last.out" | sed 's/^/# /' | tail -n 5
	elif [ "${real[$t]}" != pass ]; then
		echo "not ok $k - $name: $t fails against the real tree too"
		grep -v 'SKIP not selected' "$work/real-${t// /_}.out" | sed 's/^/# /' | tail -n 8
	else
		echo "ok $k - $name: $t fails broken, passes real"
	fi
	cp "$work/orig" "$tree/$f"
done
