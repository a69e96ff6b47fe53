#!/usr/bin/env bash
# System packages and services for the tests. Source it (`make test` and .ci/run do): it exports the
# services' addresses. Idempotent: a second source finds everything installed and running.
#   PostgreSQL (Debian package), started on loopback -> NEWSLAB_TEST_POSTGRES_URL
set -euo pipefail

apt_install() {  # install Debian packages that are missing (as root), else name them and fail
    "$(dirname "${BASH_SOURCE[0]}")/system-packages.sh" "$@"
}

# --- PostgreSQL on 127.0.0.1:55432, database/user/password newslab --------------------
apt_install postgresql
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_DIR=/tmp/newslab-ci-pg
PG_PORT=55432
if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    rm -rf "$PG_DIR" && mkdir -p "$PG_DIR" && chown postgres: "$PG_DIR"
    as_pg() { runuser -u postgres -- "$@"; }
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    as_pg psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -c "CREATE USER newslab PASSWORD 'newslab'" -c "CREATE DATABASE newslab OWNER newslab"
fi
export NEWSLAB_TEST_POSTGRES_URL="postgresql+psycopg://newslab:newslab@127.0.0.1:$PG_PORT/newslab"
echo "services: PostgreSQL at 127.0.0.1:$PG_PORT"

# --- Chromium (headless check of report.html) and a CJK font (Chinese report figures) ----
apt_install chromium chromium-driver fonts-wqy-microhei fontconfig
echo "services: $(chromium --version 2>/dev/null | head -n 1), CJK font: $(fc-list :lang=zh family | head -n 1)"

# --- tcmalloc: the allocator `newslab` training commands re-execute under (newslab/allocator.py) --
apt_install libtcmalloc-minimal4
echo "services: tcmalloc $(ls /usr/lib/*/libtcmalloc_minimal.so.4 2>/dev/null | head -n 1)"
