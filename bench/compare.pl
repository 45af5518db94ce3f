#!/usr/bin/perl
# bench/compare.pl PREVIOUS.md THIS.md: libshrinker's rows of two
# BENCHMARKS.md files side by side, as a Markdown section.  Each figure is
# "median (min-max)" or a single value; it is marked
#   =  when each run's median lies within the other run's min-max,
#   ~  when only one of them does,
#   x  when neither does (the two runs disagree beyond their spreads).
# Used by bench/run.sh to compare a run with the one before it; run it by
# hand on any two tables (e.g. from two days, or two commits).  Exit status
# 0, whatever the verdicts: it reports, it does not judge.
use strict;
use warnings;

die "usage: $0 PREVIOUS.md THIS.md\n" unless @ARGV == 2;

# The figures compared, by the column names the tables use.
my @FIGS = (
	['cache share %', 'cache share %'],
	['stall, % of alone', 'stall, % of alone'],
	['time, % over beside', 'time, % over beside'],
	['limit hits', 'limit hits'],
	['library reaction p50 / p99 ms', 'reaction p99 ms', 1],
	['shrinks', 'shrinks'],
	['wake-ups/s', 'idle wake-ups/s'],
	['RSS given back', 'RSS given back %'],
);

# A cell: [median, min, max], or undef for "-" and text.
sub cell {
	my ($s) = @_;
	$s =~ s/^\s+|\s+$//g;
	$s =~ s/\s*%$//;
	return [$1, $2, $3] if $s =~ /^(-?[\d.]+) \((-?[\d.]+)-(-?[\d.]+)\)$/;
	return [$1, $1, $1] if $s =~ /^(-?[\d.]+)$/;
	return undef;
}

# file -> { meta => {date, speed, commit}, rows => { "section|strategy" => { column => text } }, order => [...] }
sub parse {
	my ($file) = @_;
	open(my $fh, '<', $file) or die "$0: $file: $!\n";
	my (%rows, @order, @cols, $section, %meta);
	while (my $line = <$fh>) {
		chomp $line;
		last if $line =~ /^<!-- (race|compare):begin -->/;
		$meta{date} = $1 if !$meta{date} && $line =~ /\(bench\/run\.sh\) on (\d{4}-\d\d-\d\d)/;
		$meta{commit} = $1 if !$meta{commit} && $line =~ /at commit `([^`]+)`/;
		$meta{speed} = $1 if !$meta{speed} && $line =~ /\*\*(\d+ MiB\/s[^*]*)\*\*/;
		if ($line =~ /^### (.*)/) {
			$section = $1;
			$section =~ s/:.*//;
			$section =~ s/ \(libshrinker\)//;
			@cols = ();
			next;
		}
		next unless defined $section && $line =~ /^\|/;
		my @f = split /\s*\|\s*/, $line;
		shift @f;
		if (!@cols) {
			@cols = @f;
			next;
		}
		next if $f[0] =~ /^-+:?$/;
		# Rows are the library's: its strategies, or the scenarios of
		# the section about it.
		next unless $f[0] =~ /^libshrinker/ || $section =~ /given back/;
		my $key = "$section|$f[0]";
		push @order, $key unless $rows{$key};
		$rows{$key}{$cols[$_]} = $f[$_] for 1 .. $#f;
	}
	close $fh;
	return { meta => \%meta, rows => \%rows, order => \@order };
}

sub within {
	my ($v, $r) = @_;
	return $v >= $r->[1] && $v <= $r->[2];
}

my ($prev, $this) = map { parse($_) } @ARGV;
my (%count, @apart);
my @lines;
for my $key (@{ $this->{order} }) {
	my $p = $prev->{rows}{$key} or next;
	my $t = $this->{rows}{$key};
	my ($section, $strategy) = split /\|/, $key, 2;
	my @cells;
	for my $fig (@FIGS) {
		my ($col, $name, $second) = @$fig;
		next unless exists $t->{$col};
		my ($ps, $ts) = ($p->{$col} // '-', $t->{$col});
		if ($second) { # "p50 / p99": the second
			($ps) = (split m{ / }, $ps)[-1];
			($ts) = (split m{ / }, $ts)[-1];
		}
		my ($a, $b) = (cell($ps), cell($ts));
		next unless $a && $b;
		my $n = within($a->[0], $b) + within($b->[0], $a);
		my $mark = $n == 2 ? '=' : $n == 1 ? '~' : 'x';
		$count{$mark}++;
		push @apart, "$section, $strategy, $name" if $mark eq 'x';
		s/\s*%$// for $ps, $ts;
		push @cells, "$name: $ps -> $ts $mark";
	}
	push @lines, "| $section | $strategy | " . join('<br>', @cells) . " |" if @cells;
}

my %pm = %{ $prev->{meta} };
my %tm = %{ $this->{meta} };
my $desc = sub {
	my ($m) = @_;
	return join(', ', grep { defined } ($m->{date} // '?'),
		    $m->{commit} ? "commit $m->{commit}" : undef,
		    $m->{speed} ? "$m->{speed} of first-touch faults" : undef);
};
print "## Against the previous run\n\n";
print "Written by bench/compare.pl: the previous run (", $desc->(\%pm), ") -> this one (",
      $desc->(\%tm), "), libshrinker's rows. Each figure is the median (min-max) of its\n";
print "rounds; **=**: each median lies within the other run's spread, **~**: one of them does,\n";
print "**x**: neither does. Milliseconds are left out (they follow the machine's speed); shares and\n";
print "ratios are compared.\n\n";
if (!@lines) {
	print "No row of the library in both tables.\n";
	exit 0;
}
print "| scenario | strategy | previous -> this |\n|---|---|---|\n";
print "$_\n" for @lines;
my $total = ($count{'='} // 0) + ($count{'~'} // 0) + ($count{'x'} // 0);
printf "\n%d figures: %d =, %d ~, %d x%s\n", $total, $count{'='} // 0, $count{'~'} // 0,
       $count{'x'} // 0, @apart ? " (" . join('; ', @apart) . ")." : ".";
