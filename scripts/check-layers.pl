#!/usr/bin/perl
# Calls go down only (src/internal.h): src/N-name/ is layer N, and a file
# may include headers and call functions of its own layer and those below,
# never of a higher one.  A function belongs to the layer of the file that
# defines it.  Comments and strings are not code.  Prints "FILE:LINE:
# what" per offence and "# N files, M functions"; exits 1 if there is any.
# Usage: check-layers.pl SRCDIR
use strict;
use warnings;

my $src = shift // 'src';
my (%layer_of_fn, %text, %layer);
for my $path (sort glob("$src/[0-9]*-*/*.[ch]")) {
	my ($n) = $path =~ m{/(\d+)-[^/]+/[^/]+$} or next;
	open(my $fh, '<', $path) or die "$path: $!\n";
	local $/;
	my $t = <$fh>;
	close($fh);
	# Blank out comments and strings, keeping the newlines.
	$t =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\])*")}{
		my $c = $1;
		$c =~ /^"/ && $c =~ m{^"\d+-[a-z]+/[a-z0-9_-]+\.h"$} ? $c : ($c =~ s/[^\n]/ /gr)
	}gse;
	$text{$path} = $t;
	$layer{$path} = $n;
	next unless $path =~ /\.c$/;
	# Definitions: a name at column 0 followed by '(' and, later, a body.
	while ($t =~ /^[a-z_][^;{]*?\b(shrinker_?_?\w+)\(([^;{]*?)\)\s*\{/mg) {
		$layer_of_fn{$1} = $n;
	}
}
my $bad = 0;
for my $path (sort keys %text) {
	my $t = $text{$path};
	my $n = $layer{$path};
	while ($t =~ /#include "(\d+)-[a-z]+\/[a-z0-9_-]+\.h"/g) {
		my $up = $1;
		next if $up <= $n;
		my $line = 1 + (() = substr($t, 0, pos($t)) =~ /\n/g);
		print "$path:$line: includes a header of layer $up\n";
		$bad = 1;
	}
	# Calls (a header only declares).
	next unless $path =~ /\.c$/;
	while ($t =~ /\b(shrinker_?_?\w+)\s*\(/g) {
		my $fn = $1;
		next unless defined $layer_of_fn{$fn} && $layer_of_fn{$fn} > $n;
		my $line = 1 + (() = substr($t, 0, pos($t)) =~ /\n/g);
		print "$path:$line: calls $fn of layer $layer_of_fn{$fn}\n";
		$bad = 1;
	}
}
printf "# %d files, %d functions\n", scalar(keys %text), scalar(keys %layer_of_fn);
exit $bad;
