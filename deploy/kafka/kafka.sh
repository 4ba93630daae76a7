#!/usr/bin/env bash
# Runs Apache Kafka (KRaft) for the local stack, the tests and CI: one node, or a cluster of
# KAFKA_NODES on 127.0.0.1 (each node broker and controller).
#   kafka.sh up | down | status | jars | bootstrap | kill N | start N
# Node i listens on port+10*(i-1) (controller cport+10*(i-1)); a cluster defaults to 29092 so it
# never meets the single broker on 19092. Every port lies below the ephemeral range (32768+).
# Jars come from Maven Central into .cache/kafka/lib (once), or from $KAFKA_HOME/libs when set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
nodes=${KAFKA_NODES:-1}
if [ "$nodes" -gt 1 ]; then default_port=29092; default_heap=256m; else default_port=19092; default_heap=384m; fi
port=${LIANDONG_KAFKA_PORT:-$default_port}
cport=${LIANDONG_KAFKA_CONTROLLER_PORT:-$((port + 1))}
if [ "$nodes" -gt 1 ]; then
  state=${LIANDONG_KAFKA_STATE:-$root/.state/kafka-cluster-$port}
else
  state=${LIANDONG_KAFKA_STATE:-$root/.state/kafka-$port}
fi
cache=$root/.cache/kafka
heap=${LIANDONG_KAFKA_HEAP:-$default_heap}
python=${PYTHON:-$root/.venv/bin/python}

node_port() { echo $((port + 10 * ($1 - 1))); }
node_cport() { echo $((cport + 10 * ($1 - 1))); }
# The single node keeps its historical layout (state dir = node dir).
node_dir() { if [ "$nodes" -gt 1 ]; then echo "$state/node-$1"; else echo "$state"; fi; }
pidfile_of() { echo "$(node_dir "$1")/kafka.pid"; }
bootstrap() {
  local out="" i
  for i in $(seq 1 "$nodes"); do out="$out${out:+,}127.0.0.1:$(node_port "$i")"; done
  echo "$out"
}
voters() {
  local out="" i
  for i in $(seq 1 "$nodes"); do out="$out${out:+,}$i@127.0.0.1:$(node_cport "$i")"; done
  echo "$out"
}

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

running_node() { local f; f=$(pidfile_of "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

ready_node() {
  "$python" -m liandong.kafka_ready --bootstrap "127.0.0.1:$(node_port "$1")" --timeout "${2:-1}" >/dev/null 2>&1
}

start_node() {
  local i=$1 dir p c cp_
  dir=$(node_dir "$i"); p=$(node_port "$i"); c=$(node_cport "$i")
  if running_node "$i"; then return 0; fi
  mkdir -p "$dir/data"
  local rf=1 isr=1
  if [ "$nodes" -ge 3 ]; then rf=3; isr=2; elif [ "$nodes" -eq 2 ]; then rf=2; fi
  sed -e "s#@PORT@#$p#g" -e "s#@CONTROLLER_PORT@#$c#g" -e "s#@DATA_DIR@#$dir/data#g" \
      -e "s#@NODE_ID@#$i#g" -e "s#@VOTERS@#$(voters)#g" -e "s#@RF@#$rf#g" -e "s#@MIN_ISR@#$isr#g" \
      "$here/server.properties.in" > "$dir/server.properties"
  cp_="$(classpath)"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # Every node of a cluster is formatted with the same cluster id.
    [ -f "$state/cluster.id" ] || java -cp "$cp_" kafka.tools.StorageTool random-uuid > "$state/cluster.id"
    java -Dlog4j.configuration="file:$here/log4j.properties" -cp "$cp_" kafka.tools.StorageTool \
      format -t "$(cat "$state/cluster.id")" -c "$dir/server.properties" >/dev/null
  fi
  log "node $i starting on 127.0.0.1:$p (heap $heap, state $dir)"
  # setsid: the broker outlives the shell that started it but is stopped only by `down`.
  setsid nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$here/log4j.properties" \
    -cp "$cp_" kafka.Kafka "$dir/server.properties" > "$dir/kafka.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile_of "$i")"
}

wait_node() {
  if ! ready_node "$1" 120; then
    log "node $1 did not become ready; last log lines:"; tail -n 30 "$(node_dir "$1")/kafka.log" >&2
    return 1
  fi
}

up() {
  local all_ready=1 i
  for i in $(seq 1 "$nodes"); do running_node "$i" && ready_node "$i" 5 || all_ready=0; done
  if [ $all_ready = 1 ]; then log "already running on $(bootstrap)"; return 0; fi
  if [ "$nodes" = 1 ] && ! running_node 1 && ready_node 1 2; then
    # Someone else's broker (another checkout, KAFKA_HOME) serves this port: use it, never stop it.
    log "a broker not started from here already answers on 127.0.0.1:$port; using it"; return 0
  fi
  jars
  mkdir -p "$state"
  # All nodes first: a KRaft controller quorum needs a majority before any node is ready.
  for i in $(seq 1 "$nodes"); do start_node "$i"; done
  for i in $(seq 1 "$nodes"); do wait_node "$i" || { down; exit 1; }; done
  log "ready on $(bootstrap) (metadata request answered)"
}

stop_node() {
  local i=$1 signal=${2:-TERM} f pid
  f=$(pidfile_of "$i")
  if ! running_node "$i"; then rm -f "$f"; return 0; fi
  pid=$(cat "$f")
  kill -s "$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "node $i did not stop in 30 s; killing"; kill -9 "$pid" 2>/dev/null || true; }
  rm -f "$f"; log "node $i stopped ($signal)"
}

down() {
  local i any=0
  for i in $(seq 1 "$nodes"); do running_node "$i" && any=1; done
  if [ $any = 0 ]; then for i in $(seq 1 "$nodes"); do rm -f "$(pidfile_of "$i")"; done; log "not running"; return 0; fi
  for i in $(seq 1 "$nodes"); do stop_node "$i"; done
  log "stopped"
}

status() {
  local i
  for i in $(seq 1 "$nodes"); do
    running_node "$i" && ready_node "$i" 3 || { echo "stopped"; return 1; }
  done
  echo "running $(bootstrap)"
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;; jars) jars ;; bootstrap) bootstrap ;;
  kill) stop_node "${2:?node number}" KILL ;;
  start) jars; start_node "${2:?node number}"; wait_node "$2" ;;
  *) echo "usage: $0 up|down|status|jars|bootstrap|kill N|start N" >&2; exit 2 ;;
esac
