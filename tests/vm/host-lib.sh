# What the host sides of the guests' tests share (tests/vm/run.sh,
# tests/vm/systemd.sh), sourced from the top of the tree: guest_setup sets
# $cache (the VM cache, outside git) and $work (a scratch directory, removed
# at exit) and fetches the kernel and busybox.

skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}
# A guest this machine should boot and cannot: a failure where the VM is
# required (REQUIRE_VM=1 or REQUIRE_ALL=1, as .ci/run sets), else a skip.
required() {
	if [ "${REQUIRE_VM:-}" = 1 ] || [ "${REQUIRE_ALL:-}" = 1 ]; then
		echo "1..1"
		echo "not ok 1 - required here (REQUIRE_VM=1 or REQUIRE_ALL=1), and it cannot run: $*"
		exit 1
	fi
	skip_all "$@"
}

# The newest deb in the cache matching a pattern, downloading it if need be.
fetch() {
	local pattern=$1 pkg=$2 deb
	deb=$(ls -t "$cache"/$pattern 2>/dev/null | head -n 1)
	if [ -z "$deb" ]; then
		(cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) ||
			{ apt-get update -q >/dev/null 2>&1 && (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1); }
		deb=$(ls -t "$cache"/$pattern 2>/dev/null | head -n 1)
	fi
	echo "$deb"
}

# Debian's cloud kernel, as $cache/vmlinuz.
cloud_kernel() {
	local kpkg kdeb
	kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
	kdeb=$(fetch "${kpkg:-linux-image-*-cloud-amd64}_*.deb" "${kpkg:-linux-image-cloud-amd64}")
	[ -n "$kdeb" ] || required "cannot download the kernel (no apt access?)"
	if [ ! -s "$cache/vmlinuz" ] || [ "$kdeb" -nt "$cache/vmlinuz" ]; then
		dpkg-deb -x "$kdeb" "$work/k" && cp "$work"/k/boot/vmlinuz-* "$cache/vmlinuz" ||
			required "no vmlinuz in $kdeb"
	fi
}

# busybox-static, as $cache/busybox (its cpio packs the initramfs).
guest_busybox() {
	local bdeb
	bdeb=$(fetch "busybox-static_*.deb" busybox-static)
	[ -n "$bdeb" ] || required "cannot download busybox-static (no apt access?)"
	if [ ! -x "$cache/busybox" ] || [ "$bdeb" -nt "$cache/busybox" ]; then
		dpkg-deb -x "$bdeb" "$work/b" && cp "$work/b/bin/busybox" "$cache/busybox" ||
			required "no busybox in $bdeb"
	fi
}

# The guest's programs, linked against the shared library (so that the
# brake can be preloaded): make's vm-bins in build/vm.
guest_programs() {
	make -s -j2 B=build/vm vm-bins >"$work/make.log" 2>&1 ||
		{ echo "1..${PLAN:-1}"; echo "not ok 1 - build for the guest"; sed 's/^/# /' "$work/make.log"; exit 1; }
}

# The guest's TAP lines from $work/console.txt, the line before each failure
# (where the guest says what it measured) on stderr too, as prove -f shows
# a failed test's stderr, not its diagnostics; and "not ok" for the tests
# FROM+1..LAST it did not reach, after the end of its console.
guest_tap() {
	local from=$1 last=$2 got i
	sed -n 's/^VMTAP: //p' "$work/console.txt" |
		awk '{ print }
		     /^# / { d = $0 }
		     /^not ok/ { print "vm: " $0 (d != "" ? "; last diagnostic: " d : "") > "/dev/stderr"; d = "" }
		     /^ok/ { d = "" }'
	got=$(grep -c '^VMTAP: \(not \)\?ok' "$work/console.txt")
	if [ "$((from + got))" -lt "$last" ]; then
		echo "# the guest did not finish; its console:"
		tail -n 40 "$work/console.txt" | sed 's/^/#   /'
		for i in $(seq $((from + got + 1)) "$last"); do echo "not ok $i - did not run (guest ended early)"; done
	fi
}

# qemu and dpkg-deb at hand, the cache and the scratch directory made, the
# cloud kernel and busybox in the cache.
guest_setup() {
	command -v qemu-system-x86_64 >/dev/null || required "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	command -v dpkg-deb >/dev/null || required "dpkg-deb not found"
	cache=tests/vm/cache
	mkdir -p "$cache"
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	cloud_kernel
	guest_busybox
}
