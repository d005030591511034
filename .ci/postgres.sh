#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the farm and store tests, on loopback only.
#
#   bash .ci/postgres.sh          start it (idempotent) and print LAB_TEST_PG_URL=postgresql+psycopg://…
#   bash .ci/postgres.sh stop     stop it and delete its folder
#
# Debian's postgresql is installed when initdb is missing. The cluster lives in $LAB_CI_PG_ROOT
# (default: a folder under /tmp), trusts loopback connections, listens on a free port, and runs as
# the `postgres` user when started by root (postgres refuses to run as root). The URL also goes to
# $LAB_CI_PG_ROOT/env as `export LAB_TEST_PG_URL=…`, which the tests read when the variable is unset.
set -euo pipefail

ROOT="${LAB_CI_PG_ROOT:-/tmp/lab-ci-postgres}"
DATA="$ROOT/data"
ENV_FILE="$ROOT/env"
DB=lab_test

find_bin() {
    local name=$1 found
    found=$(command -v "$name" 2>/dev/null || true)
    if [[ -z $found ]]; then
        found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    echo "$found"
}

if [[ $(id -u) -eq 0 ]]; then
    RUN_AS=(runuser -u postgres --)
    OWNER=postgres
else
    RUN_AS=()
    OWNER=$(id -un)
fi

as_owner() { "${RUN_AS[@]}" "$@"; }

if [[ ${1:-start} == stop ]]; then
    PG_CTL=$(find_bin pg_ctl)
    if [[ -n $PG_CTL && -f $DATA/postmaster.pid ]]; then
        as_owner "$PG_CTL" -D "$DATA" -m fast -w stop >/dev/null
    fi
    rm -rf "$ROOT"
    exit 0
fi

if [[ -z $(find_bin initdb) ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "postgresql is not installed: run as root, or apt-get install postgresql" >&2
        exit 2
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
INITDB=$(find_bin initdb)
PG_CTL=$(find_bin pg_ctl)
PG_ISREADY=$(find_bin pg_isready)
PSQL=$(find_bin psql)
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

if [[ -f $ENV_FILE && -f $ROOT/port ]] && "$PG_ISREADY" -q -h 127.0.0.1 -p "$(cat "$ROOT/port")"; then
    sed 's/^export //' "$ENV_FILE"
    exit 0
fi

mkdir -p "$ROOT"
chown "$OWNER" "$ROOT"
chmod 700 "$ROOT"
if [[ ! -f $DATA/PG_VERSION ]]; then
    as_owner "$INITDB" -D "$DATA" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
fi
if [[ -f $DATA/postmaster.pid ]]; then  # left by a killed server: stop it or clear it
    as_owner "$PG_CTL" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || rm -f "$DATA/postmaster.pid"
fi
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner "$PG_CTL" -D "$DATA" -l "$ROOT/server.log" -w -t 60 start \
    -o "-p $PORT -k $ROOT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >/dev/null
echo "$PORT" >"$ROOT/port"
if ! "$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    "$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE $DB" >/dev/null
fi
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
echo "export LAB_TEST_PG_URL=$URL" >"$ENV_FILE"
echo "LAB_TEST_PG_URL=$URL"
