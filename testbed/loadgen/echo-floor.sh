#!/usr/bin/env bash
# The round-trip floor of the UDP shell, blocking thread against tokio, at a supplicant's pace:
# testbed/echo-floor's two modes run at the same time on two loopback ports (swapped every
# round), each answering loadgen's Status-Server requests, one every $PACE_MS ms. Prints server
# CPU per round trip for each and the per-round tokio/blocking ratio. Both run at once, so the
# host's own load moves both alike (see ab-concurrent.sh).
#
#   testbed/loadgen/echo-floor.sh [--rounds N] [--count N]
#
# LOADGEN=path and ECHO_FLOOR=path use binaries built earlier. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=4
COUNT=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --count) COUNT=$2; shift ;;
    *) echo "usage: $0 [--rounds N] [--count N]" >&2; exit 2 ;;
  esac
  shift
done
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
WORK=${WORK:-/tmp/certradius-echo-floor}
build_loadgen
ECHO=${ECHO_FLOOR:-}
if [ -z "$ECHO" ]; then
  cargo build --release --example echo-floor
  ECHO=$TARGET_DIR/release/examples/echo-floor
fi
rm -rf "$WORK"
mkdir -p "$WORK"
trap stop_pids EXIT
CERTRADIUS=${CERTRADIUS_BIN:-$TARGET_DIR/release/certradius}
if [ -x "$CERTRADIUS" ]; then
  "$CERTRADIUS" test-pki "$WORK/pki" >/dev/null
else
  cargo run --release --bin certradius -- test-pki "$WORK/pki" >/dev/null
fi
PKI=$WORK/pki

ratios=()
for round in $(seq "$ROUNDS"); do
  port_b=18191 port_t=18192
  [ $((round % 2)) = 0 ] && port_b=18192 port_t=18191
  "$ECHO" --port "$port_b" --mode blocking &
  PIDS+=($!)
  "$ECHO" --port "$port_t" --mode tokio &
  PIDS+=($!)
  sleep 0.3
  for which in blocking tokio; do
    port=$port_b pid=${PIDS[0]}
    [ "$which" = tokio ] && port=$port_t pid=${PIDS[1]}
    "$LG" --server "127.0.0.1:$port" --secret testing123 --ca "$PKI/ca.pem" \
      --cert "$PKI/client-ecdsa.pem" --key "$PKI/client-ecdsa.key" --server-pid "$pid" \
      --status-server --count "$COUNT" --pace-ms "$PACE_MS" >"$WORK/$which.txt" 2>&1 &
  done
  wait %3 %4
  stop_pids
  b=$(field server_cpu_us_per_round_trip "$(grep '^summary:' "$WORK/blocking.txt" || true)")
  t=$(field server_cpu_us_per_round_trip "$(grep '^summary:' "$WORK/tokio.txt" || true)")
  if [ "$b" = - ] || [ "$t" = - ]; then
    echo "round $round: a load failed; see $WORK/blocking.txt and $WORK/tokio.txt" >&2
    exit 1
  fi
  ratio=$(awk -v b="$b" -v t="$t" 'BEGIN { printf "%.2f", t / b }')
  ratios+=("$ratio")
  echo "round $round: blocking $b us/round-trip, tokio $t us/round-trip, tokio/blocking $ratio"
done
echo "summary: rounds=$ROUNDS count=$COUNT pace_ms=$PACE_MS tokio_over_blocking=$(IFS=,; echo "${ratios[*]}")"
