#!/usr/bin/env bash
# The lock rules of src/internal.h hold in the source: every function named
# *_locked asserts the lock it needs, holder counts change only in the lock
# wrappers (scripts/check-locked.pl), and the lock order names every lock
# that src/ defines.  Each check is also shown to fail on a copy broken on
# purpose.
set -u
cd "${TOP_SRCDIR:-.}"
echo "1..6"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
out=$(perl scripts/check-locked.pl src/*/*.c 2>&1)
st=$?
echo "$out" | sed 's/^#*/# /'
n=$(echo "$out" | sed -n 's/^# \([0-9]*\) functions named.*/\1/p')
if [ "$st" = 0 ] && [ "${n:-0}" -ge 50 ]; then
	echo "ok 1 - every *_locked function asserts its lock; holder counts change in the wrappers only ($n functions)"
else
	echo "not ok 1 - every *_locked function asserts its lock; holder counts change in the wrappers only"
fi
# Broken copies: an assertion removed, a holder count changed by hand.
cp src/*/*.c "$t/"
f=$(grep -l 'SHRINKER__ASSERT_MON_HELD();' "$t"/watermarks.c)
sed -i '0,/^\tSHRINKER__ASSERT_MON_HELD();$/{/^\tSHRINKER__ASSERT_MON_HELD();$/d}' "$f"
a=$(perl scripts/check-locked.pl "$t"/*.c 2>&1)
cp src/*/*.c "$t/"
sed -i '0,/^\tSHRINKER__ASSERT_LIB_HELD();$/s//\tSHRINKER__ASSERT_LIB_HELD();\n\tshrinker__lib_held++;/' "$t"/reclaimer.c
b=$(perl scripts/check-locked.pl "$t"/*.c 2>&1)
if echo "$a" | grep -q "does not assert the lock it needs" &&
   echo "$b" | grep -q "changes a lock's holder count outside its wrappers"; then
	echo "ok 2 - the check fails on a copy broken on purpose"
else
	echo "not ok 2 - the check fails on a copy broken on purpose"
	echo "$a$b" | sed 's/^/# /'
fi
# Every mutex src/ defines is named in the lock order.
order=$(sed -n '/^ \* Locks (take them in this order/,/^ \*  Atomics need no lock/p' src/internal.h)
missing=""
for lock in $(grep -ho 'pthread_mutex_t [a-z_]*' src/*/*.[ch] src/*.h | awk '{print $2}' | sort -u); do
	echo "$order" | grep -q "$lock" || missing="$missing $lock"
done
if [ -z "$missing" ]; then
	echo "ok 3 - the lock order in src/internal.h names every lock"
else
	echo "not ok 3 - the lock order in src/internal.h names every lock (missing:$missing)"
fi
# ... and that check can fail: a lock the order does not name.
echo "static pthread_mutex_t unnamed_lock;" > "$t/extra.c"
if ! echo "$order" | grep -q "$(grep -ho 'pthread_mutex_t [a-z_]*' "$t/extra.c" | awk '{print $2}')"; then
	echo "ok 4 - a lock the order does not name is found"
else
	echo "not ok 4 - a lock the order does not name is found"
fi
# Each global struct of state is named only by the file that owns it
# (scripts/check-owners.pl), and that check fails on a copy that names one
# elsewhere.
owners="measure.c:shrinker__mon"
out=$(perl scripts/check-owners.pl $owners -- src/*/*.c 2>&1)
st=$?
echo "$out" | sed 's/^#*/# /'
if [ "$st" = 0 ]; then
	echo "ok 5 - each global struct of state is named only by its owner ($owners)"
else
	echo "not ok 5 - each global struct of state is named only by its owner ($owners)"
fi
cp src/*/*.c "$t/"
sed -i '0,/^\tconst struct shrinker__mon \*m = shrinker__measured();$/s//\tconst struct shrinker__mon *m = \&shrinker__mon;/' "$t"/monitor.c
if ! perl scripts/check-owners.pl $owners -- "$t"/*.c >/dev/null 2>&1 &&
   ! cmp -s src/4-monitor/monitor.c "$t"/monitor.c; then
	echo "ok 6 - the owner check fails on a copy broken on purpose"
else
	echo "not ok 6 - the owner check fails on a copy broken on purpose"
fi
