#!/usr/bin/env bash
# Fairness across NAS during a storm: NAS "building-a" (127.0.0.1) storms N supplicants within one
# second while NAS "building-b" ([::1]) keeps authenticating one supplicant at a time; prints the
# storm's figures and building-b's latency during it. Loopback only (127.0.0.1 and ::1).
#
#   testbed/loadgen/storm-fairness.sh [BINARY] [--storm N] [--quiet-secs S]
#
# BINARY defaults to $CARGO_TARGET_DIR/release/certradius (built with the generator if it is the
# default). SERVER_THREADS=N sets `[server] threads` (default 0: one per CPU); LOADGEN=path uses a
# load generator built earlier. Ends with one `summary: nas=building-a ...` and one
# `summary: nas=building-b ...` line (loadgen's summaries; ab-light.sh --storm reads them).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
BIN=$TARGET_DIR/release/certradius
STORM=20000
QUIET_SECS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --storm) STORM=$2; shift ;;
    --quiet-secs) QUIET_SECS=$2; shift ;;
    -*) echo "usage: $0 [BINARY] [--storm N] [--quiet-secs S]" >&2; exit 2 ;;
    *) BIN=$1 ;;
  esac
  shift
done
[ "$BIN" = "$TARGET_DIR/release/certradius" ] && cargo build --release --bin certradius
build_loadgen
WORK=${WORK:-/tmp/certradius-fairness}
rm -rf "$WORK"
mkdir -p "$WORK"
"$BIN" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
PORT=18185
cat >"$WORK/fairness.toml" <<CONF
[server]
listen = ["127.0.0.1:$PORT", "[::1]:$PORT"]
state_file = "$WORK/certradius.state"
threads = ${SERVER_THREADS:-0}

[[client]]
name = "building-a"
address = "127.0.0.1"
secret = "testing123"

[[client]]
name = "building-b"
address = "::1"
secret = "testing123"

[tls]
certificate_file = "$PKI/server.pem"
private_key_file = "$PKI/server.key"
ca_file = "$PKI/ca.pem"
CONF
start_server "$BIN" "$WORK/fairness.toml"
read -r scert skey ccert ckey <<<"$(files ecdsa)"
${QUIET_NICE:-} "$LG" --server "[::1]:$PORT" --secret testing123 --ca "$PKI/ca.pem" --cert "$ccert" --key "$ckey" \
  --tls 1.3 --threads 1 --concurrency 1 --duration "$QUIET_SECS" --timeout-ms 3000 --retries 2 \
  >"$WORK/building-b.txt" 2>&1 &
quiet=$!
"$LG" --server "127.0.0.1:$PORT" --secret testing123 --ca "$PKI/ca.pem" --cert "$ccert" --key "$ckey" \
  --tls 1.3 --threads 2 --storm "$STORM" --storm-window-ms 1000 --retransmit-ms 3000 --tries 3 \
  --server-pid "$SERVER_PID" >"$WORK/building-a.txt" 2>&1 || true
# loadgen exits 1 when an authentication failed: the report says so, and it is what is measured.
wait "$quiet" || true
echo "building-a (the storm):"
grep -E "succeeded|storm:" "$WORK/building-a.txt"
echo "building-b (one at a time, during the storm):"
grep -E "succeeded|latency per" "$WORK/building-b.txt"
grep '^summary:' "$WORK/building-a.txt" | sed 's/^summary:/summary: nas=building-a/' || true
grep '^summary:' "$WORK/building-b.txt" | sed 's/^summary:/summary: nas=building-b/' || true
