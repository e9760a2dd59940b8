#!/usr/bin/env bash
# Measures both rustls crypto providers (cargo features `ring` and `aws-lc-rs`) side by side:
# certradius with [server] threads = 1, ECDSA and RSA-2048, TLS 1.2 and 1.3, full and resumed
# (--resume 100), each case run with one provider and then the other. The load generator is built
# with the same provider, so its raw-TLS baseline (and its supplicants) use it too.
#
#   testbed/loadgen/compare-providers.sh [--count N]
#
# Results: $WORK/results.txt (`summary:` lines, `=== provider case` headers). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=${WORK:-/tmp/certradius-providers}
COUNT=1500
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT=$2; shift ;;
    *) echo "usage: $0 [--count N]" >&2; exit 2 ;;
  esac
  shift
done
PORT=18150
rm -rf "$WORK"
mkdir -p "$WORK/bin"
cargo build --release --no-default-features --features ring,test-pki --bin certradius --example loadgen
cp target/release/certradius "$WORK/bin/certradius-ring"
cp target/release/examples/loadgen "$WORK/bin/loadgen-ring"
cargo build --release --bin certradius --example loadgen
cp target/release/certradius "$WORK/bin/certradius-aws-lc-rs"
cp target/release/examples/loadgen "$WORK/bin/loadgen-aws-lc-rs"
"$WORK/bin/certradius-ring" test-pki "$WORK/pki" >/dev/null
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

files() {
  if [ "$1" = rsa ]; then
    echo "$PKI/server-rsa.pem $PKI/server-rsa.key $PKI/client-rsa.pem $PKI/client-rsa.key"
  else
    echo "$PKI/server.pem $PKI/server.key $PKI/client-ecdsa.pem $PKI/client-ecdsa.key"
  fi
}

start() { # provider key
  local scert skey ccert ckey cfg i
  read -r scert skey ccert ckey <<<"$(files "$2")"
  cfg=$WORK/certradius-$2.toml
  cat >"$cfg" <<EOF
[server]
listen = ["127.0.0.1:$PORT"]
threads = 1

[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "testing123"

[tls]
certificate_file = "$scert"
private_key_file = "$skey"
ca_file = "$PKI/ca.pem"
EOF
  "$WORK/bin/certradius-$1" check --config "$cfg" | tee -a "$RESULTS"
  "$WORK/bin/certradius-$1" serve --config "$cfg" >"$WORK/certradius.out" 2>"$WORK/certradius.log" &
  SERVER_PID=$!
  for i in $(seq 100); do
    grep -q "listening on udp" "$WORK/certradius.out" && return 0
    sleep 0.1
  done
  echo "certradius did not start" >&2
  exit 1
}

for key in ecdsa rsa; do
  n=$COUNT
  [ "$key" = rsa ] && n=$((COUNT / 3))
  read -r scert skey ccert ckey <<<"$(files "$key")"
  for tls in 1.2 1.3; do
    for resume in 0 100; do
      for provider in ring aws-lc-rs; do
        start "$provider" "$key"
        echo "=== $provider $key TLS $tls resume $resume" | tee -a "$RESULTS"
        "$WORK/bin/loadgen-$provider" --server "127.0.0.1:$PORT" --secret testing123 \
          --ca "$PKI/ca.pem" --cert "$ccert" --key "$ckey" --tls "$tls" \
          --server-pid "$SERVER_PID" --server-cert "$scert" --server-key "$skey" --threads 2 \
          --count "$n" --concurrency 64 --resume "$resume" | tee -a "$RESULTS" || true
        stop_server
      done
    done
  done
done
echo
echo "summaries:"
grep -E '^(===|summary:)' "$RESULTS"
