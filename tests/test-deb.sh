#!/usr/bin/env bash
# The Debian packages (debian/): built from a copy of the tree with
# dpkg-buildpackage -us -uc -b, checked with lintian (no error), unpacked
# into a fresh directory tree, and an example built against that tree with
# pkg-config and run, as a user of libshrinker-dev would.
set -u
cd "${TOP_SRCDIR:-.}"
N=5
echo "1..$N"
skip_all() { for i in $(seq 1 $N); do echo "ok $i # SKIP $1"; done; exit 0; }
[ -n "${SANITIZE:-}" ] && skip_all "sanitizer builds are not packaged"
. scripts/require.sh
for tool in dpkg-buildpackage dh lintian pkg-config; do
	command -v $tool >/dev/null && continue
	for i in $(seq 1 $N); do
		skip_or_fail "$i" BUILD "$tool not installed (apt-get install dpkg-dev debhelper lintian pkg-config)"
	done
	! required BUILD
	exit
done
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir "$t/src"
# The tracked files only (a clean clone's content), whatever is built here.
git ls-files -z 2>/dev/null | xargs -0 -I{} cp --parents {} "$t/src/" 2>/dev/null ||
	cp -r . "$t/src"
rm -rf "$t/src/build"
# As a user would build them: not with the make variables (CC=clang, ...)
# of the make check that runs this.
(cd "$t/src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u CC -u CFLAGS \
	dpkg-buildpackage -us -uc -b) > "$t/build.log" 2>&1
rc=$?
[ $rc = 0 ] || tail -n 20 "$t/build.log" | sed 's/^/# /'
check "dpkg-buildpackage -us -uc -b builds the packages" '[ $rc = 0 ]'
debs=$(ls "$t"/libshrinker0_*.deb "$t"/libshrinker-brake0_*.deb "$t"/libshrinker-dev_*.deb "$t"/memory-hog_*.deb 2>/dev/null | wc -l)
check "libshrinker0, libshrinker-brake0, libshrinker-dev and memory-hog are built" '[ "$debs" = 4 ]'
lint=$(lintian --fail-on error "$t"/libshrinker_*.changes 2>&1)
lrc=$?
echo "$lint" | grep -E '^[EW]:' | sed 's/^/# /'
check "lintian reports no error" '[ $lrc = 0 ] && ! echo "$lint" | grep -q "^E:"'
# Unpacked into a fresh tree: headers, library, .pc and examples from the
# packages only.
mkdir "$t/root"
for d in "$t"/libshrinker0_*.deb "$t"/libshrinker-brake0_*.deb "$t"/libshrinker-dev_*.deb "$t"/memory-hog_*.deb; do
	[ -f "$d" ] && dpkg-deb -x "$d" "$t/root"
done
pcdir=$(ls -d "$t"/root/usr/lib/*/pkgconfig 2>/dev/null | head -n 1)
libdir=$(dirname "$pcdir")
ex="$t/root/usr/share/doc/libshrinker-dev/examples"
built=no
if [ -n "$pcdir" ] && [ -f "$ex/threaded.c" ]; then
	PKG_CONFIG_PATH="$pcdir" ${CC:-cc} -o "$t/threaded" "$ex/threaded.c" \
		$(PKG_CONFIG_PATH="$pcdir" pkg-config --define-variable=prefix="$t/root/usr" --cflags --libs libshrinker) -pthread \
		> "$t/cc.log" 2>&1 && built=yes
	[ $built = yes ] || sed 's/^/# /' "$t/cc.log"
fi
check "an example from libshrinker-dev builds with pkg-config against the unpacked tree and runs" \
	'[ $built = yes ] && LD_LIBRARY_PATH="$libdir" "$t/threaded" > /dev/null 2>&1'
check "memory-hog from its package runs with the packaged library" \
	'LD_LIBRARY_PATH="$libdir" "$t/root/usr/bin/memory-hog" --version > /dev/null 2>&1 &&
	 ! readelf -d "$t/root/usr/bin/memory-hog" | grep -qi "rpath\|runpath"'
