#!/usr/bin/env bash
# The library under real systemd (TAP): a guest whose PID 1 is systemd.
#
# Servers run as systemd services, and that is where most users meet the
# library: a unit's MemoryMax= and MemoryHigh=, MemoryPressureWatch=
# (systemd 254 and later hand the service MEMORY_PRESSURE_WATCH and
# MEMORY_PRESSURE_WRITE), slices, systemd-run --scope.  This makes a small
# Debian 13 root file system (systemd 257) with Debian's mmdebstrap from
# the package archive, kept in tests/vm/cache and made again only when its
# inputs (this script's MMDEBSTRAP line) change, adds the project's
# programs and examples/systemd's units, and boots it from an initramfs
# under qemu with software emulation on Debian's cloud kernel (as
# tests/vm/run.sh does; ../shared/VM.md).  A oneshot service runs
# tests/vm/guest-systemd.sh after boot and powers the guest off.
set -u
cd "${TOP_SRCDIR:-$(dirname "$0")/../..}" || exit 1
PLAN=6
# shellcheck source=tests/vm/host-lib.sh
. tests/vm/host-lib.sh

[ -z "${SANITIZE:-}" ] || skip_all "the guest runs programs built without sanitizers"
command -v mmdebstrap >/dev/null || required "mmdebstrap not installed (apt-get install mmdebstrap)"
[ "$(id -u)" = 0 ] || required "mmdebstrap needs root here to make the guest's root file system"

guest_setup

# The root file system: minbase, systemd as init, systemd-oomd; no manual
# pages, translations or documentation.  Its name holds a hash of the line
# that makes it, so that a change makes it anew.
MMDEBSTRAP="--variant=minbase --include=systemd,systemd-sysv,systemd-oomd --dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/locale/* --dpkgopt=path-exclude=/usr/share/doc/* --dpkgopt=path-include=/usr/share/doc/*/copyright trixie"
key=$(echo "$MMDEBSTRAP" | sha1sum | cut -c1-12)
rootfs="$cache/trixie-$key.tar"
made=""
if [ ! -s "$rootfs" ]; then
	rm -f "$cache"/trixie-*.tar
	start=$(date +%s)
	# shellcheck disable=SC2086
	timeout 900 mmdebstrap --quiet $MMDEBSTRAP "$work/rootfs.tar" http://deb.debian.org/debian \
		>"$work/mmdebstrap.log" 2>&1 && mv "$work/rootfs.tar" "$rootfs" ||
		required "mmdebstrap could not make Debian 13's root file system: $(tail -n 1 "$work/mmdebstrap.log")"
	made=" (made in $(( $(date +%s) - start )) s)"
fi

guest_programs

start=$(date +%s)
root="$work/root"
mkdir -p "$root"
tar -C "$root" -xf "$rootfs" || required "cannot unpack $rootfs"
ln -sf /usr/lib/systemd/systemd "$root/init"
cp build/vm/memory-hog build/vm/competitor "$root/usr/local/bin/"
cp -L build/vm/libshrinker.so.0 build/vm/libshrinker-brake.so "$root/usr/lib/x86_64-linux-gnu/"
mkdir -p "$root/hogtest/scripts"
cp tests/vm/guest-lib.sh tests/vm/guest-systemd.sh "$root/hogtest/"
cp scripts/demo.sh scripts/cgroup-lib.sh "$root/hogtest/scripts/"
# VM_ONLY="2 5" runs those tests alone.
[ -z "${VM_ONLY:-}" ] || echo "$VM_ONLY" > "$root/hogtest/only"
# The units as a user installs them.
cp examples/systemd/memory-hog.service examples/systemd/caches.slice "$root/etc/systemd/system/"
# The tests, after boot; their TAP lines on the serial console.
cat > "$root/etc/systemd/system/hog-vmtest.service" <<'EOF'
[Unit]
Description=libshrinker's tests under systemd
Wants=systemd-oomd.service
After=basic.target systemd-oomd.service

[Service]
Type=oneshot
TimeoutStartSec=infinity
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/bin/bash /hogtest/guest-systemd.sh
ExecStopPost=/usr/bin/systemctl --force poweroff

[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/hog-vmtest.service "$root/etc/systemd/system/multi-user.target.wants/"
# What a test guest has no use for, which software emulation makes slow:
# udev (devtmpfs has the devices), module loading (the cloud kernel has
# what is needed built in), logins, timers.
for u in systemd-udevd.service systemd-udev-trigger.service systemd-udevd-control.socket \
	systemd-udevd-kernel.socket systemd-modules-load.service getty@tty1.service \
	serial-getty@ttyS0.service systemd-logind.service apt-daily.timer \
	apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
	systemd-tmpfiles-clean.timer proc-sys-fs-binfmt_misc.automount systemd-binfmt.service \
	systemd-random-seed.service systemd-hwdb-update.service ldconfig.service \
	systemd-firstboot.service systemd-machine-id-commit.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
(cd "$root" && find . | "$OLDPWD/$cache/busybox" cpio -o -H newc 2>/dev/null |
	gzip -1 > "$work/initramfs.cpio.gz") ||
	required "cannot pack the initramfs (cpio)"
packed=$(( $(date +%s) - start ))

echo "1..$PLAN"
start=$(date +%s)
timeout 400 qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -no-reboot -display none \
	-nodefaults -serial stdio -kernel "$cache/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 systemd.show_status=false" > "$work/console" 2>&1
qst=$?
tr -d '\r' < "$work/console" | sed 's/\x1b\[[0-9;:?]*[a-zA-Z]//g' > "$work/console.txt"
echo "# Debian 13 root file system $rootfs$made; initramfs packed in $packed s; qemu exit $qst after $(( $(date +%s) - start )) s"
guest_tap 0 "$PLAN"
