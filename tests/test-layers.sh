#!/usr/bin/env bash
# Calls go down only: src/N-name/ is layer N (src/internal.h), and no file
# includes a header or calls a function of a higher layer
# (scripts/check-layers.pl).  The check is also shown to fail on copies
# broken on purpose: a call up, and an include up.
set -u
cd "${TOP_SRCDIR:-.}"
echo "1..3"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
out=$(perl scripts/check-layers.pl src 2>&1)
st=$?
echo "$out" | sed 's/^#*/# /'
files=$(echo "$out" | sed -n 's/^# \([0-9]*\) files.*/\1/p')
if [ "$st" = 0 ] && [ "${files:-0}" -ge 20 ]; then
	echo "ok 1 - no file of src/ calls or includes up a layer ($files files)"
else
	echo "not ok 1 - no file of src/ calls or includes up a layer"
fi
cp -r src "$t/up"
sed -i '0,/^uint64_t shrinker__now_ns(void)$/{n;s/^{$/{\n\tshrinker__reclaimer_start_locked();/}' "$t/up/1-base/util.c"
a=$(perl scripts/check-layers.pl "$t/up" 2>&1)
if echo "$a" | grep -q "util.c:.*calls shrinker__reclaimer_start_locked of layer 6"; then
	echo "ok 2 - a call up a layer is found"
else
	echo "not ok 2 - a call up a layer is found"
	echo "$a" | sed 's/^/# /'
fi
cp -r src "$t/inc"
sed -i '0,/^#include "2-kernel\/cgroup.h"$/s//#include "2-kernel\/cgroup.h"\n#include "4-monitor\/monitor.h"/' "$t/inc/2-kernel/cgroup.c"
b=$(perl scripts/check-layers.pl "$t/inc" 2>&1)
if echo "$b" | grep -q "cgroup.c:.*includes a header of layer 4"; then
	echo "ok 3 - an include up a layer is found"
else
	echo "not ok 3 - an include up a layer is found"
	echo "$b" | sed 's/^/# /'
fi
