#!/usr/bin/env bash
# make install DESTDIR=... PREFIX=/usr, then use only that tree: the soname,
# the exported symbols (exactly the functions the public headers declare),
# the .pc file, every example built through pkg-config and run, and the man
# pages rendered without warnings.
set -u
cd "${TOP_SRCDIR:-.}"
B=${BUILD:-build/default-cc}
CC=${CC:-cc}
N=20
echo "1..$N"
if [ -n "${SANITIZE:-}" ]; then
	for i in $(seq 1 $N); do echo "ok $i # SKIP sanitizer builds are not installed"; done
	exit 0
fi
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; }
. scripts/require.sh
skip() { n=$((n + 1)); skip_or_fail "$n" BUILD "$1"; }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }

if ! make -s B="$B" install DESTDIR="$t/root" PREFIX=/usr > "$t/install.log" 2>&1; then
	sed 's/^/# /' "$t/install.log"
	for i in $(seq 1 $N); do echo "not ok $i - make install"; done
	exit 1
fi
lib=$t/root/usr/lib
major=$(sed -n 's/^#define SHRINKER_VERSION_MAJOR //p' include/shrinker.h)
version=$major.$(sed -n 's/^#define SHRINKER_VERSION_MINOR //p' include/shrinker.h).$(sed -n 's/^#define SHRINKER_VERSION_PATCH //p' include/shrinker.h)

soname=$(readelf -d "$lib/libshrinker.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
echo "# soname $soname"
check "soname is libshrinker.so.$major" '[ "$soname" = "libshrinker.so.$major" ]'

nm -D --defined-only "$lib/libshrinker.so" | awk '$2 == "T" { sub("@.*", "", $3); print $3 }' | sort -u > "$t/exported"
grep -ohE '\b(shrinker_[a-z_]+|osv_register_shrinker)\(' include/shrinker.h include/shrinker-cache.h include/osv/shrinker.h |
	tr -d '(' | sort -u > "$t/declared"
if cmp -s "$t/exported" "$t/declared"; then
	ok "exported symbols are exactly the $(wc -l < "$t/declared") public functions"
else
	notok "exported symbols are exactly the public functions"
	diff "$t/declared" "$t/exported" | sed 's/^/# /'
fi

# --define-prefix, for libshrinker only: its prefix is where its .pc file
# is, so the tree is used as installed (libuv and GLib keep their own).
export PKG_CONFIG_PATH=$lib/pkgconfig
PC="pkg-config --define-prefix"
pcv=$($PC --modversion libshrinker 2>/dev/null)
pcf=$($PC --cflags --libs libshrinker 2>/dev/null)
echo "# pkg-config: $pcv: $pcf"
check "libshrinker.pc: prefix /usr, version $version, the installed include and lib directories" \
	'grep -qx "prefix=/usr" "$lib/pkgconfig/libshrinker.pc" && [ "$pcv" = "$version" ] && [[ "$pcf" == *"-I$t/root/usr/include"* ]] && [[ "$pcf" == *"-L$lib"* ]] && [[ "$pcf" == *-lshrinker* ]]'

# The examples, from a copy, against the installed tree only.
cp -r examples "$t/examples"
make -s -C "$t/examples" CC="$CC" SHRINKER_PKG_CONFIG="$PC" > "$t/examples.log" 2>&1 || sed 's/^/# /' "$t/examples.log"
run_example() {
	local name=$1
	shift
	if [ ! -x "$t/examples/$name" ]; then
		notok "example $name builds from the installed tree"
		return
	fi
	if env LD_LIBRARY_PATH="$lib" "$@" "$t/examples/$name" > "$t/$name.out" 2>&1; then
		ok "example $name builds from the installed tree and runs"
	else
		notok "example $name builds from the installed tree and runs"
	fi
	sed 's/^/#   /' "$t/$name.out" | tail -n 4
}
# README's first example is examples/minimal.c, word for word; under a
# budget of 64 MiB it caches no more than that.
run_example minimal SHRINKER_LIMIT=64M
check "README's first example is examples/minimal.c, and it stays within its budget" \
	'awk "/^\`\`\`c\$/ { on = 1; next } on && /^\`\`\`\$/ { exit } on" README.md | cmp -s - examples/minimal.c &&
	 mib=$(sed -n "s/^cached \([0-9]*\) MiB$/\1/p" "$t/minimal.out") && [ -n "$mib" ] && [ "$mib" -gt 0 ] && [ "$mib" -le 64 ]'
check "README's systemd unit is examples/systemd/memory-hog.service, the one tests/vm/systemd.sh installs" \
	'awk "/^\`\`\`ini\$/ { on = 1; next } on && /^\`\`\`\$/ { exit } on" README.md | cmp -s - examples/systemd/memory-hog.service'
run_example own SHRINKER_LIMIT=64M
# The cache's examples under a budget: every document made is destroyed
# by the end; the event loop's cache served its ticks.
check "example cache-threads builds from the installed tree and runs" \
	'[ -x "$t/examples/cache-threads" ] &&
	 LD_LIBRARY_PATH="$lib" SHRINKER_LIMIT=64M "$t/examples/cache-threads" --seconds 1 > "$t/ct.out" &&
	 grep -q "^served [1-9]" "$t/ct.out" && grep -qE "^destroyed ([0-9]+) of \1 documents made" "$t/ct.out"'
sed 's/^/#   /' "$t/ct.out" 2>/dev/null
check "example cache-loop builds from the installed tree and runs" \
	'[ -x "$t/examples/cache-loop" ] &&
	 LD_LIBRARY_PATH="$lib" SHRINKER_LIMIT=64M "$t/examples/cache-loop" --seconds 1 > "$t/cl.out" &&
	 grep -qE "^1[0-9]{3} ticks, [1-9][0-9]* hits" "$t/cl.out"'
sed 's/^/#   /' "$t/cl.out" 2>/dev/null
run_example epoll
run_example threaded
run_example osv SHRINKER_LIMIT=64M
if pkg-config --exists libuv; then run_example libuv; else skip "libuv1-dev not installed"; fi
if pkg-config --exists glib-2.0; then run_example glib; else skip "libglib2.0-dev not installed"; fi
# SQLite: a small database, one second of lookups with the library sizing
# both connections' caches.
if pkg-config --exists sqlite3; then
	check "example sqlite builds from the installed tree and runs" \
		'[ -x "$t/examples/sqlite" ] &&
		 LD_LIBRARY_PATH="$lib" "$t/examples/sqlite" --create "$t/x.db" --rows 20000 > /dev/null &&
		 LD_LIBRARY_PATH="$lib" "$t/examples/sqlite" "$t/x.db" --seconds 1 | grep -q "mode=shrinker"'
else
	skip "libsqlite3-dev not installed"
fi
# The malloc-based LRU cache, one second under a budget: the library learns
# what its frees give back (returned_permille in its last line).
check "example lru builds from the installed tree and runs" \
	'[ -x "$t/examples/lru" ] &&
	 LD_LIBRARY_PATH="$lib" SHRINKER_LIMIT=64M "$t/examples/lru" --seconds 1 | grep -q "returned_permille=[0-9]* rss_returned=[0-9]* mode=shrinker"'
# RocksDB: a small database, one second of lookups with the library sizing
# the block cache.
if [ -f /usr/include/rocksdb/c.h ]; then
	check "example rocksdb builds from the installed tree and runs" \
		'[ -x "$t/examples/rocksdb" ] &&
		 LD_LIBRARY_PATH="$lib" "$t/examples/rocksdb" --create "$t/rdb" --rows 20000 > /dev/null &&
		 LD_LIBRARY_PATH="$lib" "$t/examples/rocksdb" "$t/rdb" --rows 20000 --seconds 1 | grep -q "mode=shrinker"'
else
	skip "librocksdb-dev not installed"
fi

# The program is installed and finds the installed library.
check "memory-hog is installed and runs" '"$t/root/usr/bin/memory-hog" --version > /dev/null'
# The malloc brake is installed, links the installed library, and preloads.
check "libshrinker-brake.so is installed and preloads into memory-hog" \
	'LD_PRELOAD="$lib/libshrinker-brake.so" "$t/root/usr/bin/memory-hog" --version > /dev/null &&
	 readelf -d "$lib/libshrinker-brake.so" | grep -q "NEEDED.*libshrinker.so.$major"'

warnings=$(for p in "$t"/root/usr/share/man/man*/*; do
	(cd "$t/root/usr/share/man" && groff -ww -man -Tutf8 -I. "${p#$t/root/usr/share/man/}" 2>&1 >/dev/null)
done | wc -l)
pages=$(ls "$t"/root/usr/share/man/man*/* | wc -l)
check "$pages man pages render without warnings (groff -ww)" '[ "$warnings" = 0 ] && [ "$pages" -ge 2 ]'
