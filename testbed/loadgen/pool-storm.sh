#!/usr/bin/env bash
# The pool storm: three certradius instances on 127.0.0.11, .12 and .13 sharing one ticket-key
# file (README "Running a pool"), N supplicants within the window from NAS that list all three and
# fail over on timeout (loadgen --server A,B,C), run twice on fresh instances: once undisturbed,
# once with the first instance killed with -9 at KILL_AT_MS. Prints loadgen's report of each and
# one `summary: pool=...` line per run (time to 99% and 100%, failovers, restarts, per server).
# Loopback only.
#
#   testbed/loadgen/pool-storm.sh [BINARY] [--storm N] [--window-ms W] [--kill-at-ms T]
#
# BINARY defaults to $CARGO_TARGET_DIR/release/certradius (built with the generator if it is the
# default); LOADGEN=path uses a load generator built earlier. DATABASE_URL=postgres://... adds
# `[accounting] database_url` (one PostgreSQL for the pool, Class links written on every
# Accept) to each instance; without it the instances share only the ticket keys. The NAS
# retransmit every RETRANSMIT_MS (default 1000) up to TRIES (default 3) times before failing over.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
BIN=$TARGET_DIR/release/certradius
STORM=5000
WINDOW_MS=1000
KILL_AT_MS=500
while [ $# -gt 0 ]; do
  case "$1" in
    --storm) STORM=$2; shift ;;
    --window-ms) WINDOW_MS=$2; shift ;;
    --kill-at-ms) KILL_AT_MS=$2; shift ;;
    -*) echo "usage: $0 [BINARY] [--storm N] [--window-ms W] [--kill-at-ms T]" >&2; exit 2 ;;
    *) BIN=$1 ;;
  esac
  shift
done
[ "$BIN" = "$TARGET_DIR/release/certradius" ] && cargo build --release --bin certradius
build_loadgen
WORK=${WORK:-/tmp/certradius-pool}
rm -rf "$WORK"
mkdir -p "$WORK"
"$BIN" test-pki "$WORK/pki" >/dev/null
"$BIN" ticket-key "$WORK/tickets.keys" >/dev/null
PKI=$WORK/pki
PORT=18190
HOSTS=(127.0.0.11 127.0.0.12 127.0.0.13)
PIDS=()

stop_pool() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_pool EXIT

start_pool() { # run name
  local i host db=
  if [ -n "${DATABASE_URL:-}" ]; then
    db="[accounting]
database_url = \"$DATABASE_URL\"
auto_migrate = true"
  fi
  for i in 0 1 2; do
    host=${HOSTS[$i]}
    cat >"$WORK/$1-$i.toml" <<CONF
[server]
listen = ["$host:$PORT"]
state_file = "$WORK/$1-$i.state"

[[client]]
name = "campus-nas"
address = "127.0.0.1"
secret = "testing123"

[tls]
certificate_file = "$PKI/server.pem"
private_key_file = "$PKI/server.key"
ca_file = "$PKI/ca.pem"
ticket_key_file = "$WORK/tickets.keys"

$db
CONF
    "$BIN" serve --config "$WORK/$1-$i.toml" >"$WORK/$1-$i.out" 2>"$WORK/$1-$i.log" &
    PIDS+=($!)
  done
  for i in 0 1 2; do
    for _ in $(seq 100); do
      grep -q "listening on udp" "$WORK/$1-$i.out" && break
      sleep 0.1
    done
    grep -q "listening on udp" "$WORK/$1-$i.out" || { cat "$WORK/$1-$i.log" >&2; exit 1; }
  done
}

run() { # name (undisturbed|killed)
  local name=$1 kill=()
  start_pool "$name"
  # The kill target is the first instance of this run's pool, known once it has started.
  [ "$name" = killed ] && kill=(--kill-pid "${PIDS[0]}" --kill-after-ms "$KILL_AT_MS")
  read -r _ _ ccert ckey <<<"$(files ecdsa)"
  "$LG" --server "${HOSTS[0]}:$PORT,${HOSTS[1]}:$PORT,${HOSTS[2]}:$PORT" --secret testing123 \
    --ca "$PKI/ca.pem" --cert "$ccert" --key "$ckey" --tls 1.3 --threads 2 \
    --storm "$STORM" --storm-window-ms "$WINDOW_MS" --retransmit-ms "${RETRANSMIT_MS:-1000}" \
    --tries "${TRIES:-3}" --resume 50 "${kill[@]}" | tee "$WORK/$name.txt" || true
  stop_pool
  sed -n 's/^summary: /summary: pool='"$name"' /p' "$WORK/$name.txt"
}

run undisturbed
run killed
