# What the guest's test files share (sourced first by the guest's /init).
# Each test prints "VMTAP: ok N - ..." or "VMTAP: not ok N - ..."; the
# kernel's own counters (memory.events, /proc/vmstat) are the verdict.
# Numbering goes on from $vmtap_from (a kernel parameter, as the second
# boot's tests follow the first's).

CG=/sys/fs/cgroup
MiB=1048576
n=${vmtap_from:-0}

tap() {
	n=$((n + 1))
	if [ "$1" = ok ]; then echo "VMTAP: ok $n - $2"; else echo "VMTAP: not ok $n - $2"; fi
}
diag() { echo "VMTAP: # $*"; }
event() { awk -v k="$2" '$1 == k { print $2 }' "$1/memory.events"; }
peak_of() { awk -F'[ =]' '/^peak=/ { print $2 }' "$1"; }
# Run "$@" inside cgroup directory $1 (the process moves itself, then execs).
run_in() {
	d=$1
	shift
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$d" "$@"
}
newcg() {
	mkdir -p "$CG/$1"
	echo "$CG/$1"
}

