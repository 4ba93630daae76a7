#!/usr/bin/env bash
# A local S3 API server (s3proxy over a folder) for the evidence store's tests, CI and bench.
#   s3.sh up | down | status | url | jars
# Jars come from Maven Central into .cache/s3proxy/lib (once). Port 19333 (outside the
# ephemeral range; the next free one up to 19342 when another checkout's server holds it),
# data in .state/s3/data, access key liandong / a secret made once under the state folder
# (`s3.sh env` prints what a client needs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
base_port=${LIANDONG_S3_PORT:-19333}
state=${LIANDONG_S3_STATE:-$root/.state/s3}
cache=$root/.cache/s3proxy
heap=${LIANDONG_S3_HEAP:-128m}
pidfile=$state/s3proxy.pid
# the port this checkout's server listens on: LIANDONG_S3_PORT, or the next free one after it
# when another checkout's server (with other keys) holds it; remembered in $state/port
port=$(cat "$state/port" 2>/dev/null || echo "$base_port")

log() { echo "s3: $*" >&2; }

jars() {
  if [ -f "$cache/lib/.complete" ] && cmp -s "$here/pom.xml" "$cache/pom.xml"; then return 0; fi
  command -v mvn >/dev/null || { log "Maven (mvn) is needed to fetch s3proxy: apt-get install maven"; exit 1; }
  command -v java >/dev/null || { log "Java 17+ is needed: apt-get install openjdk-17-jre-headless"; exit 1; }
  log "fetching s3proxy from Maven Central into $cache/lib (once)"
  rm -rf "$cache/lib"; mkdir -p "$cache"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$cache/lib" -DincludeScope=runtime
  cp "$here/pom.xml" "$cache/pom.xml"
  touch "$cache/lib/.complete"
}

secret() {
  mkdir -p "$state"
  if [ ! -s "$state/secret" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/secret")
  fi
  cat "$state/secret"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

# any HTTP answer from the S3 endpoint (403 to an unsigned request) means it serves
ready() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" || true)" != "000" ]; }

up() {
  if running && ready; then log "already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  # a server not started from here has other keys: take the next free port instead
  port=$base_port
  while ready; do
    port=$((port + 1))
    [ "$port" -le $((base_port + 9)) ] || { log "ports $base_port-$((port - 1)) are all taken"; exit 1; }
  done
  mkdir -p "$state"; echo "$port" > "$state/port"
  jars
  mkdir -p "$state/data"
  local key; key=$(secret)
  cat > "$state/s3proxy.conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=liandong
s3proxy.credential=$key
jclouds.provider=filesystem
jclouds.filesystem.basedir=$state/data
CONF
  chmod 600 "$state/s3proxy.conf"
  log "starting s3proxy on 127.0.0.1:$port (heap $heap, data $state/data)"
  setsid nohup java -Xms32m -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlogback.configurationFile="$here/logback.xml" -cp "$cache/lib/*" org.gaul.s3proxy.Main \
    --properties "$state/s3proxy.conf" > "$state/s3proxy.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    if ready; then log "ready on 127.0.0.1:$port"; return 0; fi
    running || break
    sleep 0.5
  done
  log "s3proxy did not become ready; last log lines:"; tail -n 30 "$state/s3proxy.log" >&2; down; exit 1
}

down() {
  if ! running; then rm -f "$pidfile"; log "not running"; return 0; fi
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"; log "stopped"
}

case "${1:-}" in
  up) up ;; down) down ;; jars) jars ;;
  status) if running && ready; then echo "running 127.0.0.1:$port"; else echo "stopped"; exit 1; fi ;;
  url) echo "http://127.0.0.1:$port" ;;
  # the variables a client needs (tests, bench, casefile with LIANDONG_EVIDENCE_STORE=s3://...)
  env) echo "LIANDONG_EVIDENCE_S3_ENDPOINT=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=liandong AWS_SECRET_ACCESS_KEY=$(secret)" ;;
  *) echo "usage: $0 up|down|status|url|env|jars" >&2; exit 2 ;;
esac
