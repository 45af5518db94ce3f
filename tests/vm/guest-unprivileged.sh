# The tests of the second boot, on the newest kernel Debian 12 has
# (bookworm-backports, 6.5 or later), sourced by the guest's /init after
# guest-lib.sh.  Since 6.5 a process without CAP_SYS_RESOURCE (most
# services, every container) may arm PSI triggers, but only with windows
# that are multiples of 2 s: the kernel refuses others with EINVAL, which
# Debian 12's own 6.1 does not, so only this kernel shows it.

# 18. systemd's protocol without CAP_SYS_RESOURCE: MEMORY_PRESSURE_WRITE
#     asks for "some 100000 1000000" (what systemd writes by default); the
#     kernel refuses the 1 s window, the library arms "some 200000 2000000"
#     instead, says both, and still hears the pressure: a process without
#     the library held over memory.high in a cgroup of its own stalls for
#     4 s, two of the kernel's 2 s periods.  The capability is dropped from
#     the bounding set, so root's exec does not get it back.
s=$(newcg stalled)
echo $((32 * MiB)) > "$s/memory.high"
d=$(newcg systemd)
run_in "$d" setpriv.util-linux --bounding-set -sys_resource env MEMORY_PRESSURE_WATCH="$s/memory.pressure" \
	MEMORY_PRESSURE_WRITE=c29tZSAxMDAwMDAgMTAwMDAwMAA= SHRINKER_DEBUG=1 \
	/bin/memory-hog --json --duration 9s --rate 2000 > /tmp/t18 2> /tmp/t18e &
h=$!
run_in "$s" /bin/competitor --take $((34 * MiB)) --after 1000 --hold 4000 > /tmp/t18c 2>&1
cst=$?
wait $h
st=$?
armed=$(grep -c '"name":"systemd-memory-pressure","active":true,"detail":"systemd: PSI trigger \\"some 200000 2000000\\" (asked \\"some 100000 1000000\\")' /tmp/t18)
fired=$(grep -c 'systemd-memory-pressure: pressure' /tmp/t18e)
stall=$(awk '/^some/ { sub("total=", "", $5); print $5 }' "$s/memory.pressure")
diag "without CAP_SYS_RESOURCE on $(uname -r): memory-hog exit $st, armed 2 s for the 1 s asked: $armed, confirmed pressure $fired times; the throttled process stalled $stall us"
grep -o '"name":"systemd-memory-pressure"[^}]*' /tmp/t18 | head -n 1 | sed 's/^/VMTAP: # /'
diag "$(setpriv.util-linux --bounding-set -sys_resource grep CapEff /proc/self/status) (CAP_SYS_RESOURCE is bit 24)"
[ "$st" = 0 ] && [ "$cst" = 0 ] && [ "$armed" -ge 1 ] && [ "$fired" -ge 1 ]
[ $? = 0 ] && tap ok "systemd's 1 s window without CAP_SYS_RESOURCE is armed as 2 s and delivers pressure" || { tail -n 5 /tmp/t18e | sed 's/^/VMTAP: #   /'; tap notok "systemd's 1 s window without CAP_SYS_RESOURCE is armed as 2 s and delivers pressure"; }
