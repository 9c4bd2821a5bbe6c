#!/usr/bin/perl
# Test helper: ask os-autoinst's own needle matcher (needle.pm reads the needle, tinycv.pm's
# search_ and tinycv.so's search_needle match it) for the verdict on screenshot/needle pairs.
#
#   perl tests/openqa_tinycv.pl [--search-ratio R] [--repeat N] < pairs
#
# stdin: one "SCREENSHOT.png<TAB>NEEDLE.json" a line. stdout: one JSON object a line,
#   {"ok": 0|1, "areas": [{"similarity": S, "x": X, "y": Y, "result": "ok"|"fail"}, ...],
#    "seconds": T}
# or {"error": "..."} when needle.pm refuses the needle. T is the wall time of the search
# alone (median of --repeat runs), for bench/qa.py.
#
# needle.pm pulls in OpenQA::Isotovideo::Utils only for checkout_git_refspec (used by
# needle::init, which this driver does not call); that module needs packages os-autoinst's
# Debian package does not depend on, so a stand-in with that one name is registered first.
use strict;
use warnings;
use lib '/usr/lib/os-autoinst';
use File::Basename qw(dirname);
use Getopt::Long;
use JSON::PP;
use Time::HiRes qw(time);

BEGIN {
    package OpenQA::Isotovideo::Utils;
    use Exporter 'import';
    our @EXPORT_OK = qw(checkout_git_refspec);
    sub checkout_git_refspec { return undef }
    $INC{'OpenQA/Isotovideo/Utils.pm'} = __FILE__;
}
use needle;
use tinycv;

# OCR areas are not checked by svga compare; tinycv.pm calls ocr::tesseract for them only
# after every match area passed. Answer with nothing instead of running tesseract.
{ no warnings 'once'; *ocr::tesseract = sub { return '' }; }

my $search_ratio = 0;
my $repeat = 1;
GetOptions('search-ratio=f' => \$search_ratio, 'repeat=i' => \$repeat) or die "bad options\n";
my $json = JSON::PP->new->canonical;
$| = 1;
while (my $line = <STDIN>) {
    chomp $line;
    next unless length $line;
    my ($shot, $needle_json) = split /\t/, $line;
    needle::set_needles_dir(dirname($needle_json));
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, $_[0] };
    my $needle = needle->new($needle_json);
    if (!$needle) {
        my $why = join(' ', @warnings) || 'needle.pm returned nothing';
        $why =~ s/\s+$//;
        print $json->encode({error => $why}), "\n";
        next;
    }
    my $img = tinycv::read($shot);
    if (!$img) {
        print $json->encode({error => "tinycv::read failed for $shot"}), "\n";
        next;
    }
    my ($res, @times);
    for (1 .. $repeat) {
        # A fresh read each time: tinycv caches its grey, blurred copy inside the image.
        my $fresh = $_ == 1 ? $img : tinycv::read($shot);
        my $t0 = time;
        $res = $fresh->search_($needle, 0, $search_ratio);
        push @times, time - $t0;
    }
    @times = sort { $a <=> $b } @times;
    my @areas = map { {similarity => $_->{similarity} + 0, x => $_->{x} + 0, y => $_->{y} + 0,
                       result => $_->{result}} } @{$res->{area}};
    print $json->encode({ok => $res->{ok} + 0, areas => \@areas,
                         seconds => $times[int($#times / 2)]}), "\n";
}
