#!/usr/bin/env bash
# A local PostgreSQL server (Debian's packages) for the tests that run against PostgreSQL.
#   postgres.sh up | down | status | url
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${LIANDONG_PG_PORT:-55432}
state=${LIANDONG_PG_STATE:-$root/.state/postgres-$port}
db=liandong

log() { echo "postgres: $*" >&2; }

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && echo "$d"
}

# initdb and the server refuse to run as root: run them as the postgres user then.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
  [ -n "$(bindir)" ] && return 0
  if [ "$(id -u)" != 0 ]; then log "PostgreSQL server missing: sudo apt-get install -y postgresql"; exit 1; fi
  log "installing Debian's postgresql (once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
}

running() { [ -n "$(bindir)" ] && [ -f "$state/data/postmaster.pid" ] && as_owner "$(bindir)/pg_ctl" -D "$state/data" status >/dev/null 2>&1; }

ensure_db() {
  "$1/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || "$1/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE $db"
}

up() {
  install
  local bin; bin=$(bindir)
  if running; then log "already running on 127.0.0.1:$port"; return 0; fi
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    # A server not started from here (another checkout) serves this port: use it, never stop it.
    log "a server not started from here already answers on 127.0.0.1:$port; using it"
    ensure_db "$bin"; return 0
  fi
  mkdir -p "$state"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$state"
  if [ ! -f "$state/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$state/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  as_owner "$bin/pg_ctl" -D "$state/data" -l "$state/postgres.log" -w -t 60 \
    -o "-p $port -k $state -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  ensure_db "$bin"
  log "ready on 127.0.0.1:$port"
}

down() {
  if ! running; then log "not running"; return 0; fi
  as_owner "$(bindir)/pg_ctl" -D "$state/data" -m fast -w stop >/dev/null
  log "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running; then echo "running 127.0.0.1:$port"; else echo "stopped"; exit 1; fi ;;
  url) echo "postgresql+psycopg://postgres@127.0.0.1:$port/$db" ;;
  *) echo "usage: $0 up|down|status|url" >&2; exit 2 ;;
esac
