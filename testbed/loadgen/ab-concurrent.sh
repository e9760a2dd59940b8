#!/usr/bin/env bash
# Two certradius binaries measured at the same time, for changes smaller than what one-after-the-
# other runs resolve on a shared machine. ab-light.sh runs OLD, then NEW: when the host's own
# load moves between the two runs, as it does here by 10-40% within minutes, that swamps a change
# of a few percent. This script starts both servers (default threads, RSA-2048 server
# certificate, TLS 1.2), drives each with its own load generator over the same seconds, and
# swaps their ports every round. Whatever the host does then happens to both, and the per-round
# NEW/OLD ratio of server CPU stays steady where the figures themselves do not. The two servers
# share the 2 cores, so absolute figures are not comparable with a run of one server; read only
# the ratios.
#
#   testbed/loadgen/ab-concurrent.sh OLD_BINARY NEW_BINARY [--rounds N] [--seconds S]
#                                    [--load paced|status|eapol|saturated]
#
# --load paced (default): loadgen, 4 in flight, --pace-ms $PACE_MS (common.sh), S seconds each.
#   Reports server CPU per authentication.
# --load status: Status-Server, one request every $PACE_MS ms, S x 300 requests each: the round
#   trip through the shell with the least work in the core. Reports server CPU per round trip.
# --load saturated: loadgen, 64 in flight, S x 100 authentications each: the two servers split
#   the machine, so read the CPU per authentication, not the rate. Reports server CPU per
#   authentication.
# --load eapol: 2 loops of eapol_test (testbed/eapol_test/tls12.conf) against each server, S
#   seconds: 4 in flight in all, as in ab-light.sh. Reports server CPU per authentication.
#
# Prints one line per round and the median of the per-round NEW/OLD ratios. LOADGEN=path uses a
# load generator built earlier. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: $0 OLD_BINARY NEW_BINARY [--rounds N] [--seconds S] [--load paced|status|eapol|saturated]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
OLD=$(realpath "$1")
NEW=$(realpath "$2")
shift 2
ROUNDS=6
SECS=15
LOAD=paced
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --load) LOAD=$2; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
case "$LOAD" in paced | status | eapol | saturated) ;; *) echo "$usage" >&2; exit 2 ;; esac
if [ "$LOAD" = eapol ] && ! command -v eapol_test >/dev/null 2>&1; then
  echo "--load eapol needs eapol_test (apt-get install -y eapoltest)" >&2
  exit 1
fi
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
TOP=${WORK:-/tmp/certradius-ab-concurrent}
build_loadgen
LG=$(realpath "$LG")
rm -rf "$TOP"
mkdir -p "$TOP/OLD" "$TOP/NEW"
"$NEW" test-pki "$TOP/pki" >/dev/null
PKI=$TOP/pki

trap stop_pids EXIT

# Starts BIN on PORT with its files under $TOP/WHICH; prints nothing, appends the pid to PIDS.
start_one() { # which bin port
  WORK=$TOP/$1
  SERVER_PID=
  serve_certradius "$2" rsa "$3" 0
  PIDS+=("$SERVER_PID")
}

# The load against one server, its report into $TOP/WHICH/load.txt.
drive() { # which port pid
  local out=$TOP/$1/load.txt
  if [ "$LOAD" = eapol ]; then
    WORK=$TOP/$1 SERVER_PID=$3 eapol_load "$(WORK=$TOP/$1 eapol_conf tls12)" "$2" "$SECS" 2 >"$out" 2>&1
  elif [ "$LOAD" = saturated ]; then
    SERVER_PID=$3 saturated_load "$2" $((SECS * 100)) >"$out" 2>&1
  elif [ "$LOAD" = status ]; then
    "$LG" --server "127.0.0.1:$2" --secret testing123 --ca "$PKI/ca.pem" \
      --cert "$PKI/client-ecdsa.pem" --key "$PKI/client-ecdsa.key" --server-pid "$3" \
      --status-server --count $((SECS * 300)) --pace-ms "$PACE_MS" >"$out" 2>&1
  else
    SERVER_PID=$3 paced_load "$2" "$SECS" --baseline 100 >"$out" 2>&1
  fi
}

figure() { # summary-line
  if [ "$LOAD" = status ]; then
    field server_cpu_us_per_round_trip "$1"
  else
    field server_cpu_ms_per_auth "$1"
  fi
}

unit=ms/auth
[ "$LOAD" = status ] && unit=us/round-trip
ratios=()
for round in $(seq "$ROUNDS"); do
  port_old=18170 port_new=18180
  [ $((round % 2)) = 0 ] && port_old=18180 port_new=18170
  start_one OLD "$OLD" "$port_old"
  start_one NEW "$NEW" "$port_new"
  drive OLD "$port_old" "${PIDS[0]}" &
  a=$!
  drive NEW "$port_new" "${PIDS[1]}" &
  b=$!
  wait "$a" "$b"
  stop_pids
  old=$(figure "$(grep '^summary:' "$TOP/OLD/load.txt" || true)")
  new=$(figure "$(grep '^summary:' "$TOP/NEW/load.txt" || true)")
  if [ "$old" = - ] || [ "$new" = - ]; then
    echo "round $round: a load failed; see $TOP/OLD/load.txt and $TOP/NEW/load.txt" >&2
    exit 1
  fi
  ratio=$(awk -v o="$old" -v n="$new" 'BEGIN { printf "%.3f", n / o }')
  ratios+=("$ratio")
  echo "round $round: OLD $old $unit, NEW $new $unit, NEW/OLD $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n |
  awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "summary: load=$LOAD rounds=$ROUNDS seconds=$SECS new_over_old_median=$median new_over_old=$(IFS=,; echo "${ratios[*]}")"
