#!/usr/bin/env bash
# Two certradius binaries side by side (e.g. before and after a change to the request path):
# ECDSA and RSA-2048, TLS 1.3, 1, 4 and 64 conversations in flight, each case run with A and then
# B, ROUNDS times; default server threads. Loopback only.
#
#   testbed/loadgen/compare-servers.sh A_BINARY B_BINARY [--rounds N] [--count N]
#
# Builds the load generator (--release). Results: one line per run in $WORK/results.txt.
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
cargo build --release --example loadgen
LG=target/release/examples/loadgen
rm -rf "$WORK"
mkdir -p "$WORK"
"$B" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
RESULTS=$WORK/results.txt
: >"$RESULTS"
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT
for round in $(seq "$ROUNDS"); do
  for key in ecdsa rsa; do
    if [ "$key" = rsa ]; then
      scert=$PKI/server-rsa.pem skey=$PKI/server-rsa.key ccert=$PKI/client-rsa.pem ckey=$PKI/client-rsa.key
    else
      scert=$PKI/server.pem skey=$PKI/server.key ccert=$PKI/client-ecdsa.pem ckey=$PKI/client-ecdsa.key
    fi
    for conc in 1 4 64; do
      n=$COUNT
      [ "$conc" = 64 ] && n=$((COUNT * 3))
      [ "$key" = rsa ] && n=$((n / 2))
      for which in A B; do
        bin=$A
        [ "$which" = B ] && bin=$B
        printf '[server]\nlisten = ["127.0.0.1:%s"]\nstate_file = "%s/state"\n[[client]]\nname = "loopback"\naddress = "127.0.0.1"\nsecret = "testing123"\n[tls]\ncertificate_file = "%s"\nprivate_key_file = "%s"\nca_file = "%s/ca.pem"\n' \
          "$PORT" "$WORK" "$scert" "$skey" "$PKI" >"$WORK/c.toml"
        "$bin" serve --config "$WORK/c.toml" >"$WORK/server.out" 2>"$WORK/server.log" &
        SERVER_PID=$!
        for _ in $(seq 100); do
          grep -q "listening on udp" "$WORK/server.out" && break
          sleep 0.1
        done
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
