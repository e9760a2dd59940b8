#!/usr/bin/env bash
# Two certradius binaries side by side (e.g. before and after a change to the request path):
# ECDSA and RSA-2048, TLS 1.3, 1, 4 and 64 conversations in flight, each case run with A and then
# B, ROUNDS times; default server threads. Loopback only.
#
#   testbed/loadgen/compare-servers.sh A_BINARY B_BINARY [--rounds N] [--count N]
#
# Builds the load generator (--release; LOADGEN=path uses one built earlier). Results: one line per
# run in $WORK/results.txt. For the paced light load and eapol_test, see ab-light.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 A_BINARY B_BINARY [--rounds N] [--count N]" >&2; exit 2; }
A=$(realpath "$1")
B=$(realpath "$2")
shift 2
ROUNDS=2
COUNT=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --count) COUNT=$2; shift ;;
    *) echo "usage: compare-servers.sh A_BINARY B_BINARY [--rounds N] [--count N]" >&2; exit 2 ;;
  esac
  shift
done
WORK=${WORK:-/tmp/certradius-compare}
PORT=18190
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
build_loadgen
rm -rf "$WORK"
mkdir -p "$WORK"
"$B" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
RESULTS=$WORK/results.txt
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for key in ecdsa rsa; do
    read -r scert skey ccert ckey <<<"$(files "$key")"
    for conc in 1 4 64; do
      n=$COUNT
      [ "$conc" = 64 ] && n=$((COUNT * 3))
      [ "$key" = rsa ] && n=$((n / 2))
      for which in A B; do
        bin=$A
        [ "$which" = B ] && bin=$B
        serve_certradius "$bin" "$key" "$PORT" 0
        line=$("$LG" --server "127.0.0.1:$PORT" --secret testing123 --ca "$PKI/ca.pem" --cert "$ccert" \
          --key "$ckey" --tls 1.3 --count "$n" --concurrency "$conc" --threads 2 \
          --server-pid "$SERVER_PID" --server-cert "$scert" --server-key "$skey" \
          --baseline-pace-us 200 | grep '^summary:' || true)
        echo "round=$round server=$which key=$key in_flight=$conc $line" | tee -a "$RESULTS"
        stop_server
      done
    done
  done
done
