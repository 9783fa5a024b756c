#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for a local MLflow tracking server (and the tracking-server
# test): loopback only, trust auth, its data, socket and log in one directory.
#
#   deploy/postgres-dev.sh start DIR [PORT]   initdb DIR (if new), start on 127.0.0.1:PORT (a free
#                                             port when omitted), create database `mlflow`, print
#                                             its SQLAlchemy URI on stdout
#   deploy/postgres-dev.sh stop DIR           stop the cluster (DIR stays; rm -rf it to forget it)
#
# PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` system user, so
# DIR's parents must be traversable by it (e.g. a dir under /tmp, not under a 0700 home).
# Not for production: anyone on this machine may connect (see deploy/compose.yaml for that).
set -euo pipefail

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
DB_NAME=${DB_NAME:-mlflow}

die() { echo "postgres-dev: $*" >&2; exit 1; }

[[ -x "$PG_BIN/pg_ctl" ]] || die "no PostgreSQL binaries under /usr/lib/postgresql/*/bin: \
apt-get install -y --no-install-recommends postgresql (or set PG_BIN)"

as_owner() {  # run a PostgreSQL binary as the cluster's owner
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 port=${2:-$(free_port)}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ $EUID -eq 0 ]]; then
    chown postgres: "$dir" && chmod 700 "$dir"
    runuser -u postgres -- test -w "$dir" \
      || die "$dir: the postgres user cannot reach it (a parent dir is private); use a dir under /tmp"
  fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync \
      >"$dir/initdb.log" 2>&1 || die "initdb failed, see $dir/initdb.log"
  fi
  # fsync off: a throwaway cluster trades crash safety for a faster test.
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null \
    || die "could not start on port $port, see $dir/postgres.log"
  if ! as_owner "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" postgres | grep -q 1; then
    as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME"
  fi
  echo "postgresql+psycopg2://postgres@127.0.0.1:$port/$DB_NAME"
}

stop() {
  local dir=$1
  [[ -f "$dir/data/postmaster.pid" ]] || return 0
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
}

case "${1:-}" in
  start) [[ $# -ge 2 ]] || die "usage: $0 start DIR [PORT]"; start "$2" "${3:-}" ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 start DIR [PORT] | stop DIR" ;;
esac
