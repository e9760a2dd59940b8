#!/usr/bin/env bash
# How long eapol_test thinks between a reply and its next request: the idle gaps a server sees
# from a real supplicant, which `loadgen --pace-ms` imitates (PACE_MS in common.sh is set from
# this). Runs N authentications one after the other with testbed/eapol_test/tls12.conf (RSA-2048
# client, TLS 1.2) against certradius (RSA server certificate) on loopback, captures them with
# tshark and prints, per position in the conversation, the median gap from a reply to the next
# request, the server's median time per request, and the gap between authentications.
#
#   testbed/loadgen/eapol-gaps.sh [BINARY] [--count N]
#
# BINARY defaults to $CARGO_TARGET_DIR/release/certradius (built if it is the default). Needs
# eapol_test and tshark (Debian: eapoltest, tshark). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
BIN=$TARGET_DIR/release/certradius
COUNT=20
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT=$2; shift ;;
    -*) echo "usage: $0 [BINARY] [--count N]" >&2; exit 2 ;;
    *) BIN=$1 ;;
  esac
  shift
done
for tool in eapol_test tshark; do
  command -v "$tool" >/dev/null || { echo "$tool not installed" >&2; exit 1; }
done
[ "$BIN" = "$TARGET_DIR/release/certradius" ] && cargo build --release --bin certradius
WORK=${WORK:-/tmp/certradius-eapol-gaps}
rm -rf "$WORK"
mkdir -p "$WORK"
"$BIN" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
PORT=18176
serve_certradius "$BIN" rsa "$PORT" 0
conf=$(eapol_conf)
tshark -i lo -f "udp port $PORT" -w "$WORK/capture.pcap" -q 2>/dev/null &
capture=$!
sleep 2
ok=0
for _ in $(seq "$COUNT"); do
  eapol_test -c "$conf" -a 127.0.0.1 -p "$PORT" -s testing123 >/dev/null 2>&1 && ok=$((ok + 1))
done
sleep 1
kill "$capture"
wait "$capture" || true
stop_server
echo "$ok of $COUNT authentications succeeded"
# One eapol_test process per authentication: its source port tells the conversations apart.
tshark -r "$WORK/capture.pcap" -T fields -e frame.time_epoch -e udp.srcport -e udp.dstport 2>/dev/null |
  perl -e '
    my $port = shift; my (%pk, @order);
    while (<STDIN>) {
      my ($t, $s, $d) = split;
      my $c = $d == $port ? $s : $d;
      push @order, $c unless $pk{$c};
      push @{$pk{$c}}, [$t, $d == $port];
    }
    sub median { my @v = sort { $a <=> $b } @_; return @v ? $v[$#v / 2] : 0 }
    my (@gap, @server, @between, $total);
    my $prev_end;
    for my $c (@order) {
      my @p = @{$pk{$c}}; my $i = 0;
      for my $k (1 .. $#p) {
        my ($a, $b) = ($p[$k - 1], $p[$k]);
        if (!$a->[1] && $b->[1]) { push @{$gap[$i++]}, 1000 * ($b->[0] - $a->[0]) }
        if ($a->[1] && !$b->[1]) { push @server, 1000 * ($b->[0] - $a->[0]) }
      }
      push @between, 1000 * ($p[0][0] - $prev_end) if defined $prev_end;
      $prev_end = $p[-1][0];
    }
    printf "round trips per authentication: %d\n", scalar(@gap) + 1;
    for my $i (0 .. $#gap) {
      my $m = median(@{$gap[$i]}); $total += $m;
      printf "gap after reply %d: median %.2f ms\n", $i + 1, $m;
    }
    my $b = median(@between); $total += $b;
    printf "gap between authentications (a new eapol_test process): median %.1f ms\n", $b;
    printf "server, request to reply: median %.2f ms\n", median(@server);
    printf "idle per authentication %.1f ms = %.2f ms per request\n", $total, $total / (scalar(@gap) + 1);
  ' "$PORT"
