#!/usr/bin/env bash
# The directory benchmark (README "Directory (LDAP / Active Directory)", BENCHMARKS.md
# "Directory"): a throwaway OpenLDAP slapd on 127.0.0.1 holding N users (uid=user0..), and
# certradius looking every supplicant up by its EAP identity (`user_filter = "(uid={identity})"`).
#
#   1. The storm: N distinct supplicants (`loadgen --identity 'user{n}'`) within one second,
#      once without [directory] and once with it and a cold cache; prints the time to 100% of
#      each and the LDAP searches certradius sent (its lookup counters), which coalescing and the
#      cache keep at or below the number of distinct identities.
#   2. Warm cache: server CPU per authentication with and without [directory], the same 500
#      identities looked up in a warm-up pass first, ROUNDS rounds alternating the two (medians).
#
#   testbed/loadgen/directory-storm.sh [BINARY] [--storm N] [--rounds R]
#
# Needs slapd, slapadd and the OpenLDAP schema files (apt-get install slapd ldap-utils).
# BINARY defaults to $CARGO_TARGET_DIR/release/certradius (built with the generator if it is the
# default); LOADGEN=path uses a load generator built earlier. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=testbed/loadgen/common.sh
. testbed/loadgen/common.sh
BIN=$TARGET_DIR/release/certradius
STORM=20000
ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --storm) STORM=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    -*) echo "usage: $0 [BINARY] [--storm N] [--rounds R]" >&2; exit 2 ;;
    *) BIN=$1 ;;
  esac
  shift
done
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || { echo "needs slapd (apt-get install slapd ldap-utils)" >&2; exit 2; }
[ "$BIN" = "$TARGET_DIR/release/certradius" ] && cargo build --release --bin certradius
build_loadgen
WORK=${WORK:-/tmp/certradius-directory}
rm -rf "$WORK"
mkdir -p "$WORK/slapd/db"
"$BIN" test-pki "$WORK/pki" >/dev/null
PKI=$WORK/pki
PORT=18186
LDAP_PORT=18389
ADMIN="cn=admin,dc=example,dc=org"
echo "s3cret-bind-pw" >"$WORK/ldap.password"

# --- slapd: N users loaded offline with slapadd, then served with the stats log on ----------
cat >"$WORK/slapd/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $WORK/slapd/slapd.pid
database mdb
maxsize 4294967296
suffix "dc=example,dc=org"
rootdn "$ADMIN"
rootpw s3cret-bind-pw
directory $WORK/slapd/db
index objectClass eq
index uid eq
CONF
{
  printf 'dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n\n'
  printf 'dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n'
  awk -v n="$STORM" 'BEGIN { for (i = 0; i < n; i++)
    printf "dn: uid=user%d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: user%d\ncn: user%d\nsn: U\n\n", i, i, i }'
} >"$WORK/users.ldif"
/usr/sbin/slapadd -q -f "$WORK/slapd/slapd.conf" -l "$WORK/users.ldif"
/usr/sbin/slapd -f "$WORK/slapd/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" -d 0 2>"$WORK/slapd.log" &
SLAPD_PID=$!
trap 'stop_server; kill $SLAPD_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$LDAP_PORT) 2>/dev/null && break
  sleep 0.1
done
# The searches certradius sent: its lookups that reached the directory (cache hits and
# coalesced waiters are not searches), from the counters it logs when it stops.
searches() { # log
  sed -n 's/.*stopped; counters: //p' "$1" | tr ' ' '\n' |
    sed -n 's/^directory_\(found\|not_found\|disabled\|error\)=//p' | awk '{ s += $1 } END { print s + 0 }'
}

write_config() { # name with_directory
  cat >"$WORK/$1.toml" <<CONF
[server]
listen = ["127.0.0.1:$PORT"]
state_file = "$WORK/$1.state"

[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "testing123"

[tls]
certificate_file = "$PKI/server.pem"
private_key_file = "$PKI/server.key"
ca_file = "$PKI/ca.pem"
CONF
  if [ "$2" = yes ]; then
    cat >>"$WORK/$1.toml" <<CONF

[directory]
url = ["ldap://127.0.0.1:$LDAP_PORT"]
bind_dn = "$ADMIN"
bind_password_file = "$WORK/ldap.password"
base_dn = "ou=people,dc=example,dc=org"
user_filter = "(uid={identity})"
cache_secs = 300
negative_cache_secs = 30
timeout_ms = 2000
CONF
  fi
}
write_config plain no
write_config directory yes
read -r _ _ ccert ckey <<<"$(files ecdsa)"
lg() { "$LG" --server "127.0.0.1:$PORT" --secret testing123 --ca "$PKI/ca.pem" --cert "$ccert" \
  --key "$ckey" --tls 1.3 --identity 'user{n}' "$@"; }
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | tail -1; }

# --- 1. The storm --------------------------------------------------------------------------------
storm() { # name
  start_server "$BIN" "$WORK/$1.toml"
  local out
  # As run-benchmarks.sh --storm: NAS retransmitting every 3 s, 3 tries.
  out=$(lg --storm "$STORM" --storm-window-ms 1000 --retransmit-ms 3000 --tries 3 --threads 2 \
    --server-pid "$SERVER_PID" | tee "$WORK/storm-$1.txt" || true)
  stop_server
  cp "$WORK/certradius.log" "$WORK/storm-$1.log"
  echo "summary: directory_storm config=$1 ok=$(echo "$out" | field ok) failed=$(echo "$out" | field failed) storm_all_s=$(echo "$out" | field storm_all_s) server_cpu_ms_per_auth=$(echo "$out" | field server_cpu_ms_per_auth) ldap_searches=$(searches "$WORK/storm-$1.log") distinct_identities=$STORM"
}
storm plain
storm directory

# --- 2. Warm cache, CPU per authentication, alternating ------------------------------------------
for round in $(seq "$ROUNDS"); do
  for config in plain directory; do
    start_server "$BIN" "$WORK/$config.toml"
    lg --count 500 --concurrency 16 >/dev/null || true   # warm-up: users 0..499 looked up and cached
    cpu=$(lg --count 2000 --identities 500 --concurrency 16 --server-pid "$SERVER_PID" | field server_cpu_ms_per_auth || true)
    stop_server
    echo "summary: directory_warm round=$round config=$config server_cpu_ms_per_auth=$cpu"
  done
done
