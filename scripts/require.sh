# Sourced by the shell tests: required KIND is true where the environment
# says this machine must run what KIND names (REQUIRE_<KIND>=1 or
# REQUIRE_ALL=1, as .ci/run sets; the kinds are tests/tap.h's: CGROUP, SHM,
# BUILD, VM).  skip_or_fail N KIND REASON prints test N as a skip, or where
# KIND is required as a failure with the same reason.
required() {
	local v
	eval "v=\${REQUIRE_$1:-}"
	[ "$v" = 1 ] || [ "${REQUIRE_ALL:-}" = 1 ]
}
skip_or_fail() {
	if required "$2"; then
		echo "not ok $1 - required here (REQUIRE_$2=1 or REQUIRE_ALL=1), and it cannot run: $3"
	else
		echo "ok $1 # SKIP $3"
	fi
}
