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
cp "${CARGO_TARGET_DIR:-target}"/release/certradius "$WORK/bin/certradius-ring"
cp "${CARGO_TARGET_DIR:-target}"/release/examples/loadgen "$WORK/bin/loadgen-ring"
cargo build --release --bin certradius --example loadgen
cp "${CARGO_TARGET_DIR:-target}"/release/certradius "$WORK/bin/certradius-aws-lc-rs"
cp "${CARGO_TARGET_DIR:-target}"/release/examples/loadgen "$WORK/bin/loadgen-aws-lc-rs"
"$WORK/bin/certradius-ring" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
RESULTS=$WORK/results.txt
: >"$RESULTS"

# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh


start() { # provider key
  serve_certradius "$WORK/bin/certradius-$1" "$2" "$PORT" 1
  "$WORK/bin/certradius-$1" check --config "$CONFIG" | head -1 | tee -a "$RESULTS"
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
