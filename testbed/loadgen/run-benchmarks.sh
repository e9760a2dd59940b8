#!/usr/bin/env bash
# Reruns the measurements of testbed/BENCHMARKS.md: certradius (ECDSA and RSA, TLS 1.2 and 1.3,
# server threads 1 and 2) and, with --freeradius, FreeRADIUS 3 on the same test PKI, all driven
# by the same load generator (testbed/loadgen). Loopback only; every run is bounded by --count.
#
#   testbed/loadgen/run-benchmarks.sh [--freeradius] [--only-freeradius] [--count N]
#                                     [--server-threads "1 2"] [--light-load] [--paced]
#                                     [--light-secs S] [--storm N] [--skip-saturated]
#
# --light-load: --paced, then certradius with its default threads at 1, 4 and 64 conversations
#   in flight (ECDSA and RSA, TLS 1.3, raw baseline back to back and paced), then eapol_test
#   (ECDSA, TLS 1.3), 4 loops.
# --paced: the light-load comparison at a real supplicant's pace, in one run against one server
#   (RSA-2048, TLS 1.2, default threads): loadgen 4 in flight with --pace-ms $PACE_MS (see
#   common.sh for why 3 ms), loadgen at saturation (64 in flight), eapol_test 4 loops, the raw
#   in-memory handshake, the round-trip floor at the same pace (C echo server, Status-Server) and
#   the core alone in memory (testbed/core-paced: no socket, no runtime; its ratio to the raw
#   handshake after the same gaps); server CPU, context switches and wake-ups per
#   authentication, as a table. Each timed load runs
#   --light-secs seconds (default 15). PACE_MS=N overrides the pace.
# --storm N: N supplicants within one second, NAS retransmitting every 3 s, 3 tries, against
#   certradius and (with --freeradius) FreeRADIUS.
# --skip-saturated: only what --light-load, --paced and --storm ask for.
#
# Results: one `summary:` line per run (and the full reports) in $WORK/results.txt.
# CARGO_TARGET_DIR is honoured; LOADGEN=path and CERTRADIUS_BIN=path use binaries built earlier;
# QUIET_WAIT=N waits at most N x 2 s for a quiet machine before each run (default 60).
# FreeRADIUS needs `apt-get install -y freeradius` (Debian); its config is a copy of
# /etc/freeradius/3.0 under $WORK, edited as described in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=${WORK:-/tmp/certradius-bench}
COUNT=3000
FREERADIUS=0
CERTRADIUS=1
SERVER_THREADS="1 2"
LIGHT=0
PACED=0
LIGHT_SECS=15
STORM=0
SATURATED=1
while [ $# -gt 0 ]; do
  case "$1" in
    --freeradius) FREERADIUS=1 ;;
    --only-freeradius) FREERADIUS=1; CERTRADIUS=0 ;;
    --count) COUNT=$2; shift ;;
    --server-threads) SERVER_THREADS=$2; shift ;;
    --light-load) LIGHT=1; PACED=1 ;;
    --paced) PACED=1 ;;
    --light-secs) LIGHT_SECS=$2; shift ;;
    --storm) STORM=$2; shift ;;
    --skip-saturated) SATURATED=0 ;;
    *) echo "usage: $0 [--freeradius] [--only-freeradius] [--count N] [--server-threads LIST] [--light-load] [--paced] [--light-secs S] [--storm N] [--skip-saturated]" >&2; exit 2 ;;
  esac
  shift
done
CR_PORT=18140
FR_PORT=18130
CONCURRENCY=64
# Two generator threads: one cannot keep a single-threaded certradius busy (see BENCHMARKS.md).
GEN_THREADS=2

# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
# CERTRADIUS_BIN=path measures a server built earlier instead of building one.
CR=${CERTRADIUS_BIN:-}
if [ -z "$CR" ]; then
  cargo build --release --bin certradius
  CR=$TARGET_DIR/release/certradius
fi
build_loadgen
rm -rf "$WORK"
mkdir -p "$WORK"
"$CR" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
RESULTS=$WORK/results.txt
: >"$RESULTS"

# Waits (at most QUIET_WAIT x 2 s, default 120 s) until the machine is less than 15% busy over 2 s, so that throughput is
# not measured against someone else's compile. loadgen reports what else ran anyway.
wait_quiet() {
  local i busy
  for i in $(seq "${QUIET_WAIT:-60}"); do
    busy=$(awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t}' /proc/stat)
    sleep 2
    busy=$(awk -v prev="$busy" '/^cpu /{split(prev,p," "); b=$2+$3+$4+$7+$8+$9; t=b+$5+$6;
           printf "%d", 100*(b-p[1])/((t-p[2])>0?(t-p[2]):1)}' /proc/stat)
    if [ "$busy" -lt 15 ]; then return 0; fi
  done
  echo "note: the machine stayed ${busy}% busy; measuring anyway" | tee -a "$RESULTS"
}


start_certradius() { # key threads
  serve_certradius "$CR" "$1" "$CR_PORT" "$2"
}

# Runs COMMAND... as one measurement: waits for a quiet machine, heads it with LABEL in the
# results, and leaves its `summary:` line in $LAST.
measure() { # label command...
  local label=$1
  shift
  wait_quiet
  echo "=== $label" | tee -a "$RESULTS"
  "$@" >"$WORK/last.txt" 2>&1 || true
  tee -a "$RESULTS" <"$WORK/last.txt"
  LAST=$(grep '^summary:' "$WORK/last.txt" | tail -1 || true)
}

# The machine's own floor: a blocking C echo server (no-op without a C compiler).
start_echo() {
  command -v cc >/dev/null 2>&1 || return 1
  cc -O2 -o "$WORK/udp-echo" testbed/loadgen/udp-echo.c
  "$WORK/udp-echo" 18198 &
  SERVER_PID=$!
  sleep 0.2
}

# `loadgen --status-server` against 127.0.0.1:PORT, COUNT requests, extra args.
status_rounds() { # port count args...
  local port=$1 count=$2
  shift 2
  "$LG" --server "127.0.0.1:$port" --secret testing123 --ca "$PKI/ca.pem" \
    --cert "$PKI/client-ecdsa.pem" --key "$PKI/client-ecdsa.key" --server-pid "$SERVER_PID" \
    --status-server --count "$count" "$@"
}

# --paced: the light-load comparison of issue 23 in one run (see the header).
paced_comparison() {
  local perf=() paced saturated eapol raw_line echo_line status_line core_line
  # perf stat as a cross-check of the /proc counts, where perf is installed (eapol_load: PERF=1).
  if command -v perf >/dev/null 2>&1; then perf=(--perf); PERF=1; fi
  local floor_count
  floor_count=$(awk -v s="$LIGHT_SECS" -v p="$PACE_MS" 'BEGIN {printf "%d", s * 1000 / (p + 0.3)}')
  if start_echo; then
    measure "floor: UDP echo server (C, blocking), one request every $PACE_MS ms" \
      status_rounds 18198 "$floor_count" --pace-ms "$PACE_MS" "${perf[@]}"
    echo_line=$LAST
    stop_server
  fi
  start_certradius rsa 0
  measure "floor: certradius Status-Server, one request every $PACE_MS ms" \
    status_rounds "$CR_PORT" "$floor_count" --pace-ms "$PACE_MS" "${perf[@]}"
  status_line=$LAST
  measure "(a) paced: loadgen RSA-2048 TLS 1.2, 4 in flight, --pace-ms $PACE_MS, $LIGHT_SECS s" \
    paced_load "$CR_PORT" "$LIGHT_SECS" "${perf[@]}"
  paced=$LAST
  measure "(b) saturated: loadgen RSA-2048 TLS 1.2, 64 in flight, $((COUNT / 3)) authentications" \
    saturated_load "$CR_PORT" "$((COUNT / 3))" "${perf[@]}" --baseline 0
  saturated=$LAST
  if command -v eapol_test >/dev/null 2>&1; then
    measure "(d) eapol_test RSA-2048 TLS 1.2 (testbed/eapol_test/tls12.conf), 4 loops, $LIGHT_SECS s" \
      eapol_load "$(eapol_conf tls12)" "$CR_PORT" "$LIGHT_SECS" 4
    eapol=$LAST
  else
    eapol="summary: eapol_test not installed"
  fi
  stop_server
  # The core alone, in memory, after the same gaps: what the shell adds is (a) minus this.
  cargo build --release --example core-paced
  echo "=== (e) core in memory (testbed/core-paced), RSA-2048 TLS 1.2, --pace-ms $PACE_MS" | tee -a "$RESULTS"
  core_line=$("$TARGET_DIR/release/examples/core-paced" --pki "$PKI" --pace-ms "$PACE_MS" --rounds 3 \
    --count 150 | tee -a "$RESULTS")
  raw_line=$paced
  {
    echo
    echo "Paced light load, one run, one server (RSA-2048, TLS 1.2, default threads):"
    echo
    echo "| load | auth/s | server CPU/auth | ÷ raw | ÷ raw paced | context switches/auth | wake-ups/auth | perf cs/auth | round trips |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    local raw rawp
    raw=$(field raw_tls_server_ms "$raw_line")
    rawp=$(field raw_tls_paced_server_ms "$raw_line")
    row() { # label line
      local cpu
      cpu=$(field server_cpu_ms_per_auth "$2")
      awk -v l="$1" -v r="$(field auth_per_s "$2")" -v c="$cpu" -v raw="$raw" -v rawp="$rawp" \
        -v cs="$(field server_ctx_per_auth "$2")" -v w="$(field server_wakeups_per_auth "$2")" \
        -v p="$(field perf_ctx_per_auth "$2")" -v rt="$(field rt_per_auth "$2")" 'BEGIN {
          q = (c + 0 > 0 && raw + 0 > 0) ? sprintf("%.2f", c / raw) : "-"
          qp = (c + 0 > 0 && rawp + 0 > 0) ? sprintf("%.2f", c / rawp) : "-"
          printf "| %s | %s | %s ms | %s | %s | %s | %s | %s | %s |\n", l, r, c, q, qp, cs, w, p, rt }'
    }
    row "(a) loadgen, 4 in flight, --pace-ms $PACE_MS" "$paced"
    row "(b) loadgen, 64 in flight (saturation)" "$saturated"
    row "(d) eapol_test, 4 loops" "$eapol"
    echo "| (c) raw in-memory handshake, back to back | | $raw ms | 1.00 | | | | | |"
    echo "| (c) raw, 3 ms idle before each server flight | | $rawp ms | | 1.00 | | | | |"
    echo
    echo "Round-trip floor at the same pace (server CPU, context switches, wake-ups per round trip):"
    for l in "C echo server:$echo_line" "certradius Status-Server:$status_line"; do
      echo "  ${l%%:*}: $(field server_cpu_us_per_round_trip "${l#*:}") µs, $(field server_ctx_per_round_trip "${l#*:}") cs, $(field server_wakeups_per_round_trip "${l#*:}") wake-ups"
    done
    awk -v rawp="$rawp" -v rt="$(field rt_per_auth "$paced")" -v e="$(field server_cpu_us_per_round_trip "$echo_line")" \
      -v c="$(field server_cpu_ms_per_auth "$paced")" 'BEGIN {
        if (e + 0 <= 0 || rawp + 0 <= 0) exit
        f = rawp + rt * e / 1000
        printf "  floor of a paced authentication: raw paced %.3f ms + %.2f round trips x %.1f us = %.3f ms; (a) is %.3f ms (%.2fx) above it\n", rawp, rt, e, f, c - f, c / f }'
    echo "(e) the core in memory, each authentication interleaved with a raw handshake after the same gaps:"
    echo "  core / raw after the same gaps, median of 3 rounds: $(field core_over_raw_same_gaps_median "$core_line")"
  } | tee -a "$RESULTS"
}

run() { # label key tls port extra-args...
  local label=$1 key=$2 tls=$3 port=$4 scert skey ccert ckey
  shift 4
  read -r scert skey ccert ckey <<<"$(files "$key")"
  wait_quiet
  echo "=== $label" | tee -a "$RESULTS"
  "$LG" --server "127.0.0.1:$port" --secret testing123 --ca "$PKI/ca.pem" \
    --cert "$ccert" --key "$ckey" --tls "$tls" --server-pid "$SERVER_PID" \
    --server-cert "$scert" --server-key "$skey" --threads "$GEN_THREADS" "$@" | tee -a "$RESULTS" || true
}

if [ "$CERTRADIUS" = 1 ] && [ "$SATURATED" = 1 ]; then
  for threads in $SERVER_THREADS; do
    for key in ecdsa rsa; do
      start_certradius "$key" "$threads"
      for tls in 1.2 1.3; do
        n=$COUNT
        [ "$key" = rsa ] && n=$((COUNT / 3))
        run "certradius threads=$threads $key TLS $tls" "$key" "$tls" "$CR_PORT" \
          --count "$n" --concurrency "$CONCURRENCY"
      done
      if [ "$threads" = 1 ]; then
        # Unloaded latency: one conversation at a time.
        run "certradius threads=1 $key TLS 1.3, concurrency 1" "$key" 1.3 "$CR_PORT" \
          --count 300 --concurrency 1 --baseline 0
      fi
      if [ "$threads" = 1 ] && [ "$key" = ecdsa ]; then
        # 5% of replies lost: retransmissions must be answered from the duplicate cache.
        run "certradius threads=1 ecdsa TLS 1.3, 5% reply loss" ecdsa 1.3 "$CR_PORT" \
          --count 1000 --concurrency "$CONCURRENCY" --loss 5 --timeout-ms 200 --baseline 0
      fi
      stop_server
    done
  done
fi

# A copy of the Debian FreeRADIUS configuration under $RADDB, edited for EAP-TLS on the test PKI
# (see BENCHMARKS.md).
setup_freeradius() {
  cp -a /etc/freeradius/3.0 "$RADDB"
  # EAP-TLS only, on the test PKI, no CRL checks, no TLS session cache (off by default), TLS 1.2
  # and 1.3.
  perl -0pi -e '
    s/default_eap_type = md5/default_eap_type = tls/;
    s/\n(\s*)private_key_password = whatever/\n$1#private_key_password = whatever/;
    s#private_key_file = /etc/ssl/private/ssl-cert-snakeoil.key#private_key_file = SERVER_KEY#;
    s#certificate_file = /etc/ssl/certs/ssl-cert-snakeoil.pem#certificate_file = SERVER_CERT#;
    s#ca_file = /etc/ssl/certs/ca-certificates.crt#ca_file = '"$PKI"'/ca.pem#;
    s/\n(\s*)ca_path = \$\{cadir\}/\n$1#ca_path = \${cadir}/;
    s/#\s*check_crl = yes/check_crl = no/;
    s/\n(\s*)tls_max_version = "1.2"/\n$1tls_max_version = "1.3"/;
  ' "$RADDB/mods-available/eap"
  # Run as root (the test keys are 0600 root).
  perl -pi -e 's/^(\s*)(user|group) = freerad/$1#$2 = freerad/' "$RADDB/radiusd.conf"
  # Loopback, non-standard ports: auth, acct, and the IPv6 pair; inner-tunnel off 18120.
  perl -0pi -e '
    my @ports = (18130, 18131, 18133, 18134); my $i = 0;
    s/^(\s*)port = 0\b/$1 . "port = " . $ports[$i++]/gme;
    s/ipaddr = \*/ipaddr = 127.0.0.1/g;
    s/ipv6addr = ::(\s)/ipv6addr = ::1$1/g;
  ' "$RADDB/sites-available/default"
  perl -pi -e 's/port = 18120/port = 18132/' "$RADDB/sites-available/inner-tunnel"
}

start_freeradius() { # key
  local scert skey ccert ckey
  read -r scert skey ccert ckey <<<"$(files "$1")"
  perl -pi -e "s#^(\s*private_key_file = ).*#\${1}$skey#; s#^(\s*certificate_file = ).*#\${1}$scert#" \
    "$RADDB/mods-available/eap"
  freeradius -C -d "$RADDB" >"$WORK/freeradius-check.log" 2>&1
  freeradius -f -d "$RADDB" -l "$WORK/freeradius.log" &
  SERVER_PID=$!
  sleep 2
}

# The storm: N supplicants within 1 s behind NAS sockets retransmitting every 3 s, 3 tries.
storm() { # label port extra-args...
  local label=$1 port=$2 scert skey ccert ckey
  shift 2
  read -r scert skey ccert ckey <<<"$(files ecdsa)"
  wait_quiet
  echo "=== $label" | tee -a "$RESULTS"
  "$LG" --server "127.0.0.1:$port" --secret testing123 --ca "$PKI/ca.pem" \
    --cert "$ccert" --key "$ckey" --tls 1.3 --server-pid "$SERVER_PID" --threads "$GEN_THREADS" \
    --storm "$STORM" --storm-window-ms 1000 --retransmit-ms 3000 --tries 3 "$@" | tee -a "$RESULTS" || true
}

if [ "$CERTRADIUS" = 1 ] && [ "$PACED" = 1 ]; then
  paced_comparison
fi

if [ "$CERTRADIUS" = 1 ] && [ "$LIGHT" = 1 ]; then
  # The machine's own floor: a blocking C echo server, one round trip at a time.
  if start_echo; then
    run "UDP echo server (C, blocking), one round trip at a time" ecdsa 1.3 18198 \
      --status-server --count 20000
    stop_server
  fi
  for key in ecdsa rsa; do
    start_certradius "$key" 0
    if [ "$key" = ecdsa ]; then
      # The floor: a Status-Server round trip at one in flight (what every round trip costs
      # before EAP or TLS).
      run "certradius Status-Server round trip, one at a time" ecdsa 1.3 "$CR_PORT" \
        --status-server --count 20000
    fi
    for conc in 1 4 64; do
      n=$COUNT
      [ "$conc" != 64 ] && n=$((COUNT / 2))
      [ "$key" = rsa ] && n=$((n / 2))
      run "certradius light load $key TLS 1.3, concurrency $conc" "$key" 1.3 "$CR_PORT" \
        --count "$n" --concurrency "$conc" --baseline-pace-us 200
    done
    stop_server
  done
  # eapol_test (wpa_supplicant's EAP-TLS, OpenSSL on the client side), 4 loops, TLS 1.3.
  if command -v eapol_test >/dev/null 2>&1; then
    start_certradius ecdsa 0
    wait_quiet
    echo "=== certradius light load ecdsa TLS 1.3, eapol_test, 4 loops, $LIGHT_SECS s" | tee -a "$RESULTS"
    eapol_load "$(eapol_conf ecdsa13)" "$CR_PORT" "$LIGHT_SECS" 4 | tee -a "$RESULTS"
    stop_server
  else
    echo "eapol_test not installed: skipped the eapol_test light-load run" | tee -a "$RESULTS"
  fi
fi

if [ "$CERTRADIUS" = 1 ] && [ "$STORM" -gt 0 ]; then
  start_certradius ecdsa 0
  storm "certradius storm of $STORM, ecdsa TLS 1.3" "$CR_PORT"
  stop_server
fi

if [ "$FREERADIUS" = 1 ]; then
  RADDB=$WORK/raddb
  setup_freeradius
  if [ "$SATURATED" = 1 ]; then
    for key in ecdsa rsa; do
      start_freeradius "$key"
      for tls in 1.2 1.3; do
        n=$COUNT
        [ "$key" = rsa ] && n=$((COUNT / 3))
        run "FreeRADIUS $key TLS $tls" "$key" "$tls" "$FR_PORT" \
          --count "$n" --concurrency "$CONCURRENCY" --lenient-message-authenticator
      done
      stop_server
    done
  fi
  if [ "$STORM" -gt 0 ]; then
    start_freeradius ecdsa
    storm "FreeRADIUS storm of $STORM, ecdsa TLS 1.3" "$FR_PORT" --lenient-message-authenticator
    stop_server
  fi
fi

echo
echo "summaries:"
grep -E '^(===|summary:)' "$RESULTS"
