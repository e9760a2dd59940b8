# Shared by the benchmark scripts of this directory (sourced, not run): the server under test and
# the test PKI's files. Expects PKI to be set before `files` is called.

SERVER_PID=
# Stops the server under test, if one runs.
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

# Servers a script runs side by side (ab-concurrent.sh, echo-floor.sh): their pids, and how they
# stop. Such a script sets `trap stop_pids EXIT` itself.
PIDS=()
stop_pids() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

# key: ecdsa|rsa -> server certificate, key, client certificate, key
files() {
  if [ "$1" = rsa ]; then
    echo "$PKI/server-rsa.pem $PKI/server-rsa.key $PKI/client-rsa.pem $PKI/client-rsa.key"
  else
    echo "$PKI/server.pem $PKI/server.key $PKI/client-ecdsa.pem $PKI/client-ecdsa.key"
  fi
}

# Starts certradius binary BIN on 127.0.0.1:PORT with KEY's server certificate and THREADS worker
# threads (0: one per CPU), one loopback client with secret testing123; returns once it listens.
# The configuration is left in $CONFIG, the output in $WORK/certradius.{out,log}.
serve_certradius() { # bin key port threads
  local scert skey ccert ckey
  read -r scert skey ccert ckey <<<"$(files "$2")"
  CONFIG=$WORK/certradius-$2-t$4.toml
  cat >"$CONFIG" <<CONF
[server]
listen = ["127.0.0.1:$3"]
threads = $4
state_file = "$WORK/certradius.state"

[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "testing123"

[tls]
certificate_file = "$scert"
private_key_file = "$skey"
ca_file = "$PKI/ca.pem"
CONF
  start_server "$1" "$CONFIG"
}

# Starts certradius binary BIN on configuration file CONFIG; returns once it listens.
start_server() { # bin config
  "$1" serve --config "$2" >"$WORK/certradius.out" 2>"$WORK/certradius.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q "listening on udp" "$WORK/certradius.out" && return 0
    sleep 0.1
  done
  echo "certradius did not start; log:" >&2
  cat "$WORK/certradius.log" >&2
  exit 1
}

# Where cargo puts its builds (CARGO_TARGET_DIR is honoured, so a benchmark build can stay out of
# the debug target others use).
TARGET_DIR=${CARGO_TARGET_DIR:-target}

# Sets LG to the load generator: $LOADGEN if given (a binary built earlier), else a release build.
build_loadgen() {
  if [ -n "${LOADGEN:-}" ]; then
    LG=$LOADGEN
  else
    cargo build --release --example loadgen
    LG=$TARGET_DIR/release/examples/loadgen
  fi
}

# --- Light load: the supplicants' pace -----------------------------------------------------------
#
# PACE_MS, the think time of loadgen's paced supplicants (`loadgen --pace-ms`). Measured from
# eapol_test (wpa_supplicant 2.10, OpenSSL 3.0) against certradius, RSA-2048, TLS 1.2
# (testbed/eapol_test/tls12.conf), 20 authentications one after the other, from tshark
# timestamps on loopback (reply received -> next request sent; `eapol-gaps.sh` repeats it), on
# this project's 2-core benchmark VM while other work ran: 6 round trips; the client waits
# 3.0-3.4 ms after the EAP-TLS Start (OpenSSL builds its context and ClientHello), 0.2 ms after
# the server flight's first fragment (an ACK), 2.8-3.0 ms after its last (certificate
# verification, the RSA CertificateVerify signature, the key exchange), 0.1-0.2 ms after the
# ChangeCipherSpec/Finished and the EAP-Success round trips; and 10.8-16.5 ms pass between one
# authentication's last reply and the next one's first request (a new eapol_test process). That
# is 17-23 ms of idle in 6 requests, 2.9-3.9 ms per request, and the server is asleep before
# nearly every request. loadgen waits before each request, an authentication's first included,
# so --pace-ms 3 gives about the same idle time per authentication (6 x 3 ms = 18 ms) and request
# rate at 4 in flight. It spreads the gaps evenly where eapol_test has three long and three short
# ones; what matters to the server, a wake-up per request, is the same.
PACE_MS=${PACE_MS:-3}

# Appends the server's counters to FILE: "cpu TICKS" (utime + stime, all threads) and one
# "tid TID VOLUNTARY INVOLUNTARY" line per thread (/proc/PID/task/*/status), as loadgen reads them.
snapshot_server() { # pid file
  {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print "cpu", $12 + $13}'
    local t
    for t in /proc/"$1"/task/*; do
      awk -v tid="${t##*/}" '/^voluntary_ctxt_switches/ {v = $2}
        /^nonvoluntary_ctxt_switches/ {n = $2} END {if (v != "") print "tid", tid, v, n}' \
        "$t/status" 2>/dev/null || true
    done
  } >"$2"
}

# Prints "CPU_MS VOLUNTARY INVOLUNTARY" between two snapshots, thread by thread (a thread created
# meanwhile counts from zero; one that exited is left out).
server_delta() { # before after
  awk 'FNR == NR { if ($1 == "cpu") c0 = $2; else { v0[$2] = $3; n0[$2] = $4 }; next }
       $1 == "cpu" { c1 = $2; next }
       { v += $3 - v0[$2]; n += $4 - n0[$2] }
       END { printf "%d %d %d\n", (c1 - c0) * 10, v, n }' "$1" "$2"
}

# Writes WORK/NAME.conf, testbed/eapol_test/NAME.conf (default tls12: RSA client, TLS 1.2) on the
# PKI in $PKI, and prints its path.
eapol_conf() { # [name]
  local name=${1:-tls12}
  sed "s#testbed/pki/#$PKI/#g" "testbed/eapol_test/$name.conf" >"$WORK/$name.conf"
  echo "$WORK/$name.conf"
}

# eapol_test at N in flight: WORKERS (default 4) loops of `eapol_test -c CONF` against
# 127.0.0.1:PORT for SECONDS, each starting its next authentication when the last one ended, as a
# few real supplicants would. Reads the server ($SERVER_PID) before and after as loadgen does
# (CPU, context switches; with PERF=1 `perf stat` too) and prints one `summary: eapol_test ...`
# line. The one eapol_test load of these scripts (run-benchmarks.sh, ab-light.sh).
eapol_load() { # conf port seconds [workers]
  local conf=$1 port=$2 secs=$3 workers=${4:-4} w perf_pid= perf_out=$WORK/eapol-perf.csv
  local pids=() start end stop_at
  snapshot_server "$SERVER_PID" "$WORK/eapol-before"
  if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null 2>&1; then
    perf stat -x , -e context-switches,cpu-migrations -p "$SERVER_PID" -o "$perf_out" &
    perf_pid=$!
    sleep 0.3
  fi
  start=${EPOCHREALTIME/./}
  stop_at=$((start + secs * 1000000))
  for w in $(seq "$workers"); do
    (
      ok=0 failed=0
      while [ "${EPOCHREALTIME/./}" -lt "$stop_at" ]; do
        if eapol_test -c "$conf" -a 127.0.0.1 -p "$port" -s testing123 >/dev/null 2>&1; then
          ok=$((ok + 1))
        else
          failed=$((failed + 1))
        fi
      done
      echo "$ok $failed" >"$WORK/eapol-count-$w"
    ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=${EPOCHREALTIME/./}
  snapshot_server "$SERVER_PID" "$WORK/eapol-after"
  local perf_ctx=-
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_ctx=$(awk -F, '$3 == "context-switches" {print $1}' "$perf_out")
  fi
  local counts
  counts=$(cat "$WORK"/eapol-count-* | awk '{ok += $1; f += $2} END {print ok + 0, f + 0}')
  rm -f "$WORK"/eapol-count-*
  read -r cpu vol inv <<<"$(server_delta "$WORK/eapol-before" "$WORK/eapol-after")"
  read -r ok failed <<<"$counts"
  awk -v ok="$ok" -v f="$failed" -v us="$((end - start))" -v cpu="$cpu" -v vol="$vol" -v inv="$inv" \
    -v w="$workers" -v pc="$perf_ctx" 'BEGIN {
      d = ok ? ok : 1
      printf "summary: eapol_test workers=%d ok=%d failed=%d wall_s=%.1f auth_per_s=%.1f ", w, ok, f, us / 1e6, ok / (us / 1e6)
      printf "server_cpu_ms_per_auth=%.3f server_ctx_per_auth=%.2f server_wakeups_per_auth=%.2f ", cpu / d, (vol + inv) / d, vol / d
      printf "server_preempt_per_auth=%.2f perf_ctx_per_auth=%s\n", inv / d, (pc == "-" || pc == "") ? "-" : sprintf("%.2f", pc / d) }'
}

# The paced light load: loadgen, RSA-2048, TLS 1.2, 4 supplicants in flight (one generator thread
# each: no two share a timer tick), each thinking PACE_MS before every request, for SECONDS, with
# the raw in-memory handshake as yardstick, back to back and paced (3 ms idle before each server
# flight). Against the server on 127.0.0.1:PORT ($SERVER_PID); prints loadgen's full report.
paced_load() { # port seconds [extra loadgen args...]
  local port=$1 secs=$2 scert skey ccert ckey
  shift 2
  read -r scert skey ccert ckey <<<"$(files rsa)"
  "$LG" --server "127.0.0.1:$port" --secret testing123 --ca "$PKI/ca.pem" --cert "$ccert" \
    --key "$ckey" --tls 1.2 --concurrency 4 --threads 4 --pace-ms "$PACE_MS" --duration "$secs" \
    --server-pid "$SERVER_PID" --server-cert "$scert" --server-key "$skey" \
    --baseline-pace-us 3000 "$@"
}

# The same handshake at saturation: 64 in flight, 2 generator threads, COUNT authentications.
saturated_load() { # port count [extra loadgen args...]
  local port=$1 count=$2 scert skey ccert ckey
  shift 2
  read -r scert skey ccert ckey <<<"$(files rsa)"
  "$LG" --server "127.0.0.1:$port" --secret testing123 --ca "$PKI/ca.pem" --cert "$ccert" \
    --key "$ckey" --tls 1.2 --concurrency 64 --threads 2 --count "$count" \
    --server-pid "$SERVER_PID" --server-cert "$scert" --server-key "$skey" "$@"
}

# Prints field NAME of a `summary:` line ("-" if absent).
field() { # name line
  awk -v k="$1" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) {print substr($i, length(k) + 2); found = 1}}
    END {if (!found) print "-"}' <<<"$2"
}
