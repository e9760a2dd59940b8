#!/usr/bin/env bash
# Builds certradius with `--features fips` (rustls on aws-lc-rs in its FIPS 140-3 mode), checks
# that `certradius check` reports FIPS mode active, and authenticates against it with eapol_test
# over TLS 1.2 and 1.3 (RSA and ECDSA client certificates). Needs cmake and Go to build
# aws-lc-fips-sys (`apt-get install cmake golang-go`), about 4 minutes on 2 cores.
# Run from anywhere; it uses its own target directory, the test PKI in testbed/pki (created if
# absent) and a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${FIPS_TARGET_DIR:-target/fips}
CARGO_TARGET_DIR="$target" cargo build --release --features fips --bin certradius
bin="$target/release/certradius"
[ -f testbed/pki/ca.pem ] || "$bin" test-pki testbed/pki
out=$("$bin" check 2>&1 || true)
echo "$out" | head -1
echo "$out" | grep -q "FIPS mode active" || { echo "fips-check: FIPS mode is not active" >&2; exit 1; }
dir=$(mktemp -d)
cat > "$dir/fips.toml" <<CONF
[server]
listen = ["127.0.0.1:0"]
state_file = "$dir/state"
[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "testing123"
[tls]
certificate_file = "testbed/pki/server.pem"
private_key_file = "testbed/pki/server.key"
ca_file = "testbed/pki/ca.pem"
CONF
"$bin" serve --config "$dir/fips.toml" > "$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
  port=$(grep -oE 'listening on udp 127\.0\.0\.1:[0-9]+' "$dir/server.log" | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && break
  sleep 0.2
done
[ -n "$port" ] || { cat "$dir/server.log" >&2; echo "fips-check: the server did not start" >&2; exit 1; }
for conf in tls12 tls13 ecdsa12 ecdsa13; do
  if timeout 30 eapol_test -c "testbed/eapol_test/$conf.conf" -a 127.0.0.1 -p "$port" -s testing123 > "$dir/$conf.log" 2>&1; then
    echo "fips-check: $conf: SUCCESS"
  else
    tail -20 "$dir/$conf.log" >&2
    tail -20 "$dir/server.log" >&2
    echo "fips-check: $conf: FAILURE" >&2
    exit 1
  fi
done
echo "fips-check: FIPS build authenticates over TLS 1.2 and 1.3"
