#!/usr/bin/env bash
# The round-trip floor of the UDP shell at a supplicant's pace: two modes of testbed/echo-floor
# (blocking, thread: certradius's receive thread, poll: the receive thread before round 3 part 8,
# tokio: through the reactor; default "blocking tokio") run at the same time on two loopback ports
# (swapped every round), each answering loadgen's Status-Server requests, one every $PACE_MS ms.
# Prints server CPU per round trip for each and the per-round ratio of the second to the first. Both
# run at once, so the host's own load moves both alike (see ab-concurrent.sh).
#
#   testbed/loadgen/echo-floor.sh [--modes "A B"] [--rounds N] [--count N]
#
# LOADGEN=path and ECHO_FLOOR=path use binaries built earlier. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=4
COUNT=5000
MODES="blocking tokio"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --count) COUNT=$2; shift ;;
    --modes) MODES=$2; shift ;;
    *) echo "usage: $0 [--modes \"A B\"] [--rounds N] [--count N]" >&2; exit 2 ;;
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

read -r MODE_A MODE_B <<<"$MODES"
ratios=()
for round in $(seq "$ROUNDS"); do
  port_a=18191 port_b=18192
  [ $((round % 2)) = 0 ] && port_a=18192 port_b=18191
  "$ECHO" --port "$port_a" --mode "$MODE_A" &
  PIDS+=($!)
  "$ECHO" --port "$port_b" --mode "$MODE_B" &
  PIDS+=($!)
  sleep 0.3
  for which in a b; do
    port=$port_a pid=${PIDS[0]}
    [ "$which" = b ] && port=$port_b pid=${PIDS[1]}
    "$LG" --server "127.0.0.1:$port" --secret testing123 --ca "$PKI/ca.pem" \
      --cert "$PKI/client-ecdsa.pem" --key "$PKI/client-ecdsa.key" --server-pid "$pid" \
      --status-server --count "$COUNT" --pace-ms "$PACE_MS" >"$WORK/$which.txt" 2>&1 &
  done
  wait %3 %4
  stop_pids
  a=$(field server_cpu_us_per_round_trip "$(grep '^summary:' "$WORK/a.txt" || true)")
  b=$(field server_cpu_us_per_round_trip "$(grep '^summary:' "$WORK/b.txt" || true)")
  if [ "$a" = - ] || [ "$b" = - ]; then
    echo "round $round: a load failed; see $WORK/a.txt and $WORK/b.txt" >&2
    exit 1
  fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')
  ratios+=("$ratio")
  echo "round $round: $MODE_A $a us/round-trip, $MODE_B $b us/round-trip, $MODE_B/$MODE_A $ratio"
done
echo "summary: modes=$MODE_A,$MODE_B rounds=$ROUNDS count=$COUNT pace_ms=$PACE_MS ratios=$(IFS=,; echo "${ratios[*]}")"
