#!/usr/bin/env bash
# The ABI of libshrinker.so against the committed baseline (abi/libshrinker.abi)
# with Debian's abigail-tools: a change to a public structure or function
# fails here until the baseline is updated on purpose (make abi-baseline, in
# the same commit, with the soname rule of include/shrinker.h in mind).
set -u
cd "${TOP_SRCDIR:-.}"
B=${BUILD:-build/default-cc}
echo "1..2"
if [ -n "${SANITIZE:-}" ]; then
	echo "ok 1 # SKIP sanitizer builds are not the shipped library"
	echo "ok 2 # SKIP sanitizer builds are not the shipped library"
	exit 0
fi
if ! command -v abidiff >/dev/null; then
	. scripts/require.sh
	skip_or_fail 1 BUILD "abidiff not installed (apt-get install abigail-tools)"
	skip_or_fail 2 BUILD "abidiff not installed (apt-get install abigail-tools)"
	! required BUILD
	exit
fi
# This version's library (an older build may sit beside it).
v() { sed -n "s/^#define SHRINKER_VERSION_$1 //p" include/shrinker.h; }
lib=$B/libshrinker.so.$(v MAJOR).$(v MINOR).$(v PATCH)
out=$(abidiff --headers-dir2 include --drop-private-types abi/libshrinker.abi "$lib" 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
	echo "ok 1 - the ABI matches abi/libshrinker.abi"
else
	echo "not ok 1 - the ABI differs from abi/libshrinker.abi (abidiff exit $rc)"
	echo "$out" | head -n 40 | sed 's/^/# /'
fi
# The check can fail: a baseline in which struct shrinker_memory is 8 bytes
# smaller is reported as a change.
t=$(mktemp)
trap 'rm -f "$t"' EXIT
sed "s/\(class-decl name='shrinker_memory' size-in-bits='\)1920'/\11856'/" abi/libshrinker.abi > "$t"
if ! cmp -s "$t" abi/libshrinker.abi &&
   ! abidiff --headers-dir2 include --drop-private-types "$t" "$lib" >/dev/null 2>&1; then
	echo "ok 2 - a changed structure is reported"
else
	echo "not ok 2 - a changed structure is reported"
fi
