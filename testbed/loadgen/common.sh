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
