#!/usr/bin/env bash
# A PostgreSQL server on this machine, for the `postgres` tests and for trying a shared Optuna study
# (hydra.sweeper.storage=postgresql://...): Debian's postgresql, its own data dir under a temp folder, listening
# on 127.0.0.1 only. Idempotent: a running server is kept. Prints the storage URL the tests use.
# Usage: bash .ci/postgres/start.sh        (as root or any user; installs the package as root if missing)
#        bash .ci/postgres/stop.sh         (stops it; the data dir stays)
# Settings: MNISTLAB_PG_DIR (default /tmp/mnistlab-postgres), MNISTLAB_PG_PORT (default 55432).
set -euo pipefail
dir="${MNISTLAB_PG_DIR:-/tmp/mnistlab-postgres}"
port="${MNISTLAB_PG_PORT:-55432}"
user=mnistlab password=mnistlab database=mnistlab  # a throwaway server for tests: not a secret

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi

# PostgreSQL refuses to run as root: as root, the server runs as Debian's postgres user.
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  owner="$(id -un)"
  as_owner() { "$@"; }
fi
data="$dir/data"
mkdir -p "$dir"
chown "$owner" "$dir"

if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 && as_owner "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  echo "postgres: already running"
else
  if [ ! -s "$data/PG_VERSION" ]; then
    pwfile="$dir/superuser.pw"
    echo "$password" > "$pwfile" && chown "$owner" "$pwfile"
    as_owner "$bin/initdb" -D "$data" -U "$owner" --pwfile="$pwfile" -A scram-sha-256 --no-instructions >/dev/null
    rm -f "$pwfile"
  fi
  # Its own socket folder (Debian's /run/postgresql may not exist), TCP on 127.0.0.1 only.
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir" start >/dev/null
  echo "postgres: started on 127.0.0.1:$port ($data, log $dir/server.log)"
fi

# The tests' user (allowed to make a database per test) and database, made once.
psql() { as_owner env PGPASSWORD="$password" "$bin/psql" -h 127.0.0.1 -p "$port" -U "$owner" -d postgres -qtA "$@"; }
if [ "$(psql -c "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
  psql -c "CREATE ROLE $user LOGIN CREATEDB PASSWORD '$password'"
fi
if [ "$(psql -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]; then
  psql -c "CREATE DATABASE $database OWNER $user"
fi
echo "postgres: postgresql://$user:$password@127.0.0.1:$port/$database"
