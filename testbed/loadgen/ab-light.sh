#!/usr/bin/env bash
# Two certradius binaries (e.g. before and after a change to the request path) at a real
# supplicant's pace, in one run, alternating: every round runs each load against OLD and NEW (a
# fresh server each, default threads, RSA-2048 server certificate, TLS 1.2), the order flipped
# every round, then prints the median of every figure and the median of the per-round NEW/OLD
# ratios. Loads:
#   paced       loadgen, 4 in flight, --pace-ms $PACE_MS (common.sh says why), SECONDS long, with
#               the raw in-memory handshake (back to back and paced) as yardstick
#   eapol_test  4 loops of eapol_test -c testbed/eapol_test/tls12.conf for SECONDS (if installed)
#   saturated   loadgen, 64 in flight, COUNT authentications (--no-saturated: left out)
#   storm       with --storm N: storm-fairness.sh (N supplicants within 1 s from one NAS while a
#               second NAS authenticates one at a time), ECDSA TLS 1.3, as in BENCHMARKS.md
# Server CPU, context switches and wake-ups per authentication come from /proc (perf stat as a
# cross-check where perf is installed). Loopback only.
#
#   testbed/loadgen/ab-light.sh OLD_BINARY NEW_BINARY [--rounds N] [--seconds S] [--count N]
#                               [--storm N] [--no-saturated]
#
# Results: one line per run in $WORK/results.txt (round=, server=OLD|NEW, load=, then loadgen's
# summary fields); the table at the end. LOADGEN=path uses a load generator built earlier,
# CARGO_TARGET_DIR is honoured, PACE_MS=N changes the pace.
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: $0 OLD_BINARY NEW_BINARY [--rounds N] [--seconds S] [--count N] [--storm N] [--no-saturated]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
OLD=$(realpath "$1")
NEW=$(realpath "$2")
shift 2
ROUNDS=3
SECS=15
COUNT=1000
STORM=0
SATURATED=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --count) COUNT=$2; shift ;;
    --storm) STORM=$2; shift ;;
    --no-saturated) SATURATED=0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
WORK=${WORK:-/tmp/certradius-ab-light}
PORT=18188
build_loadgen
LG=$(realpath "$LG")
rm -rf "$WORK"
mkdir -p "$WORK"
"$NEW" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
RESULTS=$WORK/results.txt
: >"$RESULTS"
perf=()
if command -v perf >/dev/null 2>&1; then perf=(--perf); PERF=1; fi
EAPOL=
command -v eapol_test >/dev/null 2>&1 && EAPOL=$(eapol_conf tls12)

# The `summary:` line of COMMAND... (or one saying it had none: the run failed before its report).
summary_of() {
  local line
  line=$("$@" 2>&1 | grep '^summary:' | tail -1 || true)
  echo "${line:-summary: run_failed=1}"
}

record() { # round which load summary-line
  echo "round=$1 server=$2 load=$3 ${4#summary: }" | tee -a "$RESULTS"
}

for round in $(seq "$ROUNDS"); do
  order="OLD NEW"
  [ $((round % 2)) = 0 ] && order="NEW OLD"
  for which in $order; do
    bin=$OLD
    [ "$which" = NEW ] && bin=$NEW
    serve_certradius "$bin" rsa "$PORT" 0
    record "$round" "$which" paced \
      "$(summary_of paced_load "$PORT" "$SECS" "${perf[@]}")"
    if [ -n "$EAPOL" ]; then
      record "$round" "$which" eapol_test "$(eapol_load "$EAPOL" "$PORT" "$SECS" 4)"
    fi
    if [ "$SATURATED" = 1 ]; then
      record "$round" "$which" saturated \
        "$(summary_of saturated_load "$PORT" "$COUNT" "${perf[@]}")"
    fi
    stop_server
  done
  if [ "$STORM" -gt 0 ]; then
    for which in $order; do
      bin=$OLD
      [ "$which" = NEW ] && bin=$NEW
      WORK=$WORK/fairness LOADGEN=$LG testbed/loadgen/storm-fairness.sh "$bin" --storm "$STORM" \
        >"$WORK/storm-$round-$which.txt" 2>&1 || true
      while read -r line; do
        nas=$(field nas "$line")
        record "$round" "$which" "storm-$nas" "${line/nas=$nas /}"
      done < <(grep '^summary:' "$WORK/storm-$round-$which.txt" || true)
    done
  fi
done

echo
echo "medians of $ROUNDS rounds (NEW/OLD: median of the per-round ratios); $(basename "$OLD") = OLD, $(basename "$NEW") = NEW"
perl -e '
  my %show = (
    "paced" => [qw(ok failed auth_per_s server_cpu_ms_per_auth server_ctx_per_auth server_wakeups_per_auth perf_ctx_per_auth raw_tls_server_ms ratio raw_tls_paced_server_ms ratio_paced pace_gap_mean_ms rt_p50_ms auth_p99_ms others_pct)],
    "eapol_test" => [qw(ok failed auth_per_s server_cpu_ms_per_auth server_ctx_per_auth server_wakeups_per_auth perf_ctx_per_auth)],
    "saturated" => [qw(ok failed auth_per_s server_cpu_ms_per_auth server_ctx_per_auth server_wakeups_per_auth auth_p99_ms others_pct)],
    "storm-building-a" => [qw(ok failed storm_p99_s storm_all_s server_cpu_ms_per_auth server_ctx_per_auth)],
    "storm-building-b" => [qw(ok failed auth_p50_ms auth_p99_ms)],
  );
  my (%v, @loads);
  while (<>) {
    my %kv = map { split /=/, $_, 2 } grep { /=/ } split;
    push @loads, $kv{load} unless grep { $_ eq $kv{load} } @loads;
    $v{$kv{load}}{$kv{round}}{$kv{server}} = \%kv;
  }
  sub median { my @s = sort { $a <=> $b } @_; return undef unless @s;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2 }
  sub num { my $x = shift; defined $x && $x =~ /^-?[0-9.]+(e-?[0-9]+)?$/ }
  print "| load | figure | OLD | NEW | NEW/OLD | OLD per round | NEW per round |\n";
  print "| --- | --- | --- | --- | --- | --- | --- |\n";
  for my $load (@loads) {
    for my $f (@{$show{$load} || []}) {
      my (@o, @n, @r);
      for my $round (sort { $a <=> $b } keys %{$v{$load}}) {
        my ($o, $n) = map { $v{$load}{$round}{$_}{$f} } qw(OLD NEW);
        push @o, $o if num($o);
        push @n, $n if num($n);
        push @r, $n / $o if num($o) && num($n) && $o != 0;
      }
      next unless @o || @n;
      my $fmt = sub { my $m = median(@_); defined $m ? sprintf("%.3f", $m) + 0 : "-" };
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", $load, $f, $fmt->(@o), $fmt->(@n),
        (@r ? sprintf("%.3f", median(@r)) : "-"), join(" / ", @o), join(" / ", @n);
    }
  }
' "$RESULTS" | tee "$WORK/table.md"
