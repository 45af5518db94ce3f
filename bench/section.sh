# shellcheck shell=bash
# Sourced by the bench scripts that own a section of BENCHMARKS.md, between
# "<!-- NAME:begin -->" and "<!-- NAME:end -->": section_replace NAME FILE
# puts FILE (which carries those two lines) in place of the section, or at
# the end when BENCHMARKS.md has none; section_keep NAME prints the section
# as it is, for bench/run.sh, which writes the rest of the file anew.
section_replace() {
	local name=$1 file=$2
	if [ -f BENCHMARKS.md ] && grep -q "^<!-- $name:begin -->\$" BENCHMARKS.md; then
		awk -v new="$file" -v b="<!-- $name:begin -->" -v e="<!-- $name:end -->" '
			$0 == b { while ((getline l < new) > 0) print l; skip = 1; next }
			$0 == e { skip = 0; next }
			!skip { print }' BENCHMARKS.md > BENCHMARKS.md.new
		mv BENCHMARKS.md.new BENCHMARKS.md
	else
		{ echo; cat "$file"; } >> BENCHMARKS.md
	fi
}

section_keep() {
	[ ! -f BENCHMARKS.md ] ||
		sed -n "/^<!-- $1:begin -->\$/,/^<!-- $1:end -->\$/p" BENCHMARKS.md
}
