#!/usr/bin/perl
# Each global struct of state has one owner (src/internal.h): no file but
# its owner names the variable (others reach the state through the owner's
# functions; a type name, "struct NAME", is not the variable).  Comments
# and strings are not code.  Prints "FILE:LINE: names VAR (OWNER's)" per
# offence and "# N owned structs"; exits 1 if there is any offence.
# Usage: check-owners.pl OWNER.c:VAR... -- FILE.c...
use strict;
use warnings;

my (%owner, @files);
my $seen_sep = 0;
for (@ARGV) {
	if ($_ eq '--') { $seen_sep = 1; next; }
	if ($seen_sep) { push @files, $_; next; }
	my ($file, $var) = split /:/, $_, 2;
	$owner{$var} = $file;
}
my $bad = 0;
for my $path (@files) {
	open(my $fh, '<', $path) or die "$path: $!\n";
	local $/;
	my $text = <$fh>;
	close($fh);
	(my $base = $path) =~ s{.*/}{};
	# Blank out comments and strings, keeping the newlines.
	$text =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\])*")}{ (my $c = $1) =~ s/[^\n]/ /g; $c }gse;
	for my $var (sort keys %owner) {
		next if $base eq $owner{$var};
		while ($text =~ /(?<!struct )\b\Q$var\E\b/g) {
			my $line = 1 + (() = substr($text, 0, pos($text)) =~ /\n/g);
			print "$path:$line: names $var ($owner{$var}'s)\n";
			$bad = 1;
		}
	}
}
print "# ", scalar(keys %owner), " owned structs\n";
exit $bad;
