#!/usr/bin/perl
# The lock rules of src/internal.h, checked in the source (make check runs
# it through tests/test-locked.sh):
#  - every function named *_locked asserts the lock it needs
#    (SHRINKER__ASSERT_<LOCK>_HELD()) in its body;
#  - a lock's holder count (*_held) changes only in that lock's wrappers,
#    the functions named here.
# Prints one line per offence, "FILE:LINE: what", and "# N functions named
# *_locked"; exits 1 if there is any offence.
# Usage: check-locked.pl FILE.c...
use strict;
use warnings;

my %wrappers = map { $_ => 1 } qw(shrinker__shard_lock shrinker__shard_unlock shrinker__queue_lock shrinker__queue_unlock shrinker__lock shrinker__unlock shrinker__lock_until
	shrinker__lock_forget shrinker__mon_lock shrinker__mon_unlock shrinker__mon_trylock shrinker__mon_atfork_child probe_take probe_give);
my ($bad, $seen) = (0, 0);
for my $file (@ARGV) {
	open(my $fh, '<', $file) or die "$file: $!\n";
	my @lines = <$fh>;
	close($fh);
	my ($name, $start, $asserted) = (undef, 0, 0);
	for my $i (0 .. $#lines) {
		my $l = $lines[$i];
		# A definition: a line at column 0 naming the function, the
		# body's brace on a line of its own after it.
		if ($l =~ /^[a-z_].*?\b(\w+)\(/ && $l !~ /;\s*$/ && !defined $name) {
			my ($fn, $j) = ($1, $i);
			$j++ while $j <= $#lines && $lines[$j] !~ /^\{/ && $lines[$j] !~ /;\s*$/;
			if ($j <= $#lines && $lines[$j] =~ /^\{/) {
				($name, $start, $asserted) = ($fn, $i + 1, 0);
				next;
			}
		}
		next unless defined $name;
		$asserted = 1 if $l =~ /SHRINKER__ASSERT_\w+_HELD\(\)/;
		if ($l =~ /\b\w+_held\s*(\+\+|--|[+-]=|=[^=])/ && !$wrappers{$name}) {
			print "$file:", $i + 1, ": $name changes a lock's holder count outside its wrappers\n";
			$bad = 1;
		}
		if ($l =~ /^\}/) {
			$seen++ if $name =~ /_locked$/;
			if ($name =~ /_locked$/ && !$asserted) {
				print "$file:$start: $name does not assert the lock it needs\n";
				$bad = 1;
			}
			undef $name;
		}
	}
}
print "# $seen functions named *_locked\n";
exit $bad;
