#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the test suite when none is given, and print its URL.
#
# Uses Debian's postgresql package (installed if missing). The cluster lives in a temporary folder,
# listens on 127.0.0.1 only, and is owned by the `postgres` system user (PostgreSQL refuses root).
# Stop it with: pg_ctl -D "$PGDATA_DIR" stop (the folder is printed on stderr).
set -euo pipefail
PORT=${COREPLEX_TEST_PG_PORT:-55432}
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian package postgresql)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
URL="postgres://coreplex:coreplex@127.0.0.1:${PORT}/postgres"
if "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  echo "$URL"
  exit 0
fi
DIR=$(mktemp -d /tmp/coreplex-pg.XXXXXX)
chown postgres:postgres "$DIR"
run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
run_pg "'$BIN/initdb' -D '$DIR/data' -U postgres --auth=trust -E UTF8 >/dev/null"
run_pg "'$BIN/pg_ctl' -D '$DIR/data' -l '$DIR/log' -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off\" -w start >/dev/null"
"$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -q -c "CREATE ROLE coreplex LOGIN SUPERUSER PASSWORD 'coreplex'" postgres >&2
echo "PostgreSQL data folder: $DIR/data" >&2
echo "$URL"
