#!/usr/bin/env bash
# Runs a single-node Apache Kafka (KRaft) for the local stack, the tests and CI.
#   kafka.sh up | down | status | jars
# Jars come from Maven Central into .cache/kafka/lib (once), or from $KAFKA_HOME/libs when set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${LIANDONG_KAFKA_PORT:-19092}
cport=${LIANDONG_KAFKA_CONTROLLER_PORT:-19093}
state=${LIANDONG_KAFKA_STATE:-$root/.state/kafka-$port}
cache=$root/.cache/kafka
heap=${LIANDONG_KAFKA_HEAP:-384m}
python=${PYTHON:-$root/.venv/bin/python}
pidfile=$state/kafka.pid

log() { echo "kafka: $*" >&2; }

classpath() {
  if [ -n "${KAFKA_HOME:-}" ]; then
    [ -d "$KAFKA_HOME/libs" ] || { log "KAFKA_HOME=$KAFKA_HOME has no libs/"; exit 1; }
    echo "$KAFKA_HOME/libs/*"
  else
    echo "$cache/lib/*"
  fi
}

jars() {
  [ -n "${KAFKA_HOME:-}" ] && return 0
  if [ -f "$cache/lib/.complete" ] && cmp -s "$here/pom.xml" "$cache/pom.xml"; then return 0; fi
  command -v mvn >/dev/null || { log "Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven"; exit 1; }
  command -v java >/dev/null || { log "Java 17+ is needed: apt-get install openjdk-17-jre-headless"; exit 1; }
  log "fetching Kafka jars from Maven Central into $cache/lib (once)"
  rm -rf "$cache/lib"; mkdir -p "$cache"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$cache/lib" -DincludeScope=runtime
  cp "$here/pom.xml" "$cache/pom.xml"
  touch "$cache/lib/.complete"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

ready() { "$python" -m liandong.kafka_ready --bootstrap "127.0.0.1:$port" --timeout "${1:-1}" >/dev/null 2>&1; }

up() {
  if running && ready 5; then log "already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  if ready 2; then
    # Someone else's broker (another checkout, KAFKA_HOME) serves this port: use it, never stop it.
    log "a broker not started from here already answers on 127.0.0.1:$port; using it"; return 0
  fi
  jars
  mkdir -p "$state/data"
  sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@DATA_DIR@#$state/data#g" \
      "$here/server.properties.in" > "$state/server.properties"
  cp_="$(classpath)"
  if [ ! -f "$state/data/meta.properties" ]; then
    cid=$(java -cp "$cp_" kafka.tools.StorageTool random-uuid)
    java -Dlog4j.configuration="file:$here/log4j.properties" -cp "$cp_" kafka.tools.StorageTool \
      format -t "$cid" -c "$state/server.properties" >/dev/null
  fi
  log "starting on 127.0.0.1:$port (heap $heap, state $state)"
  # setsid: the broker outlives the shell that started it but is stopped only by `down`.
  setsid nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$here/log4j.properties" \
    -cp "$cp_" kafka.Kafka "$state/server.properties" > "$state/kafka.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  if ! "$python" -m liandong.kafka_ready --bootstrap "127.0.0.1:$port" --timeout 90; then
    log "broker did not become ready; last log lines:"; tail -n 30 "$state/kafka.log" >&2; down; exit 1
  fi
  log "ready (metadata request answered)"
}

down() {
  if ! running; then rm -f "$pidfile"; log "not running"; return 0; fi
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "broker did not stop in 30 s; killing"; kill -9 "$pid" 2>/dev/null || true; }
  rm -f "$pidfile"; log "stopped"
}

status() { if running && ready 3; then echo "running 127.0.0.1:$port pid $(cat "$pidfile")"; else echo "stopped"; return 1; fi; }

case "${1:-}" in
  up) up ;; down) down ;; status) status ;; jars) jars ;;
  *) echo "usage: $0 up|down|status|jars" >&2; exit 2 ;;
esac
