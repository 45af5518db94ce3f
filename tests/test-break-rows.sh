#!/usr/bin/env bash
# tests/break/rows must keep up with the code: every row's break names a
# file that exists and a text found in it exactly once, and a test or a
# reason to skip.  (make check-breaks applies them, 10-20 minutes; a row
# that no longer applies would fail only there: three did, after code moved.)
set -u
cd "${TOP_SRCDIR:-$(dirname "$0")/..}" || exit 1
echo "1..2"
out=$(perl -e '
	local $/; open(my $fh, "<", "tests/break/rows") or die "rows: $!";
	my @rows = split /^== /m, <$fh>; shift @rows;
	my ($n, $bad) = (0, 0);
	for my $r (@rows) {
		my ($name) = $r =~ /^(.*)$/m;
		my ($file) = $r =~ /^file (\S+)$/m;
		my ($from) = $r =~ /^from (.*)$/m;
		# A row this machine cannot show may have no break at all.
		next if !defined $file && $r =~ /^skip \S/m;
		my $why = !defined $file ? "no file" : !defined $from ? "no from" :
			($r !~ /^(test|skip) \S/m) ? "neither a test nor a skip" : "";
		if (!$why) {
			$from =~ s/\\n/\n/g;
			if (open(my $src, "<", $file)) {
				my $text = <$src>;
				my $c = () = $text =~ /\Q$from\E/g;
				$why = "found $c times in $file" if $c != 1;
			} else {
				$why = "$file: $!";
			}
		}
		$n++;
		if ($why) { $bad++; print "# $name: $why\n"; }
	}
	print "# $n rows, $bad that do not apply\n";
	exit($bad ? 1 : 0);
')
st=$?
echo "$out"
if [ $st = 0 ]; then
	echo "ok 1 - every row of tests/break/rows applies to the code as it is"
else
	echo "not ok 1 - every row of tests/break/rows applies to the code as it is"
fi
# The check itself: a row whose text is not in the file is found.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
printf '== a row that cannot apply\nfile src/1-base/util.c\nfrom no such text in util.c, ever\nto   x\ntest test-parse 1\n' > "$tmp"
if perl -e '
	local $/; open(my $fh, "<", $ARGV[0]) or die; my $r = <$fh>;
	my ($file) = $r =~ /^file (\S+)$/m; my ($from) = $r =~ /^from (.*)$/m;
	open(my $src, "<", $file) or die; my $text = <$src>;
	my $c = () = $text =~ /\Q$from\E/g; exit($c == 1 ? 0 : 1);
' "$tmp"; then
	echo "not ok 2 - a row whose text is not in its file is found"
else
	echo "ok 2 - a row whose text is not in its file is found"
fi
