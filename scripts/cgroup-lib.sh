# Shared by scripts/demo.sh and bench/run.sh: make a child memory cgroup of
# our own cgroup with a limit, on cgroup v1 or v2, whichever this machine
# has.  make_cgroup NAME LIMIT_BYTES sets $cg (its directory) and $cgver
# (1 or 2) and returns 0, or sets $note (why not) and returns 1.
# oom_kills prints the kernel's OOM kill counter of $cg.

make_cgroup() {
	local name=$1 limit=$2 line path mnt
	cg=""
	cgver=""
	note=""
	if [ "$(id -u)" != 0 ]; then
		note="not root, so no child memory cgroup can be made"
		return 1
	fi
	# cgroup v1: the memory controller's line in /proc/self/cgroup.
	line=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup || true)
	mnt=$(awk '$9 == "cgroup" && $NF ~ /(^|,)memory(,|$)/ { print $5; exit }' /proc/self/mountinfo)
	if [ -n "$line" ] && [ -n "$mnt" ]; then
		path=${line#*:*:}
		cg="$mnt${path%/}/$name"
		if mkdir "$cg" 2>/dev/null && echo "$limit" > "$cg/memory.limit_in_bytes"; then
			cgver=1
			return 0
		fi
		rmdir "$cg" 2>/dev/null || true
		note="cannot make a child of $mnt$path"
	fi
	# cgroup v2: a child of our cgroup, with the memory controller enabled.
	line=$(grep '^0::' /proc/self/cgroup || true)
	mnt=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	if [ -n "$line" ] && [ -n "$mnt" ]; then
		path=${line#0::}
		local parent="$mnt${path%/}"
		cg="$parent/$name"
		if mkdir "$cg" 2>/dev/null; then
			if [ ! -e "$cg/memory.max" ]; then
				echo +memory > "$parent/cgroup.subtree_control" 2>/dev/null || true
			fi
			if [ -e "$cg/memory.max" ] && echo "$limit" > "$cg/memory.max"; then
				cgver=2
				return 0
			fi
			rmdir "$cg" 2>/dev/null || true
		fi
		note="${note:+$note; }cannot make a child memory cgroup under $parent"
	fi
	cg=""
	[ -n "$note" ] || note="no cgroup memory controller found"
	return 1
}

oom_kills() {
	if [ "$cgver" = 1 ]; then
		awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control"
	else
		awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events"
	fi
}

# Run "$@" inside $cg, stdout to $1 (in the background; $! is its pid).
start_in_cgroup() {
	local outfile=$1
	shift
	(echo "$BASHPID" > "$cg/cgroup.procs" && exec "$@") > "$outfile" &
}

remove_cgroup() {
	local i
	[ -n "$cg" ] || return 0
	for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.2; done
}
