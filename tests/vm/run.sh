#!/usr/bin/env bash
# cgroup v2 and no-cgroup end-to-end tests in a small Linux guest (TAP).
#
# This machine's memory controller is cgroup v1; most users run cgroup v2 or
# no memory cgroup at all.  This boots Debian's cloud kernel under qemu with
# software emulation (KVM here cannot boot a stock kernel: see
# ../shared/VM.md), with an initramfs of busybox-static and the project's
# programs with the shared libraries they need (the malloc brake is
# preloaded into some of them), bash for make demo's script and util-linux's
# unshare for the container test, runs
# tests/vm/guest-tests.sh inside, and turns
# the guest's "VMTAP:" lines into TAP for prove.  A second boot, on the
# newest kernel Debian 12 has (bookworm-backports), runs
# tests/vm/guest-unprivileged.sh: what only kernels from 6.5 on do.
#
# The kernel and busybox packages are fetched with apt-get download and kept
# in tests/vm/cache (outside git); nothing is installed on the host, and the
# backports kernel comes through an apt configuration of the cache's own
# (the host's sources are not touched).
set -u
cd "${TOP_SRCDIR:-$(dirname "$0")/../..}" || exit 1
PLAN=18
BOOT1=17	# tests of the first boot (the rest are the second's)
# shellcheck source=tests/vm/host-lib.sh
. tests/vm/host-lib.sh

[ -z "${SANITIZE:-}" ] || skip_all "the guest runs static binaries without sanitizers"

guest_setup

# The backports kernel: apt with its own sources list and state in the cache.
bpo="$cache/bpo"
mkdir -p "$bpo/lists/partial" "$bpo/archives/partial"
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$bpo/sources.list"
bapt="-o Dir::Etc::SourceList=$PWD/$bpo/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$PWD/$bpo/lists -o Dir::Cache=$PWD/$bpo"
# (In a directory of its own: the pattern above must not find it.)
ndeb=$(ls -t "$bpo"/linux-image-*_amd64.deb 2>/dev/null | head -n 1)
if [ -z "$ndeb" ]; then
	timeout 120 apt-get -q $bapt update >/dev/null 2>&1
	npkg=$(apt-cache $bapt depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
	case "$npkg" in
	linux-image-6.*) (cd "$bpo" && timeout 300 apt-get $bapt download "$npkg" >/dev/null 2>&1) ;;
	esac
	ndeb=$(ls -t "$bpo"/linux-image-*_amd64.deb 2>/dev/null | head -n 1)
fi
if [ -n "$ndeb" ] && { [ ! -s "$cache/vmlinuz-bpo" ] || [ "$ndeb" -nt "$cache/vmlinuz-bpo" ]; }; then
	rm -rf "$work/k"
	dpkg-deb -x "$ndeb" "$work/k" && cp "$work"/k/boot/vmlinuz-* "$cache/vmlinuz-bpo" || rm -f "$cache/vmlinuz-bpo"
fi

# The guest's programs, linked against the shared library (so that the brake
# can be preloaded), with every library they load copied to the same path.
guest_programs

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib}
cp "$cache/busybox" build/vm/memory-hog build/vm/competitor build/vm/tests/prog-grower "$root/bin/"
cp -L build/vm/libshrinker.so.0 build/vm/libshrinker-brake.so "$root/lib/"
for f in build/vm/memory-hog build/vm/competitor build/vm/tests/prog-grower build/vm/libshrinker-brake.so; do
	ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
done | sort -u | grep -v '/build/vm/' | while read -r so; do
	mkdir -p "$root$(dirname "$so")" && cp -L "$so" "$root$so"
done
cp tests/vm/guest-lib.sh tests/vm/guest-tests.sh tests/vm/guest-unprivileged.sh "$root/"
cp scripts/cgroup-lib.sh "$root/cgroup-lib.sh"
# make demo's script, which needs bash (busybox provides the rest).
mkdir -p "$root/scripts"
cp scripts/demo.sh scripts/cgroup-lib.sh "$root/scripts/"
# util-linux's unshare for the container test (busybox's has no --cgroup),
# its setpriv to drop a capability.
bash=$(command -v bash)
cp -L "$bash" "$root/bin/bash"
uns=$(command -v unshare)
cp -L "$uns" "$root/bin/unshare.util-linux"
spv=$(command -v setpriv)
cp -L "$spv" "$root/bin/setpriv.util-linux"
for f in "$bash" "$uns" "$spv"; do
	ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
done | sort -u | while read -r so; do mkdir -p "$root$(dirname "$so")" && cp -L "$so" "$root$so"; done
cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t cgroup2 none /sys/fs/cgroup
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
export LD_LIBRARY_PATH=/lib
echo "VMTAP-BOOTED $(uname -r)"
. /guest-lib.sh
. "/${vmtests:-guest-tests}.sh"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | "$OLDPWD/$cache/busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initramfs.cpio.gz")

# boot KERNEL TESTS FROM LAST SMP [KERNEL_ARGS]: the guest runs /TESTS.sh with
# tests numbered FROM+1..LAST; prints their TAP lines, "not ok" for any it
# did not reach.  A guest kernel that panics before its tests are done
# (software emulation, not our programs: see the second boot) is booted
# once more, and says so.
boot() {
	local kernel=$1 tests=$2 from=$3 last=$4 smp=$5 kargs=${6:-} start qst got i try
	for try in 1 2; do
		start=$(date +%s)
		timeout 300 qemu-system-x86_64 -accel tcg -m 256 -smp "$smp" -no-reboot -display none \
			-nodefaults -serial stdio -kernel "$kernel" -initrd "$work/initramfs.cpio.gz" \
			-append "console=ttyS0 quiet panic=-1 $kargs vmtests=$tests vmtap_from=$from" > "$work/console" 2>&1
		qst=$?
		tr -d '\r' < "$work/console" > "$work/console.txt"
		got=$(grep -c '^VMTAP: \(not \)\?ok' "$work/console.txt")
		[ "$((from + got))" -lt "$last" ] && [ $try = 1 ] && grep -q "Kernel panic" "$work/console.txt" || break
		echo "# the guest kernel panicked (after $got of its tests), booting it again:"
		grep -m 3 -E "RIP:|Kernel panic" "$work/console.txt" | sed 's/^/#   /'
	done
	echo "# guest kernel $(awk '/^VMTAP-BOOTED/ { print $2 }' "$work/console.txt"), $tests.sh, qemu exit $qst after $(( $(date +%s) - start )) s"
	guest_tap "$from" "$last"
}

echo "1..$PLAN"
[ -n "${VM_SECOND_ONLY:-}" ] || boot "$cache/vmlinuz" guest-tests 0 $BOOT1 2
# The 6.12 guest under software emulation panicked in SLUB's per-CPU
# cmpxchg16b (2 of 3 boots with two vCPUs, 1 of 2 with one): one vCPU, and
# the CPU feature cleared (clearcpuid=cx16), which SLUB does without; 4 of
# 4 boots then passed.  VM_SECOND_ONLY=1 runs this boot alone.
if [ -s "$cache/vmlinuz-bpo" ]; then
	boot "$cache/vmlinuz-bpo" guest-unprivileged $BOOT1 $PLAN 1 clearcpuid=cx16
else
	for i in $(seq $((BOOT1 + 1)) $PLAN); do
		if [ "${REQUIRE_VM:-}" = 1 ] || [ "${REQUIRE_ALL:-}" = 1 ]; then
			echo "not ok $i - required here: cannot download bookworm-backports' cloud kernel (the tests of kernels 6.5 and later)"
		else
			echo "ok $i # SKIP cannot download bookworm-backports' cloud kernel (the tests of kernels 6.5 and later)"
		fi
	done
fi
