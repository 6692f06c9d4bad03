#!/usr/bin/env bash
# Stops the server of .ci/postgres/start.sh (same MNISTLAB_PG_DIR); its data dir stays for the next start.
set -euo pipefail
dir="${MNISTLAB_PG_DIR:-/tmp/mnistlab-postgres}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
[ -n "$bin" ] && [ -s "$dir/data/PG_VERSION" ] || { echo "postgres: none here"; exit 0; }
if [ "$(id -u)" = 0 ]; then run() { runuser -u postgres -- "$@"; }; else run() { "$@"; }; fi
if run "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  run "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null && echo "postgres: stopped"
else
  echo "postgres: not running"
fi
