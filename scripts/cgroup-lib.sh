# Shared by scripts/demo.sh and bench/run.sh: make a memory cgroup with a
# limit where this machine allows it, in this order: a child of our own
# cgroup (cgroup v1; or v2 where the controller can be enabled there, after
# moving ourselves into a leaf if we are its only process), a systemd scope
# with MemoryMax (systemd-run --scope, --user for a non-root user), a child
# of the cgroup v2 root.  make_cgroup NAME LIMIT_BYTES sets $cg (its
# directory), $cgver (1 or 2) and $placement (which of these, in words) and
# returns 0, or sets $note (why not) and returns 1.  remove_cgroup undoes
# it.
# oom_kills prints the kernel's OOM kill counter of $cg; peak_usage the
# highest usage it reached; limit_hits how often its usage reached the limit.
# wait_filled FILE BYTES waits until the last JSON line of FILE says
# "cache" >= BYTES (a load filling up before a baseline), 10 s at most.
# take_cpu FILE prints the competitor's CPU time per take in FILE, its
# JSON lines.

make_cgroup() {
	local name=$1 limit=$2 line path mnt parent
	cg=""
	cgver=""
	note=""
	placement=""
	leaf=""
	scope_pid=""
	if [ "$(id -u)" != 0 ]; then
		note="not root, so no child memory cgroup can be made"
		systemd_scope "$name" "$limit" --user && return 0
		return 1
	fi
	# cgroup v1: the memory controller's line in /proc/self/cgroup.
	line=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup || true)
	mnt=$(mount_of cgroup memory)
	if [ -n "$line" ] && [ -n "$mnt" ]; then
		path=${line#*:*:}
		cg="$mnt${path%/}/$name"
		if mkdir "$cg" 2>/dev/null && echo "$limit" > "$cg/memory.limit_in_bytes"; then
			cgver=1
			placement="a child of its own cgroup (cgroup v1)"
			return 0
		fi
		rmdir "$cg" 2>/dev/null || true
		cg=""
		note="cannot make a child of $mnt$path"
	fi
	# cgroup v2, in the order a user's system allows it.
	line=$(grep '^0::' /proc/self/cgroup || true)
	mnt=$(mount_of cgroup2)
	if [ -n "$line" ] && [ -n "$mnt" ]; then
		path=${line#0::}
		parent="$mnt${path%/}"
		# 1. A child of our own cgroup, the memory controller enabled.
		if v2_child "$parent" "$name" "$limit"; then
			placement="a child of its own cgroup $parent"
			return 0
		fi
		# 2. cgroup v2 lets no cgroup but the root both hold processes and
		# enable a controller for its children: if we are the only
		# process of ours, move into a leaf of it first.
		if [ "$parent" != "$mnt" ] && move_self_to_leaf "$parent"; then
			if v2_child "$parent" "$name" "$limit"; then
				placement="a child of its own cgroup $parent (after moving itself into $leaf)"
				return 0
			fi
			leave_leaf
		fi
		note="${note:+$note; }cannot make a child memory cgroup under $parent (the controller is not delegated there, or the cgroup holds other processes)"
		# 3. A systemd scope with MemoryMax, where systemd runs.
		systemd_scope "$name" "$limit" && return 0
		# 4. A child of the hierarchy's root.
		if [ "$parent" != "$mnt" ] && v2_child "$mnt" "$name" "$limit"; then
			placement="a child of the hierarchy's root $mnt (its own cgroup $parent could not have one)"
			return 0
		fi
		note="$note; not under the root either"
	fi
	cg=""
	[ -n "$note" ] || note="no cgroup memory controller found"
	return 1
}

# Where a filesystem of type FSTYPE is mounted ([with OPTION among its
# super options]): the type is the field after the "-" that ends the
# optional fields of /proc/self/mountinfo, however many there are.
mount_of() {
	awk -v t="$1" -v o="${2:-}" '{
		for (i = 7; i < NF; i++) if ($i == "-") break
		if ($(i + 1) != t) next
		if (o != "" && $NF !~ ("(^|,)" o "(,|$)")) next
		print $5; exit }' /proc/self/mountinfo
}

# A child NAME of cgroup v2 directory PARENT with memory.max LIMIT; sets $cg.
v2_child() {
	local parent=$1 name=$2 limit=$3
	mkdir "$parent/$name" 2>/dev/null || return 1
	if [ ! -e "$parent/$name/memory.max" ]; then
		echo +memory > "$parent/cgroup.subtree_control" 2>/dev/null || true
	fi
	if [ -e "$parent/$name/memory.max" ] && echo "$limit" > "$parent/$name/memory.max" 2>/dev/null; then
		cg="$parent/$name"
		cgver=2
		return 0
	fi
	rmdir "$parent/$name" 2>/dev/null || true
	return 1
}

# Move this shell into a new leaf of PARENT if it is the only process
# there (no fork while looking: a subshell would be one more); sets $leaf.
move_self_to_leaf() {
	local parent=$1 p
	while read -r p; do
		[ "$p" = "$$" ] || return 1
	done < "$parent/cgroup.procs"
	mkdir "$parent/self-$$" 2>/dev/null || return 1
	if echo "$$" > "$parent/self-$$/cgroup.procs" 2>/dev/null; then
		leaf="$parent/self-$$"
		return 0
	fi
	rmdir "$parent/self-$$" 2>/dev/null
	return 1
}

# Back from the leaf into its parent (the controller turned off again, as
# a cgroup with one enabled for its children may hold no process).
leave_leaf() {
	[ -n "$leaf" ] || return 0
	echo -memory > "${leaf%/*}/cgroup.subtree_control" 2>/dev/null || true
	echo "$$" > "${leaf%/*}/cgroup.procs" 2>/dev/null || true
	rmdir "$leaf" 2>/dev/null || true
	leaf=""
}

# A transient systemd scope with MemoryMax=LIMIT ([--user] for a user's
# manager), held open by a sleeping process; sets $cg, $scope_pid.
systemd_scope() {
	local name=$1 limit=$2 mode=${3:-} i rel
	command -v systemd-run >/dev/null 2>&1 && [ -d /run/systemd/system ] || return 1
	systemd-run $mode --quiet --scope --unit="$name" -p MemoryMax="$limit" \
		sleep 86400 > /dev/null 2>&1 &
	scope_pid=$!
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		rel=$(sed -n 's/^0:://p' "/proc/$scope_pid/cgroup" 2>/dev/null)
		case "$rel" in */"$name".scope) break ;; esac
		kill -0 "$scope_pid" 2>/dev/null || break
		sleep 0.1
	done
	case "$rel" in
	*/"$name".scope)
		cg="$(mount_of cgroup2)$rel"
		if [ -e "$cg/memory.max" ]; then
			cgver=2
			placement="a systemd scope (systemd-run ${mode:+$mode }--scope -p MemoryMax=$limit)"
			return 0
		fi
		;;
	esac
	kill "$scope_pid" 2>/dev/null
	scope_pid=""
	cg=""
	note="${note:+$note; }systemd-run ${mode:+$mode }--scope did not give a scope with memory.max"
	return 1
}

# The highest usage $cg reached, bytes (0 where the kernel does not say).
peak_usage() {
	if [ "$cgver" = 1 ]; then cat "$cg/memory.max_usage_in_bytes"; else cat "$cg/memory.peak" 2>/dev/null || echo 0; fi
}

oom_kills() {
	if [ "$cgver" = 1 ]; then
		awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control"
	else
		awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events"
	fi
}

# How many times the cgroup's usage reached its limit, where allocating
# processes wait in the kernel's reclaim: cgroup v1 memory.failcnt; on v2
# the "high" events where memory.high is set (the demo's limit), else "max".
limit_hits() {
	if [ "$cgver" = 1 ]; then
		cat "$cg/memory.failcnt" 2>/dev/null || echo "-"
	elif [ "$(cat "$cg/memory.high" 2>/dev/null)" != max ] && [ -r "$cg/memory.high" ]; then
		awk '$1 == "high" { print $2 }' "$cg/memory.events"
	else
		awk '$1 == "max" { print $2 }' "$cg/memory.events"
	fi
}

# The competitor's own CPU time per take (user + system, as getrusage counts
# it), in ms, the mean over the takes in its JSON lines, "-" for none: a take
# that lasts longer on the same CPU time waited (for the CPU, or in the
# kernel's reclaim), one whose CPU time grew did the same page faults slower.
# A take paced in steps (the bench's ramp) reports each step: a take runs
# from its first "allocating" to its "released".
take_cpu() {
	awk '/"allocating"/ { if (!in_take) n++; in_take = 1 }
	     /"allocated"/ && match($0, /"user_ms":[0-9.]+/) { u = substr($0, RSTART + 10, RLENGTH - 10);
	     match($0, /"sys_ms":[0-9.]+/); s += u + substr($0, RSTART + 9, RLENGTH - 9); seen = 1 }
	     /"released"/ { in_take = 0 }
	     END { if (n && seen) printf "%.0f\n", s / n; else print "-" }' "$1" 2>/dev/null
}

# The rate of the competitor's take in each of its JSON-lines files "$@"
# (MiB/s of its first take), as "median MiB/s (min-max)", "?" for none:
# alone in an empty cgroup, the speed at which this machine faults in
# fresh pages that day.
competitor_speed() {
	local f
	for f in "$@"; do
		awk '/"allocated"/ { match($0, /"took_ms":[0-9.]+/); t = substr($0, RSTART + 10, RLENGTH - 10);
		     match($0, /"held":[0-9]+/); h = substr($0, RSTART + 7, RLENGTH - 7);
		     if (t > 0) { printf "%.0f\n", h / 1048576 / (t / 1000); exit } }' "$f"
	done | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%s MiB/s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR]; else printf "?" }'
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
	if [ -n "$scope_pid" ]; then
		# systemd removes the scope once its last process is gone.
		kill "$scope_pid" 2>/dev/null
		scope_pid=""
		cg=""
		return 0
	fi
	for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.2; done
	leave_leaf
	cg=""
}

wait_filled() {
	local file=$1 bytes=$2 i
	for i in $(seq 50); do
		sleep 0.2
		tail -n 1 "$file" 2>/dev/null |
			awk -v l="$bytes" 'match($0, /"cache":[0-9]+/) && substr($0, RSTART + 8, RLENGTH - 8) + 0 >= l { f = 1 } END { exit !f }' && return 0
	done
	return 1
}
